// Parser: tokens -> AST (see parser.h).
//
// Error handling: a syntax error is reported once and unwinds (as a private SyntaxError) to the loop
// over statements, which skips tokens up to the next statement start and carries on. Errors that do not
// break the structure (a positional argument after a keyword one, a bad number) are reported in place
// and parsing continues without unwinding.
#include "dsl/parser.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

namespace nnc::dsl {
namespace {

// Thrown after a syntax error has been reported; caught where the parser resynchronises.
struct SyntaxError {};

Span join(Span a, Span b) { return Span{a.begin, b.end}; }

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const SourceFile& source, DiagnosticEngine& diags)
      : tokens_(tokens), source_(source), diags_(diags) {}

  Module parseModule();

 private:
  // ---- token cursor ----
  const Token& peek(size_t ahead = 0) const {
    size_t i = pos_ + ahead;
    return i < tokens_.size() ? tokens_[i] : eof_;
  }
  bool check(TokenKind kind) const { return peek().kind == kind; }
  const Token& advance() {
    const Token& token = peek();
    if (pos_ < tokens_.size() && token.kind != TokenKind::Eof) ++pos_;
    return token;
  }
  bool match(TokenKind kind) {
    if (!check(kind)) return false;
    advance();
    return true;
  }
  const Token& expect(TokenKind kind, const char* message) {
    if (!check(kind)) fail(message);
    return advance();
  }
  std::string_view text(const Token& token) const { return source_.slice(token.span); }
  Span previousEnd() const {
    uint32_t end = pos_ > 0 ? tokens_[pos_ - 1].span.end : 0;
    return Span{end, end};
  }

  // Reports a syntax error at the current token (just after the previous one at end of file), then unwinds.
  [[noreturn]] void fail(const std::string& message, DiagKind kind = DiagKind::ExpectedSyntax) {
    Span at = check(TokenKind::Eof) ? previousEnd() : peek().span;
    // The lexer already reported Error tokens; do not pile a second message on them.
    if (!check(TokenKind::Error)) diags_.report(kind, at, message);
    throw SyntaxError{};
  }

  bool atStatementStart() const;
  void synchronize(size_t statement_begin);

  // ---- declarations ----
  void parseModelDecl(Module& module);
  void parseModelHeader(ModelDecl& model);
  void parseBody(std::vector<Stmt>& body, const char* what, const std::string& name, Span name_span);
  void parseFunctionDecl(Module& module);
  void parseFunctionHeader(FunctionDecl& function);
  void parseConstDecl(Module& module);
  bool atTopLevelKeyword() const;
  InputDecl parseInput();
  TypeExpr parseType();
  DimExpr parseDim();
  Stmt parseStatement();
  Stmt parseParamDecl();
  Stmt parseBinding();
  Stmt parseReturn();
  void parseTrainBlock(Module& module);
  TrainEntry parseTrainEntry();

  // ---- expressions ----
  ExprPtr parseExpr();
  ExprPtr parseAdditive();
  ExprPtr parseMultiplicative();
  ExprPtr parseUnary();
  ExprPtr parsePrimary();
  ExprPtr parseNumber();
  ExprPtr parseCall();
  void parseArg(Expr& call, Span& first_kwarg);
  ExprPtr makeBinary(BinaryOp op, Span op_span, ExprPtr lhs, ExprPtr rhs);

  // Counts expression nesting so hostile input gets an error instead of a stack overflow.
  struct DepthGuard {
    Parser& parser;
    explicit DepthGuard(Parser& p) : parser(p) {
      if (parser.depth_ >= kMaxExprDepth) parser.fail("expression nested too deeply", DiagKind::NestedTooDeeply);
      ++parser.depth_;  // only after the check: a throwing constructor runs no destructor
    }
    ~DepthGuard() { --parser.depth_; }
  };

  const std::vector<Token>& tokens_;
  const SourceFile& source_;
  DiagnosticEngine& diags_;
  size_t pos_ = 0;
  int depth_ = 0;
  Token eof_{TokenKind::Eof, Span{}, {}, false};
};

// ---- recovery ----------------------------------------------------------------------------------

// A statement starts at `param`, `return`, `}`, a line-initial `name =`, or a top-level keyword.
bool Parser::atStatementStart() const {
  switch (peek().kind) {
    case TokenKind::Param:
    case TokenKind::Return:
    case TokenKind::RBrace:
    case TokenKind::Model:
    case TokenKind::Train:
    case TokenKind::Fn:
    case TokenKind::Const:
    case TokenKind::Eof:
      return true;
    case TokenKind::Identifier:
      return peek().starts_line && peek(1).kind == TokenKind::Equal;
    default:
      return false;
  }
}

