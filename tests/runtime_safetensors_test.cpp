// Tests for runtime/safetensors and runtime/atomic_file: a hand-built file in the reference byte
// layout, round trips, atomic replacement, and every reader error message.
#include "runtime/safetensors.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "runtime/atomic_file.h"
#include "runtime/errors.h"
#include "tests/runtime_test_util.h"

namespace fs = std::filesystem;
using namespace nnc::rt;

namespace {

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("nnc_st_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(path_);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void writeText(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string readText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A safetensors file from a header string and raw data bytes (no padding added).
std::string stFile(const std::string& header, const std::string& data) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  return out + header + data;
}

// The little-endian bytes of values of any element type (the host is little-endian: safetensors.cpp asserts it).
template <typename T>
std::string bytesOf(std::initializer_list<T> v) {
  std::string s(v.size() * sizeof(T), '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

std::string floatBytes(std::initializer_list<float> v) { return bytesOf(v); }


#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << haystack

// Expects readSafetensors on a file with these bytes to fail with `needle` in the message.
void expectReadError(const std::string& bytes, const std::string& needle) {
  TempDir dir;
  writeText(dir.file("bad.safetensors"), bytes);
  std::string m = dataErrorOf([&] { readSafetensors(dir.file("bad.safetensors")); });
  EXPECT_HAS(m, dir.file("bad.safetensors") + ": ");
  EXPECT_HAS(m, needle);
}

const std::string kGoodHeader =
    R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
    R"("a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})";

}  // namespace

// ---- reading the reference layout ------------------------------------------------------------

