#!/usr/bin/env bash
# End to end: nnc builds a trainer from examples/mlp.nn, which trains a few steps on Fashion-MNIST, writes
# metrics and a checkpoint that round-trips through --init and eval, and rejects broken checkpoints clearly.
# Usage: e2e_trainer.sh NNC SOURCE_DIR WORK_DIR SLOW_RENAME_SHIM MALLOC_COUNT_SHIM
set -euo pipefail
nnc=$1 src=$2 work=$3 shim=$4 malloc_shim=$5
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$nnc" build "$src/examples/mlp.nn" -o mlp
# The kernel cache: an unchanged model reuses its kernels, a changed one or --no-cache compiles again.
"$nnc" build "$src/examples/mlp.nn" -o mlp 2> build.log
grep -q "kernels from the cache" build.log || fail "unchanged model not cached: $(cat build.log)"
"$nnc" build --no-cache "$src/examples/mlp.nn" -o mlp 2> build.log
grep -q "kernels from the cache" build.log && fail "--no-cache used the cache"
# A changed model misses a cache that holds the original's kernels (a fresh one: the shared cache may hold the
# changed model's kernels from an earlier run of this test).
sed 's/linear(pixels, 256)/linear(pixels, 255)/' "$src/examples/mlp.nn" > mlp255.nn
NNC_CACHE_DIR=$PWD/fresh-cache "$nnc" build "$src/examples/mlp.nn" -o mlp 2> /dev/null
NNC_CACHE_DIR=$PWD/fresh-cache "$nnc" build mlp255.nn -o mlp255 2> build.log
grep -q "kernels from the cache" build.log && fail "a changed model got cached kernels"
./mlp info | grep -q "param fc1.weight: f32\[256, 784\]" || fail "info lacks fc1.weight"

# bench: Google Benchmark over the trainer's three entry points; the summary line per entry, or Google
# Benchmark's JSON when asked for; its flags pass through and unknown ones are refused.
./mlp bench --steps 3 --repeats 2 --threads 1 > bench.log
for entry in train_step grads predict; do
  grep -qE "^$entry: batch [0-9]+, [0-9.]+ ms/step, [0-9]+ images/s" bench.log || fail "bench: $(cat bench.log)"
done
grep -q "^predict: batch 256," bench.log || fail "predict is not timed at batch 256: $(cat bench.log)"
./mlp bench --entry grads --batch 8 --benchmark_min_time=0.01 --benchmark_format=json > bench.json
python3 -c 'import json, sys; b = json.load(open("bench.json"))["benchmarks"]; sys.exit(not (len(b) == 1 and b[0]["name"].startswith("grads") and b[0]["items_per_second"] > 0))' ||
  fail "bench json: $(cat bench.json)"
if ./mlp bench --benchmark_no_such_flag 2> err.txt > /dev/null; then fail "unknown benchmark flag accepted"; fi

./mlp train --max-steps 40 --save a.safetensors --metrics m.jsonl --threads 1 > train.log
grep -q '"step":40' m.jsonl || fail "metrics: $(cat m.jsonl)"
for key in epoch step train_loss test_loss test_accuracy seconds; do
  grep -q "\"$key\":" m.jsonl || fail "metrics lack $key"
done
trained=$(grep -o 'test_accuracy [0-9.]*' train.log | awk '{print $2}')
awk -v a="$trained" 'BEGIN { exit !(a > 0.5) }' || fail "40 steps reached only accuracy $trained"

# No schedule splits a reduction across threads, so the thread count does not change a single bit.
./mlp train --max-steps 20 --threads 2 --save a2.safetensors > /dev/null
./mlp train --max-steps 20 --threads 1 --save a1.safetensors > /dev/null
cmp a1.safetensors a2.safetensors || fail "1 and 2 threads give different parameters"

# No allocation in the training hot loop: 20 and 60 steps make the same number of malloc calls.
for steps in 20 60; do
  NNC_TEST_MALLOC_COUNT=mallocs$steps LD_PRELOAD=$malloc_shim ./mlp train --max-steps $steps > /dev/null
done
[ "$(cat mallocs20)" = "$(cat mallocs60)" ] || fail "steps allocate: $(cat mallocs20) mallocs in 20 steps, $(cat mallocs60) in 60"

