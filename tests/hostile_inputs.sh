#!/usr/bin/env bash
# Hostile inputs: model files, nnc and trainer flags, data files (CSV, NPY, IDX), checkpoints and output paths as
# a careless or unlucky user gives them. Each case asserts the exit code (0 success, 1 a user error with a clear
# message, never 2, a signal or a hang) and fragments of what is printed. Add a case with every command or flag.
# Usage: hostile_inputs.sh NNC SOURCE_DIR WORK_DIR
set -uo pipefail
nnc=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
cases=0 failures=0

# expect CODE FRAGMENT... -- COMMAND...: runs COMMAND (60 s at most); its exit code must be CODE and its output
# (stdout and stderr) must hold every FRAGMENT.
expect() {
  local code=$1 fragments=()
  shift
  while [ "$1" != "--" ]; do fragments+=("$1"); shift; done
  shift
  cases=$((cases + 1))
  local out rc
  out=$(timeout 60 "$@" 2>&1)
  rc=$?
  local problem=""
  [ "$rc" = "$code" ] || problem="exit $rc, expected $code"
  for fragment in "${fragments[@]}"; do
    [[ "$out" == *"$fragment"* ]] || problem="${problem:+$problem; }no \`$fragment\` in the output"
  done
  if [ -n "$problem" ]; then
    failures=$((failures + 1))
    printf 'FAIL (%s): %s\n  %s\n' "$problem" "$*" "$(printf '%s' "$out" | head -c 600 | sed '2,$s/^/  /')" >&2
  fi
}

# ---- fixtures: a tiny MLP on CSV data, a tiny image model on IDX data, NPY data ----------------------------------
mkdir -p data imgdata npydata dir.safetensors
printf 'f0,f1,f2,f3,label\n' > data/train.csv
for i in 0 1 2 3 4 5 6 7; do printf '%d,0.5,-1,2,%d\n' "$i" $((i % 3)) >> data/train.csv; done
cp data/train.csv data/test.csv
cat > tiny.nn <<'EOF'
model tiny(x: f32[B, 4], y: i32[B]) {
    h = relu(linear(x, 8))
    logits = linear(h, 3)
    loss = cross_entropy(logits, y)
    return logits
}
train {
    data = "data"
    batch = 4
    epochs = 1
}
EOF
cat > img.nn <<'EOF'
model img(x: f32[B, 1, 4, 4], y: i32[B]) {
    logits = linear(flatten(x), 3)
    loss = cross_entropy(logits, y)
    return logits
}
train {
    data = "imgdata"
    batch = 2
}
EOF
python3 - <<'EOF'
import struct, json
def idx(path, dims, payload, magic=0x08):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, magic, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload)
for split in ("train", "t10k"):
    idx(f"imgdata/{split}-images-idx3-ubyte", [4, 4, 4], bytes(range(64)))
    idx(f"imgdata/{split}-labels-idx1-ubyte", [4], bytes([0, 1, 2, 0]), magic=0x08)
def npy(path, descr, shape, payload, fortran=False):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, "True" if fortran else "False", "".join(f"{d}, " for d in shape))
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload)
for split in ("train", "test"):
    npy(f"npydata/{split}_x.npy", "<f4", (6, 4), struct.pack("<24f", *[i / 10 for i in range(24)]))
    npy(f"npydata/{split}_y.npy", "<i4", (6,), struct.pack("<6i", 0, 1, 2, 0, 1, 2))
# Variants, each a data directory of its own (train and test alike).
def npydir(name, x_descr, x_shape, x_payload, y_shape=(6,), y_payload=None, fortran=False):
    import os
    os.makedirs(name, exist_ok=True)
    for split in ("train", "test"):
        npy(f"{name}/{split}_x.npy", x_descr, x_shape, x_payload, fortran)
        npy(f"{name}/{split}_y.npy", "<i4", y_shape, y_payload if y_payload is not None else struct.pack("<6i", 0, 1, 2, 0, 1, 2))
