// ONNX import: an ONNX model (ModelProto, opsets 11-17) -> a `.nn` model file and a safetensors checkpoint.
//
//   1. Read the protobuf (Debian's libonnx_proto) and run ONNX's own shape inference, so every value has a shape.
//   2. Walk the nodes in order; each node's output becomes a named binding (`relu_1 = relu(gemm_0)`), by the
//      op's rule in onnx_ops.cpp. Initializers become `param`s (their values go to the checkpoint), or numbers
//      where the op needs a number (a Reshape's shape, a Clip's bounds).
//   3. Print the `.nn` text: the first graph input is the model's features, the graph's output its `return`.
//
// The batch: nnc models take features `[B, ...]`. By default the first input's axis 0 is the batch B (a model
// exported from PyTorch); with `new_batch_axis` a batch axis B is put before the input's own axes (a model with no
// batch axis, as ONNX's node tests), and the graph is evaluated at B = 1. An op that would act on the batch axis
// (reduce over it, transpose it, broadcast a constant against it) is refused with ImportError::Kind::BatchAxis.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "onnx/onnx_pb.h"
#include "runtime/safetensors.h"

namespace nnc::onnx_import {

struct ImportOptions {
  // The loss (and train block) to add: "" (none: the user writes them), "cross_entropy" (a classifier: labels
  // `labels: i32[B]`) or "mse" (a regressor: targets `target` of the output's shape).
  std::string loss;
  bool new_batch_axis = false;
};

struct ImportedModel {
  std::string source;                    // the .nn text
  std::vector<rt::NamedTensor> weights;  // the params' values, named as the .nn names them
};

class ImportError : public std::runtime_error {
 public:
  enum class Kind {
    BadInput,     // not a readable ONNX model, or one that breaks ONNX's own rules
    Unsupported,  // operators nnc has no translation for (all of them, each with its node)
    Semantics,    // an attribute, type or shape whose meaning nnc does not share
    BatchAxis,    // an op would act on the batch axis (see above)
  };
  ImportError(Kind kind, const std::string& message) : std::runtime_error(message), kind(kind) {}
  Kind kind;
};

// Reads a binary ModelProto or TensorProto; ImportError (BadInput) names the file when it cannot.
onnx::ModelProto readModel(const std::string& path);
onnx::TensorProto readTensor(const std::string& path);

// A tensor's values as doubles (float, double, int32, int64 and bool data, raw or typed); BadInput otherwise.
std::vector<double> tensorValues(const onnx::TensorProto& tensor, const std::string& what);

// The translation; `file` names the model in messages and in the .nn's header comment.
ImportedModel importModel(onnx::ModelProto model, const std::string& file, const ImportOptions& options);

// The ONNX operators importModel translates, sorted.
std::vector<std::string> supportedOperators();

}  // namespace nnc::onnx_import