TEST(Safetensors, ReadsHandBuiltReferenceLayout) {
  // As PyTorch's safetensors.torch.save_file lays it out: u64 LE length, JSON, LE float data.
  TempDir dir;
  std::string header =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
      R"("bias":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  writeText(dir.file("m.safetensors"), stFile(header, floatBytes({1, 2, 3, 4, -0.5f, 1e30f})));

  std::vector<NamedTensor> t = readSafetensors(dir.file("m.safetensors"));
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].name, "bias");  // name order
  EXPECT_EQ(t[0].shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(t[0].data, (std::vector<float>{-0.5f, 1e30f}));
  EXPECT_EQ(t[1].name, "w");
  EXPECT_EQ(t[1].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(t[1].data, (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(readSafetensorsMetadata(dir.file("m.safetensors")),
            (std::map<std::string, std::string>{{"format", "pt"}}));
}

TEST(Safetensors, WritesTheExpectedBytes) {
  TempDir dir;
  writeSafetensors(dir.file("o.safetensors"), {{"x", {1}, {1.5f}}}, {{"k", "v"}});
  // crc32 is zlib's CRC-32 of the data section, the 4 bytes of 1.5f: 00 00 c0 3f.
  std::string json =
      R"({"__metadata__":{"crc32":"5cd8256f","k":"v"},"x":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}})";
  json.append((8 - json.size() % 8) % 8, ' ');
  EXPECT_EQ(readText(dir.file("o.safetensors")), stFile(json, floatBytes({1.5f})));
}

// ---- dtypes other than F32 -------------------------------------------------------------------

// Each dtype read, and the decisions on its edge values: F16 and BF16 are exact in f32 (subnormals, infinities,
// NaN included); F64 and large integers round to the nearest f32 and are counted in `rounded`.
TEST(SafetensorsDtypes, ReadsEveryDtypeAsF32) {
  TempDir dir;
  const uint16_t f16[] = {0x3c00, 0xc000, 0x3555, 0x7bff, 0x0400, 0x0001, 0x03ff, 0x8000, 0x7c00, 0xfc00, 0x7e00};
  const uint16_t bf16[] = {0x3f80, 0xc040, 0x3eab, 0x7f7f, 0x0001, 0x8000, 0x7f80, 0xff80, 0x7fc0};
  std::string data = bytesOf<double>({0.5, 0.1, 1e300, 1e-50, -INFINITY, NAN}) +                           // [0, 48)
                     bytesOf<int64_t>({0, -5, 1 << 24, (1 << 24) + 1, INT64_MAX, INT64_MIN, int64_t{1} << 40}) +  // [48, 104)
                     bytesOf<int32_t>({7, INT32_MIN, INT32_MAX, (1 << 24) + 1}) +                           // [104, 120)
                     std::string(reinterpret_cast<const char*>(f16), sizeof f16) +                          // [120, 142)
                     std::string(reinterpret_cast<const char*>(bf16), sizeof bf16) +                        // [142, 160)
                     floatBytes({1.25f});                                                                   // [160, 164)
  std::string header =
      R"({"d":{"dtype":"F64","shape":[6],"data_offsets":[0,48]},)"
      R"("l":{"dtype":"I64","shape":[7],"data_offsets":[48,104]},)"
      R"("i":{"dtype":"I32","shape":[2,2],"data_offsets":[104,120]},)"
      R"("h":{"dtype":"F16","shape":[11],"data_offsets":[120,142]},)"
      R"("b":{"dtype":"BF16","shape":[9],"data_offsets":[142,160]},)"
      R"("f":{"dtype":"F32","shape":[],"data_offsets":[160,164]}})";
  writeText(dir.file("t.safetensors"), stFile(header, data));

  std::map<std::string, NamedTensor> t;
  for (NamedTensor& tensor : readSafetensors(dir.file("t.safetensors"))) t[tensor.name] = tensor;
  const NamedTensor &d = t["d"], &l = t["l"], &i = t["i"], &h = t["h"], &b = t["b"], &f = t["f"];
  EXPECT_EQ(d.dtype, Dtype::F64);
  EXPECT_EQ(std::vector<float>(d.data.begin(), d.data.begin() + 5),
            (std::vector<float>{0.5f, 0.1f, INFINITY, 0.0f, -INFINITY}));
  EXPECT_TRUE(std::isnan(d.data[5]));
  EXPECT_EQ(d.rounded, 3);  // 0.1, 1e300 (to infinity), 1e-50 (to 0); NaN and -inf are kept
  EXPECT_EQ(l.dtype, Dtype::I64);
  EXPECT_EQ(l.data, (std::vector<float>{0, -5, 0x1p24f, 0x1p24f, 0x1p63f, -0x1p63f, 0x1p40f}));
  EXPECT_EQ(l.rounded, 2);  // 2^24 + 1 and INT64_MAX
  EXPECT_EQ(i.dtype, Dtype::I32);
  EXPECT_EQ(i.shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(i.data, (std::vector<float>{7, -0x1p31f, 0x1p31f, 0x1p24f}));
  EXPECT_EQ(i.rounded, 2);  // INT32_MAX and 2^24 + 1
  EXPECT_EQ(h.dtype, Dtype::F16);
  // 1, -2, the nearest to 1/3, the largest, the smallest normal, the smallest and largest subnormals, -0, +-inf.
  EXPECT_EQ(std::vector<float>(h.data.begin(), h.data.begin() + 10),
            (std::vector<float>{1, -2, 0.333251953125f, 65504, 0x1p-14f, 0x1p-24f, 1023 * 0x1p-24f, 0, INFINITY,
                                -INFINITY}));
  EXPECT_TRUE(std::signbit(h.data[7]));
  EXPECT_TRUE(std::isnan(h.data[10]));
  EXPECT_EQ(h.rounded, 0);
  EXPECT_EQ(b.dtype, Dtype::BF16);
  // 1, -3, the nearest to 1/3, the largest, the smallest subnormal (an f32 subnormal), -0, +-inf.
  EXPECT_EQ(std::vector<float>(b.data.begin(), b.data.begin() + 8),
            (std::vector<float>{1, -3, 0.333984375f, 0x1.fep127f, 0x1p-133f, 0, INFINITY, -INFINITY}));
  EXPECT_TRUE(std::signbit(b.data[5]));
  EXPECT_TRUE(std::isnan(b.data[8]));
  EXPECT_EQ(b.rounded, 0);
  EXPECT_EQ(f.dtype, Dtype::F32);
  EXPECT_EQ(f.data, std::vector<float>{1.25f});
}

// I64 tensors come first, then F32, each group by name, as the safetensors package writes them: the 8-byte
// elements at offset 0, so aligned.
TEST(SafetensorsDtypes, WritesI64BeforeF32) {
  TempDir dir;
  const std::string p = dir.file("bn.safetensors");
  writeSafetensors(p, {{"bn.weight", {3}, {1, 2, 3}}, {"bn.num_batches_tracked", {}, {7}, Dtype::I64}, {"a", {}, {0.5f}}});
  std::string json = R"({"__metadata__":{"crc32":")" + readSafetensorsMetadata(p).at("crc32") + R"("},)"
                     R"("a":{"data_offsets":[8,12],"dtype":"F32","shape":[]},)"
                     R"("bn.num_batches_tracked":{"data_offsets":[0,8],"dtype":"I64","shape":[]},)"
                     R"("bn.weight":{"data_offsets":[12,24],"dtype":"F32","shape":[3]}})";
  json.append((8 - json.size() % 8) % 8, ' ');
  EXPECT_EQ(readText(p), stFile(json, bytesOf<int64_t>({7}) + floatBytes({0.5f, 1, 2, 3})));
  std::vector<NamedTensor> back = readSafetensors(p);
  EXPECT_EQ(back[1].name, "bn.num_batches_tracked");
  EXPECT_EQ(back[1].dtype, Dtype::I64);
  EXPECT_EQ(back[1].data, std::vector<float>{7});
}

// What nnc writes, read and written again, is the same file: dtypes and values survive.
TEST(SafetensorsDtypes, WriteReadWriteIsByteStable) {
  TempDir dir;
  writeSafetensors(dir.file("1.safetensors"),
                   {{"w", {2, 2}, {0.1f, -2, 1e-40f, 3e38f}},
                    {"n", {3}, {0, 0x1p40f, -0x1p63f}, Dtype::I64},
                    {"m", {}, {16777216}, Dtype::I64}},
                   {{"model", "m"}});
  writeSafetensors(dir.file("2.safetensors"), readSafetensors(dir.file("1.safetensors")),
                   readSafetensorsMetadata(dir.file("1.safetensors")));
  EXPECT_EQ(readText(dir.file("1.safetensors")), readText(dir.file("2.safetensors")));
}

TEST(SafetensorsDtypes, FitsInt64) {
  EXPECT_TRUE(fitsInt64(0));
  EXPECT_TRUE(fitsInt64(-0x1p63f));
  EXPECT_TRUE(fitsInt64(0x1p62f));
  EXPECT_FALSE(fitsInt64(0x1p63f));
  EXPECT_FALSE(fitsInt64(2.5f));
  EXPECT_FALSE(fitsInt64(INFINITY));
  EXPECT_FALSE(fitsInt64(NAN));
}

// ---- round trips -------------------------------------------------------------------------------

TEST(Safetensors, RoundTripsSeveralShapesIncludingScalarAndEmpty) {
  TempDir dir;
  std::vector<NamedTensor> in = {
      {"layer2.W", {3, 2}, {1, 2, 3, 4, 5, 6}},
      {"b", {}, {42.0f}},
      {"empty", {0, 5}, {}},
      {"layer1.W", {2, 1, 2}, {-1, 0, 1e-30f, 3.25f}},
  };
  std::map<std::string, std::string> meta = {{"epoch", "3"}, {"model", "mlp.nn"}};
  writeSafetensors(dir.file("c.safetensors"), in, meta);

  std::vector<NamedTensor> out = readSafetensors(dir.file("c.safetensors"));
  std::sort(in.begin(), in.end(), [](auto& a, auto& b) { return a.name < b.name; });
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i].name, in[i].name);
    EXPECT_EQ(out[i].shape, in[i].shape);
    EXPECT_EQ(out[i].data, in[i].data);
  }
  meta["crc32"] = readSafetensorsMetadata(dir.file("c.safetensors")).at("crc32");  // always added
  EXPECT_EQ(readSafetensorsMetadata(dir.file("c.safetensors")), meta);
  EXPECT_EQ((fs::file_size(dir.file("c.safetensors")) - 8 - 11 * 4) % 8, 0u);  // padded header
}

TEST(Safetensors, NoTensorsNoMetadata) {
  TempDir dir;
  writeSafetensors(dir.file("e.safetensors"), {});
  EXPECT_TRUE(readSafetensors(dir.file("e.safetensors")).empty());
  EXPECT_EQ(readSafetensorsMetadata(dir.file("e.safetensors")),
            (std::map<std::string, std::string>{{"crc32", "00000000"}}));  // CRC-32 of no bytes
}

// One flipped bit in the tensor data is caught by the header's CRC-32; a file without one (another tool's) loads.
TEST(Safetensors, DamagedDataFailsTheChecksum) {
  TempDir dir;
  writeSafetensors(dir.file("d.safetensors"), {{"w", {2}, {1.0f, 2.0f}}});
  std::string bytes = readText(dir.file("d.safetensors"));
  bytes[bytes.size() - 1] ^= 0x01;
  writeText(dir.file("d.safetensors"), bytes);
  EXPECT_EQ(dataErrorOf([&] { readSafetensors(dir.file("d.safetensors")); }),
            dir.file("d.safetensors") + ": checksum mismatch: the tensor data's CRC-32 is " +
                "593895e0, the header says 2e3fa576; the file is damaged");
  std::string json = R"({"w":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}})";
  writeText(dir.file("n.safetensors"), stFile(json, floatBytes({3.0f})));
  EXPECT_EQ(readSafetensors(dir.file("n.safetensors"))[0].data, std::vector<float>{3.0f});
}

TEST(Safetensors, WriterRejectsBadInput) {
  TempDir dir;
  const std::string p = dir.file("x.safetensors");
  EXPECT_THROW(writeSafetensors(p, {{"a", {2}, {1}}}), std::invalid_argument);
  EXPECT_THROW(writeSafetensors(p, {{"a", {1}, {1}}, {"a", {1}, {2}}}), std::invalid_argument);
  EXPECT_THROW(writeSafetensors(p, {{"__metadata__", {}, {1}}}), std::invalid_argument);
  EXPECT_THROW(writeSafetensors(p, {{"a", {1}, {1}, Dtype::F16}}), std::invalid_argument);  // F32 and I64 only
  for (float not_int64 : {2.5f, 0x1p63f, NAN})
    EXPECT_THROW(writeSafetensors(p, {{"a", {1}, {not_int64}, Dtype::I64}}), std::invalid_argument) << not_int64;
  EXPECT_FALSE(fs::exists(p));
}

// ---- atomicity ---------------------------------------------------------------------------------

TEST(AtomicFile, ReplacesFileAndLeavesNoTemporaries) {
  TempDir dir;
  const std::string p = dir.file("ckpt.safetensors");
  writeSafetensors(p, {{"w", {2}, {1, 2}}});
  writeSafetensors(p, {{"w", {3}, {7, 8, 9}}});
  EXPECT_EQ(readSafetensors(p)[0].data, (std::vector<float>{7, 8, 9}));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename());
  EXPECT_EQ(names, (std::vector<std::string>{"ckpt.safetensors"}));
}

