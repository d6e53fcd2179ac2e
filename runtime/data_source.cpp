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

Dataset fromCsv(const std::string& path, const std::string& label_column) {
  CsvTable table = readCsv(path, label_column);
  Dataset data;
  data.count = table.rows;
  data.features = static_cast<int64_t>(table.columns.size()) - 1;
  data.images = std::move(table.features);
  data.labels = std::move(table.labels);
  data.num_classes = classCount(data.labels);
  return data;
}

Dataset fromNpy(const std::string& x_path, const std::string& y_path) {
  NpyArray x = readNpy(x_path);
  Dataset data;
  data.labels = readNpyLabels(y_path);
  if (x.shape.empty() || x.shape[0] != static_cast<int64_t>(data.labels.size()))
    throw DataError(x_path + ": expected one row per label of " + y_path + " (" + std::to_string(data.labels.size()) +
                    "), got shape with " + (x.shape.empty() ? std::string("no rows") : std::to_string(x.shape[0]) + " rows"));
  if (x.shape[0] == 0) throw DataError(x_path + ": no examples (shape " + shapeString(x.shape) + ")");
  data.count = x.shape[0];
  data.features = static_cast<int64_t>(x.data.size()) / data.count;
  data.example_shape.assign(x.shape.begin() + 1, x.shape.end());
  // As CSV does: a NaN or infinity in the features would surface steps later as a diverging loss.
  for (size_t i = 0; i < x.data.size(); ++i)
    if (!std::isfinite(x.data[i]))
      throw DataError(x_path + ": example " + std::to_string(i / static_cast<size_t>(data.features)) + ", feature " +
                      std::to_string(i % static_cast<size_t>(data.features)) + " is " + std::to_string(x.data[i]) +
                      "; features must be finite numbers");
  data.images = std::move(x.data);
  data.num_classes = classCount(data.labels);
  return data;
}

}  // namespace

Dataset loadSplit(const std::string& dir, Split split, const std::string& label_column) {
  bool train = split == Split::Train;
  std::string csv = dir + (train ? "/train.csv" : "/test.csv");
  if (exists(csv)) return fromCsv(csv, label_column);
  std::string npy_x = dir + (train ? "/train_x.npy" : "/test_x.npy");
  if (exists(npy_x)) return fromNpy(npy_x, dir + (train ? "/train_y.npy" : "/test_y.npy"));
  std::string idx = dir + (train ? "/train-images-idx3-ubyte" : "/t10k-images-idx3-ubyte");
  if (!exists(idx) && !exists(idx + ".gz") && !exists(dir))
    throw DataError(dir + ": no such data directory (expected the MNIST layout, train.csv/test.csv, or "
                          "train_x.npy/train_y.npy/test_x.npy/test_y.npy)");
  return loadMnistSplit(dir, train ? "train" : "t10k");
}

}  // namespace nnc::rt
