// The trainer's command line: `train`, `eval`, `predict`, `bench`, `info`.
//
// Exit codes: 0 success, 1 user error (bad flag, missing or malformed data or checkpoint), 2 internal error.
// Command-line values override the model's train block.
#include <cmath>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <benchmark/benchmark.h>

#include "runtime/atomic_file.h"
#include "runtime/cpu_features.h"
#include "runtime/data_source.h"
#include "runtime/device.h"
#include "runtime/distributed.h"
#include "runtime/errors.h"
#include "runtime/image_grid.h"
#include "runtime/npy.h"
#include "runtime/onnx_writer.h"
#include "runtime/output_path.h"
#include "runtime/preprocess.h"
#include "runtime/random.h"
#include "runtime/rank_average.h"
#include "runtime/safetensors.h"
#include "runtime/train_loop.h"

namespace nnc::rt {

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// This CPU lacks an instruction set the kernels were compiled for: running them would die with SIGILL.
struct CpuError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Each command's usage; `%s` is the trainer's name.
const std::map<std::string, const char*> kCommandUsage = {
    {"train",
     "usage: %s train [--data DIR] [--epochs N] [--max-steps N] [--batch N] [--lr X] [--seed N]\n"
     "                [--lr-schedule constant|cosine|MODEL'S] [--validation-split X] [--patience N]\n"
     "                [--plot FILE.svg] [--no-shuffle] [--init CKPT | --resume CKPT] [--save CKPT]\n"
     "                [--save-every STEPS] [--metrics FILE] [--threads N] [--label-column NAME|INDEX]\n"
     "                [--normalize none|scale|standardize] [--augment-flip P] [--augment-shift N]\n"
     "                [--step fused|split] [--bucket-kb N] [--device N]\n"},
    {"eval",
     "usage: %s eval --weights CKPT [--data DIR] [--label-column NAME|INDEX] [--batch N] [--threads N]\n"
     "               [--device N]\n"},
    {"predict",
     "usage: %s predict --weights CKPT [INPUT.npy|INPUT-idx] [-o PROBABILITIES.npy] [--data DIR] [--limit N]\n"
     "                  [--label-column NAME|INDEX] [--device N]\n"},
    {"bench",
     "usage: %s bench [--entry train_step|grads|predict|update|split_step] [--batch N] [--steps N] [--repeats N]\n"
     "                [--threads N] [--bucket-kb N]\n"
     "                [--device N] [--benchmark_...: Google Benchmark's flags]\n"},
    {"grads",
     "usage: %s grads --weights CKPT -o GRADS.safetensors [--data DIR] [--batch N] [--seed N]\n"
     "                [--label-column NAME|INDEX] [--threads N] [--device N]\n"},
    {"info", "usage: %s info [--device N]\n"},
    {"reconstruct",
     "usage: %s reconstruct --weights CKPT -o GRID.png [INPUT.npy|INPUT-idx] [--data DIR] [--count N] [--scale N]\n"
     "                      [--device N]\n"},
    {"sample", "usage: %s sample --weights CKPT -o GRID.png [--count N] [--seed N] [--scale N] [--device N]\n"},
    {"export", "usage: %s export --weights CKPT --onnx MODEL.onnx\n"},
};

const char* kOverview =
    "%s: a trainer compiled by nnc %s for model `%s`\n"
    "commands: train, eval, predict, reconstruct, sample, grads, bench, export, info; `%s COMMAND --help` for one; `%s --version`\n"
    "exit codes: 0 success, 1 a user error (flag, data, checkpoint, path), 2 an internal error, 130 interrupted\n";

void printUsage(const char* self, const std::string& command) {
  auto it = kCommandUsage.find(command);
  if (it != kCommandUsage.end()) {
    std::fprintf(stderr, it->second, self);
    return;
  }
  for (const auto& [name, usage] : kCommandUsage) std::fprintf(stderr, usage, self);
}

bool asksForHelp(int argc, char** argv) {
  for (int i = 2; i < argc; ++i)
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) return true;
  return false;
}

