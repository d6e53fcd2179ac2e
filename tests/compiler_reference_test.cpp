// The language reference must not lie: every fenced ```nn block in dsl/REFERENCE.md is a complete
// module that lexes, parses, checks and builds its forward and backward graphs without a single diagnostic.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "compiler/compilation.h"
#include "compiler/graph/program.h"

namespace nnc {
namespace {

struct Block {
  int line;  // 1-based line of the opening fence
  std::string text;
};

// The contents of every block that opens with a line "```nn" and closes with a line "```".
std::vector<Block> nnBlocks(std::istream& in) {
  std::vector<Block> blocks;
  std::string line;
  int number = 0;
  bool inside = false;
  while (std::getline(in, line)) {
    ++number;
    if (!inside && line == "```nn") {
      blocks.push_back(Block{number, ""});
      inside = true;
    } else if (inside && line == "```") {
      inside = false;
    } else if (inside) {
      blocks.back().text += line + "\n";
    }
  }
  EXPECT_FALSE(inside) << "unclosed ```nn block";
  return blocks;
}

TEST(Reference, EveryNnBlockBuildsItsGraphs) {
  std::ifstream in(std::string(NNC_SOURCE_DIR) + "/dsl/REFERENCE.md");
  ASSERT_TRUE(in) << "dsl/REFERENCE.md not found";
  std::vector<Block> blocks = nnBlocks(in);
  EXPECT_GE(blocks.size(), 4u);
  for (const Block& block : blocks) {
    auto c = compileFrontEnd(dsl::SourceFile("REFERENCE.md block at line " + std::to_string(block.line), block.text));
    EXPECT_EQ(c->diags->render(), "");
    ASSERT_TRUE(c->graph.has_value()) << "block at line " << block.line;
    Program program = buildProgram(std::move(*c->graph), c->checked->train);
    EXPECT_EQ(program.grads.size(), program.graph.params.size());
  }
}

// The extractor itself: it finds ```nn blocks and only those (guards against a vacuous pass).
TEST(Reference, ExtractorFindsBlocks) {
  std::istringstream in("text\n```nn\nmodel m() {}\n```\n```text\nx\n```\n");
  std::vector<Block> blocks = nnBlocks(in);
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].line, 2);
  EXPECT_EQ(blocks[0].text, "model m() {}\n");
}

}  // namespace
}  // namespace nnc
