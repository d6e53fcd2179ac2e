// Runtime error types shared by every runtime component.
//
// DataError is what a trainer throws for a bad input or checkpoint file (IDX data set, safetensors
// checkpoint). Its message always names the file, the byte offset where one applies, and what was
// expected, so that the trainer can print it as-is and exit.
#pragma once

#include <stdexcept>

namespace nnc::rt {

// A data or checkpoint file that is missing, truncated, or inconsistent.
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace nnc::rt
