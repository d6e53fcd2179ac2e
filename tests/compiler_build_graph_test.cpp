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
            "t.nn:1:7: error: a trainable model takes features `f32[B, ...]` (or token ids `i32[B, T, ...]`), then "
            "integer labels `i32[B]` or `i32[B, T, ...]` (a classifier, a class per example or per position), float targets `f32[B, ...]` (a regressor) or nothing (a model that reconstructs its input), "
            "e.g. `model m(x: f32[B, 784], y: i32[B])`\n"
            "    model m(x: f32[B, 4], y: i32[B], z: f32[B, 3]) {\n"
            "          ^\n");
}

// The task follows from the inputs; a regressor's or reconstruction's loss must compare prediction and target.
TEST(BuildGraph, TaskFromInputsAndCriterionFromLoss) {
  auto graphOf = [](const std::string& text) {
    auto c = compileFrontEnd(dsl::SourceFile("t.nn", text));
    EXPECT_TRUE(c->graph) << c->diags->render();
    return c->graph ? *c->graph : Graph{};
  };
  Graph classifier = graphOf("model m(x: f32[B, 4], y: i32[B]) {\n  z = linear(x, 3)\n"
                             "  loss = cross_entropy(z, y)\n  return z\n}\n");
  EXPECT_EQ(classifier.task, Task::Classify);
  EXPECT_EQ(classifier.criterion, kNoNode);
  Graph regressor = graphOf("model m(x: f32[B, 4], y: f32[B, 2]) {\n  z = linear(x, 2)\n"
                            "  loss = l1(z, y) + 0.1 * mean(square(z))\n  return z\n}\n");
  EXPECT_EQ(regressor.task, Task::Regress);
  ASSERT_NE(regressor.criterion, kNoNode);
  EXPECT_EQ(regressor.node(regressor.criterion).op, Op::L1);
  Graph autoencoder = graphOf("model m(x: f32[B, 4]) {\n  code = linear(x, 2)\n  z = linear(relu(code), 4)\n"
                              "  loss = binary_cross_entropy_with_logits(z, x)\n  return z\n}\n");
  EXPECT_EQ(autoencoder.task, Task::Reconstruct);
  ASSERT_NE(autoencoder.criterion, kNoNode);
  EXPECT_EQ(autoencoder.node(autoencoder.criterion).op, Op::BinaryCrossEntropyWithLogits);

  EXPECT_EQ(errorsOf("model m(x: f32[B, 4], y: f32[B, 2]) {\n  z = linear(x, 3)\n"
                     "  loss = mean(z)\n  return z\n}\n"),
            "t.nn:4:10: error: the returned prediction must have the shape of the targets `y`, [B, 2], but this has "
            "shape [B, 3]\n"
            "      return z\n"
            "             ^\n");
  EXPECT_EQ(errorsOf("model m(x: f32[B, 4], y: f32[B, 2]) {\n  z = linear(x, 2)\n"
                     "  loss = mean(square(z - y))\n  return z\n}\n"),
            "t.nn:3:10: error: the loss of a regressor must compare the returned prediction with `y` by `mse`, `l1`, "
            "`binary_cross_entropy` or `binary_cross_entropy_with_logits` (other terms may be added), e.g. "
            "`loss = mse(prediction, y)`\n"
            "      loss = mean(square(z - y))\n"
            "             ^~~~~~~~~~~~~~~~~~~\n");
  EXPECT_NE(errorsOf("model m(x: f32[B, 4]) {\n  z = linear(x, 3)\n  loss = mse(z, z)\n  return z\n}\n")
                .find("must have the shape of the input it reconstructs `x`, [B, 4]"),
            std::string::npos);
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

// Only a classifier has an accuracy to stop on.
TEST(BuildGraph, EarlyStoppingOnAccuracyNeedsAClassifier) {
  const std::string regressor = "model m(x: f32[B, 4], y: f32[B, 2]) {\n  z = linear(x, 2)\n  loss = mse(z, y)\n"
                                "  return z\n}\n";
  EXPECT_EQ(errorsOf(regressor + "train {\n  early_stopping = patience(2, monitor = \"val_accuracy\")\n}\n"),
            "t.nn:7:20: error: early stopping on `val_accuracy` needs a classifier, and model `m` regresses; monitor "
            "`val_loss`\n"
            "      early_stopping = patience(2, monitor = \"val_accuracy\")\n"
            "                       ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n");
  EXPECT_EQ(errorsOf(regressor + "train {\n  early_stopping = patience(2)\n}\n"), "");
}

// latent(z) marks the code `sample` decodes: one per model, batched, and the prediction's only way to the features.
TEST(BuildGraph, LatentCodeIsTheDecodersOnlyInput) {
  const std::string head = "model m(x: f32[B, 4]) {\n  code = linear(x, 2)\n";
  const std::string tail = "  loss = mse(out, x)\n  return out\n}\n";
  EXPECT_EQ(errorsOf(head + "  z = latent(code)\n  out = linear(z, 4) + x\n" + tail),
            "t.nn:6:10: error: the returned prediction depends on `x` other than through the latent code; `sample` "
            "decodes latent codes alone\n"
            "      return out\n"
            "             ^~~\n"
            "t.nn:3:7: note: the latent code is marked here\n"
            "      z = latent(code)\n"
            "          ^~~~~~~~~~~~\n");
  EXPECT_NE(errorsOf(head + "  z = latent(code)\n  out = linear(x, 4)\n  loss = mse(out, x) + mean(z)\n"
                            "  return out\n}\n")
                .find("error: the returned prediction does not depend on the latent code"),
            std::string::npos);
  EXPECT_NE(errorsOf(head + "  z = latent(code)\n  w = latent(z)\n  out = linear(w, 4)\n" + tail)
                .find("error: a model has one latent code; `sample` decodes it alone"),
            std::string::npos);
  EXPECT_NE(errorsOf(head + "  z = latent(mean(code))\n  out = linear(code, 4) + z\n" + tail)
                .find("error: a latent code is `f32[B, ...]`, a vector (or tensor) of fixed extents per example, but "
                      "this is f32[]"),
            std::string::npos);
  auto c = compileFrontEnd(dsl::SourceFile("t.nn", head + "  z = latent(code)\n  out = linear(z, 4)\n" + tail));
  ASSERT_TRUE(c->graph) << c->diags->render();
  ASSERT_NE(c->graph->latent, kNoNode);
  EXPECT_EQ(shapeToString(c->graph->node(c->graph->latent).shape), "[B, 2]");
}

}  // namespace
}  // namespace nnc
