// User-defined functions in the graph builder: inlining, hierarchical parameter names, numbers as arguments,
// and the errors a call can produce (with notes at the calls being inlined).
#include <gtest/gtest.h>

#include "compiler/compilation.h"

namespace nnc {
namespace {

const char* kDense =
    "const HIDDEN = 16\n"
    "fn dense(x, width) {\n"
    "    fc = linear(x, width)\n"
    "    return relu(fc)\n"
    "}\n"
    "fn head(h, classes) {\n"
    "    return linear(h, classes)\n"
    "}\n";

std::unique_ptr<Compilation> build(const std::string& body) {
  return compileFrontEnd(dsl::SourceFile("t.nn", std::string(kDense) +
                                                     "model m(x: f32[B, 8], y: i32[B]) {\n" + body +
                                                     "    loss = cross_entropy(logits, y)\n"
                                                     "    return logits\n}\n"));
}

TEST(Functions, EachCallCreatesParametersNamedAfterItsBinding) {
  auto c = build("    block1 = dense(x, 2 * HIDDEN)\n"
                 "    block2 = dense(block1, width = HIDDEN)\n"
                 "    logits = head(block2, 3)\n");
  ASSERT_EQ(c->diags->render(), "");
  std::vector<std::string> names;
  for (const ParamInfo& p : c->graph->params) names.push_back(p.name + shapeToString(c->graph->node(p.node).shape));
  EXPECT_EQ(names, (std::vector<std::string>{"block1.fc.weight[32, 8]", "block1.fc.bias[32]",
                                             "block2.fc.weight[16, 32]", "block2.fc.bias[16]",
                                             "logits.weight[3, 16]", "logits.bias[3]"}));
  EXPECT_EQ(shapeToString(c->graph->node(c->graph->output).shape), "[B, 3]");
}

TEST(Functions, TwoParameterizedCallsInOneBindingClash) {
  auto c = build("    two = dense(dense(x, 4), 4)\n    logits = head(two, 3)\n");
  EXPECT_EQ(c->diags->render(),
            "t.nn:3:10: error: parameter `two.fc.weight` is created twice; give each layer a binding of its own "
            "(`name = ...`)\n"
            "        fc = linear(x, width)\n"
            "             ^~~~~~~~~~~~~~~~\n"
            "t.nn:10:11: note: in this call of `dense`\n"
            "        two = dense(dense(x, 4), 4)\n"
            "              ^~~~~~~~~~~~~~~~~~~~~\n"
            "t.nn:3:10: note: first created here\n"
            "        fc = linear(x, width)\n"
            "             ^~~~~~~~~~~~~~~~\n");
}

TEST(Functions, ArgumentErrorsPointAtTheCallAndTheDeclaration) {
  auto c = build("    a = dense(x, 4, 5)\n    b = dense(x, wdth = 4)\n    logits = head(x)\n");
  EXPECT_EQ(c->diags->render(),
            "t.nn:10:5: warning: binding `a` is never used\n"
            "        a = dense(x, 4, 5)\n"
            "        ^\n"
            "t.nn:11:5: warning: binding `b` is never used\n"
            "        b = dense(x, wdth = 4)\n"
            "        ^\n"
            "t.nn:10:9: error: `dense` takes 2 arguments, got 3\n"
            "        a = dense(x, 4, 5)\n"
            "            ^~~~~~~~~~~~~~\n"
            "t.nn:2:4: note: `dense` declared here\n"
            "    fn dense(x, width) {\n"
            "       ^~~~~\n"
            "t.nn:11:9: error: `dense` has no parameter `wdth`; did you mean `width`?\n"
            "        b = dense(x, wdth = 4)\n"
            "            ^~~~~~~~~~~~~~~~~~\n"
            "t.nn:2:4: note: `dense` declared here\n"
            "    fn dense(x, width) {\n"
            "       ^~~~~\n"
            "t.nn:12:14: error: missing argument `classes` in the call of `head`\n"
            "        logits = head(x)\n"
            "                 ^~~~~~~\n"
            "t.nn:6:4: note: `head` declared here\n"
            "    fn head(h, classes) {\n"
            "       ^~~~\n");
}

TEST(Functions, ShapeErrorsInsideACallNoteTheCall) {
  auto c = build("    logits = dense(y, 3)\n");
  EXPECT_EQ(c->diags->render(),
            "t.nn:3:17: error: `linear` needs an input [batch, features], got [B]\n"
            "        fc = linear(x, width)\n"
            "                    ^\n"
            "t.nn:10:14: note: in this call of `dense`\n"
            "        logits = dense(y, 3)\n"
            "                 ^~~~~~~~~~~\n");
}

}  // namespace
}  // namespace nnc
