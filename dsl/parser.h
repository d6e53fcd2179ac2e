// Parser: tokens -> AST (dsl/ast.h). Recursive descent, one function per grammar production
// (see REFERENCE.md for the grammar). On a syntax error it reports once, then resynchronises at the
// next statement start (clox's panic mode), so one run reports several independent errors.
// The returned Module is partial when errors were reported; only check it if `!diags.hasErrors()`.
#pragma once

#include <vector>

#include "dsl/ast.h"
#include "dsl/diagnostics.h"
#include "dsl/source.h"
#include "dsl/token.h"

namespace nnc::dsl {

// Maximum nesting of parentheses, unary minus, calls and operator chains in one expression.
inline constexpr int kMaxExprDepth = 256;

Module parse(const std::vector<Token>& tokens, const SourceFile& source, DiagnosticEngine& diags);

}  // namespace nnc::dsl
