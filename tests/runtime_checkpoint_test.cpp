// Tests for runtime/tensor's checkpoints: the dtypes saveCheckpoint writes (a count as I64, as PyTorch keeps
// num_batches_tracked), and loadCheckpoint on other dtypes: converted, with a note per rounded tensor, and a
// count that is not a whole number refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runtime/safetensors.h"
#include "runtime/tensor.h"
#include "tests/runtime_test_util.h"

namespace nnc::rt {
namespace {

namespace fs = std::filesystem;

// batch_norm's parameter and count, as the compiler describes them.
const ParamSpec kParams[] = {{"bn.weight", 1, {2}, InitKind::Ones, 0, 0, true, false},
                             {"bn.num_batches_tracked", 0, {}, InitKind::Zeros, 0, 0, false, true}};

ModelSpec bnModel() {
  ModelSpec model{};
  model.name = "bn";
  model.params = kParams;
  model.num_params = 2;
  return model;
}

std::string tempFile(const std::string& name) {
  return (fs::temp_directory_path() / ("nnc_ckpt_" + std::to_string(::getpid()) + "_" + name)).string();
}

TEST(Checkpoint, SavesACountAsI64) {
  const ModelSpec model = bnModel();
  std::vector<Tensor> params = allocateParams(model);
  params[0].data()[0] = 0.25f;
  params[0].data()[1] = -1;
  params[1].data()[0] = 12;
  const std::string path = tempFile("save.safetensors");
  saveCheckpoint(model, path, params, 1, 12);
  std::vector<NamedTensor> saved = readSafetensors(path);
  fs::remove(path);
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_EQ(saved[0].name, "bn.num_batches_tracked");
  EXPECT_EQ(saved[0].dtype, Dtype::I64);
  EXPECT_EQ(saved[0].data, std::vector<float>{12});
  EXPECT_EQ(saved[1].dtype, Dtype::F32);
  EXPECT_EQ(saved[1].data, (std::vector<float>{0.25f, -1}));
}

// F64 values arrive rounded, with one note for the tensor; the I64 count arrives exactly and silently.
TEST(Checkpoint, LoadsOtherDtypesWithANotePerRoundedTensor) {
  const ModelSpec model = bnModel();
  const std::string path = tempFile("f64.safetensors");
  // nnc writes no F64: the file by hand, without the optional checksum.
  const std::string header =
      R"({"bn.weight":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},)"
      R"("bn.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[16,24]}})";
  const double weight[] = {0.1, 0.5};
  const int64_t count = 3;
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  file += header + std::string(reinterpret_cast<const char*>(weight), 16) +
          std::string(reinterpret_cast<const char*>(&count), 8);
  std::ofstream(path, std::ios::binary) << file;

  std::vector<Tensor> params = allocateParams(model);
  ::testing::internal::CaptureStderr();
  loadCheckpoint(model, path, params);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "note: " + path + ": tensor `bn.weight`: 1 of 2 F64 values rounded to the nearest f32\n");
  fs::remove(path);
  EXPECT_EQ(params[0].data()[0], 0.1f);
  EXPECT_EQ(params[0].data()[1], 0.5f);
  EXPECT_EQ(params[1].data()[0], 3);
}

TEST(Checkpoint, RefusesACountThatIsNotAWholeNumber) {
  const ModelSpec model = bnModel();
  const std::string path = tempFile("half.safetensors");
  writeSafetensors(path, {{"bn.weight", {2}, {1, 1}}, {"bn.num_batches_tracked", {}, {2.5f}}});
  std::vector<Tensor> params = allocateParams(model);
  std::string message = dataErrorOf([&] { loadCheckpoint(model, path, params); });
  fs::remove(path);
  EXPECT_EQ(message, path + ": this checkpoint does not fit model `bn` (1 mismatch):\n"
                            "  tensor `bn.num_batches_tracked` is a count, but holds values other than whole numbers");
}

}  // namespace
}  // namespace nnc::rt
