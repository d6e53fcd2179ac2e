// The training loop: shuffled mini-batches through train_step, evaluation after each epoch, metrics and the
// final checkpoint.
#include "runtime/train_loop.h"

#include <algorithm>
#include <cmath>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "runtime/atomic_file.h"
#include "runtime/data_source.h"
#include "runtime/errors.h"
#include "runtime/output_path.h"
#include "runtime/plot.h"
#include "runtime/preprocess.h"
#include "runtime/distributed.h"
#include "runtime/progress.h"
#include "runtime/rank_average.h"
#include "runtime/resume.h"

namespace nnc::rt {

int64_t outputColumns(const ModelSpec& model) { return model.output_shape[model.output_rank - 1]; }

int64_t outputClasses(const ModelSpec& model) { return classCount(outputColumns(model)); }

int64_t featuresPerExample(const ModelSpec& model) {
  int64_t features = 1;
  for (int i = 1; i < model.inputs[0].rank; ++i) features *= model.inputs[0].shape[i];
  return features;
}

int64_t outputSize(const ModelSpec& model) {
  int64_t size = 1;
  for (int64_t i = 1; i < model.output_rank; ++i) size *= model.output_shape[i];
  return size;
}

int64_t labelsPerExample(const ModelSpec& model) { return outputSize(model) / outputColumns(model); }

Task modelTask(const ModelSpec& model) {
  if (std::strcmp(model.task, "regress") == 0) return Task::Regress;
  if (std::strcmp(model.task, "reconstruct") == 0) return Task::Reconstruct;
  return Task::Classify;
}

DataRequest dataRequest(const ModelSpec& model, const std::string& label_column) {
  DataRequest request;
  request.label_column = label_column;
  Task task = modelTask(model);
  request.targets = task == Task::Classify ? TargetKind::Label : task == Task::Regress ? TargetKind::Values : TargetKind::None;
  if (model.inputs[0].is_integer) request.text_window = featuresPerExample(model);
  return request;
}

namespace {

// Copies examples order[first, first + rows) into the batch tensors, cropped to `rows`; with `augmentation`,
// augmented for epoch `epoch` of a run seeded with `seed`.
void gatherBatch(const Dataset& data, const std::vector<int64_t>& order, int64_t first, int64_t rows, Tensor& x,
                 Targets& y, const Augmentation* augmentation = nullptr, uint64_t seed = 0, int64_t epoch = 0) {
  int64_t features = data.features, size = data.target_size, labels = data.labels_per_example;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t example = order[first + r];
    std::memcpy(x.data() + r * features, data.images.data() + example * features, sizeof(float) * features);
    if (augmentation) augmentExample(*augmentation, x.data() + r * features, seed, epoch, example);
    if (y.labels.data())
      std::memcpy(y.labels.data() + r * labels, data.labels.data() + example * labels, sizeof(int32_t) * labels);
    if (y.values.data())
      std::memcpy(y.values.data() + r * size, data.targets.data() + example * size, sizeof(float) * size);
  }
}

// Gathers the next batch on a thread of its own while the kernels run on the current one (double buffering),
// so an epoch is bound by the kernels, not by copying (and augmenting) examples scattered over the data set.
// examples/mlp.nn, 1 kernel thread: an epoch took 1.17 ms per step with the gather in line, against 0.75 ms for
// the kernels alone (`bench`); see bench/README.md for after.
class BatchPrefetcher {
 public:
  BatchPrefetcher(const ModelSpec& model, const Dataset& data, int64_t batch, const Augmentation* augmentation,
                  uint64_t seed)
      : data_(data), augmentation_(augmentation), seed_(seed), worker_([this] { run(); }) {
    for (Slot& slot : slots_) {
      slot.x = allocate<float>({batch, data.features});
      slot.y = allocateTargets(model, batch);
    }
  }
  ~BatchPrefetcher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      quit_ = true;
    }
    wake_.notify_all();
    worker_.join();
  }

  // Starts gathering rows [first, first + rows) of `order` for `epoch` into slot `slot` (0 or 1).
  void request(int slot, const std::vector<int64_t>& order, int64_t first, int64_t rows, int64_t epoch) {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = Job{slot, &order, first, rows, epoch};
    pending_ = true;
    wake_.notify_all();
  }

  // Waits until no gather is requested or running (before the order a request points to goes away).
  void drain() {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return !pending_ && !busy_; });
  }

  // Waits for the requested gather and returns its slot's tensors, cropped to its rows.
  std::pair<Tensor, Targets> take(int slot) {
    drain();
    std::lock_guard<std::mutex> lock(mutex_);
    int rows = static_cast<int>(slots_[slot].rows);
    return {slots_[slot].x.cropped(1, 0, rows), slots_[slot].y.cropped(rows)};
  }

 private:
  struct Slot {
    Tensor x;
    Targets y;
    int64_t rows = 0;
  };
  struct Job {
    int slot = 0;
    const std::vector<int64_t>* order = nullptr;
    int64_t first = 0, rows = 0, epoch = 0;
  };

  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return pending_ || quit_; });
      if (quit_) return;
      Job job = job_;
      pending_ = false;
      busy_ = true;
      lock.unlock();
      Slot& slot = slots_[job.slot];
      gatherBatch(data_, *job.order, job.first, job.rows, slot.x, slot.y, augmentation_, seed_, job.epoch);
      slot.rows = job.rows;
      lock.lock();
      busy_ = false;
      done_.notify_all();
    }
  }

  const Dataset& data_;
  const Augmentation* augmentation_;
  uint64_t seed_;
  Slot slots_[2];
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  Job job_;
  bool pending_ = false, busy_ = false, quit_ = false;
  std::thread worker_;  // last: starts after the other members exist
};