TEST(AtomicFile, FailureLeavesOldFileUntouchedAndNamesPath) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  TempDir dir;
  const std::string p = dir.file("out.txt");
  writeFileAtomically(p, "old");
  fs::permissions(dir.path(), fs::perms::owner_read | fs::perms::owner_exec);
  try {
    writeFileAtomically(p, "new");
    ADD_FAILURE() << "expected a failure in a read-only directory";
  } catch (const std::runtime_error& e) {
    EXPECT_HAS(e.what(), p + ": cannot create temporary file: Permission denied");
  }
  fs::permissions(dir.path(), fs::perms::owner_all);
  EXPECT_EQ(readText(p), "old");
}

// Several files (an inference library's OUT.a and OUT.h): one that cannot be written leaves every path as it was
// and no temporary behind.
TEST(AtomicFile, SeveralFilesAllOrNothing) {
  TempDir dir;
  const std::string archive = dir.file("lib.a"), header = dir.file("lib.h"), lost = dir.file("missing/lib.h");
  writeFileAtomically(archive, "old");
  try {
    writeFilesAtomically({{archive, "new"}, {lost, "header"}});
    ADD_FAILURE() << "expected a failure";
  } catch (const DataError& e) {
    EXPECT_HAS(e.what(), lost + ": cannot create temporary file: No such file");
  }
  EXPECT_EQ(readText(archive), "old");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename());
  EXPECT_EQ(names, (std::vector<std::string>{"lib.a"}));
  writeFilesAtomically({{archive, "new"}, {header, "header"}});
  EXPECT_EQ(readText(archive), "new");
  EXPECT_EQ(readText(header), "header");
}

