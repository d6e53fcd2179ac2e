#!/usr/bin/env bash
# Tasks beyond classification, through the trainers users build: a regressor (examples/regression.nn on the CSV
# data set examples/data/make_regression.sh writes) and a model reconstructing its input
# (examples/autoencoder.nn). Their metrics (MSE, MAE and R², checked here against the same figures computed by
# awk from `predict`'s output), `eval`, `predict`, the metrics file and plot, and the errors a wrong data set gets.
# Usage: tasks.sh NNC SOURCE_DIR WORK_DIR
set -euo pipefail
nnc=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
# The value after `key` in a line of `key value` pairs.
field() { sed -n "s/.*$1 \([-0-9.e]*\).*/\1/p" | tail -1; }

# The generator writes the committed data set.
bash "$src/examples/data/make_regression.sh" data
for split in train test; do
  cmp -s "data/$split.csv" "$src/examples/data/regression/$split.csv" || fail "make_regression.sh: $split.csv differs"
done

"$nnc" build "$src/examples/regression.nn" -o regression 2> /dev/null
./regression info | grep -q "^task: regress, loss compares by mse" || fail "info: $(./regression info)"
./regression train --data data --threads 1 --save r.safetensors --metrics r.jsonl --plot r.svg > train.log
r2=$(field test_r2 < train.log)
awk -v r="$r2" 'BEGIN { exit !(r >= 0.99) }' || fail "regression: test R² $r2 below 0.99: $(tail -n 2 train.log)"
for key in train_loss train_r2 test_loss test_mse test_mae test_r2; do
  grep -q "\"$key\":" r.jsonl || fail "regression metrics lack $key: $(tail -n 1 r.jsonl)"
done
grep -q '"test_accuracy"' r.jsonl && fail "a regressor's metrics report accuracy: $(tail -n 1 r.jsonl)"
grep -q 'data-series="test R²"' r.svg || fail "the plot has no R² curve"
./regression eval --weights r.safetensors --data data > eval.log
[ "$(field test_r2 < eval.log)" = "$r2" ] || fail "eval gives R² $(field test_r2 < eval.log), training printed $r2"
# predict prints every test example's prediction and target: MSE, MAE and R² from those match eval's (within the
# rounding of the printed values).
./regression predict --weights r.safetensors --data data --limit 250 > predict.log
[ "$(head -n 1 predict.log)" = "index predicted | target" ] || fail "predict: $(head -n 2 predict.log)"
awk -v mse="$(field test_mse < eval.log)" -v mae="$(field test_mae < eval.log)" -v r2="$r2" '
  NR > 1 { p = $2; t = $4; n++; se += (p - t) ^ 2; ae += (p > t ? p - t : t - p); s += t; ss += t * t }
  END {
    total = ss - s * s / n
    ok = n == 250 && (se / n - mse) ^ 2 < (1e-3 * mse) ^ 2 + 1e-12 && (ae / n - mae) ^ 2 < (2e-3 * mae) ^ 2 &&
         (1 - se / total - r2) ^ 2 < 1e-8
    if (!ok) printf "awk from predict: n %d mse %g mae %g r2 %g\n", n, se / n, ae / n, 1 - se / total
    exit !ok
  }' predict.log || fail "predict's values disagree with eval: mse $(field test_mse < eval.log)"
./regression predict --weights r.safetensors --data data -o pred.npy > predict.log
grep -q "wrote predictions \[250, 1\] to pred.npy" predict.log || fail "predict -o: $(cat predict.log)"

# Data-parallel: 2 ranks x 16 train and evaluate a regressor as 1 process x 32 (the same figures to 4 digits). The
# 2-rank checks need OpenMPI (scripts/setup.sh installs it); without it they are left out, and say so.
have_mpirun=true
if ! command -v mpirun > /dev/null; then
  have_mpirun=false
  echo "tasks: no mpirun: the 2-rank checks (regression, vae) are left out" >&2
