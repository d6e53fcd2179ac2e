// Data directories: the layout is detected from the files (CSV, NPY, MNIST), and a missing one is named.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "runtime/data_source.h"
#include "runtime/npy.h"
#include "tests/runtime_test_util.h"

namespace nnc::rt {
namespace {

std::string freshDir(const std::string& name) {
  std::string dir = ::testing::TempDir() + "/nnc_data_source_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(DataSource, CsvLayout) {
  std::string dir = freshDir("csv");
  std::ofstream(dir + "/train.csv") << "a,label,b\n1,0,2\n3,2,4\n5,1,6\n";
  std::ofstream(dir + "/test.csv") << "a,label,b\n7,1,8\n";
  Dataset train = loadSplit(dir, Split::Train);
  EXPECT_EQ(train.count, 3);
  EXPECT_EQ(train.features, 2);
  EXPECT_EQ(train.num_classes, 3);
  EXPECT_EQ(train.images, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(train.labels, (std::vector<int32_t>{0, 2, 1}));
  EXPECT_EQ(loadSplit(dir, Split::Test).labels, (std::vector<int32_t>{1}));
}

TEST(DataSource, NpyLayout) {
  std::string dir = freshDir("npy");
  std::vector<float> x = {0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f}, y = {1, 0};
  writeNpy(dir + "/test_x.npy", {2, 3}, x.data());
  writeNpy(dir + "/test_y.npy", {2}, y.data());
  Dataset test = loadSplit(dir, Split::Test);
  EXPECT_EQ(test.count, 2);
  EXPECT_EQ(test.features, 3);
  EXPECT_EQ(test.images, x);
  EXPECT_EQ(test.labels, (std::vector<int32_t>{1, 0}));
  writeNpy(dir + "/train_x.npy", {3, 2}, x.data());
  writeNpy(dir + "/train_y.npy", {2}, y.data());
  EXPECT_NE(dataErrorOf([&] { loadSplit(dir, Split::Train); }).find("expected one row per label"), std::string::npos);
}

// A regressor's targets from NPY are floats of any shape per example; MNIST holds none.
TEST(DataSource, NpyTargetsAsFloats) {
  std::string dir = freshDir("npy_targets");
  std::vector<float> x = {0.5f, 1.5f, 2.5f, 3.5f}, y = {0.25f, -1, 2, 1e6f};
  writeNpy(dir + "/train_x.npy", {2, 2}, x.data());
  writeNpy(dir + "/train_y.npy", {2, 2}, y.data());
  Dataset train = loadSplit(dir, Split::Train, {"label", TargetKind::Values});
  EXPECT_EQ(train.target_size, 2);
  EXPECT_EQ(train.targets, y);
  writeNpy(dir + "/train_y.npy", {3, 1}, y.data());
  EXPECT_NE(dataErrorOf([&] { loadSplit(dir, Split::Train, {"label", TargetKind::Values}); })
                .find("expected one row per target row"),
            std::string::npos);
  // A reconstruction reads no targets: a missing train_y.npy is fine.
  std::filesystem::remove(dir + "/train_y.npy");
  EXPECT_EQ(loadSplit(dir, Split::Train, {"label", TargetKind::None}).count, 2);
  EXPECT_NE(dataErrorOf([] { loadSplit("/usr/share/datasets/fashion-mnist", Split::Test, {"label", TargetKind::Values}); })
                .find("a regressor needs float targets"),
            std::string::npos);
}

// Text for a model of token ids: each byte a token, windows of T bytes labelled by the bytes one further.
TEST(DataSource, TextLayoutAsNextByteWindows) {
  std::string dir = freshDir("text");
  std::ofstream(dir + "/train.txt") << "abcdefgh";
  Dataset train = loadSplit(dir, Split::Train, {"label", TargetKind::Label, 3});
  EXPECT_EQ(train.count, 2);  // "abc" -> "bcd", "def" -> "efg"; "gh" is too short for a window and its next byte
  EXPECT_EQ(train.features, 3);
  EXPECT_EQ(train.labels_per_example, 3);
  EXPECT_EQ(train.images, (std::vector<float>{'a', 'b', 'c', 'd', 'e', 'f'}));
  EXPECT_EQ(train.labels, (std::vector<int32_t>{'b', 'c', 'd', 'e', 'f', 'g'}));
  EXPECT_EQ(train.num_classes, 'g' + 1);
  EXPECT_NE(dataErrorOf([&] { loadSplit(dir, Split::Train, {"label", TargetKind::Label, 8}); })
                .find("8 bytes, but an example takes 8 tokens and the byte after them"),
            std::string::npos);
  EXPECT_NE(dataErrorOf([&] { loadSplit(dir, Split::Train); }).find("for a model whose features are `i32[B, T]`"),
            std::string::npos);
}

TEST(DataSource, MissingDirectoryListsTheLayouts) {
  std::string message = dataErrorOf([] { loadSplit("/nonexistent/nnc-data", Split::Train); });
  EXPECT_NE(message.find("/nonexistent/nnc-data: no such data directory"), std::string::npos) << message;
  EXPECT_NE(message.find("train.csv"), std::string::npos) << message;
}

}  // namespace
}  // namespace nnc::rt
