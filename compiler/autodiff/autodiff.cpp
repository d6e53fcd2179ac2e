// Graph-level reverse-mode autodiff; see autodiff.h for the algorithm.
#include "compiler/autodiff/autodiff.h"

#include <stdexcept>

namespace nnc {

namespace {

// Nodes that lie on a path from any node in `wrt` to `loss`.
std::vector<bool> nodesNeedingAdjoints(const Graph& g, NodeId loss, const std::vector<NodeId>& wrt) {
  std::vector<bool> depends_on_wrt(g.nodes.size(), false);
  for (NodeId id : wrt) depends_on_wrt[id] = true;
  for (NodeId id = 0; id <= loss; ++id)
    for (NodeId in : g.node(id).inputs) depends_on_wrt[id] = depends_on_wrt[id] || depends_on_wrt[in];
  std::vector<bool> feeds_loss(g.nodes.size(), false);
  feeds_loss[loss] = true;
  for (NodeId id = loss; id >= 0; --id)
    if (feeds_loss[id])
      for (NodeId in : g.node(id).inputs) feeds_loss[in] = true;
  std::vector<bool> needed(g.nodes.size(), false);
  for (NodeId id = 0; id <= loss; ++id) needed[id] = depends_on_wrt[id] && feeds_loss[id];
  return needed;
}

}  // namespace

std::vector<NodeId> differentiate(Graph& g, NodeId loss, const std::vector<NodeId>& wrt) {
  if (!g.node(loss).shape.empty()) throw std::logic_error("internal error: differentiate needs a scalar loss");
  std::vector<bool> needed = nodesNeedingAdjoints(g, loss, wrt);
  std::vector<NodeId> adjoint(g.nodes.size(), kNoNode);
  adjoint[loss] = g.fill(1.0, {}, g.node(loss).span);
  g.markOrigin(adjoint[loss], loss);

  for (NodeId id = loss; id >= 0; --id) {
    if (!needed[id] || adjoint[id] == kNoNode || g.node(id).inputs.empty()) continue;
    const std::vector<NodeId> inputs = g.node(id).inputs;
    std::vector<bool> wanted;
    for (NodeId in : inputs) wanted.push_back(needed[in]);
    NodeId first_new = static_cast<NodeId>(g.nodes.size());
    std::vector<NodeId> contributions = vjp(g, id, adjoint[id], wanted);
    for (size_t i = 0; i < inputs.size(); ++i) {
      NodeId in = inputs[i];
      NodeId contribution = contributions[i];
      if (contribution == kNoNode || !needed[in]) continue;
      const Node& input = g.node(in);
      dsl::Span span = g.node(id).span;
      if (g.node(contribution).shape != input.shape) {
        Attrs to;
        to.shape = input.shape;
        contribution = g.add(Op::SumTo, {contribution}, to, {}, span);
      }
      adjoint[in] = adjoint[in] == kNoNode ? contribution : g.add(Op::Add, {adjoint[in], contribution}, {}, {}, span);
    }
    g.markOrigin(first_new, id);
  }

  std::vector<NodeId> grads;
  for (NodeId id : wrt) {
    if (adjoint[id] == kNoNode) adjoint[id] = g.fill(0.0, g.node(id).shape);
    grads.push_back(adjoint[id]);
  }
  return grads;
}

}  // namespace nnc
