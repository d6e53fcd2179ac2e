#!/usr/bin/env bash
# `nnc build --emit=library`: a small classifier trained a few steps is built into libtiny.a and libtiny.h; a C99
# program linked with plain `cc` (no libstdc++) predicts the test images with tiny_predict, and its outputs are
# the trainer's `predict -o` probabilities bit for bit (10000 images: 39 batches of 256 and a last one of 16). The
# archive needs only libc and libm; a CPU without a feature the kernels need is refused; Halide's errors on pool
# threads reach the caller, and a program's own Halide hooks are kept; refusals: no --weights, another model's
# checkpoint, an unknown --emit; write and autoscheduler failures.
# Usage: inference_library.sh NNC SOURCE_DIR WORK_DIR
set -euo pipefail
nnc=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > tiny.nn <<'NN'
model tiny(x: f32[B, 1, 28, 28], y: i32[B]) {
    h = relu(linear(flatten(x), 32))
    logits = linear(h, 10)
    loss = cross_entropy(logits, y)
    return logits
}
train {
    batch = 64
    optimizer = sgd(lr = 0.05)
    normalize = "standardize"
}
NN
"$nnc" build tiny.nn -o tiny 2> /dev/null
./tiny train --max-steps 20 --save tiny.safetensors > /dev/null
"$nnc" build tiny.nn --emit=library --weights tiny.safetensors -o libtiny 2> build.log ||
  fail "build: $(cat build.log)"
[ -f libtiny.a ] && [ -f libtiny.h ] || fail "no libtiny.a and libtiny.h: $(ls)"

cat > predict.c <<'C'
/* Predicts an IDX file of images (bytes scaled to [0, 1], as the trainer reads them); writes the raw floats. */
#include <stdio.h>
#include <stdlib.h>
#include "libtiny.h"
int main(int argc, char **argv) {
  unsigned char header[16];
  FILE *in = argc == 2 ? fopen(argv[1], "rb") : NULL;
  if (!in || fread(header, 1, 16, in) != 16) return 2;
  int64_t n = (int64_t)header[4] << 24 | header[5] << 16 | header[6] << 8 | header[7];
  unsigned char *bytes = malloc(TINY_INPUT_SIZE * n);
  float *x = malloc(sizeof(float) * TINY_INPUT_SIZE * n), *out = malloc(sizeof(float) * TINY_OUTPUT_SIZE * n);
  if (fread(bytes, TINY_INPUT_SIZE, n, in) != (size_t)n) return 2;
  for (int64_t i = 0; i < TINY_INPUT_SIZE * n; ++i) x[i] = (float)bytes[i] / 255.0f;
  int status = tiny_predict(x, n, out);
  if (status != TINY_OK) {
    fprintf(stderr, "%s%s\n", status == TINY_UNSUPPORTED_CPU ? "unsupported CPU: " : "", tiny_last_error());
    return 1;
  }
  fwrite(out, sizeof(float) * TINY_OUTPUT_SIZE, n, stdout);
  return tiny_predict(x, -1, out) == TINY_BAD_ARGUMENT && *tiny_last_error() ? 0 : 3;
}
C
cc -std=c99 -Wall -Werror -o predict predict.c libtiny.a -lm -lpthread 2> link.log || fail "plain cc link: $(cat link.log)"
# Nothing from the C++ runtime: the archive's undefined symbols are libc's, libm's and its own.
nm -u libtiny.a > undefined.txt || fail "nm -u libtiny.a failed"
grep -q ' U ' undefined.txt || fail "nm listed no undefined symbols of libtiny.a"
if grep -E ' U (_ZS|_ZN[0-9]*__gnu|_ZT|__cxa|__gxx|_Unwind)' undefined.txt; then fail "libtiny.a needs libstdc++"; fi

