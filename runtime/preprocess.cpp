// Normalization and augmentation of examples; see preprocess.h.
#include "runtime/preprocess.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "runtime/errors.h"
#include "runtime/predictions.h"
#include "runtime/random.h"
#include "runtime/safetensors.h"

namespace nnc::rt {

Normalization fitNormalization(const std::string& kind, const Dataset& train) {
  Normalization n;
  n.kind = kind;
  if (kind == "none") return n;
  if (kind != "scale" && kind != "standardize")
    throw DataError("unknown normalization `" + kind + "` (expected none, scale or standardize)");
  const int64_t features = train.features;
  std::vector<double> a(features), b(features);  // scale: min, max; standardize: sum, sum of squares
  for (int64_t f = 0; f < features; ++f) a[f] = b[f] = kind == "scale" && train.count ? train.images[f] : 0;
  for (int64_t i = 0; i < train.count; ++i)
    for (int64_t f = 0; f < features; ++f) {
      double x = train.images[i * features + f];
      if (kind == "scale") {
        a[f] = std::min(a[f], x);
        b[f] = std::max(b[f], x);
      } else {
        a[f] += x;
        b[f] += x * x;
      }
    }
  auto count = static_cast<double>(std::max<int64_t>(train.count, 1));
  for (int64_t f = 0; f < features; ++f) {
    double offset = a[f], spread = b[f] - a[f];
    if (kind == "standardize") {
      offset = a[f] / count;
      spread = std::sqrt(std::max(0.0, b[f] / count - offset * offset));
    }
    n.offset.push_back(static_cast<float>(offset));
    n.scale.push_back(static_cast<float>(spread > 1e-12 ? 1 / spread : 1));
  }
  return n;
}

void applyNormalization(const Normalization& n, float* examples, int64_t count, int64_t features) {
  if (n.kind != "none") normalizeExamples(n.offset.data(), n.scale.data(), examples, count, features);
}

std::string normalizationToJson(const Normalization& n) {
  return nlohmann::json{{"kind", n.kind}, {"offset", n.offset}, {"scale", n.scale}}.dump();
}

Normalization normalizationFromJson(const std::string& json, const std::string& path) {
  Normalization n;
  if (json.empty()) return n;
  try {
    nlohmann::json j = nlohmann::json::parse(json);
    n.kind = j.at("kind").get<std::string>();
    n.offset = j.at("offset").get<std::vector<float>>();
    n.scale = j.at("scale").get<std::vector<float>>();
  } catch (const std::exception& e) {
    throw DataError(path + ": malformed `normalization` metadata (" + e.what() + ")");
  }
  if (n.offset.size() != n.scale.size() || (n.kind != "none" && n.kind != "scale" && n.kind != "standardize"))
    throw DataError(path + ": malformed `normalization` metadata");
  return n;
}

Normalization checkpointNormalization(const std::string& path) {
  std::map<std::string, std::string> metadata = readSafetensorsMetadata(path);
  auto it = metadata.find("normalization");
  return normalizationFromJson(it == metadata.end() ? "" : it->second, path);
}

Augmentation imageAugmentation(const ModelSpec& model, double flip, int64_t shift, const Normalization& n) {
  Augmentation a;
  a.flip = flip;
  a.shift = shift;
  if (!a.enabled()) return a;
  const InputSpec& input = model.inputs[0];
  if (input.rank != 3 && input.rank != 4)
    throw DataError(std::string("image augmentation needs an image input [B, C, H, W] or [B, H, W]; `") + input.name +
                    "` has rank " + std::to_string(input.rank));
  a.channels = input.rank == 4 ? input.shape[1] : 1;
  a.height = input.shape[input.rank - 2];
  a.width = input.shape[input.rank - 1];
  int64_t features = a.channels * a.height * a.width;
  a.fill.assign(static_cast<size_t>(features), 0.0f);
  if (n.kind != "none")
    for (int64_t f = 0; f < features; ++f) a.fill[f] = -n.offset[f] * n.scale[f];
  return a;
}

void augmentExample(const Augmentation& a, float* example, uint64_t seed, int64_t epoch, int64_t example_index) {
  SplitMix64 rng{seed * 0x9e3779b97f4a7c15ULL ^ static_cast<uint64_t>(epoch) * 0xbf58476d1ce4e5b9ULL ^
                 static_cast<uint64_t>(example_index) * 0x94d049bb133111ebULL};
  bool flip = a.flip > 0 && rng.uniform() < a.flip;
  auto offset = [&] { return static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * a.shift + 1))) - a.shift; };
  int64_t dy = a.shift ? offset() : 0, dx = a.shift ? offset() : 0;
  if (!flip && dx == 0 && dy == 0) return;
  const int64_t plane = a.height * a.width;
  std::vector<float> source(example, example + a.channels * plane);
  for (int64_t c = 0; c < a.channels; ++c)
    for (int64_t i = 0; i < a.height; ++i)
      for (int64_t j = 0; j < a.width; ++j) {
        int64_t si = i - dy, sj = j - dx;  // output (i, j) reads the shifted source
        if (flip) sj = a.width - 1 - sj;
        int64_t at = c * plane + i * a.width + j;
        bool inside = si >= 0 && si < a.height && sj >= 0 && sj < a.width;
        example[at] = inside ? source[c * plane + si * a.width + sj] : a.fill[at];
      }
}

}  // namespace nnc::rt
