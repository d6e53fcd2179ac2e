// The front half of the pipeline; see compilation.h.
#include "compiler/compilation.h"

#include "compiler/build_graph.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <set>

#include "dsl/lexer.h"
#include "dsl/parser.h"

namespace nnc {

std::unique_ptr<Compilation> compileFrontEnd(dsl::SourceFile source, Stage last, size_t error_limit) {
  auto c = std::make_unique<Compilation>();
  c->source = std::make_unique<dsl::SourceFile>(std::move(source));
  c->diags = std::make_unique<dsl::DiagnosticEngine>(*c->source, error_limit);
  c->tokens = dsl::lex(*c->source, *c->diags);
  if (last == Stage::Tokens) return c;
  c->module = dsl::parse(c->tokens, *c->source, *c->diags);
  if (last == Stage::Ast || c->diags->hasErrors()) return c;
  c->checked = dsl::check(c->module, *c->diags);
  if (last == Stage::Checked || !c->checked) return c;
  c->graph = buildGraph(*c->checked, *c->diags);
  if (c->graph) checkTensorSizes(*c->graph, c->checked->train.batch, *c->diags);
  return c;
}

void checkTensorSizes(const Graph& graph, int64_t train_batch, dsl::DiagnosticEngine& diags) {
  constexpr int64_t kMaxElements = std::numeric_limits<int32_t>::max();
  int64_t batch = std::max<int64_t>(train_batch, kEvalBatch);
  std::set<uint32_t> reported;  // one error per binding (its nodes share its span)
  for (const Node& node : graph.nodes) {
    double elements = 1;  // in floating point: the product itself may overflow int64
    for (const Dim& dim : node.shape) elements *= static_cast<double>(dim.isSymbolic() ? batch : dim.extent);
    if (elements <= static_cast<double>(kMaxElements) || !reported.insert(node.span.begin).second) continue;
    bool batched = std::any_of(node.shape.begin(), node.shape.end(), [](const Dim& d) { return d.isSymbolic(); });
    diags.report(dsl::DiagKind::TensorTooLarge, node.span,
                 fmt::format("this makes a tensor {}{} of {:.0f} elements{}; a tensor may hold at most 2^31 - 1 = {} "
                             "(Halide's buffers index with 32 bits)",
                             node.name.empty() ? "" : "`" + node.name + "` ", shapeToString(node.shape), elements,
                             batched ? fmt::format(" at batch {}", batch) : "", kMaxElements));
  }
}

}  // namespace nnc
