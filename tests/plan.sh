#!/usr/bin/env bash
# Plans of kernels (what nnc build compiles, compiler/plan/plan.h): a deep MLP's identical layers share kernels (distinct
# kernels do not grow with depth), its trainer builds from them and trains, a rebuild takes every kernel from the
# cache and a second model reuses the first one's, and `nnc emit --stage=plan` lists calls and kernels.
# Usage: plan.sh NNC SOURCE_DIR WORK_DIR
set -euo pipefail
nnc=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work"
export NNC_CACHE_DIR=$PWD/cache
fail() { echo "FAIL: $*" >&2; exit 1; }

mlp() {  # DEPTH
  echo "model mlp$1(x: f32[B, 784], y: i32[B]) {"
  echo "    h0 = relu(linear(x, 128))"
  for i in $(seq 1 $(($1 - 1))); do echo "    h$i = relu(linear(h$((i - 1)), 128))"; done
  printf "    logits = linear(h%d, 10)\n    loss = cross_entropy(logits, y)\n    return logits\n}\n" $(($1 - 1))
  printf "train {\n    optimizer = sgd(lr = 0.01, momentum = 0.9)\n}\n"
}
mlp 8 > mlp8.nn
mlp 40 > mlp40.nn

kernels() { sed -n 's/^kernels: //p' "$1"; }
calls() { sed -n "s/^entry $2: \([0-9]*\) calls, .*/\1/p" "$1"; }
"$nnc" emit --stage=plan mlp8.nn > plan8.txt
"$nnc" emit --stage=plan mlp40.nn > plan40.txt
[ "$(kernels plan8.txt)" = "$(kernels plan40.txt)" ] ||
  fail "distinct kernels grow with depth: $(kernels plan8.txt) at 8 layers, $(kernels plan40.txt) at 40"
[ "$(calls plan40.txt train_step)" -gt "$(calls plan8.txt train_step)" ] || fail "calls do not grow with depth"
grep -q "^kernel k[0-9a-f]\{16\} ([0-9]* calls):$" plan8.txt || fail "no kernel listed: $(head plan8.txt)"
# The arena: intermediates whose lifetimes do not overlap share memory, so it holds less than all of them and
# at least the largest ([B, 128] activations; weight gradients are computed in their update's kernel).
read -r arena_b arena_f all_b all_f < <(sed -n 's/^entry train_step: .* arena \([0-9]*\) \* B + \([0-9]*\) floats (without sharing \([0-9]*\) \* B + \([0-9]*\))$/\1 \2 \3 \4/p' plan40.txt)
[ "$arena_b" -lt "$all_b" ] && [ "$arena_f" -le "$all_f" ] && [ "$arena_b" -ge 128 ] ||
  fail "arena $arena_b * B + $arena_f against $all_b * B + $all_f unshared"
"$nnc" check mlp40.nn | grep -q "^train_step's intermediates as a plan at batch 64: .* in a planned arena, .* at most with one kernel's own, .* unshared$" ||
  fail "nnc check: $("$nnc" check mlp40.nn | tail -3)"

"$nnc" build mlp8.nn -o mlp8 2> build.log
grep -q "kernels compiled" build.log || fail "build line: $(cat build.log)"
"$nnc" build --plan mlp8.nn -o mlp8 2> build.log  # --plan, the default, is still accepted
grep -q "kernels from the cache" build.log || fail "unchanged model not cached: $(cat build.log)"
# The 40-layer model is the 8-layer one's kernels: nothing new to compile.
"$nnc" build mlp40.nn -o mlp40 2> build.log
grep -q "kernels from the cache" build.log || fail "the deeper model compiled kernels again: $(cat build.log)"

./mlp40 train --max-steps 30 --threads 2 --save mlp40.safetensors --metrics mlp40.jsonl > /dev/null
grep -q '"test_accuracy":0\.[1-9]' mlp40.jsonl || fail "mlp40: $(cat mlp40.jsonl)"
./mlp40 info | grep -q "^param h39.weight: f32\[128, 128\]$" || fail "info: $(./mlp40 info | head)"
echo "plan: ok ($(kernels plan40.txt) kernels for $(calls plan40.txt train_step) calls of train_step at 40 layers)"