npydir("npy_empty", "<f4", (0, 4), b"", (0,), b"")
npydir("npy_nan", "<f4", (6, 4), struct.pack("<24f", *([0.5] * 13 + [float("nan")] + [0.5] * 10)))
npydir("npy_inf", "<f4", (6, 4), struct.pack("<24f", *([float("inf")] + [0.5] * 23)))
npydir("npy_truncated", "<f4", (6, 4), struct.pack("<20f", *[0.5] * 20))
npydir("npy_complex", "<c8", (6, 4), bytes(192))
npydir("npy_rows", "<f4", (5, 4), struct.pack("<20f", *[0.5] * 20))
npydir("npy_features", "<f4", (6, 5), struct.pack("<30f", *[0.5] * 30))
npydir("npy_fortran", "<f4", (6, 4), struct.pack("<24f", *[0.5] * 24), fortran=True)
import os
os.makedirs("npy_magic", exist_ok=True)
for split in ("train", "test"):
    open(f"npy_magic/{split}_x.npy", "wb").write(b"NOTNUMPY" + bytes(100))
    npy(f"npy_magic/{split}_y.npy", "<i4", (6,), struct.pack("<6i", 0, 1, 2, 0, 1, 2))
# IDX variants for the 4x4 image model.
def idxdir(name, images, labels):
    os.makedirs(name, exist_ok=True)
    for split in ("train", "t10k"):
        open(f"{name}/{split}-images-idx3-ubyte", "wb").write(images)
        open(f"{name}/{split}-labels-idx1-ubyte", "wb").write(labels)
header = lambda magic, dims: bytes([0, 0, 0x08, magic]) + b"".join(struct.pack(">I", d) for d in dims)
labels4 = header(1, [4]) + bytes([0, 1, 2, 0])
idxdir("idx_2x8", header(3, [4, 2, 8]) + bytes(64), labels4)
idxdir("idx_magic", b"\x12\x34\x56\x78" + bytes(60), labels4)
idxdir("idx_truncated", header(3, [4, 4, 4]) + bytes(30), labels4)
idxdir("idx_labels", header(3, [4, 4, 4]) + bytes(64), header(1, [3]) + bytes([0, 1, 2]))
idxdir("idx_label_range", header(3, [4, 4, 4]) + bytes(64), header(1, [4]) + bytes([0, 1, 9, 0]))
idxdir("idx_huge_dims", header(3, [4000000000, 4000000000, 4]) + bytes(64), labels4)
# Checkpoints for the tiny model: what --init, --weights and --resume read.
def safetensors(path, header_obj, payload, header_bytes=None):
    text = header_bytes if header_bytes is not None else json.dumps(header_obj).encode()
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + payload)
safetensors("ckpt_huge_header.safetensors", None, b"", header_bytes=b"{}")
open("ckpt_huge_header.safetensors", "r+b").write(struct.pack("<Q", 1 << 60))
safetensors("ckpt_not_json.safetensors", None, b"", header_bytes=b"{not json")
safetensors("ckpt_beyond.safetensors", {"h.weight": {"dtype": "F32", "shape": [8, 4], "data_offsets": [0, 128]}}, bytes(16))
safetensors("ckpt_overlap.safetensors", {"h.weight": {"dtype": "F32", "shape": [8, 4], "data_offsets": [0, 128]},
                                          "h.bias": {"dtype": "F32", "shape": [8], "data_offsets": [96, 128]}}, bytes(128))