# Round trip: eval of the saved checkpoint reports the accuracy that training printed.
evaluated=$(./mlp eval --weights a.safetensors | grep -o 'test_accuracy [0-9.]*' | awk '{print $2}')
[ "$trained" = "$evaluated" ] || fail "eval gives $evaluated, training printed $trained"
# --init continues from the checkpoint: 0 further steps would be identical, so take one and compare files differ.
./mlp train --init a.safetensors --max-steps 1 --save b.safetensors > /dev/null
cmp -s a.safetensors b.safetensors && fail "--init + 1 step left the parameters unchanged"

# Broken checkpoints: exit 1 with the file and the problem named.
head -c 100 a.safetensors > truncated.safetensors
if ./mlp eval --weights truncated.safetensors 2> err.txt; then fail "truncated checkpoint accepted"; fi
grep -q "truncated.safetensors" err.txt && grep -qi "truncated" err.txt || fail "truncated: $(cat err.txt)"
if ./mlp eval --weights "$src/examples/mlp.nn" 2> err.txt; then fail "foreign file accepted"; fi
grep -q "not a safetensors file" err.txt || fail "foreign: $(cat err.txt)"
"$nnc" build "$src/examples/logreg.nn" -o logreg
# --schedule: an unknown policy is refused; one of Halide's autoschedulers builds a trainer that trains.
if "$nnc" build --schedule=fastest "$src/examples/logreg.nn" -o bad 2> err.txt; then fail "unknown schedule accepted"; fi
grep -q "unknown schedule policy \`fastest\`" err.txt || fail "schedule: $(cat err.txt)"
"$nnc" build --schedule=mullapudi2016 "$src/examples/logreg.nn" -o logreg_auto 2> /dev/null
./logreg_auto train --max-steps 5 > auto.log && grep -q "test_accuracy" auto.log || fail "autoscheduled: $(cat auto.log)"
./logreg train --max-steps 5 --save logreg.safetensors > /dev/null
# predict on an IDX file the user brings: class probabilities as .npy.
zcat /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz > images-idx
./logreg predict --weights logreg.safetensors images-idx -o probabilities.npy > predict.log
[ "$(head -c 6 probabilities.npy | tail -c 5)" = "NUMPY" ] || fail "predict -o wrote no .npy"
grep -q "\[10000, 10\]" predict.log || fail "predict: $(cat predict.log)"

# Validation split, early stopping, learning-rate schedule, metrics and plot.
./logreg train --epochs 3 --validation-split 0.2 --patience 1 --lr-schedule cosine --plot curves.svg \
  --metrics val.jsonl --save best.safetensors > val.log
[ "$(wc -l < val.jsonl)" -ge 1 ] && grep -q '"val_accuracy":' val.jsonl && grep -q '"lr":' val.jsonl ||
  fail "validation metrics: $(cat val.jsonl)"
grep -q "<svg" curves.svg && grep -q 'data-series="val loss"' curves.svg || fail "plot: $(head -c 300 curves.svg)"
if grep -q "early stopping" val.log; then grep -q "best epoch" val.log || fail "early stopping report: $(cat val.log)"; fi
if ./mlp eval --weights logreg.safetensors 2> err.txt; then fail "another model's checkpoint accepted"; fi
grep -q "fc1.weight" err.txt || fail "wrong model: $(cat err.txt)"
# Every mismatch is listed: mlp's 6 tensors are missing, logreg's 2 are foreign.
grep -q "(8 mismatches)" err.txt && grep -q "tensor \`W\` \[784, 10\] is not in the model" err.txt ||
  fail "mismatch list: $(cat err.txt)"
# A damaged checkpoint (one flipped bit in the tensor data) fails its checksum.
cp logreg.safetensors damaged.safetensors
printf '\x01' | dd of=damaged.safetensors bs=1 seek=$(($(stat -c %s damaged.safetensors) - 3)) conv=notrunc 2> /dev/null
if ./logreg eval --weights damaged.safetensors 2> err.txt; then fail "damaged checkpoint accepted"; fi
grep -q "checksum mismatch" err.txt || fail "damaged: $(cat err.txt)"
# A loss that becomes NaN stops the run (exit 1) naming the step, with the last good parameters saved.
set +e
./mlp train --lr 1e30 --max-steps 200 --save nan.safetensors > /dev/null 2> err.txt; code=$?
set -e
[ "$code" = 1 ] && grep -q "the loss became .* at step" err.txt && grep -q "learning rate" err.txt ||
  fail "NaN loss: exit $code, $(cat err.txt)"
./mlp eval --weights nan.safetensors > /dev/null || fail "the last good parameters did not load"

