// What `predict` makes of a model's outputs, and of its inputs before the kernels: shared by the trainer
// (trainer_cli.cpp, train_loop.cpp, preprocess.cpp) and the inference library (predict_library.h), so both give
// the same floats. Free of the C++ standard library.
#pragma once

#include <cstdint>

namespace nnc::rt {

// The rows `predict` runs its kernels on at once, in the trainer and in the inference library alike: reductions
// whose loops depend on the batch then add in the same order, and both give the same floats.
constexpr int64_t kPredictBatch = 256;

// The log class probabilities of one output row of `columns` values: log softmax, or for a single logit
// log(1 - sigmoid(z)), log sigmoid(z). `log_p` has room for classCount(columns) values.
void classLogProbabilities(const float* row, int64_t columns, double* log_p);

// The classes of a classifier with `columns` outputs per position: a single logit stands for two.
inline int64_t classCount(int64_t columns) { return columns < 2 ? 2 : columns; }

// Class probabilities of `rows` output rows of `columns` values, [rows, classCount(columns)]; `log_p` is
// scratch for classCount(columns) values.
void classProbabilities(const float* outputs, int64_t rows, int64_t columns, float* probabilities, double* log_p);

// Whether a regressor's or reconstruction's loss `criterion` (ModelSpec::criterion) takes logits.
bool criterionTakesLogits(const char* criterion);
// The probability of logit z.
double logitProbability(double z);
// A regressor's or reconstruction's predicted values from its outputs, in place: the sigmoid of logits when its
// criterion takes logits, else the outputs as they are.
void predictedValues(const char* criterion, float* outputs, int64_t count);

// x' = (x - offset[f]) * scale[f] for feature f of `count` examples of `features` floats, in place.
void normalizeExamples(const float* offset, const float* scale, float* examples, int64_t count, int64_t features);

}  // namespace nnc::rt
