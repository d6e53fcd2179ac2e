// The abstract syntax tree of a .nn file, as the parser builds it (names unresolved, shapes unchecked).
//
// A module holds one `model` declaration and an optional `train { ... }` block:
//
//   model mlp(x: f32[B, 784], y: i32[B]) {
//       h = relu(linear(x, 256))
//       logits = linear(h, 10)
//       loss = cross_entropy(logits, y)
//       return logits
//   }
//   train { batch = 64  optimizer = sgd(lr = 0.05, momentum = 0.9) }
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dsl/source.h"

namespace nnc::dsl {

enum class BinaryOp { Add, Sub, Mul, Div, MatMul };
enum class UnaryOp { Neg };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct KeywordArg {
  std::string name;
  Span name_span;
  ExprPtr value;
};

enum class ExprKind {
  Number,  // 3, 0.05, 1e-3: `number`, `is_integer`
  String,  // "path/to/dir": `text` without quotes, escapes resolved
  Name,    // x: `text`
  Unary,   // -x: `unary_op`, operand in `args[0]`
  Binary,  // a + b: `binary_op`, operands in `args[0]`, `args[1]`
  Call,    // relu(x), sgd(lr = 0.1): callee in `text` (`callee_span`), `args`, `kwargs`
};

struct Expr {
  ExprKind kind = ExprKind::Number;
  Span span;  // the whole expression
  double number = 0;
  bool is_integer = false;
  std::string text;
  Span callee_span;
  UnaryOp unary_op = UnaryOp::Neg;
  BinaryOp binary_op = BinaryOp::Add;
  Span op_span;  // the operator token of Unary and Binary
  std::vector<ExprPtr> args;
  std::vector<KeywordArg> kwargs;
};

// One dimension of a declared shape: a literal extent or a symbol such as `B`.
struct DimExpr {
  std::optional<int64_t> value;  // set for literals
  std::string symbol;            // set for symbols
  Span span;
};

// `f32[B, 784]`
struct TypeExpr {
  std::string dtype;  // "f32", "f64", "i32"
  Span dtype_span;
  std::vector<DimExpr> dims;
  Span span;
};

// `x: f32[B, 784]` in the model's parameter list.
struct InputDecl {
  std::string name;
  Span name_span;
  TypeExpr type;
};

enum class StmtKind {
  Param,    // param W: f32[784, 10] = zeros()
  Binding,  // h = relu(x)
  Return,   // return logits
};

struct Stmt {
  StmtKind kind = StmtKind::Binding;
  Span span;
  std::string name;  // Param and Binding
  Span name_span;
  std::optional<TypeExpr> type;  // Param
  ExprPtr value;  // initializer (Param), bound value (Binding), returned value (Return)
};

struct ModelDecl {
  std::string name;
  Span name_span;
  Span span;
  std::vector<InputDecl> inputs;
  std::vector<Stmt> body;
};

// A parameter of a function: a name, bound at each call to a tensor or a number.
struct FunctionParam {
  std::string name;
  Span span;
};

// `fn dense(x, width) { h = linear(x, width)  return relu(h) }`: a reusable piece of a model. Each call is
// inlined; the parameters it creates are named after the calling binding (`block1.h.weight`).
struct FunctionDecl {
  std::string name;
  Span name_span;
  Span span;
  std::vector<FunctionParam> params;
  std::vector<Stmt> body;
};

// `const HIDDEN = 256`: a named number, usable in expressions, shapes and layer arguments.
struct ConstDecl {
  std::string name;
  Span name_span;
  Span span;
  ExprPtr value;
};

// `key = value` inside `train { ... }`.
struct TrainEntry {
  std::string key;
  Span key_span;
  ExprPtr value;
};

struct TrainBlock {
  Span span;
  std::vector<TrainEntry> entries;
};

struct Module {
  std::vector<ConstDecl> constants;
  std::vector<FunctionDecl> functions;
  std::vector<ModelDecl> models;  // the checker requires exactly one
  std::optional<TrainBlock> train;
};

}  // namespace nnc::dsl