safetensors("ckpt_dtype.safetensors", {"h.weight": {"dtype": "C64", "shape": [8, 4], "data_offsets": [0, 256]}}, bytes(256))
safetensors("ckpt_lying_shape.safetensors", {"h.weight": {"dtype": "F32", "shape": [8, 5], "data_offsets": [0, 128]}}, bytes(128))
safetensors("ckpt_wrong_shape.safetensors", {"h.weight": {"dtype": "F32", "shape": [4, 8], "data_offsets": [0, 128]}}, bytes(128))
safetensors("ckpt_missing.safetensors", {"h.weight": {"dtype": "F32", "shape": [8, 4], "data_offsets": [0, 128]}}, bytes(128))
safetensors("ckpt_negative.safetensors", {"h.weight": {"dtype": "F32", "shape": [8, 4], "data_offsets": [128, 0]}}, bytes(128))
safetensors("ckpt_not_object.safetensors", None, b"", header_bytes=b"[1, 2, 3]")
open("ckpt_empty.safetensors", "wb").close()
open("ckpt_short.safetensors", "wb").write(b"\x01\x02\x03")
EOF
cp -r data nodata_test && rm nodata_test/test.csv

"$nnc" build tiny.nn -o tiny > build.log 2>&1 || { cat build.log; exit 1; }
"$nnc" build img.nn -o img >> build.log 2>&1 || { cat build.log; exit 1; }
./tiny train --save good.safetensors > /dev/null 2>&1 || { echo "FAIL: the tiny model does not train"; exit 1; }

