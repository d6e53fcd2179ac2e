// Checker tests: name resolution, the model's required parts, and the train block, each error with its
// full rendered message. Also the defaults and values of a valid TrainConfig.
#include <gtest/gtest.h>

#include "dsl/checker.h"
#include "dsl/lexer.h"
#include "dsl/parser.h"

namespace nnc::dsl {
namespace {

struct Checked {
  SourceFile source;
  DiagnosticEngine diags{source};
  Module module;
  std::optional<CheckedModule> result;
  explicit Checked(std::string text) : source("t.nn", std::move(text)) {
    module = parse(lex(source, diags), source, diags);
    EXPECT_FALSE(diags.hasErrors()) << "syntax error in test input:\n" << diags.render();
    result = check(module, diags);
    EXPECT_EQ(result.has_value(), !diags.hasErrors());
  }
  std::string errors() const { return diags.render(); }
};

const char* kModel =
    "model m(x: f32[B, 4], y: i32[B]) {\n"
    "  h = linear(x, 3)\n"
    "  loss = cross_entropy(h, y)\n"
    "  return h\n"
    "}\n";

// A valid model followed by `train { <entries> }`.
std::string withTrain(const std::string& entries) { return std::string(kModel) + "train {\n" + entries + "\n}\n"; }

TEST(Checker, ValidModuleDefaults) {
  Checked c(kModel);
  ASSERT_TRUE(c.result) << c.errors();
  EXPECT_EQ(c.result->model->name, "m");
  EXPECT_EQ(c.result->loss->name, "loss");
  EXPECT_EQ(c.result->output->kind, StmtKind::Return);
  const TrainConfig& t = c.result->train;
  EXPECT_EQ(t.data, "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(t.batch, 64);
  EXPECT_EQ(t.epochs, 1);
  EXPECT_EQ(t.seed, 0u);
  EXPECT_EQ(t.optimizer.name, "sgd");
  EXPECT_DOUBLE_EQ(t.optimizer.lr, 0.01);
  EXPECT_DOUBLE_EQ(t.optimizer.momentum, 0.0);
}

TEST(Checker, TrainValues) {
  Checked c(withTrain("data = \"/d\"; batch = 32; epochs = 3; seed = 0\noptimizer = sgd(momentum = 0.5, lr = 2)"));
  ASSERT_TRUE(c.result) << c.errors();
  const TrainConfig& t = c.result->train;
  EXPECT_EQ(t.data, "/d");
  EXPECT_EQ(t.batch, 32);
  EXPECT_EQ(t.epochs, 3);
  EXPECT_EQ(t.seed, 0u);
  EXPECT_DOUBLE_EQ(t.optimizer.lr, 2.0);
  EXPECT_DOUBLE_EQ(t.optimizer.momentum, 0.5);
  EXPECT_EQ(c.source.slice(t.optimizer.span), "sgd(momentum = 0.5, lr = 2)");
}

TEST(Checker, UndefinedNameWithSuggestion) {
  Checked c("model m(x: f32[B]) {\n  hidden = x\n  loss = hiden\n  return loss\n}");
  EXPECT_EQ(c.errors(),
            "t.nn:3:10: error: undefined name `hiden`; did you mean `hidden`?\n"
            "      loss = hiden\n"
            "             ^~~~~\n");
}

TEST(Checker, UndefinedNameWithoutCloseMatch) {
  Checked c("model m(x: f32[B]) {\n  loss = x * z\n  return loss\n}");
  EXPECT_EQ(c.errors(),
            "t.nn:2:14: error: undefined name `z`\n"
            "      loss = x * z\n"
            "                 ^\n");
}

TEST(Checker, NameUsedBeforeDeclaration) {
  Checked c("model m(x: f32[B]) {\n  loss = h\n  h = x\n  return h\n}");
  EXPECT_EQ(c.errors(),
            "t.nn:2:10: error: `h` is used before it is declared\n"
            "      loss = h\n"
            "             ^\n"
            "t.nn:3:3: note: `h` declared here\n"
            "      h = x\n"
            "      ^\n");
}

TEST(Checker, CalleesAndKeywordNamesAreNotResolved) {
  Checked c("model m(x: f32[B]) {\n  param w: f32[3] = normal(mean = 0, std = 1)\n  loss = anything(x, w, axis = 1)\n"
            "  return loss\n}");
  EXPECT_EQ(c.errors(), "");
}

TEST(Checker, DuplicateName) {
  Checked c("model m(x: f32[B]) {\n  param x: f32[1] = zeros()\n  loss = x\n  return loss\n}");
  EXPECT_EQ(c.errors(),
            "t.nn:2:9: error: `x` is already declared\n"
            "      param x: f32[1] = zeros()\n"
            "            ^\n"
            "t.nn:1:9: note: first declared here\n"
            "    model m(x: f32[B]) {\n"
            "            ^\n");
}

TEST(Checker, BadDtypeAndDimension) {
  Checked c("model m(x: f23[B, 0]) {\n  loss = x\n  return x\n}");
  EXPECT_EQ(c.errors(),
            "t.nn:1:12: error: unknown element type `f23`; did you mean `f32`? (valid types: `f32`, `f64`, `i32`)\n"
            "    model m(x: f23[B, 0]) {\n"
            "               ^~~\n"
            "t.nn:1:19: error: dimension must be a positive integer or a symbol, got `0`\n"
            "    model m(x: f23[B, 0]) {\n"
            "                      ^\n");
}

TEST(Checker, MissingReturnAndLoss) {
  Checked c("model mlp(x: f32[B]) {\n  h = x\n}");
  EXPECT_EQ(c.errors(),
            "t.nn:1:7: error: model `mlp` has no `return` statement\n"
            "    model mlp(x: f32[B]) {\n"
            "          ^~~\n"
            "t.nn:1:7: error: model `mlp` has no `loss` binding; the binding named `loss` is what training minimizes\n"
            "    model mlp(x: f32[B]) {\n"
            "          ^~~\n");
}

TEST(Checker, LossMustBeABinding) {
  Checked c("model m(loss: f32[B]) {\n  return loss\n}");
  EXPECT_EQ(c.errors(),
            "t.nn:1:7: error: model `m` has no `loss` binding; the binding named `loss` is what training minimizes\n"
            "    model m(loss: f32[B]) {\n"
            "          ^\n"
            "t.nn:1:9: note: `loss` is declared here, but not as a binding\n"
            "    model m(loss: f32[B]) {\n"
            "            ^~~~\n");
}

TEST(Checker, TwoReturns) {
  Checked c("model m(x: f32[B]) {\n  loss = x\n  return x\n  return loss\n}");
  EXPECT_EQ(c.errors(),
            "t.nn:4:3: error: model `m` has more than one `return` statement\n"
            "      return loss\n"
            "      ^~~~~~~~~~~\n"
            "t.nn:3:3: note: first `return` here\n"
            "      return x\n"
            "      ^~~~~~~~\n");
}

TEST(Checker, TwoModels) {
  Checked c(std::string(kModel) + "model n() {\n}\n");
  EXPECT_EQ(c.errors(),
            "t.nn:6:7: error: a file may declare only one `model`\n"
            "    model n() {\n"
            "          ^\n"
            "t.nn:1:7: note: first `model` declared here\n"
            "    model m(x: f32[B, 4], y: i32[B]) {\n"
            "          ^\n");
}

TEST(Checker, NoModel) {
  Checked c("train { batch = 1 }");
  EXPECT_EQ(c.errors(),
            "t.nn:1:1: error: no `model` declaration in this file\n"
            "    train { batch = 1 }\n"
            "    ^\n");
}

TEST(Checker, UnknownTrainKey) {
  Checked c(withTrain("bach = 3"));
  EXPECT_EQ(c.errors(),
            "t.nn:7:1: error: unknown training setting `bach`; did you mean `batch`? "
            "(valid settings: `data`, `batch`, `epochs`, `seed`, `optimizer`, `lr_schedule`, `validation_split`, "
            "`early_stopping`, `clip_grad_norm`, `label_column`, `normalize`, `augment`)\n"
            "    bach = 3\n"
            "    ^~~~\n");
}

TEST(Checker, DuplicateTrainKey) {
  Checked c(withTrain("epochs = 2\nepochs = 3"));
  EXPECT_EQ(c.errors(),
            "t.nn:8:1: error: training setting `epochs` is set twice\n"
            "    epochs = 3\n"
            "    ^~~~~~\n"
            "t.nn:7:1: note: first set here\n"
            "    epochs = 2\n"
            "    ^~~~~~\n");
}

TEST(Checker, WrongKindsOfTrainValues) {
  Checked c(withTrain("batch = \"64\"\nepochs = 6.5\nseed = -1\ndata = 3"));
  EXPECT_EQ(c.errors(),
            "t.nn:7:9: error: `batch` must be a positive integer, got `\"64\"`\n"
            "    batch = \"64\"\n"
            "            ^~~~\n"
            "t.nn:8:10: error: `epochs` must be a positive integer, got `6.5`\n"
            "    epochs = 6.5\n"
            "             ^~~\n"
            "t.nn:9:8: error: `seed` must be a non-negative integer, got `-1`\n"
            "    seed = -1\n"
            "           ^~\n"
            "t.nn:10:8: error: `data` must be a string (the dataset directory), got `3`\n"
            "    data = 3\n"
            "           ^\n");
}

TEST(Checker, ZeroBatch) {
  Checked c(withTrain("batch = 0"));
  EXPECT_EQ(c.errors(),
            "t.nn:7:9: error: `batch` must be a positive integer, got `0`\n"
            "    batch = 0\n"
            "            ^\n");
}

TEST(Checker, UnknownOptimizer) {
  Checked c(withTrain("optimizer = sdg(lr = 0.1)"));
  EXPECT_EQ(c.errors(),
            "t.nn:7:13: error: unknown optimizer `sdg`; did you mean `sgd`? (valid optimizers: `sgd`, `rmsprop`, `adam`, `adamw`)\n"
            "    optimizer = sdg(lr = 0.1)\n"
            "                ^~~\n");
}

TEST(Checker, LrSchedule) {
  Checked good(withTrain("lr_schedule = cosine()"));
  EXPECT_EQ(good.errors(), "");
  Checked c(withTrain("lr_schedule = cosin()\nlr_schedule = constant"));
  EXPECT_EQ(c.errors(),
            "t.nn:7:15: error: unknown learning-rate schedule `cosin`; did you mean `cosine`? "
            "(valid schedules: `constant`, `cosine`, `exponential`, `step`, `inverse`)\n"
            "    lr_schedule = cosin()\n"
            "                  ^~~~~\n"
            "t.nn:8:1: error: training setting `lr_schedule` is set twice\n"
            "    lr_schedule = constant\n"
            "    ^~~~~~~~~~~\n"
            "t.nn:7:1: note: first set here\n"
            "    lr_schedule = cosin()\n"
            "    ^~~~~~~~~~~\n");
}

TEST(Checker, OptimizerMustBeACall) {
  Checked c(withTrain("optimizer = sgd"));
  EXPECT_EQ(c.errors(),
            "t.nn:7:13: error: `optimizer` must be an optimizer call such as `sgd(lr = 0.01)`, got `sgd`\n"
            "    optimizer = sgd\n"
            "                ^~~\n");
}

TEST(Checker, BadOptimizerArguments) {
  Checked c(withTrain("optimizer = sgd(0.1, lr = 0, moment = 0.9, momentum = 1, lr = 1)"));
  EXPECT_EQ(c.errors(),
            "t.nn:7:17: error: `sgd` takes only keyword arguments (valid arguments: `lr`, `momentum`, `nesterov`, `weight_decay`)\n"
            "    optimizer = sgd(0.1, lr = 0, moment = 0.9, momentum = 1, lr = 1)\n"
            "                    ^~~\n"
            "t.nn:7:27: error: `lr` must be a positive number, got `0`\n"
            "    optimizer = sgd(0.1, lr = 0, moment = 0.9, momentum = 1, lr = 1)\n"
            "                              ^\n"
            "t.nn:7:30: error: unknown `sgd` argument `moment`; did you mean `momentum`? "
            "(valid arguments: `lr`, `momentum`, `nesterov`, `weight_decay`)\n"
            "    optimizer = sgd(0.1, lr = 0, moment = 0.9, momentum = 1, lr = 1)\n"
            "                                 ^~~~~~\n"
            "t.nn:7:55: error: `momentum` must be a number in [0, 1), got `1`\n"
            "    optimizer = sgd(0.1, lr = 0, moment = 0.9, momentum = 1, lr = 1)\n"
            "                                                          ^\n"
            "t.nn:7:58: error: `sgd` argument `lr` is given twice\n"
            "    optimizer = sgd(0.1, lr = 0, moment = 0.9, momentum = 1, lr = 1)\n"
            "                                                             ^~\n"
            "t.nn:7:22: note: first given here\n"
            "    optimizer = sgd(0.1, lr = 0, moment = 0.9, momentum = 1, lr = 1)\n"
            "                         ^~\n");
}

TEST(Checker, NegativeMomentum) {
  Checked c(withTrain("optimizer = sgd(momentum = -0.5)"));
  EXPECT_EQ(c.errors(),
            "t.nn:7:28: error: `momentum` must be a number in [0, 1), got `-0.5`\n"
            "    optimizer = sgd(momentum = -0.5)\n"
            "                               ^~~~\n");
}

TEST(Checker, ClosestName) {
  std::vector<std::string> names = {"relu", "linear", "x"};
  EXPECT_EQ(closestName("rleu", names), "relu");
  EXPECT_EQ(closestName("lineer", names), "linear");
  EXPECT_EQ(closestName("y", names), std::nullopt);  // one letter: any other letter is not a typo
  EXPECT_EQ(closestName("softmax", names), std::nullopt);
  EXPECT_EQ(didYouMean("rel", names), "; did you mean `relu`?");
}

}  // namespace
}  // namespace nnc::dsl

namespace nnc::dsl {
namespace {

TEST(Checker, FunctionsSeeTheirParametersAndConstants) {
  Checked c(std::string("const W = 3\nfn f(x) {\n  h = linear(x, W)\n  return h\n}\n") + kModel);
  EXPECT_EQ(c.errors(), "");
}

TEST(Checker, FunctionBodyErrors) {
  Checked c(std::string("fn f(x, x) {\n  h = linear(z, 3)\n}\n") + kModel);
  EXPECT_EQ(c.errors(),
            "t.nn:1:9: error: `x` is already declared\n"
            "    fn f(x, x) {\n"
            "            ^\n"
            "t.nn:1:6: note: first declared here\n"
            "    fn f(x, x) {\n"
            "         ^\n"
            "t.nn:2:14: error: undefined name `z`\n"
            "      h = linear(z, 3)\n"
            "                 ^\n"
            "t.nn:1:4: error: function `f` has no `return` statement\n"
            "    fn f(x, x) {\n"
            "       ^\n");
}

TEST(Checker, RecursionIsReportedOnce) {
  Checked c(std::string("fn a(x) {\n  return b(x)\n}\nfn b(x) {\n  return a(x)\n}\n") + kModel);
  EXPECT_EQ(c.errors(),
            "t.nn:5:10: error: recursive call: a -> b -> a; functions are inlined, so they cannot call themselves\n"
            "      return a(x)\n"
            "             ^\n"
            "t.nn:1:4: note: `a` declared here\n"
            "    fn a(x) {\n"
            "       ^\n");
}

TEST(Checker, ConstantsAreNumbersDeclaredOnce) {
  Checked c(std::string("const A = \"x\"\nconst A = 2\n") + kModel);
  EXPECT_EQ(c.errors(),
            "t.nn:1:11: error: the value of `const A` must be a number\n"
            "    const A = \"x\"\n"
            "              ^~~\n"
            "t.nn:2:7: error: `A` is already declared\n"
            "    const A = 2\n"
            "          ^\n"
            "t.nn:1:7: note: first declared here\n"
            "    const A = \"x\"\n"
            "          ^\n");
}

TEST(Checker, LocalNamesMayNotShadowConstants) {
  Checked c(std::string("const h = 2\n") + kModel);
  EXPECT_EQ(c.errors(),
            "t.nn:3:3: error: `h` is already declared\n"
            "      h = linear(x, 3)\n"
            "      ^\n"
            "t.nn:1:7: note: first declared here\n"
            "    const h = 2\n"
            "          ^\n");
}

}  // namespace
}  // namespace nnc::dsl

namespace nnc::dsl {
namespace {

TEST(Checker, TrainingSettingsForSchedulesValidationAndEarlyStopping) {
  Checked c(withTrain("optimizer = sgd(lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 5e-4)\n"
                      "lr_schedule = step(every = 3, factor = 0.1, per = \"epoch\")\n"
                      "validation_split = 0.1\nearly_stopping = patience(4, monitor = \"val_accuracy\")\n"
                      "clip_grad_norm = 5"));
  ASSERT_EQ(c.errors(), "");
  const TrainConfig& t = c.result->train;
  EXPECT_TRUE(t.optimizer.nesterov);
  EXPECT_DOUBLE_EQ(t.optimizer.weight_decay, 5e-4);
  EXPECT_EQ(t.lr_schedule.name, "step");
  EXPECT_EQ(t.lr_schedule.every, 3);
  EXPECT_DOUBLE_EQ(t.lr_schedule.factor, 0.1);
  EXPECT_TRUE(t.lr_schedule.per_epoch);
  EXPECT_DOUBLE_EQ(t.validation_split, 0.1);
  EXPECT_EQ(t.early_stopping.patience, 4);
  EXPECT_EQ(t.early_stopping.monitor, "val_accuracy");
  EXPECT_DOUBLE_EQ(t.clip_grad_norm, 5);
}

TEST(Checker, DataSettings) {
  Checked c(withTrain("label_column = 3\nnormalize = \"standardize\"\naugment = images(flip = 0.5, shift = 2)"));
  ASSERT_EQ(c.errors(), "");
  const TrainConfig& t = c.result->train;
  EXPECT_EQ(t.label_column, "3");
  EXPECT_EQ(t.normalize, "standardize");
  EXPECT_DOUBLE_EQ(t.augment_flip, 0.5);
  EXPECT_EQ(t.augment_shift, 2);
  Checked named(withTrain("label_column = \"class\""));
  ASSERT_EQ(named.errors(), "");
  EXPECT_EQ(named.result->train.label_column, "class");
  Checked bad(withTrain("label_column = -1\nnormalize = \"minmax\"\naugment = images(flip = 2, shift = 1.5)"));
  EXPECT_EQ(bad.errors(),
            "t.nn:7:16: error: `label_column` must be a column name (a string) or a 0-based column index, got `-1`\n"
            "    label_column = -1\n"
            "                   ^~\n"
            "t.nn:8:13: error: `normalize` must be one of `none`, `scale`, `standardize`, got `\"minmax\"`\n"
            "    normalize = \"minmax\"\n"
            "                ^~~~~~~~\n"
            "t.nn:9:25: error: `flip` must be a probability in [0, 1], got `2`\n"
            "    augment = images(flip = 2, shift = 1.5)\n"
            "                            ^\n"
            "t.nn:9:36: error: `shift` must be an integer from 0 to 64, got `1.5`\n"
            "    augment = images(flip = 2, shift = 1.5)\n"
            "                                       ^~~\n");
}

TEST(Checker, BadScheduleAndStoppingValues) {
  Checked c(withTrain("lr_schedule = exponential(k = 0, per = \"batch\")\nvalidation_split = 1\n"
                      "early_stopping = patience(0)\noptimizer = sgd(nesterov = true)"));
  EXPECT_EQ(c.errors(),
            "t.nn:7:31: error: `k` must be a positive number, got `0`\n"
            "    lr_schedule = exponential(k = 0, per = \"batch\")\n"
            "                                  ^\n"
            "t.nn:7:40: error: `per` of `exponential` must be one of `epoch`, `step`, got `\"batch\"`\n"
            "    lr_schedule = exponential(k = 0, per = \"batch\")\n"
            "                                           ^~~~~~~\n"
            "t.nn:8:20: error: `validation_split` must be a number in [0, 1), got `1`\n"
            "    validation_split = 1\n"
            "                       ^\n"
            "t.nn:9:27: error: `epochs` must be a positive integer, got `0`\n"
            "    early_stopping = patience(0)\n"
            "                              ^\n"
            "t.nn:10:13: error: `nesterov = true` needs a `momentum` above 0\n"
            "    optimizer = sgd(nesterov = true)\n"
            "                ^~~~~~~~~~~~~~~~~~~~\n");
}

}  // namespace
}  // namespace nnc::dsl
