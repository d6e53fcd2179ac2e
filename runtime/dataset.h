// Data set loading for generated trainers: files -> IDX arrays -> an in-memory Dataset.
//
// In: an MNIST-layout directory (train-/t10k- images and labels, raw or gzipped IDX files).
// Out: float images in [0,1], row-major [count, rows*cols], and int32 labels.
// Every bad file is a DataError naming the file, the byte offset and what was expected; garbage
// input never crashes. Also the deterministic per-epoch shuffle order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/errors.h"

namespace nnc::rt {

// Reads a whole file; gunzips transparently when it starts with the gzip magic (1f 8b).
// Errors name the file (and zlib's message for a corrupt or truncated gzip stream).
std::vector<uint8_t> readFileMaybeGzip(const std::string& path);

// An IDX array (the MNIST distribution format): bytes 0x00 0x00 <type> <ndims>, then ndims
// big-endian u32 dimensions, then the elements. Only type 0x08 (unsigned byte) is supported.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // product(dims) bytes, row-major
};

// Parses an IDX array from memory; `path_for_errors` only labels the messages.
IdxArray parseIdx(const std::vector<uint8_t>& bytes, const std::string& path_for_errors);

// readFileMaybeGzip + parseIdx.
IdxArray readIdx(const std::string& path);

// `count` zeros in memory that the kernel is asked, before the first touch, to back with 2 MB pages (madvise
// MADV_HUGEPAGE; without transparent huge pages, plain pages). A mini-batch gathers rows from all over a data
// set, and with 4 KB pages each row took a TLB miss that cost this project's virtual machines far more than the
// copy: gathering a Fashion-MNIST batch of 64 took 0.41-0.55 ms, on 2 MB pages 0.07-0.08 ms (pages collapsed
// after loading), and LeNet-5's epoch on 2 threads went 38-56K -> 59-60K images/s (the gathering thread had
// taken a core from the kernels).
std::vector<float> hugePageFloats(size_t count);

// What a data set holds besides the features, by the model's task: class labels (a classifier), float target
// values (a regressor), or nothing (a model that reconstructs its input).
enum class TargetKind { Label, Values, None };

// One split of an MNIST-layout data set.
struct Dataset {
  int64_t count = 0;        // number of examples
  int64_t features = 0;     // rows * cols
  int64_t num_classes = 0;  // max label + 1
  std::vector<float> images;    // [count, features], pixel / 255
  std::vector<int32_t> labels;  // [count, labels_per_example]
  int64_t labels_per_example = 1;  // a class per position of a sequence (text: one per token)
  std::vector<float> targets;   // TargetKind::Values: [count, target_size]
  int64_t target_size = 0;
  // The shape of one example as the file gives it (IDX: rows, cols; NPY: its shape after the first), so images
  // of another size are refused, not reinterpreted; empty for flat rows (CSV).
  std::vector<int64_t> example_shape;
};

// split is "train" or "t10k": reads DIR/<split>-images-idx3-ubyte and
// DIR/<split>-labels-idx1-ubyte, each raw or with a `.gz` suffix (raw preferred when both exist).
Dataset loadMnistSplit(const std::string& dir, const std::string& split);

// A deterministic permutation of [0, n) for epoch `epoch` of a run seeded with `seed`: the same
// on every platform and compiler (Fisher-Yates over splitmix64, no std:: distributions).
std::vector<int64_t> epochPermutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace nnc::rt
