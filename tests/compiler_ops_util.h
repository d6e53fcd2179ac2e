// Test support for the op tests (compiler_ops*_test.cpp): graph leaves, JIT evaluation of one node, and the
// finite-difference gradient fixture `OpGradient`, which each op family's test file instantiates with its cases.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/compiler_jit.h"

namespace nnc::testing {

inline Dim B() { return Dim{1, "B"}; }
inline Dim D(int64_t extent) { return Dim{extent, {}}; }

inline NodeId leaf(Graph& g, Op op, Shape shape, DType dtype, const std::string& name) {
  Node node;
  node.op = op;
  node.shape = std::move(shape);
  node.dtype = dtype;
  node.name = name;
  return g.addLeaf(std::move(node));
}

// Evaluates `node` of `g` with the given leaf values (row-major) at batch size `batch`.
inline std::vector<double> evaluate(const Graph& g, NodeId node, const std::map<NodeId, std::vector<double>>& floats,
                                    const std::map<NodeId, std::vector<int32_t>>& labels = {}, int batch = 1) {
  EntryPoint entry{"eval", {}, {node}, {"out"}};
  for (const auto& [id, _] : floats) entry.arguments.push_back(id);
  for (const auto& [id, _] : labels) entry.arguments.push_back(id);
  JitEntry jit(g, entry, batch);
  for (const auto& [id, values] : floats) jit.set(id, values);
  for (const auto& [id, values] : labels) jit.setLabels(id, values);
  return jit.run()[0];
}

// One finite-difference gradient case. Its name is the op's printed name, optionally followed by `_variant`
// (OpTable.EveryOpIsCovered reads it). Inputs are drawn from U(-1, 1), then moved as the flags say.
struct GradCase {
  std::string name;
  std::vector<Shape> param_shapes;
  // Builds the op under test from the params (and labels `y` [B] when the case uses them).
  std::function<NodeId(Graph&, const std::vector<NodeId>&, NodeId labels)> build;
  bool away_from_zero = false;  // keep inputs away from a kink at 0
  bool positive = false;        // keep inputs positive (denominators)
  std::vector<double> kinks = {};  // further kinks (clamp bounds): inputs within 0.05 move 0.1 away
  bool probability = false;        // keep inputs in (0.1, 0.9) (probabilities, targets)
};

inline void PrintTo(const GradCase& c, std::ostream* os) { *os << c.name; }

class OpGradient : public ::testing::TestWithParam<GradCase> {};

}  // namespace nnc::testing
