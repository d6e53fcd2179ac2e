// Multi-step parity with PyTorch through the path users run: `nnc build` a parity case (tests/parity/CASE.nn),
// `trainer train --init init.safetensors --no-shuffle` on its data, then every parameter and buffer of the saved
// checkpoint against PyTorch's float64 run of the same steps (tests/parity/make_reference.py records it in
// CASE/expected.json). Between them: the compiled step, the runtime's per-step scalars (the learning rate of
// each schedule, Adam's bias corrections), batching with a partial last batch, BatchNorm's running statistics,
// loading and saving. Measured: at most 1.4e-7 apart on the AVX-512 development machine (2.5e-7 as a plan of
// kernels); a swap of Adam's two bias corrections in the runtime moves adam_bn_mlp's and adamw_cnn's parameters
// by 1e-3 and more.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/npy.h"
#include "runtime/safetensors.h"

namespace {

namespace fs = std::filesystem;

// Runs `command`; false (with the command in the failure) when it fails.
::testing::AssertionResult runs(const std::string& command) {
  if (std::system(command.c_str()) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << command;
}

// float32 training against float64: rounding, not a formula, stays within these.
constexpr double kAbsoluteTolerance = 2e-6;
constexpr double kRelativeTolerance = 1e-4;

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

// Each case built as a plan of kernels (the default) and as one pipeline per entry point
// (`nnc build --single-pipeline`).
class TrainerParity : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(TrainerParity, CheckpointMatchesPyTorchAfterTheRun) {
  const auto& [name, plan] = GetParam();
  fs::path cases = fs::path(NNC_SOURCE_DIR) / "tests" / "parity";
  fs::path data = cases / name;
  fs::path work = fs::path(PARITY_WORK_DIR) / (name + (plan ? "" : "_single_pipeline"));
  fs::remove_all(work);
  fs::create_directories(work);
  std::string build = std::string(NNC_EXE) + " build " + (plan ? "" : "--single-pipeline ") + quoted(cases / (name + ".nn")) + " -o " +
                      quoted(work / "trainer") + " 2> " + quoted(work / "build.log");
  ASSERT_TRUE(runs(build));
  std::string train = quoted(work / "trainer") + " train --data " + quoted(data) + " --init " +
                      quoted(data / "init.safetensors") + " --no-shuffle --threads 2 --save " +
                      quoted(work / "out.safetensors") + " > " + quoted(work / "train.log") + " 2>&1";
  ASSERT_TRUE(runs(train));

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

// Dropout draws a fresh mask every step (the runtime hashes the run's seed with the step): one example of 64 ones
// through dropout(p = 0.5) and a zero-initialized linear layer, 8 steps of SGD. A weight column stays 0 only when
// its feature was dropped at all 8 steps, about 1 in 256; with one mask for every step, about half would.
TEST(TrainerDropout, FreshMaskEveryStep) {
  fs::path work = fs::path(PARITY_WORK_DIR) / "dropout";
  fs::remove_all(work);
  fs::create_directories(work);
  std::ofstream(work / "model.nn") << "model dropout_steps(x: f32[B, 64], y: i32[B]) {\n"
                                      "    logits = linear(dropout(x, p = 0.5), 2)\n"
                                      "    loss = cross_entropy(logits, y)\n    return logits\n}\n"
                                      "train {\n    batch = 1\n    epochs = 8\n    optimizer = sgd(lr = 0.1)\n}\n";
  std::vector<float> ones(64, 1), label = {1};
  for (const char* split : {"train", "test"}) {
    nnc::rt::writeNpy((work / (std::string(split) + "_x.npy")).string(), {1, 64}, ones.data());
    nnc::rt::writeNpy((work / (std::string(split) + "_y.npy")).string(), {1}, label.data());
  }
  nnc::rt::writeSafetensors((work / "init.safetensors").string(),
                            {{"logits.weight", {2, 64}, std::vector<float>(128, 0)}, {"logits.bias", {2}, {0, 0}}});
  ASSERT_TRUE(runs(std::string(NNC_EXE) + " build " + quoted(work / "model.nn") + " -o " + quoted(work / "trainer") +
                   " 2> " + quoted(work / "build.log")));
  ASSERT_TRUE(runs(quoted(work / "trainer") + " train --data " + quoted(work) + " --init " +
                   quoted(work / "init.safetensors") + " --save " + quoted(work / "out.safetensors") + " > " +
                   quoted(work / "train.log") + " 2>&1"));
  for (const nnc::rt::NamedTensor& tensor : nnc::rt::readSafetensors(work / "out.safetensors")) {
    if (tensor.name != "logits.weight") continue;
    int never_kept = 0;
    for (int j = 0; j < 64; ++j) never_kept += tensor.data[j] == 0 && tensor.data[64 + j] == 0;
    EXPECT_LE(never_kept, 4) << "of 64 features never kept in 8 steps";
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, TrainerParity,
                         ::testing::Combine(::testing::Values("adam_bn_mlp", "adamw_cnn", "sgd_nesterov",
                                                              "rmsprop_softmax"),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return std::get<0>(info.param) + (std::get<1>(info.param) ? "" : "_single_pipeline");
                         });

}  // namespace
