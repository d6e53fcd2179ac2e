// nnc: the compiler driver. Each command runs the pipeline up to the stage it needs:
//
//   source -> tokens -> AST -> checked AST -> forward graph -> + backward graph and update -> Halide -> trainer
//
//   nnc build FILE.nn -o OUT [--target=TARGET] [--single-pipeline]   compile a trainer executable (a plan of
//                                                        kernels, each cached by content)
//   nnc build FILE.nn --emit=library --weights CKPT -o OUT   an inference library OUT.a and its C header OUT.h
//   nnc check FILE.nn [--json]    diagnostics, then a model summary (parameters, FLOPs, activation memory, target)
//   nnc graph FILE.nn [--backward] [--dot]
//   nnc emit --stage=tokens|ast|graph|backward|plan|stmt|assembly [--entry=train_step|grads|predict|update|sample|KERNEL]
//            FILE.nn
//   nnc import MODEL.onnx -o MODEL.nn [--weights CKPT] [--loss cross_entropy|mse] [--new-batch-axis]
//
// Exit codes: 0 success, 1 user error (diagnostics printed), 2 internal error (a bug in nnc).
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <memory>
#include <map>
#include <optional>

#include <unistd.h>

#include "compiler/aot/aot.h"
#include "compiler/compilation.h"
#include "compiler/graph/graph_printer.h"
#include "compiler/aot/kernel_cache.h"
#include "compiler/aot/library.h"
#include "compiler/plan/plan.h"
#include "compiler/graph/summary.h"
#include "compiler/onnx/onnx_import.h"
#include "compiler/target.h"
#include "dsl/ast_printer.h"
#include "dsl/lexer.h"
#include "runtime/errors.h"
#include "runtime/output_path.h"
#include "runtime/safetensors.h"

