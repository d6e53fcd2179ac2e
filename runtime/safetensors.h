// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors), readable by
// PyTorch/NumPy tooling.
//
// Layout: an 8-byte little-endian u64 N, then N bytes of JSON
//   {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// padded with spaces so the data starts at a multiple of 8, then the raw little-endian tensor data;
// offsets are relative to the start of the data section. We write F32 tensors in name order,
// contiguous, and read back only F32. We add the metadata `crc32`: the CRC-32 of the data section, checked
// on reading, so a damaged file is refused rather than loaded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/errors.h"

namespace nnc::rt {

struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;  // [] is a scalar (one element)
  std::vector<float> data;     // product(shape) elements, row-major
};

// Writes atomically (see atomic_file.h): on any failure the old file at `path` is untouched and a
// std::runtime_error names the path and strerror. Duplicate or reserved (`__metadata__`) names
// and data sizes that do not match the shape are std::invalid_argument.
void writeSafetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads every tensor (returned in name order). Any inconsistency is a DataError naming the file
// and the problem; a file that is not safetensors at all says `not a safetensors file`.
std::vector<NamedTensor> readSafetensors(const std::string& path);

// Reads only the header's "__metadata__" map (empty when absent), validating the header as above.
std::map<std::string, std::string> readSafetensorsMetadata(const std::string& path);

}  // namespace nnc::rt
