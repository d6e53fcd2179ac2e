// The train block checker. Settings whose value is a call (`optimizer = sgd(lr = 0.1)`, `lr_schedule =
// step(every = 2)`, `early_stopping = patience(3)`) are checked against a table of CallSpecs: which calls
// exist, which arguments each takes, and each argument's kind and range. Nothing falls back silently.
#include "dsl/train_checker.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

namespace nnc::dsl {

namespace {

enum class ArgKind { Number, Integer, Flag, Choice };

struct ArgSpec {
  std::string name;
  ArgKind kind = ArgKind::Number;
  double low = -INFINITY, high = INFINITY;  // Number, Integer: the valid range
  bool low_open = false, high_open = false;
  std::string expectation;              // "a positive number", shown when the value is out of range
  std::vector<std::string> choices;     // Choice: the valid strings
};

struct CallSpec {
  std::string name;
  std::vector<ArgSpec> args;
  size_t positional = 0;  // how many leading arguments may be given by position
};

// What a train-block setting whose value is a call is called in messages.
struct CallSetting {
  const char* example;  // "an optimizer call such as `sgd(lr = 0.01)`"
  const char* noun;     // "optimizer"
  const char* nouns;    // "optimizers"
  DiagKind unknown, bad_argument;
  std::vector<CallSpec> calls;
};

ArgSpec positive(const std::string& name) { return {name, ArgKind::Number, 0, INFINITY, true, false, "a positive number", {}}; }
ArgSpec fraction(const std::string& name) { return {name, ArgKind::Number, 0, 1, false, true, "a number in [0, 1)", {}}; }
ArgSpec nonNegative(const std::string& name) {
  return {name, ArgKind::Number, 0, INFINITY, false, false, "a non-negative number", {}};
}
ArgSpec positiveInteger(const std::string& name) {
  return {name, ArgKind::Integer, 1, 1e9, false, false, "a positive integer", {}};
}
ArgSpec flag(const std::string& name) { return {name, ArgKind::Flag, 0, 1, false, false, "`true` or `false`", {}}; }
ArgSpec choice(const std::string& name, std::vector<std::string> choices) {
  return {name, ArgKind::Choice, 0, 0, false, false, "", std::move(choices)};
}

const CallSetting& optimizerSetting() {
  static const CallSetting kSetting{
      "an optimizer call such as `sgd(lr = 0.01)`", "optimizer", "optimizers", DiagKind::UnknownOptimizer,
      DiagKind::BadOptimizerArgument,
      {{"sgd", {positive("lr"), fraction("momentum"), flag("nesterov"), nonNegative("weight_decay")}, 0},
       {"rmsprop", {positive("lr"), fraction("alpha"), positive("eps"), nonNegative("weight_decay")}, 0},
       {"adam", {positive("lr"), fraction("beta1"), fraction("beta2"), positive("eps"), nonNegative("weight_decay")}, 0},
       {"adamw", {positive("lr"), fraction("beta1"), fraction("beta2"), positive("eps"), nonNegative("weight_decay")}, 0}}};
  return kSetting;
}

const CallSetting& lrScheduleSetting() {
  static const std::vector<std::string> kPer = {"epoch", "step"};
  static const CallSetting kSetting{
      "a schedule call such as `step(every = 2, factor = 0.5)`", "learning-rate schedule", "schedules",
      DiagKind::UnknownLrSchedule, DiagKind::UnknownLrSchedule,
      {{"constant", {}, 0},
       {"cosine", {}, 0},
       {"exponential", {positive("k"), choice("per", kPer)}, 0},
       {"step", {positiveInteger("every"), {"factor", ArgKind::Number, 0, 1, true, true, "a number in (0, 1)", {}},
                 choice("per", kPer)}, 0},
       {"inverse", {positive("k"), choice("per", kPer)}, 0}}};
  return kSetting;
}

const CallSetting& earlyStoppingSetting() {
  static const CallSetting kSetting{
      "a call such as `patience(3)`", "early-stopping rule", "rules", DiagKind::BadTrainValue, DiagKind::BadTrainValue,
      {{"patience", {positiveInteger("epochs"), choice("monitor", {"val_loss", "val_accuracy"})}, 1}}};
  return kSetting;
}

const CallSetting& augmentSetting() {
  static const CallSetting kSetting{
      "a call such as `images(flip = 0.5, shift = 2)`", "augmentation", "augmentations", DiagKind::BadTrainValue,
      DiagKind::BadTrainValue,
      {{"images", {{"flip", ArgKind::Number, 0, 1, false, false, "a probability in [0, 1]", {}},
                   {"shift", ArgKind::Integer, 0, 64, false, false, "an integer from 0 to 64", {}}}, 0}}};
  return kSetting;
}

const std::vector<std::string> kTrainKeys = {"data",          "batch",          "epochs",           "seed",
                                             "optimizer",     "lr_schedule",    "validation_split", "early_stopping",
                                             "clip_grad_norm", "label_column",  "normalize",        "augment"};

template <typename T>
std::vector<std::string> namesOf(const std::vector<T>& items) {
  std::vector<std::string> names;
  for (const T& item : items) names.push_back(item.name);
  return names;
}

// The checked arguments of one call: numbers (flags as 0/1) and strings, by argument name.
struct CallValues {
  std::string name;
  std::map<std::string, double> numbers;
  std::map<std::string, std::string> strings;
};

class TrainChecker {
 public:
  explicit TrainChecker(DiagnosticEngine& diags) : diags_(diags) {}
  TrainConfig run(const TrainBlock& block);

