// A Program is a model's whole graph (forward, backward, optimizer update) plus its entry points.
//
// Entry points and their argument order, relied on by the runtime (runtime/model_spec.h):
//   train_step(inputs..., params..., states..., lr, step scalars...) -> (loss, new params..., new states...)
//   grads(inputs..., params..., [dropout seed, dropout row]) -> (loss, d loss / d trainable params..., new buffers...)
//   predict(features, params...)                    -> (output)
//   update(grads..., trainable params..., states..., lr, Adam's corrections...)
//                                                   -> (new trainable params..., new states...)
//   sample(latent, params...)                       -> (output)   only for a model that marks latent(z)
// train_step = grads followed by update, fused; data-parallel training can call grads, all-reduce the gradients
// (and average the buffers, BatchNorm's running statistics), then update. Buffers are new values the forward pass
// computes from the batch, so grads returns them and update neither takes nor returns them.
#pragma once

#include <string>
#include <vector>

#include "compiler/graph/graph.h"
#include "dsl/checker.h"

namespace nnc {

// The batch trainers evaluate and predict in (runtime/train_loop.cpp).
constexpr int64_t kEvalBatch = 256;

struct EntryPoint {
  std::string name;
  std::vector<NodeId> arguments;  // in ABI order: leaf nodes, or for a kernel of a plan (compiler/plan/plan.h) any node
  std::vector<NodeId> outputs;
  std::vector<std::string> output_names;
  std::vector<std::string> argument_names;  // the pipeline's argument names; empty: the nodes' names
  // A kernel of a plan: other kernels read its results, so the schedule materializes them as the whole entry
  // point's did, and a result no node of the kernel reads is its node's own Func (not a copy of it).
  bool plan_kernel = false;
};

struct StateInfo {
  std::string name;  // e.g. "fc1.weight.momentum_buffer"
  NodeId node = kNoNode;
  size_t param = 0;  // index into graph.params
};

struct Program {
  Graph graph;
  dsl::TrainConfig train;
  std::vector<NodeId> grads;       // one per param; kNoNode for buffers
  std::vector<StateInfo> states;   // optimizer state slots
  NodeId learning_rate = kNoNode;  // Scalar leaf
  // Scalar leaves train_step takes after the learning rate, computed by the runtime each step (Adam's bias
  // corrections 1 - beta1^t and 1 - beta2^t, t the 1-based step; the i32 dropout seed and the batch's first row
  // in the step's global batch); named as in runtime/model_spec.h.
  std::vector<NodeId> step_scalars;
  std::vector<NodeId> new_params;  // one per param: the update, or a buffer's new value
  std::vector<NodeId> new_states;  // one per state
  EntryPoint train_step, grads_entry, predict, update;
  EntryPoint sample;  // the prediction from a latent code in place of the features; no name without latent(z)

  // Every entry point, in the order the trainer's ModelSpec lists them.
  std::vector<const EntryPoint*> entryPoints() const {
    std::vector<const EntryPoint*> entries = {&train_step, &grads_entry, &predict, &update};
    if (!sample.name.empty()) entries.push_back(&sample);
    return entries;
  }
};

// Differentiates the loss, appends the optimizer update and defines the entry points.
Program buildProgram(Graph graph, const dsl::TrainConfig& train);

// Appends the update of `train.optimizer` (SGD, optionally with momentum) to program.graph.
void appendOptimizerUpdate(Program& program);

}  // namespace nnc
