// The front half of the pipeline; see compilation.h.
#include "compiler/compilation.h"

#include "compiler/build_graph.h"
#include "dsl/lexer.h"
#include "dsl/parser.h"

namespace nnc {

std::unique_ptr<Compilation> compileFrontEnd(dsl::SourceFile source, Stage last) {
  auto c = std::make_unique<Compilation>();
  c->source = std::make_unique<dsl::SourceFile>(std::move(source));
  c->diags = std::make_unique<dsl::DiagnosticEngine>(*c->source);
  c->tokens = dsl::lex(*c->source, *c->diags);
  if (last == Stage::Tokens) return c;
  c->module = dsl::parse(c->tokens, *c->source, *c->diags);
  if (last == Stage::Ast || c->diags->hasErrors()) return c;
  c->checked = dsl::check(c->module, *c->diags);
  if (last == Stage::Checked || !c->checked) return c;
  c->graph = buildGraph(*c->checked, *c->diags);
  return c;
}

}  // namespace nnc
