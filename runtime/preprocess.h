// Preprocessing of examples in the trainer: per-feature normalization fitted on the training split (and saved
// in checkpoints, so eval and predict apply the same), and random augmentation of training images.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/dataset.h"
#include "runtime/model_spec.h"

namespace nnc::rt {

// x' = (x - offset[f]) * scale[f] for feature f. `scale` maps each feature's training-split range to [0, 1];
// `standardize` gives it mean 0 and standard deviation 1 (population). A constant feature keeps scale 1.
struct Normalization {
  std::string kind = "none";  // none, scale, standardize
  std::vector<float> offset, scale;
};

// Fits `kind` on `train` (a DataError for an unknown kind).
Normalization fitNormalization(const std::string& kind, const Dataset& train);
// Normalizes `count` examples of `features` floats in place.
void applyNormalization(const Normalization& n, float* examples, int64_t count, int64_t features);

// The checkpoint metadata entry (key "normalization") and its reading; a malformed entry is a DataError
// naming `path`. An absent entry (parse of "") is kind none.
std::string normalizationToJson(const Normalization& n);
Normalization normalizationFromJson(const std::string& json, const std::string& path);
// The normalization a checkpoint was trained with (kind none when it has none).
Normalization checkpointNormalization(const std::string& path);

// Random horizontal flips and shifts of training images [C, H, W] (zero-filled in the raw pixel space: a
// shifted-in pixel gets `fill`, the normalized value of 0).
struct Augmentation {
  double flip = 0;    // probability
  int64_t shift = 0;  // up to this many pixels in each direction
  int64_t channels = 1, height = 0, width = 0;
  std::vector<float> fill;  // per feature
  bool enabled() const { return flip > 0 || shift > 0; }
};

// The augmentation `flip`/`shift` for `model`'s image input ([B, C, H, W] or [B, H, W]); a DataError when
// it asks for augmentation of an input that is not an image.
Augmentation imageAugmentation(const ModelSpec& model, double flip, int64_t shift, const Normalization& n);

// Flips and shifts one example in place; the randomness is a function of (seed, epoch, example), so a run and
// its resumption augment alike.
void augmentExample(const Augmentation& a, float* example, uint64_t seed, int64_t epoch, int64_t example_index);

}  // namespace nnc::rt
