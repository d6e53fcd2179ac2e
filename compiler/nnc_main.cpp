// nnc: the compiler driver. Each command runs the pipeline up to the stage it needs:
//
//   source -> tokens -> AST -> checked AST -> forward graph -> + backward graph and update -> Halide -> trainer
//
//   nnc build FILE.nn -o OUT [--target=TARGET] [--single-pipeline]   compile a trainer executable (a plan of
//                                                        kernels, each cached by content)
//   nnc check FILE.nn [--json]    diagnostics, then a model summary (parameters, FLOPs, activation memory, target)
//   nnc graph FILE.nn [--backward] [--dot]
//   nnc emit --stage=tokens|ast|graph|backward|plan|stmt|assembly [--entry=train_step|grads|predict|KERNEL] FILE.nn
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
#include <optional>

#include <unistd.h>

#include "compiler/aot.h"
#include "compiler/compilation.h"
#include "compiler/graph_printer.h"
#include "compiler/kernel_cache.h"
#include "compiler/plan.h"
#include "compiler/summary.h"
#include "compiler/target.h"
#include "dsl/ast_printer.h"
#include "dsl/lexer.h"

namespace {

constexpr int kUserError = 1;
constexpr int kInternalError = 2;

struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* kUsage =
    "usage: nnc build FILE.nn -o OUT [--target=TARGET] [--single-pipeline] [--keep-temps] [--profile]\n"
    "                [--no-cache] [--schedule=POLICY]\n"
    "       nnc check FILE.nn [--json] [--target=TARGET]\n"
    "       nnc graph FILE.nn [--backward] [--dot]\n"
    "       nnc emit --stage=tokens|ast|graph|backward|plan|stmt|assembly [--entry=train_step|grads|predict|KERNEL]\n"
    "                [--schedule=POLICY] [--target=TARGET] FILE.nn\n"
    "POLICY: manual (nnc's, the default), naive, li2018, adams2019 or mullapudi2016 (Halide's autoschedulers)\n"
    "TARGET: host (this machine's CPU, the default), x86-64, x86-64-v2, x86-64-v3 (AVX2), x86-64-v4 (AVX-512)\n"
    "        or a Halide target string (x86-64-linux-avx-avx2-f16c-fma-sse41, host-profile, ...)\n";

struct Options {
  std::string command, input, output, stage, entry = "train_step";
  bool backward = false, dot = false, keep_temps = false, json = false, no_cache = false;
  bool plan = true;  // each entry point a plan of kernels; --single-pipeline: one pipeline each
  nnc::KernelOptions kernels;
};

Options parseOptions(int argc, char** argv) {
  if (argc < 2) throw UserError(kUsage);
  Options options;
  options.command = argv[1];
  std::string target = "host";
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-o" && i + 1 < argc) options.output = argv[++i];
    else if (arg == "--backward") options.backward = true;
    else if (arg == "--dot") options.dot = true;
    else if (arg == "--keep-temps") options.keep_temps = true;
    else if (arg == "--profile") options.kernels.profile = true;
    else if (arg == "--no-cache") options.no_cache = true;
    else if (arg == "--plan") options.plan = true;  // the default since plans became as fast
    else if (arg == "--single-pipeline") options.plan = false;
    else if (arg == "--json") options.json = true;
    else if (arg.rfind("--stage=", 0) == 0) options.stage = arg.substr(8);
    else if (arg.rfind("--entry=", 0) == 0) options.entry = arg.substr(8);
    else if (arg.rfind("--target=", 0) == 0) target = arg.substr(9);
    else if (arg == "--target" && i + 1 < argc) target = argv[++i];
    else if (arg.rfind("--schedule=", 0) == 0) {
      std::optional<nnc::SchedulePolicy> policy = nnc::parseSchedulePolicy(arg.substr(11));
      if (!policy) throw UserError(fmt::format("nnc: unknown schedule policy `{}`\n{}", arg.substr(11), kUsage));
      options.kernels.schedule = *policy;
    }
    else if (!arg.empty() && arg[0] != '-' && options.input.empty()) options.input = arg;
    else throw UserError(fmt::format("nnc: unknown argument `{}`\n{}", arg, kUsage));
  }
  if (options.input.empty()) throw UserError(fmt::format("nnc: no model file given\n{}", kUsage));
  try {
    options.kernels.target = nnc::parseTarget(target);
  } catch (const nnc::TargetError& e) {
    throw UserError(fmt::format("nnc: error: {}", e.what()));
  }
  return options;
}

// Runs the front end through `last`; prints its diagnostics and stops with exit code 1 on errors.
std::unique_ptr<nnc::Compilation> runFrontEnd(const std::string& path, nnc::Stage last = nnc::Stage::Graph) {
  std::optional<nnc::dsl::SourceFile> source;
  try {
    source = nnc::dsl::SourceFile::read(path);
  } catch (const std::runtime_error& e) {
    throw UserError(fmt::format("nnc: error: {}", e.what()));
  }
  std::unique_ptr<nnc::Compilation> c = nnc::compileFrontEnd(std::move(*source), last);
  std::cerr << c->diags->render();
  if (c->diags->hasErrors()) throw UserError("");
  return c;
}

