// AOT emission of the entry points with Halide (float32 kernels for the chosen target's CPU).
#include "compiler/aot/aot.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include "compiler/aot/kernel_cache.h"
#include "compiler/lower/lower.h"
#include "compiler/plan/plan.h"

namespace nnc {

namespace {

// The kernels carry no argument assertions and no bounds-query mode: the trainer runtime is their only caller,
// and it checks every buffer against the model's shapes before a call (runtime/kernels.cpp). Halide's checks
// (943 asserts in LeNet-5's train_step: type, dimensions, extents, strides and constraints of 63 buffers) made
// up 48% of its compile time: 9.7 s -> 5.0 s.
Halide::Target profiledTarget(const KernelOptions& options) {
  Halide::Target target(options.target.halide);
  return options.profile ? target.with_feature(Halide::Target::Profile) : target;
}

// A GPU target keeps its asserts: Halide checks the result of every device call (loading the driver, device
// allocations, copies) with an assert, so without them a missing driver went unnoticed and a later copy crashed.
Halide::Target kernelTarget(const KernelOptions& options) {
  Halide::Target target = profiledTarget(options).with_feature(Halide::Target::NoRuntime)
                              .with_feature(Halide::Target::NoBoundsQuery);
  return target.has_gpu_feature() ? target : target.with_feature(Halide::Target::NoAsserts);
}

// Autoschedulers tune train_step and grads for the training batch, predict for evaluation's 256 rows.
ScheduleOptions scheduleFor(const Program& program, const EntryPoint& entry, SchedulePolicy policy) {
  return {policy, batchEstimate(program, entry)};
}

// One copy of the Halide runtime for all pipelines (embedding it per pipeline costs ~1.2 s each).
std::function<void()> runtimeJob(const std::string& path, const KernelOptions& options) {
  return [path, target = profiledTarget(options)] { Halide::compile_standalone_runtime(path, target); };
}

std::string readWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs `jobs` in child processes, at most one per CPU at a time, largest first as listed: Halide compiles one
// pipeline on one thread, and LeNet-5's three entry points took 10.9 + 5.1 + 1.3 s in a row (with Halide's
// asserts; forked onto 2 cores, the build took as long as train_step). A job that throws makes the whole call
// throw its message.
void runInChildren(const std::vector<std::function<void()>>& jobs, const std::string& dir) {
  size_t workers = std::max(1u, std::thread::hardware_concurrency());
  std::map<pid_t, size_t> running;
  std::string failure;
  auto waitOne = [&] {
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) throw std::runtime_error(std::string("nnc: waitpid failed: ") + std::strerror(errno));
    size_t job = running.at(pid);
    running.erase(pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    std::string message = readWholeFile(dir + "/job" + std::to_string(job) + ".error");
    if (failure.empty()) failure = message.empty() ? "nnc: a kernel compilation process died" : message;
  };
  for (size_t job = 0; job < jobs.size(); ++job) {
    if (running.size() == workers) waitOne();
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(std::string("nnc: fork failed: ") + std::strerror(errno));
    if (pid == 0) {
      int code = 0;
      try {
        jobs[job]();
      } catch (const std::exception& e) {
        std::ofstream(dir + "/job" + std::to_string(job) + ".error") << e.what();
        code = 1;
      }
      std::fflush(nullptr);
      _exit(code);
    }
    running[pid] = job;
  }
  while (!running.empty()) waitOne();
  if (!failure.empty()) throw std::runtime_error(failure);
}

}  // namespace

std::vector<std::string> compileKernels(const Program& program, const std::string& dir,
                                        const KernelOptions& options) {
  std::vector<std::string> files;
  std::vector<std::function<void()>> jobs;
  Halide::Target target = kernelTarget(options);
  for (const EntryPoint* entry : program.entryPoints()) {
    std::string prefix = dir + "/" + entry->name;
    ScheduleOptions schedule = scheduleFor(program, *entry, options.schedule);
    jobs.push_back([&program, &options, entry, prefix, target, schedule] {
      LoweredEntry lowered = lowerEntry(program.graph, *entry, Halide::Float(32), options.target, schedule);
      lowered.pipeline().compile_to_static_library(prefix, lowered.arguments, entry->name, target);
    });
    files.push_back(prefix + ".a");
  }
  files.push_back(dir + "/halide_runtime.o");
  jobs.push_back(runtimeJob(files.back(), options));
  runInChildren(jobs, dir);
  return files;
}

std::vector<std::string> compilePlanKernels(const Program& program, const ProgramPlan& plan,
                                            const std::vector<size_t>& which, bool runtime, const std::string& dir,
                                            const KernelOptions& options) {
  std::vector<std::string> files;
  std::vector<std::function<void()>> jobs;
  Halide::Target target = kernelTarget(options);
  for (size_t k : which) {
    const PlanKernel* kernel = &plan.kernels[k];
    files.push_back(dir + "/" + kernel->name + ".o");
    jobs.push_back([&program, &options, kernel, path = files.back(), target] {
      LoweredEntry lowered = lowerEntry(program.graph, kernel->entry, Halide::Float(32), options.target,
                                        {options.schedule, kernel->batch_estimate});
      lowered.pipeline().compile_to_object(path, lowered.arguments, kernel->name, target);
    });
  }
  if (runtime) {
    files.push_back(dir + "/halide_runtime.o");
    jobs.push_back(runtimeJob(files.back(), options));
  }
  runInChildren(jobs, dir);
  return files;
}

std::vector<std::string> planObjects(const Program& program, const ProgramPlan& plan, const std::string& dir,
                                     const KernelOptions& options, const std::optional<std::string>& cache,
                                     size_t& compiled) {
  std::string suffix = "\ntarget=" + options.target.halide + (options.profile ? "+profile" : "");
  std::vector<std::string> keys, objects;
  for (const PlanKernel& kernel : plan.kernels) keys.push_back(contentCacheKey(kernel.key + suffix));
  keys.push_back(contentCacheKey("halide runtime" + suffix));
  std::vector<size_t> missing;
  for (size_t k = 0; k < keys.size(); ++k) {
    std::optional<std::vector<std::string>> hit = cache ? lookupKernels(*cache, keys[k]) : std::nullopt;
    objects.push_back(hit ? hit->front() : "");
    if (!hit) missing.push_back(k);
  }
  bool runtime = !missing.empty() && missing.back() == plan.kernels.size();
  if (runtime) missing.pop_back();
  std::vector<std::string> built = compilePlanKernels(program, plan, missing, runtime, dir, options);
  if (runtime) missing.push_back(plan.kernels.size());
  for (size_t i = 0; i < missing.size(); ++i)
    objects[missing[i]] = cache ? storeKernels(*cache, keys[missing[i]], {built[i]}).front() : built[i];
  compiled = missing.size();
  return objects;
}

std::string emitEntryText(const Program& program, const EntryPoint& entry, const std::string& stage,
                          const KernelOptions& options) {
  LoweredEntry lowered = lowerEntry(program.graph, entry, Halide::Float(32), options.target,
                                    scheduleFor(program, entry, options.schedule));
  std::string path = std::filesystem::temp_directory_path() / ("nnc_emit_" + std::to_string(getpid()));
  Halide::Target target = kernelTarget(options);
  if (stage == "stmt") lowered.pipeline().compile_to_lowered_stmt(path, lowered.arguments, Halide::Text, target);
  else lowered.pipeline().compile_to_assembly(path, lowered.arguments, entry.name, target);
  std::string text = readWholeFile(path);
  std::remove(path.c_str());
  return text;
}

}  // namespace nnc
