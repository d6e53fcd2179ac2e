// Training curves as a standalone SVG: per-epoch metrics -> an SVG document (no scripts, fonts or
// other files needed to view it).
//
// Two panels side by side: loss per epoch (train, test, and validation when present) and
// accuracy per epoch (test, and validation when present), each with axes, ticks, a grid, axis
// labels and a legend. Every series is one <polyline class="series" data-series="..."> with one
// point per epoch that has a finite value; NaN values (a metric not measured) are skipped.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace nnc::rt {

struct EpochPoint {
  int64_t epoch = 0;
  double train_loss = NAN, test_loss = NAN, test_accuracy = NAN;  // accuracy as a fraction in [0, 1]
  double val_loss = NAN, val_accuracy = NAN;
  double train_accuracy = NAN;  // of the parameters at the epoch's end, in eval mode
};

std::string renderTrainingSvg(const std::string& title, const std::vector<EpochPoint>& points);

}  // namespace nnc::rt