# ---- model files ---------------------------------------------------------------------------------------------
model() {  # NAME BODY-LINE...: a model file around a body
  local name=$1
  shift
  { echo "model m(x: f32[B, 4], y: i32[B]) {"; printf '    %s\n' "$@"; echo "}"; } > "$name.nn"
}
expect 1 "missing.nn" "No such file" -- "$nnc" check missing.nn
expect 1 "is a directory, not a model file" -- "$nnc" check data
head -c 3000 "$nnc" > binary.nn
expect 1 "not a text file (a NUL byte at offset" -- "$nnc" check binary.nn
expect 1 "/dev/zero: not a regular file" -- "$nnc" check /dev/zero
: > empty.nn
expect 1 "empty.nn" "error" -- "$nnc" check empty.nn
{ printf '\xef\xbb\xbf'; cat tiny.nn; } > bom.nn
expect 0 "binding" -- "$nnc" check bom.nn
model midbom "logits = linear(x, 3) $(printf '\xef\xbb\xbf')" "loss = cross_entropy(logits, y)" "return logits"
expect 1 "U+FEFF (a byte-order mark)" -- "$nnc" check midbom.nn
model arrow "logits = linear(x, 3) → x" "loss = cross_entropy(logits, y)" "return logits"
expect 1 "'→' (U+2192)" -- "$nnc" check arrow.nn
printf 'model m(x: f32[B, 4]) { \x01 }\n' > control.nn
expect 1 "unexpected character byte 0x01" -- "$nnc" check control.nn
python3 -c "import random; random.seed(1); open('noise.nn','wb').write(bytes(random.randrange(1, 256) for _ in range(20000)))"
expect 1 "too many errors" "stopped showing them after 20" -- "$nnc" check noise.nn
expect 1 "too many errors" "after 3" -- "$nnc" check --error-limit=3 noise.nn
expect 1 "\`--error-limit\` needs a count" "usage: nnc check" -- "$nnc" check --error-limit=lots noise.nn
model hugeint "logits = linear(x, 99999999999999999999999999)" "loss = cross_entropy(logits, y)" "return logits"
expect 1 "hugeint.nn:2:" "is out of range" -- "$nnc" check hugeint.nn
model hugefloat "logits = linear(x, 3) * 1e999" "loss = cross_entropy(logits, y)" "return logits"
expect 1 "is too large" -- "$nnc" check hugefloat.nn
model roundedint "logits = linear(x, 3) * 9007199254740993" "loss = cross_entropy(logits, y)" "return logits"
expect 1 "\`9007199254740993\` is out of range" -- "$nnc" check roundedint.nn
sed 's/f32\[B, 4\]/f32[B, 2000000000]/' tiny.nn > wide.nn
expect 1 "wide.nn:1:" "a tensor may hold at most 2^31 - 1" -- "$nnc" check wide.nn
expect 1 "a tensor may hold at most 2^31 - 1" -- "$nnc" build wide.nn -o wide
model bigout "logits = linear(x, 3000000000)" "loss = cross_entropy(logits, y)" "return logits"
expect 1 "must be at most 1000000000" -- "$nnc" check bigout.nn
model widelayer "h = linear(x, 600000000)" "logits = linear(h, 3)" "loss = cross_entropy(logits, y)" "return logits"
expect 1 "\`h.weight\`" "2400000000 elements" -- "$nnc" check widelayer.nn
model zero "logits = linear(x, 0)" "loss = cross_entropy(logits, y)" "return logits"
expect 1 "positive integer" -- "$nnc" check zero.nn
model frac "logits = linear(x, 2.5)" "loss = cross_entropy(logits, y)" "return logits"
expect 1 "positive integer" -- "$nnc" check frac.nn
model unknownop "logits = lienar(x, 3)" "loss = cross_entropy(logits, y)" "return logits"
expect 1 "lienar" "linear" -- "$nnc" check unknownop.nn
model noloss "logits = linear(x, 3)" "return logits"
expect 1 "loss" -- "$nnc" check noloss.nn
model noreturn "logits = linear(x, 3)" "loss = cross_entropy(logits, y)"
expect 1 "return" -- "$nnc" check noreturn.nn
model twice "logits = linear(x, 3)" "logits = linear(x, 3)" "loss = cross_entropy(logits, y)" "return logits"
expect 1 "logits" -- "$nnc" check twice.nn
model arity "logits = linear(x)" "loss = cross_entropy(logits, y)" "return logits"
expect 1 "linear(x, out_features)" -- "$nnc" check arity.nn
model parens "logits = linear((x, 3)" "loss = cross_entropy(logits, y)" "return logits"
expect 1 "parens.nn:2:" -- "$nnc" check parens.nn
printf 'model m(x: f32[B, 0], y: i32[B]) {\n    logits = linear(x, 3)\n    loss = cross_entropy(logits, y)\n    return logits\n}\n' > zerodim.nn
expect 1 "dimension must be a positive integer" -- "$nnc" check zerodim.nn
printf 'model m(x: f32[B, 4], y: f32[B]) {\n    logits = linear(x, 3)\n    loss = cross_entropy(logits, y)\n    return logits\n}\n' > f32labels.nn
expect 1 "f32labels.nn" "error" -- "$nnc" check f32labels.nn
printf 'model m(x: f32[B, 4], y: i32[B]) {\n    s = "unterminated\n}\n' > string.nn
expect 1 "string.nn:2:" -- "$nnc" check string.nn
for bad in "batch = 0" 'batch = "x"' "epochs = -1" "optimizer = sgdd(lr = 0.1)" "optimizer = sgd(lr = -1)" "colour = 3"; do
  sed "s/    batch = 4/    $bad/" tiny.nn > train_block.nn
  expect 1 "train_block.nn:" "error" -- "$nnc" check train_block.nn
done

# ---- nnc's own flags and outputs --------------------------------------------------------------------------------
expect 1 "no command given" "usage: nnc build" -- "$nnc"
expect 1 "unknown command \`bulid\`" -- "$nnc" bulid tiny.nn
expect 0 "usage: nnc build" "usage: nnc emit" "exit codes" -- "$nnc" --help
expect 0 "usage: nnc build" -- "$nnc" build --help
expect 0 "nnc 0." -- "$nnc" --version
expect 1 "unknown argument \`--fast\`" "usage: nnc check" -- "$nnc" check --fast tiny.nn
expect 1 "no model file given" -- "$nnc" check
expect 1 "needs \`-o OUT\`" -- "$nnc" build tiny.nn
expect 1 "-o missing/t" "does not exist" -- "$nnc" build tiny.nn -o missing/t
expect 1 "is a directory" -- "$nnc" build tiny.nn -o data
expect 1 "not a regular file" -- "$nnc" build tiny.nn -o /dev/null
expect 1 "target" -- "$nnc" build tiny.nn -o t --target=arm-linux-64
expect 1 "the GPU APIs nnc builds for are cuda and opencl" -- "$nnc" build tiny.nn -o t --target=x86-64-linux-metal
expect 1 "name one GPU API" -- "$nnc" build tiny.nn -o t --target=x86-64-linux-cuda-opencl
expect 1 "--schedule=li2018 is for CPU targets" -- "$nnc" build tiny.nn -o t --target=cuda --schedule=li2018
expect 1 "unknown schedule policy \`fastest\`" -- "$nnc" build tiny.nn -o t --schedule=fastest
expect 1 "unknown stage \`ir\`" -- "$nnc" emit --stage=ir tiny.nn
expect 1 "unknown entry point \`step\`" -- "$nnc" emit --stage=stmt --entry=step tiny.nn