fi
if $have_mpirun; then
  mpirun --allow-run-as-root --oversubscribe -np 2 ./regression train --data data --batch 16 --epochs 3 \
    --threads 1 --save m2.safetensors 2> /dev/null | grep "^epoch 3:" | sed 's/  lr.*//' > ranks2.log
  ./regression train --data data --batch 32 --epochs 3 --threads 1 --save m1.safetensors 2> /dev/null |
    grep "^epoch 3:" | sed 's/  lr.*//' > ranks1.log
  cmp -s ranks1.log ranks2.log || fail "2 ranks: $(cat ranks2.log); 1 process: $(cat ranks1.log)"
fi

# A regressor refuses data without float targets, and early stopping on accuracy.
expect_error() {
  local want=$1
  shift
  if "$@" > out.log 2>&1; then fail "$* succeeded; expected: $want"; fi
  grep -qF -- "$want" out.log || fail "$*: expected \"$want\", got: $(cat out.log)"
}
expect_error "a regressor needs float targets" ./regression train --data /usr/share/datasets/fashion-mnist
expect_error "unknown target column \`z\`" ./regression train --data data --label-column z
sed 's/seed = 1/seed = 1\n    validation_split = 0.1\n    early_stopping = patience(2, monitor = "val_accuracy")/' \
  "$src/examples/regression.nn" > watch_accuracy.nn
expect_error "error: early stopping on \`val_accuracy\` needs a classifier, and model \`regression\` regresses" \
  "$nnc" build watch_accuracy.nn -o watch_accuracy
printf 'x0,x1,x2,x3,x4,x5,x6,x7,y\n1,2,3,4,5,6,7,8,nan\n' > data/bad.csv
mkdir -p bad && cp data/bad.csv bad/train.csv && cp data/bad.csv bad/test.csv
expect_error "bad/train.csv:2: column \`y\`: expected a finite number" ./regression train --data bad

# The autoencoder: 200 steps bring the test reconstruction MSE well below the pixels' variance about their mean
# image (0.09 on Fashion-MNIST's test set; a model that learned nothing scores that or worse).
"$nnc" build "$src/examples/autoencoder.nn" -o autoencoder 2> /dev/null
./autoencoder info | grep -q "^task: reconstruct, loss compares by binary_cross_entropy_with_logits" ||
  fail "info: $(./autoencoder info)"
./autoencoder train --max-steps 200 --threads 2 --save a.safetensors --metrics a.jsonl --plot a.svg > train.log
mse=$(field test_mse < train.log)
awk -v m="$mse" 'BEGIN { exit !(m != "" && m < 0.04) }' || fail "autoencoder: test MSE $mse: $(tail -n 2 train.log)"
grep -q '"train_r2"\|"test_accuracy"\|"train_accuracy"' a.jsonl && fail "a reconstruction reports a score: $(cat a.jsonl)"
grep -q '"test_mse":' a.jsonl || fail "autoencoder metrics lack test_mse: $(cat a.jsonl)"
grep -q 'data-series="test loss"' a.svg || fail "autoencoder plot has no loss curve"
grep -q 'data-series="test accuracy"' a.svg && fail "autoencoder plot has an accuracy curve"
./autoencoder eval --weights a.safetensors > eval.log
[ "$(field test_mse < eval.log)" = "$mse" ] || fail "eval: $(cat eval.log), training printed test_mse $mse"
./autoencoder predict --weights a.safetensors -o recon.npy > predict.log
grep -q "wrote reconstructions \[10000, 784\] to recon.npy" predict.log || fail "predict -o: $(cat predict.log)"
# Reconstructions are pixel values (the sigmoid of the logits), not logits.
./autoencoder predict --weights a.safetensors --limit 20 |
  awk 'NR > 1 { for (i = 2; i <= NF; i++) if ($i != ".." && ($i < 0 || $i > 1)) exit 1 }' ||
  fail "predict shows values outside [0, 1]"
# reconstruct: a PNG of the first test images above their reconstructions. Decoded here (Python's zlib), the
# top-left image is test image 0's bytes and the one below it `predict`'s reconstruction, at 3x3 pixels a value.
./autoencoder reconstruct --weights a.safetensors -o grid.png --count 12 > recon.log
grep -q "wrote 12 inputs (odd rows) and their reconstructions (even rows) to grid.png" recon.log ||
  fail "reconstruct: $(cat recon.log)"