# Bad flags are user errors (exit 1).
set +e
./mlp train --epochs zero 2> err.txt; code=$?
set -e
[ "$code" = 1 ] && grep -q -- "--epochs" err.txt || fail "bad flag: exit $code, $(cat err.txt)"
# XOR (2-2-1) from a CSV data directory reaches 100% training accuracy; a single linear layer cannot pass 75%
# (no line separates XOR). A malformed CSV names the file and line.
"$nnc" build "$src/examples/xor.nn" -o xor
./xor train --data "$src/examples/data/xor" --save xor.safetensors > xor.log
grep "^epoch 300:" xor.log | grep -q "train_accuracy 1.0000" || fail "xor: $(tail -n 3 xor.log)"
sed -e 's/hidden = linear(x, 2)/hidden = x/' "$src/examples/xor.nn" > linear_xor.nn
"$nnc" build linear_xor.nn -o linear_xor
for seed in 1 2 3; do
  ./linear_xor train --data "$src/examples/data/xor" --seed $seed > linear_xor.log
  grep -q "^epoch 300:.*train_accuracy \(0\.[0-6]\|0\.7[0-5]\)" linear_xor.log || fail "one layer on XOR: $(tail -n 1 linear_xor.log)"
done
# Rosenblatt's perceptron classifies every training point of a separable set.
"$nnc" build "$src/examples/perceptron.nn" -o perceptron
./perceptron train --data "$src/examples/data/separable" > perceptron.log
grep "^epoch 10:" perceptron.log | grep -q "train_accuracy 1.0000" || fail "perceptron: $(tail -n 2 perceptron.log)"
mkdir -p bad-csv && printf 'x1,x2,label\n0,1,1\n1,oops,0\n' > bad-csv/train.csv && cp bad-csv/train.csv bad-csv/test.csv
if ./xor train --data bad-csv 2> err.txt > /dev/null; then fail "malformed CSV accepted"; fi
grep -q "train.csv:3" err.txt || fail "malformed CSV: $(cat err.txt)"

# A model with a shape mistake: exit 1, file:line:col, the source line and a caret, no trainer written.
printf 'model bad(x: f32[B, 784], y: i32[B]) {\n    param W: f32[10, 784] = zeros()\n    logits = x @ W\n    loss = cross_entropy(logits, y)\n    return logits\n}\n' > bad.nn
set +e
"$nnc" build bad.nn -o bad 2> err.txt; code=$?
set -e
[ "$code" = 1 ] || fail "nnc build of a bad model: exit $code"
grep -q "^bad.nn:3:14: error: " err.txt && grep -q "^ *\^" err.txt || fail "bad model diagnostics: $(cat err.txt)"
[ ! -e bad ] || fail "a trainer was written for a bad model"
# An output path in a missing directory is a user error, not an internal one.
set +e
"$nnc" build "$src/examples/logreg.nn" -o missing-dir/t 2> err.txt; code=$?
set -e
[ "$code" = 1 ] && grep -q "missing-dir" err.txt || fail "bad -o: exit $code, $(cat err.txt)"
# Data options: the CSV label column by index; normalization fitted on the training split and saved with the
# checkpoint, so eval reproduces training's accuracy; augmentation, deterministic per seed, only for images.
./xor train --data "$src/examples/data/xor" --label-column 2 --epochs 1 --save lc.safetensors > /dev/null
if ./xor train --data "$src/examples/data/xor" --label-column 7 2> err.txt > /dev/null; then fail "label column 7"; fi
grep -q "out of range" err.txt || fail "label column: $(cat err.txt)"
./logreg train --max-steps 50 --normalize standardize --save std.safetensors > std.log
trained=$(grep -o 'test_accuracy [0-9.]*' std.log | awk '{print $2}')
evaluated=$(./logreg eval --weights std.safetensors | grep -o 'test_accuracy [0-9.]*' | awk '{print $2}')
[ "$trained" = "$evaluated" ] || fail "standardized: eval gives $evaluated, training printed $trained"
if ./logreg train --max-steps 5 --augment-flip 0.5 2> err.txt > /dev/null; then fail "augmented a non-image"; fi
grep -q "needs an image input" err.txt || fail "augment: $(cat err.txt)"
printf 'model tiny(x: f32[B, 1, 28, 28], y: i32[B]) {\n    logits = linear(flatten(x), 10)\n    loss = cross_entropy(logits, y)\n    return logits\n}\n' > tiny.nn
"$nnc" build tiny.nn -o tiny
for run in 1 2; do ./tiny train --max-steps 30 --augment-flip 0.5 --augment-shift 2 --save aug$run.safetensors > /dev/null; done
./tiny train --max-steps 30 --save plain.safetensors > /dev/null
cmp aug1.safetensors aug2.safetensors || fail "augmentation is not reproducible"
cmp -s aug1.safetensors plain.safetensors && fail "augmentation changed nothing"

