// The inference library's executor; see predict_library.h. It allocates per call (thread-safe: nothing shared
// but Halide's thread pool and hooks) and uses only libc, libpthread and the Halide runtime.
#include "runtime/predict_library.h"

#include <HalideRuntime.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cpu_features_core.h"
#include "runtime/predictions.h"

namespace nnc::rt {

namespace {

thread_local char error_text[512];

int fail(int status, const char* format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(error_text, sizeof error_text, format, args);
  va_end(args);
  return status;
}

// Halide's message of a failure during one call, from whichever thread raised it (the caller's or a thread of
// Halide's pool running a loop body): the first message is kept, later ones (other loop bodies) dropped.
struct CallErrors {
  char halide_message[300];
  bool recorded;  // set atomically by the first message
};

// The call this thread works for: set on the calling thread for the call, and on a pool thread for each loop body
// of the call it runs (runLoopBody).
thread_local CallErrors* current_call = nullptr;

struct CallScope {
  CallErrors* outer;
  explicit CallScope(CallErrors* call) : outer(current_call) { current_call = call; }
  ~CallScope() { current_call = outer; }
};

// Halide's error handler and parallel loop are process-wide and other Halide code (the user's own pipelines) may
// have replaced them. They are installed once, on the first call, and forward what is not the library's to those
// they replaced. Setting them around each call and restoring them after is wrong with calls from several threads:
// a call that restores the user's handler while another call's kernels run sends that call's errors to the
// user's handler (Halide's default one aborts), and the other call then "restores" the library's for good.
pthread_once_t halide_hooks = PTHREAD_ONCE_INIT;
halide_error_handler_t previous_error_handler = nullptr;
halide_do_par_for_t previous_do_par_for = nullptr;

// Instead of aborting the caller's process: the error of a library call goes into that call's CallErrors.
extern "C" void recordHalideError(void* user_context, const char* message) {
  CallErrors* call = current_call;
  if (!call) {
    halide_error_handler_t previous = __atomic_load_n(&previous_error_handler, __ATOMIC_ACQUIRE);
    return (previous ? previous : halide_default_error)(user_context, message);  // null: being installed
  }
  if (!__atomic_test_and_set(&call->recorded, __ATOMIC_ACQ_REL))
    snprintf(call->halide_message, sizeof call->halide_message, "%s", message);
}

// A loop body of a library call, with that call as its thread's current_call wherever the pool runs it.
struct LoopOfCall {
  halide_task_t body;
  uint8_t* closure;
  CallErrors* call;
};

extern "C" int runLoopBody(void* user_context, int index, uint8_t* closure) {
  const LoopOfCall& loop = *reinterpret_cast<const LoopOfCall*>(closure);
  CallScope scope(loop.call);
  return loop.body(user_context, index, loop.closure);
}

extern "C" int parallelLoop(void* user_context, halide_task_t body, int min, int size, uint8_t* closure) {
  halide_do_par_for_t previous = __atomic_load_n(&previous_do_par_for, __ATOMIC_ACQUIRE);
  if (!previous) previous = halide_default_do_par_for;
  if (!current_call) return previous(user_context, body, min, size, closure);
  LoopOfCall loop = {body, closure, current_call};
  return previous(user_context, runLoopBody, min, size, reinterpret_cast<uint8_t*>(&loop));
}

void installHalideHooks() {
  __atomic_store_n(&previous_error_handler, halide_set_error_handler(recordHalideError), __ATOMIC_RELEASE);
  __atomic_store_n(&previous_do_par_for, halide_set_custom_do_par_for(parallelLoop), __ATOMIC_RELEASE);
}

// Whether this CPU has every feature the kernels were compiled for (cpuid is read once per process).
int checkCpu(const PredictLibrarySpec& spec) {
  char missing[256] = "";
  for (int i = 0; i < spec.num_cpu_features; ++i) {
    if (cpu::cpuHasFeature(spec.cpu_features[i])) continue;
    size_t used = strlen(missing);
    snprintf(missing + used, sizeof missing - used, "%s%s", used ? ", " : "", spec.cpu_features[i]);
  }
  if (!missing[0]) return kPredictOk;
  return fail(kPredictUnsupportedCpu, "%s_predict: the library was compiled for %s; this CPU lacks %s: rebuild it "
              "with a --target this CPU runs, or on this machine", spec.model, spec.target, missing);
}

bool isClassifier(const PredictLibrarySpec& spec) { return strcmp(spec.task, "classify") == 0; }

int64_t rawOutputSize(const PredictLibrarySpec& spec) {
  int64_t size = 1;
  for (int d = 1; d < spec.output_rank; ++d) size *= spec.output_shape[d];
  return size;
}

// One call's memory: a batch of features (as floats, and as int32 token ids), of raw outputs, the plan's arena
// and buffers, a call's argv and the classifier's log-probability scratch.
struct Scratch {
  float* features = nullptr;
  int32_t* ids = nullptr;
  float* outputs = nullptr;
  float* arena = nullptr;
  halide_buffer_t* buffers = nullptr;  // the plan's, then the features, the params and the output
  halide_dimension_t* dims = nullptr;
  void** argv = nullptr;
  double* log_p = nullptr;
  CallErrors errors = {};