// Only a regular file (or nothing) is replaced: not a directory, not a device. As root (CI, containers),
// `--save /dev/null` once replaced the device node with a regular file.
TEST(AtomicFile, RefusesToReplaceWhatIsNotARegularFile) {
  TempDir dir;
  const std::string p = dir.file("taken");
  fs::create_directories(p + "/inside");
  try {
    writeFileAtomically(p, "new");
    ADD_FAILURE() << "expected a failure";
  } catch (const DataError& e) {
    EXPECT_HAS(e.what(), p + ": is not a regular file");
  }
  EXPECT_THROW(writeFileAtomically("/dev/null", "new"), DataError);
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
  EXPECT_TRUE(fs::is_directory(p + "/inside"));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename());
  EXPECT_EQ(names, (std::vector<std::string>{"taken"}));
}

TEST(AtomicFile, MissingDirectoryNamesPath) {
  try {
    writeFileAtomically("/nonexistent/nnc/out.txt", "x");
    ADD_FAILURE() << "expected a failure";
  } catch (const std::runtime_error& e) {
    EXPECT_HAS(e.what(), "/nonexistent/nnc/out.txt: cannot create temporary file: No such file");
  }
}

// ---- reader errors -----------------------------------------------------------------------------

TEST(SafetensorsErrors, MissingFile) {
  std::string m = dataErrorOf([] { readSafetensors("/nonexistent/nnc/c.safetensors"); });
  EXPECT_HAS(m, "/nonexistent/nnc/c.safetensors: cannot open: No such file or directory");
}