# ---- trainer flags ----------------------------------------------------------------------------------------------
expect 1 "no command given" -- ./tiny
expect 1 "unknown command \`trian\`" -- ./tiny trian
expect 0 "usage: ./tiny train" "usage: ./tiny predict" -- ./tiny --help
expect 0 "usage: ./tiny train" "--save-every" -- ./tiny train --help
expect 0 "built by nnc" -- ./tiny --version
for value in 0 -1 abc 1.5 99999999999; do
  expect 1 "\`--epochs\` needs an integer from 1" "usage: ./tiny train" -- ./tiny train --epochs "$value"
done
expect 1 "\`--epochs\` needs a value, got the flag \`--max-steps\`" -- ./tiny train --epochs --max-steps 2
expect 1 "\`--epochs\` needs a value" -- ./tiny train --epochs
expect 1 "\`--batch\` needs an integer" -- ./tiny train --batch 0
expect 1 "--batch 2000000000 is too large for this model" -- ./tiny train --batch 2000000000
for value in 0 -0.1 nan inf abc; do
  expect 1 "\`--lr\` needs a positive number" -- ./tiny train --lr "$value"
done
expect 1 "\`--lr-schedule\` switches between" -- ./tiny train --lr-schedule sometimes
for value in -1 abc 2000000; do
  expect 1 "\`--bucket-kb\` needs an integer from 0 to 1048576" -- ./tiny train --bucket-kb "$value"
done
for value in 1 -0.1 abc 0.5x; do
  expect 1 "\`--validation-split\` needs a number in [0, 1)" -- ./tiny train --validation-split "$value"
done
expect 1 "set \`validation_split\`" -- ./tiny train --patience 1
expect 1 "holds none" -- ./tiny train --patience 1 --validation-split 0.01
expect 1 "\`--normalize\` takes none, scale or standardize" -- ./tiny train --normalize minmax
for value in 2 -1 abc; do
  expect 1 "\`--augment-flip\` needs a probability" -- ./tiny train --augment-flip "$value"
done
expect 1 "\`--augment-shift\` needs an integer from 0 to 64" -- ./tiny train --augment-shift 100
expect 1 "give one of them" -- ./tiny train --init good.safetensors --resume good.safetensors
expect 1 "\`--threads\` needs an integer" -- ./tiny train --threads -1
expect 1 "\`--device\` needs an integer" -- ./tiny train --device -3
expect 1 "this trainer's kernels run on the CPU" "--target=cuda" -- ./tiny train --device 0
expect 1 "--device" "run on the CPU" -- ./tiny info --device 1
expect 1 "\`grads\` needs \`--weights CKPT\`" -- ./tiny grads -o g.safetensors
expect 1 "\`grads\` needs \`-o GRADS.safetensors\`" -- ./tiny grads --weights tiny.safetensors
expect 1 "\`--seed\` needs an integer" -- ./tiny train --seed -5
expect 1 "\`--save-every\` needs an integer" -- ./tiny train --save-every -1
expect 1 "unknown argument \`--learning-rate\` for \`train\`" "usage: ./tiny train" -- ./tiny train --learning-rate 1
expect 1 "no such data directory" -- ./tiny train --data missing
expect 1 "\`eval\` needs \`--weights CKPT\`" "usage: ./tiny eval" -- ./tiny eval
expect 1 "missing.safetensors" -- ./tiny eval --weights missing.safetensors
expect 1 "\`predict\` needs \`--weights CKPT\`" -- ./tiny predict
expect 1 "\`--entry\` takes train_step, grads, predict, update or split_step" -- ./tiny bench --entry step
expect 1 "\`--repeats\` needs an integer" -- ./tiny bench --repeats 0
expect 1 "too large for this model" -- ./tiny bench --batch 2000000000
expect 1 "cannot allocate the batch's features [200000000, 4] (3200000000 bytes): out of memory" -- \
  bash -c 'ulimit -v 2000000 && exec ./tiny bench --entry predict --batch 200000000 --steps 1'

