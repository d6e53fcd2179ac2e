// Text form of the graph IR; see graph_printer.h.
#include "compiler/graph/graph_printer.h"

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
  if (node.op == Op::DropoutMask) {
    parts.push_back(fmt::format("p={}", attrs.alpha));
    parts.push_back(fmt::format("site={}", attrs.index));
  }
  if (node.op == Op::RandNormal) parts.push_back(fmt::format("site={}", attrs.index));
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
      if (node.op == Op::Slice) parts.push_back(fmt::format("range=[{}, {})", node.attrs.start, node.attrs.end));
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
  for (size_t i = 0; i < entry.arguments.size(); ++i)  // update's gradients are computed nodes, named as arguments
    args.push_back(fmt::format("%{} {}", entry.arguments[i],
                               entry.argument_names.empty() ? graph.node(entry.arguments[i]).name : entry.argument_names[i]));
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
    std::string note = nodeNote(graph, id);
    out += note.empty() ? "\n" : fmt::format("  # {}\n", note);
  }
  return out;
}

std::string nodeNote(const Graph& graph, NodeId id) {
  const Node& node = graph.node(id);
  if (node.origin == kNoNode || (opInfo(node.op).family == OpFamily::Leaf && !node.name.empty())) return node.name;
  const Node& origin = graph.node(node.origin);
  if (origin.op == Op::Param) return fmt::format("update of %{} {}", node.origin, origin.name);
  return fmt::format("backward of %{} {}{}", node.origin, opInfo(origin.op).name,
                     origin.name.empty() ? "" : " (" + origin.name + ")");
}

std::string printForwardGraph(const Graph& graph) {
  std::string out = fmt::format("graph {}\n{}", graph.model_name, printNodes(graph, 0, graph.forwardEnd()));
  out += fmt::format("loss = %{}\noutput = %{}\n", graph.loss, graph.output);
  if (graph.train_output != graph.output) out += fmt::format("train output = %{}\n", graph.train_output);
  for (const ParamInfo& param : graph.params)
    if (param.update != kNoNode) out += fmt::format("update {} = %{}\n", param.name, param.update);
  return out;
}

std::string printBackwardGraph(const Program& program) {
  const Graph& g = program.graph;
  NodeId forward_end = g.forwardEnd();
  std::string out = fmt::format("backward {} (forward is %0..%{})\n", g.model_name, forward_end - 1);
  out += printNodes(g, forward_end, static_cast<NodeId>(g.nodes.size()));
  for (size_t i = 0; i < g.params.size(); ++i)
    if (program.grads[i] != kNoNode) out += fmt::format("grad {} = %{}\n", g.params[i].name, program.grads[i]);
  for (const EntryPoint* entry : program.entryPoints())
    out += entryToString(g, *entry);
  return out;
}

std::string printDot(const Program& program, bool backward) {
  const Graph& g = program.graph;
  NodeId forward_end = g.forwardEnd();
  NodeId end = backward ? static_cast<NodeId>(g.nodes.size()) : forward_end;
  auto escape = [](const std::string& text) {
    std::string out;
    for (char c : text) out += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
    return out;
  };
  auto nodeLine = [&](NodeId id, const char* fill) {
    const Node& node = g.node(id);
    std::string label = escape(fmt::format("%{} {}{}", id, opInfo(node.op).name, attrsToString(node))) + "\\n" +
                        escape(fmt::format("{}{}", dtypeName(node.dtype), shapeToString(node.shape)));
    std::string note = nodeNote(g, id);
    if (!note.empty()) label += "\\n" + escape(note);
    const char* shape = opInfo(node.op).family == OpFamily::Leaf ? "box" : "box, style=\"rounded,filled\"";
    return fmt::format("    n{} [label=\"{}\", shape={}, fillcolor=\"{}\"{}];\n", id, label, shape, fill,
                       opInfo(node.op).family == OpFamily::Leaf ? ", style=filled" : "");
  };
  // Three clusters: the forward pass, the backward pass autodiff appended, the optimizer update.
  std::string out = fmt::format("digraph \"{}\" {{\n  node [fontname=\"Helvetica\", fontsize=10];\n", escape(g.model_name));
  std::string forward, gradient, update;
  for (NodeId id = 0; id < end; ++id) {
    const Node& node = g.node(id);
    bool is_update = node.origin != kNoNode && g.node(node.origin).op == Op::Param;
    if (id < forward_end || (node.origin == kNoNode && opInfo(node.op).family == OpFamily::Leaf))
      forward += nodeLine(id, "#dbe9f6");
    else if (is_update) update += nodeLine(id, "#e2f0d9");
    else gradient += nodeLine(id, "#f8dcdc");
  }
  out += "  subgraph cluster_forward {\n    label=\"forward\";\n" + forward + "  }\n";
  if (backward) {
    out += "  subgraph cluster_backward {\n    label=\"backward (each node names the forward node whose VJP made it)\";\n" +
           gradient + "  }\n";
    out += "  subgraph cluster_update {\n    label=\"optimizer update\";\n" + update + "  }\n";
  }
  for (NodeId id = 0; id < end; ++id)
    for (NodeId in : g.node(id).inputs) out += fmt::format("  n{} -> n{};\n", in, id);
  // The values the entry points return, as labelled sinks.
  std::vector<std::pair<std::string, NodeId>> results = {{"loss", g.loss}, {"output", g.output}};
  if (backward)
    for (size_t i = 0; i < g.params.size(); ++i)
      if (program.grads[i] != kNoNode) results.push_back({"grad " + g.params[i].name, program.grads[i]});
  for (size_t i = 0; i < results.size(); ++i)
    out += fmt::format("  r{} [label=\"{}\", shape=plaintext];\n  n{} -> r{} [style=dashed];\n", i,
                       escape(results[i].first), results[i].second, i);
  return out + "}\n";
}

}  // namespace nnc
