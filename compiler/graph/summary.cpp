// Model summary: Program + checked AST -> ModelSummary -> table or JSON; see summary.h.
//
//   1. Rows: walk the model's statements in source order. A binding's row shows the node build_graph named after
//      it (the last forward node carrying its name, or an alias's name, after the previous row's node); a `param`
//      statement's row shows its parameter. Parameters are grouped under the row named by their first path
//      component (`fc1.weight` -> `fc1`, `block1.fc.weight` -> `block1`).
//   2. FLOPs: mark the nodes the loss and output need (forward) and the appended nodes the gradients need
//      (backward), and add up each op's `flops` rule at the train block's batch size.
//   3. Activation memory: the forward non-leaf values that a needed backward node reads.
#include "compiler/graph/summary.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

namespace nnc {

namespace {

using Json = nlohmann::ordered_json;  // keeps keys in the order written

std::string firstPathComponent(const std::string& name) { return name.substr(0, name.find('.')); }

// The names that may carry binding `name`'s node: its own, and those of bindings that alias it (`h = fc1` renames
// fc1's node to `h`), followed transitively.
std::vector<std::string> namesOf(const std::string& name, const std::vector<dsl::Stmt>& body) {
  std::vector<std::string> names = {name};
  for (size_t i = 0; i < names.size(); ++i)
    for (const dsl::Stmt& stmt : body)
      if (stmt.kind == dsl::StmtKind::Binding && stmt.value->kind == dsl::ExprKind::Name &&
          stmt.value->text == names[i])
        names.push_back(stmt.name);
  return names;
}

// Step 1: one row per `param` and binding statement; `nodes` maps each name seen so far to its node.
std::vector<SummaryRow> summarizeRows(const Graph& g, const dsl::ModelDecl& model) {
  NodeId forward_end = g.trainForwardEnd();
  std::map<std::string, NodeId> nodes;
  for (const InputInfo& input : g.inputs) nodes[input.name] = input.node;
  for (const ParamInfo& param : g.params) nodes[param.name] = param.node;
  std::vector<SummaryRow> rows;
  NodeId previous = -1;
  for (const dsl::Stmt& stmt : model.body) {
    if (stmt.kind == dsl::StmtKind::Return) continue;
    SummaryRow row{stmt.name, "param", {}, 0};
    NodeId id = kNoNode;
    if (stmt.kind == dsl::StmtKind::Param) {
      id = nodes.count(stmt.name) ? nodes[stmt.name] : kNoNode;
    } else if (stmt.value->kind == dsl::ExprKind::Name) {
      row.op = "alias";
      id = nodes.count(stmt.value->text) ? nodes[stmt.value->text] : kNoNode;
    } else {
      std::vector<std::string> names = namesOf(stmt.name, model.body);
      for (NodeId n = previous + 1; n < forward_end; ++n)
        if (opInfo(g.node(n).op).family != OpFamily::Leaf &&
            std::find(names.begin(), names.end(), g.node(n).name) != names.end())
          id = n;
      if (id != kNoNode) previous = id;
      bool is_call = stmt.value->kind == dsl::ExprKind::Call;
      row.op = is_call ? stmt.value->text : id != kNoNode ? opInfo(g.node(id).op).name : "?";
    }
    if (id != kNoNode) row.shape = g.node(id).shape;
    nodes[stmt.name] = id;
    rows.push_back(std::move(row));
  }
  for (const ParamInfo& param : g.params) {
    if (!param.trainable) continue;
    std::string owner = firstPathComponent(param.name);
    auto it = std::find_if(rows.begin(), rows.end(), [&](const SummaryRow& r) { return r.name == owner; });
    if (it == rows.end()) it = rows.insert(rows.end(), SummaryRow{owner, "param", {}, 0});
    it->params += elementCount(g.node(param.node).shape, 1);
  }
  return rows;
}

// Steps 2 and 3.
void summarizeCosts(const Program& p, ModelSummary& s) {
  const Graph& g = p.graph;
  NodeId forward_end = g.forwardEnd();
  std::vector<bool> forward = ancestors(g, {g.loss, g.train_output});
  std::vector<bool> backward = ancestors(g, p.grads);
  std::vector<bool> saved(g.nodes.size(), false);
  double forward_flops = 0, backward_flops = 0;
  for (NodeId id = 0; id < static_cast<NodeId>(g.nodes.size()); ++id) {
    if (id < forward_end && forward[id]) forward_flops += flops(g, id, s.batch);
    if (id < forward_end || !backward[id]) continue;
    backward_flops += flops(g, id, s.batch);
    for (NodeId in : g.node(id).inputs)
      if (in < forward_end && opInfo(g.node(in).op).family != OpFamily::Leaf) saved[in] = true;
  }
  for (NodeId id = 0; id < forward_end; ++id)
    if (saved[id]) s.activation_bytes += 4 * elementCount(g.node(id).shape, s.batch);  // f32 and i32 alike
  s.forward_flops_per_example = forward_flops / static_cast<double>(s.batch);
  s.backward_flops_per_example = backward_flops / static_cast<double>(s.batch);
}

// 1234567 -> "1,234,567"
std::string withCommas(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

std::string flopsText(double value) { return withCommas(std::llround(value)); }

// 2560 -> "2.5 KiB", 399872 -> "0.38 MiB": MiB from a hundredth of one up, KiB below.
std::string bytesText(int64_t bytes) {
  double mib = static_cast<double>(bytes) / (1024.0 * 1024.0);
  if (mib >= 0.01) return fmt::format("{:.2f} MiB", mib);
  return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024.0);
}

// A whole number as a JSON integer, anything else as a JSON float.
Json number(double value) {
  if (std::floor(value) == value) return static_cast<int64_t>(value);
  return value;
}

Json shapeJson(const Shape& shape) {
  Json dims = Json::array();
  for (const Dim& dim : shape) {
    if (dim.isSymbolic()) dims.push_back(dim.symbol);
    else dims.push_back(dim.extent);
  }
  return dims;
}

}  // namespace

ModelSummary summarize(const Program& program, const dsl::CheckedModule& module) {
  const Graph& g = program.graph;
  ModelSummary s;
  s.model = g.model_name;
  s.batch = program.train.batch;
  for (const InputInfo& input : g.inputs) {
    const Node& node = g.node(input.node);
    s.inputs.push_back({input.name, node.dtype, node.shape});
  }
  s.rows = summarizeRows(g, *module.model);
  for (size_t i = 0; i < g.params.size(); ++i) {
    if (!g.params[i].trainable) continue;  // buffers are state, not parameters (as in PyTorch's counts)
    int64_t count = elementCount(g.node(g.params[i].node).shape, 1);
    s.total_params += count;
    if (i < program.new_params.size() && program.new_params[i] != g.params[i].node) s.trainable_params += count;
  }
  summarizeCosts(program, s);
  return s;
}

std::string renderSummaryTable(const ModelSummary& s) {
  std::vector<std::string> inputs;
  for (const SummaryInput& input : s.inputs)
    inputs.push_back(fmt::format("{}: {}{}", input.name, dtypeName(input.dtype), shapeToString(input.shape)));
  std::string out = fmt::format("model {}({})\n\n", s.model, fmt::join(inputs, ", "));

  std::vector<std::array<std::string, 4>> cells = {{"binding", "op", "output shape", "params"}};
  for (const SummaryRow& row : s.rows)
    cells.push_back({row.name, row.op, row.shape ? shapeToString(*row.shape) : "?", withCommas(row.params)});
  std::array<size_t, 4> width{};
  for (const auto& line : cells)
    for (size_t c = 0; c < 4; ++c) width[c] = std::max(width[c], line[c].size());
  auto emitLine = [&](const std::array<std::string, 4>& line) {
    out += fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>{}}\n", line[0], width[0], line[1], width[1], line[2], width[2],
                       line[3], width[3]);
  };
  emitLine(cells[0]);
  emitLine({std::string(width[0], '-'), std::string(width[1], '-'), std::string(width[2], '-'),
            std::string(width[3], '-')});
  for (size_t i = 1; i < cells.size(); ++i) emitLine(cells[i]);

  out += fmt::format("\ntotal parameters: {} (trainable: {})\n", withCommas(s.total_params),
                     withCommas(s.trainable_params));
  out += fmt::format("forward FLOPs per example: {}\n", flopsText(s.forward_flops_per_example));
  out += fmt::format("backward FLOPs per example: {}\n", flopsText(s.backward_flops_per_example));
  out += fmt::format("activation memory at batch {}: {} ({} bytes)\n", s.batch, bytesText(s.activation_bytes),
                     withCommas(s.activation_bytes));
  if (!s.target.empty())
    out += fmt::format("target: {}\n  needs CPU features: {}\n", s.target, fmt::join(s.target_cpu_features, ", "));
  if (s.plan_arena_bytes)
    out += fmt::format("train_step's intermediates as a plan at batch {}: {} in a planned arena, {} at most with "
                       "one kernel's own, {} unshared\n",
                       s.batch, bytesText(s.plan_arena_bytes), bytesText(s.plan_peak_bytes),
                       bytesText(s.plan_intermediate_bytes));
  out += "\nnotes: a multiply-add is 2 FLOPs, an elementwise op 1 per element (exp and log included); FLOPs are\n"
         "       counted at the train block's batch size and divided by it.\n"
         "       backward FLOPs count the nodes autodiff appended that the gradients need, not the optimizer update.\n"
         "       activation memory counts the forward values the backward pass reads (inputs and parameters\n"
         "       excluded), 4 bytes per element.\n";
  return out;
}

