// Pictures of a model's images for a person to look at: examples laid out in a grid, written as a PNG (8-bit
// grayscale or RGB, zlib-compressed, no other library).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/model_spec.h"

namespace nnc::rt {

struct ImageShape {
  int64_t channels = 1, height = 0, width = 0;
  int64_t size() const { return channels * height * width; }
};

// The image shape of a model's features (or of its output): [B, C, H, W] (C 1 or 3), [B, H, W], or [B, N] with N a
// perfect square (one channel). Throws DataError naming the shape when they are no image.
ImageShape imageShapeOf(const InputSpec& features);

// A PNG of `grid` (rows of images, each `shape.size()` floats in channel-major order; rows may differ in length),
// every value a `scale` x `scale` block, 2 pixels of white between images. Values map to gray levels from
// [0, 1], or from the range of all values when some lie outside it (standardized inputs).
std::string imageGridPng(const std::vector<std::vector<const float*>>& grid, const ImageShape& shape, int scale);

// The bytes of a PNG image: `pixels` row-major, `channels` (1: gray, 3: RGB) bytes per pixel.
std::string encodePng(int64_t width, int64_t height, int channels, const std::vector<uint8_t>& pixels);

}  // namespace nnc::rt
