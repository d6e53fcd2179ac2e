// The optimizer update as graph nodes, so it is lowered and fused like the rest of the step.
//
// SGD with momentum mu, as torch.optim.SGD does it (dampening 0, no Nesterov):
//   v' = mu * v + g        (v starts at zero; with mu = 0 there is no state and v' = g)
//   p' = p - lr * v'
#include <stdexcept>

#include "compiler/autodiff.h"

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

Program buildProgram(Graph graph, const dsl::TrainConfig& train) {
  Program p;
  p.graph = std::move(graph);
  p.train = train;
  Graph& g = p.graph;

  std::vector<NodeId> param_nodes;
  for (const ParamInfo& param : g.params) param_nodes.push_back(param.node);
  p.grads = differentiate(g, g.loss, param_nodes);
  appendOptimizerUpdate(p);

  std::vector<NodeId> inputs;
  for (const InputInfo& input : g.inputs) inputs.push_back(input.node);

  p.grads_entry.name = "grads";
  p.grads_entry.arguments = inputs;
  p.grads_entry.arguments.insert(p.grads_entry.arguments.end(), param_nodes.begin(), param_nodes.end());
  p.grads_entry.outputs = {g.loss};
  p.grads_entry.output_names = {"loss"};
  for (size_t i = 0; i < g.params.size(); ++i) {
    p.grads_entry.outputs.push_back(p.grads[i]);
    p.grads_entry.output_names.push_back("grad_" + g.params[i].name);
  }

  p.train_step.name = "train_step";
  p.train_step.arguments = p.grads_entry.arguments;
  for (const StateInfo& state : p.states) p.train_step.arguments.push_back(state.node);
  p.train_step.arguments.push_back(p.learning_rate);
  p.train_step.outputs = {g.loss};
  p.train_step.output_names = {"loss"};
  for (size_t i = 0; i < g.params.size(); ++i) {
    p.train_step.outputs.push_back(p.new_params[i]);
    p.train_step.output_names.push_back("new_" + g.params[i].name);
  }
  for (size_t i = 0; i < p.states.size(); ++i) {
    p.train_step.outputs.push_back(p.new_states[i]);
    p.train_step.output_names.push_back("new_" + p.states[i].name);
  }

  p.predict.name = "predict";
  p.predict.arguments = {inputs.front()};
  p.predict.arguments.insert(p.predict.arguments.end(), param_nodes.begin(), param_nodes.end());
  p.predict.outputs = {g.output};
  p.predict.output_names = {"output"};
  return p;
}

}  // namespace nnc
