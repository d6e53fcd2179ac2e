#!/usr/bin/env bash
# The mutation check: plants small bugs users would feel, one at a time, in a copy of the tree, rebuilds, runs
# the tests that should catch each, and reports caught or MISSED. Not part of every CI run (about 15 minutes on
# 2 cores); run it after changing tests, and quote its table when closing an issue about them.
# Usage: tests/mutation_check.sh [WORK_DIR]   (default /tmp/nnc-mutation; needs python3)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/nnc-mutation}
mkdir -p "$work"
src=$work/src build=$work/build
rm -rf "$src" && mkdir -p "$src"
git -C "$repo" ls-files -z | (cd "$repo" && xargs -0 tar -cf -) | tar -xf - -C "$src"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release > "$work/configure.log"
cmake --build "$build" > "$work/build.log" || { echo "the unmutated tree does not build: $work/build.log"; exit 1; }

# name | file | text | replacement | tests (a ctest regex)
mutants=(
  "Adam bias corrections swapped in the runtime|runtime/kernels.cpp|pow(model.train.beta1, t)|pow(model.train.beta2, t)|TrainerParity|examples_train"
  "Adam betas swapped in the optimizer graph|compiler/autodiff/optimizer.cpp|state(i, \"exp_avg\"), opt_.beta1|state(i, \"exp_avg\"), opt_.beta2|^Optimizers/TrainStep|TrainerParity"
  "ELU's derivative uses 1 for alpha|compiler/graph/op_rules_elementwise.cpp|add(Op::Add, {id, scalar(alpha)})|add(Op::Add, {id, scalar(1)})|^Elementwise/OpGradient|^Activations/"
  "leaky_relu's derivative ignores its slope|compiler/graph/op_rules_elementwise.cpp|scalar(1 - alpha)}), scalar(alpha)|scalar(1)}), scalar(0)|^Elementwise/OpGradient|^Activations/"
  "inverse schedule one step ahead|runtime/lr_schedule.cpp|return lr / (1 + s.k * t);|return lr / (1 + s.k * (t + 1));|TrainerParity|runtime_"
  "cosine schedule one step ahead|runtime/lr_schedule.cpp|static_cast<double>(step) / static_cast<double>(total_steps)|static_cast<double>(step + 1) / static_cast<double>(total_steps)|TrainerParity|LrSchedule"
  "BatchNorm running variance biased|compiler/graph/build_layers.cpp|average(running_var, node(Op::Mul, {var, bessel}, e));|average(running_var, var);|TrainerParity|BatchNorm"
  "gradient clipping without its epsilon|compiler/autodiff/optimizer.cpp|add(norm, number(1e-6))|add(norm, number(1e-2))|^Optimizers/TrainStep|TrainerParity"
  "last partial batch dropped|runtime/train_loop.cpp|int64_t steps_per_epoch = (train_set.count + batch - 1) / batch;|int64_t steps_per_epoch = train_set.count / batch;|TrainerParity|e2e_trainer"
  "the same dropout mask every step|runtime/kernels.cpp|seed ^ (static_cast<uint64_t>(step) * 0xd1b54a32d192ed03ULL)|seed ^ 0xd1b54a32d192ed03ULL|TrainerDropout|^Dropout"
  "convolution kernel read flipped|compiler/lower/lower_conv.cpp|* w(r.x, r.y, r.z, o);|* w(k.kw - 1 - r.x, r.y, r.z, o);|ConvReference|ConvGradient"
  "strided window source not checked for divisibility|compiler/lower/lower_conv.cpp|if (stride > 1) valid = valid && num % stride == 0;|if (stride > 2) valid = valid && num % stride == 0;|ConvReference|ConvGradient"
  "matmul columns rounded up past the end|compiler/schedule/cpu.cpp|round_up ? Halide::TailStrategy::RoundUp : Halide::TailStrategy::ShiftInwards|Halide::TailStrategy::RoundUp|ScheduleMatchesNaive|MatMul"
  "IDX pixels scaled by 256|runtime/dataset.cpp|images.data[i] / 255.0f|images.data[i] / 256.0f|^Mnist\\.|^Idx\\.|e2e_trainer"
  "trainer skips its CPU check|runtime/trainer_cli.cpp|  if (missing.empty()) return;|  return;|^targets$"
  "BF16 read one bit off|runtime/safetensors.cpp|static_cast<uint32_t>(bits) << 16|static_cast<uint32_t>(bits) << 15|^SafetensorsDtypes\\.|pytorch_checkpoint"
  "num_batches_tracked saved as F32|runtime/tensor.cpp|model.params[i].is_integer ? Dtype::I64 : Dtype::F32|Dtype::F32|^Checkpoint\\.|pytorch_checkpoint"
  "host target trusts AVX512-BF16 alone|compiler/target.cpp|\"avx512_bf16\", \"avx512_vnni\", \"avx_vnni\", \"avx512_fp16\"|\"avx512_bf16\", \"avx512_vnni\", \"avx512_fp16\"|^Target\\.|^IsaScan"
)

printf "%-52s %s\n" "planted bug" "result"
caught=0 missed=0
for row in "${mutants[@]}"; do
  IFS='|' read -r name file text replacement tests <<< "$row"
  cp "$src/$file" "$work/original"
  if ! python3 - "$src/$file" "$text" "$replacement" << 'EOF'
import sys
path, text, replacement = sys.argv[1:]
source = open(path).read()
if source.count(text) < 1:
    sys.exit(f"not found in {path}: {text}")
open(path, "w").write(source.replace(text, replacement))
EOF
  then
    printf "%-52s %s\n" "$name" "NOT PLANTED (the code changed; update the mutant)"
    missed=$((missed + 1))
    continue
  fi
  if ! cmake --build "$build" > "$work/mutant.log" 2>&1; then
    result="caught (does not build)"
  elif (cd "$build" && ctest -R "$tests" -j 2 --timeout 600 > "$work/mutant.log" 2>&1); then
    result="MISSED (tests: $tests)"
  else
    result="caught: $(grep -c '\*\*\*Failed\|Failed  \|\*\*\*Exception' "$work/mutant.log" || true) failing tests"
  fi
  case $result in caught*) caught=$((caught + 1)) ;; *) missed=$((missed + 1)) ;; esac
  printf "%-52s %s\n" "$name" "$result"
  cp "$work/original" "$src/$file"
done
echo "caught $caught of $((caught + missed))"
[ "$missed" -eq 0 ]