gunzip -c /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz > t10k-images
./tiny predict --weights tiny.safetensors t10k-images -o trainer.npy > /dev/null
./predict t10k-images > library.raw || fail "predict.c exited $?"
[ "$(stat -c %s library.raw)" -eq 400000 ] || fail "library.raw has $(stat -c %s library.raw) bytes, expected 10000 x 10 floats"
# The NPY's data is its last 400000 bytes (after the header).
cmp <(tail -c 400000 trainer.npy) library.raw || fail "the library's outputs differ from the trainer's predict -o"

# On a CPU without a feature the kernels need (NNC_HIDE_CPU_FEATURES, as for trainers: the last the trainer, built
# for the same host target, needs), the first call returns TINY_UNSUPPORTED_CPU naming it instead of dying of SIGILL.
needed=$(./tiny info | sed -n 's/^needs CPU features: //p')
feature=${needed##*, }
[ -n "$feature" ] || fail "tiny info names no CPU features"
code=0
NNC_HIDE_CPU_FEATURES=$feature ./predict t10k-images > /dev/null 2> cpu.log || code=$?
refusal="^unsupported CPU: tiny_predict: the library was compiled for host (.*); this CPU lacks $feature:"
[ "$code" -eq 1 ] && grep -q "$refusal" cpu.log || fail "without $feature (exit $code): $(cat cpu.log)"

# Halide's hooks (runtime/predict_library.cpp), with the archive's executor and a stand-in kernel whose loop body
# fails on another thread: the call's message has the error, and this program's own hooks, set before the first
# call, still get what is theirs (its own error; the library's loops run through its parallel loop).
cat > hooks.cpp <<'CPP'
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "runtime/predict_library.h"
extern "C" {  // from HalideRuntime.h
typedef int (*halide_task_t)(void *, int, uint8_t *);
typedef int (*halide_do_par_for_t)(void *, halide_task_t, int, int, uint8_t *);
typedef void (*halide_error_handler_t)(void *, const char *);
halide_error_handler_t halide_set_error_handler(halide_error_handler_t);
halide_do_par_for_t halide_set_custom_do_par_for(halide_do_par_for_t);
int halide_do_par_for(void *, halide_task_t, int, int, uint8_t *);
void halide_error(void *, const char *);
}
char seen[1000];  // what this program's error handler received
int loops = 0;
void handler(void *, const char *message) { strncat(seen, message, sizeof seen - strlen(seen) - 1); }
struct Body { halide_task_t task; void *user_context; int index; uint8_t *closure; int result; };
void *runBody(void *p) {
  Body *b = static_cast<Body *>(p);
  b->result = b->task(b->user_context, b->index, b->closure);
  return nullptr;
}
int parallelLoop(void *user_context, halide_task_t task, int min, int size, uint8_t *closure) {  // a thread per body
  ++loops;
  for (int i = min; i < min + size; ++i) {
    Body b = {task, user_context, i, closure, 0};
    pthread_t thread;
    pthread_create(&thread, nullptr, runBody, &b);
    pthread_join(thread, nullptr);
    if (b.result) return b.result;
  }
  return 0;
}
pthread_t caller;
int failingBody(void *user_context, int, uint8_t *) {
  if (pthread_equal(pthread_self(), caller)) return 0;
  halide_error(user_context, "a loop body failed on another thread");
  return -7;
}
int failingKernel(void **) { return halide_do_par_for(nullptr, failingBody, 0, 2, nullptr); }
int main() {
  using namespace nnc::rt;
  caller = pthread_self();
  halide_set_error_handler(handler);
  halide_set_custom_do_par_for(parallelLoop);
  const PlanCallSpec call = {failingKernel, "failing", "", 0, nullptr};
  const PlanSpec plan = {"predict", false, 2, 0, nullptr, 1, &call, 0, 1, 0, 0};
  const PredictLibrarySpec spec = {"fake", &plan, {"x", false, 2, {kBatchDim, 1}}, 2, {kBatchDim, 1}, 0, nullptr,
                                   nullptr, nullptr, "regress", "mse", 0, "test", nullptr, 0};
  float x[3] = {1, 2, 3}, out[3];
  int status = predictWithLibrary(spec, x, 3, out);
  printf("status %d: %s\n", status, libraryError());
  halide_error(nullptr, "this program's own error");
  printf("its handler: %s\nits loops: %d\n", seen, loops);
}
CPP
c++ -std=c++20 -I"$src" -o hooks hooks.cpp libtiny.a -lpthread 2> link.log || fail "hooks.cpp: $(cat link.log)"
./hooks > hooks.txt || fail "hooks exited $?"
printf '%s\n' "status 3: fake_predict: kernel \`failing\` failed (-7): a loop body failed on another thread" \
  "its handler: this program's own error" "its loops: 1" | cmp -s - hooks.txt || fail "Halide's hooks: $(cat hooks.txt)"

expect_error() {  # PATTERN ARGS...: nnc build exits 1 with PATTERN in its message
  local pattern=$1 code=0
  shift
  "$nnc" build tiny.nn "$@" 2> err.log || code=$?
  [ "$code" -eq 1 ] && grep -q -- "$pattern" err.log || fail "nnc build $* (exit $code): $(cat err.log)"
}
expect_error "needs --weights CKPT" --emit=library -o libnone
expect_error "unknown --emit value \`shared\`" --emit=shared -o libnone
expect_error "--weights is for --emit=library" --weights tiny.safetensors -o none
sed 's/tiny/other/; s/\bh\b/g/g; s/, 32)/, 16)/' tiny.nn > other.nn  # its layer `g`, not `h`
"$nnc" build other.nn -o other 2> /dev/null && ./other train --max-steps 1 --save other.safetensors > /dev/null
expect_error "other.safetensors: this checkpoint does not fit model \`tiny\` (5 mismatches)" --emit=library \
  --weights other.safetensors -o libnone
grep -q "^  no tensor \`h.weight\` \[32, 784\]$" err.log || fail "the missing tensor unnamed: $(cat err.log)"
[ ! -e libnone.a ] && [ ! -e libnone.h ] || fail "a refused build wrote libnone"

# Failures after the up-front checks are the user's (exit 1), as the trainer build reports them: the output
# directory vanishes during the build (the message names the path and the OS's reason); Halide's Adams2019 fails
# (Halide 14's writes HL_SCHEDULE_FILE and asserts that it could). Neither leaves a file or a temporary behind.
mkdir -p gone tmp
TMPDIR=$PWD/tmp "$nnc" build tiny.nn --emit=library --weights tiny.safetensors --no-cache -o gone/libgone 2> err.log &
pid=$!
while [ ! -d "tmp/nnc-build-$pid" ] && kill -0 "$pid" 2> /dev/null; do sleep 0.01; done  # past the checks
rm -r gone
code=0
wait "$pid" || code=$?
[ "$code" -eq 1 ] && grep -qx "nnc: error: gone/libgone.a: cannot create temporary file: No such file or directory" \
  err.log || fail "output directory removed during the build (exit $code): $(cat err.log)"
autoscheduler_failed="^nnc: error: the kernels Halide's adams2019 autoscheduler scheduled do not compile with Halide 14"
HL_SCHEDULE_FILE=$PWD/none/schedule.txt expect_error "$autoscheduler_failed: .*Failed to write" \
  --emit=library --weights tiny.safetensors --schedule=adams2019 --no-cache -o libauto
grep -q "^nnc: --schedule=manual (the default) builds this model" err.log || fail "no way out named: $(cat err.log)"
leftovers=$(ls -A | grep -E '^libauto|\.tmp\.' || true)
[ -z "$leftovers" ] || fail "failed builds left $leftovers"
echo "inference_library: ok ($(sed -n 's/.* in \([0-9.]* s\).*/\1/p' build.log) for the library)"
