// The front half of the pipeline; see compilation.h.
#include "compiler/compilation.h"

#include <unistd.h>

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "compiler/graph/build_graph.h"
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
  if (c->graph) checkTensorSizes(*c->graph, c->checked->train.batch, physicalMemoryBytes(), *c->diags);
  return c;
}

uint64_t physicalMemoryBytes() {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : UINT64_MAX;
}

void checkTensorSizes(const Graph& graph, int64_t train_batch, uint64_t memory_bytes, dsl::DiagnosticEngine& diags) {
  int64_t batch = std::max<int64_t>(train_batch, kEvalBatch);
  std::set<uint32_t> reported;  // one error per binding (its nodes share its span)
  for (const Node& node : graph.nodes) {
    if (node.shape.size() > kMaxRank && reported.insert(node.span.begin).second) {
      diags.report(dsl::DiagKind::TooManyAxes, node.span,
                   fmt::format("this makes a tensor {}{} of {} axes; nnc's tensors have at most {}",
                               node.name.empty() ? "" : "`" + node.name + "` ", shapeToString(node.shape),
                               node.shape.size(), kMaxRank));
      continue;
    }
    double elements = 1;  // in floating point: the product itself may overflow int64
    for (const Dim& dim : node.shape) elements *= static_cast<double>(dim.isSymbolic() ? batch : dim.extent);
    double bytes = 4 * elements;
    bool too_many = elements > static_cast<double>(kMaxElements), too_big = bytes > static_cast<double>(memory_bytes);
    if ((!too_many && !too_big) || !reported.insert(node.span.begin).second) continue;
    bool batched = isBatched(node.shape);
    std::string tensor = fmt::format("this makes a tensor {}{} of {:.0f} elements{}", node.name.empty() ? "" : "`" + node.name + "` ",
                                     shapeToString(node.shape), elements, batched ? fmt::format(" at batch {}", batch) : "");
    diags.report(dsl::DiagKind::TensorTooLarge, node.span,
                 too_many ? fmt::format("{}; a tensor may hold at most 2^31 - 1 = {} (Halide's buffers index with 32 "
                                        "bits)", tensor, kMaxElements)
                          : fmt::format("{}: {:.2f} MiB, more than this machine's {:.2f} MiB of memory", tensor,
                                        bytes / (1 << 20), static_cast<double>(memory_bytes) / (1 << 20)));
  }
}

}  // namespace nnc
