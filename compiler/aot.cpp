// AOT emission of the entry points with Halide (float32 kernels for the host CPU).
#include "compiler/aot.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "compiler/lower.h"

namespace nnc {

namespace {

Halide::Target kernelTarget(bool profile = false) {
  Halide::Target target = Halide::get_host_target();
  if (profile) target = target.with_feature(Halide::Target::Profile);
  return target.with_feature(Halide::Target::NoRuntime);
}

std::string readWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string hostTargetString() { return Halide::get_host_target().to_string(); }

std::vector<std::string> compileKernels(const Program& program, const std::string& dir, bool profile) {
  std::vector<std::string> files;
  Halide::Target target = kernelTarget(profile);
  for (const EntryPoint* entry : {&program.train_step, &program.grads_entry, &program.predict}) {
    LoweredEntry lowered = lowerEntry(program.graph, *entry, Halide::Float(32));
    std::string prefix = dir + "/" + entry->name;
    lowered.pipeline().compile_to_static_library(prefix, lowered.arguments, entry->name, target);
    files.push_back(prefix + ".a");
  }
  // One copy of the Halide runtime for all pipelines (embedding it per pipeline costs ~1.2 s each).
  std::string runtime = dir + "/halide_runtime.o";
  Halide::Target runtime_target = Halide::get_host_target();
  if (profile) runtime_target = runtime_target.with_feature(Halide::Target::Profile);
  Halide::compile_standalone_runtime(runtime, runtime_target);
  files.push_back(runtime);
  return files;
}

std::string emitEntryText(const Program& program, const EntryPoint& entry, const std::string& stage) {
  LoweredEntry lowered = lowerEntry(program.graph, entry, Halide::Float(32));
  std::string path = std::filesystem::temp_directory_path() / ("nnc_emit_" + std::to_string(getpid()));
  if (stage == "stmt") lowered.pipeline().compile_to_lowered_stmt(path, lowered.arguments, Halide::Text, kernelTarget());
  else lowered.pipeline().compile_to_assembly(path, lowered.arguments, entry.name, kernelTarget());
  std::string text = readWholeFile(path);
  std::remove(path.c_str());
  return text;
}

}  // namespace nnc