TEST(SafetensorsErrors, Directory) {
  TempDir dir;
  std::string m = dataErrorOf([&] { readSafetensors(dir.path().string()); });
  EXPECT_HAS(m, dir.path().string() + ": cannot open: Is a directory");
}

TEST(SafetensorsErrors, ShorterThanEightBytes) {
  expectReadError("abc", "not a safetensors file (or truncated): 3 bytes, shorter than the 8-byte");
}

TEST(SafetensorsErrors, TruncatedFile) {
  std::string f = stFile(kGoodHeader, floatBytes({1, 2, 3}));
  expectReadError(f.substr(0, 40), "truncated: header says 8 + " +
                                       std::to_string(kGoodHeader.size()) + " bytes, file has 40");
}

TEST(SafetensorsErrors, TruncatedDataSection) {
  expectReadError(stFile(kGoodHeader, floatBytes({1, 2})), "data_offsets [4, 12] out of range");
}

TEST(SafetensorsErrors, ForeignPngFile) {
  expectReadError(std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16), "not a safetensors file");
}

TEST(SafetensorsErrors, ForeignTextFile) {
  expectReadError("hello, this is a plain text file\n", "not a safetensors file");
}

TEST(SafetensorsErrors, SmallLengthButNotJson) {
  expectReadError(stFile("abcd", ""), "not a safetensors file: offset 8: expected '{'");
}

