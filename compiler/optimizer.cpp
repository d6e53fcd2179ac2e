// The optimizer update as graph nodes, so it is lowered and fused like the rest of the step.
//
// SGD as torch.optim.SGD computes it (dampening 0), with weight decay wd, momentum mu and Nesterov momentum:
//   g' = g + wd * p                      (wd = 0: g' = g)
//   v' = mu * v + g'                     (v starts at zero; mu = 0: no state and v' = g')
//   step = nesterov ? g' + mu * v' : v'
//   p' = p - lr * step
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
    if (opt.weight_decay != 0) step = g.add(Op::Add, {step, g.add(Op::Mul, {g.fill(opt.weight_decay, {}), param})});
    if (opt.momentum != 0) {
      Node state;
      state.op = Op::State;
      state.attrs.index = static_cast<int64_t>(program.states.size());
      state.shape = g.node(param).shape;
      state.name = g.params[i].name + ".momentum_buffer";
      g.nodes.push_back(state);
      NodeId v = static_cast<NodeId>(g.nodes.size() - 1);
      program.states.push_back({state.name, v, i});
      NodeId mu = g.fill(opt.momentum, {});
      NodeId velocity = g.add(Op::Add, {g.add(Op::Mul, {mu, v}), step});
      program.new_states.push_back(velocity);
      step = opt.nesterov ? g.add(Op::Add, {step, g.add(Op::Mul, {mu, velocity})}) : velocity;
    }
    program.new_params.push_back(g.add(Op::Sub, {param, g.add(Op::Mul, {program.learning_rate, step})}));
  }
}

}  // namespace nnc