std::vector<int64_t> identityOrder(int64_t n) {
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  return order;
}

// printf into a std::string.
template <typename... Args>
std::string fmt(const char* format, Args... args) {
  char text[256];
  std::snprintf(text, sizeof text, format, args...);
  return text;
}

void appendMetrics(const std::string& path, const nlohmann::json& record) {
  std::ofstream out(path, std::ios::app);
  out << record.dump() << "\n";
  if (!out) throw DataError(path + ": cannot append metrics: " + std::strerror(errno));  // a full disk: exit 1
}

}  // namespace

void checkDatasetFits(const ModelSpec& model, const Dataset& data, const std::string& where) {
  // Images must have the model's height and width, not only as many pixels (14x56 is no 28x28 image).
  const InputSpec& input = model.inputs[0];
  size_t rank = data.example_shape.size();
  if (input.rank >= 3 && rank >= 2 &&
      (data.example_shape[rank - 2] != input.shape[input.rank - 2] ||
       data.example_shape[rank - 1] != input.shape[input.rank - 1]))
    throw DataError(where + ": examples are " + shapeString(data.example_shape) + ", model input `" + input.name +
                    "` expects images of " + std::to_string(input.shape[input.rank - 2]) + " x " +
                    std::to_string(input.shape[input.rank - 1]));
  if (data.features != featuresPerExample(model))
    throw DataError(where + ": examples have " + std::to_string(data.features) + " features, model input `" +
                    model.inputs[0].name + "` expects " + std::to_string(featuresPerExample(model)));
  if (model.token_ids_below > 0)  // the kernels would clamp an id outside the embedding table
    for (size_t i = 0; i < data.images.size(); ++i) {
      float id = data.images[i];
      if (id >= 0 && id < static_cast<float>(model.token_ids_below) && id == std::floor(id)) continue;
      auto features = static_cast<size_t>(data.features);
      char text[32];
      std::snprintf(text, sizeof text, "%g", id);
      throw DataError(where + ": example " + std::to_string(i / features) + ", position " +
                      std::to_string(i % features) + ": token id " + text + " is not an index into the "
                      "model's embedding table of " + std::to_string(model.token_ids_below) + " rows (input `" +
                      model.inputs[0].name + "` is i32 token ids)");
    }
  Task task = modelTask(model);
  if (task == Task::Classify && data.labels_per_example != labelsPerExample(model))
    throw DataError(where + ": examples have " + std::to_string(data.labels_per_example) + " labels, model input `" +
                    model.inputs[1].name + "` expects " + std::to_string(labelsPerExample(model)));
  if (task == Task::Classify && data.num_classes > outputClasses(model))
    throw DataError(where + ": labels go up to " + std::to_string(data.num_classes - 1) + ", but the model predicts " +
                    std::to_string(outputClasses(model)) + " classes");
  if (task == Task::Regress && data.target_size != outputSize(model))
    throw DataError(where + ": examples have " + std::to_string(data.target_size) + " target values, model input `" +
                    model.inputs[1].name + "` expects " + std::to_string(outputSize(model)));
}

