// NumPy `.npy` arrays for data sets and exported tensors: file bytes <-> NpyArray.
//
// Format (numpy.lib.format): the magic "\x93NUMPY", a major and a minor version byte, a
// little-endian header length (u16 for 1.0, u32 for 2.0 and 3.0), an ASCII (3.0: UTF-8) Python
// dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with
// spaces to a multiple of 64 bytes and ended by '\n', then the raw elements.
//
// Reading converts every supported dtype to float (or to int32 labels); every problem is a
// DataError "<file>: offset <n>: <what was expected>". Files may also be gzipped (`.npy.gz`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/errors.h"

namespace nnc::rt {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;  // product(shape) elements, row-major (C order)
};

// Reads versions 1.0, 2.0 and 3.0 with fortran_order False. Dtypes: '<f4' (float32), '<f8'
// (float64, rounded to float), '|u1' (uint8, converted without scaling), '<i4' and '<i8'
// (integers, converted to the nearest float).
NpyArray readNpy(const std::string& path);

// Class labels from a 1-D array (or [n, 1]) of an integer dtype, or of a float dtype holding
// integral values. Every label must be in [0, 2^31); anything else is a DataError.
std::vector<int32_t> readNpyLabels(const std::string& path);

// Writes a float32 C-order array as version 1.0 (2.0 only if the header would not fit), via
// writeFileAtomically. Throws std::runtime_error when the file cannot be written.
void writeNpy(const std::string& path, const std::vector<int64_t>& shape, const float* data);

}  // namespace nnc::rt
