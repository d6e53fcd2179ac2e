// Test support: whole .nn programs in float64 through the JIT: compiling a model, random values for every
// argument of its entry points, and the grads entry against central finite differences.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "compiler/graph/program.h"
#include "tests/compiler_jit.h"

namespace nnc::testing {

// Compiles model source text (`name` names it in diagnostics); a diagnostic fails the test and throws.
Program compileModelSource(const std::string& name, const std::string& text);
// Compiles examples/NAME.nn.
Program compileExample(const std::string& name);

// Values for every argument a program's entry points take.
struct ModelValues {
  std::vector<double> x;                    // f32 features, U(-1, 1)
  std::vector<int32_t> ids;                 // i32 features (token ids), uniform in [0, 4); tests may set others
  std::vector<int32_t> y;                   // labels, element i (row-major) gets i mod the class count
  std::vector<std::vector<double>> params;  // per graph param, U(-scale, scale); buffers in (0.5, 1.5)
  int32_t dropout_seed = 12345;
};
ModelValues randomModelValues(const Program& program, int batch, std::mt19937_64& rng, double param_scale = 0.1);

// Sets the arguments `entry` takes (inputs, params and buffers, the dropout seed) from `values`.
void setModelValues(JitEntry& jit, const Program& program, const EntryPoint& entry, const ModelValues& values);

// The grads entry at `values` against central differences at `samples` random elements of every trainable
// parameter: relative error below 1e-6, relative to max(|numeric|, |exact|, 1e-4).
void expectGradientsMatchFiniteDifferences(const Program& program, int batch, ModelValues values,
                                           std::mt19937_64& rng, int samples = 8);

// A model around one op: `h = OP` on features x: f32[B, SHAPE], then a linear head so that the loss weighs every
// output.
std::string modelAround(const std::string& shape, const std::string& op);

// The front end's rendered diagnostics for model source `text`.
std::string diagnostics(const std::string& text);

// Expects `source` (or modelAround(shape, op)) to be refused with an error containing `message`, shown with a caret.
void expectError(const std::string& source, const std::string& message);
void expectError(const std::string& shape, const std::string& op, const std::string& message);

// The last node a binding named `name` built in train mode (or in eval mode); throws when there is none.
NodeId bindingNode(const Graph& g, const std::string& name, bool eval = false);

// Evaluates `outputs` of `p` at `values`: the features, parameters, and the random ops' seed and first row `row`.
std::vector<std::vector<double>> runOutputs(const Program& p, const std::vector<NodeId>& outputs,
                                            const ModelValues& values, int batch, int32_t row = 0,
                                            Halide::Type float_type = Halide::Float(64));

}  // namespace nnc::testing
