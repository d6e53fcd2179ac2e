// Lexer: source text -> tokens. It never prints: a bad character or an unterminated string is reported
// to the DiagnosticEngine and becomes an Error token, and lexing goes on. The result always ends in Eof.
#pragma once

#include <string>
#include <vector>

#include "dsl/diagnostics.h"
#include "dsl/source.h"
#include "dsl/token.h"

namespace nnc::dsl {

std::vector<Token> lex(const SourceFile& source, DiagnosticEngine& diags);

// One token per line, `LINE:COL KIND 'text'`, for `nnc emit --stage=tokens`.
std::string printTokens(const SourceFile& source, const std::vector<Token>& tokens);

}  // namespace nnc::dsl
