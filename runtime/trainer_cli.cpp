// The trainer's command line: `train`, `eval`, `predict`, `bench`, `info`.
//
// Exit codes: 0 success, 1 user error (bad flag, missing or malformed data or checkpoint), 2 internal error.
// Command-line values override the model's train block.
#include <chrono>
#include <cmath>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>

#include "runtime/errors.h"
#include "runtime/train_loop.h"

namespace nnc::rt {

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* kUsage =
    "usage: %s train [--data DIR] [--epochs N] [--max-steps N] [--batch N] [--lr X] [--seed N]\n"
    "                [--lr-schedule constant|cosine] [--validation-split X] [--patience N] [--plot FILE.svg]\n"
    "                [--no-shuffle]\n"
    "                [--init CKPT] [--save CKPT] [--metrics FILE] [--threads N]\n"
    "       %s eval --weights CKPT [--data DIR] [--batch N] [--threads N]\n"
    "       %s predict --weights CKPT [--data DIR] [--limit N]\n"
    "       %s bench [--batch N] [--steps N] [--threads N]\n"
    "       %s info\n";

// Flags as name -> value ("" for switches); rejects unknown flags and missing values.
std::map<std::string, std::string> parseFlags(int argc, char** argv, const std::map<std::string, bool>& known) {
  std::map<std::string, std::string> flags;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    auto it = known.find(arg);
    if (it == known.end()) throw UsageError("unknown argument `" + arg + "` for `" + argv[1] + "`");
    if (!it->second) {
      flags[arg] = "";
      continue;
    }
    if (i + 1 >= argc) throw UsageError("`" + arg + "` needs a value");
    flags[arg] = argv[++i];
  }
  return flags;
}

// An integer flag in [min, max]; the default max keeps extents and step counts within Halide's int32 extents.
int64_t positiveInt(const std::map<std::string, std::string>& flags, const std::string& name, int64_t fallback,
                    int64_t min = 1, int64_t max = std::numeric_limits<int32_t>::max()) {
  auto it = flags.find(name);
  if (it == flags.end()) return fallback;
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(it->second.c_str(), &end, 10);
  if (errno || *end || it->second.empty() || value < min || value > max)
    throw UsageError("`" + name + "` needs an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                     ", got `" + it->second + "`");
  return value;
}

double positiveReal(const std::map<std::string, std::string>& flags, const std::string& name, double fallback) {
  auto it = flags.find(name);
  if (it == flags.end()) return fallback;
  char* end = nullptr;
  double value = std::strtod(it->second.c_str(), &end);
  if (*end || it->second.empty() || !(value > 0) || !std::isfinite(value))
    throw UsageError("`" + name + "` needs a positive number, got `" + it->second + "`");
  return value;
}

std::string stringFlag(const std::map<std::string, std::string>& flags, const std::string& name,
                       const std::string& fallback = "") {
  auto it = flags.find(name);
  return it == flags.end() ? fallback : it->second;
}

int trainCommand(const ModelSpec& model, int argc, char** argv) {
  auto flags = parseFlags(argc, argv, {{"--data", true}, {"--epochs", true}, {"--max-steps", true},
                                       {"--batch", true}, {"--lr", true}, {"--lr-schedule", true}, {"--seed", true},
                                       {"--validation-split", true}, {"--patience", true}, {"--plot", true}, {"--no-shuffle", false},
                                       {"--init", true}, {"--save", true}, {"--metrics", true}, {"--threads", true}});
  TrainOptions options;
  options.data = stringFlag(flags, "--data", model.train.data);
  options.epochs = positiveInt(flags, "--epochs", model.train.epochs);
  if (flags.count("--max-steps")) options.max_steps = positiveInt(flags, "--max-steps", 0);
  options.batch = positiveInt(flags, "--batch", model.train.batch);
  options.lr = positiveReal(flags, "--lr", model.train.lr);
  const LrSchedule& schedule = model.train.lr_schedule;
  options.schedule = {schedule.name, schedule.k, schedule.factor, schedule.every, schedule.per_epoch};
  options.schedule.name = stringFlag(flags, "--lr-schedule", schedule.name);
  if (options.schedule.name != "constant" && options.schedule.name != "cosine" && options.schedule.name != schedule.name)
    throw UsageError("`--lr-schedule` switches between `constant`, `cosine` and the model's own `" +
                     std::string(schedule.name) + "`, got `" + options.schedule.name + "`");
  options.validation_split = model.train.validation_split;
  if (flags.count("--validation-split")) {
    options.validation_split = std::strtod(flags["--validation-split"].c_str(), nullptr);
    if (!(options.validation_split >= 0 && options.validation_split < 1))
      throw UsageError("`--validation-split` needs a number in [0, 1), got `" + flags["--validation-split"] + "`");
  }
  options.patience = positiveInt(flags, "--patience", model.train.patience, 0);
  options.monitor = model.train.monitor;
  options.plot = stringFlag(flags, "--plot");
  options.seed = static_cast<uint64_t>(positiveInt(flags, "--seed", static_cast<int64_t>(model.train.seed), 0,
                                                   std::numeric_limits<int64_t>::max()));
  options.shuffle = !flags.count("--no-shuffle");
  options.init = stringFlag(flags, "--init");
  options.save = stringFlag(flags, "--save", std::string(model.name) + ".safetensors");
  options.metrics = stringFlag(flags, "--metrics");
  initKernels(static_cast<int>(positiveInt(flags, "--threads", 0, 0)));
  return train(model, options);
}

int evalCommand(const ModelSpec& model, int argc, char** argv) {
  auto flags = parseFlags(argc, argv, {{"--weights", true}, {"--data", true}, {"--batch", true}, {"--threads", true}});
  if (!flags.count("--weights")) throw UsageError("`eval` needs `--weights CKPT`");
  initKernels(static_cast<int>(positiveInt(flags, "--threads", 0, 0)));
  std::vector<Tensor> params = allocateParams(model);
  loadCheckpoint(model, flags["--weights"], params);
  std::string data_dir = stringFlag(flags, "--data", model.train.data);
  Dataset test = loadMnistSplit(data_dir, "t10k");
  checkDatasetFits(model, test, data_dir + " (t10k)");
  EvalResult result = evaluate(model, params, test, positiveInt(flags, "--batch", 256));
  std::printf("test_loss %.4f  test_accuracy %.4f  (%lld examples)\n", result.loss, result.accuracy,
              static_cast<long long>(result.count));
  return 0;
}

int predictCommand(const ModelSpec& model, int argc, char** argv) {
  auto flags = parseFlags(argc, argv, {{"--weights", true}, {"--data", true}, {"--limit", true}});
  if (!flags.count("--weights")) throw UsageError("`predict` needs `--weights CKPT`");
  initKernels(0);
  std::vector<Tensor> params = allocateParams(model);
  loadCheckpoint(model, flags["--weights"], params);
  std::string data_dir = stringFlag(flags, "--data", model.train.data);
  Dataset test = loadMnistSplit(data_dir, "t10k");
  checkDatasetFits(model, test, data_dir + " (t10k)");
  int64_t limit = std::min(positiveInt(flags, "--limit", 10), test.count);
  int64_t classes = model.output_shape[model.output_rank - 1];
  Tensor x = allocate<float>({limit, test.features});
  std::memcpy(x.data(), test.images.data(), sizeof(float) * limit * test.features);
  Tensor out = allocate<float>({limit, classes});
  predict(model, x, params, out);
  std::printf("index predicted label\n");
  for (int64_t r = 0; r < limit; ++r) {
    const float* row = out.data() + r * classes;
    std::printf("%lld %lld %d\n", static_cast<long long>(r),
                static_cast<long long>(std::max_element(row, row + classes) - row), test.labels[r]);
  }
  return 0;
}

// Times train_step on a fixed random batch (kernels only, no data loading).
int benchCommand(const ModelSpec& model, int argc, char** argv) {
  auto flags = parseFlags(argc, argv, {{"--batch", true}, {"--steps", true}, {"--threads", true}});
  int64_t batch = positiveInt(flags, "--batch", model.train.batch);
  int64_t steps = positiveInt(flags, "--steps", 200);
  initKernels(static_cast<int>(positiveInt(flags, "--threads", 0, 0)));
  TrainState state = allocateTrainState(model);
  initializeParams(model, 1, state.params);
  int64_t features = 1;
  for (int i = 1; i < model.inputs[0].rank; ++i) features *= model.inputs[0].shape[i];
  Tensor x = allocate<float>({batch, features});
  LabelTensor y = allocate<int32_t>({batch});
  int64_t classes = model.output_shape[model.output_rank - 1];
  for (int64_t i = 0; i < batch * features; ++i) x.data()[i] = static_cast<float>((i * 7919) % 256) / 255.0f;
  for (int64_t i = 0; i < batch; ++i) y.data()[i] = static_cast<int32_t>(i % classes);
  for (int i = 0; i < 10; ++i) trainStep(model, x, y, state, 1e-3f);  // warm-up
  auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) trainStep(model, x, y, state, 1e-3f);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("train_step: batch %lld, %.3f ms/step, %.0f images/s\n", static_cast<long long>(batch),
              1e3 * seconds / static_cast<double>(steps), static_cast<double>(batch * steps) / seconds);
  return 0;
}

