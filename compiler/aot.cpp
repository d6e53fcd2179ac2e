// AOT emission of the entry points with Halide (float32 kernels for the chosen target's CPU).
#include "compiler/aot.h"

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

#include "compiler/lower.h"

namespace nnc {

namespace {

// The kernels carry no argument assertions and no bounds-query mode: the trainer runtime is their only caller,
// and it checks every buffer against the model's shapes before a call (runtime/kernels.cpp). Halide's checks
// (943 asserts in LeNet-5's train_step: type, dimensions, extents, strides and constraints of 63 buffers) made
// up 48% of its compile time: 9.7 s -> 5.0 s.
Halide::Target kernelTarget(const KernelOptions& options) {
  Halide::Target target(options.target.halide);
  if (options.profile) target = target.with_feature(Halide::Target::Profile);
  for (auto feature : {Halide::Target::NoRuntime, Halide::Target::NoAsserts, Halide::Target::NoBoundsQuery})
    target = target.with_feature(feature);
  return target;
}

// Autoschedulers tune train_step and grads for the training batch, predict for evaluation's 256 rows.
ScheduleOptions scheduleFor(const Program& program, const EntryPoint& entry, SchedulePolicy policy) {
  return {policy, &entry == &program.predict ? 256 : static_cast<int>(program.train.batch)};
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
  for (const EntryPoint* entry : {&program.train_step, &program.grads_entry, &program.predict}) {
    std::string prefix = dir + "/" + entry->name;
    ScheduleOptions schedule = scheduleFor(program, *entry, options.schedule);
    jobs.push_back([&program, &options, entry, prefix, target, schedule] {
      LoweredEntry lowered = lowerEntry(program.graph, *entry, Halide::Float(32), options.target, schedule);
      lowered.pipeline().compile_to_static_library(prefix, lowered.arguments, entry->name, target);
    });
    files.push_back(prefix + ".a");
  }
  // One copy of the Halide runtime for all pipelines (embedding it per pipeline costs ~1.2 s each).
  std::string runtime = dir + "/halide_runtime.o";
  Halide::Target runtime_target(options.target.halide);
  if (options.profile) runtime_target = runtime_target.with_feature(Halide::Target::Profile);
  jobs.push_back([runtime, runtime_target] { Halide::compile_standalone_runtime(runtime, runtime_target); });
  files.push_back(runtime);
  runInChildren(jobs, dir);
  return files;
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
