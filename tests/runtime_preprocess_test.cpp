// Normalization fitted on a training split, its checkpoint form, and image augmentation.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "runtime/preprocess.h"
#include "tests/runtime_test_util.h"

namespace nnc::rt {
namespace {

// Three examples of two features: feature 0 is 1, 2, 6; feature 1 is constant 5.
Dataset tiny() {
  Dataset d;
  d.count = 3;
  d.features = 2;
  d.images = {1, 5, 2, 5, 6, 5};
  d.labels = {0, 1, 0};
  return d;
}

TEST(Normalization, ScaleMapsTheTrainingRangeToTheUnitInterval) {
  Dataset d = tiny();
  Normalization n = fitNormalization("scale", d);
  applyNormalization(n, d.images.data(), d.count, d.features);
  EXPECT_EQ(d.images, (std::vector<float>{0, 0, 0.2f, 0, 1, 0}));  // a constant feature keeps scale 1
}

TEST(Normalization, StandardizeGivesMeanZeroAndUnitDeviation) {
  Dataset d = tiny();
  Normalization n = fitNormalization("standardize", d);
  EXPECT_FLOAT_EQ(n.offset[0], 3);
  EXPECT_FLOAT_EQ(n.scale[0], static_cast<float>(1 / std::sqrt(14.0 / 3)));  // population variance (4 + 1 + 9) / 3
  applyNormalization(n, d.images.data(), d.count, d.features);
  double mean = (d.images[0] + d.images[2] + d.images[4]) / 3;
  double var = (d.images[0] * d.images[0] + d.images[2] * d.images[2] + d.images[4] * d.images[4]) / 3;
  EXPECT_NEAR(mean, 0, 1e-6);
  EXPECT_NEAR(var, 1, 1e-6);
  EXPECT_EQ(d.images[1], 0);
}

TEST(Normalization, RoundTripsThroughCheckpointMetadataAndRejectsGarbage) {
  Normalization n = fitNormalization("standardize", tiny());
  Normalization back = normalizationFromJson(normalizationToJson(n), "c.safetensors");
  EXPECT_EQ(back.kind, "standardize");
  EXPECT_EQ(back.offset, n.offset);
  EXPECT_EQ(back.scale, n.scale);
  EXPECT_EQ(normalizationFromJson("", "c.safetensors").kind, "none");
  EXPECT_NE(dataErrorOf([] { normalizationFromJson("{\"kind\": 3}", "c.safetensors"); }).find("c.safetensors"),
            std::string::npos);
  EXPECT_NE(dataErrorOf([] { fitNormalization("minmax", tiny()); }).find("unknown normalization"), std::string::npos);
}

// A 1 x 2 x 3 image: rows (1 2 3) and (4 5 6).
Augmentation imageOf(double flip, int64_t shift) {
  Augmentation a;
  a.flip = flip;
  a.shift = shift;
  a.channels = 1;
  a.height = 2;
  a.width = 3;
  a.fill.assign(6, -1.0f);
  return a;
}

TEST(Augmentation, FlipMirrorsEachRow) {
  std::vector<float> image = {1, 2, 3, 4, 5, 6};
  augmentExample(imageOf(1, 0), image.data(), 7, 1, 0);
  EXPECT_EQ(image, (std::vector<float>{3, 2, 1, 6, 5, 4}));
}

// Each shifted image is the original moved by one (dy, dx) in [-1, 1]^2 with fill coming in; the shift is a
// function of (seed, epoch, example), and over many examples every offset occurs.
TEST(Augmentation, ShiftMovesTheImageWithFillAndIsReproducible) {
  const std::vector<float> original = {1, 2, 3, 4, 5, 6};
  std::set<std::pair<int, int>> offsets;
  for (int64_t example = 0; example < 200; ++example) {
    std::vector<float> image = original, again = original;
    augmentExample(imageOf(0, 1), image.data(), 7, 2, example);
    augmentExample(imageOf(0, 1), again.data(), 7, 2, example);
    EXPECT_EQ(image, again);
    int matches = 0;
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        bool same = true;
        for (int i = 0; i < 2; ++i)
          for (int j = 0; j < 3; ++j) {
            int si = i - dy, sj = j - dx;
            float expected = si >= 0 && si < 2 && sj >= 0 && sj < 3 ? original[si * 3 + sj] : -1.0f;
            same = same && image[i * 3 + j] == expected;
          }
        if (same) {
          ++matches;
          offsets.insert({dy, dx});
        }
      }
    EXPECT_EQ(matches, 1) << "example " << example;
  }
  EXPECT_EQ(offsets.size(), 9u);
}

TEST(Augmentation, NeedsAnImageInput) {
  InputSpec inputs[] = {{"x", false, 2, {kBatchDim, 784}}, {"y", true, 1, {kBatchDim}}};
  ModelSpec model{};
  model.inputs = inputs;
  model.num_inputs = 2;
  EXPECT_NE(dataErrorOf([&] { imageAugmentation(model, 0.5, 0, {}); }).find("needs an image input"), std::string::npos);
  EXPECT_FALSE(imageAugmentation(model, 0, 0, {}).enabled());
  InputSpec image[] = {{"x", false, 4, {kBatchDim, 1, 28, 28}}, {"y", true, 1, {kBatchDim}}};
  model.inputs = image;
  Augmentation a = imageAugmentation(model, 0.5, 2, {});
  EXPECT_EQ(a.height, 28);
  EXPECT_EQ(a.fill.size(), 784u);
}

}  // namespace
}  // namespace nnc::rt
