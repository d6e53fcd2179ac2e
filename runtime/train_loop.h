// The training loop and evaluation, driven by the trainer's command line.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "runtime/data_source.h"
#include "runtime/dataset.h"
#include "runtime/kernels.h"
#include "runtime/lr_schedule.h"
#include "runtime/predictions.h"  // classLogProbabilities

namespace nnc::rt {

struct TrainOptions {
  std::string data;
  int64_t epochs = 1;
  std::optional<int64_t> max_steps;
  int64_t batch = 64;
  double lr = 0.01;
  ScheduleOptions schedule;
  double validation_split = 0;
  int64_t patience = 0;              // early stopping; 0: off
  std::string monitor = "val_loss";  // or val_accuracy
  std::string plot;                  // SVG of the curves, rewritten after each epoch; empty: none
  uint64_t seed = 0;
  bool shuffle = true;
  std::string label_column = "label";  // CSV data
  std::string normalize = "none";      // none, scale, standardize (runtime/preprocess.h)
  double augment_flip = 0;
  int64_t augment_shift = 0;
  std::string init;     // checkpoint to start from; empty: initializers
  std::string resume;   // checkpoint (with CKPT.resume beside it) to continue exactly; empty: a new run
  std::string save;     // where the parameters (and CKPT.resume) go after every epoch
  int64_t save_every = 0;  // and every this many steps too; 0: per epoch only
  std::string metrics;  // JSON-lines file appended per epoch; empty: none
  bool split_step = false;  // each step as grads then update (splitTrainStep), not the fused train_step
  // Data-parallel training: gradients all-reduced in buckets of this many bytes while grads computes the rest
  // (runtime/rank_average.h); 0: all at once after grads.
  size_t bucket_bytes = 0;
};

// The exit code of a run stopped by SIGINT or SIGTERM, as a shell reports a process killed by SIGINT.
constexpr int kInterruptedExit = 130;

// What the model's output is (ModelSpec::task), and so what its data holds and what evaluation measures.
enum class Task { Classify, Regress, Reconstruct };
Task modelTask(const ModelSpec& model);
// What the model needs from a data directory: labels, float targets or neither (its task), and for a model of
// token ids, text windows of its sequence length.
DataRequest dataRequest(const ModelSpec& model, const std::string& label_column);

struct EvalResult {
  double loss = 0;  // a classifier: the cross-entropy of its class probabilities; else its criterion
                    // (ModelSpec::criterion), the term of the model's loss that compares prediction and target
  double accuracy = NAN;        // a classifier
  double mse = NAN, mae = NAN;  // a regressor or reconstruction: of the predicted values (for a criterion on
                                // logits, their sigmoid) against the targets, over every element
  double r2 = NAN;              // a regressor: R², averaged over the target's elements (sklearn's r2_score)
  int64_t count = 0;
  // The score that rises as the model improves: accuracy, R², or NaN (a reconstruction has none).
  double score() const { return std::isnan(accuracy) ? r2 : accuracy; }
};

// Checks that a dataset fits the model's inputs (features per example, label range, target size); throws
// DataError.
void checkDatasetFits(const ModelSpec& model, const Dataset& data, const std::string& where);

// The features of one example: the product of the model input's dimensions after the batch.
int64_t featuresPerExample(const ModelSpec& model);
// The output's values per example: the product of its dimensions after the batch.
int64_t outputSize(const ModelSpec& model);
// A classifier's labels per example: 1, or one per position of a sequence model ([B, T, C] logits: T).
int64_t labelsPerExample(const ModelSpec& model);

// The classes a model predicts: its output's last dimension, or 2 when that is a single logit z (binary
// classification: class 1 with probability sigmoid(z)).
int64_t outputClasses(const ModelSpec& model);
// The output's last dimension (1 for a single logit).
int64_t outputColumns(const ModelSpec& model);

// "test_loss 0.3012  test_accuracy 0.8912": what evaluate measured on `split`, as the trainer prints it (a
// classifier's loss and accuracy; a regressor's criterion, MSE, MAE and R², a reconstruction's criterion and MSE).
std::string evalText(const std::string& split, const EvalResult& result, Task task);

// A regressor's or reconstruction's predicted values from its outputs, in place: the sigmoid of logits when its
// criterion takes logits, else the outputs as they are.
void predictedValues(const ModelSpec& model, float* outputs, int64_t count);

// Evaluates the model's predictions on a whole dataset, in batches (shared among the ranks of a data-parallel run).
EvalResult evaluate(const ModelSpec& model, const std::vector<Tensor>& params, const Dataset& data, int64_t batch);

// Trains as the options say, printing progress and a line per epoch. Output paths are checked before any work
// (checkOutputPath). Returns the process exit code: 0; 1 when the loss stopped being finite; kInterruptedExit
// when SIGINT or SIGTERM came: the current step finishes, the checkpoint and CKPT.resume are saved (when saving)
// and the run stops there (a second signal exits at once).
int train(const ModelSpec& model, const TrainOptions& options);

}  // namespace nnc::rt