// Flags as name -> value ("" for switches); rejects unknown flags and missing values. With `positional`, one
// argument that is not a flag is accepted and stored there.
std::map<std::string, std::string> parseFlags(int argc, char** argv, const std::map<std::string, bool>& known,
                                              std::string* positional = nullptr) {
  std::map<std::string, std::string> flags;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    auto it = known.find(arg);
    if (it == known.end() && positional && positional->empty() && !arg.empty() && arg[0] != '-') {
      *positional = arg;
      continue;
    }
    if (it == known.end()) throw UsageError("unknown argument `" + arg + "` for `" + argv[1] + "`");
    if (!it->second) {
      flags[arg] = "";
      continue;
    }
    if (i + 1 >= argc) throw UsageError("`" + arg + "` needs a value");
    if (known.count(argv[i + 1]))  // `--epochs --max-steps 20`
      throw UsageError("`" + arg + "` needs a value, got the flag `" + argv[i + 1] + "`");
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

// --device N: the GPU a GPU build runs on (-1 when not given: as Halide's runtime picks).
int deviceFlag(const std::map<std::string, std::string>& flags) {
  return static_cast<int>(positiveInt(flags, "--device", -1, 0, 1023));
}

// Starts the kernels' runtime: --threads worker threads (0: one per core) and, for a GPU build, the --device.
void startKernels(const ModelSpec& model, const std::map<std::string, std::string>& flags) {
  initKernels(static_cast<int>(positiveInt(flags, "--threads", 0, 0)));
  selectDevice(model, deviceFlag(flags));
}

// A number flag, the whole of its text a finite number; nullopt when not given.
std::optional<double> realFlag(const std::map<std::string, std::string>& flags, const std::string& name,
                               const std::string& expected) {
  auto it = flags.find(name);
  if (it == flags.end()) return std::nullopt;
  char* end = nullptr;
  double value = std::strtod(it->second.c_str(), &end);
  if (*end || it->second.empty() || !std::isfinite(value))
    throw UsageError("`" + name + "` needs " + expected + ", got `" + it->second + "`");
  return value;
}

double positiveReal(const std::map<std::string, std::string>& flags, const std::string& name, double fallback) {
  std::optional<double> value = realFlag(flags, name, "a positive number");
  if (value && !(*value > 0)) throw UsageError("`" + name + "` needs a positive number, got `" + flags.at(name) + "`");
  return value.value_or(fallback);
}

// A batch size (from `flag`) whose largest tensor Halide can index (2^31 - 1 elements): `bench --batch 200000000`
// once crashed inside a kernel.
int64_t checkedBatch(const ModelSpec& model, int64_t batch, const std::string& flag) {
  int64_t most = std::max(model.max_elements_per_example, featuresPerExample(model));
  int64_t largest = std::numeric_limits<int32_t>::max() / std::max<int64_t>(most, 1);
  if (batch > largest)
    throw UsageError(flag + " " + std::to_string(batch) + " is too large for this model: its largest tensor holds " +
                     std::to_string(most) + " elements per example, and a tensor at most 2^31 - 1; the largest batch "
                     "is " + std::to_string(largest));
  return batch;
}

std::string stringFlag(const std::map<std::string, std::string>& flags, const std::string& name,
                       const std::string& fallback = "") {
  auto it = flags.find(name);
  return it == flags.end() ? fallback : it->second;
}

// Data-parallel training's gradient buckets in bytes (--bucket-kb; 0: one all-reduce after the backward pass).
size_t bucketBytes(const std::map<std::string, std::string>& flags) {
  constexpr int64_t kDefaultBucketKb = 64;  // bench/README.md, "Data parallelism": 0.99x to 1.14x of 0 here
  return static_cast<size_t>(positiveInt(flags, "--bucket-kb", kDefaultBucketKb, 0, 1 << 20)) * 1024;
}

int trainCommand(const ModelSpec& model, int argc, char** argv) {
  auto flags = parseFlags(argc, argv, {{"--data", true}, {"--epochs", true}, {"--max-steps", true},
                                       {"--batch", true}, {"--lr", true}, {"--lr-schedule", true}, {"--seed", true},
                                       {"--validation-split", true}, {"--patience", true}, {"--plot", true}, {"--no-shuffle", false},
                                       {"--init", true}, {"--resume", true}, {"--save", true}, {"--save-every", true}, {"--metrics", true},
                                       {"--threads", true}, {"--label-column", true}, {"--normalize", true},
                                       {"--augment-flip", true}, {"--augment-shift", true}, {"--device", true},
                                       {"--step", true}, {"--bucket-kb", true}});
  TrainOptions options;
  options.data = stringFlag(flags, "--data", model.train.data);
  options.epochs = positiveInt(flags, "--epochs", model.train.epochs);
  if (flags.count("--max-steps")) options.max_steps = positiveInt(flags, "--max-steps", 0);
  options.batch = checkedBatch(model, positiveInt(flags, "--batch", model.train.batch), "--batch");
  options.lr = positiveReal(flags, "--lr", model.train.lr);
  const LrSchedule& schedule = model.train.lr_schedule;
  options.schedule = {schedule.name, schedule.k, schedule.factor, schedule.every, schedule.per_epoch};
  options.schedule.name = stringFlag(flags, "--lr-schedule", schedule.name);
  if (options.schedule.name != "constant" && options.schedule.name != "cosine" && options.schedule.name != schedule.name)
    throw UsageError("`--lr-schedule` switches between `constant`, `cosine` and the model's own `" +
                     std::string(schedule.name) + "`, got `" + options.schedule.name + "`");
  const char* fraction = "a number in [0, 1)";
  options.validation_split = realFlag(flags, "--validation-split", fraction).value_or(model.train.validation_split);
  if (!(options.validation_split >= 0 && options.validation_split < 1))
    throw UsageError("`--validation-split` needs " + std::string(fraction) + ", got `" + flags["--validation-split"] + "`");
  options.patience = positiveInt(flags, "--patience", model.train.patience, 0);
  options.monitor = model.train.monitor;
  options.plot = stringFlag(flags, "--plot");
  options.seed = static_cast<uint64_t>(positiveInt(flags, "--seed", static_cast<int64_t>(model.train.seed), 0,
                                                   std::numeric_limits<int64_t>::max()));
  options.shuffle = !flags.count("--no-shuffle");
  options.label_column = stringFlag(flags, "--label-column", model.train.label_column);
  options.normalize = stringFlag(flags, "--normalize", model.train.normalize);
  if (options.normalize != "none" && options.normalize != "scale" && options.normalize != "standardize")
    throw UsageError("`--normalize` takes none, scale or standardize, got `" + options.normalize + "`");
  const char* probability = "a probability in [0, 1]";
  options.augment_flip = realFlag(flags, "--augment-flip", probability).value_or(model.train.augment_flip);
  if (!(options.augment_flip >= 0 && options.augment_flip <= 1))
    throw UsageError("`--augment-flip` needs " + std::string(probability) + ", got `" + flags["--augment-flip"] + "`");
  options.augment_shift = positiveInt(flags, "--augment-shift", model.train.augment_shift, 0, 64);
  options.init = stringFlag(flags, "--init");
  options.resume = stringFlag(flags, "--resume");
  if (!options.init.empty() && !options.resume.empty())
    throw UsageError("`--init` starts a new run from parameters, `--resume` continues one; give one of them");
  options.save = stringFlag(flags, "--save", std::string(model.name) + ".safetensors");
  options.save_every = positiveInt(flags, "--save-every", 0, 0);
  options.metrics = stringFlag(flags, "--metrics");
  std::string step = stringFlag(flags, "--step", "fused");
  if (step != "fused" && step != "split") throw UsageError("`--step` takes fused or split, got `" + step + "`");
  options.split_step = step == "split";
  options.bucket_bytes = bucketBytes(flags);
  startKernels(model, flags);
  int code = train(model, options);
  if (code == 0) finishRanks();  // after a failure mpirun ends the other ranks; MPI_Finalize would wait for them
  return code;
}

// The parameters of the checkpoint --weights names.
std::vector<Tensor> loadWeights(const ModelSpec& model, const std::map<std::string, std::string>& flags) {
  std::vector<Tensor> params = allocateParams(model);
  loadCheckpoint(model, flags.at("--weights"), params);
  return params;
}

// A split of --data (the train block's data by default), checked against the model's input.
Dataset loadCheckedSplit(const ModelSpec& model, const std::map<std::string, std::string>& flags, Split split) {
  std::string data_dir = stringFlag(flags, "--data", model.train.data);
  Dataset data =
      loadSplit(data_dir, split, dataRequest(model, stringFlag(flags, "--label-column", model.train.label_column)));
  checkDatasetFits(model, data, data_dir + (split == Split::Train ? " (train)" : " (t10k)"));
  return data;
}

// The checkpoint's model as ONNX: what `predict -o` computes, from the features as predict reads them.
int exportCommand(const ModelSpec& model, int argc, char** argv) {
  auto flags = parseFlags(argc, argv, {{"--weights", true}, {"--onnx", true}});
  if (!flags.count("--weights")) throw UsageError("`export` needs `--weights CKPT`");
  if (!flags.count("--onnx")) throw UsageError("`export` needs `--onnx MODEL.onnx`");
  checkOutputPath("--onnx", flags["--onnx"], OutputKind::Replaced);
  std::vector<Tensor> params = loadWeights(model, flags);
  Normalization normalization = checkpointNormalization(flags["--weights"]);
  writeFileAtomically(flags["--onnx"], onnxModel(model, params, normalization));
  const InputSpec& features = model.inputs[0];
  std::printf("wrote %s: ONNX, input %s %s%s%s, %d parameter tensors\n", flags["--onnx"].c_str(),
              features.name, features.is_integer ? "i32" : "f32",
              shapeString(concreteShape(features.rank, features.shape, kBatchDim)).c_str(),
              normalization.kind == "none" ? "" : (" (" + normalization.kind + "d in the graph)").c_str(),
              model.onnx.num_params);
  return 0;
}

int evalCommand(const ModelSpec& model, int argc, char** argv) {
  auto flags = parseFlags(argc, argv, {{"--weights", true}, {"--data", true}, {"--batch", true}, {"--threads", true},
                                       {"--label-column", true}, {"--device", true}});
  if (!flags.count("--weights")) throw UsageError("`eval` needs `--weights CKPT`");
  startKernels(model, flags);
  std::vector<Tensor> params = loadWeights(model, flags);
  Dataset test = loadCheckedSplit(model, flags, Split::Test);
  applyNormalization(checkpointNormalization(flags["--weights"]), test.images.data(), test.count, test.features);
  EvalResult result = evaluate(model, params, test, checkedBatch(model, positiveInt(flags, "--batch", 256), "--batch"));
  if (ranks().leader())  // under mpirun the ranks share the batches (evaluate) and rank 0 reports
    std::printf("%s  (%lld examples)\n", evalText("test", result, modelTask(model)).c_str(),
                static_cast<long long>(result.count));
  finishRanks();
  return 0;
}

// Features to predict on: an NPY file (values as they are) or an IDX file (bytes scaled to [0, 1] as in
// training), as [count, features].
Dataset loadPredictInput(const ModelSpec& model, const std::string& path) {
  Dataset input;
  std::vector<int64_t> shape;
  if (path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0) {
    NpyArray array = readNpy(path);
    shape = array.shape;
    input.images = std::move(array.data);
  } else {
    IdxArray array = readIdx(path);
    shape = array.dims;
    input.images.reserve(array.data.size());
    for (uint8_t byte : array.data) input.images.push_back(static_cast<float>(byte) / 255.0f);
  }
  if (shape.empty()) throw DataError(path + ": expected an array of examples, got a scalar");
  input.count = shape[0];
  input.features = input.count ? static_cast<int64_t>(input.images.size()) / input.count : 0;
  input.example_shape.assign(shape.begin() + 1, shape.end());
  if (modelTask(model) == Task::Classify) {  // no labels: placeholders, one per position of a sequence model
    input.labels_per_example = labelsPerExample(model);
    input.labels.assign(static_cast<size_t>(input.count * input.labels_per_example), 0);
  } else if (modelTask(model) == Task::Regress) {  // no targets either
    input.target_size = outputSize(model);
    input.targets.assign(static_cast<size_t>(input.count * input.target_size), 0.0f);
  }
  if (input.count == 0) throw DataError(path + ": no examples");
  checkDatasetFits(model, input, path);
  return input;
}

// The model's outputs for every example, [count, outputSize(model)].
std::vector<float> predictAll(const ModelSpec& model, const std::vector<Tensor>& params, const Dataset& data) {
  constexpr int64_t kBatch = kPredictBatch;
  int64_t size = outputSize(model);
  std::vector<float> outputs(static_cast<size_t>(data.count * size));
  Tensor x = allocate<float>({kBatch, data.features});
  Tensor batch_out = allocate<float>(concreteShape(static_cast<int>(model.output_rank), model.output_shape, kBatch));
  for (int64_t first = 0; first < data.count; first += kBatch) {
    int rows = static_cast<int>(std::min(kBatch, data.count - first));
    std::memcpy(x.data(), data.images.data() + first * data.features, sizeof(float) * rows * data.features);
    Tensor out = batch_out.cropped(batch_out.dimensions() - 1, 0, rows);
    predict(model, x.cropped(1, 0, rows), params, out);
    std::memcpy(outputs.data() + first * size, out.data(), sizeof(float) * rows * size);
  }
  return outputs;
}

// Class probabilities (softmax of a classifier's output; for a single logit z, 1 - sigmoid(z) and sigmoid(z))
// from its outputs, [count, classes].
std::vector<float> classProbabilities(const ModelSpec& model, const std::vector<float>& outputs, int64_t count) {
  int64_t classes = outputClasses(model);
  std::vector<float> probabilities(static_cast<size_t>(count * classes));
  std::vector<double> log_p(static_cast<size_t>(classes));
  rt::classProbabilities(outputs.data(), count, outputColumns(model), probabilities.data(), log_p.data());
  return probabilities;
}

// "0.1234 -2.5 ..": the first values of a prediction or target row.
std::string valuesText(const float* row, int64_t size) {
  constexpr int64_t kShown = 6;
  std::string text;
  for (int64_t i = 0; i < std::min(size, kShown); ++i) {
    char value[32];
    std::snprintf(value, sizeof value, "%s%.4g", i ? " " : "", static_cast<double>(row[i]));
    text += value;
  }
  return size > kShown ? text + " .." : text;
}

int predictCommand(const ModelSpec& model, int argc, char** argv) {
  std::string input_path;
  auto flags = parseFlags(argc, argv, {{"--weights", true}, {"--data", true}, {"--limit", true}, {"-o", true},
                                       {"--label-column", true}, {"--device", true}},
                          &input_path);
  if (!flags.count("--weights")) throw UsageError("`predict` needs `--weights CKPT`");
  if (flags.count("-o")) checkOutputPath("-o", flags["-o"], OutputKind::Replaced);
  startKernels(model, flags);
  std::vector<Tensor> params = loadWeights(model, flags);
  bool labeled = input_path.empty();
  Dataset data;
  if (labeled) {
    data = loadCheckedSplit(model, flags, Split::Test);
  } else {
    data = loadPredictInput(model, input_path);
  }
  applyNormalization(checkpointNormalization(flags["--weights"]), data.images.data(), data.count, data.features);
  // A classifier's class probabilities, a regressor's values, a reconstruction of each input.
  Task task = modelTask(model);
  std::vector<float> predictions = predictAll(model, params, data);
  std::vector<int64_t> shape = concreteShape(static_cast<int>(model.output_rank), model.output_shape, data.count);
  int64_t positions = labelsPerExample(model);  // a sequence model classifies each position
  if (task == Task::Classify) {
    predictions = classProbabilities(model, predictions, data.count * positions);
    shape.back() = outputClasses(model);
  } else {
    predictedValues(model, predictions.data(), static_cast<int64_t>(predictions.size()));
  }
  int64_t size = static_cast<int64_t>(predictions.size()) / data.count;
  if (flags.count("-o")) {
    writeNpy(flags["-o"], shape, predictions.data());
    std::printf("wrote %s %s to %s\n",
                task == Task::Classify ? "class probabilities" : task == Task::Regress ? "predictions" : "reconstructions",
                shapeString(shape).c_str(), flags["-o"].c_str());
  }
  // On screen: the first rows (all of a small input), unless the predictions went to a file.
  int64_t shown = flags.count("--limit") ? positiveInt(flags, "--limit", 10)
                  : flags.count("-o")    ? 0
                                         : std::min<int64_t>(data.count, labeled ? 10 : 20);
  bool with_target = labeled && (task == Task::Regress || (task == Task::Classify && positions > 1));
  if (shown > 0)
    std::printf("%s\n", task == Task::Classify && !with_target ? (labeled ? "index predicted label" : "index predicted")
                        : with_target          ? (task == Task::Regress ? "index predicted | target" : "index predicted | label")
                                               : "index predicted");
  for (int64_t r = 0; r < std::min(shown, data.count); ++r) {
    const float* row = predictions.data() + r * size;
    if (task == Task::Classify) {  // the predicted class (each position's, for a sequence model) and the label
      int64_t classes = size / positions;
      std::string predicted, labels;
      for (int64_t p = 0; p < std::min<int64_t>(positions, 16); ++p) {
        const float* scores = row + p * classes;
        const char* space = p ? " " : "";
        predicted.append(space).append(std::to_string(std::max_element(scores, scores + classes) - scores));
        labels.append(space).append(std::to_string(data.labels[r * positions + p]));
      }
      std::string more = positions > 16 ? " .." : "";
      std::string text = predicted + more;
      if (labeled) text += (positions > 1 ? " | " : " ") + labels + more;
      std::printf("%lld %s\n", static_cast<long long>(r), text.c_str());
    } else {
      std::string text = valuesText(row, size);
      if (with_target) text += " | " + valuesText(data.targets.data() + r * size, size);
      std::printf("%lld %s\n", static_cast<long long>(r), text.c_str());
    }
  }
  return 0;
}

// Rows of 8 images for a PNG grid: for each 8 of the `count` examples, a row from each of `sources` (arrays of
// `size` floats per example), one below the other.
std::vector<std::vector<const float*>> imageRows(const std::vector<const float*>& sources, int64_t count, int64_t size) {
  constexpr int64_t kColumns = 8;
  std::vector<std::vector<const float*>> rows;
  for (int64_t first = 0; first < count; first += kColumns)
    for (const float* source : sources) {
      rows.emplace_back();
      for (int64_t i = first; i < std::min(first + kColumns, count); ++i) rows.back().push_back(source + i * size);
    }
  return rows;
}

// A PNG for a model that reconstructs its input: the first --count examples of the test split (or of INPUT), in
// rows of 8, each row of inputs above a row of their reconstructions.
int reconstructCommand(const ModelSpec& model, int argc, char** argv) {
  std::string input_path;
  auto flags = parseFlags(argc, argv, {{"--weights", true}, {"-o", true}, {"--data", true}, {"--count", true},
                                       {"--scale", true}, {"--label-column", true}, {"--device", true}},
                          &input_path);
  if (modelTask(model) != Task::Reconstruct)
    throw UsageError(std::string("`reconstruct` draws a model that reconstructs its input; `") + model.name +
                     "` is a " + (modelTask(model) == Task::Classify ? "classifier" : "regressor"));
  if (!flags.count("--weights")) throw UsageError("`reconstruct` needs `--weights CKPT`");
  if (!flags.count("-o")) throw UsageError("`reconstruct` needs `-o GRID.png`");
  checkOutputPath("-o", flags["-o"], OutputKind::Replaced);
  int64_t count = positiveInt(flags, "--count", 16, 1, 256);
  int scale = static_cast<int>(positiveInt(flags, "--scale", 3, 1, 16));
  ImageShape shape = imageShapeOf(model.inputs[0]);
  startKernels(model, flags);
  std::vector<Tensor> params = loadWeights(model, flags);
  Dataset data = input_path.empty() ? loadCheckedSplit(model, flags, Split::Test) : loadPredictInput(model, input_path);
  applyNormalization(checkpointNormalization(flags["--weights"]), data.images.data(), data.count, data.features);
  data.count = std::min(count, data.count);
  data.images.resize(static_cast<size_t>(data.count * data.features));
  std::vector<float> reconstructions = predictAll(model, params, data);
  predictedValues(model, reconstructions.data(), static_cast<int64_t>(reconstructions.size()));
  writeFileAtomically(flags["-o"], imageGridPng(imageRows({data.images.data(), reconstructions.data()}, data.count,
                                                          data.features),
                                                shape, scale));
  std::printf("wrote %lld inputs (odd rows) and their reconstructions (even rows) to %s\n",
              static_cast<long long>(data.count), flags["-o"].c_str());
  return 0;
}

// A PNG of what a model that marks a latent code decodes from --count codes drawn from N(0, I) (a VAE's samples),
// in rows of 8. --seed picks the codes: the same seed, the same picture.
int sampleCommand(const ModelSpec& model, int argc, char** argv) {
  auto flags = parseFlags(argc, argv, {{"--weights", true}, {"-o", true}, {"--count", true}, {"--seed", true},
                                       {"--scale", true}, {"--device", true}});
  if (!model.sample)
    throw UsageError(std::string("`sample` decodes latent codes, and model `") + model.name +
                     "` marks none; mark its code in the model file, e.g. `z = latent(mu + exp(0.5 * logvar) * "
                     "randn_like(mu))`");
  if (!flags.count("--weights")) throw UsageError("`sample` needs `--weights CKPT`");
  if (!flags.count("-o")) throw UsageError("`sample` needs `-o GRID.png`");
  checkOutputPath("-o", flags["-o"], OutputKind::Replaced);
  int64_t count = positiveInt(flags, "--count", 16, 1, 256);
  auto seed = static_cast<uint64_t>(positiveInt(flags, "--seed", 1, 0, std::numeric_limits<int64_t>::max()));
  int scale = static_cast<int>(positiveInt(flags, "--scale", 3, 1, 16));
  InputSpec output{"the output", false, static_cast<int>(model.output_rank), {}};
  std::copy(model.output_shape, model.output_shape + model.output_rank, output.shape);
  ImageShape shape = imageShapeOf(output);
  startKernels(model, flags);
  std::vector<Tensor> params = loadWeights(model, flags);
  Tensor codes = allocate<float>(concreteShape(static_cast<int>(model.latent_rank), model.latent_shape, count));
  SplitMix64 rng{seed};
  for (size_t i = 0; i < codes.number_of_elements(); ++i) codes.data()[i] = static_cast<float>(rng.normal(0, 1));
  Tensor out = allocate<float>(concreteShape(static_cast<int>(model.output_rank), model.output_shape, count));
  sample(model, codes, params, out);
  predictedValues(model, out.data(), static_cast<int64_t>(out.number_of_elements()));
  writeFileAtomically(flags["-o"], imageGridPng(imageRows({out.data()}, count, outputSize(model)), shape, scale));
  std::printf("wrote %lld images decoded from latent codes drawn from N(0, I) (seed %llu) to %s\n",
              static_cast<long long>(count), static_cast<unsigned long long>(seed), flags["-o"].c_str());
  return 0;
}

// The loss and the gradients of the trainable parameters on one batch, the first --batch examples of the training
// split in file order, at the parameters of --weights: a safetensors file with one tensor per parameter, named
// after it, and the loss in its metadata. Dropout draws the masks of a run's first step with --seed. For checking
// gradients against another framework, or one build of a model against another (tests/gpu_parity.sh).
int gradsCommand(const ModelSpec& model, int argc, char** argv) {
  auto flags = parseFlags(argc, argv, {{"--weights", true}, {"-o", true}, {"--data", true}, {"--batch", true},
                                       {"--seed", true}, {"--label-column", true}, {"--threads", true},
                                       {"--device", true}});
  if (!flags.count("--weights")) throw UsageError("`grads` needs `--weights CKPT`");
  if (!flags.count("-o")) throw UsageError("`grads` needs `-o GRADS.safetensors`");
  checkOutputPath("-o", flags["-o"], OutputKind::Replaced);
  int64_t seed = positiveInt(flags, "--seed", static_cast<int64_t>(model.train.seed), 0,
                             std::numeric_limits<int64_t>::max());
  startKernels(model, flags);
  std::vector<Tensor> params = loadWeights(model, flags);
  Dataset data = loadCheckedSplit(model, flags, Split::Train);
  int64_t batch = std::min(checkedBatch(model, positiveInt(flags, "--batch", model.train.batch), "--batch"), data.count);
  applyNormalization(checkpointNormalization(flags["--weights"]), data.images.data(), batch, data.features);
  Tensor x = allocate<float>({batch, data.features}, "the batch's features");
  Targets y = allocateTargets(model, batch);
  std::copy_n(data.images.data(), batch * data.features, x.data());
  if (y.labels.data()) std::copy_n(data.labels.data(), batch, y.labels.data());
  if (y.values.data()) std::copy_n(data.targets.data(), batch * data.target_size, y.values.data());
  std::vector<ScalarArg> scalars;
  stepScalars(model, model.train.lr, 0, static_cast<uint64_t>(seed), scalars);
  std::vector<Tensor> grads = allocateGrads(model);
  float loss = computeGrads(model, x, y, params, grads, intScalar(model, scalars, "dropout_seed"));
  std::vector<NamedTensor> named;
  for (int i = 0, g = 0; i < model.num_params; ++i) {
    if (!model.params[i].trainable) continue;
    const Tensor& grad = grads[g++];
    named.push_back({model.params[i].name, concreteShape(model.params[i].rank, model.params[i].shape, 1),
                     std::vector<float>(grad.data(), grad.data() + grad.number_of_elements())});
  }
  char loss_text[32];
  std::snprintf(loss_text, sizeof loss_text, "%.9g", loss);
  writeSafetensors(flags["-o"], named, {{"loss", loss_text}, {"batch", std::to_string(batch)}});
  std::printf("loss %.6f on the first %lld training examples; wrote %zu gradients to %s\n", loss,
              static_cast<long long>(batch), named.size(), flags["-o"].c_str());
  return 0;
}

// Forwards to Google Benchmark's own display (console, JSON or CSV, as --benchmark_format says) and keeps each
// entry's per-call times of the measured runs.
class RecordingReporter : public benchmark::BenchmarkReporter {
 public:
  explicit RecordingReporter(benchmark::BenchmarkReporter* display) : display_(display) {}
  bool ReportContext(const Context& context) override { return display_->ReportContext(context); }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs)
      if (run.run_type == Run::RT_Iteration && !run.error_occurred && run.iterations > 0)
        seconds_per_call[run.run_name.function_name].push_back(run.real_accumulated_time /
                                                                static_cast<double>(run.iterations));
    display_->ReportRuns(runs);
  }
  void Finalize() override { display_->Finalize(); }
  std::map<std::string, std::vector<double>> seconds_per_call;

 private:
  std::unique_ptr<benchmark::BenchmarkReporter> display_;
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// Times the trainer's own kernels with Google Benchmark on one fixed batch (no data loading): train_step (the
// fused step), grads (forward and backward) and predict (forward). Google Benchmark's flags pass through
// (--benchmark_filter, --benchmark_repetitions, --benchmark_format=json, --benchmark_out=FILE, ...).
// --entry runs one entry point; --steps fixes the calls per timing and --repeats the number of timings.
// Ends with a line per entry point, "ENTRY: batch B, MS ms/step, N images/s" (the median over the timings),
// which bench/compare_pytorch.py reads.
int benchCommand(const ModelSpec& model, int argc, char** argv) {
  std::vector<char*> ours = {argv[0], argv[1]}, google = {argv[0]};
  bool console = true;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--benchmark_", 0) != 0) {
      ours.push_back(argv[i]);
      continue;
    }
    google.push_back(argv[i]);
    if (arg.rfind("--benchmark_format=", 0) == 0) console = arg == "--benchmark_format=console";
  }
  auto flags = parseFlags(static_cast<int>(ours.size()), ours.data(),
                          {{"--batch", true}, {"--steps", true}, {"--threads", true}, {"--repeats", true}, {"--entry", true},
                           {"--device", true}, {"--bucket-kb", true}});
  std::string only = stringFlag(flags, "--entry", "");
  const std::vector<std::string> entries = {"train_step", "grads", "predict", "update", "split_step"};
  if (!only.empty() && std::find(entries.begin(), entries.end(), only) == entries.end())
    throw UsageError("`--entry` takes train_step, grads, predict, update or split_step, got `" + only + "`");
  // Google Benchmark picks the calls per timing from how fast they run, which differs between ranks; under mpirun
  // every rank must make the same all-reduces, so the count is fixed there.
  int64_t steps = positiveInt(flags, "--steps", ranks().distributed() ? 100 : 0, 1);
  int64_t repeats = positiveInt(flags, "--repeats", 1, 1, 1000);
  startKernels(model, flags);
  // Under mpirun, split_step is the data-parallel step (grads, the all-reduce, update), timed on every rank in
  // step; rank 0 alone prints.
  RankAverage rank_average(bucketBytes(flags));
  GradientReduction* reduction = ranks().distributed() ? &rank_average : nullptr;
  quietUnlessLeader();

  TrainState state = allocateTrainState(model);
  initializeParams(model, 1, state.params);
  std::vector<Tensor> grads = allocateGrads(model);
  std::vector<ScalarArg> scalars;
  stepScalars(model, 1e-3, 10, 1, scalars);
  int64_t features = featuresPerExample(model), classes = outputClasses(model);
  struct Batch {
    Tensor x, out;
    Targets y;
  };
  // A fixed pseudo-random batch of `rows` examples.
  auto makeBatch = [&](int64_t rows) {
    Batch b{allocate<float>({rows, features}, "the batch's features"),
            allocate<float>(concreteShape(static_cast<int>(model.output_rank), model.output_shape, rows),
                            "the batch's outputs"),
            allocateTargets(model, rows)};
    for (int64_t i = 0; i < rows * features; ++i)  // pixels in [0, 1], or token ids for a model of them
      b.x.data()[i] = model.inputs[0].is_integer ? static_cast<float>((i * 7919) % 61)
                                                  : static_cast<float>((i * 7919) % 256) / 255.0f;
    if (b.y.labels.data())
      for (int64_t i = 0; i < static_cast<int64_t>(b.y.labels.number_of_elements()); ++i)
        b.y.labels.data()[i] = static_cast<int32_t>(i % classes);
    if (b.y.values.data())
      for (int64_t i = 0; i < static_cast<int64_t>(b.y.values.number_of_elements()); ++i)
        b.y.values.data()[i] = static_cast<float>((i * 104729) % 256) / 255.0f;
    return b;
  };
  std::map<std::string, int64_t> batch_of;
  std::map<std::string, Batch> batches;
  std::map<std::string, std::function<void(Batch&)>> calls = {
      {"train_step", [&](Batch& b) { trainStep(model, b.x, b.y, state, scalars); }},
      {"grads", [&](Batch& b) { computeGrads(model, b.x, b.y, state.params, grads, 1); }},
      {"predict", [&](Batch& b) { predict(model, b.x, state.params, b.out); }},
      {"update", [&](Batch&) { applyUpdate(model, grads, state, scalars); }},
      {"split_step", [&](Batch& b) { splitTrainStep(model, b.x, b.y, state, scalars, reduction); }},
  };
  for (const std::string& entry : entries) {  // update and split_step only when asked for
    if (only.empty() ? (entry == "update" || entry == "split_step") : only != entry) continue;
    int64_t fallback = entry == "predict" ? 256 : model.train.batch;
    int64_t rows = checkedBatch(model, positiveInt(flags, "--batch", fallback), "--batch");
    batch_of[entry] = rows;
    batches.emplace(entry, makeBatch(rows));
    auto* bench = benchmark::RegisterBenchmark(entry.c_str(), [entry, rows, &calls, &batches](benchmark::State& timer) {
      Batch& b = batches.at(entry);
      auto& call = calls.at(entry);
      for (int i = 0; i < 10; ++i) call(b);  // warm-up: the allocator's free list, caches
      for (auto _ : timer) call(b);
      timer.SetItemsProcessed(timer.iterations() * rows);  // images/s
      timer.SetLabel("batch " + std::to_string(rows));
    });
    bench->UseRealTime()->Unit(benchmark::kMillisecond);
    if (steps > 0) bench->Iterations(steps);
    if (repeats > 1) bench->Repetitions(static_cast<int>(repeats));
  }
  int count = static_cast<int>(google.size());
  benchmark::Initialize(&count, google.data());
  if (benchmark::ReportUnrecognizedArguments(count, google.data())) return 1;
  RecordingReporter reporter(benchmark::CreateDefaultDisplayReporter());
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  for (const auto& [entry, times] : reporter.seconds_per_call) {
    if (!console) break;
    double seconds = median(times);
    int64_t rows = batch_of[entry];
    std::string ranks_text;
    if (reduction && entry == "split_step") {  // a step of the global batch
      rows *= ranks().size;
      ranks_text = " (" + std::to_string(ranks().size) + " ranks x " + std::to_string(batch_of[entry]) + ")";
    }
    std::printf("%s: batch %lld%s, %.3f ms/step, %.0f images/s\n", entry.c_str(), static_cast<long long>(rows),
                ranks_text.c_str(), 1e3 * seconds, static_cast<double>(rows) / seconds);
  }
  finishRanks();
  return 0;
}