namespace {

// Predicts this rank's share of `data` in batches of `batch` (the ranks of a data-parallel run take turns at the
// batches and add up what they found: distributed.h) and hands each to `visit(rows, features, targets, outputs)`.
template <typename Visit>
void forEachPredictedBatch(const ModelSpec& model, const std::vector<Tensor>& params, const Dataset& data,
                           int64_t batch, Visit visit) {
  Tensor x = allocate<float>({batch, data.features});
  Targets y = allocateTargets(model, batch);
  Tensor outputs = allocate<float>(concreteShape(static_cast<int>(model.output_rank), model.output_shape, batch));
  std::vector<int64_t> order = identityOrder(data.count);
  const Ranks& world = ranks();
  for (int64_t first = batch * world.rank; first < data.count; first += batch * world.size) {
    int64_t rows = std::min(batch, data.count - first);
    gatherBatch(data, order, first, rows, x, y);
    Tensor out = outputs.cropped(outputs.dimensions() - 1, 0, static_cast<int>(rows));
    predict(model, x.cropped(1, 0, static_cast<int>(rows)), params, out);
    visit(rows, x, y, out);
  }
}

// A classifier: the cross-entropy of its class probabilities and its accuracy, summed over its share of the
// batches (sums[0], sums[1]), a term per label (a sequence model has one per position).
void sumClassification(const ModelSpec& model, const std::vector<Tensor>& params, const Dataset& data, int64_t batch,
                       std::vector<double>& sums) {
  int64_t columns = outputColumns(model), positions = data.labels_per_example;
  std::vector<double> log_p(static_cast<size_t>(outputClasses(model)));
  forEachPredictedBatch(model, params, data, batch, [&](int64_t rows, const Tensor&, const Targets& y, const Tensor& out) {
    for (int64_t r = 0; r < rows * positions; ++r) {  // a row of logits per label
      classLogProbabilities(out.data() + r * columns, columns, log_p.data());
      int64_t best = std::max_element(log_p.begin(), log_p.end()) - log_p.begin();
      sums[0] -= log_p[y.labels.data()[r]];
      sums[1] += best == y.labels.data()[r];
    }
  });
}

// The criterion of a regressor's or reconstruction's loss (ModelSpec::criterion) on one element: o the output,
// t the target.
struct Criterion {
  enum class Kind { Mse, L1, Bce, BceWithLogits } kind;

  explicit Criterion(const char* name) {
    std::string n = name;
    kind = n == "l1" ? Kind::L1
           : n == "binary_cross_entropy" ? Kind::Bce
           : n == "binary_cross_entropy_with_logits" ? Kind::BceWithLogits
                                                     : Kind::Mse;
  }
  // As the model's loss op computes it (compiler/lower/lower_reduce.cpp).
  double loss(double o, double t) const {
    switch (kind) {
      case Kind::Mse: return (o - t) * (o - t);
      case Kind::L1: return std::abs(o - t);
      case Kind::Bce: return -(t * std::max(std::log(o), -100.0) + (1 - t) * std::max(std::log(1 - o), -100.0));
      case Kind::BceWithLogits: return std::max(o, 0.0) - o * t + std::log1p(std::exp(-std::abs(o)));
    }
    return 0;
  }
  // The predicted value: a logit's probability.
  double value(double o) const { return kind == Kind::BceWithLogits ? logitProbability(o) : o; }
};

// A regressor's or reconstruction's sums over its share of the batches: the criterion, the squared and the
// absolute error (sums[0..2]); for a regressor also, per target element j, the sum of the targets, of their
// squares and of the squared errors (sums[3 + 3j ..]), from which R² comes.
void sumAgainstTargets(const ModelSpec& model, const std::vector<Tensor>& params, const Dataset& data, int64_t batch,
                       std::vector<double>& sums) {
  bool regress = modelTask(model) == Task::Regress;
  int64_t size = outputSize(model);
  Criterion criterion(model.criterion);
  forEachPredictedBatch(model, params, data, batch, [&](int64_t rows, const Tensor& x, const Targets& y, const Tensor& out) {
    const float* target = regress ? y.values.data() : x.data();  // a reconstruction's target is its input
    for (int64_t i = 0; i < rows * size; ++i) {
      double o = out.data()[i], t = target[i], error = criterion.value(o) - t;
      sums[0] += criterion.loss(o, t);
      sums[1] += error * error;
      sums[2] += std::abs(error);
      if (!regress) continue;
      double* column = &sums[3 + 3 * (i % size)];
      column[0] += t;
      column[1] += t * t;
      column[2] += error * error;
    }
  });
}

}  // namespace

