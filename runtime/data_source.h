// Where a trainer's examples come from: a data directory in one of three layouts, detected by its files.
//
//   MNIST layout  train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-... (pixels scaled to [0, 1])
//   CSV           train.csv and test.csv, a header row, the label in the column `label_column` (a name or a
//                 0-based index; default `label`)
//   NPY           train_x.npy, train_y.npy, test_x.npy, test_y.npy (features as stored, integer labels)
#pragma once

#include <string>

#include "runtime/dataset.h"

namespace nnc::rt {

enum class Split { Train, Test };

// Loads one split of the data directory `dir`; a directory in none of the layouts is a DataError listing them.
Dataset loadSplit(const std::string& dir, Split split, const std::string& label_column = "label");

}  // namespace nnc::rt
