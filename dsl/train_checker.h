// The train block checker: `train { key = value ... }` -> TrainConfig, every key and value validated.
#pragma once

#include "dsl/checker.h"

namespace nnc::dsl {

// Checks each key once, each value of the right kind and range; reports into `diags`.
TrainConfig checkTrainBlock(const TrainBlock& block, DiagnosticEngine& diags);

}  // namespace nnc::dsl
