// Tests for runtime/dataset: IDX parsing (raw and gzipped), every error message, the MNIST
// directory loader, the real Fashion-MNIST t10k split when installed, and epoch permutations.
#include "runtime/dataset.h"
#include "tests/runtime_test_util.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace nnc::rt;

namespace {

using Bytes = std::vector<uint8_t>;

// IDX bytes: magic 00 00 <type> <ndims>, big-endian dims, then `data` verbatim.
Bytes idx(const std::vector<uint32_t>& dims, const Bytes& data, uint8_t type = 0x08) {
  Bytes b = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

Bytes gzip(const Bytes& raw) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&zs, raw.size()) + 64);
  zs.next_in = const_cast<Bytef*>(raw.data());
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("nnc_dataset_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

void writeBytes(const std::string& path, const Bytes& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), b.size());
}


#define EXPECT_HAS(haystack, needle) EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << haystack

// Two 2x3 images and their labels.
const Bytes kPixels = {0, 51, 102, 153, 204, 255, 255, 0, 0, 0, 0, 0};
const Bytes kLabels = {3, 7};

}  // namespace

// ---- parseIdx -------------------------------------------------------------------------

TEST(Idx, ParsesHandBuiltBytes) {
  IdxArray a = parseIdx(idx({2, 2, 3}, kPixels), "x");
  EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 2, 3}));
  EXPECT_EQ(a.data, kPixels);
  IdxArray l = parseIdx(idx({2}, kLabels), "y");
  EXPECT_EQ(l.dims, (std::vector<int64_t>{2}));
  EXPECT_EQ(l.data, kLabels);
}

TEST(Idx, ReadsRawAndGzippedFilesAlike) {
  TempDir dir;
  writeBytes(dir.file("a"), idx({2, 2, 3}, kPixels));
  writeBytes(dir.file("a.gz"), gzip(idx({2, 2, 3}, kPixels)));
  EXPECT_EQ(readIdx(dir.file("a")).data, kPixels);
  EXPECT_EQ(readIdx(dir.file("a.gz")).data, kPixels);
  EXPECT_EQ(readIdx(dir.file("a.gz")).dims, (std::vector<int64_t>{2, 2, 3}));
}

TEST(Idx, ConcatenatedGzipMembersAreOneStream) {
  TempDir dir;
  Bytes whole = idx({2}, kLabels);
  Bytes first(whole.begin(), whole.begin() + 5), second(whole.begin() + 5, whole.end());
  Bytes gz = gzip(first), gz2 = gzip(second);
  gz.insert(gz.end(), gz2.begin(), gz2.end());
  writeBytes(dir.file("l.gz"), gz);
  EXPECT_EQ(readFileMaybeGzip(dir.file("l.gz")), whole);
}

TEST(Idx, ErrorTooShortForHeader) {
  std::string m = dataErrorOf([] { parseIdx({0, 0}, "f.idx"); });
  EXPECT_HAS(m, "f.idx: offset 0: expected a 4-byte IDX header, file has 2 bytes");
}

TEST(Idx, ErrorBadMagic) {
  Bytes b = idx({2}, kLabels);
  b[1] = 0x42;
  std::string m = dataErrorOf([&] { parseIdx(b, "f.idx"); });
  EXPECT_HAS(m, "f.idx: offset 0: expected IDX magic 0x00 0x00, found 0x00 0x42");
}

TEST(Idx, ErrorUnsupportedType) {
  std::string m = dataErrorOf([] { parseIdx(idx({1}, {0, 0, 0, 0}, 0x0D), "f.idx"); });
  EXPECT_HAS(m, "f.idx: offset 2: unsupported IDX element type 0x0d (float)");
}

TEST(Idx, ErrorTruncatedHeader) {
  Bytes b = idx({2, 2, 3}, {});
  b.resize(9);  // cut inside the second dimension
  std::string m = dataErrorOf([&] { parseIdx(b, "f.idx"); });
  EXPECT_HAS(m, "f.idx: offset 9: truncated header: expected 3 dimensions");
}

TEST(Idx, ErrorTruncatedDataNamesWhereItRanOut) {
  Bytes b = idx({2, 2, 3}, kPixels);
  b.resize(b.size() - 5);  // header 16 + 7 of 12 data bytes
  std::string m = dataErrorOf([&] { parseIdx(b, "f.idx"); });
  EXPECT_HAS(m, "f.idx: offset 23: truncated data: dims [2, 2, 3]");
}

