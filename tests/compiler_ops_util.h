// Test support shared by the op tests (compiler_ops_test.cpp, compiler_ops_reduce_test.cpp): leaves, forward
// evaluation through the JIT, the finite-difference gradient check, and the registry of ops covered by cases.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <initializer_list>
#include <random>
#include <set>
#include <string>

#include "compiler/autodiff.h"
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
  node.attrs.index = op == Op::Param ? static_cast<int64_t>(g.params.size()) : static_cast<int64_t>(g.inputs.size());
  g.nodes.push_back(node);
  NodeId id = static_cast<NodeId>(g.nodes.size() - 1);
  if (op == Op::Param) g.params.push_back({name, id, {}});
  else g.inputs.push_back({name, id});
  return id;
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

// Ops whose cases live outside compiler_ops_test.cpp; OpTable.EveryOpIsCovered reads it.
inline std::set<std::string>& coveredOps() {
  static std::set<std::string> ops;
  return ops;
}
inline bool registerCovered(std::initializer_list<const char*> ops) {
  for (const char* op : ops) coveredOps().insert(op);
  return true;
}

struct GradCase {
  std::string name;
  std::vector<Shape> param_shapes;
  // Builds the op under test from the params (and labels `y` [B] when the case uses them).
  std::function<NodeId(Graph&, const std::vector<NodeId>&, NodeId labels)> build;
  bool away_from_zero = false;  // keep inputs away from a kink at 0
  bool positive = false;        // keep inputs positive (denominators)
  bool probability = false;     // keep inputs in (0.1, 0.9) (probabilities, targets)
};

inline void PrintTo(const GradCase& c, std::ostream* os) { *os << c.name; }

// Checks the autodiff gradient of sum(out * w) for random w against central finite differences, float64.
inline void checkGradient(const GradCase& c) {
  constexpr int kBatch = 3;
  Graph g;
  std::vector<NodeId> params;
  for (size_t i = 0; i < c.param_shapes.size(); ++i)
    params.push_back(leaf(g, Op::Param, c.param_shapes[i], DType::F32, "p" + std::to_string(i)));
  NodeId labels = leaf(g, Op::Input, {B()}, DType::I32, "y");
  NodeId out = c.build(g, params, labels);
  // A scalar loss that weighs every output element differently: sum(out * w).
  NodeId weights = leaf(g, Op::Input, g.node(out).shape, DType::F32, "w");
  g.loss = g.add(Op::SumTo, {g.add(Op::Mul, {out, weights})}, {});
  std::vector<NodeId> grads = differentiate(g, g.loss, params);

  EntryPoint entry{"grads", {labels, weights}, {g.loss}, {"loss"}};
  for (size_t i = 0; i < params.size(); ++i) {
    entry.arguments.push_back(params[i]);
    entry.outputs.push_back(grads[i]);
    entry.output_names.push_back("grad" + std::to_string(i));
  }
  JitEntry jit(g, entry, kBatch);
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> uniform(-1, 1);
  auto sample = [&] {
    double v = uniform(rng);
    if (c.positive) return 0.5 + std::abs(v);
    if (c.probability) return 0.5 + 0.4 * v;
    if (c.away_from_zero) return v + (v < 0 ? -0.1 : 0.1);
    return v;
  };
  std::vector<std::vector<double>> values;
  for (NodeId p : params) {
    values.emplace_back(elementCount(g.node(p).shape, kBatch));
    for (double& v : values.back()) v = sample();
    jit.set(p, values.back());
  }
  std::vector<double> w(elementCount(g.node(weights).shape, kBatch));
  for (double& v : w) v = uniform(rng);
  jit.set(weights, w);
  jit.setLabels(labels, {1, 0, 2});
  std::vector<std::vector<double>> analytic = jit.run();

  constexpr double kStep = 1e-6;
  for (size_t p = 0; p < params.size(); ++p)
    for (size_t i = 0; i < values[p].size(); ++i) {
      double saved = values[p][i];
      values[p][i] = saved + kStep;
      jit.set(params[p], values[p]);
      double plus = jit.run()[0][0];
      values[p][i] = saved - kStep;
      jit.set(params[p], values[p]);
      double minus = jit.run()[0][0];
      values[p][i] = saved;
      jit.set(params[p], values[p]);
      double numeric = (plus - minus) / (2 * kStep);
      double exact = analytic[p + 1][i];
      double scale = std::max({std::abs(numeric), std::abs(exact), 1e-3});
      EXPECT_LT(std::abs(numeric - exact) / scale, 1e-6)
          << c.name << " param " << p << " element " << i << ": autodiff " << exact << ", finite difference " << numeric;
    }
}

}  // namespace nnc::testing
