// safetensors reading and writing (format in safetensors.h).
//
// Reading, in order:
//   1. Read the 8-byte header length N; reject files too short or whose N is implausible or not
//      followed by '{' (foreign files), then files shorter than 8 + N (truncated).
//   2. Parse the JSON header; validate every tensor entry (dtype F32, shape, offsets = shape*4).
//   3. Check the offsets tile the data section exactly: sorted, no overlap, no gap, no slack.
//   4. Verify the data section's CRC-32 against the header's `crc32` metadata, when present (we always write it).
//   5. Copy each tensor's bytes out of the data section.
#include "runtime/safetensors.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <sys/stat.h>
#include <zlib.h>

#include "runtime/atomic_file.h"

namespace nnc::rt {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host needs byte swapping here");

using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit too
const char* const kMetadataKey = "__metadata__";
const char* const kChecksumKey = "crc32";  // metadata: CRC-32 of the data section, 8 hex digits

std::string dataChecksum(const char* data, uint64_t bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (bytes > 0) {  // zlib takes 32-bit lengths
    uInt chunk = static_cast<uInt>(std::min<uint64_t>(bytes, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data), chunk);
    data += chunk;
    bytes -= chunk;
  }
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08lx", static_cast<unsigned long>(crc));
  return hex;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw DataError(path + ": " + what);
}

// One validated header entry.
struct Entry {
  std::string name;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range within the data section
};

struct Header {
  std::vector<Entry> entries;  // in name order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // 8 + N
  uint64_t data_bytes = 0;  // file size - data_start
};

// ---- file access ----------------------------------------------------------------

struct OpenFile {
  std::ifstream in;
  uint64_t size = 0;
};

void openForReading(const std::string& path, OpenFile& file) {
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    fail(path, std::string("cannot open: ") + std::strerror(EISDIR));
  errno = 0;
  file.in.open(path, std::ios::binary);
  if (!file.in) fail(path, std::string("cannot open: ") + std::strerror(errno ? errno : ENOENT));
  file.in.seekg(0, std::ios::end);
  auto end = file.in.tellg();
  if (end < 0) fail(path, "cannot determine the file size (not a regular file?)");
  file.size = static_cast<uint64_t>(end);
  file.in.seekg(0);
}

std::string readBytes(OpenFile& file, uint64_t offset, uint64_t count, const std::string& path) {
  std::string bytes(count, '\0');
  file.in.seekg(static_cast<std::streamoff>(offset));
  file.in.read(bytes.data(), static_cast<std::streamsize>(count));
  if (static_cast<uint64_t>(file.in.gcount()) != count)
    fail(path, "offset " + std::to_string(offset) + ": read error (" + std::to_string(count) +
                   " bytes expected)");
  return bytes;
}

uint64_t readLittleEndianU64(const std::string& b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[i]);
  return v;
}

// Step 1: the length prefix. Returns N.
uint64_t readHeaderLength(OpenFile& file, const std::string& path) {
  if (file.size < 8)
    fail(path, "not a safetensors file (or truncated): " + std::to_string(file.size) +
                   " bytes, shorter than the 8-byte header length");
  const uint64_t n = readLittleEndianU64(readBytes(file, 0, 8, path));
  if (n > kMaxHeaderBytes)
    fail(path, "not a safetensors file: offset 0: header length " + std::to_string(n) +
                   " is implausible (limit " + std::to_string(kMaxHeaderBytes) + ")");
  if (file.size > 8 && readBytes(file, 8, 1, path)[0] != '{')
    fail(path, "not a safetensors file: offset 8: expected '{' opening the JSON header");
  if (n > file.size - 8)
    fail(path, "truncated: header says 8 + " + std::to_string(n) + " bytes, file has " +
                   std::to_string(file.size));
  return n;
}

// ---- header validation -------------------------------------------------------------

std::vector<int64_t> parseShape(const json& shape, const std::string& where) {
  if (!shape.is_array()) throw DataError(where + "`shape` must be an array of integers");
  std::vector<int64_t> dims;
  for (const json& d : shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t{INT64_MAX})
      throw DataError(where + "`shape` entry " + d.dump() + " is not a non-negative integer");
    dims.push_back(d.get<int64_t>());
  }
  return dims;
}

// Bytes an F32 tensor of this shape occupies, or UINT64_MAX when that overflows 64 bits.
uint64_t f32Bytes(const std::vector<int64_t>& shape) {
  uint64_t bytes = 4;
  for (int64_t d : shape) {
    if (d == 0) return 0;
    if (bytes > UINT64_MAX / static_cast<uint64_t>(d)) return UINT64_MAX;
    bytes *= static_cast<uint64_t>(d);
  }
  return bytes;
}

Entry parseEntry(const std::string& name, const json& v, uint64_t data_bytes,
                 const std::string& path) {
  const std::string where = path + ": tensor `" + name + "`: ";
  if (!v.is_object()) throw DataError(where + "expected an object with dtype, shape, data_offsets");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) throw DataError(where + "missing `" + key + "`");
  const json& dtype = v["dtype"];
  if (!dtype.is_string()) throw DataError(where + "`dtype` must be a string");
  if (dtype.get<std::string>() != "F32")
    throw DataError(where + "dtype `" + dtype.get<std::string>() +
                    "` is not supported (expected F32)");
  Entry e{name, parseShape(v["shape"], where)};
  const json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
      !off[1].is_number_unsigned())
    throw DataError(where + "`data_offsets` must be [begin, end] with non-negative integers");
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  if (e.begin > e.end || e.end > data_bytes)
    throw DataError(where + "data_offsets [" + std::to_string(e.begin) + ", " +
                    std::to_string(e.end) + "] out of range for a data section of " +
                    std::to_string(data_bytes) + " bytes");
  uint64_t expected = f32Bytes(e.shape);
  if (expected != e.end - e.begin)
    throw DataError(where + "data_offsets span " + std::to_string(e.end - e.begin) +
                    " bytes, but shape " + v["shape"].dump() + " of F32 needs " +
                    (expected == UINT64_MAX ? std::string("more than 2^64")
                                            : std::to_string(expected)));
  return e;
}