# ---- output paths: refused before any work, never replacing a device --------------------------------------------
expect 1 "--save /dev/null" "not a regular file" -- ./tiny train --save /dev/null
[ -c /dev/null ] || { echo "FAIL: /dev/null is no longer a device"; failures=$((failures + 1)); }
expect 1 "directory \`missing\` does not exist" -- ./tiny train --save missing/x.safetensors
expect 1 "--save data: is a directory" -- ./tiny train --save data
expect 1 "--metrics missing/m.jsonl" "does not exist" -- ./tiny train --metrics missing/m.jsonl
expect 1 "--metrics data: is a directory" -- ./tiny train --metrics data
expect 1 "--plot data: is a directory" -- ./tiny train --plot data
expect 1 "--plot missing/p.svg" -- ./tiny train --plot missing/p.svg
expect 1 "-o missing/p.npy" "does not exist" -- ./tiny predict --weights good.safetensors -o missing/p.npy
expect 1 "-o /dev/null" "not a regular file" -- ./tiny predict --weights good.safetensors -o /dev/null
expect 1 "-o: an empty path" -- ./tiny predict --weights good.safetensors -o ""
expect 1 "the file name is too long" -- ./tiny train --save "$(printf 'n%.0s' $(seq 240)).safetensors"
expect 0 "saved" -- ./tiny train --metrics /dev/null --save out.safetensors
expect 0 '"test_accuracy"' -- ./tiny train --metrics /dev/stdout --save out.safetensors
# A finished run resumed with a new --save path writes that file.
expect 0 "had already finished" "saved copy.safetensors" -- ./tiny train --resume out.safetensors --save copy.safetensors
[ -f copy.safetensors ] && [ -f copy.safetensors.resume ] ||
  { echo "FAIL: resuming a finished run wrote no copy"; failures=$((failures + 1)); }
expect 1 "cannot resume with these settings" "batch" -- ./tiny train --resume out.safetensors --batch 2

