// Graph-builder diagnostics for models the trainer runtime could not run: checked at compile time, with carets.
#include <gtest/gtest.h>

#include "compiler/compilation.h"

namespace nnc {
namespace {

std::string errorsOf(const std::string& text) {
  auto c = compileFrontEnd(dsl::SourceFile("t.nn", text));
  return c->diags->render();
}

TEST(BuildGraph, ModelNeedsFeaturesAndLabels) {
  EXPECT_EQ(errorsOf("model m(x: f32[B, 4], y: i32[B], z: f32[B, 3]) {\n"
                     "    param W: f32[4, 3] = zeros()\n"
                     "    logits = x @ W + z\n"
                     "    loss = cross_entropy(logits, y)\n"
                     "    return x @ W\n"
                     "}\n"),
            "t.nn:1:7: error: a trainable model takes two inputs: features `f32[B, ...]` and integer labels "
            "`i32[B]`, e.g. `model m(x: f32[B, 784], y: i32[B])`\n"
            "    model m(x: f32[B, 4], y: i32[B], z: f32[B, 3]) {\n"
            "          ^\n");
}

TEST(BuildGraph, PredictionMustBeBatchByClasses) {
  EXPECT_EQ(errorsOf("model m(x: f32[B, 4], y: i32[B]) {\n"
                     "    param W: f32[4, 3] = zeros()\n"
                     "    param b: f32[3] = zeros()\n"
                     "    loss = cross_entropy(x @ W + b, y)\n"
                     "    return b\n"
                     "}\n"),
            "t.nn:5:12: error: the returned prediction must have shape [B, classes], but this has shape [3]\n"
            "        return b\n"
            "               ^\n");
}

TEST(BuildGraph, MatMulMismatchNamesBothShapes) {
  EXPECT_EQ(errorsOf("model m(x: f32[B, 4], y: i32[B]) {\n"
                     "    param W: f32[3, 4] = zeros()\n"
                     "    logits = x @ W\n"
                     "    loss = cross_entropy(logits, y)\n"
                     "    return logits\n"
                     "}\n"),
            "t.nn:3:14: error: `@` of [B, 4] and [3, 4]: inner dimensions [4] and [3] differ; the right operand "
            "looks transposed\n"
            "        logits = x @ W\n"
            "                 ^~~~~\n"
            "t.nn:1:9: note: `x` declared here with shape [B, 4]\n"
            "    model m(x: f32[B, 4], y: i32[B]) {\n"
            "            ^\n"
            "t.nn:2:11: note: `W` declared here with shape [3, 4]\n"
            "        param W: f32[3, 4] = zeros()\n"
            "              ^\n");
}

}  // namespace
}  // namespace nnc
