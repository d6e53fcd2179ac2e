// The link step: generate model.cpp (the ModelSpec the runtime reads) and link the trainer executable.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include <cstdlib>
#include <stdexcept>

#include "compiler/aot/aot.h"
#include "compiler/aot/generated_source.h"
#include "compiler/config.h"
#include "compiler/onnx/onnx_export.h"
#include "compiler/plan/plan.h"

namespace nnc {

namespace {

const char* initKindName(InitKind kind) {
  switch (kind) {
    case InitKind::Zeros: return "Zeros";
    case InitKind::Ones: return "Ones";
    case InitKind::Constant: return "Constant";
    case InitKind::XavierNormal: return "XavierNormal";
    case InitKind::HeUniform: return "HeUniform";
    case InitKind::Uniform: return "Uniform";
    case InitKind::Normal: return "Normal";
    case InitKind::XavierUniform: return "XavierUniform";
    case InitKind::HeNormal: return "HeNormal";
  }
  return "Zeros";
}

// An entry point's name in the generated tables: "TrainStep" for train_step.
std::string planId(const EntryPoint& entry) {
  std::string id;
  bool upper = true;
  for (char c : entry.name) {
    if (c == '_') {
      upper = true;
      continue;
    }
    id += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return id;
}

// The most elements per example of any tensor with the batch dimension (forward, backward and update).
int64_t maxElementsPerExample(const Graph& g) {
  int64_t most = 0;
  for (const Node& node : g.nodes)
    if (isBatched(node.shape)) most = std::max(most, elementCount(node.shape, 1));
  return most;
}

// Bytes as a C string literal of octal escapes, 32 bytes a line.
std::string cBytes(const std::string& bytes) {
  if (bytes.empty()) return "\"\"";
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i % 32 == 0) out += i ? "\"\n    \"" : "\"";
    out += fmt::format("\\{:03o}", static_cast<unsigned char>(bytes[i]));
  }
  return out + "\"";
}

// The ONNX form of the eval-mode graph (ModelSpec::onnx), or why the model has none.
std::string onnxSource(const Program& program) {
  onnx_export::SerializedGraph onnx = onnx_export::serializeEvalGraph(program);
  std::string out;
  if (onnx.error.empty())
    out += fmt::format("const int kOnnxParams[] = {{{}}};\n",
                       onnx.params.empty() ? "0" : fmt::format("{}", fmt::join(onnx.params, ", ")));
  out += fmt::format(
      "const OnnxGraph kOnnx = {{{},\n    {}, {},\n    {{{},\n     {}}},\n    {{{}, {}}},\n    {}, {},\n"
      "    {{{}, {}}}, {}, {}}};\n",
      cString(onnx.error), cBytes(onnx.model_head), onnx.model_head.size(), cBytes(onnx.graph[0]), cBytes(onnx.graph[1]),
      onnx.graph[0].size(), onnx.graph[1].size(), cBytes(onnx.constants), onnx.constants.size(),
      cString(onnx.normalization[0]), cString(onnx.normalization[1]), onnx.error.empty() ? "kOnnxParams" : "nullptr",
      onnx.params.size());
  return out;
}

}  // namespace

