// Test support: whole-program checks; see compiler_model_check.h.
#include "tests/compiler_model_check.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "compiler/compilation.h"

namespace nnc::testing {

Program compileModelSource(const std::string& name, const std::string& text) {
  auto c = compileFrontEnd(dsl::SourceFile(name, text));
  std::string diagnostics = c->diags->render();
  EXPECT_EQ(diagnostics, "") << name;
  if (!c->graph || c->diags->hasErrors()) throw std::runtime_error(name + " does not compile: " + diagnostics);
  return buildProgram(std::move(*c->graph), c->checked->train);
}

Program compileExample(const std::string& name) {
  dsl::SourceFile source = dsl::SourceFile::read(std::string(NNC_SOURCE_DIR) + "/examples/" + name + ".nn");
  return compileModelSource(source.path(), source.text());
}

ModelValues randomModelValues(const Program& program, int batch, std::mt19937_64& rng, double param_scale) {
  const Graph& g = program.graph;
  std::uniform_real_distribution<double> uniform(-1, 1);
  auto random = [&](size_t count, double scale, double offset) {
    std::vector<double> v(count);
    for (double& x : v) x = offset + scale * uniform(rng);
    return v;
  };
  ModelValues values;
  const Node& features = g.node(g.inputs[0].node);
  int64_t feature_count = elementCount(features.shape, batch);
  if (features.dtype == DType::I32) {
    std::uniform_int_distribution<int32_t> id(0, 3);
    for (int64_t i = 0; i < feature_count; ++i) values.ids.push_back(id(rng));
  } else {
    values.x = random(feature_count, 1.0, 0);
  }
  const Shape& output = g.node(g.output).shape;
  int32_t classes = std::max<int32_t>(2, static_cast<int32_t>(output.back().extent));
  int64_t labels = g.inputs.size() > 1 ? elementCount(g.node(g.inputs[1].node).shape, batch) : batch;
  for (int32_t i = 0; i < labels; ++i) values.y.push_back(i % classes);
  for (const ParamInfo& p : g.params)
    values.params.push_back(p.trainable ? random(elementCount(g.node(p.node).shape, batch), param_scale, 0)
                                        : random(elementCount(g.node(p.node).shape, batch), 0.5, 1.0));
  return values;
}

void setModelValues(JitEntry& jit, const Program& program, const EntryPoint& entry, const ModelValues& values) {
  const Graph& g = program.graph;
  auto takes = [&](NodeId id) { return std::find(entry.arguments.begin(), entry.arguments.end(), id) != entry.arguments.end(); };
  if (takes(g.inputs[0].node) && g.node(g.inputs[0].node).dtype == DType::I32) jit.setLabels(g.inputs[0].node, values.ids);
  else if (takes(g.inputs[0].node)) jit.set(g.inputs[0].node, values.x);
  if (g.inputs.size() > 1 && takes(g.inputs[1].node)) jit.setLabels(g.inputs[1].node, values.y);
  for (size_t i = 0; i < g.params.size(); ++i)
    if (takes(g.params[i].node)) jit.set(g.params[i].node, values.params[i]);
  if (g.dropout_seed != kNoNode && takes(g.dropout_seed)) jit.setIntScalar(g.dropout_seed, values.dropout_seed);
  if (g.dropout_row != kNoNode && takes(g.dropout_row)) jit.setIntScalar(g.dropout_row, 0);
}

void expectGradientsMatchFiniteDifferences(const Program& program, int batch, ModelValues values,
                                           std::mt19937_64& rng, int samples) {
  const Graph& g = program.graph;
  JitEntry jit(g, program.grads_entry, batch);
  setModelValues(jit, program, program.grads_entry, values);
  std::vector<std::vector<double>> analytic = jit.run();  // loss, then a gradient per trainable parameter
  // The loss is O(1) and gradients reach 1e-4, so a step of 1e-5 keeps float64 round-off in (plus - minus)
  // (~1e-16 / 1e-5) far below 1e-6 of the smallest gradients checked; truncation error is O(step^2). A kink (a
  // relu input at 0, a pooling near-tie) less than a step away spoils the quotient; in large models (cnn_bn has
  // 37,632 relu inputs at batch 3) that happens, so a failing element is retried with a step ten times smaller,
  // which passes a kink between the two steps and still fails a wrong gradient.
  constexpr double kSteps[] = {1e-5, 1e-6};
  size_t output = 1;
  for (size_t p = 0; p < g.params.size(); ++p) {
    if (!g.params[p].trainable) continue;
    std::vector<double>& param = values.params[p];
    std::uniform_int_distribution<size_t> pick(0, param.size() - 1);
    for (int sample = 0; sample < samples; ++sample) {
      size_t i = pick(rng);
      double saved = param[i];
      auto lossAt = [&](double value) {
        param[i] = value;
        jit.set(g.params[p].node, param);
        return jit.run()[0][0];
      };
      double exact = analytic[output][i], numeric = 0, error = 0;
      for (double step : kSteps) {
        numeric = (lossAt(saved + step) - lossAt(saved - step)) / (2 * step);
        error = std::abs(numeric - exact) / std::max({std::abs(numeric), std::abs(exact), 1e-4});
        if (error < 1e-6) break;
      }
      lossAt(saved);
      EXPECT_LT(error, 1e-6) << g.params[p].name << "[" << i << "]: autodiff " << exact << ", finite difference "
                             << numeric;
    }
    ++output;
  }
}

std::string modelAround(const std::string& shape, const std::string& op) {
  return "model m(x: f32[B, " + shape + "], y: i32[B]) {\n    h = " + op +
         "\n    logits = linear(flatten(h), 3)\n    loss = cross_entropy(logits, y)\n    return logits\n}\n";
}

std::string diagnostics(const std::string& text) {
  return compileFrontEnd(dsl::SourceFile("test.nn", text))->diags->render();
}

void expectError(const std::string& source, const std::string& message) {
  std::string rendered = diagnostics(source);
  EXPECT_NE(rendered.find("error: " + message), std::string::npos) << source << "\n" << rendered;
  EXPECT_NE(rendered.find("^"), std::string::npos) << rendered;
}

void expectError(const std::string& shape, const std::string& op, const std::string& message) {
  expectError(modelAround(shape, op), message);
}

NodeId bindingNode(const Graph& g, const std::string& name, bool eval) {
  NodeId found = kNoNode;
  for (NodeId id = 0; id < (eval ? g.forwardEnd() : g.trainForwardEnd()); ++id)
    if (g.node(id).name == name && opInfo(g.node(id).op).family != OpFamily::Leaf) found = id;
  if (found == kNoNode) throw std::logic_error("no binding " + name);
  return found;
}

std::vector<std::vector<double>> runOutputs(const Program& p, const std::vector<NodeId>& outputs,
                                            const ModelValues& values, int batch, int32_t row,
                                            Halide::Type float_type) {
  const Graph& g = p.graph;
  EntryPoint entry{"eval", {g.inputs[0].node}, outputs, {}, {}};
  for (size_t i = 0; i < outputs.size(); ++i) entry.output_names.push_back("out" + std::to_string(i));
  for (const ParamInfo& info : g.params) entry.arguments.push_back(info.node);
  if (g.dropout_seed != kNoNode) entry.arguments.insert(entry.arguments.end(), {g.dropout_seed, g.dropout_row});
  JitEntry jit(g, entry, batch, {}, float_type);
  setModelValues(jit, p, entry, values);
  if (g.dropout_seed != kNoNode) jit.setIntScalar(g.dropout_row, row);
  return jit.run();
}

}  // namespace nnc::testing