  ~Scratch() {
    free(features);
    free(ids);
    free(outputs);
    free(arena);
    free(buffers);
    free(dims);
    free(argv);
    free(log_p);
  }
};

template <typename T>
bool allocate(T*& p, int64_t count) {
  size_t bytes = (static_cast<size_t>(count > 0 ? count : 1) * sizeof(T) + 63) / 64 * 64;
  p = static_cast<T*>(aligned_alloc(64, bytes));
  return p != nullptr;
}

// Token ids must be whole numbers below the embedding tables' rows (the trainer refuses others as well).
int convertIds(const PredictLibrarySpec& spec, const float* features, int64_t first, int64_t rows, int32_t* ids) {
  int64_t size = libraryInputSize(spec);
  // An int32 (the range checked before the conversion, which is undefined outside it), and an index into the
  // embedding tables when the features reach one.
  int64_t below = spec.token_ids_below > 0 ? spec.token_ids_below : int64_t{1} << 31;
  int64_t above = spec.token_ids_below > 0 ? 0 : -(int64_t{1} << 31);
  for (int64_t i = 0; i < rows * size; ++i) {
    float v = features[i];
    bool valid = v >= static_cast<float>(above) && v < static_cast<float>(below) &&
                 static_cast<float>(static_cast<int64_t>(v)) == v;
    if (!valid)
      return fail(kPredictBadArgument, "%s_predict: example %lld, position %lld: value %g is not a whole number in [%lld, %lld)",
                  spec.model, static_cast<long long>(first + i / size), static_cast<long long>(i % size),
                  static_cast<double>(v), static_cast<long long>(above), static_cast<long long>(below));
    ids[i] = static_cast<int32_t>(v);
  }
  return kPredictOk;
}

// Runs predict's plan on `rows` examples from `first`, into `out`.
int predictBatch(const PredictLibrarySpec& spec, const float* x, int64_t first, int64_t rows, float* out, Scratch& s) {
  const PlanSpec& plan = *spec.plan;
  int64_t in_size = libraryInputSize(spec);
  memcpy(s.features, x + first * in_size, static_cast<size_t>(rows * in_size) * sizeof(float));
  if (spec.normalization_offset)
    normalizeExamples(spec.normalization_offset, spec.normalization_scale, s.features, rows, in_size);
  if (spec.features.is_integer)
    if (int status = convertIds(spec, s.features, first, rows, s.ids)) return status;
  // The entry's argv: features, params..., output (model_spec.h), after the plan's own buffers.
  halide_buffer_t* entry = s.buffers + plan.num_buffers;
  halide_dimension_t* dims = s.dims + static_cast<int64_t>(plan.num_buffers) * kMaxRank;
  void** entry_args = s.argv;
  for (int a = 0; a < plan.num_entry_args; ++a) {
    halide_buffer_t& buffer = entry[a];
    buffer = halide_buffer_t{};
    buffer.dim = dims + static_cast<int64_t>(a) * kMaxRank;
    buffer.type = halide_type_t(halide_type_float, 32);
    if (a == 0) {
      buffer.dimensions = spec.features.rank;
      denseDims(spec.features.rank, spec.features.shape, rows, buffer.dim);
      if (spec.features.is_integer) buffer.type = halide_type_t(halide_type_int, 32);
      buffer.host = spec.features.is_integer ? reinterpret_cast<uint8_t*>(s.ids) : reinterpret_cast<uint8_t*>(s.features);
    } else if (a <= spec.num_params) {
      const EmbeddedParam& param = spec.params[a - 1];
      buffer.dimensions = param.rank;
      denseDims(param.rank, param.shape, 1, buffer.dim);
      buffer.host = reinterpret_cast<uint8_t*>(const_cast<float*>(param.data));  // read only
    } else {
      buffer.dimensions = spec.output_rank;
      denseDims(spec.output_rank, spec.output_shape, rows, buffer.dim);
      buffer.host = reinterpret_cast<uint8_t*>(s.outputs);
    }
    entry_args[a] = &buffer;
  }
  shapePlanBuffers(plan, rows, s.buffers, s.dims);
  placePlanBuffers(plan, rows, s.arena, s.buffers);
  void** call_argv = s.argv + plan.num_entry_args;
  for (int c = 0; c < plan.num_calls; ++c)
    if (int code = runPlanCall(plan, c, entry_args, s.buffers, call_argv))
      return fail(kPredictKernelFailed, "%s_predict: kernel `%s` failed (%d): %s", spec.model, plan.calls[c].name,
                  code, s.errors.halide_message);
  int64_t raw = rawOutputSize(spec);
  if (isClassifier(spec)) {
    int64_t columns = spec.output_shape[spec.output_rank - 1];
    classProbabilities(s.outputs, rows * raw / columns, columns, out + first * libraryOutputSize(spec), s.log_p);
  } else {
    float* values = out + first * raw;
    memcpy(values, s.outputs, static_cast<size_t>(rows * raw) * sizeof(float));
    predictedValues(spec.criterion, values, rows * raw);
  }
  return kPredictOk;
}

}  // namespace

int64_t libraryInputSize(const PredictLibrarySpec& spec) {
  int64_t size = 1;
  for (int d = 1; d < spec.features.rank; ++d) size *= spec.features.shape[d];
  return size;
}

int64_t libraryOutputSize(const PredictLibrarySpec& spec) {
  if (!isClassifier(spec)) return rawOutputSize(spec);
  int64_t columns = spec.output_shape[spec.output_rank - 1];
  return rawOutputSize(spec) / columns * classCount(columns);
}

int predictWithLibrary(const PredictLibrarySpec& spec, const float* x, int64_t n, float* out) {
  error_text[0] = '\0';
  if (int status = checkCpu(spec)) return status;
  if (n < 0) return fail(kPredictBadArgument, "%s_predict: n is %lld, expected a count of examples", spec.model,
                         static_cast<long long>(n));
  if (n > 0 && (!x || !out)) return fail(kPredictBadArgument, "%s_predict: x or out is NULL", spec.model);
  pthread_once(&halide_hooks, installHalideHooks);
  const PlanSpec& plan = *spec.plan;
  int64_t batch = n < kPredictBatch ? n : kPredictBatch;
  int max_args = 0;
  for (int c = 0; c < plan.num_calls; ++c) max_args = plan.calls[c].num_args > max_args ? plan.calls[c].num_args : max_args;
  int num_buffers = plan.num_buffers + plan.num_entry_args;
  Scratch s;
  int64_t columns = spec.output_shape[spec.output_rank - 1];
  if (!allocate(s.features, batch * libraryInputSize(spec)) || !allocate(s.ids, batch * libraryInputSize(spec)) ||
      !allocate(s.outputs, batch * rawOutputSize(spec)) || !allocate(s.arena, planArenaElements(plan, batch)) ||
      !allocate(s.buffers, num_buffers) || !allocate(s.dims, static_cast<int64_t>(num_buffers) * kMaxRank) ||
      !allocate(s.argv, plan.num_entry_args + max_args) || !allocate(s.log_p, classCount(columns)))
    return fail(kPredictOutOfMemory, "%s_predict: out of memory for a batch of %lld examples", spec.model,
                static_cast<long long>(batch));
  CallScope scope(&s.errors);
  for (int64_t first = 0; first < n; first += kPredictBatch) {
    int64_t rows = n - first < kPredictBatch ? n - first : kPredictBatch;
    if (int status = predictBatch(spec, x, first, rows, out, s)) return status;
  }
  return kPredictOk;
}

int setLibraryThreads(int threads) {
  if (threads < 0) return fail(kPredictBadArgument, "set_threads: %d threads, expected 0 (one per CPU) or more", threads);
  halide_set_num_threads(threads);
  return kPredictOk;
}

const char* libraryError() { return error_text; }

}  // namespace nnc::rt
