#!/usr/bin/env bash
# Data-parallel training over OpenMPI on this machine (shared memory between ranks): `mpirun -np 2 TRAINER train
# --batch 32` against one process with --batch 64, through the trainer's own loop (shuffled epochs, a short last
# batch, rank 0 alone printing and saving): after 50 steps of mlp (SGD with momentum) and of LeNet-5's layers with
# SGD every parameter within float32 rounding of the single process's (only the order of sums differs), one step
# of LeNet-5 with its own Adam likewise, 50 steps of a dropout model (the masks follow the global row), a data set
# whose last batch leaves rank 0 no rows; 2 ranks twice give the same bits, and so do gradients all-reduced in
# buckets during the backward pass (--bucket-kb) and after it; mlp's and LeNet-5's epochs reach the single
# process's test accuracy within 0.003, a 2-rank run resumes a 1-process one of the same global batch, and another global batch
# is refused.
# Usage: data_parallel.sh NNC SOURCE_DIR WORK_DIR TENSOR_DIFF
set -euo pipefail
nnc=$1 src=$2 work=$3 tensor_diff=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
if ! command -v mpirun > /dev/null; then
  echo "data_parallel: no mpirun (install openmpi-bin and libopenmpi3: scripts/setup.sh does)" >&2
  exit 77
fi
# As root in a container, OpenMPI needs both flags; --oversubscribe lets 2 ranks share cores with the tests.
mpi=(mpirun --allow-run-as-root --oversubscribe -np 2)
accuracy() { sed -n 's/.*"test_accuracy":\([0-9.]*\).*/\1/p' "$1" | tail -1; }
# LeNet-5's layers with SGD and momentum: Adam's own run is checked for one step below.
sed 's/^ *optimizer = adam(.*)/    optimizer = sgd(lr = 0.02, momentum = 0.9)/' "$src/examples/lenet5.nn" > lenet5_sgd.nn
grep -q 'optimizer = sgd' lenet5_sgd.nn || fail "lenet5_sgd.nn: the optimizer line of lenet5.nn was not found"
cp "$src/examples/mlp.nn" .
for model in mlp lenet5_sgd; do
  "$nnc" build "$model.nn" -o "$model" 2> build.log || fail "$model: $(cat build.log)"
  ./"$model" train --max-steps 50 --batch 64 --threads 1 --save "$model-1x64.safetensors" > "$model-1x64.log" 2>&1 ||
    fail "$model, one process: $(tail -3 "$model-1x64.log")"
  # a and b all-reduce after the backward pass; c in buckets of 16 KB as it goes. With 2 ranks each sum has two
  # terms, so the bucketing cannot change a bit.
  for run in a:0 b:0 c:16; do
    "${mpi[@]}" ./"$model" train --max-steps 50 --batch 32 --threads 1 --bucket-kb "${run#*:}" \
      --save "$model-2x32${run%:*}.safetensors" > "$model-2x32${run%:*}.log" 2>&1 ||
      fail "$model, 2 ranks: $(tail -5 "$model-2x32${run%:*}.log")"
  done
  "$tensor_diff" "$model-2x32a.safetensors" "$model-2x32b.safetensors" 0 0 > "$model-again.diff" ||
    fail "$model: two 2-rank runs differ: $(grep 'OUT OF' "$model-again.diff")"
  "$tensor_diff" "$model-2x32a.safetensors" "$model-2x32c.safetensors" 0 0 > "$model-buckets.diff" ||
    fail "$model: gradients all-reduced in buckets during the backward pass differ: $(grep 'OUT OF' "$model-buckets.diff")"
  lines=$(grep -c '^epoch 1: ' "$model-2x32a.log" || true)
  [ "$lines" = 1 ] || fail "$model: $lines epoch lines from 2 ranks (rank 0 alone prints)"
  "$tensor_diff" "$model-1x64.safetensors" "$model-2x32a.safetensors" 1e-7 1e-4 > "$model.diff" ||
    fail "$model: 2 ranks x 32 against 1 x 64 after 50 steps: $(grep 'OUT OF' "$model.diff")"
done
echo "mlp and LeNet-5 (SGD): 2 ranks x 32 match 1 x 64 after 50 steps; 2-rank runs are identical, bucketed or not"
"$nnc" build "$src/examples/lenet5.nn" -o lenet5 2> build.log || fail "lenet5: $(cat build.log)"
# LeNet-5 trains with Adam, which turns rounding noise in zero gradients (dead units) into steps of lr either way;
# from there the runs part like two seeds (1e-5 after 20 steps, 1e-2 after 50). So one step from one checkpoint,
# on grads' batch (the first 64 examples), with tests/tensor_diff.cpp's Adam bound for those elements.
./lenet5 train --max-steps 3 --batch 64 --threads 1 --save lenet5-start.safetensors > /dev/null 2>&1
./lenet5 grads --weights lenet5-start.safetensors --batch 64 -o lenet5-grads.safetensors > /dev/null
./lenet5 train --init lenet5-start.safetensors --max-steps 1 --no-shuffle --batch 64 --threads 1 \
  --save lenet5-step-1x64.safetensors > /dev/null 2>&1
