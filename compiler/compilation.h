// The front half of the pipeline as one call: source -> tokens -> AST -> checked AST -> forward graph.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "compiler/graph/graph.h"
#include "compiler/graph/program.h"
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

// Reports every binding whose tensors would exceed 2^31 - 1 elements at the train batch or kEvalBatch (Halide
// indexes buffers with 32 bits, and such a model failed deep inside Halide instead) or `memory_bytes` (this
// machine's memory: physicalMemoryBytes()), or kMaxRank axes (lowering stopped with an internal error).
void checkTensorSizes(const Graph& graph, int64_t train_batch, uint64_t memory_bytes, dsl::DiagnosticEngine& diags);
uint64_t physicalMemoryBytes();

// Runs the stages up to `last`, stopping after the first stage that reports an error (diags says which, keeping
// the first `error_limit` errors; 0: all).
std::unique_ptr<Compilation> compileFrontEnd(dsl::SourceFile source, Stage last = Stage::Graph,
                                             size_t error_limit = 0);

}  // namespace nnc