std::vector<std::string> requiredCpuFeatures(const ModelSpec& model) {
  return {model.cpu_features, model.cpu_features + model.num_cpu_features};
}

// "x86-64-v4", or for a trainer built for its build machine, "the CPU it was built on, HALIDE TARGET".
std::string compiledFor(const ModelSpec& model) {
  if (std::string(model.target_name) == "host") return std::string("the CPU it was built on, ") + model.target;
  return model.target_name;
}

// Throws CpuError, naming what is missing and a target this CPU runs, unless this CPU has every feature the
// kernels were compiled for.
void checkCpu(const ModelSpec& model) {
  std::vector<std::string> required = requiredCpuFeatures(model);
  std::vector<std::string> missing = cpu::missingFeatures(required);
  if (missing.empty()) return;
  const cpu::IsaLevel* level = cpu::newestLevelOfThisCpu();
  throw CpuError("this trainer was compiled for " + compiledFor(model) + " (" + cpu::joinFeatures(required) +
                 "); this CPU lacks " + cpu::joinFeatures(missing) + "; rebuild with " +
                 (level ? std::string("--target=") + level->name + " or " : std::string()) + "on this machine");
}

int infoCommand(const ModelSpec& model, int argc, char** argv) {
  int device = deviceFlag(parseFlags(argc, argv, {{"--device", true}}));
  std::vector<std::string> required = requiredCpuFeatures(model);
  std::vector<std::string> missing = cpu::missingFeatures(required);
  std::printf("model %s\ntarget %s\n", model.name, model.target);
  if (std::string(model.target_name) != model.target) std::printf("target name %s\n", model.target_name);
  std::printf("needs CPU features: %s\nthis CPU: %s\n", cpu::joinFeatures(required).c_str(),
              missing.empty() ? "runs it" : ("lacks " + cpu::joinFeatures(missing)).c_str());
  if (std::string api = gpuApiOf(model); !api.empty()) {
    try {
      std::printf("device: %s\n", findDevice(api, device).describe().c_str());
    } catch (const DeviceError& e) {
      std::printf("device: none usable: %s\n", e.what());
    }
  } else if (device >= 0) {
    selectDevice(model, device);  // the CPU's error
  }
  std::printf("entry points: train_step, grads, predict, update%s\n", model.sample ? ", sample" : "");
  if (model.sample)
    std::printf("latent code: f32%s\n",
                shapeString(concreteShape(static_cast<int>(model.latent_rank), model.latent_shape, kBatchDim)).c_str());
  std::printf("task: %s%s%s\n", model.task, *model.criterion ? ", loss compares by " : "", model.criterion);
  if (model.onnx.model_head)
    std::printf("onnx export: %s%s\n", *model.onnx.error ? "no: " : "yes (`export --onnx`)", model.onnx.error);
  for (int i = 0; i < model.num_inputs; ++i)
    std::printf("input %s: %s%s\n", model.inputs[i].name, model.inputs[i].is_integer ? "i32" : "f32",
                shapeString(concreteShape(model.inputs[i].rank, model.inputs[i].shape, kBatchDim)).c_str());
  int64_t total = 0;
  for (int i = 0; i < model.num_params; ++i) {
    std::vector<int64_t> shape = concreteShape(model.params[i].rank, model.params[i].shape, 1);
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    if (model.params[i].trainable) total += count;
    std::printf("%s %s: f32%s\n", model.params[i].trainable ? "param" : "buffer", model.params[i].name,
                shapeString(shape).c_str());
  }
  std::printf("parameters: %lld\noptimizer: %s (lr %g, momentum %g%s, weight_decay %g), lr_schedule %s\n",
              static_cast<long long>(total), model.train.optimizer, model.train.lr, model.train.momentum,
              model.train.nesterov ? ", nesterov" : "", model.train.weight_decay, model.train.lr_schedule.name);
  return 0;
}

}  // namespace

