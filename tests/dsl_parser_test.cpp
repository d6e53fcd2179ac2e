// Parser tests: tree shape and precedence (through printAst), spans, and syntax errors with their
// full rendered messages, including recovery (several independent errors in one run, no cascades).
#include <gtest/gtest.h>

#include "dsl/ast_printer.h"
#include "dsl/lexer.h"
#include "dsl/parser.h"

namespace nnc::dsl {
namespace {

struct Parsed {
  SourceFile source;
  DiagnosticEngine diags{source};
  Module module;
  explicit Parsed(std::string text) : source("t.nn", std::move(text)) { module = parse(lex(source, diags), source, diags); }
  std::string ast() const { return printAst(module, source); }
  std::string errors() const { return diags.render(); }
};

// Wraps one statement in a model so tests can focus on expressions.
std::string inModel(const std::string& stmt) { return "model m(x: f32[B, 4]) {\n" + stmt + "\n}\n"; }

TEST(Parser, PrecedenceMatMulBindsLikeMulAndLeftAssociates) {
  Parsed p(inModel("h = a + b @ c * d - -e"));
  ASSERT_EQ(p.errors(), "");
  EXPECT_EQ(p.ast(),
            "Module\n"
            "  Model m @1:7\n"
            "    Input x: f32[B, 4] @1:9\n"
            "    Binding h @2:1\n"
            "      Binary - @2:19\n"
            "        Binary + @2:7\n"
            "          Name a @2:5\n"
            "          Binary * @2:15\n"
            "            Binary @ @2:11\n"
            "              Name b @2:9\n"
            "              Name c @2:13\n"
            "            Name d @2:17\n"
            "        Unary - @2:21\n"
            "          Name e @2:22\n");
}

TEST(Parser, ParenthesesCallsKeywordsStringsAndSemicolons) {
  Parsed p("model m() { param W: f32[2] = normal(std = 0.5); h = (W + 1) * 2; return f(h, \"s\", k = g()) }");
  ASSERT_EQ(p.errors(), "");
  EXPECT_EQ(p.ast(),
            "Module\n"
            "  Model m @1:7\n"
            "    Param W: f32[2] @1:19\n"
            "      Call normal @1:31\n"
            "        Kwarg std @1:38\n"
            "          Number 0.5 @1:44\n"
            "    Binding h @1:50\n"
            "      Binary * @1:62\n"
            "        Binary + @1:57\n"
            "          Name W @1:55\n"
            "          Number 1 @1:59\n"
            "        Number 2 @1:64\n"
            "    Return @1:67\n"
            "      Call f @1:74\n"
            "        Name h @1:76\n"
            "        String \"s\" @1:79\n"
            "        Kwarg k @1:84\n"
            "          Call g @1:88\n");
}

TEST(Parser, Spans) {
  Parsed p(inModel("h = (a + b) * f(c)"));
  ASSERT_EQ(p.errors(), "");
  const Stmt& stmt = p.module.models[0].body[0];
  EXPECT_EQ(p.source.slice(stmt.span), "h = (a + b) * f(c)");
  EXPECT_EQ(p.source.slice(stmt.name_span), "h");
  const Expr& mul = *stmt.value;
  EXPECT_EQ(p.source.slice(mul.span), "(a + b) * f(c)");
  EXPECT_EQ(p.source.slice(mul.op_span), "*");
  EXPECT_EQ(p.source.slice(mul.args[0]->span), "(a + b)");
  EXPECT_EQ(p.source.slice(mul.args[0]->op_span), "+");
  EXPECT_EQ(p.source.slice(mul.args[1]->span), "f(c)");
  EXPECT_EQ(p.source.slice(mul.args[1]->callee_span), "f");
}

TEST(Parser, NumbersAndDims) {
  Parsed p("model m(x: f32[B, 784, 0]) { return 1e-3 + .5 + 7 }");
  ASSERT_EQ(p.errors(), "");
  const auto& dims = p.module.models[0].inputs[0].type.dims;
  ASSERT_EQ(dims.size(), 3u);
  EXPECT_EQ(dims[0].symbol, "B");
  EXPECT_EQ(dims[1].value, 784);
  EXPECT_EQ(dims[2].value, 0);  // positivity is the checker's job
  const Expr& sum = *p.module.models[0].body[0].value;
  EXPECT_DOUBLE_EQ(sum.args[0]->args[0]->number, 1e-3);
  EXPECT_FALSE(sum.args[0]->args[0]->is_integer);
  EXPECT_DOUBLE_EQ(sum.args[0]->args[1]->number, 0.5);
  EXPECT_TRUE(sum.args[1]->is_integer);
}

TEST(Parser, TrainBlock) {
  Parsed p("train { batch = 8; data = \"d\"\n optimizer = sgd(lr = 1) }");
  ASSERT_EQ(p.errors(), "");
  ASSERT_TRUE(p.module.train.has_value());
  ASSERT_EQ(p.module.train->entries.size(), 3u);
  EXPECT_EQ(p.module.train->entries[2].key, "optimizer");
  EXPECT_TRUE(p.module.models.empty());
}

TEST(Parser, MissingCloseParenAfterArguments) {
  Parsed p(inModel("h = relu(x\nreturn h"));
  EXPECT_EQ(p.errors(),
            "t.nn:3:1: error: expected `)` after arguments\n"
            "    return h\n"
            "    ^~~~~~\n");
  // Recovery resumed at `return`.
  EXPECT_EQ(p.module.models[0].body.size(), 1u);
  EXPECT_EQ(p.module.models[0].body[0].kind, StmtKind::Return);
}

TEST(Parser, SeveralIndependentErrorsWithoutCascades) {
  Parsed p(inModel("h = relu(x,)\n"
                   "+ 3\n"  // skipped while resynchronising after the error above
                   "param = 3\n"
                   "g = (h * 2\n"
                   "ok = h\n"
                   "return ok"));
  EXPECT_EQ(p.errors(),
            "t.nn:2:12: error: expected an expression\n"
            "    h = relu(x,)\n"
            "               ^\n"
            "t.nn:4:7: error: expected a parameter name after `param`\n"
            "    param = 3\n"
            "          ^\n"
            "t.nn:6:1: error: expected `)` after the parenthesized expression\n"
            "    ok = h\n"
            "    ^~\n");
  // `ok = h` and `return ok` survived recovery.
  ASSERT_EQ(p.module.models[0].body.size(), 2u);
  EXPECT_EQ(p.module.models[0].body[0].name, "ok");
}

TEST(Parser, PositionalAfterKeywordArgument) {
  Parsed p(inModel("h = f(a = 1, x)"));
  EXPECT_EQ(p.errors(),
            "t.nn:2:14: error: positional argument after a keyword argument\n"
            "    h = f(a = 1, x)\n"
            "                 ^\n"
            "t.nn:2:7: note: first keyword argument here\n"
            "    h = f(a = 1, x)\n"
            "          ^\n");
}

TEST(Parser, BadModelHeaderStillParsesBody) {
  Parsed p("model m(x f32[B]) {\n  h = )\n  return x\n}");
  EXPECT_EQ(p.errors(),
            "t.nn:1:11: error: expected `:` and a type after the input name\n"
            "    model m(x f32[B]) {\n"
            "              ^~~\n"
            "t.nn:2:7: error: expected an expression\n"
            "      h = )\n"
            "          ^\n");
  EXPECT_EQ(p.module.models[0].body.size(), 1u);
}

TEST(Parser, BadDimension) {
  Parsed p("model m(x: f32[2.5]) { return x }");
  EXPECT_EQ(p.errors(),
            "t.nn:1:16: error: expected a dimension (an integer or a symbol such as `B`)\n"
            "    model m(x: f32[2.5]) { return x }\n"
            "                   ^~~\n");
}

TEST(Parser, UnclosedModelAtEndOfFile) {
  Parsed p("model m() {\n  return 1\n");
  EXPECT_EQ(p.errors(),
            "t.nn:2:11: error: expected `}` to close model `m`\n"
            "      return 1\n"
            "              ^\n"
            "t.nn:1:7: note: model begins here\n"
            "    model m() {\n"
            "          ^\n");
}

TEST(Parser, TopLevelGarbageAndSecondTrainBlock) {
  Parsed p("x = 1\ntrain { batch = 1 }\ntrain { batch = 2 }");
  EXPECT_EQ(p.errors(),
            "t.nn:1:1: error: expected `model`, `fn`, `const` or `train` at the top level\n"
            "    x = 1\n"
            "    ^\n"
            "t.nn:3:1: error: a module may have only one `train` block\n"
            "    train { batch = 2 }\n"
            "    ^~~~~\n"
            "t.nn:2:1: note: first `train` block here\n"
            "    train { batch = 1 }\n"
            "    ^~~~~\n");
}

TEST(Parser, TrainEntryErrorRecovers) {
  Parsed p("train {\n  batch 64\n  epochs = 2\n}");
  EXPECT_EQ(p.errors(),
            "t.nn:2:9: error: expected `=` after the training setting name\n"
            "      batch 64\n"
            "            ^~\n");
  ASSERT_EQ(p.module.train->entries.size(), 1u);
  EXPECT_EQ(p.module.train->entries[0].key, "epochs");
}

TEST(Parser, LexErrorsAreNotReportedTwice) {
  Parsed p(inModel("h = $\nreturn x"));
  EXPECT_EQ(p.errors(),
            "t.nn:2:5: error: unexpected character '$'\n"
            "    h = $\n"
            "        ^\n");
}

TEST(Parser, DeepNestingIsAnErrorNotACrash) {
  std::string deep = std::string(100000, '(') + "x" + std::string(100000, ')');
  Parsed p(inModel("h = " + deep + "\nreturn h"));
  EXPECT_NE(p.errors().find("error: expected"), 0u);
  EXPECT_NE(p.errors().find("error: expression nested too deeply"), std::string::npos);
  EXPECT_EQ(p.diags.diagnostics().size(), 1u);
}

TEST(Parser, DeepUnaryAndCallsAndLongChains) {
  for (const std::string& expr : {std::string(5000, '-') + "x", [] {
                                    std::string s;
                                    for (int i = 0; i < 5000; ++i) s += "f(";
                                    return s + "x" + std::string(5000, ')');
                                  }(),
                                  [] {
                                    std::string s = "x";
                                    for (int i = 0; i < 100000; ++i) s += " + x";
                                    return s;
                                  }()}) {
    Parsed p(inModel("h = " + expr + "\nreturn h"));
    ASSERT_EQ(p.diags.diagnostics().size(), 1u) << p.errors().substr(0, 200);
    EXPECT_EQ(p.diags.diagnostics()[0].message, "expression nested too deeply");
  }
}

TEST(Parser, NestingJustBelowTheLimitIsFine) {
  Parsed p(inModel("h = " + std::string(100, '(') + "x" + std::string(100, ')') + "\nreturn h"));
  EXPECT_EQ(p.errors(), "");
}

// One case per syntax diagnostic not covered above: the source and its full rendered output.
struct ErrorCase {
  const char* source;
  const char* expected;
};

class ParserErrors : public testing::TestWithParam<ErrorCase> {};

TEST_P(ParserErrors, RendersExactly) {
  Parsed p(GetParam().source);
  EXPECT_EQ(p.errors(), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Parser, ParserErrors,
    testing::Values(
        ErrorCase{"model (x: f32[B]) {}",
                  "t.nn:1:7: error: expected a model name after `model`\n"
                  "    model (x: f32[B]) {}\n"
                  "          ^\n"},
        ErrorCase{"model m x: f32[B]) {}",
                  "t.nn:1:9: error: expected `(` after the model name\n"
                  "    model m x: f32[B]) {}\n"
                  "            ^\n"},
        ErrorCase{"model m(x: f32[B] {}",
                  "t.nn:1:19: error: expected `)` after the model inputs\n"
                  "    model m(x: f32[B] {}\n"
                  "                      ^\n"},
        ErrorCase{"model m(x: f32[B]) return x",
                  "t.nn:1:20: error: expected `{` to begin the model body\n"
                  "    model m(x: f32[B]) return x\n"
                  "                       ^~~~~~\n"},
        ErrorCase{"model m(1) {}",
                  "t.nn:1:9: error: expected an input name\n"
                  "    model m(1) {}\n"
                  "            ^\n"},
        ErrorCase{"model m(x: [B]) {}",
                  "t.nn:1:12: error: expected a type such as `f32[B, 784]`\n"
                  "    model m(x: [B]) {}\n"
                  "               ^\n"},
        ErrorCase{"model m(x: f32(B)) {}",
                  "t.nn:1:15: error: expected `[` and a shape after the element type\n"
                  "    model m(x: f32(B)) {}\n"
                  "                  ^\n"},
        ErrorCase{"model m(x: f32[B, 3) {}",
                  "t.nn:1:20: error: expected `]` after the dimensions\n"
                  "    model m(x: f32[B, 3) {}\n"
                  "                       ^\n"},
        ErrorCase{"model m(x: f32[99999999999999999999]) {}",
                  "t.nn:1:16: error: dimension `99999999999999999999` is too large\n"
                  "    model m(x: f32[99999999999999999999]) {}\n"
                  "                   ^~~~~~~~~~~~~~~~~~~~\n"},
        ErrorCase{"model m() { param W f32[1] = zeros() }",
                  "t.nn:1:21: error: expected `:` and a type after the parameter name\n"
                  "    model m() { param W f32[1] = zeros() }\n"
                  "                        ^~~\n"},
        ErrorCase{"model m() { param W: f32[1] zeros() }",
                  "t.nn:1:29: error: expected `=` and an initializer such as `zeros()` after the parameter type\n"
                  "    model m() { param W: f32[1] zeros() }\n"
                  "                                ^~~~~\n"},
        ErrorCase{"train batch = 1\nmodel m() {}",
                  "t.nn:1:7: error: expected `{` after `train`\n"
                  "    train batch = 1\n"
                  "          ^~~~~\n"},
        ErrorCase{"train { batch = 1\nmodel m() {}",
                  "t.nn:2:1: error: expected `}` to close the `train` block\n"
                  "    model m() {}\n"
                  "    ^~~~~\n"
                  "t.nn:1:1: note: `train` block begins here\n"
                  "    train { batch = 1\n"
                  "    ^~~~~\n"},
        ErrorCase{"train { 3 = 4 }",
                  "t.nn:1:9: error: expected a training setting `key = value`\n"
                  "    train { 3 = 4 }\n"
                  "            ^\n"},
        ErrorCase{"model m() { return 1e999 }",
                  "t.nn:1:20: error: number `1e999` is too large\n"
                  "    model m() { return 1e999 }\n"
                  "                       ^~~~~\n"}));

}  // namespace
}  // namespace nnc::dsl

namespace nnc::dsl {
namespace {

TEST(Parser, FunctionsAndConstants) {
  Parsed p("const WIDTH = 8\nfn dense(x, width) {\n  h = linear(x, width)\n  return relu(h)\n}\n");
  ASSERT_EQ(p.errors(), "");
  EXPECT_EQ(p.ast(),
            "Module\n"
            "  Const WIDTH @1:7\n"
            "    Number 8 @1:15\n"
            "  Function dense @2:4\n"
            "    Arg x @2:10\n"
            "    Arg width @2:13\n"
            "    Binding h @3:3\n"
            "      Call linear @3:7\n"
            "        Name x @3:14\n"
            "        Name width @3:17\n"
            "    Return @4:3\n"
            "      Call relu @4:10\n"
            "        Name h @4:15\n");
}

TEST(Parser, UnclosedFunctionBodyRecoversAtTheNextDeclaration) {
  Parsed p("fn f(x) {\n  h = x\nmodel m(x: f32[B, 2]) {\n  return x\n}\n");
  EXPECT_EQ(p.errors(),
            "t.nn:3:1: error: expected `}` to close function `f`\n"
            "    model m(x: f32[B, 2]) {\n"
            "    ^~~~~\n"
            "t.nn:1:4: note: function begins here\n"
            "    fn f(x) {\n"
            "       ^\n");
  EXPECT_EQ(p.module.models.size(), 1u);
}

}  // namespace
}  // namespace nnc::dsl