std::map<std::string, std::string> parseMetadata(const json& m, const std::string& path) {
  if (!m.is_object()) fail(path, "`__metadata__` must be an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : m.items()) {
    if (!v.is_string()) fail(path, "`__metadata__` value for `" + k + "` is not a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

// Step 3: the ranges must tile [0, data_bytes) exactly.
void checkTiling(std::vector<Entry> entries, uint64_t data_bytes, const std::string& path) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < covered)
      fail(path, "tensors `" + prev->name + "` and `" + e.name + "` overlap at data offset " +
                     std::to_string(e.begin));
    if (e.begin > covered)
      fail(path, "data section has a gap of unused bytes [" + std::to_string(covered) + ", " +
                     std::to_string(e.begin) + ")");
    covered = e.end;
    prev = &e;
  }
  if (covered != data_bytes)
    fail(path, "data section length mismatch: tensors cover " + std::to_string(covered) +
                   " bytes, file has " + std::to_string(data_bytes) + " after the header");
}

// Steps 1-3.
Header readHeader(OpenFile& file, const std::string& path) {
  Header h;
  const uint64_t n = readHeaderLength(file, path);
  h.data_start = 8 + n;
  h.data_bytes = file.size - h.data_start;
  json j;
  try {
    j = json::parse(readBytes(file, 8, n, path));
  } catch (const json::exception& e) {  // parse errors, and numbers out of range (3e3333)
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail(path, "header is not a JSON object");
  for (const auto& [name, v] : j.items()) {
    if (name == kMetadataKey)
      h.metadata = parseMetadata(v, path);
    else
      h.entries.push_back(parseEntry(name, v, h.data_bytes, path));
  }
  checkTiling(h.entries, h.data_bytes, path);
  return h;
}

// ---- writing -----------------------------------------------------------------------

void checkTensorsToWrite(const std::vector<NamedTensor>& tensors, const std::string& path) {
  std::set<std::string> seen;
  for (const NamedTensor& t : tensors) {
    const std::string where = path + ": tensor `" + t.name + "`: ";
    if (t.name == kMetadataKey) throw std::invalid_argument(where + "name is reserved");
    if (!seen.insert(t.name).second) throw std::invalid_argument(where + "duplicate name");
    uint64_t elements = 1;
    for (int64_t d : t.shape) {
      if (d < 0) throw std::invalid_argument(where + "negative dimension");
      elements *= static_cast<uint64_t>(d);
    }
    if (elements != t.data.size())
      throw std::invalid_argument(where + "shape needs " + std::to_string(elements) +
                                  " elements, data has " + std::to_string(t.data.size()));
  }
}

// The header JSON, padded with spaces to a multiple of 8 bytes so the data starts aligned.
std::string buildHeader(const std::vector<const NamedTensor*>& sorted,
                        const std::map<std::string, std::string>& metadata) {
  json j = json::object();
  uint64_t offset = 0;
  for (const NamedTensor* t : sorted) {
    uint64_t bytes = t->data.size() * sizeof(float);
    j[t->name] = {{"dtype", "F32"}, {"shape", t->shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!metadata.empty()) j[kMetadataKey] = metadata;
  std::string header = j.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  return header;
}

}  // namespace

void writeSafetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  checkTensorsToWrite(tensors, path);
  std::vector<const NamedTensor*> sorted;
  for (const NamedTensor& t : tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(),
            [](const NamedTensor* a, const NamedTensor* b) { return a->name < b->name; });

  std::string data;
  for (const NamedTensor* t : sorted)
    data.append(reinterpret_cast<const char*>(t->data.data()), t->data.size() * sizeof(float));
  std::map<std::string, std::string> with_checksum = metadata;
  with_checksum[kChecksumKey] = dataChecksum(data.data(), data.size());
  const std::string header = buildHeader(sorted, with_checksum);
  std::string file;
  for (int i = 0; i < 8; ++i) file.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  file += header;
  file += data;
  writeFileAtomically(path, file);
}

std::vector<NamedTensor> readSafetensors(const std::string& path) {
  OpenFile file;
  openForReading(path, file);
  const Header h = readHeader(file, path);
  const std::string data = readBytes(file, h.data_start, h.data_bytes, path);
  auto checksum = h.metadata.find(kChecksumKey);  // files from other tools may have none
  if (checksum != h.metadata.end() && checksum->second != dataChecksum(data.data(), data.size()))
    fail(path, "checksum mismatch: the tensor data's CRC-32 is " + dataChecksum(data.data(), data.size()) +
                   ", the header says " + checksum->second + "; the file is damaged");
  std::vector<NamedTensor> tensors;
  for (const Entry& e : h.entries) {
    NamedTensor t{e.name, e.shape, std::vector<float>((e.end - e.begin) / sizeof(float))};
    if (e.end > e.begin) std::memcpy(t.data.data(), data.data() + e.begin, e.end - e.begin);
    tensors.push_back(std::move(t));
  }
  return tensors;
}

std::map<std::string, std::string> readSafetensorsMetadata(const std::string& path) {
  OpenFile file;
  openForReading(path, file);
  return readHeader(file, path).metadata;
}

}  // namespace nnc::rt
