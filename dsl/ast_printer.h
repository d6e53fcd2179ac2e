// AST printer: Module -> an indented, deterministic tree with the line:col of every node, for
// `nnc emit --stage=ast` and the golden tests (tests/golden/*.ast).
#pragma once

#include <string>

#include "dsl/ast.h"
#include "dsl/source.h"

namespace nnc::dsl {

std::string printAst(const Module& module, const SourceFile& source);

}  // namespace nnc::dsl