std::string renderSummaryJson(const ModelSummary& s) {
  Json j;
  j["model"] = s.model;
  j["inputs"] = Json::array();
  for (const SummaryInput& input : s.inputs)
    j["inputs"].push_back({{"name", input.name}, {"dtype", dtypeName(input.dtype)}, {"shape", shapeJson(input.shape)}});
  j["bindings"] = Json::array();
  for (const SummaryRow& row : s.rows) {
    Json shape = row.shape ? shapeJson(*row.shape) : Json();  // null: unknown
    j["bindings"].push_back({{"name", row.name}, {"op", row.op}, {"shape", shape}, {"params", row.params}});
  }
  j["total_params"] = s.total_params;
  j["trainable_params"] = s.trainable_params;
  j["forward_flops_per_example"] = number(s.forward_flops_per_example);
  j["backward_flops_per_example"] = number(s.backward_flops_per_example);
  j["activation_bytes"] = s.activation_bytes;
  j["batch"] = s.batch;
  if (!s.target.empty()) {
    j["target"] = s.target;
    j["target_cpu_features"] = s.target_cpu_features;
  }
  if (s.plan_arena_bytes) {
    j["plan_arena_bytes"] = s.plan_arena_bytes;
    j["plan_peak_bytes"] = s.plan_peak_bytes;
    j["plan_intermediate_bytes"] = s.plan_intermediate_bytes;
  }
  return j.dump(2) + "\n";
}

}  // namespace nnc
