// libFuzzer harness for the front half of nnc: bytes -> model file -> tokens -> AST -> checked AST -> forward graph,
// then, for models that compile without errors, autodiff + optimizer update (buildProgram) and the graph printers.
//
// The front end must report every problem with a model file as a diagnostic: a crash, a sanitizer report, a hang
// or any exception escaping from here is a finding. Built and run by tests/fuzz/run_fuzzer.sh.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "compiler/compilation.h"
#include "compiler/graph/graph_printer.h"
#include "compiler/graph/program.h"
#include "dsl/ast_printer.h"
#include "dsl/lexer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nnc::dsl::SourceFile source("fuzz.nn", std::string(reinterpret_cast<const char*>(data), size));
  std::unique_ptr<nnc::Compilation> c = nnc::compileFrontEnd(std::move(source));

  // Rendering touches every span (line:col lookups, caret lines), so render even when there are errors.
  std::string text = c->diags->render();
  text += nnc::dsl::printTokens(*c->source, c->tokens);
  if (c->diags->hasErrors() || !c->graph) return 0;

  // A clean model: print it and run the rest of the Halide-free pipeline, as `nnc emit --stage=backward` does.
  text += nnc::dsl::printAst(c->module, *c->source);
  text += nnc::printForwardGraph(*c->graph);
  nnc::Program program = nnc::buildProgram(std::move(*c->graph), c->checked->train);
  text += nnc::printBackwardGraph(program);
  return 0;
}