void predictedValues(const ModelSpec& model, float* outputs, int64_t count) {
  predictedValues(model.criterion, outputs, count);
}

EvalResult evaluate(const ModelSpec& model, const std::vector<Tensor>& params, const Dataset& data, int64_t batch) {
  batch = std::min(batch, data.count);
  Task task = modelTask(model);
  int64_t size = outputSize(model);
  std::vector<double> sums(task == Task::Classify ? 2 : task == Task::Regress ? 3 + 3 * size : 3, 0.0);
  if (task == Task::Classify) sumClassification(model, params, data, batch, sums);
  else sumAgainstTargets(model, params, data, batch, sums);
  allReduceSum(sums.data(), sums.size());
  EvalResult result;
  result.count = data.count;
  auto n = static_cast<double>(data.count);
  if (task == Task::Classify) {  // per label: a sequence model's per position
    double labels = n * static_cast<double>(data.labels_per_example);
    result.loss = sums[0] / labels;
    result.accuracy = sums[1] / labels;
    return result;
  }
  double elements = n * static_cast<double>(size);
  result.loss = sums[0] / elements;
  result.mse = sums[1] / elements;
  result.mae = sums[2] / elements;
  if (task == Task::Regress) {
    double r2 = 0;
    for (int64_t j = 0; j < size; ++j) {
      const double* column = &sums[3 + 3 * j];
      double total = column[1] - column[0] * column[0] / n;  // the sum of squares about the targets' mean
      // As sklearn: a constant target scores 1 when predicted exactly, else 0.
      r2 += total > 0 ? 1 - column[2] / total : column[2] == 0 ? 1 : 0;
    }
    result.r2 = r2 / static_cast<double>(size);
  }
  return result;
}

namespace {

// Holds out the last `fraction` of a seeded shuffle of `all` as the validation split (the rest stays in `all`).
Dataset splitValidation(Dataset& all, double fraction, uint64_t seed) {
  auto held = static_cast<int64_t>(std::floor(fraction * static_cast<double>(all.count)));
  auto emptyLike = [&](int64_t count) {  // no examples yet, the shape of `all`'s
    Dataset part;
    part.count = count;
    part.features = all.features;
    part.num_classes = all.num_classes;
    part.target_size = all.target_size;
    part.labels_per_example = all.labels_per_example;
    return part;
  };
  Dataset val = emptyLike(held);
  if (held == 0) return val;
  std::vector<int64_t> order = epochPermutation(all.count, seed, 0);  // epoch 0: the split, not a training epoch
  Dataset kept = emptyLike(all.count - held);
  kept.images = hugePageFloats(static_cast<size_t>(kept.count * all.features));
  val.images = hugePageFloats(static_cast<size_t>(held * all.features));
  int64_t size = all.target_size;
  for (int64_t i = 0; i < all.count; ++i) {
    Dataset& to = i < kept.count ? kept : val;
    int64_t example = order[i], row = i < kept.count ? i : i - kept.count;
    std::copy(all.images.begin() + example * all.features, all.images.begin() + (example + 1) * all.features,
              to.images.begin() + row * all.features);
    int64_t labels = all.labels_per_example;
    if (!all.labels.empty())
      to.labels.insert(to.labels.end(), all.labels.begin() + example * labels, all.labels.begin() + (example + 1) * labels);
    to.targets.insert(to.targets.end(), all.targets.begin() + example * size, all.targets.begin() + (example + 1) * size);
  }
  all = std::move(kept);
  return val;
}

// Early stopping on a validation metric: remembers the best epoch and its parameters.
struct BestEpoch {
  int64_t epoch = 0;
  double metric = 0;
  std::vector<Tensor> params;

