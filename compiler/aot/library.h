// `nnc build --emit=library`: an inference library, as tfcompile and Glow make them. A static archive OUT.a holds
// predict's plan of kernels (the kernels `nnc build` compiles, from the same kernel cache), the Halide runtime, the
// checkpoint's tensors as constant data and a small executor (runtime/predict_library.h); a header OUT.h declares
// its C API:
//   int MODEL_predict(const float* x, int64_t n, float* out);  // what `TRAINER predict -o` writes
//   int MODEL_set_threads(int threads);
//   const char* MODEL_last_error(void);
// with MODEL_INPUT_SIZE, MODEL_OUTPUT_SIZE and the per-example shapes as macros (upper-case model name). On a CPU
// without a feature the kernels were compiled for, MODEL_predict returns MODEL_UNSUPPORTED_CPU. Neither
// needs the C++ standard library: `cc prog.c OUT.a -lm -lpthread` links a C program.
#pragma once

#include <string>
#include <vector>

#include "compiler/graph/program.h"
#include "compiler/plan/plan.h"

namespace nnc {

struct LibraryPaths {
  std::string archive, header;  // OUT.a, OUT.h
};
// The files of `-o OUT` (a trailing ".a" is dropped: `-o libmlp.a` is `-o libmlp`).
LibraryPaths libraryPaths(const std::string& output);

// Predict's plan alone: the same calls and kernels as predict's in planProgram (each entry point is planned on
// its own there too).
ProgramPlan planPredict(const Program& program, const Target& target, SchedulePolicy policy);

// The checkpoint's tensors of the model's parameters (and buffers), in the model's order, as the trainer's
// --weights reads them, and its per-feature normalization. A checkpoint that does not fit the model throws
// rt::DataError naming each tensor that does not.
struct LibraryWeights {
  std::vector<std::vector<float>> params;
  std::vector<float> normalization_offset, normalization_scale;  // empty: none
};
LibraryWeights readLibraryWeights(const Program& program, const std::string& checkpoint);

// Writes the library source and its weights into `dir`, compiles it and archives it with `objects` (the kernels of
// `plan` compiled for `target`, whose CPU features the library checks before it runs them, then the Halide
// runtime) and the executor into `paths.archive`; writes `paths.header`. Both appear atomically
// (rt::writeFilesAtomically): when either cannot be written, rt::DataError names it and the OS's reason, and
// neither path changes. Throws std::runtime_error when a command fails.
void buildLibrary(const Program& program, const ProgramPlan& plan, const Target& target,
                  const std::vector<std::string>& objects, const LibraryWeights& weights,
                  const std::string& source_name, const std::string& dir, const LibraryPaths& paths);

}  // namespace nnc
