// AST printer (see ast_printer.h). One line per node, two spaces of indent per level:
//
//   Binding fc1 @4:5
//     Call linear @4:11
//       Name x @4:18
//
// Numbers print in shortest round-trip form (`0.05`, `256`), strings re-escaped in double quotes.
#include "dsl/ast_printer.h"

#include <fmt/format.h>

namespace nnc::dsl {
namespace {

const char* binaryOpText(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "+";
    case BinaryOp::Sub: return "-";
    case BinaryOp::Mul: return "*";
    case BinaryOp::Div: return "/";
    case BinaryOp::MatMul: return "@";
  }
  return "?";
}

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default: out += c;
    }
  }
  return out + "\"";
}

std::string typeText(const TypeExpr& type) {
  std::string out = type.dtype + "[";
  for (size_t i = 0; i < type.dims.size(); ++i) {
    if (i > 0) out += ", ";
    const DimExpr& dim = type.dims[i];
    out += dim.value ? std::to_string(*dim.value) : dim.symbol;
  }
  return out + "]";
}

class Printer {
 public:
  explicit Printer(const SourceFile& source) : source_(source) {}

  std::string print(const Module& module) {
    line(0, "Module", std::nullopt);
    for (const ConstDecl& constant : module.constants) {
      line(1, "Const " + constant.name, constant.name_span);
      if (constant.value) printExpr(*constant.value, 2);
    }
    for (const FunctionDecl& function : module.functions) printFunction(function);
    for (const ModelDecl& model : module.models) printModel(model);
    if (module.train) printTrain(*module.train);
    return std::move(out_);
  }

 private:
  // Appends one node line: indent, label, and ` @LINE:COL` when the node has a position.
  void line(int depth, const std::string& label, std::optional<Span> at) {
    out_.append(static_cast<size_t>(depth) * 2, ' ');
    out_ += label;
    if (at) {
      LineCol pos = source_.lineCol(at->begin);
      out_ += fmt::format(" @{}:{}", pos.line, pos.col);
    }
    out_ += '\n';
  }

  void printModel(const ModelDecl& model) {
    line(1, "Model " + model.name, model.name_span);
    for (const InputDecl& input : model.inputs) {
      line(2, fmt::format("Input {}: {}", input.name, typeText(input.type)), input.name_span);
    }
    for (const Stmt& stmt : model.body) printStmt(stmt);
  }

  void printFunction(const FunctionDecl& function) {
    line(1, "Function " + function.name, function.name_span);
    for (const FunctionParam& param : function.params) line(2, "Arg " + param.name, param.span);
    for (const Stmt& stmt : function.body) printStmt(stmt);
  }

  void printStmt(const Stmt& stmt) {
    switch (stmt.kind) {
      case StmtKind::Param:
        line(2, fmt::format("Param {}: {}", stmt.name, typeText(*stmt.type)), stmt.name_span);
        break;
      case StmtKind::Binding:
        line(2, "Binding " + stmt.name, stmt.name_span);
        break;
      case StmtKind::Return:
        line(2, "Return", stmt.span);
        break;
    }
    if (stmt.value) printExpr(*stmt.value, 3);
  }

  void printTrain(const TrainBlock& train) {
    line(1, "Train", train.span);
    for (const TrainEntry& entry : train.entries) {
      line(2, "Entry " + entry.key, entry.key_span);
      if (entry.value) printExpr(*entry.value, 3);
    }
  }

  void printExpr(const Expr& expr, int depth) {
    switch (expr.kind) {
      case ExprKind::Number: line(depth, fmt::format("Number {}", expr.number), expr.span); break;
      case ExprKind::String: line(depth, "String " + quoted(expr.text), expr.span); break;
      case ExprKind::Name: line(depth, "Name " + expr.text, expr.span); break;
      // Operators print the position of their operator token, which tells `a + b * c` nodes apart.
      case ExprKind::Unary: line(depth, "Unary -", expr.op_span); break;
      case ExprKind::Binary: line(depth, fmt::format("Binary {}", binaryOpText(expr.binary_op)), expr.op_span); break;
      case ExprKind::Call: line(depth, "Call " + expr.text, expr.span); break;
    }
    for (const ExprPtr& arg : expr.args) printExpr(*arg, depth + 1);
    for (const KeywordArg& kwarg : expr.kwargs) {
      line(depth + 1, "Kwarg " + kwarg.name, kwarg.name_span);
      printExpr(*kwarg.value, depth + 2);
    }
  }

  const SourceFile& source_;
  std::string out_;
};

}  // namespace

std::string printAst(const Module& module, const SourceFile& source) { return Printer(source).print(module); }

}  // namespace nnc::dsl