  // True when `metric` improves on the best so far (lower loss, higher accuracy).
  bool improves(double value, bool higher_is_better) const {
    return epoch == 0 || (higher_is_better ? value > metric : value < metric);
  }
  void record(int64_t at, double value, const std::vector<Tensor>& current) {
    epoch = at;
    metric = value;
    params.clear();
    for (const Tensor& p : current) params.push_back(p.copy());
  }
};

// The name of a task's score in messages and metrics ("accuracy", "r2"), empty for none.
const char* scoreName(Task task) {
  switch (task) {
    case Task::Classify: return "accuracy";
    case Task::Regress: return "r2";
    case Task::Reconstruct: break;
  }
  return "";
}

// What evaluation measured on a split, as name-value pairs prefixed by the split ("test_loss", "test_accuracy").
std::vector<std::pair<std::string, double>> evalFields(const std::string& split, const EvalResult& r, Task task) {
  std::vector<std::pair<std::string, double>> fields = {{split + "_loss", r.loss}};
  if (task == Task::Classify) fields.push_back({split + "_accuracy", r.accuracy});
  if (task != Task::Classify) fields.push_back({split + "_mse", r.mse});
  if (task == Task::Regress) fields.insert(fields.end(), {{split + "_mae", r.mae}, {split + "_r2", r.r2}});
  return fields;
}

}  // namespace

std::string evalText(const std::string& split, const EvalResult& r, Task task) {
  std::string text;
  for (const auto& [name, value] : evalFields(split, r, task))
    text += (text.empty() ? "" : "  ") + name + fmt(task == Task::Classify ? " %.4f" : " %.4g", value);
  return text;
}

namespace {

nlohmann::json metricsRecord(const EpochPoint& point, const EvalResult& test, const EvalResult* val, Task task,
                             int64_t step, double lr, double seconds) {
  nlohmann::json record = {{"epoch", point.epoch}, {"step", step}, {"train_loss", point.train_loss}};
  if (*scoreName(task)) record[std::string("train_") + scoreName(task)] = point.train_score;
  for (const auto& [name, value] : evalFields("test", test, task)) record[name] = value;
  if (val)
    for (const auto& [name, value] : evalFields("val", *val, task)) record[name] = value;
  record["lr"] = lr;
  record["seconds"] = seconds;
  return record;
}

// The training state `options.resume` names, checked against this run: the step count only means the same
// position with the same seed, global batch size (ranks x --batch; so 2 ranks of 32 resume 1 process of 64) and
// training set.
ResumeState resumeRun(const ModelSpec& model, const TrainOptions& options, int64_t train_examples,
                      TrainState& state) {
  int64_t global_batch = options.batch * ranks().size;
  ResumeState resume = loadResumeState(model, options.resume, state.params, state.states);
  std::vector<std::string> problems;
  if (resume.seed != options.seed)
    problems.push_back("the saved run has seed " + std::to_string(resume.seed) + ", this one " +
                       std::to_string(options.seed) + " (--seed)");
  if (resume.batch != global_batch)
    problems.push_back("the saved run has batch " + std::to_string(resume.batch) + ", this one " +
                       std::to_string(global_batch) +
                       (ranks().distributed() ? " (" + std::to_string(ranks().size) + " ranks x --batch)" : " (--batch)"));
  if (resume.train_examples != train_examples)
    problems.push_back("the saved run trained on " + std::to_string(resume.train_examples) + " examples, this one on " +
                       std::to_string(train_examples) + " (--data, --validation-split)");
  if (problems.empty()) return resume;
  std::string message = options.resume + ": cannot resume with these settings:";
  for (const std::string& p : problems) message += "\n  " + p;
  throw DataError(message);
}

// Set by SIGINT and SIGTERM while a run trains; the step loop stops at the next step's end.
volatile std::sig_atomic_t interrupted = 0;

void onInterrupt(int signal) {
  if (interrupted) std::_Exit(128 + signal);  // a second signal: stop now (checkpoints are written atomically)
  interrupted = signal;
}

// Installs onInterrupt for the lifetime of a run, then restores the previous handlers.
class InterruptGuard {
 public:
  InterruptGuard() {
    interrupted = 0;
    previous_int_ = install(SIGINT);
    previous_term_ = install(SIGTERM);
  }
  ~InterruptGuard() {
    std::signal(SIGINT, previous_int_);
    std::signal(SIGTERM, previous_term_);
  }

