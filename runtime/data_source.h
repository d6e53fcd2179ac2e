// Where a trainer's examples come from: a data directory in one of three layouts, detected by its files.
//
//   MNIST layout  train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-... (pixels scaled to [0, 1])
//   CSV           train.csv and test.csv, a header row, the label in the column `label_column` (a name or a
//                 0-based index; default `label`)
//   NPY           train_x.npy, train_y.npy, test_x.npy, test_y.npy (features as stored, integer labels)
//   text          train.txt and test.txt, for a model of token ids (features i32[B, T]): each byte is a token
//                 id; example i is bytes [iT, iT + T), its labels the bytes one further (next-byte prediction)
//
// A regressor's targets are float columns of the CSV (`label_column` names them, comma-separated) or train_y.npy
// as floats; a model that reconstructs its input needs no labels (a CSV's label column is left out, train_y.npy
// is not read).
#pragma once

#include <string>

#include "runtime/dataset.h"

namespace nnc::rt {

enum class Split { Train, Test };

// What a model needs read besides the layout a directory has.
struct DataRequest {
  std::string label_column = "label";
  TargetKind targets = TargetKind::Label;
  int64_t text_window = 0;  // tokens per example of a model of token ids ([B, T]: T); 0: the model takes no text
};

// Loads one split of the data directory `dir` as `request` says; a directory in none of the layouts is a
// DataError listing them.
Dataset loadSplit(const std::string& dir, Split split, const DataRequest& request = {});

}  // namespace nnc::rt