# Exact resume: 1 epoch, save, resume for a second is bit for bit 2 epochs in one run (Adam state, dropout
# masks, BatchNorm buffers, schedule, early-stopping record), and the metrics of the shared epoch are identical.
"$nnc" build "$src/examples/mlp_bn_dropout.nn" -o mbd
./mbd train --epochs 2 --save two.safetensors --metrics two.jsonl > /dev/null
./mbd train --epochs 1 --save one.safetensors --metrics one.jsonl > /dev/null
./mbd train --epochs 2 --resume one.safetensors --save one.safetensors --metrics one.jsonl > /dev/null
cmp two.safetensors one.safetensors && cmp two.safetensors.resume one.safetensors.resume ||
  fail "resumed run differs from the uninterrupted one"
diff <(sed 's/"seconds":[0-9.e+-]*//' two.jsonl) <(sed 's/"seconds":[0-9.e+-]*//' one.jsonl) ||
  fail "metrics differ between identical runs"
if ./mbd train --resume one.safetensors --seed 9 2> err.txt > /dev/null; then fail "resume with another seed"; fi
grep -q "seed 1, this one 9" err.txt || fail "resume seed check: $(cat err.txt)"

# SIGKILL while saving (held inside rename() by the shim) leaves the previous checkpoint and state intact.
cp one.safetensors kept.safetensors && cp one.safetensors.resume kept.safetensors.resume
rm -f mark
NNC_TEST_RENAME_MARK=$PWD/mark LD_PRELOAD=$shim ./mbd train --epochs 3 --resume one.safetensors \
  --save one.safetensors > /dev/null 2>&1 &
pid=$!
for _ in $(seq 600); do [ -e mark ] && break; sleep 0.1; done
[ -e mark ] || fail "the trainer never reached its save"
kill -9 $pid
wait $pid 2> /dev/null || true
cmp one.safetensors kept.safetensors && cmp one.safetensors.resume kept.safetensors.resume ||
  fail "a killed save damaged the previous checkpoint"
./mbd train --epochs 3 --resume one.safetensors --save one.safetensors > /dev/null || fail "resume after the kill"

# --save-every: the first save comes at step 50, mid-epoch (held in rename() by the shim: the temporary file it
# renames holds the state as of that step).
rm -f mark .every.safetensors.resume.tmp.*
NNC_TEST_RENAME_MARK=$PWD/mark LD_PRELOAD=$shim ./mbd train --epochs 3 --save-every 50 --save every.safetensors \
  > /dev/null 2>&1 &
pid=$!
for _ in $(seq 600); do [ -e mark ] && break; sleep 0.1; done
[ -e mark ] || fail "--save-every never saved"
saved_step=$(python3 -c 'import glob, json, struct, sys
f = open(glob.glob(".every.safetensors.resume.tmp.*")[0], "rb")
n = struct.unpack("<Q", f.read(8))[0]
print(json.loads(f.read(n))["__metadata__"]["step"])')
kill -9 $pid
wait $pid 2> /dev/null || true
[ "$saved_step" = 50 ] || fail "--save-every 50 first saved at step $saved_step"

# Ctrl-C: the step finishes, the checkpoint and its .resume are saved, exit 130; --resume continues from there.
# (Job control on: a script's background jobs otherwise start with SIGINT ignored, which the trainer keeps.)
rm -f int.safetensors*
set -m
./mbd train --epochs 20 --save int.safetensors > int.log 2>&1 &
pid=$!
set +m
for _ in $(seq 600); do grep -q "^epoch 1:" int.log && break; sleep 0.1; done
kill -INT $pid
status=0
wait $pid || status=$?
[ "$status" = 130 ] || fail "SIGINT: exit $status, expected 130: $(tail -3 int.log)"
grep -q "^interrupted (SIGINT) after step [0-9]*, in epoch" int.log && grep -q "continue with --resume int.safetensors" int.log ||
  fail "SIGINT: $(tail -3 int.log)"
[ -f int.safetensors ] && [ -f int.safetensors.resume ] || fail "SIGINT saved nothing"
./mbd train --epochs 20 --max-steps 2000 --resume int.safetensors --save int.safetensors > /dev/null ||
  fail "resume after SIGINT"

echo "e2e trainer: all checks passed"