 private:
  // A signal the process inherited as ignored (a background job's SIGINT) stays ignored.
  static void (*install(int signal))(int) {
    void (*previous)(int) = std::signal(signal, onInterrupt);
    if (previous == SIG_IGN) std::signal(signal, SIG_IGN);
    return previous;
  }

  void (*previous_int_)(int);
  void (*previous_term_)(int);
};

CurveNames curveNames(const ModelSpec& model) {
  Task task = modelTask(model);
  if (task == Task::Classify) return {};
  return {model.criterion, task == Task::Regress ? "R²" : ""};
}

void checkOutputPaths(const TrainOptions& options) {
  if (!options.save.empty()) {
    checkOutputPath("--save", options.save, OutputKind::Replaced);
    checkOutputPath("--save", resumePath(options.save), OutputKind::Replaced);
  }
  if (!options.plot.empty()) checkOutputPath("--plot", options.plot, OutputKind::Replaced);
  if (!options.metrics.empty()) checkOutputPath("--metrics", options.metrics, OutputKind::Appended);
}

}  // namespace

int train(const ModelSpec& model, const TrainOptions& given) {
  // Rank 0 of a data-parallel run alone prints, writes metrics and plots and saves; the others train in step.
  const Ranks& world = ranks();
  TrainOptions options = given;
  if (!world.leader()) {
    options.save.clear();
    options.metrics.clear();
    options.plot.clear();
  }
  quietUnlessLeader();
  checkOutputPaths(options);
  Task task = modelTask(model);
  if (model.inputs[0].is_integer && options.normalize != "none")
    throw DataError(std::string("model `") + model.name + "` takes token ids (input `" + model.inputs[0].name +
                    "` is i32): they cannot be normalized (normalize " + options.normalize + ")");
  Dataset train_set = loadSplit(options.data, Split::Train, dataRequest(model, options.label_column));
  Dataset test_set = loadSplit(options.data, Split::Test, dataRequest(model, options.label_column));
  checkDatasetFits(model, train_set, options.data + " (train)");
  checkDatasetFits(model, test_set, options.data + " (t10k)");
  Dataset val_set = splitValidation(train_set, options.validation_split, options.seed);
  // Fitted on the training split only, then applied to every split (and saved with the checkpoint).
  Normalization normalization = fitNormalization(options.normalize, train_set);
  for (Dataset* split : {&train_set, &val_set, &test_set})
    applyNormalization(normalization, split->images.data(), split->count, split->features);
  Augmentation augmentation = imageAugmentation(model, options.augment_flip, options.augment_shift, normalization);
  const std::map<std::string, std::string> checkpoint_metadata = {
      {"normalization", normalizationToJson(normalization)}};
  bool early_stopping = options.patience > 0;
  if (early_stopping && val_set.count == 0)
    throw DataError(options.validation_split > 0
                        ? "early stopping watches the validation split, but validation_split " +
                              std::to_string(options.validation_split) + " of " +
                              std::to_string(train_set.count + val_set.count) +
                              " training examples holds none: raise it or bring more data"
                        : "early stopping watches the validation split; set `validation_split` (or --validation-split)");

  TrainState state = allocateTrainState(model);
  ResumeState resume;
  if (!options.resume.empty()) resume = resumeRun(model, options, train_set.count, state);
  else if (options.init.empty()) initializeParams(model, options.seed, state.params);
  else loadCheckpoint(model, options.init, state.params);

  // --batch is per rank: a step takes one global batch of ranks x --batch rows (or the data set, when larger), and
  // each rank its slice of it.
  int64_t batch = std::min(options.batch * world.size, train_set.count);
  BatchPrefetcher prefetcher(model, train_set, std::min(options.batch, batch), augmentation.enabled() ? &augmentation : nullptr,
                             options.seed);
  int64_t steps_per_epoch = (train_set.count + batch - 1) / batch;
  int64_t total_steps = steps_per_epoch * options.epochs;  // the planned run; --max-steps may stop it earlier
  int64_t step = resume.step, completed_epochs = step / steps_per_epoch;
  bool stop = options.max_steps && step >= *options.max_steps;
  BestEpoch best{resume.best_epoch, resume.best_metric, std::move(resume.best_params)};
  std::vector<EpochPoint> history = std::move(resume.history);
  bool higher_is_better = options.monitor == "val_accuracy";
  // Saves the parameters and, beside them, the state to resume from (params and states as of `step`).
  bool saved = false;
  auto save = [&](std::vector<Tensor>& params, std::vector<Tensor>& states) {
    copyToHost(params);
    copyToHost(states);
    ResumeState now{step, options.seed, options.batch * world.size, train_set.count, best.epoch, best.metric,
                    best.params, history};
    saveResumeState(model, options.save, params, states, now);
    saveCheckpoint(model, options.save, params, completed_epochs, step, checkpoint_metadata);
    saved = true;
  };
  // Says where a signal stopped the run and how to continue it; the exit code.
  auto reportInterrupt = [&](int64_t at_step, int64_t in_epoch) {
    std::fprintf(stderr, "\ninterrupted (%s) after step %lld, in epoch %lld\n",
                 interrupted == SIGINT ? "SIGINT" : "SIGTERM", static_cast<long long>(at_step),
                 static_cast<long long>(in_epoch));
    if (!options.save.empty())
      std::fprintf(stderr, "saved %s and %s; continue with --resume %s\n", options.save.c_str(),
                   resumePath(options.save).c_str(), options.save.c_str());
    return kInterruptedExit;
  };
  if (completed_epochs >= options.epochs || stop)
    std::printf("the resumed run had already finished (step %lld, epoch %lld of %lld): nothing to train\n",
                static_cast<long long>(step), static_cast<long long>(completed_epochs),
                static_cast<long long>(options.epochs));
  InterruptGuard interrupt_guard;  // from here on a signal saves (before, there is nothing to lose)
  std::vector<ScalarArg> scalars;  // train_step's scalar arguments, refilled each step
  RankAverage rank_average(options.bucket_bytes);
  for (int64_t epoch = completed_epochs + 1; epoch <= options.epochs && !stop; ++epoch) {
    auto start = std::chrono::steady_clock::now();
    std::vector<int64_t> order =
        options.shuffle ? epochPermutation(train_set.count, options.seed, epoch) : identityOrder(train_set.count);
    int64_t first_step = step - (epoch - 1) * steps_per_epoch;  // > 0 only when resuming mid-epoch
    int64_t end_step = steps_per_epoch;
    if (options.max_steps) end_step = std::min(end_step, first_step + *options.max_steps - step);
    Progress progress(epoch, options.epochs, end_step - first_step, world.leader());
    double loss_sum = 0, lr = options.lr;
    int64_t seen = 0;
    auto rowsAt = [&](int64_t s) { return std::min(batch, train_set.count - s * batch); };
    // This rank's slice of step s's global batch: the rows split as evenly as they go.
    auto sliceStart = [&](int64_t s) { return rowsAt(s) * world.rank / world.size; };
    auto requestSlice = [&](int64_t s) {
      int64_t first = sliceStart(s), last = rowsAt(s) * (world.rank + 1) / world.size;
      prefetcher.request(static_cast<int>(s % 2), order, s * batch + first, last - first, epoch);
    };
    if (first_step < end_step) requestSlice(first_step);
    for (int64_t s = first_step; s < end_step; ++s) {
      auto [x, y] = prefetcher.take(static_cast<int>(s % 2));
      if (s + 1 < end_step) requestSlice(s + 1);
      int64_t rows = rowsAt(s);
      lr = scheduledLr(options.schedule, options.lr, step, epoch, total_steps);
      stepScalars(model, lr, step, options.seed, scalars, sliceStart(s));
      float loss = world.distributed() ? splitTrainStep(model, x, y, state, scalars, &rank_average)
                   : options.split_step ? splitTrainStep(model, x, y, state, scalars)
                                        : trainStep(model, x, y, state, scalars);
      if (!std::isfinite(loss)) {
        prefetcher.drain();
        // trainStep swapped the buffers: next_params hold the parameters before this step, the last good ones.
        std::fprintf(stderr,
                     "\nerror: the loss became %f at step %lld. Usual causes: a learning rate too high (try --lr %g), "
                     "inputs not normalized, or a log of 0 in the model.\n",
                     static_cast<double>(loss), static_cast<long long>(step + 1), options.lr / 10);
        if (!options.save.empty()) {
          save(state.next_params, state.next_states);
          std::fprintf(stderr, "saved the parameters before that step to %s\n", options.save.c_str());
        }
        return 1;
      }
      loss_sum += static_cast<double>(loss) * rows;
      seen += rows;
      ++step;
      progress.update(s + 1 - first_step, seen, loss_sum / static_cast<double>(seen));
      if (interrupted && s + 1 < end_step) {  // on an epoch's last step, the epoch ends first
        prefetcher.drain();
        progress.finish();
        if (!options.save.empty()) save(state.params, state.states);
        return reportInterrupt(step, epoch);
      }
      if (options.save_every && !options.save.empty() && step % options.save_every == 0 && s + 1 < end_step)
        save(state.params, state.states);  // mid-epoch; the epoch's end saves anyway
    }
    progress.finish();
    stop = options.max_steps && step >= *options.max_steps;
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EpochPoint point{epoch, seen ? loss_sum / static_cast<double>(seen) : 0, NAN, NAN, NAN, NAN};
    std::string train_text = fmt("train_loss %.4f", point.train_loss);
    if (task != Task::Reconstruct) {  // a reconstruction has no score; its training loss says how it does
      point.train_score = evaluate(model, state.params, train_set, 256).score();
      train_text += fmt("  train_%s %.4f", scoreName(task), point.train_score);
    }
    EvalResult test = evaluate(model, state.params, test_set, 256);
    point.test_loss = test.loss;
    point.test_score = test.score();
    std::string val_text;
    std::optional<EvalResult> val;
    if (val_set.count > 0) {
      val = evaluate(model, state.params, val_set, 256);
      point.val_loss = val->loss;
      point.val_score = val->score();
      val_text = " " + evalText("val", *val, task) + " ";
    }
    std::printf("epoch %lld: %s %s %s  lr %.4g  (%.1f s, %.0f img/s)\n", static_cast<long long>(epoch),
                train_text.c_str(), val_text.c_str(), evalText("test", test, task).c_str(), lr, seconds,
                static_cast<double>(seen) / seconds);
    std::fflush(stdout);
    if (step == epoch * steps_per_epoch) completed_epochs = epoch;  // a cut-short epoch is not counted
    history.push_back(point);
    if (!options.metrics.empty())
      appendMetrics(options.metrics, metricsRecord(point, test, val ? &*val : nullptr, task, step, lr, seconds));
    if (!options.plot.empty())
      writeFileAtomically(options.plot, renderTrainingSvg(model.name, history, curveNames(model)));
    if (early_stopping) {
      double metric = higher_is_better ? point.val_score : point.val_loss;
      if (best.improves(metric, higher_is_better)) {
        copyToHost(state.params);
        best.record(epoch, metric, state.params);
      }
      if (epoch - best.epoch >= options.patience) stop = true;
    }
    if (!options.save.empty()) save(state.params, state.states);  // every epoch, so a crash loses one at most
    if (interrupted) return reportInterrupt(step, epoch);
  }
  // A finished run resumed with a new --save: write its state there (before the best epoch replaces the params).
  if (!options.save.empty() && !saved) save(state.params, state.states);
  if (early_stopping && best.epoch > 0) {
    copyToHost(state.params);
    for (size_t i = 0; i < best.params.size(); ++i) state.params[i].copy_from(best.params[i]);
    std::printf("early stopping: best epoch %lld (%s %.4f); its parameters are kept\n",
                static_cast<long long>(best.epoch), options.monitor.c_str(), best.metric);
    if (!options.save.empty())  // the result; CKPT.resume keeps the last step's parameters to continue from
      saveCheckpoint(model, options.save, state.params, best.epoch, best.epoch * steps_per_epoch, checkpoint_metadata);
  }
  if (!options.save.empty()) std::printf("saved %s\n", options.save.c_str());
  if (interrupted) return reportInterrupt(step, completed_epochs);  // during the last evaluation: all is saved
  return 0;
}

}  // namespace nnc::rt