namespace {

constexpr int kUserError = 1;
constexpr int kInternalError = 2;

struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Each command's usage, then what POLICY and TARGET may be.
const std::map<std::string, std::string> kCommandUsage = {
    {"build",
     "usage: nnc build FILE.nn -o OUT [--target=TARGET] [--single-pipeline] [--keep-temps] [--profile]\n"
     "                [--no-cache] [--schedule=POLICY] [--error-limit=N]\n"
     "       nnc build FILE.nn --emit=library --weights CKPT -o OUT [--target=TARGET] [--keep-temps] [--no-cache]\n"
     "                [--schedule=POLICY]     an inference library: OUT.a and its C header OUT.h\n"},
    {"check", "usage: nnc check FILE.nn [--json] [--target=TARGET] [--error-limit=N]\n"},
    {"graph", "usage: nnc graph FILE.nn [--backward] [--dot] [--error-limit=N]\n"},
    {"emit",
     "usage: nnc emit --stage=tokens|ast|graph|backward|plan|stmt|assembly\n"
     "                [--entry=train_step|grads|predict|update|sample|KERNEL] [--schedule=POLICY] [--target=TARGET]\n"
     "                [--error-limit=N] FILE.nn\n"},
    {"import", "usage: nnc import MODEL.onnx -o MODEL.nn [--weights CKPT] [--loss cross_entropy|mse] [--new-batch-axis]\n"},
};
const char* kValues =
    "POLICY: manual (nnc's, the default), naive, li2018, adams2019 or mullapudi2016 (Halide's autoschedulers)\n"
    "TARGET: host (this machine's CPU, the default), x86-64, x86-64-v2, x86-64-v3 (AVX2), x86-64-v4 (AVX-512)\n"
    "        cuda (NVIDIA GPUs, sm_80), opencl (any OpenCL device, PoCL included), either after a CPU level\n"
    "        (x86-64-v3-cuda), or a Halide target string (x86-64-linux-avx-avx2-f16c-fma-sse41, host-profile, ...)\n";

// The usage of `command`, or of every command when it is none of them.
std::string usageOf(const std::string& command) {
  auto it = kCommandUsage.find(command);
  if (it != kCommandUsage.end()) return it->second + (command == "graph" || command == "import" ? "" : kValues);
  std::string all;
  for (const char* name : {"build", "check", "graph", "emit", "import"}) all += kCommandUsage.at(name);
  return all + kValues;
}

struct Options {
  std::string command, input, output, stage, entry = "train_step";
  std::string emit = "trainer";           // build --emit=trainer|library
  std::string weights;  // build --emit=library: the checkpoint it embeds; import: the one it writes (default: OUT with .safetensors)
  nnc::onnx_import::ImportOptions onnx;   // import: --loss, --new-batch-axis
  bool backward = false, dot = false, keep_temps = false, json = false, no_cache = false;
  bool plan = true;  // each entry point a plan of kernels; --single-pipeline: one pipeline each
  bool help = false;  // --help (of a command, or of nnc), --version
  size_t error_limit = 20;  // diagnostics shown; 0: all
  nnc::KernelOptions kernels;
};

size_t errorLimit(const std::string& text, const std::string& command) {
  size_t end = 0;
  unsigned long value = 0;
  try {
    value = std::stoul(text, &end);
  } catch (const std::exception&) {
    end = 0;
  }
  if (end == 0 || end != text.size() || text[0] == '-')
    throw UserError(fmt::format("nnc: `--error-limit` needs a count (0: no limit), got `{}`\n{}", text,
                                usageOf(command)));
  return value;
}

Options parseOptions(int argc, char** argv) {
  Options options;
  options.command = argc < 2 ? "" : argv[1];
  if (argc < 2) throw UserError("nnc: no command given\n" + usageOf(""));
  if (options.command == "--help" || options.command == "-h" || options.command == "help" ||
      options.command == "--version") {
    options.help = true;
    return options;
  }
  std::string target = "host";
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      options.help = true;
      return options;
    }
    if (arg == "-o" && i + 1 < argc) options.output = argv[++i];
    else if (arg == "--weights" && i + 1 < argc) options.weights = argv[++i];
    else if (arg == "--loss" && i + 1 < argc) options.onnx.loss = argv[++i];
    else if (arg == "--new-batch-axis") options.onnx.new_batch_axis = true;
    else if (arg == "--backward") options.backward = true;
    else if (arg == "--dot") options.dot = true;
    else if (arg == "--keep-temps") options.keep_temps = true;
    else if (arg == "--profile") options.kernels.profile = true;
    else if (arg == "--no-cache") options.no_cache = true;
    else if (arg == "--plan") options.plan = true;  // the default since plans became as fast
    else if (arg == "--single-pipeline") options.plan = false;
    else if (arg == "--json") options.json = true;
    else if (arg.rfind("--error-limit=", 0) == 0) options.error_limit = errorLimit(arg.substr(14), options.command);
    else if (arg.rfind("--stage=", 0) == 0) options.stage = arg.substr(8);
    else if (arg.rfind("--emit=", 0) == 0) options.emit = arg.substr(7);
    else if (arg.rfind("--weights=", 0) == 0) options.weights = arg.substr(10);
    else if (arg.rfind("--entry=", 0) == 0) options.entry = arg.substr(8);
    else if (arg.rfind("--target=", 0) == 0) target = arg.substr(9);
    else if (arg == "--target" && i + 1 < argc) target = argv[++i];
    else if (arg.rfind("--schedule=", 0) == 0) {
      std::optional<nnc::SchedulePolicy> policy = nnc::parseSchedulePolicy(arg.substr(11));
      if (!policy) throw UserError(fmt::format("nnc: unknown schedule policy `{}`\n{}", arg.substr(11), usageOf(options.command)));
      options.kernels.schedule = *policy;
    }
    else if (!arg.empty() && arg[0] != '-' && options.input.empty()) options.input = arg;
    else throw UserError(fmt::format("nnc: unknown argument `{}`\n{}", arg, usageOf(options.command)));
  }
  if (options.input.empty()) throw UserError(fmt::format("nnc: no model file given\n{}", usageOf(options.command)));
  try {
    options.kernels.target = nnc::parseTarget(target);
  } catch (const nnc::TargetError& e) {
    throw UserError(fmt::format("nnc: error: {}", e.what()));
  }
  if (!options.kernels.target.gpuApi().empty() && options.kernels.schedule != nnc::SchedulePolicy::Manual)
    throw UserError(fmt::format("nnc: error: --schedule={} is for CPU targets; {} kernels have nnc's GPU schedule",
                                nnc::schedulePolicyName(options.kernels.schedule), options.kernels.target.gpuApi()));
  return options;
}

// Runs the front end through `last`; prints its diagnostics and stops with exit code 1 on errors.
std::unique_ptr<nnc::Compilation> runFrontEnd(const Options& options, nnc::Stage last = nnc::Stage::Graph) {
  std::optional<nnc::dsl::SourceFile> source;
  try {
    source = nnc::dsl::SourceFile::read(options.input);
  } catch (const std::runtime_error& e) {
    throw UserError(fmt::format("nnc: error: {}", e.what()));
  }
  std::unique_ptr<nnc::Compilation> c = nnc::compileFrontEnd(std::move(*source), last, options.error_limit);
  std::cerr << c->diags->render();
  if (c->diags->hasErrors()) throw UserError("");
  return c;
}