// Skips to the next statement start. Always moves past the first token of a statement that failed
// on its very first token, so the caller's loop makes progress.
void Parser::synchronize(size_t statement_begin) {
  if (pos_ == statement_begin) advance();
  while (!atStatementStart()) advance();
}

// ---- declarations ------------------------------------------------------------------------------

bool Parser::atTopLevelKeyword() const {
  return check(TokenKind::Model) || check(TokenKind::Train) || check(TokenKind::Fn) || check(TokenKind::Const) ||
         check(TokenKind::Eof);
}

/// module = { const_decl | fn_decl | model_decl | train_block } EOF
Module Parser::parseModule() {
  Module module;
  while (!check(TokenKind::Eof)) {
    if (check(TokenKind::Model)) {
      parseModelDecl(module);
    } else if (check(TokenKind::Train)) {
      parseTrainBlock(module);
    } else if (check(TokenKind::Fn)) {
      parseFunctionDecl(module);
    } else if (check(TokenKind::Const)) {
      parseConstDecl(module);
    } else {
      if (!check(TokenKind::Error))
        diags_.report(DiagKind::TopLevelJunk, peek().span, "expected `model`, `fn`, `const` or `train` at the top level");
      advance();
      while (!atTopLevelKeyword()) advance();
    }
  }
  return module;
}

/// const_decl = "const" IDENT "=" expr
void Parser::parseConstDecl(Module& module) {
  ConstDecl constant;
  uint32_t begin = advance().span.begin;  // `const`
  try {
    const Token& name = expect(TokenKind::Identifier, "expected a name after `const`");
    constant.name = std::string(text(name));
    constant.name_span = name.span;
    expect(TokenKind::Equal, "expected `=` and a value after the constant's name");
    constant.value = parseExpr();
    match(TokenKind::Semicolon);
  } catch (const SyntaxError&) {
    while (!atTopLevelKeyword()) advance();
    return;
  }
  constant.span = Span{begin, previousEnd().end};
  module.constants.push_back(std::move(constant));
}

/// fn_decl = "fn" IDENT "(" [ IDENT { "," IDENT } ] ")" "{" { statement } "}"
void Parser::parseFunctionDecl(Module& module) {
  FunctionDecl function;
  uint32_t begin = advance().span.begin;  // `fn`
  try {
    parseFunctionHeader(function);
  } catch (const SyntaxError&) {
    while (!check(TokenKind::LBrace) && !atTopLevelKeyword()) advance();
  }
  if (match(TokenKind::LBrace)) parseBody(function.body, "function", function.name, function.name_span);
  function.span = Span{begin, previousEnd().end};
  module.functions.push_back(std::move(function));
}

// The part of fn_decl before the body: IDENT "(" [ IDENT { "," IDENT } ] ")" "{"
void Parser::parseFunctionHeader(FunctionDecl& function) {
  const Token& name = expect(TokenKind::Identifier, "expected a function name after `fn`");
  function.name = std::string(text(name));
  function.name_span = name.span;
  expect(TokenKind::LParen, "expected `(` after the function name");
  if (!check(TokenKind::RParen)) {
    do {
      const Token& param = expect(TokenKind::Identifier, "expected a parameter name");
      function.params.push_back({std::string(text(param)), param.span});
    } while (match(TokenKind::Comma));
  }
  expect(TokenKind::RParen, "expected `)` after the function's parameters");
  if (!check(TokenKind::LBrace)) fail("expected `{` to begin the function body");
}

/// model_decl = "model" IDENT "(" [ input { "," input } ] ")" "{" { statement } "}"
void Parser::parseModelDecl(Module& module) {
  ModelDecl model;
  uint32_t begin = advance().span.begin;  // `model`
  try {
    parseModelHeader(model);
  } catch (const SyntaxError&) {
    // Skip the rest of the header; if its `{` turns up, the body can still be checked for errors.
    while (!check(TokenKind::LBrace) && !atTopLevelKeyword()) advance();
  }
  if (match(TokenKind::LBrace)) parseBody(model.body, "model", model.name, model.name_span);
  model.span = Span{begin, previousEnd().end};
  module.models.push_back(std::move(model));
}

// The part of model_decl before the body: IDENT "(" [ input { "," input } ] ")" "{"
void Parser::parseModelHeader(ModelDecl& model) {
  const Token& name = expect(TokenKind::Identifier, "expected a model name after `model`");
  model.name = std::string(text(name));
  model.name_span = name.span;
  expect(TokenKind::LParen, "expected `(` after the model name");
  if (!check(TokenKind::RParen)) {
    do {
      model.inputs.push_back(parseInput());
    } while (match(TokenKind::Comma));
  }
  expect(TokenKind::RParen, "expected `)` after the model inputs");
  if (!check(TokenKind::LBrace)) fail("expected `{` to begin the model body");
}