std::string cString(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string rankAndShape(const Shape& shape) {
  std::vector<std::string> dims;
  for (const Dim& dim : shape) dims.push_back(dim.isSymbolic() ? "kBatchDim" : std::to_string(dim.extent));
  return fmt::format("{}, {{{}}}", shape.size(), fmt::join(dims, ", "));
}

std::string shellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string planSource(const Program& program, const ProgramPlan& plan, const EntryPlan& entry, const std::string& id,
                       bool profiled) {
  const Graph& g = program.graph;
  size_t entry_args = entry.entry->arguments.size() + entry.entry->outputs.size();
  std::vector<int> value_ids;
  std::string buffers, calls, out;
  int intermediates = 0;
  for (const PlanValue& value : entry.values) {
    if (value.kind == PlanValue::Kind::Argument) value_ids.push_back(static_cast<int>(value.index));
    else if (value.kind == PlanValue::Kind::Result) value_ids.push_back(static_cast<int>(entry.entry->arguments.size() + value.index));
    else {
      value_ids.push_back(static_cast<int>(entry_args) + intermediates++);
      buffers += fmt::format("    {{{}, {}, {}, {}}},\n", g.node(value.node).dtype == DType::I32 ? "true" : "false",
                             rankAndShape(g.node(value.node).shape), value.batched, value.offset);
    }
  }
  for (size_t c = 0; c < entry.calls.size(); ++c) {
    std::vector<int> args;
    for (size_t v : entry.calls[c].values) args.push_back(value_ids[v]);
    const std::string& kernel = plan.kernels[entry.calls[c].kernel].name;
    out += fmt::format("const int k{}Call{}[] = {{{}}};\n", id, c, fmt::join(args, ", "));
    calls += fmt::format("    {{{}_argv, \"{}\", {}, {}, k{}Call{}}},\n", kernel, kernel, cString(entry.calls[c].computes),
                         args.size(), id, c);
  }
  int batch_arg = -1, batch_dim = 0;
  for (size_t i = 0; i < entry.entry->arguments.size() && batch_arg < 0; ++i) {
    const Shape& shape = g.node(entry.entry->arguments[i]).shape;
    for (size_t d = 0; d < shape.size(); ++d)
      if (shape[d].isSymbolic()) {
        batch_arg = static_cast<int>(i);
        batch_dim = static_cast<int>(shape.size() - 1 - d);
      }
  }
  if (intermediates) out += fmt::format("const PlanBufferSpec k{}Buffers[] = {{\n{}}};\n", id, buffers);
  out += fmt::format("const PlanCallSpec k{}Calls[] = {{\n{}}};\n", id, calls);
  out += fmt::format("const PlanSpec k{}Plan = {{{}, {}, {}, {}, {}, {}, k{}Calls, {}, {}, {}, {}}};\n", id,
                     cString(entry.entry->name), profiled, entry_args,
                     intermediates, intermediates ? fmt::format("k{}Buffers", id) : "nullptr", entry.calls.size(), id,
                     batch_arg, batch_dim, entry.arena.batched, entry.arena.fixed);
  return out;
}

std::string cpuFeaturesSource(const Target& target) {
  std::vector<std::string> features;
  for (const std::string& feature : target.cpu_features) features.push_back(cString(feature));
  return fmt::format("const char* const kCpuFeatures[] = {{{}}};\n", fmt::join(features, ", "));
}

int64_t tokenIdsBelow(const Graph& g) {
  std::vector<bool> from_features(g.nodes.size(), false);
  from_features[g.inputs[0].node] = g.node(g.inputs[0].node).dtype == DType::I32;
  int64_t below = 0;
  for (NodeId id = 0; id < static_cast<NodeId>(g.nodes.size()); ++id) {
    const Node& node = g.node(id);
    for (NodeId in : node.inputs) from_features[id] = from_features[id] || from_features[in];
    if (node.op == Op::Gather && from_features[node.inputs[1]]) {
      int64_t rows = g.node(node.inputs[0]).shape[0].extent;
      below = below == 0 ? rows : std::min(below, rows);
    }
  }
  return below;
}

std::string emitModelSource(const Program& program, const Target& target, const ProgramPlan* plan, bool profiled) {
  const Graph& g = program.graph;
  std::string params, states, inputs;
  for (const ParamInfo& p : g.params)
    params += fmt::format("    {{{}, {}, InitKind::{}, {:.17g}, {:.17g}, {}, {}}},\n", cString(p.name),
                          rankAndShape(g.node(p.node).shape), initKindName(p.init.kind), p.init.a, p.init.b,
                          p.trainable, p.is_integer);
  for (const StateInfo& s : program.states) states += fmt::format("    {{{}, {}}},\n", cString(s.name), s.param);
  for (const InputInfo& in : g.inputs)
    inputs += fmt::format("    {{{}, {}, {}}},\n", cString(in.name), g.node(in.node).dtype == DType::I32 ? "true" : "false",
                          rankAndShape(g.node(in.node).shape));
  const dsl::TrainConfig& t = program.train;
  std::string out = "// Generated by nnc: the description of model `" + g.model_name + "` for the trainer runtime.\n";
  out += "#include \"runtime/model_spec.h\"\n";
  if (plan) out += "#include \"runtime/plan.h\"\n";
  out += "\n";
  for (const EntryPoint* entry : program.entryPoints())
    out += fmt::format("extern \"C\" int {}_argv(void**);\n", entry->name);
  if (plan)
    for (const PlanKernel& kernel : plan->kernels) out += fmt::format("extern \"C\" int {}_argv(void**);\n", kernel.name);
  out += "\nnamespace nnc::rt {\nnamespace {\n";
  if (plan)
    for (const EntryPlan& entry : plan->entries) out += planSource(program, *plan, entry, planId(*entry.entry), profiled);
  out += fmt::format("const ParamSpec kParams[] = {{\n{}}};\n", params);
  if (!states.empty()) out += fmt::format("const StateSpec kStates[] = {{\n{}}};\n", states);
  out += fmt::format("const InputSpec kInputs[] = {{\n{}}};\n", inputs);
  std::vector<std::string> scalars = {cString(g.node(program.learning_rate).name)};
  for (NodeId id : program.step_scalars) scalars.push_back(cString(g.node(id).name));
  out += fmt::format("const char* const kScalars[] = {{{}}};\n", fmt::join(scalars, ", "));
  out += cpuFeaturesSource(target);
  out += onnxSource(program);
  out += "}  // namespace\n\n";
  const dsl::LrScheduleConfig& lr = t.lr_schedule;
  std::string defaults = fmt::format(
      "{{{}, {}, {}, {}, {}, {:.17g}, {:.17g}, {}, {:.17g}, {:.17g}, {:.17g},\n     {{{}, {:.17g}, {:.17g}, {}, {}}}, "
      "{:.17g}, {}, {},\n     {}, {}, {:.17g}, {}}}",
      cString(t.data), t.batch, t.epochs, t.seed, cString(t.optimizer.name), t.optimizer.lr, t.optimizer.momentum,
      t.optimizer.nesterov, t.optimizer.weight_decay, t.optimizer.beta1, t.optimizer.beta2, cString(lr.name), lr.k,
      lr.factor, lr.every, lr.per_epoch,
      t.validation_split, t.early_stopping.patience, cString(t.early_stopping.monitor), cString(t.label_column),
      cString(t.normalize), t.augment_flip, t.augment_shift);
  out += fmt::format(
      "extern const ModelSpec kModel = {{\n    {}, {}, {}, kCpuFeatures, {},\n    kParams, {}, {}, {},\n    kInputs, {},\n    {},\n"
      "    {},\n    kScalars, {},\n    train_step_argv, grads_argv, predict_argv,\n    {},\n    update_argv,\n    {}, {},\n"
      "    {}, {},\n    {},\n    kOnnx,\n}};\n\n",
      cString(g.model_name), cString(target.halide), cString(target.name), target.cpu_features.size(), g.params.size(), states.empty() ? "nullptr" : "kStates",
      program.states.size(), g.inputs.size(), rankAndShape(g.node(g.output).shape), defaults,
      program.step_scalars.size() + 1, maxElementsPerExample(g), cString(taskName(g.task)),
      cString(g.criterion == kNoNode ? "" : opInfo(g.node(g.criterion).op).name),
      program.sample.name.empty() ? "nullptr" : "sample_argv",
      rankAndShape(g.latent == kNoNode ? Shape{} : g.node(g.latent).shape), tokenIdsBelow(g));
  out += "}  // namespace nnc::rt\n\n";
  if (plan)
    for (const EntryPlan& entry : plan->entries)
      out += fmt::format("extern \"C\" int {}_argv(void** args) {{ return nnc::rt::runPlan(nnc::rt::k{}Plan, args); }}\n",
                         entry.entry->name, planId(*entry.entry));
  out += "int main(int argc, char** argv) { return nnc::rt::runTrainer(nnc::rt::kModel, argc, argv); }\n";
  return out;
}

std::string compileCommand(const std::string& flags) {
  return fmt::format("{} -std=c++20 -O2 {} -I{}", NNC_CXX, flags, shellQuote(NNC_SOURCE_DIR));
}

void runCommand(const std::string& command, const std::string& what) {
  if (std::system(command.c_str()) != 0) throw std::runtime_error(what + " failed: " + command);
}

void linkTrainer(const std::string& model_source_path, const std::vector<std::string>& objects,
                 const std::string& output) {
  std::string command = fmt::format("{} -o {} {}", compileCommand(""), shellQuote(output), shellQuote(model_source_path));
  for (const std::string& object : objects) command.append(" ").append(shellQuote(object));
  command += fmt::format(" {} -lbenchmark -lz -ldl -lpthread", shellQuote(NNC_RUNTIME_LIB));  // benchmark: `bench`
  runCommand(command, "linking the trainer");
}

}  // namespace nnc
