// ONNX export of a model's eval-mode graph, in two halves: `nnc build` serializes the graph here (with ONNX's
// protobuf classes), and the trainer's `export --onnx` (runtime/onnx_writer.h) adds a checkpoint's parameters and
// normalization as initializers, so no trainer links protobuf.
//
// The exported model computes what `trainer predict -o` writes from the features as predict reads them: the
// checkpoint's normalization first (when it has one), then predict's graph, then its post-processing: a
// classifier's class probabilities (softmax, or for a single logit [1 - sigmoid, sigmoid]), a regressor's or
// reconstruction's values (the sigmoid of logits when its loss takes logits). Opset 17; the batch is the input's
// symbolic dimension, named as the model names it.
#pragma once

#include <string>
#include <vector>

#include "compiler/graph/program.h"

namespace nnc::onnx_export {

constexpr int kOpset = 17;

struct SerializedGraph {
  std::string model_head;  // a serialized ModelProto without its graph (IR version, opset, producer, doc)
  // Serialized GraphProtos without initializers: [0] reads the features as given, [1] normalizes them first with
  // the initializers named normalization[0] (offset) and normalization[1] (scale).
  std::string graph[2];
  std::string constants;         // a serialized GraphProto holding only the constants' initializers, for either
  std::string normalization[2];
  std::vector<size_t> params;  // the graph's parameters (indices into graph.params), its initializers to add
  std::string error;           // why the model has no ONNX form (then the rest is empty)
};

SerializedGraph serializeEvalGraph(const Program& program);

}  // namespace nnc::onnx_export
