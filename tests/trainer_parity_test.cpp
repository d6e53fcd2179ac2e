// Multi-step parity with PyTorch through the path users run: `nnc build` a parity case (tests/parity/CASE.nn),
// `trainer train --init init.safetensors --no-shuffle` on its data, then every parameter and buffer of the saved
// checkpoint against PyTorch's float64 run of the same steps (tests/parity/make_reference.py records it in
// CASE/expected.json). Between them: the compiled step, the runtime's per-step scalars (the learning rate of
// each schedule, Adam's bias corrections), batching with a partial last batch, BatchNorm's running statistics,
// loading and saving. Measured: at most 1.4e-7 apart on the AVX-512 development machine; a swap of Adam's two
// bias corrections in the runtime moves adam_bn_mlp's and adamw_cnn's parameters by 1e-3 and more.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/safetensors.h"

namespace {

namespace fs = std::filesystem;

// float32 training against float64: rounding, not a formula, stays within these.
constexpr double kAbsoluteTolerance = 2e-6;
constexpr double kRelativeTolerance = 1e-4;

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

class TrainerParity : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainerParity, CheckpointMatchesPyTorchAfterTheRun) {
  const std::string name = GetParam();
  fs::path cases = fs::path(NNC_SOURCE_DIR) / "tests" / "parity";
  fs::path data = cases / name;
  fs::path work = fs::path(PARITY_WORK_DIR) / name;
  fs::remove_all(work);
  fs::create_directories(work);
  std::string build = std::string(NNC_EXE) + " build " + quoted(cases / (name + ".nn")) + " -o " +
                      quoted(work / "trainer") + " 2> " + quoted(work / "build.log");
  ASSERT_EQ(std::system(build.c_str()), 0) << build;
  std::string train = quoted(work / "trainer") + " train --data " + quoted(data) + " --init " +
                      quoted(data / "init.safetensors") + " --no-shuffle --threads 2 --save " +
                      quoted(work / "out.safetensors") + " > " + quoted(work / "train.log") + " 2>&1";
  ASSERT_EQ(std::system(train.c_str()), 0) << train;

  nlohmann::json expected = nlohmann::json::parse(std::ifstream(data / "expected.json"));
  std::vector<nnc::rt::NamedTensor> saved = nnc::rt::readSafetensors(work / "out.safetensors");
  ASSERT_EQ(saved.size(), expected.size()) << "tensors in the checkpoint";
  for (const nnc::rt::NamedTensor& tensor : saved) {
    ASSERT_TRUE(expected.contains(tensor.name)) << tensor.name;
    const nlohmann::json& want = expected[tensor.name];
    ASSERT_EQ(tensor.shape, want["shape"].get<std::vector<int64_t>>()) << tensor.name;
    std::vector<double> values = want["values"].get<std::vector<double>>();
    ASSERT_EQ(tensor.data.size(), values.size()) << tensor.name;
    for (size_t i = 0; i < values.size(); ++i)
      EXPECT_NEAR(tensor.data[i], values[i], kAbsoluteTolerance + kRelativeTolerance * std::abs(values[i]))
          << tensor.name << "[" << i << "]";
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, TrainerParity,
                         ::testing::Values("adam_bn_mlp", "adamw_cnn", "sgd_nesterov", "rmsprop_softmax"),
                         [](const auto& info) { return info.param; });

}  // namespace