int infoCommand(const ModelSpec& model) {
  std::printf("model %s\ntarget %s\nentry points: train_step, grads, predict\n", model.name, model.target);
  for (int i = 0; i < model.num_inputs; ++i)
    std::printf("input %s: %s%s\n", model.inputs[i].name, model.inputs[i].is_integer ? "i32" : "f32",
                shapeString(concreteShape(model.inputs[i].rank, model.inputs[i].shape, kBatchDim)).c_str());
  int64_t total = 0;
  for (int i = 0; i < model.num_params; ++i) {
    std::vector<int64_t> shape = concreteShape(model.params[i].rank, model.params[i].shape, 1);
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    total += count;
    std::printf("param %s: f32%s\n", model.params[i].name, shapeString(shape).c_str());
  }
  std::printf("parameters: %lld\noptimizer: %s (lr %g, momentum %g%s, weight_decay %g), lr_schedule %s\n",
              static_cast<long long>(total), model.train.optimizer, model.train.lr, model.train.momentum,
              model.train.nesterov ? ", nesterov" : "", model.train.weight_decay, model.train.lr_schedule.name);
  return 0;
}

}  // namespace

int runTrainer(const ModelSpec& model, int argc, char** argv) {
  const char* self = argc > 0 ? argv[0] : "trainer";
  try {
    std::string command = argc > 1 ? argv[1] : "";
    if (command == "train") return trainCommand(model, argc, argv);
    if (command == "eval") return evalCommand(model, argc, argv);
    if (command == "predict") return predictCommand(model, argc, argv);
    if (command == "bench") return benchCommand(model, argc, argv);
    if (command == "info") return infoCommand(model);
    throw UsageError(command.empty() ? "no command given" : "unknown command `" + command + "`");
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: error: %s\n", self, e.what());
    std::fprintf(stderr, kUsage, self, self, self, self, self);
    return 1;
  } catch (const DataError& e) {
    std::fprintf(stderr, "%s: error: %s\n", self, e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", self, e.what());
    return 2;
  }
}

}  // namespace nnc::rt
