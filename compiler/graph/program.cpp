// Program assembly: differentiate the loss, append the optimizer update, define the entry points.
#include "compiler/graph/program.h"

#include "compiler/autodiff/autodiff.h"

namespace nnc {

namespace {

// Appends to `entry`'s results the new value of each parameter `wanted` accepts (its update, or a buffer's value
// after the batch).
template <typename Wanted>
void addNewParams(const Program& p, EntryPoint& entry, Wanted wanted) {
  for (size_t i = 0; i < p.graph.params.size(); ++i) {
    if (!wanted(p.graph.params[i])) continue;
    entry.outputs.push_back(p.new_params[i]);
    entry.output_names.push_back("new_" + p.graph.params[i].name);
  }
}

void addNewStates(const Program& p, EntryPoint& entry) {
  for (size_t i = 0; i < p.states.size(); ++i) {
    entry.outputs.push_back(p.new_states[i]);
    entry.output_names.push_back("new_" + p.states[i].name);
  }
}

bool isTrainable(const ParamInfo& param) { return param.trainable; }

}  // namespace

Program buildProgram(Graph graph, const dsl::TrainConfig& train) {
  Program p;
  p.graph = std::move(graph);
  p.train = train;
  Graph& g = p.graph;

  std::vector<NodeId> param_nodes, trainable;
  for (const ParamInfo& param : g.params) {
    param_nodes.push_back(param.node);
    if (param.trainable) trainable.push_back(param.node);
  }
  std::vector<NodeId> trainable_grads = differentiate(g, g.loss, trainable);
  for (size_t i = 0, t = 0; i < g.params.size(); ++i)
    p.grads.push_back(g.params[i].trainable ? trainable_grads[t++] : kNoNode);
  appendOptimizerUpdate(p);
  if (g.dropout_seed != kNoNode) p.step_scalars.insert(p.step_scalars.end(), {g.dropout_seed, g.dropout_row});

  std::vector<NodeId> inputs;
  for (const InputInfo& input : g.inputs) inputs.push_back(input.node);

  p.grads_entry.name = "grads";
  p.grads_entry.arguments = inputs;
  p.grads_entry.arguments.insert(p.grads_entry.arguments.end(), param_nodes.begin(), param_nodes.end());
  if (g.dropout_seed != kNoNode) p.grads_entry.arguments.insert(p.grads_entry.arguments.end(), {g.dropout_seed, g.dropout_row});
  p.grads_entry.outputs = {g.loss};
  p.grads_entry.output_names = {"loss"};
  for (size_t i = 0; i < g.params.size(); ++i) {
    if (!g.params[i].trainable) continue;
    p.grads_entry.outputs.push_back(p.grads[i]);
    p.grads_entry.output_names.push_back("grad_" + g.params[i].name);
  }
  addNewParams(p, p.grads_entry, [](const ParamInfo& param) { return !param.trainable; });

  // The gradients, computed nodes, are the update's arguments under the names grads gives its results.
  p.update.name = "update";
  auto argument = [&](NodeId id, const std::string& name) {
    p.update.arguments.push_back(id);
    p.update.argument_names.push_back(name);
  };
  for (size_t i = 0; i < g.params.size(); ++i)
    if (g.params[i].trainable) argument(p.grads[i], "grad_" + g.params[i].name);
  for (size_t i = 0; i < g.params.size(); ++i)
    if (g.params[i].trainable) argument(g.params[i].node, g.node(g.params[i].node).name);
  for (const StateInfo& state : p.states) argument(state.node, g.node(state.node).name);
  argument(p.learning_rate, g.node(p.learning_rate).name);
  for (NodeId scalar : p.step_scalars)
    if (scalar != g.dropout_seed && scalar != g.dropout_row) argument(scalar, g.node(scalar).name);
  addNewParams(p, p.update, isTrainable);
  addNewStates(p, p.update);

  p.train_step.name = "train_step";
  p.train_step.arguments = inputs;
  p.train_step.arguments.insert(p.train_step.arguments.end(), param_nodes.begin(), param_nodes.end());
  for (const StateInfo& state : p.states) p.train_step.arguments.push_back(state.node);
  p.train_step.arguments.push_back(p.learning_rate);
  p.train_step.arguments.insert(p.train_step.arguments.end(), p.step_scalars.begin(), p.step_scalars.end());
  p.train_step.outputs = {g.loss};
  p.train_step.output_names = {"loss"};
  addNewParams(p, p.train_step, [](const ParamInfo&) { return true; });
  addNewStates(p, p.train_step);

  p.predict.name = "predict";
  p.predict.arguments = {inputs.front()};
  p.predict.arguments.insert(p.predict.arguments.end(), param_nodes.begin(), param_nodes.end());
  p.predict.outputs = {g.output};
  p.predict.output_names = {"output"};

  if (g.latent != kNoNode) {  // the eval-mode prediction from the latent code on, read as an argument
    p.sample.name = "sample";
    p.sample.arguments = {g.latent};
    p.sample.arguments.insert(p.sample.arguments.end(), param_nodes.begin(), param_nodes.end());
    p.sample.argument_names = {"latent"};
    for (NodeId param : param_nodes) p.sample.argument_names.push_back(g.node(param).name);
    p.sample.outputs = {g.output};
    p.sample.output_names = {"output"};
  }
  return p;
}

}  // namespace nnc
