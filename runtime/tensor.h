// Tensors of the runtime: Halide buffers, with row-major shapes as the model file writes them.
// A row-major shape [B, 784] is a Halide buffer with dimension 0 of extent 784 (see compiler/lower/lower.h).
#pragma once

#include <HalideBuffer.h>

#include <cstdlib>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "runtime/model_spec.h"
#include "runtime/shape.h"  // concreteShape, shapeString

namespace nnc::rt {

using Tensor = Halide::Runtime::Buffer<float>;
using LabelTensor = Halide::Runtime::Buffer<int32_t>;

// Throws DataError naming `what`, its shape and bytes: a shape above 2^31 - 1 elements (Halide indexes buffers
// with 32 bits), or memory that cannot be had.
[[noreturn]] void throwAllocationError(const std::string& what, const std::vector<int64_t>& shape, size_t element_bytes,
                                       const char* why);

// Allocates a zero-filled tensor of a row-major shape; `what` names it in errors.
template <typename T>
Halide::Runtime::Buffer<T> allocate(const std::vector<int64_t>& shape, const std::string& what = "a tensor") {
  double elements = 1;
  for (int64_t d : shape) elements *= static_cast<double>(d);
  if (elements > 2147483647.0) throwAllocationError(what, shape, sizeof(T), "more elements than 2^31 - 1");
  std::vector<int> extents(shape.rbegin(), shape.rend());
  Halide::Runtime::Buffer<T> buffer(nullptr, extents);
  // Zeroed by calloc (Halide's own allocator returns null when memory runs out, and a fill then crashed; its
  // fill also drew an intermittent UBSan pointer-overflow report in HalideBuffer.h's for_each_value).
  auto calloc_or_throw = [](size_t bytes) {
    void* memory = std::calloc(bytes, 1);
    if (!memory) throw std::bad_alloc();
    return memory;
  };
  try {
    buffer.allocate(calloc_or_throw, std::free);
  } catch (const std::bad_alloc&) {
    throwAllocationError(what, shape, sizeof(T), "out of memory");
  }
  buffer.set_host_dirty();
  return buffer;
}

// The parameters of a model (one tensor per ParamSpec, in spec order).
std::vector<Tensor> allocateParams(const ModelSpec& model);
// Fills parameters from their initializers, deterministically for a seed.
void initializeParams(const ModelSpec& model, uint64_t seed, std::vector<Tensor>& params);

// Loads a safetensors checkpoint into `params`; every parameter must be present with its exact shape (a count,
// ParamSpec::is_integer, with whole numbers) and nothing else. Otherwise throws DataError naming the file and
// listing every mismatch, one per line. Tensors of other dtypes than F32 are converted (safetensors.h); a note on
// stderr names each one whose values f32 holds only rounded.
void loadCheckpoint(const ModelSpec& model, const std::string& path, std::vector<Tensor>& params);
// Writes `params` (PyTorch state_dict names and dtypes: counts as I64) atomically, with `metadata` added to the
// header's.
void saveCheckpoint(const ModelSpec& model, const std::string& path, const std::vector<Tensor>& params,
                    int64_t epoch, int64_t step, const std::map<std::string, std::string>& metadata = {});

}  // namespace nnc::rt
