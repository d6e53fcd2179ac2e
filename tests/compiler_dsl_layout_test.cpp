// The language's layout forms for tensors of rank 4 and 5 (the shapes attention and patch embeddings need):
// the graph they build, their errors, and whole models through them against central finite differences
// (float64, JIT).
#include <gtest/gtest.h>

#include <random>

#include "compiler/compilation.h"
#include "tests/compiler_model_check.h"

namespace nnc {
namespace {

using testing::diagnostics;
// The node a binding named `name` built.
const Node& bound(const Graph& g, const std::string& name) {
  for (const Node& node : g.nodes)
    if (node.name == name) return node;
  throw std::runtime_error("no node named " + name);
}

TEST(PermuteDsl, OutputAxisIIsInputAxisAi) {
  auto c = compileFrontEnd(dsl::SourceFile("m.nn", R"(model m(x: f32[B, 24], y: i32[B]) {
    cube = reshape(x, 2, 3, 4)
    p = permute(cube, 0, 2, 3, 1)
    q = permute(cube, 0, -1, 1, 2)
    logits = linear(flatten(p + permute(q, 0, 3, 1, 2) * 0), 3)
    loss = cross_entropy(logits, y)
    return logits
}
)"));
  ASSERT_EQ(c->diags->render(), "");
  const Node& p = bound(*c->graph, "p");
  EXPECT_EQ(p.op, Op::Transpose);
  EXPECT_EQ(p.attrs.axes, (std::vector<int64_t>{0, 2, 3, 1}));
  EXPECT_EQ(shapeToString(p.shape), "[B, 3, 4, 2]");  // torch.permute: out.shape[i] = in.shape[dims[i]]
  EXPECT_EQ(shapeToString(bound(*c->graph, "q").shape), "[B, 4, 2, 3]");
}

TEST(PermuteDsl, BadAxesAreReported) {
  std::string head = "model m(x: f32[B, 24], y: i32[B]) {\n    c = reshape(x, 2, 3, 4)\n    p = ";
  std::string tail = "\n    logits = linear(flatten(p), 3)\n    loss = cross_entropy(logits, y)\n    return logits\n}\n";
  EXPECT_NE(diagnostics(head + "permute(c, 0, 2, 1)" + tail).find("`permute` of a tensor [B, 2, 3, 4] takes 4 axes"),
            std::string::npos);
  EXPECT_NE(diagnostics(head + "permute(c, 0, 2, 2, 1)" + tail).find("axis 2 is given twice"), std::string::npos);
  EXPECT_NE(diagnostics(head + "permute(c, 0, 2, 4, 1)" + tail).find("axis 2 of `permute` must be an integer axis"),
            std::string::npos);
  EXPECT_NE(diagnostics(head + "permute(c)" + tail).find("takes 4 axes, one per axis, got 0"), std::string::npos);
}

// Patches of a 4x4 image as a ViT takes them (2x2 patches: [B, 1, 4, 4] -> [B, 2, 2, 2, 2] -> [B, 4, 4] tokens of 4
// pixels), through rank-5 permute, then a per-token layer: the gradient against central differences.
TEST(PermuteDsl, PatchEmbeddingGradientMatchesFiniteDifferences) {
  Program program = testing::compileModelSource("patches.nn", R"(model patches(x: f32[B, 16], y: i32[B]) {
    image = reshape(x, 1, 2, 2, 2, 2)
    tokens = reshape(permute(image, 0, 1, 2, 4, 3, 5), 4, 4)
    embedded = tanh(tokens @ transpose(reshape(linear(x, 16), 4, 4)))
    logits = linear(flatten(permute(embedded, 0, 2, 1)), 3)
    loss = cross_entropy(logits, y)
    return logits
}
)");
  std::mt19937_64 rng(5);
  testing::ModelValues values = testing::randomModelValues(program, 3, rng, 0.3);
  testing::expectGradientsMatchFiniteDifferences(program, 3, values, rng);
}

// Two-head self-attention over 4 tokens, written as the reference composes it: heads split by reshape and permute
// ([B, T, H, D] -> [B, H, T, D]), scores [B, H, T, T] from a 4-D batched product with k transposed, the softmax
// along the keys, heads merged back. The gradient of every parameter against central differences.
TEST(AttentionDsl, MultiHeadAttentionGradientMatchesFiniteDifferences) {
  Program program = testing::compileModelSource("attention.nn", R"(model attention(x: f32[B, 24], y: i32[B]) {
    param Wq: f32[6, 8] = xavier_uniform()
    param Wk: f32[6, 8] = xavier_uniform()
    param Wv: f32[6, 8] = xavier_uniform()
    tokens = reshape(x, 4, 6)
    q = permute(reshape(tokens @ Wq, 4, 2, 4), 0, 2, 1, 3)
    k = permute(reshape(tokens @ Wk, 4, 2, 4), 0, 2, 1, 3)
    v = permute(reshape(tokens @ Wv, 4, 2, 4), 0, 2, 1, 3)
    weights = softmax(q @ transpose(k) / 2)
    heads = reshape(permute(weights @ v, 0, 2, 1, 3), 4, 8)
    logits = linear(flatten(heads), 3)
    loss = cross_entropy(logits, y)
    return logits
}
)");
  std::mt19937_64 rng(7);
  testing::ModelValues values = testing::randomModelValues(program, 3, rng, 0.5);
  testing::expectGradientsMatchFiniteDifferences(program, 3, values, rng);
}

