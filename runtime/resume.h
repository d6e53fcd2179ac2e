// The training state beside a checkpoint, for `train --resume`: what a run needs beyond the parameters to
// continue exactly as if it had never stopped.
//
// `train --save CKPT` writes CKPT (parameters and buffers, PyTorch's names, loadable into torch.nn; with early
// stopping, the best epoch's) and CKPT.resume, a safetensors file holding the run's current parameters
// (prefixed "params/"), the optimizer state tensors (ModelSpec::states, by name), for early stopping the best
// epoch's parameters (prefixed "best/"), and in its metadata the step, the seed, the batch size and
// training-set size the step count refers to, the early-stopping record and the metrics history. The rest is
// recomputed from those: the epoch and the position in it (step / steps per epoch), the data order (seeded
// per epoch), the dropout masks (seeded per step), the learning rate (a function of the step). CKPT.resume is
// written atomically and is complete in itself, so a crash at any moment leaves one to resume from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/plot.h"
#include "runtime/tensor.h"

namespace nnc::rt {

struct ResumeState {
  int64_t step = 0;            // optimizer steps taken
  uint64_t seed = 0;
  int64_t batch = 0;
  int64_t train_examples = 0;  // in the training split (after the validation split)
  int64_t best_epoch = 0;      // early stopping: 0 when nothing is recorded
  double best_metric = 0;
  std::vector<Tensor> best_params;
  std::vector<EpochPoint> history;
};

std::string resumePath(const std::string& checkpoint);  // CKPT.resume

// Writes CKPT.resume for the current parameters `params` and optimizer state `states` (ModelSpec orders).
void saveResumeState(const ModelSpec& model, const std::string& checkpoint, const std::vector<Tensor>& params,
                     const std::vector<Tensor>& states, const ResumeState& state);

// Reads CKPT.resume into `params` and `states` and returns the rest, checking that it belongs to `model`.
// Throws DataError naming the file and every problem.
ResumeState loadResumeState(const ModelSpec& model, const std::string& checkpoint, std::vector<Tensor>& params,
                            std::vector<Tensor>& states);

}  // namespace nnc::rt