"${mpi[@]}" ./lenet5 train --init lenet5-start.safetensors --max-steps 1 --no-shuffle --batch 32 --threads 1 \
  --save lenet5-step-2x32.safetensors > lenet5-step.log 2>&1 || fail "lenet5 step on 2 ranks: $(tail -5 lenet5-step.log)"
lr=$(./lenet5 info | sed -n 's/^optimizer: adamw\{0,1\} (lr \([0-9.e-]*\),.*/\1/p')
"$tensor_diff" lenet5-step-1x64.safetensors lenet5-step-2x32.safetensors 1e-7 1e-4 lenet5-grads.safetensors "$lr" \
  > lenet5.diff || fail "lenet5: a step of 2 ranks x 32 against 1 x 64: $(grep 'OUT OF' lenet5.diff)"
echo "lenet5: an Adam step of 2 ranks x 32 matches 1 x 64"

# Dropout: the masks count rows from the step's global batch, so 2 ranks draw the masks one process does.
cat > drop.nn << 'MODEL'
model drop(x: f32[B, 784], y: i32[B]) {
    hidden = linear(x, 64)
    logits = linear(dropout(relu(hidden), p = 0.3), 10)
    loss = cross_entropy(logits, y)
    return logits
}
train {
    data = "/usr/share/datasets/fashion-mnist"
    batch = 64
    optimizer = sgd(lr = 0.05)
}
MODEL
"$nnc" build drop.nn -o drop 2> build.log || fail "drop.nn: $(cat build.log)"
./drop train --max-steps 50 --threads 1 --save drop-1x64.safetensors > /dev/null 2>&1
"${mpi[@]}" ./drop train --max-steps 50 --batch 32 --threads 1 --save drop-2x32.safetensors > drop.log 2>&1 ||
  fail "dropout model on 2 ranks: $(tail -5 drop.log)"
"$tensor_diff" drop-1x64.safetensors drop-2x32.safetensors 1e-7 1e-4 > drop.diff ||
  fail "dropout: 2 ranks x 32 against 1 x 64 after 50 steps: $(grep 'OUT OF' drop.diff)"
echo "dropout: 2 ranks x 32 draw the masks of 1 x 64 (50 steps match)"

# 65 examples in batches of 64: each epoch's second step has one row, rank 1's, and rank 0 none (it sends zeros
# for its share, in the same all-reduces as rank 1).
mkdir -p rows65-data
awk 'BEGIN { srand(3); print "a,b,c,d,label"; for (i = 0; i < 65; i++) { a = rand(); b = rand(); c = rand(); d = rand();
  printf "%.4f,%.4f,%.4f,%.4f,%d\n", a, b, c, d, (a + b > c + d) } }' > rows65-data/train.csv
head -11 rows65-data/train.csv > rows65-data/test.csv
cat > rows65.nn << 'MODEL'
model rows65(x: f32[B, 4], y: i32[B]) {
    hidden = linear(x, 128)
    logits = linear(tanh(hidden), 2)
    loss = cross_entropy(logits, y)
    return logits
}
train {
    data = "rows65-data"
    batch = 64
    optimizer = sgd(lr = 0.1, momentum = 0.9)
}
MODEL
"$nnc" build rows65.nn -o rows65 2> build.log || fail "rows65.nn: $(cat build.log)"
./rows65 train --epochs 20 --threads 1 --save rows65-1x64.safetensors > /dev/null 2>&1
for kb in 0 1; do
  "${mpi[@]}" ./rows65 train --epochs 20 --batch 32 --threads 1 --bucket-kb $kb --save "rows65-2x32-$kb.safetensors" \
    > rows65.log 2>&1 || fail "65 examples on 2 ranks, --bucket-kb $kb: $(tail -5 rows65.log)"
done
"$tensor_diff" rows65-1x64.safetensors rows65-2x32-0.safetensors 1e-7 1e-4 > rows65.diff ||
  fail "a last batch of one row: 2 ranks x 32 against 1 x 64 after 20 epochs: $(grep 'OUT OF' rows65.diff)"
"$tensor_diff" rows65-2x32-0.safetensors rows65-2x32-1.safetensors 0 0 > rows65-buckets.diff ||
  fail "a last batch of one row: 1 KB buckets against one all-reduce: $(grep 'OUT OF' rows65-buckets.diff)"
echo "a last batch of one row: 2 ranks x 32 match 1 x 64 after 20 epochs, bucketed or not"

