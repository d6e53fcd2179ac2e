// ONNX import: reading the model, walking its graph, printing the .nn file; see onnx_import.h. The op rules are in
// onnx_ops.cpp.
#include "compiler/onnx/onnx_import.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "compiler/graph/graph.h"
#include "compiler/onnx/onnx_translate.h"
#include "onnx/shape_inference/implementation.h"
#include "onnx/version_converter/convert.h"

namespace nnc::onnx_import {

// ---- reading ------------------------------------------------------------------------------------

namespace {

template <typename Message>
Message readMessage(const std::string& path, const char* what) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error))
    throw ImportError(ImportError::Kind::BadInput, fmt::format("{}: is a directory, not an ONNX {}", path, what));
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw ImportError(ImportError::Kind::BadInput, fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  Message message;
  if (!message.ParseFromIstream(&in))
    throw ImportError(ImportError::Kind::BadInput,
                      fmt::format("{}: not an ONNX {} (the protobuf does not parse)", path, what));
  return message;
}

template <typename T>
std::vector<double> rawValues(const std::string& raw) {
  std::vector<double> values(raw.size() / sizeof(T));
  for (size_t i = 0; i < values.size(); ++i) {
    T value;
    std::memcpy(&value, raw.data() + i * sizeof(T), sizeof(T));  // little-endian, as ONNX stores it
    values[i] = static_cast<double>(value);
  }
  return values;
}

}  // namespace

onnx::ModelProto readModel(const std::string& path) { return readMessage<onnx::ModelProto>(path, "model"); }
onnx::TensorProto readTensor(const std::string& path) { return readMessage<onnx::TensorProto>(path, "tensor"); }

std::vector<double> tensorValues(const onnx::TensorProto& tensor, const std::string& what) {
  if (tensor.data_location() == onnx::TensorProto::EXTERNAL)
    throw ImportError(ImportError::Kind::BadInput, fmt::format("{}: data in an external file is not supported", what));
  std::optional<int64_t> count = elementsWithin({tensor.dims().begin(), tensor.dims().end()}, int64_t{1} << 40);
  if (!count)
    throw ImportError(ImportError::Kind::BadInput,
                      fmt::format("{}: dimensions [{}] are negative or too large", what,
                                  fmt::join(tensor.dims().begin(), tensor.dims().end(), ", ")));
  std::vector<double> values;
  bool raw = tensor.has_raw_data();
  switch (tensor.data_type()) {
    case onnx::TensorProto::FLOAT:
      values = raw ? rawValues<float>(tensor.raw_data())
                   : std::vector<double>(tensor.float_data().begin(), tensor.float_data().end());
      break;
    case onnx::TensorProto::DOUBLE:
      values = raw ? rawValues<double>(tensor.raw_data())
                   : std::vector<double>(tensor.double_data().begin(), tensor.double_data().end());
      break;
    case onnx::TensorProto::INT64:
      values = raw ? rawValues<int64_t>(tensor.raw_data())
                   : std::vector<double>(tensor.int64_data().begin(), tensor.int64_data().end());
      break;
    case onnx::TensorProto::INT32:
      values = raw ? rawValues<int32_t>(tensor.raw_data())
                   : std::vector<double>(tensor.int32_data().begin(), tensor.int32_data().end());
      break;
    case onnx::TensorProto::BOOL:  // int32_data holds bools as 0 and 1
      values = raw ? rawValues<uint8_t>(tensor.raw_data())
                   : std::vector<double>(tensor.int32_data().begin(), tensor.int32_data().end());
      break;
    default:
      throw ImportError(ImportError::Kind::Semantics,
                        fmt::format("{}: element type {} is not supported (float, double, int32, int64, bool are)",
                                    what, onnx::TensorProto::DataType_Name(tensor.data_type())));
  }
  if (values.size() != static_cast<size_t>(*count))
    throw ImportError(ImportError::Kind::BadInput,
                      fmt::format("{}: {} values for a shape of {} elements", what, values.size(), *count));
  return values;
}

// ---- the translator -----------------------------------------------------------------------------