TEST(Idx, ErrorHugeDimsDoNotOverflowOrAllocate) {
  std::string m = dataErrorOf([] {
    parseIdx(idx({0xffffffffu, 0xffffffffu, 0xffffffffu}, {1, 2, 3}), "f.idx");
  });
  EXPECT_HAS(m, "truncated data: dims [4294967295, 4294967295, 4294967295]");
}

TEST(Idx, ErrorTrailingBytes) {
  Bytes b = idx({2}, {3, 7, 9});
  std::string m = dataErrorOf([&] { parseIdx(b, "f.idx"); });
  EXPECT_HAS(m, "f.idx: offset 10: expected end of file after dims [2], found 1 extra bytes");
}

TEST(Idx, GarbageNeverCrashes) {
  // Every prefix of a valid file, and a few byte flips, give a DataError or a valid array.
  Bytes good = idx({2, 2, 3}, kPixels);
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_THROW(parseIdx(Bytes(good.begin(), good.begin() + n), "f"), DataError) << n;
  for (size_t i = 0; i < 16; ++i) {
    Bytes b = good;
    b[i] ^= 0xff;
    try {
      parseIdx(b, "f");
    } catch (const DataError&) {
    }
  }
}

// ---- readFileMaybeGzip errors --------------------------------------------------------------

TEST(ReadFile, MissingFileNamesPathAndReason) {
  std::string m = dataErrorOf([] { readFileMaybeGzip("/nonexistent/nnc/f.gz"); });
  EXPECT_HAS(m, "/nonexistent/nnc/f.gz: cannot open: No such file or directory");
}

TEST(ReadFile, TruncatedGzip) {
  TempDir dir;
  Bytes gz = gzip(idx({2, 2, 3}, kPixels));
  gz.resize(gz.size() / 2);
  writeBytes(dir.file("t.gz"), gz);
  std::string m = dataErrorOf([&] { readFileMaybeGzip(dir.file("t.gz")); });
  EXPECT_HAS(m, dir.file("t.gz") + ": truncated gzip stream");
}

TEST(ReadFile, CorruptGzipCarriesZlibMessage) {
  TempDir dir;
  Bytes gz = gzip(idx({2, 2, 3}, kPixels));
  gz[gz.size() - 6] ^= 0xff;  // inside the CRC32 trailer
  writeBytes(dir.file("c.gz"), gz);
  std::string m = dataErrorOf([&] { readFileMaybeGzip(dir.file("c.gz")); });
  EXPECT_HAS(m, dir.file("c.gz") + ": corrupt gzip stream");
  EXPECT_HAS(m, "zlib: incorrect data check");
}

// ---- loadMnistSplit ------------------------------------------------------------------------

TEST(Mnist, LoadsRawAndGzMixAndScalesPixels) {
  TempDir dir;
  writeBytes(dir.file("t10k-images-idx3-ubyte"), idx({2, 2, 3}, kPixels));
  writeBytes(dir.file("t10k-labels-idx1-ubyte.gz"), gzip(idx({2}, kLabels)));
  Dataset ds = loadMnistSplit(dir.str(), "t10k");
  EXPECT_EQ(ds.count, 2);
  EXPECT_EQ(ds.features, 6);
  EXPECT_EQ(ds.num_classes, 8);
  ASSERT_EQ(ds.images.size(), 12u);
  EXPECT_FLOAT_EQ(ds.images[0], 0.0f);
  EXPECT_FLOAT_EQ(ds.images[1], 0.2f);
  EXPECT_FLOAT_EQ(ds.images[5], 1.0f);
  EXPECT_EQ(ds.labels, (std::vector<int32_t>{3, 7}));
}

TEST(Mnist, MissingFilesListBothNamesAndThePackage) {
  TempDir dir;
  std::string m = dataErrorOf([&] { loadMnistSplit(dir.str(), "train"); });
  EXPECT_HAS(m, dir.file("train-images-idx3-ubyte") + " and " +
                    dir.file("train-images-idx3-ubyte.gz"));
  EXPECT_HAS(m, "`dataset-fashion-mnist` provides /usr/share/datasets/fashion-mnist");
}

TEST(Mnist, CountMismatch) {
  TempDir dir;
  writeBytes(dir.file("train-images-idx3-ubyte"), idx({2, 2, 3}, kPixels));
  writeBytes(dir.file("train-labels-idx1-ubyte"), idx({1}, {3}));
  std::string m = dataErrorOf([&] { loadMnistSplit(dir.str(), "train"); });
  EXPECT_HAS(m, dir.file("train-labels-idx1-ubyte") +
                    ": offset 4: expected 2 labels to match the 2 images, header says 1");
}

