// Data set loading: file bytes (gunzipped if needed) -> IDX arrays -> Dataset; epoch shuffles.
//
// Every check that can fail on user data throws DataError with "<file>: offset <n>: <what was
// expected>", so a trainer reports a broken download precisely instead of training on garbage.
#include "runtime/dataset.h"
#include "runtime/random.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

namespace nnc::rt {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw DataError(path + ": " + what);
}

[[noreturn]] void failAt(const std::string& path, uint64_t offset, const std::string& what) {
  fail(path, "offset " + std::to_string(offset) + ": " + what);
}

// ---- reading files ------------------------------------------------------------

std::vector<uint8_t> readWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::vector<uint8_t> bytes;
  struct stat st{};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) bytes.reserve(static_cast<size_t>(st.st_size));  // one allocation
  uint8_t chunk[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      fail(path, std::string("cannot read: ") + std::strerror(err));
    }
    if (n == 0) break;
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  ::close(fd);
  return bytes;
}

bool hasGzipMagic(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

// Inflates a gzip file (all members, as gunzip does). Truncation and corruption are DataErrors
// carrying zlib's message.
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const std::string& path) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) fail(path, "zlib: cannot initialise inflate");
  std::vector<uint8_t> out;
  // The gzip trailer's last 4 bytes hold the (last member's) uncompressed size mod 2^32: a good reservation,
  // unless it lies. Deflate expands at most 1032:1, so no true size is above that (a fuzzed trailer asked 4 GB).
  if (in.size() >= 18)
    out.reserve(std::min<size_t>(in[in.size() - 4] | in[in.size() - 3] << 8 | in[in.size() - 2] << 16 |
                                     static_cast<size_t>(in[in.size() - 1]) << 24,
                                 in.size() * 1032));
  uint8_t chunk[1 << 16];
  size_t consumed = 0;
  int rc = Z_OK;
  while (true) {
    // avail_in is 32-bit: feed at most 1 GiB at a time.
    size_t feed = std::min<size_t>(in.size() - consumed, size_t{1} << 30);
    zs.next_in = const_cast<Bytef*>(in.data() + consumed);
    zs.avail_in = static_cast<uInt>(feed);
    zs.next_out = chunk;
    zs.avail_out = sizeof chunk;
    rc = inflate(&zs, Z_NO_FLUSH);
    consumed += feed - zs.avail_in;
    out.insert(out.end(), chunk, chunk + (sizeof chunk - zs.avail_out));
    if (rc == Z_STREAM_END) {
      // Another gzip member may follow (concatenated .gz files are valid gzip).
      if (consumed == in.size()) break;
      inflateReset(&zs);
      continue;
    }
    if (rc == Z_BUF_ERROR && consumed == in.size()) {
      inflateEnd(&zs);
      fail(path, "truncated gzip stream: input ended after " + std::to_string(out.size()) +
                     " decompressed bytes");
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      std::string msg = zs.msg ? zs.msg : "error " + std::to_string(rc);
      inflateEnd(&zs);
      fail(path, "corrupt gzip stream at compressed offset " + std::to_string(consumed) +
                     ": zlib: " + msg);
    }
  }
  inflateEnd(&zs);
  return out;
}

// ---- IDX ----------------------------------------------------------------------

constexpr uint8_t kIdxUnsignedByte = 0x08;

const char* idxTypeName(uint8_t type) {
  switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown";
  }
}

