// Checker: AST -> CheckedModule (see checker.h).
//
//   1. Exactly one `model` (each extra one is an error with a note at the first).
//   2. In the model, in source order: validate input and param types, resolve every Name against the
//      names declared so far, then declare the statement's own name (duplicates are errors).
//   3. Exactly one `return`, and a binding named `loss`.
//   4. The train block (dsl/train_checker.cpp).
#include "dsl/checker.h"
#include "dsl/train_checker.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <unordered_map>

#include <fmt/format.h>

namespace nnc::dsl {

// ---- "did you mean" ----------------------------------------------------------------------------

namespace {

// Levenshtein distance with one rolling row.
size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string backtickList(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i > 0 ? ", `" : "`") + names[i] + "`";
  return out;
}

std::optional<double> literalNumber(const Expr& expr) {
  if (expr.kind == ExprKind::Number) return expr.number;
  if (expr.kind == ExprKind::Unary && expr.args[0]->kind == ExprKind::Number) return -expr.args[0]->number;
  return std::nullopt;
}

std::optional<std::string> closestName(std::string_view name, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_distance = 3;  // suggestions are at most 2 edits away
  for (const std::string& candidate : candidates) {
    size_t distance = editDistance(name, candidate);
    if (distance < best_distance && distance < name.size()) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

std::string didYouMean(std::string_view name, const std::vector<std::string>& candidates) {
  std::optional<std::string> best = closestName(name, candidates);
  return best ? fmt::format("; did you mean `{}`?", *best) : std::string();
}

namespace {

// ---- the model ---------------------------------------------------------------------------------

const std::vector<std::string> kDtypes = {"f32", "f64", "i32"};

// Checks one body (the model's or a function's): types, names in declaration order, one `return`.
class BodyChecker {
 public:
  BodyChecker(const char* what, const std::string& name, Span name_span, const std::vector<Stmt>& body,
              const std::unordered_map<std::string, Span>& globals, DiagnosticEngine& diags)
      : what_(what), name_(name), name_span_(name_span), body_(body), globals_(globals), diags_(diags) {}

  void declareInput(const InputDecl& input) {
    checkType(input.type);
    declare(input.name, input.name_span);
  }
  void declare(const std::string& name, Span span);
  // Checks the statements; returns the `return` statement (null after reporting when missing).
  const Stmt* run();
  // Callee names of every call in the body, with where they are called (for the recursion check).
  const std::vector<std::pair<std::string, Span>>& calls() const { return calls_; }
  const Stmt* findLoss();
  void warnUnused();

 private:
  void checkType(const TypeExpr& type);
  void resolve(const Expr& expr);
  void resolveName(const Expr& name);
  void checkStatement(const Stmt& stmt);

  const char* what_;  // "model" or "function"
  const std::string& name_;
  Span name_span_;
  const std::vector<Stmt>& body_;
  const std::unordered_map<std::string, Span>& globals_;  // constants
  DiagnosticEngine& diags_;
  std::unordered_map<std::string, Span> declared_;  // name -> its declaration
  std::vector<std::string> order_;                  // declared names in order, for suggestions
  std::vector<std::pair<std::string, Span>> calls_;
  std::unordered_map<std::string, bool> used_;
  const Stmt* return_ = nullptr;
};

const Stmt* BodyChecker::run() {
  for (const Stmt& stmt : body_) checkStatement(stmt);
  if (!return_) diags_.report(DiagKind::NoReturn, name_span_, fmt::format("{} `{}` has no `return` statement", what_, name_));
  return return_;
}

// Element type is one of kDtypes; each literal dimension is positive (symbols such as `B` are free).
void BodyChecker::checkType(const TypeExpr& type) {
  if (std::find(kDtypes.begin(), kDtypes.end(), type.dtype) == kDtypes.end()) {
    diags_.report(DiagKind::UnknownElementType, type.dtype_span, fmt::format("unknown element type `{}`{} (valid types: {})", type.dtype,
                                              didYouMean(type.dtype, kDtypes), backtickList(kDtypes)));
  }
  for (const DimExpr& dim : type.dims) {
    if (dim.value && *dim.value <= 0) {
      diags_.report(DiagKind::BadDimension, dim.span, fmt::format("dimension must be a positive integer or a symbol, got `{}`", *dim.value));
    }
  }
}

void BodyChecker::declare(const std::string& name, Span span) {
  auto global = globals_.find(name);
  auto [it, inserted] = declared_.emplace(name, span);
  if (!inserted || global != globals_.end()) {
    Diagnostic& diag = diags_.report(DiagKind::AlreadyDeclared, span, fmt::format("`{}` is already declared", name));
    DiagnosticEngine::note(diag, inserted ? global->second : it->second, "first declared here");
    return;
  }
  order_.push_back(name);
}

void BodyChecker::checkStatement(const Stmt& stmt) {
  if (stmt.type) checkType(*stmt.type);
  if (stmt.value) resolve(*stmt.value);  // before declaring: `h = h + 1` does not see itself
  switch (stmt.kind) {
    case StmtKind::Param:
    case StmtKind::Binding:
      declare(stmt.name, stmt.name_span);
      break;
    case StmtKind::Return:
      if (return_) {
        Diagnostic& diag =
            diags_.report(DiagKind::MultipleReturns, stmt.span, fmt::format("{} `{}` has more than one `return` statement", what_, name_));
        DiagnosticEngine::note(diag, return_->span, "first `return` here");
      } else {
        return_ = &stmt;
      }
      break;
  }
}

// Walks an expression resolving Names. Callees and keyword names are not resolved: they name ops
// and op attributes, which the graph builder's op table owns (or functions, checked for recursion).
void BodyChecker::resolve(const Expr& expr) {
  if (expr.kind == ExprKind::Name) resolveName(expr);
  if (expr.kind == ExprKind::Call) calls_.emplace_back(expr.text, expr.callee_span);
  for (const ExprPtr& arg : expr.args) resolve(*arg);
  for (const KeywordArg& kwarg : expr.kwargs) resolve(*kwarg.value);
}

// Bindings and parameters that no later statement reads (the model's `loss` is read by training). Skipped
// after errors: a misspelled use would make its target look unused, a cascade.
void BodyChecker::warnUnused() {
  if (diags_.hasErrors()) return;
  for (const Stmt& stmt : body_) {
    if (stmt.kind == StmtKind::Return || used_[stmt.name]) continue;
    if (std::string_view(what_) == "model" && stmt.name == "loss") continue;
    if (declared_.count(stmt.name) && declared_.at(stmt.name).begin != stmt.name_span.begin) continue;  // a duplicate
    diags_.report(DiagKind::UnusedName, stmt.name_span,
                  fmt::format("{} `{}` is never used", stmt.kind == StmtKind::Param ? "parameter" : "binding", stmt.name));
  }
}

void BodyChecker::resolveName(const Expr& name) {
  used_[name.text] = true;
  if (declared_.count(name.text) || globals_.count(name.text)) return;
  // Declared further down? Then the fix is to reorder, not to rename.
  for (const Stmt& stmt : body_) {
    if (stmt.kind != StmtKind::Return && stmt.name == name.text) {
      Diagnostic& diag = diags_.report(DiagKind::UsedBeforeDeclared, name.span, fmt::format("`{}` is used before it is declared", name.text));
      DiagnosticEngine::note(diag, stmt.name_span, fmt::format("`{}` declared here", name.text));
      return;
    }
  }
  std::vector<std::string> candidates = order_;
  for (const auto& [global, _] : globals_) candidates.push_back(global);
  std::sort(candidates.begin() + static_cast<long>(order_.size()), candidates.end());
  diags_.report(DiagKind::UndefinedName, name.span, fmt::format("undefined name `{}`{}", name.text, didYouMean(name.text, candidates)));
}

const Stmt* BodyChecker::findLoss() {
  for (const Stmt& stmt : body_) {
    if (stmt.kind == StmtKind::Binding && stmt.name == "loss") return &stmt;
  }
  Diagnostic& diag = diags_.report(DiagKind::NoLoss,
      name_span_, fmt::format("model `{}` has no `loss` binding; the binding named `loss` is what training minimizes",
                              name_));
  auto it = declared_.find("loss");
  if (it != declared_.end()) DiagnosticEngine::note(diag, it->second, "`loss` is declared here, but not as a binding");
  return nullptr;
}


}  // namespace

namespace {

// `const NAME = NUMBER`: each name once, each value a number literal (optionally negated).
std::unordered_map<std::string, Span> checkConstants(const Module& module, DiagnosticEngine& diags) {
  std::unordered_map<std::string, Span> names;
  for (const ConstDecl& constant : module.constants) {
    if (!literalNumber(*constant.value))
      diags.report(DiagKind::ConstNotNumber, constant.value->span, fmt::format("the value of `const {}` must be a number", constant.name));
    auto [it, inserted] = names.emplace(constant.name, constant.name_span);
    if (!inserted) {
      Diagnostic& diag = diags.report(DiagKind::AlreadyDeclared, constant.name_span, fmt::format("`{}` is already declared", constant.name));
      DiagnosticEngine::note(diag, it->second, "first declared here");
    }
  }
  return names;
}

// Reports a call cycle among functions (recursion cannot be inlined) once per cycle, at the call that closes it.
void checkRecursion(const Module& module, const std::vector<std::vector<std::pair<std::string, Span>>>& calls,
                    DiagnosticEngine& diags) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < module.functions.size(); ++i) index.emplace(module.functions[i].name, i);
  enum class Mark { None, Active, Done };
  std::vector<Mark> marks(module.functions.size(), Mark::None);
  std::vector<size_t> path;
  std::function<void(size_t)> visit = [&](size_t f) {
    marks[f] = Mark::Active;
    path.push_back(f);
    for (const auto& [callee, span] : calls[f]) {
      auto it = index.find(callee);
      if (it == index.end()) continue;
      if (marks[it->second] == Mark::Active) {
        std::string cycle;
        for (size_t i = std::find(path.begin(), path.end(), it->second) - path.begin(); i < path.size(); ++i)
          cycle += module.functions[path[i]].name + " -> ";
        Diagnostic& diag = diags.report(DiagKind::RecursiveCall, span, fmt::format("recursive call: {}{}; functions are inlined, so they "
                                                         "cannot call themselves",
                                                         cycle, callee));
        DiagnosticEngine::note(diag, module.functions[it->second].name_span, fmt::format("`{}` declared here", callee));
      } else if (marks[it->second] == Mark::None) {
        visit(it->second);
      }
    }
    path.pop_back();
    marks[f] = Mark::Done;
  };
  for (size_t f = 0; f < module.functions.size(); ++f)
    if (marks[f] == Mark::None) visit(f);
}

// Functions: distinct names, then each body checked with its parameters declared, then recursion.
void checkFunctions(const Module& module, const std::unordered_map<std::string, Span>& globals,
                    DiagnosticEngine& diags) {
  std::unordered_map<std::string, Span> names = globals;
  std::vector<std::vector<std::pair<std::string, Span>>> calls;
  for (const FunctionDecl& function : module.functions) {
    auto [it, inserted] = names.emplace(function.name, function.name_span);
    if (!inserted) {
      Diagnostic& diag = diags.report(DiagKind::AlreadyDeclared, function.name_span, fmt::format("`{}` is already declared", function.name));
      DiagnosticEngine::note(diag, it->second, "first declared here");
    }
    BodyChecker body("function", function.name, function.name_span, function.body, globals, diags);
    for (const FunctionParam& param : function.params) body.declare(param.name, param.span);
    body.run();
    body.warnUnused();
    calls.push_back(body.calls());
  }
  checkRecursion(module, calls, diags);
}

}  // namespace

std::optional<CheckedModule> check(const Module& module, DiagnosticEngine& diags) {
  std::unordered_map<std::string, Span> constants = checkConstants(module, diags);
  checkFunctions(module, constants, diags);
  if (module.models.empty()) {
    diags.report(DiagKind::NoModel, Span{}, "no `model` declaration in this file");
    return std::nullopt;
  }
  for (size_t i = 1; i < module.models.size(); ++i) {
    Diagnostic& diag = diags.report(DiagKind::MultipleModels, module.models[i].name_span, "a file may declare only one `model`");
    DiagnosticEngine::note(diag, module.models[0].name_span, "first `model` declared here");
  }
  const ModelDecl& model = module.models[0];
  BodyChecker body("model", model.name, model.name_span, model.body, constants, diags);
  for (const InputDecl& input : model.inputs) body.declareInput(input);
  const Stmt* output = body.run();
  const Stmt* loss = body.findLoss();
  body.warnUnused();
  TrainConfig train = module.train ? checkTrainBlock(*module.train, diags) : TrainConfig{};
  if (diags.hasErrors()) return std::nullopt;
  return CheckedModule{&module, &model, loss, output, std::move(train)};
}

}  // namespace nnc::dsl
