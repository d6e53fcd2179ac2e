// Image grids as PNG files (see image_grid.h). PNG: the signature, then chunks (length, type, data, CRC-32 of
// type and data): IHDR (size, bit depth 8, color type 0 gray or 2 RGB), one IDAT (the zlib stream of the rows,
// each led by filter byte 0), IEND.
#include "runtime/image_grid.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>

#include "runtime/errors.h"
#include "runtime/tensor.h"

namespace nnc::rt {

namespace {

void appendBigEndian(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((value >> shift) & 0xff);
}

void appendChunk(std::string& png, const char* type, const std::string& data) {
  appendBigEndian(png, static_cast<uint32_t>(data.size()));
  std::string body = std::string(type, 4) + data;
  png += body;
  appendBigEndian(png, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()),
                                                   static_cast<uInt>(body.size()))));
}

}  // namespace

ImageShape imageShapeOf(const InputSpec& features) {
  const int64_t* dims = features.shape + 1;  // after the batch
  int rank = features.rank - 1;
  ImageShape shape;
  if (rank == 3 && (dims[0] == 1 || dims[0] == 3)) shape = {dims[0], dims[1], dims[2]};
  else if (rank == 2) shape = {1, dims[0], dims[1]};
  else if (rank == 1) {
    auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(dims[0]))));
    if (side * side == dims[0]) shape = {1, side, side};
  }
  if (shape.height == 0)
    throw DataError(std::string("`") + features.name + "` of shape " +
                    shapeString(concreteShape(features.rank, features.shape, kBatchDim)) +
                    " is no image: expected [B, C, H, W] with 1 or 3 channels, [B, H, W], or [B, N] with N a square");
  return shape;
}

std::string encodePng(int64_t width, int64_t height, int channels, const std::vector<uint8_t>& pixels) {
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string header;
  appendBigEndian(header, static_cast<uint32_t>(width));
  appendBigEndian(header, static_cast<uint32_t>(height));
  header += {8, static_cast<char>(channels == 3 ? 2 : 0), 0, 0, 0};  // depth, color type, deflate, filter, no interlace
  appendChunk(png, "IHDR", header);
  std::vector<uint8_t> rows;
  size_t stride = static_cast<size_t>(width * channels);
  for (int64_t y = 0; y < height; ++y) {
    rows.push_back(0);  // filter: none
    rows.insert(rows.end(), pixels.begin() + y * stride, pixels.begin() + (y + 1) * stride);
  }
  uLongf size = compressBound(rows.size());
  std::string compressed(size, '\0');
  if (compress2(reinterpret_cast<Bytef*>(compressed.data()), &size, rows.data(), rows.size(), 9) != Z_OK)
    throw std::runtime_error("compressing a PNG image failed");
  compressed.resize(size);
  appendChunk(png, "IDAT", compressed);
  appendChunk(png, "IEND", "");
  return png;
}

std::string imageGridPng(const std::vector<std::vector<const float*>>& grid, const ImageShape& shape, int scale) {
  constexpr int64_t kGap = 2;
  size_t columns = 0;
  float low = 0, high = 1;
  for (const auto& row : grid) {
    columns = std::max(columns, row.size());
    for (const float* image : row)
      for (int64_t i = 0; i < shape.size(); ++i) low = std::min(low, image[i]), high = std::max(high, image[i]);
  }
  int64_t cell_w = shape.width * scale, cell_h = shape.height * scale;
  int64_t width = kGap + static_cast<int64_t>(columns) * (cell_w + kGap);
  int64_t height = kGap + static_cast<int64_t>(grid.size()) * (cell_h + kGap);
  int channels = shape.channels == 3 ? 3 : 1;
  std::vector<uint8_t> pixels(static_cast<size_t>(width * height * channels), 255);
  float range = high > low ? high - low : 1;
  for (size_t r = 0; r < grid.size(); ++r)
    for (size_t c = 0; c < grid[r].size(); ++c)
      for (int64_t y = 0; y < cell_h; ++y)
        for (int64_t x = 0; x < cell_w; ++x)
          for (int ch = 0; ch < channels; ++ch) {
            float value = grid[r][c][(ch * shape.height + y / scale) * shape.width + x / scale];
            int64_t px = kGap + static_cast<int64_t>(c) * (cell_w + kGap) + x;
            int64_t py = kGap + static_cast<int64_t>(r) * (cell_h + kGap) + y;
            pixels[static_cast<size_t>((py * width + px) * channels + ch)] =
                static_cast<uint8_t>(std::lround(255 * (value - low) / range));
          }
  return encodePng(width, height, channels, pixels);
}

}  // namespace nnc::rt
