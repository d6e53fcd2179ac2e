// The optimizer update as graph nodes, so it is lowered and fused like the rest of the step.
//
// SGD with momentum mu, as torch.optim.SGD does it (dampening 0, no Nesterov):
//   v' = mu * v + g        (v starts at zero; with mu = 0 there is no state and v' = g)
//   p' = p - lr * v'
#include <stdexcept>


#include "compiler/program.h"

namespace nnc {

void appendOptimizerUpdate(Program& program) {
  Graph& g = program.graph;
  const dsl::OptimizerConfig& opt = program.train.optimizer;
  if (opt.name != "sgd") throw std::logic_error("internal error: unknown optimizer " + opt.name);

  Node lr;
  lr.op = Op::Scalar;
  lr.name = "lr";
  g.nodes.push_back(lr);
  program.learning_rate = static_cast<NodeId>(g.nodes.size() - 1);

  for (size_t i = 0; i < g.params.size(); ++i) {
    NodeId param = g.params[i].node;
    NodeId step = program.grads[i];
    if (opt.momentum != 0) {
      Node state;
      state.op = Op::State;
      state.attrs.index = static_cast<int64_t>(program.states.size());
      state.shape = g.node(param).shape;
      state.name = g.params[i].name + ".momentum_buffer";
      g.nodes.push_back(state);
      NodeId v = static_cast<NodeId>(g.nodes.size() - 1);
      program.states.push_back({state.name, v, i});
      step = g.add(Op::Add, {g.add(Op::Mul, {g.fill(opt.momentum, {}), v}), step});
      program.new_states.push_back(step);
    }
    program.new_params.push_back(g.add(Op::Sub, {param, g.add(Op::Mul, {program.learning_rate, step})}));
  }
}

}  // namespace nnc
