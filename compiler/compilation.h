// The front half of the pipeline as one call: source -> tokens -> AST -> checked AST -> forward graph.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "compiler/graph.h"
#include "dsl/checker.h"
#include "dsl/diagnostics.h"
#include "dsl/token.h"

namespace nnc {

enum class Stage { Tokens, Ast, Checked, Graph };

// Every stage's result, kept alive together (later stages point into earlier ones).
struct Compilation {
  std::unique_ptr<dsl::SourceFile> source;
  std::unique_ptr<dsl::DiagnosticEngine> diags;
  std::vector<dsl::Token> tokens;
  dsl::Module module;
  std::optional<dsl::CheckedModule> checked;
  std::optional<Graph> graph;
};

// Runs the stages up to `last`, stopping after the first stage that reports an error (diags says which).
std::unique_ptr<Compilation> compileFrontEnd(dsl::SourceFile source, Stage last = Stage::Graph);

}  // namespace nnc