// An entry point by name, or a kernel of their plans (as `nnc emit --stage=plan` names it).
nnc::EntryPoint selectEntry(const nnc::Program& program, const Options& options) {
  for (const nnc::EntryPoint* entry : program.entryPoints())
    if (entry->name == options.entry) return *entry;
  for (const nnc::PlanKernel& kernel :
       nnc::planProgram(program, options.kernels.target, options.kernels.schedule).kernels)
    if (kernel.name == options.entry) return kernel.entry;
  throw UserError(fmt::format("nnc: unknown entry point `{}`; expected train_step, grads, predict, update, sample (a model with "
                              "a latent code) or a kernel that "
                              "`nnc emit --stage=plan` lists",
                              options.entry));
}

int emit(const Options& options) {
  if (options.stage == "tokens" || options.stage == "ast") {
    auto c = runFrontEnd(options, options.stage == "tokens" ? nnc::Stage::Tokens : nnc::Stage::Ast);
    std::cout << (options.stage == "tokens" ? nnc::dsl::printTokens(*c->source, c->tokens)
                                            : nnc::dsl::printAst(c->module, *c->source));
    return 0;
  }
  auto c = runFrontEnd(options);
  if (options.stage == "graph") {
    std::cout << nnc::printForwardGraph(*c->graph);
    return 0;
  }
  nnc::Program program = nnc::buildProgram(std::move(*c->graph), c->checked->train);
  if (options.stage == "backward") std::cout << nnc::printBackwardGraph(program);
  else if (options.stage == "plan")
    std::cout << nnc::printPlan(program, nnc::planProgram(program, options.kernels.target, options.kernels.schedule));
  else if (options.stage == "stmt" || options.stage == "assembly")
    std::cout << nnc::emitEntryText(program, selectEntry(program, options), options.stage, options.kernels);
  else throw UserError(fmt::format("nnc: unknown stage `{}`\n{}", options.stage, usageOf(options.command)));
  return 0;
}

// The options of `build --emit=...`, checked before any work.
void checkEmitOptions(const Options& options) {
  if (options.emit != "trainer" && options.emit != "library")
    throw UserError(fmt::format("nnc: error: unknown --emit value `{}`; expected trainer (the default) or library\n{}",
                                options.emit, usageOf(options.command)));
  bool library = options.emit == "library";
  if (library && options.weights.empty())
    throw UserError("nnc: error: --emit=library needs --weights CKPT: the library embeds a trained checkpoint");
  if (!library && !options.weights.empty())
    throw UserError("nnc: error: --weights is for --emit=library (a trainer takes its checkpoint at run time: "
                    "TRAINER predict --weights CKPT)");
  if (!library) return;
  const char* refused = !options.plan ? "--single-pipeline" : options.kernels.profile ? "--profile"
                        : !options.kernels.target.gpuApi().empty() ? "a GPU target" : nullptr;
  if (refused)
    throw UserError(fmt::format("nnc: error: --emit=library takes no {}: a library runs predict's plan of kernels on "
                                "the CPU", refused));
}

// Runs `work`: a DataError (a file that cannot be read or written) is the user's (exit 1).
template <typename Work>
auto withDataErrors(Work work) -> decltype(work()) {
  try {
    return work();
  } catch (const nnc::rt::DataError& e) {
    throw UserError(fmt::format("nnc: error: {}", e.what()));
  }
}

// The output paths of a build, checked before any work: a directory, a missing or read-only one.
void checkBuildOutputs(const Options& options) {
  withDataErrors([&] {
    if (options.emit != "library") return nnc::rt::checkOutputPath("-o", options.output, nnc::rt::OutputKind::Replaced);
    nnc::LibraryPaths paths = nnc::libraryPaths(options.output);
    nnc::rt::checkOutputPath("-o", paths.archive, nnc::rt::OutputKind::Replaced);
    nnc::rt::checkOutputPath("-o", paths.header, nnc::rt::OutputKind::Replaced);
  });
}

// Runs `compile` (planning and compiling kernels: Halide lowers, schedules and compiles them): a failure of one of
// Halide's autoschedulers is the user's to work around (exit 1), one of nnc's own schedules a bug (exit 2).
template <typename Compile>
auto withScheduleErrors(const Options& options, Compile compile) -> decltype(compile()) {
  try {
    return compile();
  } catch (const std::runtime_error& e) {
    if (options.kernels.schedule == nnc::SchedulePolicy::Manual || options.kernels.schedule == nnc::SchedulePolicy::Naive)
      throw;
    throw UserError(fmt::format("nnc: error: the kernels Halide's {} autoscheduler scheduled do not compile with "
                                "Halide 14: {}\nnnc: --schedule=manual (the default) builds this model",
                                nnc::schedulePolicyName(options.kernels.schedule), e.what()));
  }
}

