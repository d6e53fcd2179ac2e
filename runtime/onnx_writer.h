// `trainer export --onnx`: the eval-mode graph `nnc build` serialized (ModelSpec::onnx, see
// compiler/onnx/onnx_export.h) completed with a checkpoint's parameters and normalization as initializers. The
// protobuf encoding of those few messages is written here by hand, so trainers do not link protobuf.
#pragma once

#include <string>
#include <vector>

#include "runtime/model_spec.h"
#include "runtime/preprocess.h"
#include "runtime/tensor.h"

namespace nnc::rt {

// The serialized ONNX ModelProto of `model`'s predict with `params` (one per ParamSpec) and normalization `n`; a
// DataError when the model has no ONNX form (the message says why).
std::string onnxModel(const ModelSpec& model, const std::vector<Tensor>& params, const Normalization& n);

}  // namespace nnc::rt
