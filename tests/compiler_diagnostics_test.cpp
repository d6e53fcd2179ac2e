// One golden test per diagnostic kind: tests/diagnostics/fail_<Kind>.nn must produce a diagnostic of that kind,
// and its whole rendered output (headers, source lines, carets, notes) must equal fail_<Kind>.expected.
// A kind added to dsl/diagnostic_kinds.def without its test fails here. Regenerate the expected files with
// NNC_REGEN_GOLDEN=1 (see tests/golden.h).
#include <gtest/gtest.h>

#include <filesystem>

#include "compiler/compilation.h"
#include "compiler/graph/program.h"
#include "tests/golden.h"

namespace nnc {
namespace {

class DiagnosticKind : public ::testing::TestWithParam<int> {};

TEST_P(DiagnosticKind, HasAGoldenFailTest) {
  auto kind = static_cast<dsl::DiagKind>(GetParam());
  std::string name = std::string("fail_") + dsl::diagKindInfo(kind).name;
  std::string path = std::string(NNC_SOURCE_DIR) + "/tests/diagnostics/" + name + ".nn";
  ASSERT_TRUE(std::filesystem::exists(path)) << "no test for diagnostic kind " << dsl::diagKindInfo(kind).name
                                              << ": add tests/diagnostics/" << name << ".nn";
  auto c = compileFrontEnd(dsl::SourceFile(name + ".nn", testing::readFile(path)));
  if (c->graph) buildProgram(std::move(*c->graph), c->checked->train);  // the full pipeline must not throw
  bool reported = false;
  for (const dsl::Diagnostic& diag : c->diags->diagnostics()) reported = reported || diag.kind == kind;
  EXPECT_TRUE(reported) << name << ".nn does not produce a " << dsl::diagKindInfo(kind).name << ":\n"
                        << c->diags->render();
  testing::expectMatchesGolden(c->diags->render(), "diagnostics/" + name + ".expected");
}

INSTANTIATE_TEST_SUITE_P(Registry, DiagnosticKind, ::testing::Range(0, dsl::kDiagKindCount),
                         [](const auto& info) { return dsl::diagKindInfo(static_cast<dsl::DiagKind>(info.param)).name; });

// The other direction: every fail_*.nn file is named after a registered kind.
TEST(DiagnosticKind, EveryFailFileNamesAKind) {
  for (const auto& entry : std::filesystem::directory_iterator(std::string(NNC_SOURCE_DIR) + "/tests/diagnostics")) {
    if (entry.path().extension() != ".nn") continue;
    std::string kind = entry.path().stem().string().substr(5);
    bool known = false;
    for (int k = 0; k < dsl::kDiagKindCount; ++k) known = known || kind == dsl::diagKindInfo(static_cast<dsl::DiagKind>(k)).name;
    EXPECT_TRUE(known) << entry.path() << " names no diagnostic kind";
  }
}

// A tensor larger than the machine's memory is a compile-time error at its binding, here with a machine of
// 512 KiB: h is [B, 1000] floats, 1000 KiB at the evaluation batch of 256.
TEST(TensorSizes, AboveTheMachinesMemoryIsAnErrorAtTheBinding) {
  std::string model =
      "model m(x: f32[B, 4], y: i32[B]) {\n    h = linear(x, 1000)\n    logits = linear(h, 3)\n"
      "    loss = cross_entropy(logits, y)\n    return logits\n}\n";
  auto c = compileFrontEnd(dsl::SourceFile("m.nn", model));
  ASSERT_FALSE(c->diags->hasErrors()) << c->diags->render();
  dsl::DiagnosticEngine diags(*c->source);
  checkTensorSizes(*c->graph, 64, 512 << 10, diags);
  std::string text = diags.render();
  EXPECT_NE(text.find("m.nn:2:9: error: this makes a tensor [B, 1000] of 256000 elements at batch 256: 0.98 MiB, "
                      "more than this machine's 0.50 MiB of memory"),
            std::string::npos)
      << text;
  dsl::DiagnosticEngine roomy(*c->source);
  checkTensorSizes(*c->graph, 64, 1 << 30, roomy);
  EXPECT_FALSE(roomy.hasErrors()) << roomy.render();
}

}  // namespace
}  // namespace nnc