namespace {

const char* const kKeywords[] = {"model", "fn", "const", "param", "return", "train"};

// An ONNX name as a .nn identifier: other characters become `_` ("/fc1/Gemm_output_0" -> "fc1_Gemm_output_0").
std::string identifier(const std::string& name) {
  std::string out;
  for (char c : name) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  size_t begin = out.find_first_not_of('_'), end = out.find_last_not_of('_');
  out = begin == std::string::npos ? "" : out.substr(begin, end - begin + 1);
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "v" + out;
  for (const char* keyword : kKeywords)
    if (out == keyword) out += "_";
  return out;
}

// A binding's name for a node's output. PyTorch names outputs by module scope and op, "/fc1/Gemm_output_0": the
// module's name ("fc1", so that `linear`'s params are fc1.weight and fc1.bias as in its state_dict), or the op's
// for a function outside modules ("/Relu_output_0" -> "relu"). Other names are kept.
std::string bindingName(const std::string& output) {
  size_t suffix = output.rfind("_output_");
  if (output.empty() || output[0] != '/' || suffix == std::string::npos) return output;
  std::string scope = output.substr(1, suffix - 1);  // "fc1/Gemm", "Relu"
  size_t op = scope.rfind('/');
  if (op == std::string::npos) {  // the op's name in snake case: "LeakyRelu" -> "leaky_relu"
    std::string name;
    for (char ch : scope) {
      if (std::isupper(static_cast<unsigned char>(ch)) && !name.empty()) name += '_';
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    return name;
  }
  scope = scope.substr(0, op);  // the innermost module: "layer1/layer1.0/conv1" -> "conv1"
  return scope.substr(scope.rfind('/') + 1);
}

// A node in messages: its name, else its first output's, else its operator.
std::string nodeName(const onnx::NodeProto& node) {
  if (!node.name().empty()) return node.name();
  for (const std::string& output : node.output())
    if (!output.empty()) return output;
  return node.op_type();
}

std::string tensorShape(const std::vector<int64_t>& shape, bool batch) {
  std::string out = batch ? "B" : "";
  for (int64_t d : shape) out += fmt::format("{}{}", out.empty() ? "" : ", ", d);
  return "[" + out + "]";
}

}  // namespace

class Translator {
 public:
  Translator(onnx::ModelProto& model, const std::string& file, const ImportOptions& options)
      : model_(model), file_(file), options_(options) {}
  ImportedModel run();

  std::string tensorExpr(Value& value, const NodeContext& context);
  std::string declareParam(const std::string& onnx_name, const std::vector<int64_t>& shape,
                           const std::vector<double>& values);
  void addWeight(const std::string& name, std::vector<int64_t> shape, const std::vector<double>& values) {
    weights_.push_back({name, std::move(shape), std::vector<float>(values.begin(), values.end())});
  }
  std::string file_context(const onnx::NodeProto& node) const {
    return fmt::format("{}: node `{}` ({})", file_, nodeName(node), node.op_type());
  }
  int opset = 0;
  int converted_from = 0;  // the model's own opset, when the version converter brought it to `opset`
  bool newBatchAxis() const { return options_.new_batch_axis; }

 private:
  [[noreturn]] void fail(ImportError::Kind kind, const std::string& message) const {
    throw ImportError(kind, fmt::format("{}: {}", file_, message));
  }
  std::string readOpset();
  std::string inferShapes();
  bool completeReshape();
  bool isShapeArithmetic(const onnx::NodeProto& node) const;
  void foldShapeArithmetic(const onnx::NodeProto& node);
  std::vector<int64_t> shapeOf(const std::string& name, bool batched) const;
  void declareConstants();
  Value& declareInput();
  void checkOperators() const;
  void translate(const onnx::NodeProto& node, const std::set<std::string>& used);
  std::string uniqueName(const std::string& onnx_name);
  std::string print(const Value& input, const Value& output) const;

