// Graph building: checked AST -> forward Graph, with shape inference and the user-facing shape diagnostics.
#pragma once

#include <optional>

#include "compiler/graph/graph.h"
#include "dsl/checker.h"
#include "dsl/diagnostics.h"

namespace nnc {

// Builds the forward graph of the checked model: one node per input, parameter and op application. Layer forms
// (`linear`) create their parameters, named after the binding they appear in. Reports shape and op errors into
// `diags`; returns nullopt if there were any.
std::optional<Graph> buildGraph(const dsl::CheckedModule& module, dsl::DiagnosticEngine& diags);

}  // namespace nnc
