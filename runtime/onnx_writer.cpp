// The protobuf wire format of ONNX's TensorProto and the ModelProto/GraphProto fields that hold it
// (onnx/onnx.proto: ModelProto.graph = 7, GraphProto.initializer = 5, TensorProto.dims = 1, data_type = 2,
// name = 8, raw_data = 9; raw data little-endian, as on every machine nnc targets).
#include "runtime/onnx_writer.h"

#include <cstdint>

#include "runtime/errors.h"

namespace nnc::rt {

namespace {

enum WireType { kVarint = 0, kLengthDelimited = 2 };
constexpr int kModelGraph = 7, kGraphInitializer = 5;
constexpr int kTensorDims = 1, kTensorDataType = 2, kTensorName = 8, kTensorRawData = 9;
constexpr uint64_t kFloat = 1;  // TensorProto.DataType.FLOAT

void varint(std::string& out, uint64_t value) {
  for (; value >= 0x80; value >>= 7) out += static_cast<char>(value | 0x80);
  out += static_cast<char>(value);
}

void key(std::string& out, int field, WireType type) { varint(out, static_cast<uint64_t>(field) << 3 | type); }

void lengthDelimited(std::string& out, int field, const char* data, size_t size) {
  key(out, field, kLengthDelimited);
  varint(out, size);
  out.append(data, size);
}

// A GraphProto.initializer entry: a float32 tensor.
void initializer(std::string& graph, const std::string& name, const std::vector<int64_t>& dims, const float* values,
                 size_t count) {
  std::string tensor;
  for (int64_t d : dims) {
    key(tensor, kTensorDims, kVarint);
    varint(tensor, static_cast<uint64_t>(d));
  }
  key(tensor, kTensorDataType, kVarint);
  varint(tensor, kFloat);
  lengthDelimited(tensor, kTensorName, name.data(), name.size());
  lengthDelimited(tensor, kTensorRawData, reinterpret_cast<const char*>(values), count * sizeof(float));
  lengthDelimited(graph, kGraphInitializer, tensor.data(), tensor.size());
}

}  // namespace

std::string onnxModel(const ModelSpec& model, const std::vector<Tensor>& params, const Normalization& n) {
  const OnnxGraph& onnx = model.onnx;
  if (!onnx.model_head) throw DataError(std::string("model `") + model.name + "` was built without its ONNX form");
  if (*onnx.error) throw DataError(std::string("model `") + model.name + "` has no ONNX form: " + onnx.error);
  bool normalized = n.kind != "none";
  std::string graph(onnx.graph[normalized], onnx.graph_size[normalized]);
  graph.append(onnx.constants, onnx.constants_size);  // GraphProto fields concatenate: its initializers join
  for (int i = 0; i < onnx.num_params; ++i) {
    const ParamSpec& spec = model.params[onnx.params[i]];
    const Tensor& values = params[onnx.params[i]];
    initializer(graph, spec.name, concreteShape(spec.rank, spec.shape, 1), values.data(), values.number_of_elements());
  }
  if (normalized) {  // per feature: the features' shape less the batch
    const InputSpec& features = model.inputs[0];
    std::vector<int64_t> dims;
    for (int d = 0; d < features.rank; ++d)
      if (features.shape[d] != kBatchDim) dims.push_back(features.shape[d]);
    size_t count = 1;
    for (int64_t d : dims) count *= static_cast<size_t>(d);
    if (n.offset.size() != count || n.scale.size() != count)
      throw DataError("the checkpoint's normalization has " + std::to_string(n.offset.size()) + " offsets and " +
                      std::to_string(n.scale.size()) + " scales; the model's features are " + std::to_string(count));
    initializer(graph, onnx.normalization[0], dims, n.offset.data(), n.offset.size());
    initializer(graph, onnx.normalization[1], dims, n.scale.data(), n.scale.size());
  }
  std::string out(onnx.model_head, onnx.model_head_size);
  lengthDelimited(out, kModelGraph, graph.data(), graph.size());
  return out;
}

}  // namespace nnc::rt
