// Training curves as a standalone SVG: per-epoch metrics -> an SVG document (no scripts, fonts or
// other files needed to view it).
//
// Two panels side by side: loss per epoch (train, test, and validation when present) and a score per
// epoch (a classifier's accuracy, a regressor's R²; train, test, and validation when present), each with
// axes, ticks, a grid, axis labels and a legend; a model without a score (an autoencoder) gets the loss
// panel alone. Every series is one <polyline class="series" data-series="..."> with one
// point per epoch that has a finite value; NaN values (a metric not measured) are skipped.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace nnc::rt {

// The scores are a classifier's accuracy (a fraction in [0, 1]) or a regressor's R², NaN for a model without one.
struct EpochPoint {
  int64_t epoch = 0;
  double train_loss = NAN, test_loss = NAN, test_score = NAN;
  double val_loss = NAN, val_score = NAN;
  double train_score = NAN;  // of the parameters at the epoch's end, in eval mode
};

// What the curves are: the loss the test and validation splits are evaluated with, and the score's name.
struct CurveNames {
  std::string eval_loss = "cross-entropy";
  std::string score = "accuracy";  // "accuracy" (drawn as a percentage), "R²", or empty: no score panel
};

std::string renderTrainingSvg(const std::string& title, const std::vector<EpochPoint>& points,
                              const CurveNames& names = {});

}  // namespace nnc::rt
