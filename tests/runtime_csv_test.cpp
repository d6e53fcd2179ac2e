// Tests for runtime/csv: parsing (quotes, CRLF, BOM, trailing blank lines, gzip), label column
// selection by name and index, and every error message with its line and column.
#include "runtime/csv.h"
#include "tests/runtime_test_util.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace nnc::rt;

namespace {

#define EXPECT_HAS(haystack, needle) EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << haystack

class CsvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("nnc_csv_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string put(const std::string& text, const std::string& name = "train.csv") {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  // The DataError message of reading `text` with `label`, with the directory prefix removed.
  std::string errorOf(const std::string& text, const std::string& label = "label") {
    std::string path = put(text);
    std::string msg = dataErrorOf([&] { readCsv(path, label); });
    return msg.rfind(dir_.string() + "/", 0) == 0 ? msg.substr(dir_.string().size() + 1) : msg;
  }

  fs::path dir_;
};

}  // namespace

// ---- parsing ----------------------------------------------------------------------------

TEST_F(CsvTest, ReadsFeaturesAndLabelsByName) {
  CsvTable t = readCsv(put("x0,label,x1\n0.5,3,-1\n1e-3,0,2.25\n"), "label");
  EXPECT_EQ(t.columns, (std::vector<std::string>{"x0", "label", "x1"}));
  EXPECT_EQ(t.label_index, 1);
  EXPECT_EQ(t.rows, 2);
  EXPECT_EQ(t.features, (std::vector<float>{0.5f, -1.0f, 1e-3f, 2.25f}));
  EXPECT_EQ(t.labels, (std::vector<int32_t>{3, 0}));
}

TEST_F(CsvTest, LabelByIndexAndNamesBeforeIndices) {
  CsvTable t = readCsv(put("y,a,b\n1,2,3\n"), "0");
  EXPECT_EQ(t.label_index, 0);
  EXPECT_EQ(t.features, (std::vector<float>{2, 3}));
  EXPECT_EQ(t.labels, (std::vector<int32_t>{1}));
  // A column literally named "0" wins over index 0.
  CsvTable named = readCsv(put("a,0\n5,7\n"), "0");
  EXPECT_EQ(named.label_index, 1);
  EXPECT_EQ(named.labels, (std::vector<int32_t>{7}));
}