TEST(SafetensorsErrors, InvalidJson) {
  expectReadError(stFile("{\"a\": ", ""), "header is not valid JSON");
}

TEST(SafetensorsErrors, JsonNotAnObject) {
  expectReadError(stFile("[1, 2]", ""), "not a safetensors file: offset 8: expected '{'");
}

TEST(SafetensorsErrors, MissingFields) {
  expectReadError(stFile(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", floatBytes({1})),
                  "tensor `a`: missing `dtype`");
  expectReadError(stFile(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", floatBytes({1})),
                  "tensor `a`: missing `shape`");
  expectReadError(stFile(R"({"a":{"dtype":"F32","shape":[1]}})", floatBytes({1})),
                  "tensor `a`: missing `data_offsets`");
  expectReadError(stFile(R"({"a":7})", ""), "tensor `a`: expected an object");
}

TEST(SafetensorsErrors, UnsupportedDtype) {
  for (const char* dtype : {"C64", "U8", "BOOL", "f32", "F33"})
    expectReadError(stFile(R"({"a":{"dtype":")" + std::string(dtype) + R"(","shape":[2],"data_offsets":[0,4]}})",
                           floatBytes({1})),
                    "tensor `a`: dtype `" + std::string(dtype) +
                        "` is not supported (expected F32, F64, F16, BF16, I64 or I32)");
}

TEST(SafetensorsErrors, BadShape) {
  expectReadError(stFile(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
                         floatBytes({1})),
                  "tensor `a`: `shape` entry -1 is not a non-negative integer");
}

TEST(SafetensorsErrors, OffsetsDoNotMatchShape) {
  expectReadError(stFile(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                         floatBytes({1, 2})),
                  "tensor `a`: data_offsets span 8 bytes, but shape [3] of F32 needs 12");
  expectReadError(stFile(R"({"a":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}})", floatBytes({1, 2})),
                  "tensor `a`: data_offsets span 8 bytes, but shape [3] of F16 needs 6");
  expectReadError(stFile(R"({"a":{"dtype":"I64","shape":[],"data_offsets":[0,4]}})", floatBytes({1})),
                  "tensor `a`: data_offsets span 4 bytes, but shape [] of I64 needs 8");
}

TEST(SafetensorsErrors, HugeShapeDoesNotOverflow) {
  expectReadError(
      stFile(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})",
             floatBytes({1})),
      "needs more than 2^64");
}

TEST(SafetensorsErrors, OverlappingOffsets) {
  expectReadError(stFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                         floatBytes({1, 2, 3})),
                  "tensors `a` and `b` overlap at data offset 4");
}

TEST(SafetensorsErrors, GapAndSlackInDataSection) {
  expectReadError(stFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                         floatBytes({1, 2})),
                  "data section has a gap of unused bytes [0, 4)");
  expectReadError(stFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                         floatBytes({1, 2})),
                  "data section length mismatch: tensors cover 4 bytes, file has 8 after the header");
}

TEST(SafetensorsErrors, BadMetadata) {
  expectReadError(stFile(R"({"__metadata__":{"k":1}})", ""),
                  "`__metadata__` value for `k` is not a string");
}

TEST(SafetensorsErrors, EveryPrefixOfAGoodFileFailsCleanly) {
  TempDir dir;
  const std::string p = dir.file("good.safetensors");
  writeSafetensors(p, {{"a", {2}, {1, 2}}, {"b", {}, {3}}}, {{"k", "v"}});
  const std::string good = readText(p);
  for (size_t n = 0; n < good.size(); ++n) {
    writeText(p, good.substr(0, n));
    EXPECT_THROW(readSafetensors(p), DataError) << n;
  }
}