int runTrainer(const ModelSpec& model, int argc, char** argv) {
  const char* self = argc > 0 ? argv[0] : "trainer";
  std::string command = argc > 1 ? argv[1] : "";
  try {
    if (command == "--help" || command == "-h" || command == "help") {
      std::printf(kOverview, self, NNC_VERSION, model.name, self, self);
      for (const auto& [name, usage] : kCommandUsage) std::printf(usage, self);
      return 0;
    }
    if (command == "--version") {
      std::printf("%s: model %s, built by nnc %s for %s\n", self, model.name, NNC_VERSION, model.target_name);
      return 0;
    }
    if (kCommandUsage.count(command) && asksForHelp(argc, argv)) {
      std::printf(kCommandUsage.at(command), self);
      return 0;
    }
    if (command == "info") return infoCommand(model, argc, argv);
    if (command == "export") return exportCommand(model, argc, argv);  // runs no kernel
    if (command != "info") checkCpu(model);
    if (command == "train") return trainCommand(model, argc, argv);
    if (command == "eval") return evalCommand(model, argc, argv);
    if (command == "predict") return predictCommand(model, argc, argv);
    if (command == "bench") return benchCommand(model, argc, argv);
    if (command == "grads") return gradsCommand(model, argc, argv);
    if (command == "reconstruct") return reconstructCommand(model, argc, argv);
    if (command == "sample") return sampleCommand(model, argc, argv);
    throw UsageError(command.empty() ? "no command given" : "unknown command `" + command + "`");
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: error: %s\n", self, e.what());
    printUsage(self, command);
    return 1;
  } catch (const DataError& e) {
    std::fprintf(stderr, "%s: error: %s\n", self, e.what());
    return 1;
  } catch (const CpuError& e) {
    std::fprintf(stderr, "%s: error: %s\n", self, e.what());
    return 1;
  } catch (const DeviceError& e) {
    std::fprintf(stderr, "%s: error: %s\n", self, e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", self, e.what());
    return 2;
  }
}

}  // namespace nnc::rt