// A regressor's targets: float columns named in order (names or indices), left out of the features.
TEST_F(CsvTest, TargetColumnsAsFloatsInTheOrderNamed) {
  CsvTable t = readCsv(put("a,y2,b,y1\n1,0.25,2,-3.5\n4,5,6,7\n"), "y1, 1", TargetKind::Values);
  EXPECT_EQ(t.target_indices, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(t.features, (std::vector<float>{1, 2, 4, 6}));
  EXPECT_EQ(t.targets, (std::vector<float>{-3.5f, 0.25f, 7, 5}));
  EXPECT_TRUE(t.labels.empty());
  std::string path = put("a,y\n1,2\n");
  EXPECT_HAS(dataErrorOf([&] { readCsv(path, "y,y", TargetKind::Values); }), "target column `y` is named twice");
  EXPECT_HAS(dataErrorOf([&] { readCsv(path, "Y", TargetKind::Values); }), "unknown target column `Y`; did you mean `y`?");
  EXPECT_HAS(dataErrorOf([&] { readCsv(path, "a,y", TargetKind::Values); }), "at least one feature column");
  std::string bad = put("a,y\n1,inf\n");
  EXPECT_HAS(dataErrorOf([&] { readCsv(bad, "y", TargetKind::Values); }), ":2: column `y`: expected a finite number");
}

// A model reconstructing its input: every column is a feature, except a label column when the file has one.
TEST_F(CsvTest, NoTargetsLeavesOutANamedLabelColumn) {
  CsvTable plain = readCsv(put("a,b\n1,2\n"), "label", TargetKind::None);
  EXPECT_EQ(plain.features, (std::vector<float>{1, 2}));
  CsvTable labeled = readCsv(put("a,label,b\n1,7,2\n"), "label", TargetKind::None);
  EXPECT_EQ(labeled.features, (std::vector<float>{1, 2}));
}

TEST_F(CsvTest, QuotesCrlfBomAndTrailingBlankLines) {
  const std::string text =
      "\xEF\xBB\xBF\"label\",\"x,1\",\"say \"\"hi\"\"\"\r\n"
      "\"2\",\" 1.5 \",3\r\n"
      "4,+5,\"6\"\r\n"
      "\r\n\n";
  CsvTable t = readCsv(put(text), "label");
  EXPECT_EQ(t.columns, (std::vector<std::string>{"label", "x,1", "say \"hi\""}));
  EXPECT_EQ(t.rows, 2);
  EXPECT_EQ(t.features, (std::vector<float>{1.5f, 3, 5, 6}));
  EXPECT_EQ(t.labels, (std::vector<int32_t>{2, 4}));
}

TEST_F(CsvTest, QuotedNewlinesKeepLineNumbersRight) {
  // The header's second name spans lines 1-2, so the bad record starts on line 4.
  EXPECT_EQ(errorOf("label,\"multi\nline\"\n1,2\n1,x\n"), "train.csv:4: column `multi\nline`: expected a finite number, got \"x\"");
}

TEST_F(CsvTest, NoTrailingNewlineAndIntegralFloatLabels) {
  CsvTable t = readCsv(put("label,f\n3.0,1\n7,2"), "label");
  EXPECT_EQ(t.labels, (std::vector<int32_t>{3, 7}));
  EXPECT_EQ(t.features, (std::vector<float>{1, 2}));
}

TEST_F(CsvTest, ReadsGzippedFiles) {
  const std::string text = "label,a\n1,0.5\n";
  std::string path = (dir_ / "t.csv.gz").string();
  gzFile gz = gzopen(path.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  gzwrite(gz, text.data(), static_cast<unsigned>(text.size()));
  gzclose(gz);
  CsvTable t = readCsv(path, "label");
  EXPECT_EQ(t.features, (std::vector<float>{0.5f}));
  EXPECT_EQ(t.labels, (std::vector<int32_t>{1}));
}

TEST_F(CsvTest, ManyRowsKeepRowMajorOrder) {
  std::string text = "a,b,label\n";
  for (int r = 0; r < 1000; ++r)
    text += std::to_string(r) + "," + std::to_string(-r) + "," + std::to_string(r % 10) + "\n";
  CsvTable t = readCsv(put(text), "label");
  ASSERT_EQ(t.rows, 1000);
  ASSERT_EQ(t.features.size(), 2000u);
  EXPECT_EQ(t.features[2 * 517], 517.0f);
  EXPECT_EQ(t.features[2 * 517 + 1], -517.0f);
  EXPECT_EQ(t.labels[517], 7);
}

// ---- errors ----------------------------------------------------------------------------

TEST_F(CsvTest, FieldErrorsNameLineAndColumn) {
  const std::string head = "label,pixel0,pixel1\n";
  EXPECT_EQ(errorOf(head + "1,2,3\n1,2,abc\n"), "train.csv:3: column `pixel1`: expected a finite number, got \"abc\"");
  EXPECT_EQ(errorOf(head + "1,,3\n"), "train.csv:2: column `pixel0`: expected a finite number, got \"\"");
  EXPECT_EQ(errorOf(head + "1,nan,3\n"), "train.csv:2: column `pixel0`: expected a finite number, got \"nan\"");
  EXPECT_EQ(errorOf(head + "1,1e999,3\n"), "train.csv:2: column `pixel0`: expected a finite number, got \"1e999\"");
  EXPECT_EQ(errorOf(head + "1,2 3,3\n"), "train.csv:2: column `pixel0`: expected a finite number, got \"2 3\"");
  EXPECT_EQ(errorOf(head + "-1,2,3\n"), "train.csv:2: column `label`: expected a non-negative integer label, got \"-1\"");
  EXPECT_EQ(errorOf(head + "2.5,2,3\n"), "train.csv:2: column `label`: expected a non-negative integer label, got \"2.5\"");
  EXPECT_EQ(errorOf(head + "2147483648,2,3\n"),
            "train.csv:2: column `label`: expected a non-negative integer label, got \"2147483648\"");
  EXPECT_EQ(errorOf(head + "cat,2,3\n"), "train.csv:2: column `label`: expected a non-negative integer label, got \"cat\"");
}

TEST_F(CsvTest, FieldCountErrors) {
  const std::string head = "label,a,b\n";
  EXPECT_EQ(errorOf(head + "1,2,3\n1,2\n"), "train.csv:3: expected 3 fields, got 2");
  EXPECT_EQ(errorOf(head + "1,2,3,4\n"), "train.csv:2: expected 3 fields, got 4");
  EXPECT_EQ(errorOf(head + "1,\"2,5\"\n"), "train.csv:2: expected 3 fields, got 2");
  EXPECT_EQ(errorOf(head + "1,2,3\n\n1,2,3\n"), "train.csv:3: expected 3 fields, got a blank line");
}

TEST_F(CsvTest, QuoteErrors) {
  EXPECT_EQ(errorOf("label,a\n1,\"2\"x\n"),
            "train.csv:2: expected `,` or the end of the line after a closing quote, got `x`");
  EXPECT_EQ(errorOf("label,a\n1,2\n3,\"4\n5\n"), "train.csv:3: unterminated quoted field (opened on line 3)");
}

TEST_F(CsvTest, HeaderAndLabelColumnErrors) {
  EXPECT_EQ(errorOf(""), "train.csv:1: empty file: expected a header row of column names");
  EXPECT_EQ(errorOf("\r\n\n"), "train.csv:1: empty file: expected a header row of column names");
  EXPECT_EQ(errorOf("label\n1\n"),
            "train.csv:1: expected a header with a label column and at least one feature column, got 1 column");
  EXPECT_EQ(errorOf("label,a\n"), "train.csv:2: no data rows after the header");
  EXPECT_EQ(errorOf("y,a,b\n1,2,3\n", "target"), "train.csv:1: unknown label column `target`; the header has `y`, `a`, `b`");
  EXPECT_EQ(errorOf("Label,a\n1,2\n", "label"),
            "train.csv:1: unknown label column `label`; did you mean `Label`?; the header has `Label`, `a`");
  EXPECT_EQ(errorOf("y,a,b\n1,2,3\n", "3"),
            "train.csv:1: label column index 3 is out of range (expected 0 to 2); the header has `y`, `a`, `b`");
  EXPECT_EQ(errorOf("y,a,y\n1,2,3\n", "y"),
            "train.csv:1: label column `y` is ambiguous: columns 0 and 2 of the header both have that name");
}

TEST_F(CsvTest, LongHeadersAreListedShortly) {
  std::string header = "label";
  for (int i = 0; i < 784; ++i) header += ",pixel" + std::to_string(i);
  std::string msg = errorOf(header + "\n", "lable");
  EXPECT_HAS(msg, "unknown label column `lable`; the header has `label`, `pixel0`,");
  EXPECT_HAS(msg, "`pixel10`, ... (785 columns)");
  EXPECT_EQ(msg.find("pixel11`"), std::string::npos) << msg;
}

TEST_F(CsvTest, MissingFileIsADataError) {
  std::string path = (dir_ / "nope.csv").string();
  EXPECT_HAS(dataErrorOf([&] { readCsv(path, "label"); }), path + ": cannot open");
}