python3 - "$src/tests" grid.png recon.npy /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz <<'PY' ||
import array, gzip, struct, sys
sys.path.insert(0, sys.argv[1])
from png_gray import read_gray_png
width, height, pixel = read_gray_png(sys.argv[2])
assert (width, height) == (2 + 8 * 86, 2 + 4 * 86), (width, height)
images = gzip.open(sys.argv[4]).read()[16:]
npy = open(sys.argv[3], "rb").read()
(header,) = struct.unpack("<H", npy[8:10])
recon = array.array("f", npy[10 + header:10 + header + 784 * 4])
for i in range(784):
    y, x = 2 + 3 * (i // 28), 2 + 3 * (i % 28)
    assert pixel(x + 1, y + 2) == images[i], ("input", i, pixel(x + 1, y + 2), images[i])
    assert pixel(x, y + 86) == round(255 * recon[i]), ("reconstruction", i, pixel(x, y + 86), recon[i])
PY
  fail "grid.png"
expect_error "\`reconstruct\` needs \`-o GRID.png\`" ./autoencoder reconstruct --weights a.safetensors
expect_error "\`--count\` needs an integer from 1 to 256" ./autoencoder reconstruct --weights a.safetensors -o g.png --count 0
expect_error "\`--count\` needs an integer from 1 to 256" ./autoencoder reconstruct --weights a.safetensors -o g.png --count 100000
expect_error "-o missing/g.png" ./autoencoder reconstruct --weights a.safetensors -o missing/g.png
./regression reconstruct --weights r.safetensors -o no.png > out.log 2>&1 && fail "a regressor drew reconstructions"
grep -q "\`reconstruct\` draws a model that reconstructs its input; \`regression\` is a regressor" out.log ||
  fail "reconstruct of a regressor: $(cat out.log)"
# The VAE: randn_like's samples follow the global row, so 2 ranks x 32 train as 1 process x 64; eval mode decodes
# the mean, and 200 steps reconstruct as well as the autoencoder's threshold asks.
"$nnc" build "$src/examples/vae.nn" -o vae 2> /dev/null
./vae train --max-steps 200 --threads 2 --save v.safetensors > train.log
vae_mse=$(field test_mse < train.log)
awk -v m="$vae_mse" 'BEGIN { exit !(m != "" && m < 0.04) }' || fail "vae: test MSE $vae_mse: $(tail -n 2 train.log)"
./vae reconstruct --weights v.safetensors -o vae.png > /dev/null || fail "vae reconstruct"
# sample: 16 codes drawn from N(0, I) (the runtime's SplitMix64 and Box-Muller from --seed), decoded. Recomputed
# here in plain Python from the seed and the checkpoint's decoder: four of the images, each pixel within a gray level.
./vae sample --weights v.safetensors -o samples.png --count 16 --seed 7 > sample.log
grep -q "wrote 16 images decoded from latent codes drawn from N(0, I) (seed 7) to samples.png" sample.log ||
  fail "sample: $(cat sample.log)"
python3 - "$src/tests" samples.png v.safetensors <<'PY' || fail "samples.png"
import array, json, math, struct, sys
sys.path.insert(0, sys.argv[1])
from png_gray import read_gray_png
width, height, pixel = read_gray_png(sys.argv[2])
assert (width, height) == (2 + 8 * 86, 2 + 2 * 86), (width, height)
raw = open(sys.argv[3], "rb").read()
(size,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + size])
def tensor(name):
    begin, end = header[name]["data_offsets"]
    return array.array("f", raw[8 + size + begin:8 + size + end])
mask, state = (1 << 64) - 1, 7
def uniform():
    global state
    state = (state + 0x9E3779B97F4A7C15) & mask
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return ((z ^ (z >> 31)) >> 11) * 2.0 ** -53
def normal():
    u1, u2 = 1 - uniform(), uniform()
    return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
