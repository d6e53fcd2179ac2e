// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors), readable by
// PyTorch/NumPy tooling.
//
// Layout: an 8-byte little-endian u64 N, then N bytes of JSON
//   {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// padded with spaces so the data starts at a multiple of 8, then the raw little-endian tensor data;
// offsets are relative to the start of the data section. We read F32, F64, F16, BF16, I64 and I32 tensors,
// each converted to f32 (the trainer's type), and write F32 and I64 (batch_norm's `num_batches_tracked`, an
// int64 in PyTorch), contiguous, ordered as the safetensors package orders them (wider dtypes first, then by
// name) so that every tensor is aligned to its element size. We add the metadata `crc32`: the CRC-32 of the
// data section, checked on reading, so a damaged file is refused rather than loaded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/errors.h"
#include "runtime/model_spec.h"

namespace nnc::rt {

// The element types read; conversions to f32 are exact but for F64, and for integers beyond 2^24 in magnitude,
// which round to the nearest f32. F16 subnormals, infinities and NaNs keep their values (NaN payloads are not kept).
enum class Dtype { F32, F64, F16, BF16, I64, I32 };
const char* dtypeName(Dtype dtype);  // "F32", as safetensors headers spell it

// Whether I64 stores `value` exactly: a whole number in [-2^63, 2^63).
bool fitsInt64(float value);

struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;  // [] is a scalar (one element)
  std::vector<float> data;     // product(shape) elements, row-major
  Dtype dtype = Dtype::F32;    // on disk: as read; to write, F32 or I64
  int64_t rounded = 0;         // after reading: how many values f32 holds only rounded (F64, I64 and I32)
};

// Writes atomically (see atomic_file.h): on any failure the old file at `path` is untouched and a
// std::runtime_error names the path and strerror. Duplicate or reserved (`__metadata__`) names, data sizes
// that do not match the shape, dtypes other than F32 and I64, and I64 values that do not fit (fitsInt64) are
// std::invalid_argument.
void writeSafetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads every tensor (returned in name order), converted to f32. Any inconsistency (an unsupported dtype, data
// that does not match dtype and shape) is a DataError naming the file, the tensor and the problem; a file that
// is not safetensors at all says `not a safetensors file`.
std::vector<NamedTensor> readSafetensors(const std::string& path);

// The tensors of `params` (a model's, named `model`) in a checkpoint, in their order: every parameter must be
// present with its exact shape (a count, ParamSpec::is_integer, with whole numbers) and nothing else. Otherwise
// throws DataError naming the file and listing every mismatch, one per line. A note on stderr names each tensor
// whose values f32 holds only rounded. The trainer's loadCheckpoint and `nnc build --emit=library` read with it.
std::vector<NamedTensor> readCheckpointFor(const std::string& path, const std::string& model, const ParamSpec* params,
                                           int num_params);

// Reads only the header's "__metadata__" map (empty when absent), validating the header as above.
std::map<std::string, std::string> readSafetensorsMetadata(const std::string& path);

}  // namespace nnc::rt
