// AOT emission and the link step: a Program -> Halide static libraries -> a trainer executable.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "compiler/graph/program.h"
#include "compiler/schedule/policy.h"
#include "compiler/target.h"

namespace nnc {

struct ProgramPlan;  // compiler/plan/plan.h

// What else than the program decides the compiled kernels. With `profile`, the kernels carry Halide's
// profiler: the trainer prints each Func's share of the time at exit.
struct KernelOptions {
  Target target;
  bool profile = false;
  SchedulePolicy schedule = SchedulePolicy::Manual;
};

// AOT-compiles train_step, grads and predict (Float(32), no embedded runtime) and the Halide runtime once, into
// `dir`, each in a process of its own. Returns the files to link.
std::vector<std::string> compileKernels(const Program& program, const std::string& dir, const KernelOptions& options);

// AOT-compiles kernels `which` of `plan` into objects of their own in `dir` (and with `runtime` the Halide runtime,
// last), in processes of their own, at most one per CPU at a time. Returns the objects in that order.
std::vector<std::string> compilePlanKernels(const Program& program, const ProgramPlan& plan,
                                            const std::vector<size_t>& which, bool runtime, const std::string& dir,
                                            const KernelOptions& options);

// The objects of every kernel of `plan` and of the Halide runtime: from the kernel cache `cache` when it holds
// them (each keyed by its kernel's text, the target and the profiling switch, so kernels are shared across models
// and builds), else compiled in `dir` and stored there. `compiled` is set to the number compiled.
std::vector<std::string> planObjects(const Program& program, const ProgramPlan& plan, const std::string& dir,
                                     const KernelOptions& options, const std::optional<std::string>& cache,
                                     size_t& compiled);

// Writes Halide's lowered statement form (`stmt`) or the assembly (`assembly`) of an entry point to a string.
std::string emitEntryText(const Program& program, const EntryPoint& entry, const std::string& stage,
                          const KernelOptions& options);

// The C++ source that defines nnc::rt::kModel for the runtime (see runtime/model_spec.h); with a plan, it also
// defines each entry point's `_argv` function as the plan's calls of its kernels (runtime/plan.h), each timed when
// `profiled`.
std::string emitModelSource(const Program& program, const Target& target, const ProgramPlan* plan = nullptr,
                            bool profiled = false);

// Compiles `model_source_path` and links it with `objects` and the runtime library into `output`.
// Throws std::runtime_error with the compiler's command line when linking fails.
void linkTrainer(const std::string& model_source_path, const std::vector<std::string>& objects,
                 const std::string& output);

}  // namespace nnc