codes = [[normal() for _ in range(16)] for _ in range(16)]
w1, b1, w2, b2 = (tensor(n) for n in ("dec1.weight", "dec1.bias", "logits.weight", "logits.bias"))
for i in (0, 5, 10, 15):
    hidden = [max(0.0, b1[j] + sum(w1[j * 16 + k] * codes[i][k] for k in range(16))) for j in range(256)]
    left, top = 2 + 86 * (i % 8), 2 + 86 * (i // 8)
    for p in range(784):
        logit = b2[p] + sum(w2[p * 256 + j] * hidden[j] for j in range(256) if hidden[j])
        want = 255 / (1 + math.exp(-logit))
        got = pixel(left + 3 * (p % 28), top + 3 * (p // 28))
        assert abs(got - want) <= 0.5 + 1e-3, ("image", i, "pixel", p, got, want)
PY
./vae sample --weights v.safetensors -o again.png --count 16 --seed 7 > /dev/null
cmp -s samples.png again.png || fail "sample with the same seed drew another picture"
./vae sample --weights v.safetensors -o other.png --count 16 --seed 8 > /dev/null
cmp -s samples.png other.png && fail "sample with another seed drew the same picture"
expect_error "\`sample\` decodes latent codes, and model \`autoencoder\` marks none" \
  ./autoencoder sample --weights a.safetensors -o s.png
if $have_mpirun; then
  mpirun --allow-run-as-root --oversubscribe -np 2 ./vae train --max-steps 20 --batch 32 --threads 1 \
    --save v2.safetensors 2> /dev/null | grep "^epoch 1:" | sed 's/  lr.*//' > ranks2.log
  ./vae train --max-steps 20 --batch 64 --threads 1 --save v1.safetensors 2> /dev/null | grep "^epoch 1:" |
    sed 's/  lr.*//' > ranks1.log
  cmp -s ranks1.log ranks2.log || fail "vae on 2 ranks: $(cat ranks2.log); 1 process: $(cat ranks1.log)"
fi
# The character language model: token ids from text, a class per position. Within 200 steps its test loss (per
# position) falls below the entropy of the training text's byte frequencies, the loss of the best model that
# ignores context (a unigram model).
bash "$src/examples/data/make_text.sh" text
for split in train test; do
  cmp -s "text/$split.txt" "$src/examples/data/text/$split.txt" || fail "make_text.sh: $split.txt differs"
done
"$nnc" build "$src/examples/charlm.nn" -o charlm 2> /dev/null
./charlm train --data text --max-steps 200 --threads 2 --save c.safetensors > train.log
unigram=$(awk 'BEGIN { RS = "\001" } { n = length($0); for (i = 1; i <= n; i++) count[substr($0, i, 1)]++ }
               END { for (c in count) { p = count[c] / n; h -= p * log(p) }; printf "%.4f", h }' text/train.txt)
text_loss=$(field test_loss < train.log)
awk -v l="$text_loss" -v u="$unigram" 'BEGIN { exit !(l != "" && l < u) }' ||
  fail "charlm: test loss $text_loss after 200 steps, not below the unigram baseline $unigram"
./charlm eval --weights c.safetensors --data text > eval.log
[ "$(field test_loss < eval.log)" = "$text_loss" ] || fail "charlm eval: $(cat eval.log), training printed $text_loss"
./charlm predict --weights c.safetensors --data text --limit 2 > predict.log
# A byte beyond the embedding's 128 rows (UTF-8's "é" is bytes 195 169) is refused, not clamped by the kernels.
mkdir -p utf8 && cp text/test.txt utf8/test.txt && { head -c 1000 text/train.txt; printf '\303\251'; head -c 200 text/test.txt; } > utf8/train.txt
expect_error "utf8 (train): example 15, position 40: token id 195 is not an index into the model's embedding table of 128 rows" \
  ./charlm train --data utf8 --max-steps 1
awk 'NR == 2 && NF == 2 + 16 + 1 + 16 + 1 { ok = 1 } END { exit !ok }' predict.log ||
  fail "charlm predict (16 predicted bytes | 16 labels, ..): $(cat predict.log)"
echo "regression R² $r2, autoencoder test MSE $mse, vae test MSE $vae_mse, charlm test loss $text_loss (unigram $unigram)"