  onnx::ModelProto& model_;
  std::string file_;
  ImportOptions options_;
  std::map<std::string, Value> values_;
  std::map<std::string, const onnx::TypeProto*> types_;                 // every value's type, after shape inference
  std::unordered_map<std::string, onnx::TensorShapeProto> shape_data_;  // integer values shape inference computed
  std::set<std::string> names_;                                         // .nn names taken
  std::vector<std::string> body_;                                       // the model's statements
  std::vector<rt::NamedTensor> weights_;
};

// Opsets 11 to 17 are imported as such (the rules know where they differ: Softmax, ReduceSum); an older model is
// first brought to opset 13 by ONNX's version converter. Returns the converter's error, if it fails.
std::string Translator::readOpset() {
  for (const onnx::OperatorSetIdProto& set : model_.opset_import())
    if (set.domain().empty() || set.domain() == "ai.onnx") opset = static_cast<int>(set.version());
  if (opset > 17)
    fail(ImportError::Kind::Semantics,
         fmt::format("opset {} of the default domain; nnc imports opsets up to 17", opset));
  if (opset >= 11) return "";
  try {
    model_ = onnx::version_conversion::ConvertVersion(model_, 13);
    converted_from = opset;
    opset = 13;
    return "";
  } catch (const std::exception& e) {
    return fmt::format("opset {} of the default domain, which ONNX's version converter cannot bring to opset 13: {}",
                       opset, e.what());
  }
}

// ONNX's shape inference, with data propagation: the values of shape arithmetic (Shape -> Gather -> Concat, as
// PyTorch exports `x.view(x.size(0), -1)`) land in shape_data_. Strict first, for its message on a broken model;
// that message waits until checkOperators has listed unsupported operators (which break strict inference too).
std::string Translator::inferShapes() {
  std::string error;
  do {
    for (int strict : {1, 0}) {
      try {
        shape_data_.clear();
        onnx::shape_inference::InferShapes(model_, onnx::OpSchemaRegistry::Instance(),
                                           onnx::ShapeInferenceOptions(false, strict, true), &shape_data_);
        break;
      } catch (const std::exception& e) {
        if (error.empty()) error = e.what();
      }
    }
    types_.clear();
    const onnx::GraphProto& graph = model_.graph();
    for (const auto* list : {&graph.input(), &graph.value_info(), &graph.output()})
      for (const onnx::ValueInfoProto& info : *list) types_[info.name()] = &info.type();
  } while (completeReshape());
  return error;
}

namespace {

// A Reshape's output shape when its input's axis 0 is the symbolic batch and its target holds the batch (as a
// symbolic entry or a 0 in front) at axis 0; nullopt for any other case.
std::optional<onnx::TensorShapeProto> reshapedBatch(const onnx::TensorShapeProto& in,
                                                    const onnx::TensorShapeProto& target) {
  if (in.dim_size() == 0 || in.dim(0).has_dim_value()) return std::nullopt;
  int64_t rest = 1, fixed = 1;  // the input's size without its batch axis; the product of the target's fixed entries
  for (int i = 1; i < in.dim_size(); ++i) rest *= in.dim(i).has_dim_value() ? in.dim(i).dim_value() : 0;
  onnx::TensorShapeProto out;
  int infer = -1;
  for (int i = 0; i < target.dim_size(); ++i) {
    const onnx::TensorShapeProto::Dimension& d = target.dim(i);
    if (i == 0 && (!d.has_dim_value() || d.dim_value() == 0))
      *out.add_dim() = in.dim(0);
    else if (!d.has_dim_value() || d.dim_value() < -1 || (d.dim_value() == 0 && i >= in.dim_size()))
      return std::nullopt;
    else if (d.dim_value() == -1)
      infer = i, out.add_dim();
    else
      *out.add_dim() = d.dim_value() == 0 ? in.dim(i) : d, fixed *= out.dim(i).dim_value();
  }
  if (infer >= 0 && (fixed <= 0 || rest % fixed)) return std::nullopt;
  if (infer >= 0) out.mutable_dim(infer)->set_dim_value(rest / fixed);
  return out;
}

}  // namespace

// ONNX 1.12 infers no shape for a Reshape whose target holds the symbolic batch size (PyTorch's
// `x.view(x.size(0), -1)`: Shape -> Gather -> Concat). Only the batch may vary, so that entry is the input's batch
// axis. Adds the first such Reshape's shape to value_info (inference then runs again, for the values after it);
// false when there is none.
bool Translator::completeReshape() {
  auto shape = [&](const std::string& name) -> const onnx::TensorShapeProto* {
    auto it = types_.find(name);
    return it != types_.end() && it->second->tensor_type().has_shape() ? &it->second->tensor_type().shape() : nullptr;
  };
  for (const onnx::NodeProto& node : model_.graph().node()) {
    if (node.op_type() != "Reshape" || node.input_size() < 2 || node.output_size() < 1 || shape(node.output(0)) ||
        !shape(node.input(0)) || !shape_data_.count(node.input(1)))
      continue;
    std::optional<onnx::TensorShapeProto> out = reshapedBatch(*shape(node.input(0)), shape_data_.at(node.input(1)));
    if (!out) continue;
    onnx::ValueInfoProto* info = model_.mutable_graph()->add_value_info();
    info->set_name(node.output(0));
    info->mutable_type()->mutable_tensor_type()->set_elem_type(types_.at(node.input(0))->tensor_type().elem_type());
    *info->mutable_type()->mutable_tensor_type()->mutable_shape() = *out;
    return true;
  }
  return false;
}

// A value's inferred shape; every dimension must be known, but the batch (axis 0 of a batched value).
std::vector<int64_t> Translator::shapeOf(const std::string& name, bool batched) const {
  auto it = types_.find(name);
  if (it == types_.end() || !it->second->tensor_type().has_shape())
    fail(ImportError::Kind::Semantics,
         fmt::format("the shape of `{}` is unknown (ONNX's shape inference gives none)", name));
  std::vector<int64_t> shape;
  for (const onnx::TensorShapeProto::Dimension& dim : it->second->tensor_type().shape().dim()) {
    bool batch_axis = batched && shape.empty() && !options_.new_batch_axis;
    if (!dim.has_dim_value() && !batch_axis)
      fail(ImportError::Kind::Semantics,
           fmt::format("axis {} of `{}` has no fixed size (`{}`); only the batch axis may vary", shape.size(), name,
                       dim.dim_param()));
    shape.push_back(dim.has_dim_value() ? dim.dim_value() : -1);
  }
  return shape;
}

void Translator::declareConstants() {
  for (const onnx::TensorProto& tensor : model_.graph().initializer()) {
    Value& value = values_[tensor.name()];
    value.onnx_name = tensor.name();
    value.shape.assign(tensor.dims().begin(), tensor.dims().end());
    value.dtype = tensor.data_type();
    value.data = tensorValues(tensor, fmt::format("{}: initializer `{}`", file_, tensor.name()));
  }
}

// The first graph input that is no initializer: the features. nnc models take one.
Value& Translator::declareInput() {
  const onnx::ValueInfoProto* input = nullptr;
  for (const onnx::ValueInfoProto& info : model_.graph().input()) {
    if (values_.count(info.name())) continue;
    if (input)
      fail(ImportError::Kind::Semantics,
           fmt::format("inputs `{}` and `{}`: an nnc model takes one input of features (other inputs must be "
                       "initializers)",
                       input->name(), info.name()));
    input = &info;
  }
  if (!input) fail(ImportError::Kind::Semantics, "the graph has no input that is not an initializer");
  Value& value = values_[input->name()];
  value.onnx_name = input->name();
  value.batched = true;
  value.dtype = input->type().tensor_type().elem_type();
  value.shape = shapeOf(input->name(), true);
  value.expr = uniqueName(input->name());
  size_t rank = value.shape.size() + (options_.new_batch_axis ? 1 : 0);
  bool ids = value.dtype == onnx::TensorProto::INT64 || value.dtype == onnx::TensorProto::INT32;  // token ids: i32
  if (value.dtype != onnx::TensorProto::FLOAT && !ids)
    fail(ImportError::Kind::Semantics, fmt::format("input `{}` is {}; nnc models take float32 features or integer ids",
                                                   input->name(), onnx::TensorProto::DataType_Name(value.dtype)));
  if (rank < 2)
    fail(options_.new_batch_axis ? ImportError::Kind::Semantics : ImportError::Kind::BatchAxis,
         fmt::format("input `{}` has rank {}; nnc's features are [B, ...] of rank 2 or more", input->name(),
                     value.shape.size()));
  return value;
}

// A node whose every output is an integer value that shape inference computed: folded to constants, whatever its op.
bool Translator::isShapeArithmetic(const onnx::NodeProto& node) const {
  for (const std::string& name : node.output()) {
    auto type = types_.find(name);
    if (!shape_data_.count(name) || type == types_.end()) return false;
    int32_t dtype = type->second->tensor_type().elem_type();
    if (dtype != onnx::TensorProto::INT64 && dtype != onnx::TensorProto::INT32) return false;
  }
  return node.output_size() > 0;
}

void Translator::foldShapeArithmetic(const onnx::NodeProto& node) {
  for (const std::string& name : node.output()) {
    Value& value = values_[name];
    value.onnx_name = name;
    value.dtype = types_.at(name)->tensor_type().elem_type();
    value.data.emplace();
    for (const onnx::TensorShapeProto::Dimension& dim : shape_data_.at(name).dim()) {
      value.data->push_back(dim.has_dim_value() ? static_cast<double>(dim.dim_value()) : -1);
      value.from_batch = value.from_batch || !dim.has_dim_value();
    }
    value.shape = {static_cast<int64_t>(value.data->size())};
    if (types_.at(name)->tensor_type().shape().dim_size() == 0) value.shape.clear();  // a scalar
  }
}

void Translator::checkOperators() const {
  std::string missing;
  for (const onnx::NodeProto& node : model_.graph().node()) {
    bool known = (node.domain().empty() || node.domain() == "ai.onnx") &&
                 (node.op_type() == "Constant" || opRules().count(node.op_type()) || isShapeArithmetic(node));
    if (!known)
      missing += fmt::format("\n  node `{}`: {}{}", nodeName(node), node.domain().empty() ? "" : node.domain() + ".",
                             node.op_type());
  }
  if (!missing.empty())
    fail(ImportError::Kind::Unsupported,
         "operators nnc does not support (README.md lists those it does):" + missing);
}

std::string Translator::uniqueName(const std::string& onnx_name) {
  std::string base = identifier(onnx_name), name = base;
  for (int i = 2; names_.count(name); ++i) name = fmt::format("{}_{}", base, i);
  names_.insert(name);
  return name;
}

std::string Translator::tensorExpr(Value& value, const NodeContext& context) {
  if (value.dtype != onnx::TensorProto::FLOAT)
    context.refuse(ImportError::Kind::Semantics,
                   fmt::format("`{}` is a tensor of {}; nnc computes in float32", value.onnx_name,
                               onnx::TensorProto::DataType_Name(value.dtype)));
  if (value.expr.empty()) value.expr = declareParam(value.onnx_name, value.shape, *value.data);  // first use
  return value.expr;
}

// A constant as a param, its values in the checkpoint.
std::string Translator::declareParam(const std::string& onnx_name, const std::vector<int64_t>& shape,
                                     const std::vector<double>& values) {
  std::string name = uniqueName(onnx_name);
  body_.push_back(fmt::format("param {}: f32{} = zeros()", name, tensorShape(shape, false)));
  addWeight(name, shape, values);
  return name;
}

void Translator::translate(const onnx::NodeProto& node, const std::set<std::string>& used) {
  if (isShapeArithmetic(node)) return foldShapeArithmetic(node);
  if (node.op_type() == "Constant") {  // a constant value, used as numbers or a param
    if (node.attribute_size() != 1 || !node.attribute(0).has_t())
      throw ImportError(ImportError::Kind::Semantics,
                        file_context(node) + ": only a Constant with `value` is supported");
    Value& value = values_[node.output(0)];
    value.onnx_name = node.output(0);
    value.shape.assign(node.attribute(0).t().dims().begin(), node.attribute(0).t().dims().end());
    value.dtype = node.attribute(0).t().data_type();
    value.data = tensorValues(node.attribute(0).t(), file_context(node));
    return;
  }
  if (node.output(0).empty())  // the first output is optional for RNNs, which have no rule
    throw ImportError(ImportError::Kind::BadInput, file_context(node) + ": its first output has no name");
  std::vector<Value*> inputs;
  bool batched = false;
  for (const std::string& name : node.input()) {
    if (name.empty()) {
      inputs.push_back(nullptr);
      continue;
    }
    auto it = values_.find(name);
    if (it == values_.end())
      throw ImportError(ImportError::Kind::BadInput,
                        fmt::format("{}: input `{}` is not defined before it", file_context(node), name));
    inputs.push_back(&it->second);
    batched = batched || it->second.batched;
  }
  std::vector<std::vector<int64_t>> shapes;
  for (const std::string& name : node.output()) {
    shapes.push_back(name.empty() ? std::vector<int64_t>{} : shapeOf(name, batched));
    size_t rank = shapes.back().size() + (batched && options_.new_batch_axis ? 1 : 0);
    if (rank > kMaxRank)
      throw ImportError(ImportError::Kind::Semantics, fmt::format("{}: `{}` would have {} axes; nnc's tensors have at "
                                                                  "most {}",
                                                                  file_context(node), name, rank, kMaxRank));
  }
  std::string binding = uniqueName(bindingName(node.output(0)));
  NodeContext context(*this, node, inputs, shapes, binding);
  for (size_t i = 0; i < shapes.size(); ++i) context.checkElements(node.output(static_cast<int>(i)), shapes[i]);
  context.outputs[0] = opRules().at(node.op_type())(context);
  for (int i = 1; i < node.output_size(); ++i)
    if (used.count(node.output(i)) && !context.outputs.count(static_cast<size_t>(i)))
      throw ImportError(ImportError::Kind::Semantics,
                        fmt::format("{}: its output {} `{}` is used; nnc imports only its first output",
                                    file_context(node), i, node.output(i)));
  for (const auto& [i, expr] : context.outputs) {
    const std::string& name = node.output(static_cast<int>(i));
    Value& out = values_[name];
    out.onnx_name = name;
    out.shape = shapes[i];
    out.batched = batched;
    auto type = types_.find(name);
    out.dtype = type == types_.end() ? onnx::TensorProto::FLOAT : type->second->tensor_type().elem_type();
    std::string output_binding = i == 0 ? binding : uniqueName(bindingName(name));
    if (names_.count(expr) && expr != output_binding) {  // the op is the identity: the output is its input
      names_.erase(output_binding);
      out.expr = expr;
      continue;
    }
    out.expr = output_binding;
    body_.push_back(fmt::format("{} = {}", output_binding, expr));
  }
}

std::string Translator::print(const Value& input, const Value& output) const {
  bool batch = options_.new_batch_axis;
  auto nnShape = [&](const Value& v) {  // a batched shape with B for the batch axis
    return tensorShape(batch ? v.shape : std::vector<int64_t>(v.shape.begin() + 1, v.shape.end()), true);
  };
  const onnx::GraphProto& graph = model_.graph();
  std::string producer =
      model_.producer_name() + (model_.producer_version().empty() ? "" : " " + model_.producer_version());
  std::string out = fmt::format("# Imported by `nnc import` from {} (ONNX opset {}{}{}).\n", file_, opset,
                                converted_from ? fmt::format(", converted from opset {}", converted_from) : "",
                                producer.empty() ? "" : ", made by " + producer);
  if (!weights_.empty()) out += "# The params' values are in the checkpoint `nnc import` wrote beside this file.\n";
  std::string inputs =
      fmt::format("{}: {}{}", input.expr, input.dtype == onnx::TensorProto::FLOAT ? "f32" : "i32", nnShape(input));
  if (options_.loss == "cross_entropy") {  // a class per example, or per position: the logits' shape less the classes
    Value labels = output;
    labels.shape.pop_back();
    inputs += fmt::format(", labels: i32{}", nnShape(labels));
  }
  if (options_.loss == "mse") inputs += fmt::format(", target: f32{}", nnShape(output));
  out += fmt::format("model {}({}) {{\n", identifier(graph.name().empty() ? "imported" : graph.name()), inputs);
  for (const std::string& line : body_) out += "    " + line + "\n";
  if (options_.loss == "cross_entropy")
    out += fmt::format("    loss = cross_entropy({}, labels)\n", output.expr);
  else if (options_.loss == "mse")
    out += fmt::format("    loss = mse({}, target)\n", output.expr);
  else
    out += "    # loss = ...   (nnc trains a model on its `loss`: add one, e.g. cross_entropy(logits, labels))\n";
  out += fmt::format("    return {}\n}}\n", output.expr);
  if (!options_.loss.empty()) out += "\ntrain {\n    batch = 64\n    optimizer = sgd(lr = 0.01)\n}\n";
  return out;
}

ImportedModel Translator::run() {
  for (const onnx::NodeProto& node : model_.graph().node())
    if (node.output_size() == 0)
      fail(ImportError::Kind::BadInput, fmt::format("node `{}` has no output", nodeName(node)));
  std::string conversion_error = readOpset();
  std::string inference_error = inferShapes();
  checkOperators();
  if (!conversion_error.empty()) fail(ImportError::Kind::Semantics, conversion_error);
  if (!inference_error.empty())
    fail(ImportError::Kind::BadInput, fmt::format("ONNX's shape inference fails: {}", inference_error));
  declareConstants();
  for (const char* reserved : {"loss", "labels", "target"}) names_.insert(reserved);
  Value& input = declareInput();
  const onnx::GraphProto& graph = model_.graph();
  std::set<std::string> used;
  for (const onnx::NodeProto& node : graph.node())
    for (const std::string& name : node.input()) used.insert(name);
  for (const onnx::ValueInfoProto& info : graph.output()) used.insert(info.name());
  for (const onnx::NodeProto& node : graph.node()) translate(node, used);
  if (graph.output_size() != 1)
    fail(ImportError::Kind::Semantics,
         fmt::format("the graph has {} outputs; an nnc model returns one", graph.output_size()));
  auto found = values_.find(graph.output(0).name());
  if (found == values_.end())
    fail(ImportError::Kind::BadInput, fmt::format("output `{}` is computed by no node", graph.output(0).name()));
  const Value& output = found->second;
  if (!output.batched)
    fail(ImportError::Kind::Semantics, fmt::format("output `{}` does not depend on the input", output.onnx_name));
  if (output.dtype != onnx::TensorProto::FLOAT)
    fail(ImportError::Kind::Semantics, fmt::format("output `{}` is {}; nnc models return float32", output.onnx_name,
                                                   onnx::TensorProto::DataType_Name(output.dtype)));
  if (options_.loss == "cross_entropy" && output.shape.size() + (options_.new_batch_axis ? 1 : 0) < 2)
    fail(ImportError::Kind::Semantics, fmt::format("`--loss cross_entropy` needs logits [B, .., classes]; output `{}` "
                                                   "has rank {}",
                                                   output.onnx_name, output.shape.size()));
  ImportedModel imported;
  imported.source = print(input, output);
  imported.weights = std::move(weights_);
  return imported;
}

// ---- the node context ---------------------------------------------------------------------------

NodeContext::NodeContext(Translator& translator, const onnx::NodeProto& node, std::vector<Value*> inputs,
                         std::vector<std::vector<int64_t>> output_shapes, std::string binding)
    : node(node),
      inputs(std::move(inputs)),
      output_shapes(std::move(output_shapes)),
      binding(std::move(binding)),
      translator_(translator) {}

int NodeContext::opset() const { return translator_.opset; }
bool NodeContext::newBatchAxis() const { return translator_.newBatchAxis(); }

void NodeContext::refuse(ImportError::Kind kind, const std::string& why) const {
  throw ImportError(kind, fmt::format("{}: {}", translator_.file_context(node), why));
}

void NodeContext::checkElements(const std::string& value, const std::vector<int64_t>& dims) const {
  std::vector<int64_t> example;
  for (int64_t d : dims)
    if (d != -1) example.push_back(d);
  if (!elementsWithin(example, kMaxElements))
    refuse(ImportError::Kind::Semantics,
           fmt::format("`{}` would have a negative size or more than {} elements per example (Halide's buffers index "
                       "with 32 bits)", value, kMaxElements));
}

namespace {
const onnx::AttributeProto* findAttr(const onnx::NodeProto& node, const std::string& name) {
  for (const onnx::AttributeProto& attr : node.attribute())
    if (attr.name() == name) return &attr;
  return nullptr;
}
}  // namespace

int64_t NodeContext::intAttr(const std::string& name, int64_t fallback) const {
  const onnx::AttributeProto* attr = findAttr(node, name);
  return attr ? attr->i() : fallback;
}
double NodeContext::floatAttr(const std::string& name, double fallback) const {
  const onnx::AttributeProto* attr = findAttr(node, name);
  return attr ? attr->f() : fallback;
}
std::string NodeContext::stringAttr(const std::string& name, const std::string& fallback) const {
  const onnx::AttributeProto* attr = findAttr(node, name);
  return attr ? attr->s() : fallback;
}
std::vector<int64_t> NodeContext::intsAttr(const std::string& name, std::vector<int64_t> fallback) const {
  const onnx::AttributeProto* attr = findAttr(node, name);
  return attr ? std::vector<int64_t>(attr->ints().begin(), attr->ints().end()) : fallback;
}

const Value& NodeContext::in(size_t i) const {
  if (!has(i)) refuse(ImportError::Kind::BadInput, fmt::format("input {} is missing", i));
  return *inputs[i];
}

std::string NodeContext::tensor(size_t i) {
  const Value& value = in(i);
  if (value.data && value.data->size() == 1 && value.dtype == onnx::TensorProto::FLOAT) {
    // One element: a number, unless its rank would add axes to the result.
    size_t rank = 0;
    for (const Value* other : inputs)
      if (other) rank = std::max(rank, other->shape.size());
    if (value.shape.size() < rank || value.shape.empty()) return numberLiteral(value.data->front(), *this);
  }
  return translator_.tensorExpr(*inputs[i], *this);
}

std::vector<int64_t> NodeContext::constInts(size_t i) const {
  const Value& value = in(i);
  if (!value.data)
    refuse(ImportError::Kind::Semantics,
           fmt::format("input `{}` must be a constant (an initializer)", value.onnx_name));
  if (value.from_batch)
    refuse(ImportError::Kind::BatchAxis, fmt::format("input `{}` depends on the batch size", value.onnx_name));
  // Integers are held as doubles: INT64_MAX (an open-ended Slice, as PyTorch exports `x[:, 1:]`) arrives as 2^63,
  // which saturates rather than overflow the conversion.
  std::vector<int64_t> ints;
  for (double v : *value.data) {
    if (v != std::floor(v))
      refuse(ImportError::Kind::Semantics, fmt::format("input `{}` must hold integers, got {}", value.onnx_name, v));
    constexpr double kTwoTo63 = 9223372036854775808.0;
    ints.push_back(v >= kTwoTo63 ? INT64_MAX : v <= -kTwoTo63 ? INT64_MIN : static_cast<int64_t>(v));
  }
  return ints;
}

double NodeContext::constNumber(size_t i) const {
  const Value& value = in(i);
  if (!value.data || value.data->size() != 1)
    refuse(ImportError::Kind::Semantics, fmt::format("input `{}` must be a constant number", value.onnx_name));
  return value.data->front();
}

int64_t NodeContext::axis(size_t i, int64_t axis) const {
  const Value& value = in(i);
  int64_t rank = static_cast<int64_t>(value.shape.size());
  if (axis < -rank || axis >= rank)
    refuse(ImportError::Kind::BadInput, fmt::format("axis {} is outside a tensor of rank {}", axis, rank));
  if (axis < 0) axis += rank;
  if (!value.batched) return axis;
  if (newBatchAxis()) return axis + 1;
  if (axis == 0) refuse(ImportError::Kind::BatchAxis, "it acts on axis 0, the batch axis of nnc's models");
  return axis;
}

std::string NodeContext::constantAs(size_t i, std::vector<int64_t> shape) {
  const Value& value = in(i);
  if (!value.data || value.dtype != onnx::TensorProto::FLOAT)
    refuse(ImportError::Kind::Semantics, fmt::format("input `{}` must be a float initializer", value.onnx_name));
  return translator_.declareParam(value.onnx_name, shape, *value.data);
}

void NodeContext::renameWeight(size_t i, const std::string& name, std::vector<int64_t> shape) {
  const Value& value = in(i);
  if (!value.data || value.dtype != onnx::TensorProto::FLOAT)
    refuse(ImportError::Kind::Semantics, fmt::format("input `{}` must be a float initializer", value.onnx_name));
  translator_.addWeight(name, std::move(shape), *value.data);
}

void NodeContext::addWeight(const std::string& name, std::vector<int64_t> shape, std::vector<double> values) {
  translator_.addWeight(name, std::move(shape), values);
}

std::optional<int64_t> elementsWithin(const std::vector<int64_t>& dims, int64_t limit) {
  int64_t count = 1;
  for (int64_t d : dims) {
    if (d < 0 || (d > 0 && count > limit / d)) return std::nullopt;
    count *= d;
  }
  if (count > limit) return std::nullopt;
  return count;
}

std::string numberLiteral(double value, const NodeContext& context) {
  if (!std::isfinite(value))
    context.refuse(ImportError::Kind::Semantics, fmt::format("the number {} has no .nn literal", value));
  std::string text = fmt::format("{}", static_cast<float>(std::fabs(value)));  // ONNX's numbers are float32: "0.1"
  return value < 0 ? "(-" + text + ")" : text;
}

// ---- the entry points ---------------------------------------------------------------------------

ImportedModel importModel(onnx::ModelProto model, const std::string& file, const ImportOptions& options) {
  if (!options.loss.empty() && options.loss != "cross_entropy" && options.loss != "mse")
    throw ImportError(ImportError::Kind::BadInput,
                      fmt::format("unknown loss `{}`; expected cross_entropy or mse", options.loss));
  return Translator(model, file, options).run();
}

std::vector<std::string> supportedOperators() {
  std::vector<std::string> names = {"Constant"};
  for (const auto& [name, rule] : opRules()) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace nnc::onnx_import
