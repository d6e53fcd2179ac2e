// Text form of the graph IR; see graph_printer.h.
#include "compiler/graph_printer.h"

#include <fmt/format.h>

namespace nnc {

namespace {

// The attributes of the elementwise ops that have any (pow, clamp, leaky_relu, elu, gelu and their helpers).
void elementwiseAttrs(const Node& node, std::vector<std::string>& parts) {
  const Attrs& attrs = node.attrs;
  if (node.op == Op::Pow) parts.push_back(fmt::format("p={}", attrs.alpha));
  if (node.op == Op::Clamp || node.op == Op::InRange) {
    parts.push_back(fmt::format("low={}", attrs.alpha));
    parts.push_back(fmt::format("high={}", attrs.beta));
  }
  if (node.op == Op::LeakyRelu) parts.push_back(fmt::format("slope={}", attrs.alpha));
  if (node.op == Op::Elu) parts.push_back(fmt::format("alpha={}", attrs.alpha));
  if ((node.op == Op::Gelu || node.op == Op::GeluGrad) && attrs.approximate) parts.push_back("approximate=tanh");
}

std::string attrsToString(const Node& node) {
  std::vector<std::string> parts;
  switch (opInfo(node.op).family) {
    case OpFamily::Leaf:
      if (node.op == Op::Fill) parts.push_back(fmt::format("value={}", node.attrs.value));
      else parts.push_back(fmt::format("index={}", node.attrs.index));
      break;
    case OpFamily::MatMul:
      if (node.attrs.transpose_a) parts.push_back("transpose_a");
      if (node.attrs.transpose_b) parts.push_back("transpose_b");
      break;
    case OpFamily::Elementwise: elementwiseAttrs(node, parts); break;
    case OpFamily::Reduce:
    case OpFamily::Layout:  // axes, keepdims, a broadcast_to's 1/count, a reshape's or broadcast_to's shape
      if (!node.attrs.axes.empty()) parts.push_back(fmt::format("axes=[{}]", fmt::join(node.attrs.axes, ", ")));
      if (node.attrs.keepdims) parts.push_back("keepdims");
      if (node.op == Op::BroadcastTo && node.attrs.alpha != 0) parts.push_back("mean");
      if (node.op == Op::Reshape || node.op == Op::BroadcastTo)
        parts.push_back(fmt::format("shape={}", shapeToString(node.attrs.shape)));
      break;
    case OpFamily::Loss: break;
    case OpFamily::Conv:  // window attributes as (height, width) pairs; global pooling has none
      if (node.op == Op::GlobalAvgPool || node.op == Op::GlobalAvgPoolGrad) break;
      parts.push_back(fmt::format("kernel={}x{}, stride={}x{}, padding={}x{}, dilation={}x{}", node.attrs.kernel[0],
                                  node.attrs.kernel[1], node.attrs.stride[0], node.attrs.stride[1],
                                  node.attrs.padding[0], node.attrs.padding[1], node.attrs.dilation[0],
                                  node.attrs.dilation[1]));
      break;
  }
  return parts.empty() ? "" : " {" + fmt::format("{}", fmt::join(parts, ", ")) + "}";
}

std::string entryToString(const Graph& graph, const EntryPoint& entry) {
  std::vector<std::string> args, outs;
  for (NodeId id : entry.arguments) args.push_back(fmt::format("%{} {}", id, graph.node(id).name));
  for (size_t i = 0; i < entry.outputs.size(); ++i)
    outs.push_back(fmt::format("{}=%{}", entry.output_names[i], entry.outputs[i]));
  return fmt::format("entry {}({}) -> ({})\n", entry.name, fmt::join(args, ", "), fmt::join(outs, ", "));
}

}  // namespace

std::string printNodes(const Graph& graph, NodeId first, NodeId last) {
  std::string out;
  for (NodeId id = first; id < last; ++id) {
    const Node& node = graph.node(id);
    std::vector<std::string> operands;
    for (NodeId in : node.inputs) operands.push_back(fmt::format("%{}", in));
    out += fmt::format("%{} = {}({}){} : {}{}", id, opInfo(node.op).name, fmt::join(operands, ", "),
                       attrsToString(node), dtypeName(node.dtype), shapeToString(node.shape));
    out += node.name.empty() ? "\n" : fmt::format("  # {}\n", node.name);
  }
  return out;
}

std::string printForwardGraph(const Graph& graph) {
  NodeId end = std::max(graph.loss, graph.output) + 1;
  return fmt::format("graph {}\n{}loss = %{}\noutput = %{}\n", graph.model_name, printNodes(graph, 0, end),
                     graph.loss, graph.output);
}

std::string printBackwardGraph(const Program& program) {
  const Graph& g = program.graph;
  NodeId forward_end = std::max(g.loss, g.output) + 1;
  std::string out = fmt::format("backward {} (forward is %0..%{})\n", g.model_name, forward_end - 1);
  out += printNodes(g, forward_end, static_cast<NodeId>(g.nodes.size()));
  for (size_t i = 0; i < g.params.size(); ++i)
    out += fmt::format("grad {} = %{}\n", g.params[i].name, program.grads[i]);
  for (const EntryPoint* entry : {&program.train_step, &program.grads_entry, &program.predict})
    out += entryToString(g, *entry);
  return out;
}

}  // namespace nnc
