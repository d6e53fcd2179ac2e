// The ONNX importer's inside: the values it tracks and what an op rule (onnx_ops.cpp) sees of a node.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "compiler/onnx/onnx_import.h"

namespace nnc::onnx_import {

// An ONNX value as the importer knows it.
struct Value {
  std::string onnx_name;
  std::string expr;            // its .nn expression: a binding's name or a number; empty for a constant not yet used
  std::vector<int64_t> shape;  // the ONNX shape; -1 for a symbolic dimension (only the batch may be one)
  int32_t dtype = onnx::TensorProto::FLOAT;
  bool batched = false;  // computed from the model input: the batch is axis 0 (before axis 0 with new_batch_axis)
  std::optional<std::vector<double>> data;  // a constant's values (an initializer, a Constant node)
  bool from_batch = false;  // shape arithmetic on the batch size, whose value is -1 in `data`: no number
};

class Translator;

// One node as its rule sees it. Rules return the .nn expression of the node's first output; a rule for an op with
// several outputs (Split) gives the others with `extraOutput`.
class NodeContext {
 public:
  NodeContext(Translator& translator, const onnx::NodeProto& node, std::vector<Value*> inputs,
              std::vector<std::vector<int64_t>> output_shapes, std::string binding);

  const onnx::NodeProto& node;
  const std::vector<Value*> inputs;  // null for an absent optional input
  const std::vector<std::vector<int64_t>> output_shapes;
  const std::string binding;  // the name the output gets in the .nn
  int opset() const;

  // Attributes by name, with a default when absent.
  int64_t intAttr(const std::string& name, int64_t fallback) const;
  double floatAttr(const std::string& name, double fallback) const;
  std::string stringAttr(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> intsAttr(const std::string& name, std::vector<int64_t> fallback = {}) const;

  // Input i: present, as a tensor expression (a constant becomes a `param` on first use, or a number when it has
  // one element and broadcasting allows), or as constant values (integers: axes, shapes; numbers: bounds).
  bool has(size_t i) const { return i < inputs.size() && inputs[i] != nullptr; }
  const Value& in(size_t i) const;
  std::string tensor(size_t i);
  std::vector<int64_t> constInts(size_t i) const;
  double constNumber(size_t i) const;
  // The .nn axis of ONNX axis `axis` (negative counts from the end) of input i; refuses the batch axis.
  int64_t axis(size_t i, int64_t axis) const;
  // Constant input i as a param of another shape with the same values (a PRelu slope per channel as [C, 1, 1]).
  std::string constantAs(size_t i, std::vector<int64_t> shape);
  // Input i's value goes into the checkpoint as `name` (a layer form that creates its own params: conv2d).
  void renameWeight(size_t i, const std::string& name, std::vector<int64_t> shape);
  // Output i >= 1 of the node is `expr`.
  void extraOutput(size_t i, std::string expr) { outputs[i] = std::move(expr); }
  std::map<size_t, std::string> outputs;  // by index: the rule's result at 0, then extraOutput's
  // A layer's checkpoint tensor that has no ONNX value (batch_norm's num_batches_tracked).
  void addWeight(const std::string& name, std::vector<int64_t> shape, std::vector<double> values);
  [[noreturn]] void refuse(ImportError::Kind kind, const std::string& why) const;
  // Refuses output `value` of `dims` (-1: the batch) unless an example of it holds at most kMaxElements.
  void checkElements(const std::string& value, const std::vector<int64_t>& dims) const;
  bool newBatchAxis() const;

 private:
  Translator& translator_;
};

using OpRule = std::string (*)(NodeContext&);
const std::map<std::string, OpRule>& opRules();

// The elements of a tensor of `dims`, or nullopt when a dimension is negative or the count passes `limit`
// (checked before each product, which therefore never overflows).
std::optional<int64_t> elementsWithin(const std::vector<int64_t>& dims, int64_t limit);

// A number as a .nn literal, parenthesized when negative; Semantics error for inf and NaN.
std::string numberLiteral(double value, const NodeContext& context);

}  // namespace nnc::onnx_import
