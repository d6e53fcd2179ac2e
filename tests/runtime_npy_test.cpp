// Tests for runtime/npy: hand-built byte layouts (as numpy 1.24 writes them), every dtype,
// versions 1-3, round trips through writeNpy, labels, and every error message.
#include "runtime/npy.h"
#include "tests/runtime_test_util.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace nnc::rt;

namespace {

#define EXPECT_HAS(haystack, needle) EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << haystack

// Little-endian bytes of any trivially copyable values.
template <typename T>
std::string le(std::initializer_list<T> values) {
  std::string s;
  for (T v : values) s.append(reinterpret_cast<const char*>(&v), sizeof v);
  return s;
}

// A .npy file from a header text: magic, version, little-endian header length, header, data.
std::string npyFileRaw(const std::string& header, const std::string& data, int major = 1) {
  std::string f = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) f += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return f + header + data;
}

// The dict numpy writes, padded with spaces to a 64-byte-aligned data start and ended by '\n'.
std::string npyFile(const std::string& descr, const std::string& shape, const std::string& data,
                    int major = 1, const std::string& fortran = "False") {
  const size_t preamble = major == 1 ? 10 : 12;
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
  const size_t total = (preamble + dict.size() + 1 + 63) / 64 * 64;
  return npyFileRaw(dict + std::string(total - preamble - dict.size() - 1, ' ') + "\n", data, major);
}

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("nnc_npy_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `bytes` to a file in the test's directory and returns its path.
  std::string put(const std::string& bytes, const std::string& name = "a.npy") {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

  fs::path dir_;
};

const std::vector<float> kSix = {1.5f, -2.0f, 0.25f, 3.0f, 4.0f, 1e-3f};

}  // namespace

// ---- reading ----------------------------------------------------------------------------

TEST_F(NpyTest, ReadsFloat32AsNumpyWritesIt) {
  // np.save(f, np.array([[1.5,-2,0.25],[3,4,1e-3]], dtype=np.float32)): header length 118.
  std::string file = npyFile("<f4", "(2, 3)", le<float>({1.5f, -2.0f, 0.25f, 3.0f, 4.0f, 1e-3f}));
  ASSERT_EQ(file.size(), 152u);
  ASSERT_EQ(file.substr(8, 2), std::string("v\0", 2));
  NpyArray a = readNpy(put(file));
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.data, kSix);
}

TEST_F(NpyTest, ConvertsEveryIntegerAndFloatDtype) {
  EXPECT_EQ(readNpy(put(npyFile("|u1", "(3,)", std::string("\x00\x07\xff", 3)))).data,
            (std::vector<float>{0, 7, 255}));
  EXPECT_EQ(readNpy(put(npyFile("<i4", "(3,)", le<int32_t>({-5, 0, 70000})))).data,
            (std::vector<float>{-5, 0, 70000}));
  EXPECT_EQ(readNpy(put(npyFile("<i8", "(2,)", le<int64_t>({-3, 1LL << 40})))).data,
            (std::vector<float>{-3, static_cast<float>(1LL << 40)}));
  EXPECT_EQ(readNpy(put(npyFile("<f8", "(2,)", le<double>({0.5, -1e10})))).data,
            (std::vector<float>{0.5f, -1e10f}));
}

