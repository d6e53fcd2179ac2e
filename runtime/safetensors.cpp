// safetensors reading and writing (format in safetensors.h).
//
// Reading, in order:
//   1. Read the 8-byte header length N; reject files too short or whose N is implausible or not
//      followed by '{' (foreign files), then files shorter than 8 + N (truncated).
//   2. Parse the JSON header; validate every tensor entry (a dtype we read, shape, offsets = shape * element size).
//   3. Check the offsets tile the data section exactly: sorted, no overlap, no gap, no slack.
//   4. Verify the data section's CRC-32 against the header's `crc32` metadata, when present (we always write it).
//   5. Convert each tensor's elements to f32, counting those that f32 holds only rounded.
#include "runtime/safetensors.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <sys/stat.h>
#include <zlib.h>

#include "runtime/atomic_file.h"
#include "runtime/shape.h"

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

struct DtypeInfo {
  Dtype dtype;
  const char* name;
  uint64_t bytes;  // per element
};
constexpr DtypeInfo kDtypes[] = {{Dtype::F32, "F32", 4}, {Dtype::F64, "F64", 8}, {Dtype::F16, "F16", 2},
                                 {Dtype::BF16, "BF16", 2}, {Dtype::I64, "I64", 8}, {Dtype::I32, "I32", 4}};
constexpr const char* kDtypesRead = "F32, F64, F16, BF16, I64 or I32";

const DtypeInfo& info(Dtype dtype) {
  return *std::find_if(std::begin(kDtypes), std::end(kDtypes), [&](const DtypeInfo& d) { return d.dtype == dtype; });
}

// One validated header entry.
struct Entry {
  std::string name;
  std::vector<int64_t> shape;
  Dtype dtype = Dtype::F32;
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

// Bytes a tensor of this shape occupies, or UINT64_MAX when that overflows 64 bits.
uint64_t tensorBytes(const std::vector<int64_t>& shape, uint64_t element_bytes) {
  uint64_t bytes = element_bytes;
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
  const DtypeInfo* type = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                                       [&](const DtypeInfo& d) { return dtype.get<std::string>() == d.name; });
  if (type == std::end(kDtypes))
    throw DataError(where + "dtype `" + dtype.get<std::string>() + "` is not supported (expected " +
                    kDtypesRead + ")");
  Entry e{name, parseShape(v["shape"], where), type->dtype};
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
  uint64_t expected = tensorBytes(e.shape, type->bytes);
  if (expected != e.end - e.begin)
    throw DataError(where + "data_offsets span " + std::to_string(e.end - e.begin) +
                    " bytes, but shape " + v["shape"].dump() + " of " + type->name + " needs " +
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

// ---- step 5: conversion to f32 ----------------------------------------------------------

template <typename T>
T element(const char* bytes, size_t i) {
  T value;
  std::memcpy(&value, bytes + i * sizeof(T), sizeof(T));
  return value;
}

// IEEE binary16: a sign, 5 exponent bits (bias 15), 10 mantissa bits. Every value is an f32 exactly.
float halfToFloat(uint16_t half) {
  const int exponent = (half >> 10) & 0x1f, mantissa = half & 0x3ff;
  const float magnitude = exponent == 0x1f ? (mantissa ? NAN : INFINITY)
                          : exponent == 0  ? std::ldexp(static_cast<float>(mantissa), -24)  // 0, subnormal: m 2^-24
                                           : std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);  // 1.m 2^(e-15)
  return half & 0x8000 ? -magnitude : magnitude;
}

// bfloat16 is the upper half of an f32.
float bfloatToFloat(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

// The nearest f32 to an integer; false when it is not the integer itself (beyond 2^24 in magnitude).
template <typename Int>
bool integerToFloat(Int value, float& out) {
  out = static_cast<float>(value);
  return out < 0x1p63f && static_cast<int64_t>(out) == value;  // float(INT64_MAX) is 2^63, outside int64
}

// `count` elements of `dtype` as f32; returns how many of them f32 holds only rounded.
int64_t convertToFloat(Dtype dtype, const char* bytes, size_t count, float* out) {
  int64_t rounded = 0;
  switch (dtype) {
    case Dtype::F32: std::memcpy(out, bytes, count * sizeof(float)); break;
    case Dtype::F64:
      for (size_t i = 0; i < count; ++i) {
        const double value = element<double>(bytes, i);
        out[i] = static_cast<float>(value);
        rounded += !std::isnan(value) && out[i] != value;
      }
      break;
    case Dtype::F16:
      for (size_t i = 0; i < count; ++i) out[i] = halfToFloat(element<uint16_t>(bytes, i));
      break;
    case Dtype::BF16:
      for (size_t i = 0; i < count; ++i) out[i] = bfloatToFloat(element<uint16_t>(bytes, i));
      break;
    case Dtype::I64:
      for (size_t i = 0; i < count; ++i) rounded += !integerToFloat(element<int64_t>(bytes, i), out[i]);
      break;
    case Dtype::I32:
      for (size_t i = 0; i < count; ++i) rounded += !integerToFloat(element<int32_t>(bytes, i), out[i]);
      break;
  }
  return rounded;
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
    if (t.dtype != Dtype::F32 && t.dtype != Dtype::I64)
      throw std::invalid_argument(where + "cannot write dtype " + dtypeName(t.dtype) + " (F32 or I64)");
    if (t.dtype == Dtype::I64)
      for (float v : t.data)
        if (!fitsInt64(v)) throw std::invalid_argument(where + "I64 cannot store " + std::to_string(v));
  }
}

// Appends a tensor's values as its dtype: F32 as they are, I64 as the whole numbers they hold (checked above).
void appendData(const NamedTensor& t, std::string& data) {
  if (t.dtype == Dtype::F32) {
    data.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
    return;
  }
  for (float v : t.data) {
    const int64_t whole = static_cast<int64_t>(v);
    data.append(reinterpret_cast<const char*>(&whole), sizeof whole);
  }
}

// The header JSON, padded with spaces to a multiple of 8 bytes so the data starts aligned.
std::string buildHeader(const std::vector<const NamedTensor*>& sorted,
                        const std::map<std::string, std::string>& metadata) {
  json j = json::object();
  uint64_t offset = 0;
  for (const NamedTensor* t : sorted) {
    uint64_t bytes = t->data.size() * info(t->dtype).bytes;
    j[t->name] = {{"dtype", dtypeName(t->dtype)}, {"shape", t->shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!metadata.empty()) j[kMetadataKey] = metadata;
  std::string header = j.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  return header;
}

}  // namespace

const char* dtypeName(Dtype dtype) { return info(dtype).name; }

bool fitsInt64(float value) { return value >= -0x1p63f && value < 0x1p63f && std::trunc(value) == value; }

void writeSafetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  checkTensorsToWrite(tensors, path);
  std::vector<const NamedTensor*> sorted;
  for (const NamedTensor& t : tensors) sorted.push_back(&t);
  // In the safetensors package's order, I64 before F32 and then by name: every tensor is aligned to its element size.
  std::sort(sorted.begin(), sorted.end(), [](const NamedTensor* a, const NamedTensor* b) {
    const uint64_t a_bytes = info(a->dtype).bytes, b_bytes = info(b->dtype).bytes;
    return a_bytes != b_bytes ? a_bytes > b_bytes : a->name < b->name;
  });

  std::string data;
  for (const NamedTensor* t : sorted) appendData(*t, data);
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
    NamedTensor t{e.name, e.shape, std::vector<float>((e.end - e.begin) / info(e.dtype).bytes), e.dtype};
    if (e.end > e.begin) t.rounded = convertToFloat(e.dtype, data.data() + e.begin, t.data.size(), t.data.data());
    tensors.push_back(std::move(t));
  }
  return tensors;
}