# bench under mpirun times the data-parallel step; the ranks must make the same calls (a fixed --steps default).
timeout 120 "${mpi[@]}" ./mlp bench --entry split_step --batch 32 --threads 1 --repeats 2 --benchmark_color=false \
  > bench.log 2>&1 || fail "bench on 2 ranks: exit $?, $(tail -3 bench.log)"
[ "$(grep -c '^split_step: batch 64 (2 ranks x 32), ' bench.log)" = 1 ] || fail "bench on 2 ranks printed: $(grep '^split_step' bench.log)"
echo "bench --entry split_step on 2 ranks: $(grep '^split_step: ' bench.log)"

# A resume across rank counts: the same global batch continues; another is refused.
./mlp train --max-steps 20 --batch 64 --threads 1 --save resume.safetensors > resume1.log 2>&1
"${mpi[@]}" ./mlp train --max-steps 50 --batch 32 --threads 1 --resume resume.safetensors --save resumed.safetensors \
  > resume2.log 2>&1 || fail "2 ranks resuming 1 x 64: $(tail -5 resume2.log)"
"$tensor_diff" mlp-1x64.safetensors resumed.safetensors 1e-7 1e-4 > resumed.diff ||
  fail "20 steps of 1 x 64, then 30 of 2 x 32, against 50 of 1 x 64: $(grep 'OUT OF' resumed.diff)"
set +e; "${mpi[@]}" ./mlp train --batch 64 --threads 1 --resume resume.safetensors > refused.log 2>&1; code=$?; set -e
[ "$code" != 0 ] && grep -q "the saved run has batch 64, this one 128 (2 ranks x --batch)" refused.log ||
  fail "2 ranks x 64 resuming 1 x 64: exit $code, $(tail -3 refused.log)"
echo "resume: 2 x 32 continues 1 x 64; 2 x 64 is refused"

# One epoch of each (LeNet-5 with its own Adam: the runs part, but not in accuracy).
for model in mlp lenet5; do
  ./"$model" train --epochs 1 --batch 64 --threads 1 --save "$model-epoch1.safetensors" --metrics "$model-one.jsonl" \
    > "$model-epoch1.log" 2>&1
  "${mpi[@]}" ./"$model" train --epochs 1 --batch 32 --threads 1 --save "$model-epoch2.safetensors" \
    --metrics "$model-two.jsonl" > "$model-epoch2.log" 2>&1 || fail "$model epoch on 2 ranks: $(tail -5 "$model-epoch2.log")"
  one=$(accuracy "$model-one.jsonl") two=$(accuracy "$model-two.jsonl")
  awk -v a="$two" -v b="$one" 'BEGIN { exit !(a != "" && a - b <= 0.003 && b - a <= 0.003) }' ||
    fail "$model after an epoch: 2 ranks $two, 1 process $one"
  echo "$model, one epoch: test accuracy $two on 2 ranks x 32, $one on 1 x 64"
done
# eval on 2 ranks: each takes every other batch; rank 0 alone prints the one process's figures.
./mlp eval --weights mlp-epoch2.safetensors --threads 1 > eval1.log
"${mpi[@]}" ./mlp eval --weights mlp-epoch2.safetensors --threads 1 > eval2.log 2>&1 || fail "eval on 2 ranks: $(cat eval2.log)"
[ "$(grep -c '^test_loss' eval2.log)" = 1 ] && [ "$(grep '^test_loss' eval2.log)" = "$(cat eval1.log)" ] ||
  fail "eval on 2 ranks printed $(cat eval2.log), one process $(cat eval1.log)"

# A rank killed mid-epoch: mpirun ends the other within seconds, with an error, and the last checkpoint loads.
"${mpi[@]}" ./mlp train --epochs 3 --batch 32 --threads 1 --save-every 50 --save killed.safetensors > killed.log 2>&1 &
job=$!
rank1=""
for ((i = 0; i < 100; i++)); do
  [ -z "$rank1" ] || break
  sleep 0.2
  [ -e killed.safetensors ] || continue
  for pid in $(pgrep -f "mlp train --epochs 3" || true); do
    tr '\0' '\n' < "/proc/$pid/environ" 2> /dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && rank1=$pid
  done
done
[ -n "$rank1" ] || { kill "$job" 2> /dev/null; fail "no checkpoint or no rank 1 within 20 s: $(tail -3 killed.log)"; }
kill -9 "$rank1"
for ((i = 0; i < 100; i++)); do kill -0 "$job" 2> /dev/null || break; sleep 0.1; done
if kill -0 "$job" 2> /dev/null; then kill -9 "$job"; fail "10 s after rank 1 was killed, mpirun still runs"; fi
set +e; wait "$job"; code=$?; set -e
[ "$code" != 0 ] || fail "mpirun exited 0 after rank 1 was killed"
./mlp eval --weights killed.safetensors --threads 1 > killed-eval.log 2>&1 || fail "the checkpoint after the kill: $(cat killed-eval.log)"
echo "a killed rank ends the run (mpirun exit $code) and the last checkpoint loads"
