// Data-parallel training's gradient reduction (distributed.h): each rank's gradients and buffers' new values,
// weighted by the rank's rows, summed across the ranks and divided by the global batch's rows, which is what one
// process computes over the whole global batch (up to float rounding). The loss is averaged the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/kernels.h"

namespace nnc::rt {

class RankAverage final : public GradientReduction {
 public:
  // bucket_bytes > 0: results are sent (MPI_Iallreduce) in buckets of at least that many bytes as grads finishes
  // them, overlapping the rest of its backward pass; 0: all at once after grads.
  explicit RankAverage(size_t bucket_bytes) : bucket_floats_(bucket_bytes / sizeof(float)) {}

  void begin(std::vector<Tensor>& results, int64_t rows) override;
  bool overlaps() const override { return bucket_floats_ > 0; }
  void finished(size_t r) override;
  void progress() override;
  float end(float loss) override;

 private:
  void pack(size_t r);                 // results[r] x rows, appended to packed_
  void send(size_t upto);              // starts the sum of packed_[sent_, upto)

  size_t bucket_floats_;
  std::vector<Tensor>* results_ = nullptr;
  float rows_ = 0;
  std::vector<float> packed_;          // the weighted results in the order they finished, then loss and rows
  std::vector<size_t> place_;          // each result's offset in packed_; kUnpacked until it finished
  size_t packed_end_ = 0, sent_ = 0;
};

}  // namespace nnc::rt