// The body of a model or function after "{": { statement } "}"
void Parser::parseBody(std::vector<Stmt>& body, const char* what, const std::string& name, Span name_span) {
  while (!check(TokenKind::RBrace)) {
    if (atTopLevelKeyword()) {
      Span at = check(TokenKind::Eof) ? previousEnd() : peek().span;
      Diagnostic& diag = diags_.report(DiagKind::UnclosedBody, at, fmt::format("expected `}}` to close {} `{}`", what, name));
      DiagnosticEngine::note(diag, name_span, fmt::format("{} begins here", what));
      return;
    }
    size_t begin = pos_;
    try {
      body.push_back(parseStatement());
    } catch (const SyntaxError&) {
      synchronize(begin);
    }
  }
  advance();  // `}`
}

/// input = IDENT ":" type
InputDecl Parser::parseInput() {
  InputDecl input;
  const Token& name = expect(TokenKind::Identifier, "expected an input name");
  input.name = std::string(text(name));
  input.name_span = name.span;
  expect(TokenKind::Colon, "expected `:` and a type after the input name");
  input.type = parseType();
  return input;
}

/// type = IDENT "[" [ dim { "," dim } ] "]"
TypeExpr Parser::parseType() {
  TypeExpr type;
  const Token& dtype = expect(TokenKind::Identifier, "expected a type such as `f32[B, 784]`");
  type.dtype = std::string(text(dtype));
  type.dtype_span = dtype.span;
  expect(TokenKind::LBracket, "expected `[` and a shape after the element type");
  if (!check(TokenKind::RBracket)) {
    do {
      type.dims.push_back(parseDim());
    } while (match(TokenKind::Comma));
  }
  const Token& close = expect(TokenKind::RBracket, "expected `]` after the dimensions");
  type.span = join(dtype.span, close.span);
  return type;
}

/// dim = INT | IDENT
DimExpr Parser::parseDim() {
  DimExpr dim;
  dim.span = peek().span;
  if (check(TokenKind::Identifier)) {
    dim.symbol = std::string(text(advance()));
    return dim;
  }
  std::string_view digits = text(peek());
  bool is_int = check(TokenKind::Number) && digits.find_first_not_of("0123456789") == std::string_view::npos;
  if (!is_int) fail("expected a dimension (an integer or a symbol such as `B`)");
  advance();
  errno = 0;
  long long value = std::strtoll(std::string(digits).c_str(), nullptr, 10);
  if (errno == ERANGE) diags_.report(DiagKind::NumberTooLarge, dim.span, fmt::format("dimension `{}` is too large", digits));
  dim.value = value;
  return dim;
}

/// statement = ( param_decl | binding | return_stmt ) [ ";" ]
Stmt Parser::parseStatement() {
  Stmt stmt;
  if (check(TokenKind::Param)) {
    stmt = parseParamDecl();
  } else if (check(TokenKind::Return)) {
    stmt = parseReturn();
  } else if (check(TokenKind::Identifier) && peek(1).kind == TokenKind::Equal) {
    stmt = parseBinding();
  } else {
    fail("expected a statement (`param`, a binding `name = ...`, or `return`)");
  }
  match(TokenKind::Semicolon);
  return stmt;
}

/// param_decl = "param" IDENT ":" type "=" expr
Stmt Parser::parseParamDecl() {
  Stmt stmt;
  stmt.kind = StmtKind::Param;
  uint32_t begin = advance().span.begin;  // `param`
  const Token& name = expect(TokenKind::Identifier, "expected a parameter name after `param`");
  stmt.name = std::string(text(name));
  stmt.name_span = name.span;
  expect(TokenKind::Colon, "expected `:` and a type after the parameter name");
  stmt.type = parseType();
  expect(TokenKind::Equal, "expected `=` and an initializer such as `zeros()` after the parameter type");
  stmt.value = parseExpr();
  stmt.span = Span{begin, stmt.value->span.end};
  return stmt;
}

/// binding = IDENT "=" expr
Stmt Parser::parseBinding() {
  Stmt stmt;
  stmt.kind = StmtKind::Binding;
  const Token& name = advance();
  stmt.name = std::string(text(name));
  stmt.name_span = name.span;
  advance();  // `=`
  stmt.value = parseExpr();
  stmt.span = join(name.span, stmt.value->span);
  return stmt;
}

