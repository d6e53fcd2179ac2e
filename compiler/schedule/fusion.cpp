// Fusion decisions shared by the schedules; see fusion.h.
#include "compiler/schedule/fusion.h"

#include <algorithm>

#include "compiler/lower/lower_conv.h"

namespace nnc {

Uses countUses(const Graph& graph, const LoweredEntry& lowered) {
  Uses uses;
  for (const auto& [id, _] : lowered.nodes) {
    if (isArgument(lowered, id)) continue;
    const Node& user = graph.node(id);
    std::vector<NodeId> inputs = user.inputs;
    if (auto bias = lowered.bias_in_grad_weight.find(id); bias != lowered.bias_in_grad_weight.end())
      inputs = {bias->second};  // a bias gradient read from its weight gradient's sums
    for (size_t k = 0; k < inputs.size(); ++k) {
      NodeId in = inputs[k];
      uses.count[in]++;
      uses.last_user[in] = id;
      if (opInfo(user.op).family == OpFamily::MatMul) uses.by_matmul[in] = true;
      if (opInfo(user.op).family != OpFamily::Conv) continue;
      if (k == 0 && windowTilesInput(user)) uses.by_tiling_pool[in]++;
      else if (!readsThroughCopy(user, k)) uses.by_window[in] = true;
    }
  }
  if (lowered.plan_kernel) uses.by_kernels.insert(lowered.output_nodes.begin(), lowered.output_nodes.end());
  return uses;
}

bool materializedLayout(const Uses& uses, NodeId id) {
  return (uses.by_matmul.count(id) && uses.by_matmul.at(id)) || uses.by_kernels.count(id);
}

bool isOutput(const LoweredEntry& lowered, NodeId id) {
  return std::find(lowered.output_nodes.begin(), lowered.output_nodes.end(), id) != lowered.output_nodes.end();
}

// Whether an elementwise node is computed at root: when it has several consumers (other than pools whose windows
// tile it, which read each element once: LeNet-5's relu before max pooling and its arg-max, where materializing
// cost a pass over 1.2 MB, more than Zen 5's 1 MB L2), or feeds a matmul or a window that rereads it (not one
// that reads it through a copy, readsThroughCopy).
bool elementwiseAtRoot(const Uses& uses, NodeId id) {
  auto count = [](const std::map<NodeId, int>& m, NodeId id) { return m.count(id) ? m.at(id) : 0; };
  auto flag = [](const std::map<NodeId, bool>& m, NodeId id) { return m.count(id) && m.at(id); };
  bool only_tiling_pools = count(uses.by_tiling_pool, id) == count(uses.count, id);
  return (count(uses.count, id) > 1 && !only_tiling_pools) || flag(uses.by_matmul, id) || flag(uses.by_window, id) ||
         uses.by_kernels.count(id);
}

Halide::Var fuseBatchEntries(Halide::Stage out, size_t rank) {
  Halide::Var entry = dimVars()[2];
  for (size_t d = 3; d < rank; ++d) {
    Halide::Var fused("entry" + std::to_string(d));
    out.fuse(entry, dimVars()[d], fused);
    entry = fused;
  }
  return entry;
}

}  // namespace nnc
