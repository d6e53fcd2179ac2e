// Predictions from outputs; see predictions.h.
#include "runtime/predictions.h"

#include <math.h>  // the C functions: no libstdc++ for the inference library
#include <string.h>

namespace nnc::rt {

void classLogProbabilities(const float* row, int64_t columns, double* log_p) {
  if (columns == 1) {  // log sigmoid(-z), log sigmoid(z), each as -softplus, stable for large |z|
    auto softplus = [](double v) { return v > 0 ? v + log1p(exp(-v)) : log1p(exp(v)); };
    log_p[0] = -softplus(row[0]);
    log_p[1] = -softplus(-row[0]);
    return;
  }
  double top = row[0], sum = 0;
  for (int64_t c = 1; c < columns; ++c) top = row[c] > top ? row[c] : top;
  for (int64_t c = 0; c < columns; ++c) sum += exp(static_cast<double>(row[c]) - top);
  for (int64_t c = 0; c < columns; ++c) log_p[c] = row[c] - top - log(sum);
}

void classProbabilities(const float* outputs, int64_t rows, int64_t columns, float* probabilities, double* log_p) {
  int64_t classes = classCount(columns);
  for (int64_t r = 0; r < rows; ++r) {
    classLogProbabilities(outputs + r * columns, columns, log_p);
    for (int64_t c = 0; c < classes; ++c) probabilities[r * classes + c] = static_cast<float>(exp(log_p[c]));
  }
}

bool criterionTakesLogits(const char* criterion) {
  return strcmp(criterion, "binary_cross_entropy_with_logits") == 0;
}

double logitProbability(double z) { return 1 / (1 + exp(-z)); }

void predictedValues(const char* criterion, float* outputs, int64_t count) {
  if (!criterionTakesLogits(criterion)) return;
  for (int64_t i = 0; i < count; ++i) outputs[i] = static_cast<float>(logitProbability(outputs[i]));
}

void normalizeExamples(const float* offset, const float* scale, float* examples, int64_t count, int64_t features) {
  for (int64_t i = 0; i < count; ++i)
    for (int64_t f = 0; f < features; ++f) {
      float& x = examples[i * features + f];
      x = (x - offset[f]) * scale[f];
    }
}

}  // namespace nnc::rt
