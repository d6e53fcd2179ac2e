// Data directories in the MNIST, CSV or NPY layout; see data_source.h.
#include "runtime/data_source.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>

#include "runtime/csv.h"
#include "runtime/errors.h"
#include "runtime/npy.h"
#include "runtime/tensor.h"

namespace nnc::rt {

namespace {

bool exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

// Number of classes: the largest label plus one (labels are checked non-negative by the readers).
int64_t classCount(const std::vector<int32_t>& labels) {
  return labels.empty() ? 0 : *std::max_element(labels.begin(), labels.end()) + 1;
}

Dataset fromCsv(const std::string& path, const std::string& columns, TargetKind kind) {
  CsvTable table = readCsv(path, columns, kind);
  Dataset data;
  data.count = table.rows;
  data.features = static_cast<int64_t>(table.features.size()) / table.rows;
  data.images = std::move(table.features);
  data.labels = std::move(table.labels);
  data.num_classes = classCount(data.labels);
  if (kind == TargetKind::Values) {
    data.target_size = static_cast<int64_t>(table.target_indices.size());
    data.targets = std::move(table.targets);
  }
  return data;
}

// Every value finite, or a DataError naming the example and position: a NaN or infinity (as CSV refuses them)
// would surface steps later as a diverging loss.
void checkFinite(const std::string& path, const std::vector<float>& values, int64_t per_example, const char* what) {
  for (size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      throw DataError(path + ": example " + std::to_string(i / static_cast<size_t>(per_example)) + ", " + what + " " +
                      std::to_string(i % static_cast<size_t>(per_example)) + " is " + std::to_string(values[i]) +
                      "; " + what + "s must be finite numbers");
}

Dataset fromNpy(const std::string& x_path, const std::string& y_path, TargetKind kind) {
  NpyArray x = readNpy(x_path);
  Dataset data;
  if (x.shape.empty() || x.shape[0] == 0) throw DataError(x_path + ": no examples (shape " + shapeString(x.shape) + ")");
  int64_t rows = -1;  // of y, when read
  if (kind == TargetKind::Label) {
    data.labels = readNpyLabels(y_path);
    rows = static_cast<int64_t>(data.labels.size());
  } else if (kind == TargetKind::Values) {
    NpyArray y = readNpy(y_path);
    if (y.shape.empty()) throw DataError(y_path + ": expected one row of targets per example, got a scalar");
    rows = y.shape[0];
    data.target_size = rows ? static_cast<int64_t>(y.data.size()) / rows : 0;
    checkFinite(y_path, y.data, std::max<int64_t>(data.target_size, 1), "target");
    data.targets = std::move(y.data);
  }
  if (rows >= 0 && x.shape[0] != rows)
    throw DataError(x_path + ": expected one row per " + (kind == TargetKind::Label ? "label" : "target row") + " of " +
                    y_path + " (" + std::to_string(rows) + "), got shape " + shapeString(x.shape));
  data.count = x.shape[0];
  data.features = static_cast<int64_t>(x.data.size()) / data.count;
  data.example_shape.assign(x.shape.begin() + 1, x.shape.end());
  checkFinite(x_path, x.data, data.features, "feature");
  data.images = std::move(x.data);
  data.num_classes = classCount(data.labels);
  return data;
}

Dataset fromText(const std::string& path, int64_t window) {
  if (window <= 0)
    throw DataError(path + ": text data is read as token ids, for a model whose features are `i32[B, T]`");
  std::vector<uint8_t> bytes = readFileMaybeGzip(path);
  if (static_cast<int64_t>(bytes.size()) <= window)
    throw DataError(path + ": " + std::to_string(bytes.size()) + " bytes, but an example takes " +
                    std::to_string(window) + " tokens and the byte after them");
  Dataset data;
  data.count = (static_cast<int64_t>(bytes.size()) - 1) / window;
  data.features = window;
  data.labels_per_example = window;
  data.images = hugePageFloats(static_cast<size_t>(data.count * window));
  data.labels.resize(static_cast<size_t>(data.count * window));
  for (int64_t i = 0; i < data.count * window; ++i) {
    data.images[i] = bytes[i];
    data.labels[i] = bytes[i + 1];
  }
  data.num_classes = classCount(data.labels);
  return data;
}

}  // namespace

Dataset loadSplit(const std::string& dir, Split split, const DataRequest& request) {
  bool train = split == Split::Train;
  TargetKind kind = request.targets;
  std::string text = dir + (train ? "/train.txt" : "/test.txt");
  if (exists(text)) return fromText(text, request.text_window);
  std::string csv = dir + (train ? "/train.csv" : "/test.csv");
  if (exists(csv)) return fromCsv(csv, request.label_column, kind);
  std::string npy_x = dir + (train ? "/train_x.npy" : "/test_x.npy");
  if (exists(npy_x)) return fromNpy(npy_x, dir + (train ? "/train_y.npy" : "/test_y.npy"), kind);
  if (kind == TargetKind::Values)
    throw DataError(dir + ": a regressor needs float targets: train.csv and test.csv with target columns, or "
                          "train_x.npy/train_y.npy/test_x.npy/test_y.npy (the MNIST layout holds class labels)");
  std::string idx = dir + (train ? "/train-images-idx3-ubyte" : "/t10k-images-idx3-ubyte");
  if (!exists(idx) && !exists(idx + ".gz") && !exists(dir))
    throw DataError(dir + ": no such data directory (expected the MNIST layout, train.csv/test.csv, "
                          "train_x.npy/train_y.npy/test_x.npy/test_y.npy, or train.txt/test.txt)");
  return loadMnistSplit(dir, train ? "train" : "t10k");
}

}  // namespace nnc::rt