std::map<std::string, std::string> readSafetensorsMetadata(const std::string& path) {
  OpenFile file;
  openForReading(path, file);
  return readHeader(file, path).metadata;
}

std::vector<NamedTensor> readCheckpointFor(const std::string& path, const std::string& model, const ParamSpec* params,
                                           int num_params) {
  std::map<std::string, NamedTensor> tensors;
  for (NamedTensor& t : readSafetensors(path)) tensors[t.name] = std::move(t);
  std::vector<NamedTensor> found(static_cast<size_t>(num_params));
  std::vector<std::string> mismatches;
  for (int i = 0; i < num_params; ++i) {
    const ParamSpec& spec = params[i];
    auto it = tensors.find(spec.name);
    std::vector<int64_t> shape = concreteShape(spec.rank, spec.shape, 1);
    if (it == tensors.end()) {
      mismatches.push_back("no tensor `" + std::string(spec.name) + "` " + shapeString(shape));
      continue;
    }
    const std::vector<float>& data = it->second.data;
    if (it->second.shape != shape)
      mismatches.push_back("tensor `" + std::string(spec.name) + "` has shape " + shapeString(it->second.shape) +
                           ", the model's is " + shapeString(shape));
    else if (spec.is_integer && !std::all_of(data.begin(), data.end(), fitsInt64))
      mismatches.push_back("tensor `" + std::string(spec.name) + "` is a count, but holds values other than whole numbers");
    else if (it->second.rounded)  // F64 values, or integers beyond 2^24: one line per tensor
      std::fprintf(stderr, "note: %s: tensor `%s`: %lld of %zu %s values rounded to the nearest f32\n", path.c_str(),
                   spec.name, static_cast<long long>(it->second.rounded), data.size(), dtypeName(it->second.dtype));
    found[i] = std::move(it->second);
    tensors.erase(it);
  }
  for (const auto& [name, tensor] : tensors)
    mismatches.push_back("tensor `" + name + "` " + shapeString(tensor.shape) + " is not in the model");
  if (mismatches.empty()) return found;
  std::string message = path + ": this checkpoint does not fit model `" + model + "` (" +
                        std::to_string(mismatches.size()) + (mismatches.size() == 1 ? " mismatch):" : " mismatches):");
  for (const std::string& m : mismatches) message += "\n  " + m;
  throw DataError(message);
}

}  // namespace nnc::rt