 private:
  void checkEntry(const TrainEntry& entry);
  std::optional<int64_t> integer(const TrainEntry& entry, int64_t min, const char* what);
  std::optional<CallValues> checkCall(const std::string& key, const Expr& value, const CallSetting& setting);
  bool checkArg(const CallSpec& call, const ArgSpec& arg, const Expr& value, DiagKind kind, CallValues& out);
  void applyOptimizer(const CallValues& values, Span span);
  void applyLrSchedule(const CallValues& values);
  std::string_view sourceText(Span span) const { return diags_.source().slice(span); }

  DiagnosticEngine& diags_;
  TrainConfig config_;
};

TrainConfig TrainChecker::run(const TrainBlock& block) {
  std::unordered_map<std::string, Span> seen;  // key -> where it was first set
  for (const TrainEntry& entry : block.entries) {
    auto [it, inserted] = seen.emplace(entry.key, entry.key_span);
    if (!inserted) {
      Diagnostic& diag = diags_.report(DiagKind::DuplicateTrainSetting, entry.key_span,
                                       fmt::format("training setting `{}` is set twice", entry.key));
      DiagnosticEngine::note(diag, it->second, "first set here");
      continue;
    }
    checkEntry(entry);
  }
  return config_;
}

void TrainChecker::checkEntry(const TrainEntry& entry) {
  const Expr& value = *entry.value;
  if (entry.key == "data") {
    if (value.kind == ExprKind::String) config_.data = value.text;
    else
      diags_.report(DiagKind::BadTrainValue, value.span,
                    fmt::format("`data` must be a string (the dataset directory), got `{}`", sourceText(value.span)));
  } else if (entry.key == "batch") {
    if (auto n = integer(entry, 1, "a positive integer")) config_.batch = *n;
  } else if (entry.key == "epochs") {
    if (auto n = integer(entry, 1, "a positive integer")) config_.epochs = *n;
  } else if (entry.key == "seed") {
    if (auto n = integer(entry, 0, "a non-negative integer")) config_.seed = static_cast<uint64_t>(*n);
  } else if (entry.key == "validation_split") {
    std::optional<double> number = literalNumber(value);
    if (number && *number >= 0 && *number < 1) config_.validation_split = *number;
    else
      diags_.report(DiagKind::BadTrainValue, value.span,
                    fmt::format("`validation_split` must be a number in [0, 1), got `{}`", sourceText(value.span)));
  } else if (entry.key == "clip_grad_norm") {
    std::optional<double> number = literalNumber(value);
    if (number && *number > 0 && std::isfinite(*number)) config_.clip_grad_norm = *number;
    else
      diags_.report(DiagKind::BadTrainValue, value.span,
                    fmt::format("`clip_grad_norm` must be a positive number, got `{}`", sourceText(value.span)));
  } else if (entry.key == "label_column") {
    std::optional<double> number = literalNumber(value);
    if (value.kind == ExprKind::String && !value.text.empty()) config_.label_column = value.text;
    else if (number && *number >= 0 && *number == std::floor(*number) && *number < 1e9)
      config_.label_column = std::to_string(static_cast<int64_t>(*number));
    else
      diags_.report(DiagKind::BadTrainValue, value.span,
                    fmt::format("`label_column` must be a column name (a string) or a 0-based column index, got `{}`",
                                sourceText(value.span)));
  } else if (entry.key == "normalize") {
    static const std::vector<std::string> kNormalizations = {"none", "scale", "standardize"};
    if (value.kind == ExprKind::String &&
        std::find(kNormalizations.begin(), kNormalizations.end(), value.text) != kNormalizations.end())
      config_.normalize = value.text;
    else
      diags_.report(DiagKind::BadTrainValue, value.span,
                    fmt::format("`normalize` must be one of {}, got `{}`", backtickList(kNormalizations),
                                sourceText(value.span)));
  } else if (entry.key == "augment") {
    if (auto call = checkCall(entry.key, value, augmentSetting())) {
      if (call->numbers.count("flip")) config_.augment_flip = call->numbers.at("flip");
      if (call->numbers.count("shift")) config_.augment_shift = static_cast<int64_t>(call->numbers.at("shift"));
    }
  } else if (entry.key == "optimizer") {
    if (auto call = checkCall(entry.key, value, optimizerSetting())) applyOptimizer(*call, value.span);
  } else if (entry.key == "lr_schedule") {
    if (auto call = checkCall(entry.key, value, lrScheduleSetting())) applyLrSchedule(*call);
  } else if (entry.key == "early_stopping") {
    if (auto call = checkCall(entry.key, value, earlyStoppingSetting())) {
      config_.early_stopping.patience = static_cast<int64_t>(call->numbers.at("epochs"));
      config_.early_stopping.span = value.span;
      if (call->strings.count("monitor")) config_.early_stopping.monitor = call->strings.at("monitor");
    }
  } else {
    diags_.report(DiagKind::UnknownTrainSetting, entry.key_span,
                  fmt::format("unknown training setting `{}`{} (valid settings: {})", entry.key,
                              didYouMean(entry.key, kTrainKeys), backtickList(kTrainKeys)));
  }
}

// An integer literal >= min (a leading `-` is accepted so that `seed = -1` gets a range error).
std::optional<int64_t> TrainChecker::integer(const TrainEntry& entry, int64_t min, const char* what) {
  const Expr& value = *entry.value;
  const Expr& literal = value.kind == ExprKind::Unary ? *value.args[0] : value;
  std::optional<double> number = literalNumber(value);
  bool ok = number && literal.kind == ExprKind::Number && literal.is_integer && *number >= static_cast<double>(min) &&
            *number < 9.2e18;  // fits int64_t
  if (!ok) {
    diags_.report(DiagKind::BadTrainValue, value.span,
                  fmt::format("`{}` must be {}, got `{}`", entry.key, what, sourceText(value.span)));
    return std::nullopt;
  }
  return static_cast<int64_t>(*number);
}

// A call of one of `setting`'s calls, each argument known, given once and valid. Reports every problem.
std::optional<CallValues> TrainChecker::checkCall(const std::string& key, const Expr& value,
                                                  const CallSetting& setting) {
  if (value.kind != ExprKind::Call) {
    diags_.report(setting.unknown, value.span,
                  fmt::format("`{}` must be {}, got `{}`", key, setting.example, sourceText(value.span)));
    return std::nullopt;
  }
  const CallSpec* call = nullptr;
  for (const CallSpec& spec : setting.calls)
    if (spec.name == value.text) call = &spec;
  if (!call) {
    diags_.report(setting.unknown, value.callee_span,
                  fmt::format("unknown {} `{}`{} (valid {}: {})", setting.noun, value.text,
                              didYouMean(value.text, namesOf(setting.calls)), setting.nouns,
                              backtickList(namesOf(setting.calls))));
    return std::nullopt;
  }
  if (call->args.empty() && (!value.args.empty() || !value.kwargs.empty())) {
    diags_.report(setting.bad_argument, value.span, fmt::format("`{}()` takes no arguments", call->name));
    return std::nullopt;
  }
  CallValues out{call->name, {}, {}};
  bool ok = true;
  std::unordered_map<std::string, Span> seen;
  for (size_t i = 0; i < value.args.size(); ++i) {
    if (i >= call->positional) {
      diags_.report(setting.bad_argument, value.args[i]->span,
                    fmt::format("`{}` takes {} (valid arguments: {})", call->name,
                                call->positional ? fmt::format("at most {} positional argument", call->positional)
                                                 : std::string("only keyword arguments"),
                                backtickList(namesOf(call->args))));
      ok = false;
      continue;
    }
    seen.emplace(call->args[i].name, value.args[i]->span);
    ok = checkArg(*call, call->args[i], *value.args[i], setting.bad_argument, out) && ok;
  }
  for (const KeywordArg& kwarg : value.kwargs) {
    auto spec = std::find_if(call->args.begin(), call->args.end(), [&](const ArgSpec& a) { return a.name == kwarg.name; });
    if (spec == call->args.end()) {
      diags_.report(setting.bad_argument, kwarg.name_span,
                    fmt::format("unknown `{}` argument `{}`{} (valid arguments: {})", call->name, kwarg.name,
                                didYouMean(kwarg.name, namesOf(call->args)), backtickList(namesOf(call->args))));
      ok = false;
      continue;
    }
    auto [it, inserted] = seen.emplace(kwarg.name, kwarg.name_span);
    if (!inserted) {
      Diagnostic& diag = diags_.report(setting.bad_argument, kwarg.name_span,
                                       fmt::format("`{}` argument `{}` is given twice", call->name, kwarg.name));
      DiagnosticEngine::note(diag, it->second, "first given here");
      ok = false;
      continue;
    }
    ok = checkArg(*call, *spec, *kwarg.value, setting.bad_argument, out) && ok;
  }
  return ok ? std::optional<CallValues>(std::move(out)) : std::nullopt;
}

bool TrainChecker::checkArg(const CallSpec& call, const ArgSpec& arg, const Expr& value, DiagKind kind,
                            CallValues& out) {
  std::string_view got = sourceText(value.span);
  switch (arg.kind) {
    case ArgKind::Flag:
      if (value.kind == ExprKind::Name && (value.text == "true" || value.text == "false")) {
        out.numbers[arg.name] = value.text == "true";
        return true;
      }
      break;
    case ArgKind::Choice:
      if (value.kind == ExprKind::String &&
          std::find(arg.choices.begin(), arg.choices.end(), value.text) != arg.choices.end()) {
        out.strings[arg.name] = value.text;
        return true;
      }
      diags_.report(kind, value.span, fmt::format("`{}` of `{}` must be one of {}, got `{}`", arg.name, call.name,
                                                   backtickList(arg.choices), got));
      return false;
    case ArgKind::Number:
    case ArgKind::Integer: {
      std::optional<double> number = literalNumber(value);
      bool in_range = number && std::isfinite(*number) && (arg.low_open ? *number > arg.low : *number >= arg.low) &&
                      (arg.high_open ? *number < arg.high : *number <= arg.high) &&
                      (arg.kind == ArgKind::Number || *number == std::floor(*number));
      if (in_range) {
        out.numbers[arg.name] = *number;
        return true;
      }
      break;
    }
  }
  diags_.report(kind, value.span, fmt::format("`{}` must be {}, got `{}`", arg.name, arg.expectation, got));
  return false;
}

void TrainChecker::applyOptimizer(const CallValues& values, Span span) {
  OptimizerConfig& opt = config_.optimizer;
  opt.name = values.name;
  opt.span = span;
  auto get = [&](const char* name, double fallback) {
    auto it = values.numbers.find(name);
    return it == values.numbers.end() ? fallback : it->second;
  };
  // PyTorch's defaults for each optimizer.
  bool adaptive = opt.name == "adam" || opt.name == "adamw";
  opt.lr = get("lr", adaptive ? 1e-3 : 1e-2);
  opt.momentum = get("momentum", 0);
  opt.nesterov = get("nesterov", 0) != 0;
  opt.weight_decay = get("weight_decay", opt.name == "adamw" ? 1e-2 : 0);
  opt.alpha = get("alpha", 0.99);
  opt.beta1 = get("beta1", 0.9);
  opt.beta2 = get("beta2", 0.999);
  opt.eps = get("eps", 1e-8);
  if (opt.nesterov && opt.momentum == 0)
    diags_.report(DiagKind::BadOptimizerArgument, span, "`nesterov = true` needs a `momentum` above 0");
}

void TrainChecker::applyLrSchedule(const CallValues& values) {
  LrScheduleConfig& schedule = config_.lr_schedule;
  schedule.name = values.name;
  if (values.numbers.count("k")) schedule.k = values.numbers.at("k");
  if (values.numbers.count("factor")) schedule.factor = values.numbers.at("factor");
  if (values.numbers.count("every")) schedule.every = static_cast<int64_t>(values.numbers.at("every"));
  if (values.strings.count("per")) schedule.per_epoch = values.strings.at("per") == "epoch";
}

}  // namespace

TrainConfig checkTrainBlock(const TrainBlock& block, DiagnosticEngine& diags) { return TrainChecker(diags).run(block); }

}  // namespace nnc::dsl
