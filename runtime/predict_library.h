// The inference library's runtime (`nnc build --emit=library`): the generated library source describes the model
// (predict's plan, the embedded weights, the checkpoint's normalization) in a PredictLibrarySpec, and its C
// functions MODEL_predict, MODEL_set_threads and MODEL_last_error call these. Like plan_core.h, free of the C++
// standard library: a C program links the library with `cc prog.c libMODEL.a -lm -lpthread`.
#pragma once

#include <cstdint>

#include "runtime/model_spec.h"
#include "runtime/plan_core.h"

namespace nnc::rt {

// MODEL_predict's results, as the generated header names them (MODEL_OK, ...).
enum PredictStatus {
  kPredictOk = 0,
  kPredictBadArgument = 1,
  kPredictOutOfMemory = 2,
  kPredictKernelFailed = 3,
  kPredictUnsupportedCpu = 4,  // this CPU lacks a feature the kernels were compiled for
};

// A parameter compiled into the library: its row-major shape and values.
struct EmbeddedParam {
  const char* name;
  int rank;
  int64_t shape[kMaxRank];
  const float* data;
};

struct PredictLibrarySpec {
  const char* model;
  const PlanSpec* plan;  // predict's: (features, params...) -> (output)
  InputSpec features;
  int output_rank;
  int64_t output_shape[kMaxRank];  // kBatchDim first
  int num_params;
  const EmbeddedParam* params;
  const float* normalization_offset;  // the checkpoint's per-feature normalization, or null for none
  const float* normalization_scale;
  const char* task;       // ModelSpec::task: classify, regress or reconstruct
  const char* criterion;  // ModelSpec::criterion
  int64_t token_ids_below;  // ModelSpec::token_ids_below
  const char* target;       // what the kernels were compiled for, as `nnc build` describes it
  const char* const* cpu_features;  // what a CPU needs to run them (runtime/cpu_features_core.h names)
  int num_cpu_features;
};

// The model's features per example, and what predictWithLibrary writes per example: a classifier's class
// probabilities (per position of a sequence model), a regressor's values, a reconstruction.
int64_t libraryInputSize(const PredictLibrarySpec& spec);
int64_t libraryOutputSize(const PredictLibrarySpec& spec);

// What `TRAINER predict -o` writes for the `n` examples of `x` (row-major, libraryInputSize floats each), into
// `out` (libraryOutputSize floats each), bit for bit: the same kernels over batches of 256, the same
// normalization and post-processing. Returns a PredictStatus; the message of a failure is libraryError's. On a
// CPU that lacks one of spec.cpu_features (the kernels would die of SIGILL) every call returns
// kPredictUnsupportedCpu, its message naming the missing features. The first call installs Halide's error
// handler and parallel loop for good, forwarding what is not the library's to those installed before (see
// predict_library.cpp: why not around each call).
int predictWithLibrary(const PredictLibrarySpec& spec, const float* x, int64_t n, float* out);

// Sets the threads of the kernels' parallel loops (Halide's pool; 0: one per CPU). Returns a PredictStatus.
int setLibraryThreads(int threads);

// The message of this thread's last failed call ("" when none failed), errors of its kernels on Halide's pool
// threads included.
const char* libraryError();

}  // namespace nnc::rt