/// return_stmt = "return" expr
Stmt Parser::parseReturn() {
  Stmt stmt;
  stmt.kind = StmtKind::Return;
  uint32_t begin = advance().span.begin;  // `return`
  stmt.value = parseExpr();
  stmt.span = Span{begin, stmt.value->span.end};
  return stmt;
}

/// train_block = "train" "{" { IDENT "=" expr [ ";" ] } "}"
void Parser::parseTrainBlock(Module& module) {
  TrainBlock block;
  uint32_t begin = advance().span.begin;  // `train`
  bool open = true;
  try {
    expect(TokenKind::LBrace, "expected `{` after `train`");
  } catch (const SyntaxError&) {
    // Without its `{` the entries cannot be told from top-level junk: skip to the next declaration.
    while (!atTopLevelKeyword()) advance();
    open = false;
  }
  while (open && !check(TokenKind::RBrace)) {
    if (atTopLevelKeyword()) {
      Span at = check(TokenKind::Eof) ? previousEnd() : peek().span;
      DiagnosticEngine::note(diags_.report(DiagKind::UnclosedBody, at, "expected `}` to close the `train` block"),
                             Span{begin, begin + 5}, "`train` block begins here");
      open = false;
      break;
    }
    size_t entry_begin = pos_;
    try {
      block.entries.push_back(parseTrainEntry());
    } catch (const SyntaxError&) {
      synchronize(entry_begin);
    }
  }
  if (open) advance();  // `}`
  block.span = Span{begin, previousEnd().end};
  if (module.train) {
    // Keep the first block; the checker never sees a second one, so report it here.
    Diagnostic& diag = diags_.report(DiagKind::DuplicateTrainBlock, Span{begin, begin + 5}, "a module may have only one `train` block");
    DiagnosticEngine::note(diag, Span{module.train->span.begin, module.train->span.begin + 5},
                           "first `train` block here");
    return;
  }
  module.train = std::move(block);
}

// One entry of train_block: IDENT "=" expr [ ";" ]
TrainEntry Parser::parseTrainEntry() {
  TrainEntry entry;
  const Token& key = expect(TokenKind::Identifier, "expected a training setting `key = value`");
  entry.key = std::string(text(key));
  entry.key_span = key.span;
  expect(TokenKind::Equal, "expected `=` after the training setting name");
  entry.value = parseExpr();
  match(TokenKind::Semicolon);
  return entry;
}

// ---- expressions -------------------------------------------------------------------------------

/// expr = additive
ExprPtr Parser::parseExpr() { return parseAdditive(); }

ExprPtr Parser::makeBinary(BinaryOp op, Span op_span, ExprPtr lhs, ExprPtr rhs) {
  auto expr = std::make_unique<Expr>();
  expr->kind = ExprKind::Binary;
  expr->binary_op = op;
  expr->op_span = op_span;
  expr->span = join(lhs->span, rhs->span);
  expr->args.push_back(std::move(lhs));
  expr->args.push_back(std::move(rhs));
  return expr;
}

/// additive = multiplicative { ( "+" | "-" ) multiplicative }
ExprPtr Parser::parseAdditive() {
  int folds = 0;  // each fold deepens the left-leaning tree; counted against kMaxExprDepth
  ExprPtr lhs = parseMultiplicative();
  while (check(TokenKind::Plus) || check(TokenKind::Minus)) {
    const Token& op = advance();
    if (++folds + depth_ > kMaxExprDepth) fail("expression nested too deeply", DiagKind::NestedTooDeeply);
    ExprPtr rhs = parseMultiplicative();
    lhs = makeBinary(op.kind == TokenKind::Plus ? BinaryOp::Add : BinaryOp::Sub, op.span, std::move(lhs),
                     std::move(rhs));
  }
  return lhs;
}

/// multiplicative = unary { ( "*" | "/" | "@" ) unary }
ExprPtr Parser::parseMultiplicative() {
  int folds = 0;
  ExprPtr lhs = parseUnary();
  while (check(TokenKind::Star) || check(TokenKind::Slash) || check(TokenKind::At)) {
    const Token& op = advance();
    if (++folds + depth_ > kMaxExprDepth) fail("expression nested too deeply", DiagKind::NestedTooDeeply);
    BinaryOp kind = op.kind == TokenKind::Star ? BinaryOp::Mul
                    : op.kind == TokenKind::Slash ? BinaryOp::Div
                                                  : BinaryOp::MatMul;
    ExprPtr rhs = parseUnary();
    lhs = makeBinary(kind, op.span, std::move(lhs), std::move(rhs));
  }
  return lhs;
}