TEST(Mnist, WrongNdimsForImages) {
  TempDir dir;
  writeBytes(dir.file("train-images-idx3-ubyte"), idx({2, 6}, kPixels));
  writeBytes(dir.file("train-labels-idx1-ubyte"), idx({2}, kLabels));
  std::string m = dataErrorOf([&] { loadMnistSplit(dir.str(), "train"); });
  EXPECT_HAS(m, "train-images-idx3-ubyte: offset 3: expected 3 dimensions (count, rows, cols) "
                "for images, header says 2");
}

TEST(Mnist, WrongNdimsForLabels) {
  TempDir dir;
  writeBytes(dir.file("train-images-idx3-ubyte"), idx({2, 2, 3}, kPixels));
  writeBytes(dir.file("train-labels-idx1-ubyte"), idx({2, 1}, kLabels));
  std::string m = dataErrorOf([&] { loadMnistSplit(dir.str(), "train"); });
  EXPECT_HAS(m, "train-labels-idx1-ubyte: offset 3: expected 1 dimension (count) for labels, "
                "header says 2");
}

TEST(Mnist, EmptyImagesRejected) {
  TempDir dir;
  writeBytes(dir.file("train-images-idx3-ubyte"), idx({0, 28, 28}, {}));
  writeBytes(dir.file("train-labels-idx1-ubyte"), idx({0}, {}));
  std::string m = dataErrorOf([&] { loadMnistSplit(dir.str(), "train"); });
  EXPECT_HAS(m, "expected at least one image, header says 0");
}

TEST(Mnist, RejectsUnknownSplit) {
  EXPECT_THROW(loadMnistSplit("/tmp", "valid"), std::invalid_argument);
}

TEST(Mnist, RealFashionMnistTestSplit) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir + "/t10k-images-idx3-ubyte.gz") && !fs::exists(dir + "/t10k-images-idx3-ubyte"))
    GTEST_SKIP() << dir << " not installed (Debian package dataset-fashion-mnist)";
  Dataset ds = loadMnistSplit(dir, "t10k");
  EXPECT_EQ(ds.count, 10000);
  EXPECT_EQ(ds.features, 784);
  EXPECT_EQ(ds.num_classes, 10);
  ASSERT_EQ(ds.images.size(), 10000u * 784u);
  ASSERT_EQ(ds.labels.size(), 10000u);
  auto [lo, hi] = std::minmax_element(ds.images.begin(), ds.images.end());
  EXPECT_EQ(*lo, 0.0f);
  EXPECT_EQ(*hi, 1.0f);
  for (int32_t l : ds.labels) ASSERT_TRUE(l >= 0 && l < 10) << l;
}

// ---- epochPermutation ----------------------------------------------------------------------

// The huge-page request changes where the values live, not what they are: zeros, as many as asked, writable
// (sizes below, at and above one 2 MB page).
TEST(HugePageFloats, AreZerosOfTheRequestedCount) {
  for (size_t count : {size_t{0}, size_t{3}, size_t{1} << 19, (size_t{5} << 19) + 7}) {
    std::vector<float> values = hugePageFloats(count);
    ASSERT_EQ(values.size(), count);
    EXPECT_TRUE(std::all_of(values.begin(), values.end(), [](float v) { return v == 0; })) << count;
    if (count) values.back() = 1;
  }
}

TEST(Permutation, IsAPermutation) {
  for (int64_t n : {0, 1, 2, 7, 1000}) {
    std::vector<int64_t> p = epochPermutation(n, 42, 3);
    ASSERT_EQ(static_cast<int64_t>(p.size()), n);
    std::sort(p.begin(), p.end());
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(p[i], i);
  }
}

TEST(Permutation, DeterministicAndDiffersBetweenEpochsAndSeeds) {
  EXPECT_EQ(epochPermutation(1000, 7, 0), epochPermutation(1000, 7, 0));
  EXPECT_NE(epochPermutation(1000, 7, 0), epochPermutation(1000, 7, 1));
  EXPECT_NE(epochPermutation(1000, 7, 0), epochPermutation(1000, 8, 0));
}

TEST(Permutation, PinnedValuesKeepRunsReproducibleAcrossVersions) {
  // If this changes, every recorded training run's shuffle order changes with it.
  EXPECT_EQ(epochPermutation(8, 1, 0), (std::vector<int64_t>{3, 1, 4, 7, 2, 5, 0, 6}));
}

TEST(Permutation, RoughlyUniformFirstElement) {
  // Each of 10 values should land first about 1000 of 10000 times.
  std::vector<int> counts(10);
  for (int64_t e = 0; e < 10000; ++e) counts[epochPermutation(10, 99, e)[0]]++;
  for (int c : counts) EXPECT_TRUE(c > 850 && c < 1150) << c;
}