TEST_F(NpyTest, ReadsVersions2And3AndOddSpacing) {
  for (int major : {2, 3}) {
    NpyArray a = readNpy(put(npyFile("<f4", "(1, 2)", le<float>({7, 8}), major)));
    EXPECT_EQ(a.shape, (std::vector<int64_t>{1, 2})) << major;
    EXPECT_EQ(a.data, (std::vector<float>{7, 8})) << major;
  }
  // Key order, quotes and whitespace as other writers may produce them; no trailing comma.
  NpyArray b = readNpy(put(npyFileRaw("{ \"shape\":(2 ,), 'fortran_order':False,'descr':\"<f4\"}\n",
                                      le<float>({1, 2}))));
  EXPECT_EQ(b.shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(b.data, (std::vector<float>{1, 2}));
}

TEST_F(NpyTest, ScalarsAndEmptyArrays) {
  NpyArray scalar = readNpy(put(npyFile("<f4", "()", le<float>({42}))));
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(scalar.data, (std::vector<float>{42}));
  NpyArray empty = readNpy(put(npyFile("<f4", "(0, 5)", "")));
  EXPECT_EQ(empty.shape, (std::vector<int64_t>{0, 5}));
  EXPECT_TRUE(empty.data.empty());
}

// ---- writing ---------------------------------------------------------------------------

TEST_F(NpyTest, WritesExactlyWhatNumpyWrites) {
  std::string path = (dir_ / "w.npy").string();
  writeNpy(path, {2, 3}, kSix.data());
  EXPECT_EQ(slurp(path), npyFile("<f4", "(2, 3)", le<float>({1.5f, -2.0f, 0.25f, 3.0f, 4.0f, 1e-3f})));
  writeNpy(path, {3}, kSix.data());  // 1-D shapes need the trailing comma: (3,)
  EXPECT_EQ(slurp(path), npyFile("<f4", "(3,)", le<float>({1.5f, -2.0f, 0.25f})));
}

TEST_F(NpyTest, RoundTripsShapesAndAlignsData) {
  const std::vector<std::vector<int64_t>> shapes = {{}, {0}, {6}, {2, 3}, {1, 2, 3, 1}};
  for (const auto& shape : shapes) {
    std::string path = (dir_ / "r.npy").string();
    writeNpy(path, shape, kSix.data());
    std::string bytes = slurp(path);
    const size_t header = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    EXPECT_EQ((10 + header) % 64, 0u);
    EXPECT_EQ(bytes[10 + header - 1], '\n');
    NpyArray a = readNpy(path);
    EXPECT_EQ(a.shape, shape);
    size_t n = 1;
    for (int64_t d : shape) n *= d;
    EXPECT_EQ(a.data, std::vector<float>(kSix.begin(), kSix.begin() + n));
  }
}

TEST_F(NpyTest, WriteToAMissingDirectoryThrows) {
  EXPECT_THROW(writeNpy((dir_ / "no" / "x.npy").string(), {1}, kSix.data()), std::runtime_error);
}

// ---- labels ----------------------------------------------------------------------------

TEST_F(NpyTest, LabelsFromIntegerAndIntegralFloatDtypes) {
  EXPECT_EQ(readNpyLabels(put(npyFile("|u1", "(3,)", std::string("\x03\x00\x09", 3)))),
            (std::vector<int32_t>{3, 0, 9}));
  EXPECT_EQ(readNpyLabels(put(npyFile("<i8", "(2, 1)", le<int64_t>({5, 2147483647})))),
            (std::vector<int32_t>{5, 2147483647}));
  EXPECT_EQ(readNpyLabels(put(npyFile("<f4", "(2,)", le<float>({1, 4})))), (std::vector<int32_t>{1, 4}));
}

TEST_F(NpyTest, LabelErrorsNameTheIndexAndOffset) {
  std::string frac = put(npyFile("<f4", "(3,)", le<float>({1, 2.5f, 3})), "frac.npy");
  EXPECT_EQ(dataErrorOf([&] { readNpyLabels(frac); }),
            frac + ": offset 132: label 1 is 2.5: expected an integer class index");
  std::string neg = put(npyFile("<i4", "(2,)", le<int32_t>({0, -1})), "neg.npy");
  EXPECT_EQ(dataErrorOf([&] { readNpyLabels(neg); }),
            neg + ": offset 132: label 1 is -1: expected a class index in [0, 2^31)");
  std::string big = put(npyFile("<i8", "(1,)", le<int64_t>({1LL << 31})), "big.npy");
  EXPECT_HAS(dataErrorOf([&] { readNpyLabels(big); }), "label 0 is 2147483648: expected a class index");
  std::string nan = put(npyFile("<f4", "(1,)", le<float>({NAN})), "nan.npy");
  EXPECT_HAS(dataErrorOf([&] { readNpyLabels(nan); }), "label 0 is nan: expected an integer");
  std::string matrix = put(npyFile("<i4", "(1, 2)", le<int32_t>({0, 1})), "m.npy");
  EXPECT_EQ(dataErrorOf([&] { readNpyLabels(matrix); }),
            matrix + ": offset 0: labels must be a 1-D array (or [n, 1]), got shape (1, 2)");
}

// ---- errors ----------------------------------------------------------------------------

TEST_F(NpyTest, PreambleErrors) {
  std::string p = put("PK\x03\x04 a zip file");
  EXPECT_EQ(dataErrorOf([&] { readNpy(p); }), p + ": offset 0: not a .npy file: expected the magic \"\\x93NUMPY\"");
  p = put(std::string("\x93NUMPY", 6));
  EXPECT_EQ(dataErrorOf([&] { readNpy(p); }), p + ": offset 6: truncated: expected the version bytes");
  p = put(std::string("\x93NUMPY\x04\x00", 8) + "xxxx");
  EXPECT_EQ(dataErrorOf([&] { readNpy(p); }),
            p + ": offset 6: unsupported .npy version 4.0 (expected 1.0, 2.0 or 3.0)");
  p = put(std::string("\x93NUMPY\x02\x00\x10\x00", 10));
  EXPECT_EQ(dataErrorOf([&] { readNpy(p); }), p + ": offset 8: truncated: expected a 4-byte header length");
  p = put(npyFile("<f4", "(2,)", "").substr(0, 50));
  EXPECT_EQ(dataErrorOf([&] { readNpy(p); }), p + ": offset 10: truncated header: expected 118 bytes, file has 40 left");
}

TEST_F(NpyTest, HeaderErrorsPointIntoTheHeader) {
  struct Case { std::string header, message; };
  const std::vector<Case> cases = {
      {"[1, 2]\n", "offset 10: expected the header to be a dict literal starting with '{'"},
      {"{'descr': '<f4', 'fortran_order': False}", "offset 50: header dict has no `shape` key"},
      {"{'descr': '<f4' 'shape': ()}", "offset 26: expected ',' or '}' in the header dict"},
      {"{descr: '<f4'}", "offset 11: expected a quoted key"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (), 'extra': 1}",
       "offset 64: unexpected header key `extra` (expected descr, fortran_order, shape)"},
      {"{'descr': '<f4', 'descr': '<f4'}", "offset 27: header key `descr` appears twice"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': ()}",
       "offset 20: structured dtypes (a list `descr`) are not supported"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': ()}", "offset 44: expected True or False for `fortran_order`"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [2]}", "offset 60: expected a tuple of integers for `shape`"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",
       "offset 61: expected a non-negative integer in `shape`"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': ()} x", "offset 64: unexpected text after the header dict"},
      {"{'descr': '<f4", "offset 20: unterminated string in the header"},
  };
  for (const Case& c : cases) {
    std::string p = put(npyFileRaw(c.header, ""));
    EXPECT_EQ(dataErrorOf([&] { readNpy(p); }), p + ": " + c.message) << c.header;
  }
}

TEST_F(NpyTest, DtypeAndLayoutErrors) {
  std::string p = put(npyFile(">f4", "(1,)", "abcd"));
  EXPECT_EQ(dataErrorOf([&] { readNpy(p); }),
            p + ": offset 20: unsupported dtype '>f4' (expected one of '<f4', '<f8', '|u1', '<i4', '<i8')");
  p = put(npyFile("<f2", "(1,)", "ab"));
  EXPECT_HAS(dataErrorOf([&] { readNpy(p); }), "unsupported dtype '<f2'");
  p = put(npyFile("<f4", "(1, 2)", le<float>({1, 2}), 1, "True"));
  EXPECT_EQ(dataErrorOf([&] { readNpy(p); }),
            p + ": offset 10: fortran_order is True; only C-order arrays are supported (save with "
                "np.ascontiguousarray)");
  p = put(npyFile("<f4", "(4611686018427387904, 4)", ""));
  EXPECT_HAS(dataErrorOf([&] { readNpy(p); }), "offset 10: shape (4611686018427387904, 4) is too large");
}

TEST_F(NpyTest, DataLengthErrors) {
  std::string p = put(npyFile("<f4", "(2, 3)", le<float>({1, 2, 3, 4, 5})));
  EXPECT_EQ(dataErrorOf([&] { readNpy(p); }),
            p + ": offset 148: truncated data: shape (2, 3) of '<f4' needs 24 data bytes, file has 20");
  p = put(npyFile("<i4", "(1,)", le<int32_t>({1, 2})));
  EXPECT_EQ(dataErrorOf([&] { readNpy(p); }),
            p + ": offset 132: data length mismatch: shape (1,) of '<i4' needs 4 data bytes, file has 8");
  std::string missing = (dir_ / "missing.npy").string();
  EXPECT_HAS(dataErrorOf([&] { readNpy(missing); }), missing + ": cannot open");
}
