// The rank-weighted average of gradients; see rank_average.h.
#include "runtime/rank_average.h"

#include <algorithm>
#include <limits>

#include "runtime/distributed.h"

namespace nnc::rt {

namespace {
constexpr size_t kUnpacked = std::numeric_limits<size_t>::max();
}

void RankAverage::begin(std::vector<Tensor>& results, int64_t rows) {
  results_ = &results;
  rows_ = static_cast<float>(rows);
  size_t total = 2;  // the loss and the rows, at the end
  for (const Tensor& tensor : results) total += tensor.number_of_elements();
  packed_.resize(total);
  place_.assign(results.size(), kUnpacked);
  packed_end_ = sent_ = 0;
}

void RankAverage::pack(size_t r) {
  const Tensor& tensor = (*results_)[r];
  size_t n = tensor.number_of_elements();
  float* out = packed_.data() + packed_end_;
  if (rows_ == 0) std::fill_n(out, n, 0.f);  // placeholders: not even a NaN may leak into the sum
  else for (size_t i = 0; i < n; ++i) out[i] = tensor.data()[i] * rows_;
  place_[r] = packed_end_;
  packed_end_ += n;
}

void RankAverage::send(size_t upto) {
  startSum(packed_.data() + sent_, upto - sent_);
  sent_ = upto;
}

void RankAverage::finished(size_t r) {
  pack(r);
  if (packed_end_ - sent_ >= bucket_floats_) send(packed_end_);
}

void RankAverage::progress() { progressSums(); }

float RankAverage::end(float loss) {
  for (size_t r = 0; r < place_.size(); ++r)
    if (place_[r] == kUnpacked) pack(r);
  packed_[packed_end_] = rows_ == 0 ? 0.f : loss * rows_;
  packed_[packed_end_ + 1] = rows_;
  send(packed_end_ + 2);
  waitSums();
  float all_rows = packed_[packed_end_ + 1];
  for (size_t r = 0; r < place_.size(); ++r) {
    Tensor& tensor = (*results_)[r];
    const float* sums = packed_.data() + place_[r];
    for (size_t i = 0, n = tensor.number_of_elements(); i < n; ++i) tensor.data()[i] = sums[i] / all_rows;
  }
  return packed_[packed_end_] / all_rows;
}

}  // namespace nnc::rt