/// unary = "-" unary | primary
ExprPtr Parser::parseUnary() {
  DepthGuard guard(*this);
  if (!check(TokenKind::Minus)) return parsePrimary();
  const Token& op = advance();
  auto expr = std::make_unique<Expr>();
  expr->kind = ExprKind::Unary;
  expr->unary_op = UnaryOp::Neg;
  expr->op_span = op.span;
  expr->args.push_back(parseUnary());
  expr->span = join(op.span, expr->args[0]->span);
  return expr;
}

/// primary = NUMBER | STRING | IDENT | call | "(" expr ")"
ExprPtr Parser::parsePrimary() {
  if (check(TokenKind::Number)) return parseNumber();
  if (check(TokenKind::Identifier) && peek(1).kind == TokenKind::LParen) return parseCall();
  auto expr = std::make_unique<Expr>();
  if (check(TokenKind::String) || check(TokenKind::Identifier)) {
    const Token& token = advance();
    expr->kind = token.kind == TokenKind::String ? ExprKind::String : ExprKind::Name;
    expr->text = token.kind == TokenKind::String ? token.value : std::string(text(token));
    expr->span = token.span;
    return expr;
  }
  if (!check(TokenKind::LParen)) fail("expected an expression");
  uint32_t begin = advance().span.begin;
  expr = parseExpr();
  const Token& close = expect(TokenKind::RParen, "expected `)` after the parenthesized expression");
  expr->span = Span{begin, close.span.end};  // the span of `(a + b)` includes its parentheses
  return expr;
}

namespace {

// Whether decimal `digits` (no sign, point or exponent) exceed 2^53 = 9007199254740992, compared as text.
bool integerAbove2To53(const std::string& digits) {
  std::string_view trimmed(digits);
  while (trimmed.size() > 1 && trimmed.front() == '0') trimmed.remove_prefix(1);
  constexpr std::string_view kLimit = "9007199254740992";
  return trimmed.size() != kLimit.size() ? trimmed.size() > kLimit.size() : trimmed > kLimit;
}

}  // namespace

// NUMBER, converted with strtod; `is_integer` when written without `.` or an exponent.
ExprPtr Parser::parseNumber() {
  const Token& token = advance();
  std::string digits(text(token));
  auto expr = std::make_unique<Expr>();
  expr->kind = ExprKind::Number;
  expr->span = token.span;
  expr->is_integer = digits.find_first_of(".eE") == std::string::npos;
  errno = 0;
  expr->number = std::strtod(digits.c_str(), nullptr);
  if (errno == ERANGE && std::isinf(expr->number)) diags_.report(DiagKind::NumberTooLarge, token.span, fmt::format("number `{}` is too large", digits));
  else if (expr->is_integer && integerAbove2To53(digits))  // above 2^53, doubles skip integers (2^53 + 1 rounds)
    diags_.report(DiagKind::NumberTooLarge, token.span,
                  fmt::format("integer `{}` is out of range (at most 2^53 = 9007199254740992)", digits));
  return expr;
}

/// call = IDENT "(" [ arg { "," arg } ] ")"
ExprPtr Parser::parseCall() {
  auto call = std::make_unique<Expr>();
  call->kind = ExprKind::Call;
  const Token& callee = advance();
  call->text = std::string(text(callee));
  call->callee_span = callee.span;
  advance();  // `(`
  Span first_kwarg{};
  if (!check(TokenKind::RParen)) {
    do {
      parseArg(*call, first_kwarg);
    } while (match(TokenKind::Comma));
  }
  const Token& close = expect(TokenKind::RParen, "expected `)` after arguments");
  call->span = join(callee.span, close.span);
  return call;
}

/// arg = IDENT "=" expr | expr
void Parser::parseArg(Expr& call, Span& first_kwarg) {
  DepthGuard guard(*this);
  if (check(TokenKind::Identifier) && peek(1).kind == TokenKind::Equal) {
    const Token& name = advance();
    advance();  // `=`
    if (call.kwargs.empty()) first_kwarg = name.span;
    call.kwargs.push_back(KeywordArg{std::string(text(name)), name.span, parseExpr()});
    return;
  }
  ExprPtr arg = parseExpr();
  if (!call.kwargs.empty()) {
    Diagnostic& diag = diags_.report(DiagKind::PositionalAfterKeyword, arg->span, "positional argument after a keyword argument");
    DiagnosticEngine::note(diag, first_kwarg, "first keyword argument here");
  }
  call.args.push_back(std::move(arg));
}

}  // namespace

Module parse(const std::vector<Token>& tokens, const SourceFile& source, DiagnosticEngine& diags) {
  return Parser(tokens, source, diags).parseModule();
}

}  // namespace nnc::dsl