// A tiny version of examples/vit.nn, built the same way: a 4x4 image cut into four 2x2 patches (rank-6 permute),
// patch embedding and position table, two Pre-LN blocks (an `fn` with its own params per call) whose token
// projections are products over flattened rows ([B, 4, 8] @ [8, 8]) and whose attention products are per entry
// ([B, 2, 4, 4]), a GELU MLP, layer-norm, mean pooling over the tokens and a linear head. The gradient of every
// parameter against central differences.
TEST(AttentionDsl, VisionTransformerGradientMatchesFiniteDifferences) {
  Program program = testing::compileModelSource("vit.nn", R"(fn heads(t) {
    return permute(reshape(t, 4, 2, 4), 0, 2, 1, 3)
}

fn block(x) {
    param Wq: f32[8, 8] = xavier_uniform()
    param Wk: f32[8, 8] = xavier_uniform()
    param Wv: f32[8, 8] = xavier_uniform()
    param Wo: f32[8, 8] = xavier_uniform()
    param W1: f32[8, 16] = xavier_uniform()
    param b1: f32[16] = zeros()
    param W2: f32[16, 8] = xavier_uniform()
    param b2: f32[8] = zeros()
    ln1 = layer_norm(x)
    weights = softmax(heads(ln1 @ Wq) @ transpose(heads(ln1 @ Wk)) / 2)
    x3 = x + reshape(permute(weights @ heads(ln1 @ Wv), 0, 2, 1, 3), 4, 8) @ Wo
    ln2 = layer_norm(x3)
    return gelu(ln2 @ W1 + b1) @ W2 + b2 + x3
}

model vit(x: f32[B, 16], y: i32[B]) {
    param E: f32[4, 8] = xavier_uniform()
    param pos: f32[4, 8] = normal(0, 0.02)
    tokens = reshape(permute(reshape(x, 2, 2, 2, 2), 0, 1, 3, 2, 4), 4, 4) @ E + pos
    block1 = block(tokens)
    block2 = block(block1)
    final = layer_norm(block2)
    logits = linear(mean(final, axis = 1), 3)
    loss = cross_entropy(logits, y)
    return logits
}
)");
  std::mt19937_64 rng(19);
  testing::ModelValues values = testing::randomModelValues(program, 3, rng, 0.5);
  testing::expectGradientsMatchFiniteDifferences(program, 3, values, rng);
}

}  // namespace
}  // namespace nnc