# ---- data files -------------------------------------------------------------------------------------------------
csvdir() {  # NAME LINE...: a CSV data directory whose train.csv and test.csv hold the lines
  local name=$1
  shift
  mkdir -p "$name"
  printf '%s\n' "$@" > "$name/train.csv"
  cp "$name/train.csv" "$name/test.csv"
}
csvdir csv_nan "f0,f1,f2,f3,label" "1,2,nan,4,0" "1,2,3,4,1"
expect 1 "csv_nan/train.csv" -- ./tiny train --data csv_nan
csvdir csv_short "f0,f1,f2,f3,label" "1,2,3,4,0" "1,2,3,1"
expect 1 "csv_short/train.csv" -- ./tiny train --data csv_short
csvdir csv_nolabel "f0,f1,f2,f3,f4" "1,2,3,4,0"
expect 1 "label" -- ./tiny train --data csv_nolabel
csvdir csv_negative "f0,f1,f2,f3,label" "1,2,3,4,-1"
expect 1 "csv_negative/train.csv" -- ./tiny train --data csv_negative
csvdir csv_fraction "f0,f1,f2,f3,label" "1,2,3,4,0.5"
expect 1 "csv_fraction/train.csv" -- ./tiny train --data csv_fraction
csvdir csv_header_only "f0,f1,f2,f3,label"
expect 1 "csv_header_only/train.csv" -- ./tiny train --data csv_header_only
csvdir csv_text "f0,f1,f2,f3,label" "1,2,three,4,0"
expect 1 "csv_text/train.csv" -- ./tiny train --data csv_text
csvdir csv_wide "f0,f1,f2,f3,f4,label" "1,2,3,4,5,0"
expect 1 "5 features" "expects 4" -- ./tiny train --data csv_wide
csvdir csv_classes "f0,f1,f2,f3,label" "1,2,3,4,7"
expect 1 "labels go up to 7" "3 classes" -- ./tiny train --data csv_classes
expect 1 "nodata_test" -- ./tiny train --data nodata_test
expect 1 "label column index 9 is out of range" -- ./tiny train --label-column 9
expect 0 "test_accuracy" -- ./tiny train --data npydata
expect 1 "npy_empty/train_x.npy: no examples" -- ./tiny train --data npy_empty
expect 1 "npy_nan/train_x.npy: example 3, feature 1" "must be finite" -- ./tiny train --data npy_nan
expect 1 "npy_inf/train_x.npy: example 0, feature 0" -- ./tiny train --data npy_inf
expect 1 "npy_truncated/train_x.npy" -- ./tiny train --data npy_truncated
expect 1 "npy_complex/train_x.npy" -- ./tiny train --data npy_complex
expect 1 "npy_rows/train_x.npy: expected one row per label" -- ./tiny train --data npy_rows
expect 1 "5 features" -- ./tiny train --data npy_features
expect 1 "npy_fortran/train_x.npy" -- ./tiny train --data npy_fortran
expect 1 "npy_magic/train_x.npy" -- ./tiny train --data npy_magic
expect 0 "test_accuracy" -- ./img train
expect 1 "examples are [2, 8]" "expects images of 4 x 4" -- ./img train --data idx_2x8
expect 1 "idx_magic/train-images-idx3-ubyte" -- ./img train --data idx_magic
expect 1 "idx_truncated/train-images-idx3-ubyte" -- ./img train --data idx_truncated
expect 1 "idx_labels/train-labels-idx1-ubyte" -- ./img train --data idx_labels
expect 1 "labels go up to 9" -- ./img train --data idx_label_range
expect 1 "idx_huge_dims/train-images-idx3-ubyte" -- ./img train --data idx_huge_dims
expect 1 "examples are [2, 8]" -- ./img predict --weights img.safetensors idx_2x8/t10k-images-idx3-ubyte
expect 1 "5 features" -- ./tiny predict --weights good.safetensors npy_features/test_x.npy
expect 1 "npy_empty/test_x.npy" -- ./tiny predict --weights good.safetensors npy_empty/test_x.npy

# ---- checkpoints ------------------------------------------------------------------------------------------------
for ckpt in ckpt_huge_header ckpt_not_json ckpt_beyond ckpt_overlap ckpt_dtype ckpt_lying_shape ckpt_wrong_shape \
            ckpt_missing ckpt_negative ckpt_not_object ckpt_empty ckpt_short; do
  expect 1 "$ckpt.safetensors" -- ./tiny eval --weights "$ckpt.safetensors"
done
expect 1 "dir.safetensors" -- ./tiny eval --weights dir.safetensors
expect 1 "ckpt_wrong_shape.safetensors" -- ./tiny train --init ckpt_wrong_shape.safetensors
expect 1 "good.safetensors.resume" -- ./img train --resume good.safetensors
head -c 200 good.safetensors > cut.safetensors
expect 1 "cut.safetensors" -- ./tiny predict --weights cut.safetensors

echo "hostile inputs: $((cases - failures)) of $cases cases as expected"
[ "$failures" = 0 ]
