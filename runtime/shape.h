// Row-major shapes of the model's specs as the runtime and the compiler print them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/model_spec.h"

namespace nnc::rt {

// A row-major shape of a spec, with symbolic dimensions replaced by `batch`.
std::vector<int64_t> concreteShape(int rank, const int64_t* shape, int64_t batch);
std::string shapeString(const std::vector<int64_t>& shape);  // "[256, 784]"; kBatchDim prints as "B"

}  // namespace nnc::rt
