// Tokens: what the lexer produces and the parser consumes. Each token keeps its Span into the source;
// its text is `source.slice(span)` (strings also carry their unescaped value).
#pragma once

#include <string>

#include "dsl/source.h"

namespace nnc::dsl {

enum class TokenKind {
  // Literals and names.
  Identifier, Number, String,
  // Keywords.
  Model, Param, Return, Train, Fn, Const,
  // Punctuation.
  LParen, RParen, LBrace, RBrace, LBracket, RBracket,
  Comma, Colon, Equal, Plus, Minus, Star, Slash, At, Semicolon,
  // A character the lexer could not use; an error was already reported.
  Error,
  Eof,
};

// A stable upper-case name for `nnc emit --stage=tokens`, e.g. "IDENT", "LPAREN".
const char* tokenKindName(TokenKind kind);

struct Token {
  TokenKind kind = TokenKind::Eof;
  Span span;
  std::string value;       // String: the text with escapes resolved
  bool starts_line = false;  // first token on its line (the parser resynchronises at line starts)
};

}  // namespace nnc::dsl
