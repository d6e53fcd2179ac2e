// Shapes; see shape.h.
#include "runtime/shape.h"

namespace nnc::rt {

std::vector<int64_t> concreteShape(int rank, const int64_t* shape, int64_t batch) {
  std::vector<int64_t> out(shape, shape + rank);
  for (int64_t& dim : out)
    if (dim == kBatchDim) dim = batch;
  return out;
}

std::string shapeString(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    out += (i ? ", " : "") + (shape[i] == kBatchDim ? std::string("B") : std::to_string(shape[i]));
  return out + "]";
}

}  // namespace nnc::rt