// `build --emit=library`: predict's kernels (from the cache), the checkpoint's weights, the archive and header.
int buildLibrary(const Options& options, const nnc::Program& program, const std::string& dir,
                 const std::optional<std::string>& cache, std::chrono::steady_clock::time_point start) {
  nnc::LibraryWeights weights = withDataErrors([&] { return nnc::readLibraryWeights(program, options.weights); });
  const nnc::Target& target = options.kernels.target;
  nnc::ProgramPlan plan;
  size_t compiled = 0;
  std::vector<std::string> objects = withScheduleErrors(options, [&] {
    plan = nnc::planPredict(program, target, options.kernels.schedule);  // schedules the entry whole
    return nnc::planObjects(program, plan, dir, options.kernels, cache, compiled);
  });
  nnc::LibraryPaths paths = nnc::libraryPaths(options.output);
  withDataErrors([&] { nnc::buildLibrary(program, plan, target, objects, weights, options.input, dir, paths); });
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << fmt::format("nnc: built {} and {} (model `{}`, predict's {} kernels, weights of {}) for {} in {:.1f} s{}\n",
                           paths.archive, paths.header, program.graph.model_name, plan.kernels.size(), options.weights,
                           target.describe(), seconds,
                           compiled ? fmt::format(", {} of {} kernels compiled", compiled, plan.kernels.size() + 1)
                                    : ", kernels from the cache");
  return 0;
}

int build(const Options& options) {
  if (options.output.empty()) throw UserError(fmt::format("nnc: `build` needs `-o OUT`\n{}", usageOf(options.command)));
  checkEmitOptions(options);
  checkBuildOutputs(options);
  auto start = std::chrono::steady_clock::now();
  auto c = runFrontEnd(options);
  nnc::Program program = nnc::buildProgram(std::move(*c->graph), c->checked->train);
  // A relative `data` is relative to the model file, wherever the trainer runs (examples/xor.nn: "data/xor").
  if (!program.train.data.empty() && std::filesystem::path(program.train.data).is_relative())
    program.train.data = std::filesystem::absolute(std::filesystem::path(options.input).parent_path() /
                                                   program.train.data).lexically_normal().string();
  std::filesystem::path dir = std::filesystem::temp_directory_path() / fmt::format("nnc-build-{}", getpid());
  std::filesystem::create_directories(dir);
  // Removes the intermediate files however the build ends, unless the user asked to keep them.
  std::unique_ptr<void, std::function<void(void*)>> cleanup(&dir, [&](void*) {
    if (options.keep_temps) std::cerr << fmt::format("nnc: kept intermediate files in {}\n", dir.string());
    else std::filesystem::remove_all(dir);
  });
  const nnc::Target& target = options.kernels.target;
  std::optional<std::string> cache = options.no_cache ? std::nullopt : nnc::kernelCacheDir();
  if (options.emit == "library") return buildLibrary(options, program, dir, cache, start);
  std::string key = nnc::kernelCacheKey(program, target.halide, options.kernels);
  std::optional<nnc::ProgramPlan> plan;
  size_t compiled = 0;
  std::optional<std::vector<std::string>> objects;
  withScheduleErrors(options, [&] {
    if (options.plan) {
      plan = nnc::planProgram(program, target, options.kernels.schedule);
      objects = nnc::planObjects(program, *plan, dir, options.kernels, cache, compiled);
    } else if (!(objects = cache ? nnc::lookupKernels(*cache, key) : std::nullopt)) {
      objects = nnc::compileKernels(program, dir, options.kernels);
      compiled = 1;
      if (cache) objects = nnc::storeKernels(*cache, key, *objects);
    }
  });
  bool cached = compiled == 0;
  std::string model_source = dir / "model.cpp";
  std::ofstream(model_source) << nnc::emitModelSource(program, target, plan ? &*plan : nullptr, options.kernels.profile);
  nnc::linkTrainer(model_source, *objects, options.output);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int64_t parameters = 0, tensors = 0, buffers = 0;
  for (const nnc::ParamInfo& param : program.graph.params) {
    if (!param.trainable) {
      ++buffers;
      continue;
    }
    ++tensors;
    parameters += nnc::elementCount(program.graph.node(param.node).shape, 1);
  }
  std::cerr << fmt::format("nnc: built {} ({} parameters in {} tensors{}) for {} in {:.1f} s{}\n", options.output,
                           parameters, tensors, buffers ? fmt::format(", {} buffers", buffers) : "", target.describe(),
                           seconds, cached ? ", kernels from the cache"
                                           : plan ? fmt::format(", {} of {} kernels compiled", compiled, plan->kernels.size() + 1)
                                                  : "");
  return 0;
}

