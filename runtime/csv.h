// CSV data sets: a text table -> float features and int32 labels (or float targets).
//
// In: a comma-separated file (raw or gzipped) whose first row names the columns; one column holds
// the class label (a non-negative integer), or some columns a regressor's float targets, or none
// (a model that reconstructs its input); every other column a float feature. Fields may be
// quoted ("a,b", with "" for a literal quote); CRLF line ends, a UTF-8 byte-order mark and blank
// lines at the end of the file are accepted.
// Out: a CsvTable, or a DataError "<file>:<line>: column `<name>`: <what was expected>".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/dataset.h"
#include "runtime/errors.h"

namespace nnc::rt {

struct CsvTable {
  std::vector<std::string> columns;  // every header name, in file order (the label's included)
  int64_t label_index = 0;           // which of `columns` holds the label (TargetKind::Label)
  std::vector<int64_t> target_indices;  // which hold the targets, in the order named (TargetKind::Values)
  int64_t rows = 0;
  std::vector<float> features;  // [rows, feature columns], the other columns in file order
  std::vector<int32_t> labels;  // [rows]
  std::vector<float> targets;   // [rows, target_indices.size()]
};

// columns: Label: a header name, or else a 0-based decimal column index; Values: such names or indices
// separated by commas; None: a column of this name, when the header has one, is left out of the features
// (its values are read as numbers into `targets` and not used). Features and targets must be finite numbers; labels
// non-negative integers below 2^31 ("3" and "3.0" both read as 3).
CsvTable readCsv(const std::string& path, const std::string& columns, TargetKind targets = TargetKind::Label);

}  // namespace nnc::rt