std::string hexByte(uint8_t b) {
  static const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

uint32_t readBigEndianU32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string formatDims(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// Checks the 4-byte magic; returns ndims.
size_t parseIdxMagic(const std::vector<uint8_t>& bytes, const std::string& path) {
  if (bytes.size() < 4)
    failAt(path, 0, "expected a 4-byte IDX header, file has " + std::to_string(bytes.size()) +
                        " bytes");
  if (bytes[0] != 0 || bytes[1] != 0)
    failAt(path, 0, "expected IDX magic 0x00 0x00, found " + hexByte(bytes[0]) + " " +
                        hexByte(bytes[1]) + " (not an IDX file)");
  if (bytes[2] != kIdxUnsignedByte)
    failAt(path, 2, "unsupported IDX element type " + hexByte(bytes[2]) + " (" +
                        idxTypeName(bytes[2]) + "); only 0x08 (unsigned byte) is supported");
  return bytes[3];
}

}  // namespace

std::vector<uint8_t> readFileMaybeGzip(const std::string& path) {
  std::vector<uint8_t> bytes = readWholeFile(path);
  return hasGzipMagic(bytes) ? gunzip(bytes, path) : bytes;
}

IdxArray parseIdx(const std::vector<uint8_t>& bytes, const std::string& path) {
  const size_t ndims = parseIdxMagic(bytes, path);
  const size_t header = 4 + 4 * ndims;
  if (bytes.size() < header)
    failAt(path, bytes.size(), "truncated header: expected " + std::to_string(ndims) +
                                   " dimensions (4 bytes each) ending at offset " +
                                   std::to_string(header));
  IdxArray array;
  const uint64_t available = bytes.size() - header;
  uint64_t elements = 1;
  bool too_big = false;  // product exceeds the bytes present (also guards against overflow)
  for (size_t i = 0; i < ndims; ++i) {
    uint32_t d = readBigEndianU32(bytes.data() + 4 + 4 * i);
    array.dims.push_back(d);
    if (d != 0 && elements > available / d) too_big = true;
    elements = too_big ? elements : elements * d;
  }
  if (too_big || elements > available)
    failAt(path, bytes.size(), "truncated data: dims " + formatDims(array.dims) +
                                   " need more bytes than the " + std::to_string(available) +
                                   " after the header");
  if (elements < available)
    failAt(path, header + elements, "expected end of file after dims " +
                                        formatDims(array.dims) + ", found " +
                                        std::to_string(available - elements) + " extra bytes");
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return array;
}

IdxArray readIdx(const std::string& path) {
  return parseIdx(readFileMaybeGzip(path), path);
}

// ---- MNIST layout -------------------------------------------------------------

namespace {

bool fileExists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

// DIR/<stem>, or DIR/<stem>.gz when only that exists.
std::string findMnistFile(const std::string& dir, const std::string& stem) {
  std::string raw = dir + "/" + stem;
  if (fileExists(raw)) return raw;
  if (fileExists(raw + ".gz")) return raw + ".gz";
  throw DataError(dir + ": no data file " + stem + ": tried " + raw + " and " + raw +
                  ".gz (Debian's package `dataset-fashion-mnist` provides "
                  "/usr/share/datasets/fashion-mnist)");
}

void checkImageDims(const IdxArray& images, const std::string& path) {
  if (images.dims.size() != 3)
    failAt(path, 3, "expected 3 dimensions (count, rows, cols) for images, header says " +
                        std::to_string(images.dims.size()));
  if (images.dims[0] == 0) failAt(path, 4, "expected at least one image, header says 0");
  if (images.dims[1] == 0 || images.dims[2] == 0)
    failAt(path, 8, "expected non-empty images, header says " + formatDims(images.dims));
}

void checkLabelDims(const IdxArray& labels, int64_t image_count, const std::string& path) {
  if (labels.dims.size() != 1)
    failAt(path, 3, "expected 1 dimension (count) for labels, header says " +
                        std::to_string(labels.dims.size()));
  if (labels.dims[0] != image_count)
    failAt(path, 4, "expected " + std::to_string(image_count) + " labels to match the " +
                        std::to_string(image_count) + " images, header says " +
                        std::to_string(labels.dims[0]));
}

}  // namespace

std::vector<float> hugePageFloats(size_t count) {
  constexpr uintptr_t kHugePage = uintptr_t{2} << 20;
  std::vector<float> values;
  values.reserve(count);  // allocated, not yet touched
  auto begin = reinterpret_cast<uintptr_t>(values.data());
  uintptr_t first = (begin + kHugePage - 1) / kHugePage * kHugePage;
  uintptr_t last = (begin + count * sizeof(float)) / kHugePage * kHugePage;
  if (first < last) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  values.resize(count);
  return values;
}

Dataset loadMnistSplit(const std::string& dir, const std::string& split) {
  if (split != "train" && split != "t10k")
    throw std::invalid_argument("MNIST split must be `train` or `t10k`, got `" + split + "`");
  const std::string image_path = findMnistFile(dir, split + "-images-idx3-ubyte");
  const std::string label_path = findMnistFile(dir, split + "-labels-idx1-ubyte");
  IdxArray images = readIdx(image_path);
  checkImageDims(images, image_path);
  IdxArray labels = readIdx(label_path);
  checkLabelDims(labels, images.dims[0], label_path);

  Dataset ds;
  ds.count = images.dims[0];
  ds.features = images.dims[1] * images.dims[2];
  ds.example_shape = {images.dims[1], images.dims[2]};
  ds.images = hugePageFloats(images.data.size());
  for (size_t i = 0; i < images.data.size(); ++i) ds.images[i] = images.data[i] / 255.0f;
  ds.labels.assign(labels.data.begin(), labels.data.end());
  ds.num_classes = *std::max_element(ds.labels.begin(), ds.labels.end()) + 1;
  return ds;
}

// ---- shuffling ----------------------------------------------------------------

std::vector<int64_t> epochPermutation(int64_t n, uint64_t seed, int64_t epoch) {
  if (n < 0) throw std::invalid_argument("epochPermutation: n must be >= 0");
  // Derive one independent stream per (seed, epoch): hash the seed, then mix in the epoch.
  SplitMix64 seeder{seed};
  SplitMix64 rng{seeder.next() ^ (static_cast<uint64_t>(epoch) * 0xd1342543de82ef95ULL)};
  rng.next();  // decorrelate from the raw xor

  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  // Fisher-Yates: for i from n-1 down to 1, swap perm[i] with a uniform perm[j], j in [0, i].
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i) + 1));
    std::swap(perm[i], perm[j]);
  }
  return perm;
}

}  // namespace nnc::rt