// An entry point by name, or a kernel of their plans (as `nnc emit --stage=plan` names it).
nnc::EntryPoint selectEntry(const nnc::Program& program, const Options& options) {
  for (const nnc::EntryPoint* entry : {&program.train_step, &program.grads_entry, &program.predict})
    if (entry->name == options.entry) return *entry;
  for (const nnc::PlanKernel& kernel :
       nnc::planProgram(program, options.kernels.target, options.kernels.schedule).kernels)
    if (kernel.name == options.entry) return kernel.entry;
  throw UserError(fmt::format("nnc: unknown entry point `{}`; expected train_step, grads, predict or a kernel that "
                              "`nnc emit --stage=plan` lists",
                              options.entry));
}

int emit(const Options& options) {
  if (options.stage == "tokens" || options.stage == "ast") {
    auto c = runFrontEnd(options.input, options.stage == "tokens" ? nnc::Stage::Tokens : nnc::Stage::Ast);
    std::cout << (options.stage == "tokens" ? nnc::dsl::printTokens(*c->source, c->tokens)
                                            : nnc::dsl::printAst(c->module, *c->source));
    return 0;
  }
  auto c = runFrontEnd(options.input);
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
  else throw UserError(fmt::format("nnc: unknown stage `{}`\n{}", options.stage, kUsage));
  return 0;
}

int build(const Options& options) {
  if (options.output.empty()) throw UserError(fmt::format("nnc: `build` needs `-o OUT`\n{}", kUsage));
  std::filesystem::path out_dir = std::filesystem::path(options.output).parent_path();
  if (!out_dir.empty() && !std::filesystem::is_directory(out_dir))
    throw UserError(fmt::format("nnc: error: cannot write `{}`: `{}` is not a directory", options.output,
                                out_dir.string()));
  auto start = std::chrono::steady_clock::now();
  auto c = runFrontEnd(options.input);
  nnc::Program program = nnc::buildProgram(std::move(*c->graph), c->checked->train);
  std::filesystem::path dir = std::filesystem::temp_directory_path() / fmt::format("nnc-build-{}", getpid());
  std::filesystem::create_directories(dir);
  // Removes the intermediate files however the build ends, unless the user asked to keep them.
  std::unique_ptr<void, std::function<void(void*)>> cleanup(&dir, [&](void*) {
    if (options.keep_temps) std::cerr << fmt::format("nnc: kept intermediate files in {}\n", dir.string());
    else std::filesystem::remove_all(dir);
  });
  const nnc::Target& target = options.kernels.target;
  std::optional<std::string> cache = options.no_cache ? std::nullopt : nnc::kernelCacheDir();
  std::string key = nnc::kernelCacheKey(program, target.halide, options.kernels);
  std::optional<nnc::ProgramPlan> plan;
  size_t compiled = 0;
  std::optional<std::vector<std::string>> objects;
  try {
    if (options.plan) {
      plan = nnc::planProgram(program, target, options.kernels.schedule);
      objects = nnc::planObjects(program, *plan, dir, options.kernels, cache, compiled);
    } else if (!(objects = cache ? nnc::lookupKernels(*cache, key) : std::nullopt)) {
      objects = nnc::compileKernels(program, dir, options.kernels);
      compiled = 1;
      if (cache) objects = nnc::storeKernels(*cache, key, *objects);
    }
  } catch (const std::runtime_error& e) {
    if (options.kernels.schedule == nnc::SchedulePolicy::Manual || options.kernels.schedule == nnc::SchedulePolicy::Naive)
      throw;
    // Halide's autoschedulers are not ours to fix: say which one failed, and what works.
    throw UserError(fmt::format("nnc: error: the kernels Halide's {} autoscheduler scheduled do not compile with "
                                "Halide 14: {}\nnnc: --schedule=manual (the default) builds this model",
                                nnc::schedulePolicyName(options.kernels.schedule), e.what()));
  }
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
  auto c = runFrontEnd(options.input);
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

int run(const Options& options) {
  if (options.command == "build") return build(options);
  if (options.command == "emit") return emit(options);
  if (options.command == "graph" && options.dot) {
    auto c = runFrontEnd(options.input);
    std::cout << nnc::printDot(nnc::buildProgram(std::move(*c->graph), c->checked->train), options.backward);
    return 0;
  }
  if (options.command == "graph") {
    Options emit_options = options;
    emit_options.stage = options.backward ? "backward" : "graph";
    return emit(emit_options);
  }
  if (options.command == "check") return check(options);
  throw UserError(fmt::format("nnc: unknown command `{}`\n{}", options.command, kUsage));
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
