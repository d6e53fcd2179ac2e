// The training state beside a checkpoint; see resume.h.
#include "runtime/resume.h"

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "runtime/errors.h"
#include "runtime/safetensors.h"

namespace nnc::rt {

namespace {

constexpr const char* kParamsPrefix = "params/";
constexpr const char* kBestPrefix = "best/";

NamedTensor named(const std::string& name, const Tensor& t, const std::vector<int64_t>& shape) {
  return {name, shape, std::vector<float>(t.data(), t.data() + t.number_of_elements())};
}

std::vector<int64_t> paramShape(const ModelSpec& model, int i) {
  return concreteShape(model.params[i].rank, model.params[i].shape, 1);
}

// JSON numbers cannot be NaN: absent metrics are null.
nlohmann::json number(double value) { return std::isnan(value) ? nlohmann::json() : nlohmann::json(value); }
double numberOr(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN;
}

// The scores are kept under "*_accuracy", the keys they had before models had other scores (R²).
std::string historyJson(const std::vector<EpochPoint>& history) {
  nlohmann::json points = nlohmann::json::array();
  for (const EpochPoint& p : history)
    points.push_back({{"epoch", p.epoch}, {"train_loss", number(p.train_loss)},
                      {"train_accuracy", number(p.train_score)}, {"test_loss", number(p.test_loss)},
                      {"test_accuracy", number(p.test_score)}, {"val_loss", number(p.val_loss)},
                      {"val_accuracy", number(p.val_score)}});
  return points.dump();
}

std::vector<EpochPoint> parseHistory(const std::string& text) {
  std::vector<EpochPoint> history;
  for (const nlohmann::json& j : nlohmann::json::parse(text)) {
    EpochPoint p;
    p.epoch = j.at("epoch").get<int64_t>();
    p.train_loss = numberOr(j, "train_loss");
    p.train_score = numberOr(j, "train_accuracy");
    p.test_loss = numberOr(j, "test_loss");
    p.test_score = numberOr(j, "test_accuracy");
    p.val_loss = numberOr(j, "val_loss");
    p.val_score = numberOr(j, "val_accuracy");
    history.push_back(p);
  }
  return history;
}

}  // namespace

std::string resumePath(const std::string& checkpoint) { return checkpoint + ".resume"; }

void saveResumeState(const ModelSpec& model, const std::string& checkpoint, const std::vector<Tensor>& params,
                     const std::vector<Tensor>& states, const ResumeState& state) {
  std::vector<NamedTensor> tensors;
  for (int i = 0; i < model.num_params; ++i)
    tensors.push_back(named(kParamsPrefix + std::string(model.params[i].name), params[i], paramShape(model, i)));
  for (int i = 0; i < model.num_states; ++i)
    tensors.push_back(named(model.states[i].name, states[i], paramShape(model, model.states[i].param)));
  for (size_t i = 0; i < state.best_params.size(); ++i)
    tensors.push_back(named(kBestPrefix + std::string(model.params[i].name), state.best_params[i],
                            paramShape(model, static_cast<int>(i))));
  char metric[32];
  std::snprintf(metric, sizeof metric, "%.17g", state.best_metric);
  writeSafetensors(resumePath(checkpoint), tensors,
                   {{"model", model.name},
                    {"step", std::to_string(state.step)},
                    {"seed", std::to_string(state.seed)},
                    {"batch", std::to_string(state.batch)},
                    {"train_examples", std::to_string(state.train_examples)},
                    {"best_epoch", std::to_string(state.best_epoch)},
                    {"best_metric", metric},
                    {"history", historyJson(state.history)}});
}

ResumeState loadResumeState(const ModelSpec& model, const std::string& checkpoint, std::vector<Tensor>& params,
                            std::vector<Tensor>& states) {
  const std::string path = resumePath(checkpoint);
  std::map<std::string, std::string> meta = readSafetensorsMetadata(path);
  std::map<std::string, NamedTensor> tensors;
  for (NamedTensor& t : readSafetensors(path)) tensors[t.name] = std::move(t);
  std::vector<std::string> problems;
  auto field = [&](const char* key) -> std::string {
    auto it = meta.find(key);
    if (it != meta.end()) return it->second;
    problems.push_back(std::string("no `") + key + "` in its metadata");
    return "0";
  };
  ResumeState state;
  try {
    if (field("model") != model.name && meta.count("model"))
      problems.push_back("it is of model `" + meta["model"] + "`, not `" + model.name + "`");
    state.step = std::stoll(field("step"));
    state.seed = std::stoull(field("seed"));
    state.batch = std::stoll(field("batch"));
    state.train_examples = std::stoll(field("train_examples"));
    state.best_epoch = std::stoll(field("best_epoch"));
    state.best_metric = std::stod(field("best_metric"));
    state.history = parseHistory(field("history"));
  } catch (const std::exception& e) {
    throw DataError(path + ": malformed metadata (" + e.what() + ")");
  }
  auto take = [&](const std::string& name, const std::vector<int64_t>& shape, Tensor& into) {
    auto it = tensors.find(name);
    if (it == tensors.end()) return problems.push_back("no tensor `" + name + "`");
    if (it->second.shape != shape)
      problems.push_back("tensor `" + name + "` has shape " + shapeString(it->second.shape) + ", expected " +
                         shapeString(shape));
    else
      std::copy(it->second.data.begin(), it->second.data.end(), into.data());
    tensors.erase(it);
  };
  for (int i = 0; i < model.num_params; ++i)
    take(kParamsPrefix + std::string(model.params[i].name), paramShape(model, i), params[i]);
  for (int i = 0; i < model.num_states; ++i) take(model.states[i].name, paramShape(model, model.states[i].param), states[i]);
  if (state.best_epoch > 0) {
    state.best_params = allocateParams(model);
    for (int i = 0; i < model.num_params; ++i)
      take(kBestPrefix + std::string(model.params[i].name), paramShape(model, i), state.best_params[i]);
  }
  for (const auto& [name, _] : tensors) problems.push_back("tensor `" + name + "` is not part of the training state");
  if (problems.empty()) return state;
  std::string message = path + ": cannot resume from this training state:";
  for (const std::string& p : problems) message += "\n  " + p;
  throw DataError(message);
}

}  // namespace nnc::rt