int check(const Options& options) {
  auto c = runFrontEnd(options);
  nnc::Program program = nnc::buildProgram(std::move(*c->graph), c->checked->train);
  nnc::ModelSummary summary = nnc::summarize(program, *c->checked);
  summary.target = options.kernels.target.describe();
  summary.target_cpu_features = options.kernels.target.cpu_features;
  nnc::ProgramPlan plan = nnc::planProgram(program, options.kernels.target, options.kernels.schedule);
  summary.plan_arena_bytes = 4 * plan.entries[0].arena.elements(summary.batch);
  summary.plan_peak_bytes = 4 * plan.entries[0].peakElements(summary.batch);
  summary.plan_intermediate_bytes = 4 * plan.entries[0].all_intermediates.elements(summary.batch);
  std::cout << (options.json ? nnc::renderSummaryJson(summary) : nnc::renderSummaryTable(summary));
  return 0;
}

// nnc import: an ONNX model -> a .nn file and, when it has initializers, their checkpoint.
int importOnnx(const Options& options) {
  if (options.output.empty()) throw UserError(fmt::format("nnc: `import` needs `-o OUT.nn`\n{}", usageOf(options.command)));
  std::string weights = options.weights.empty()
                            ? std::filesystem::path(options.output).replace_extension(".safetensors").string()
                            : options.weights;
  withDataErrors([&] {
    nnc::rt::checkOutputPath("-o", options.output, nnc::rt::OutputKind::Replaced);
    nnc::rt::checkOutputPath("--weights", weights, nnc::rt::OutputKind::Replaced);
  });
  nnc::onnx_import::ImportedModel imported;
  try {
    imported = nnc::onnx_import::importModel(nnc::onnx_import::readModel(options.input), options.input, options.onnx);
  } catch (const nnc::onnx_import::ImportError& e) {
    throw UserError(fmt::format("nnc: error: {}", e.what()));
  }
  std::ofstream out(options.output);
  if (!(out << imported.source) || !out.flush())
    throw UserError(fmt::format("nnc: error: cannot write {}: {}", options.output, std::strerror(errno)));
  if (!imported.weights.empty()) nnc::rt::writeSafetensors(weights, imported.weights);
  std::cerr << fmt::format("nnc: imported {} into {}{}\n", options.input, options.output,
                           imported.weights.empty() ? "" : fmt::format(" and {} tensors into {}", imported.weights.size(), weights));
  return 0;
}

int run(const Options& options) {
  if (options.help && options.command == "--version") {
    std::cout << "nnc " << NNC_VERSION << " (Halide 14, LLVM 14)\n";
    return 0;
  }
  if (options.help && kCommandUsage.count(options.command)) {
    std::cout << usageOf(options.command);
    return 0;
  }
  if (options.help) {
    std::cout << "nnc " << NNC_VERSION << ": compiles .nn model files into native trainers\n" << usageOf("")
              << "exit codes: 0 success, 1 a user error (diagnostics printed), 2 an internal error (a bug in nnc)\n"
                 "the language: dsl/REFERENCE.md; the commands: README.md\n";
    return 0;
  }
  if (options.command == "build") return build(options);
  if (options.command == "emit") return emit(options);
  if (options.command == "graph" && options.dot) {
    auto c = runFrontEnd(options);
    std::cout << nnc::printDot(nnc::buildProgram(std::move(*c->graph), c->checked->train), options.backward);
    return 0;
  }
  if (options.command == "graph") {
    Options emit_options = options;
    emit_options.stage = options.backward ? "backward" : "graph";
    return emit(emit_options);
  }
  if (options.command == "check") return check(options);
  if (options.command == "import") return importOnnx(options);
  throw UserError(fmt::format("nnc: unknown command `{}`\n{}", options.command, usageOf(options.command)));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parseOptions(argc, argv));
  } catch (const UserError& e) {
    if (std::strlen(e.what())) std::cerr << e.what() << (e.what()[std::strlen(e.what()) - 1] == '\n' ? "" : "\n");
    return kUserError;
  } catch (const std::exception& e) {  // Halide's errors derive from std::runtime_error too
    std::cerr << "nnc: internal error (please report): " << e.what() << "\n";
  }
  return kInternalError;
}
