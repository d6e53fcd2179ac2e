#!/usr/bin/env bash
# `trainer export --onnx` end to end: trained examples (an MLP with standardized features, a CNN with BatchNorm, a
# VAE, a single-logit classifier, a causal byte-level Transformer) exported to ONNX, checked by ONNX's checker with
# its shape inference, evaluated by PyTorch's operators as ONNX defines them (tests/onnx/run_with_torch.py) and
# matched with the trainer's own `predict -o`; three of them imported back by `nnc import`, built and matched again.
# Then the export's errors.
# Usage: onnx_export.sh NNC SOURCE_DIR WORK_DIR TENSOR_DIFF
source "$2/tests/onnx/script_setup.sh"  # nnc, src, work, tensor_diff, fail, python
fashion=/usr/share/datasets/fashion-mnist

# Inputs as `predict` reads them: Fashion-MNIST test images in [0, 1] (flat and as [N, 1, 28, 28]), random points,
# random byte ids.
"$python" - <<'PY'
import gzip
import numpy as np
pixels = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()[16:]
images = np.frombuffer(pixels, dtype=np.uint8)[:300 * 784].astype(np.float32) / 255
np.save("flat.npy", images.reshape(300, 784))
np.save("image.npy", images.reshape(300, 1, 28, 28))
random = np.random.RandomState(0)
np.save("points.npy", random.randn(50, 2).astype(np.float32))
np.save("bytes.npy", random.randint(0, 128, size=(8, 64)).astype(np.float32))
PY

# check_export NAME INPUT: export NAME's checkpoint, check it, and match PyTorch's evaluation with `predict -o`.
check_export() {
  local name=$1 input=$2
  ./$name export --weights $name.safetensors --onnx $name.onnx > export.log || fail "$name export: $(cat export.log)"
  "$python" - "$name.onnx" <<'PY' || fail "$name.onnx: ONNX's checker refuses it"
import sys
import onnx
model = onnx.load(sys.argv[1])
onnx.checker.check_model(model, full_check=True)  # full_check: ONNX's shape inference agrees with every shape
PY
  ./$name predict --weights $name.safetensors $input -o $name.predict.npy > /dev/null
  "$python" "$src/tests/onnx/run_with_torch.py" $name.onnx $input $name.torch.npy || fail "$name: torch evaluation"
  "$tensor_diff" $name.predict.npy $name.torch.npy 1e-5 1e-4 > diff.log ||
    fail "$name: PyTorch's evaluation of the export differs from predict: $(cat diff.log)"
  echo "$name: PyTorch's evaluation against predict: $(tail -n 1 diff.log)"
}

build() {  # build NAME MODEL.nn
  "$nnc" build "$2" -o "$1" 2> build.log || fail "build $1: $(cat build.log)"
}

build mlp "$src/examples/mlp.nn"
./mlp train --data $fashion --max-steps 20 --normalize standardize --save mlp.safetensors --threads 2 > train.log 2>&1
check_export mlp flat.npy
grep -qF "wrote mlp.onnx: ONNX, input x f32[B, 784] (standardized in the graph), 6 parameter tensors" export.log ||
  fail "export's report: $(cat export.log)"
# The graph's interface: the features as the model names them over a symbolic batch, the probabilities predict
# writes, the normalization as initializers.
"$python" - <<'PY' || fail "mlp.onnx's interface"
import onnx
graph = onnx.load("mlp.onnx").graph
def shape(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
assert [(v.name, shape(v)) for v in graph.input] == [("x", ["B", 784])], graph.input
assert [(v.name, shape(v)) for v in graph.output] == [("probabilities", ["B", 10])], graph.output
names = {t.name for t in graph.initializer}
assert {"fc1.weight", "fc1.bias", "normalization.offset", "normalization.scale"} <= names, names
assert [n.op_type for n in graph.node][:3] == ["Sub", "Mul", "Sub"], [n.op_type for n in graph.node]
PY

build cnn_bn "$src/examples/cnn_bn.nn"
./cnn_bn train --data $fashion --max-steps 5 --save cnn_bn.safetensors --threads 2 > train.log 2>&1
check_export cnn_bn image.npy
grep -qF "input x f32[B, 1, 28, 28], 14 parameter tensors" export.log || fail "export's report: $(cat export.log)"

build vae "$src/examples/vae.nn"  # a reconstruction from logits: sigmoid; eval mode's zero noise a scalar
./vae train --data $fashion --max-steps 5 --save vae.safetensors --threads 2 > train.log 2>&1
check_export vae flat.npy

build xor "$src/examples/xor.nn"  # one logit: [1 - sigmoid, sigmoid]
./xor train --data "$src/examples/data/xor" --max-steps 20 --save xor.safetensors > train.log 2>&1
check_export xor points.npy

build charlm "$src/examples/charlm.nn"  # i32 ids: embedding, causal attention, LayerNorm, gelu (Erf)
./charlm train --data "$src/examples/data/text" --max-steps 2 --save charlm.safetensors --threads 2 > train.log 2>&1
check_export charlm bytes.npy

# Imported back by nnc: the same predictions from nnc's own reading of the ONNX file.
import_back() {  # import_back NAME INPUT
  local name=$1 input=$2
  "$nnc" import $name.onnx -o back_$name.nn --loss mse 2> import.log || fail "import $name.onnx: $(cat import.log)"
  build back_$name back_$name.nn
  ./back_$name predict --weights back_$name.safetensors $input -o back_$name.npy > /dev/null
  "$tensor_diff" $name.predict.npy back_$name.npy 1e-5 1e-4 > diff.log ||
    fail "$name imported back predicts otherwise: $(cat diff.log)"
  echo "$name imported back against predict: $(tail -n 1 diff.log)"
}
import_back mlp flat.npy
import_back cnn_bn image.npy
import_back charlm bytes.npy

# Errors: exit code 1, a message naming what is wrong, no file left.
expect_error() {  # expect_error MESSAGE TRAINER ARGS...
  local message=$1; shift
  if "$@" > out.log 2> err.log; then fail "$* succeeded"; fi
  grep -qF -- "$message" err.log || fail "$*: expected \`$message\`, got: $(cat err.log)"
}
expect_error "\`export\` needs \`--onnx MODEL.onnx\`" ./mlp export --weights mlp.safetensors
expect_error "\`export\` needs \`--weights CKPT\`" ./mlp export --onnx m.onnx
expect_error "cnn_bn.safetensors" ./mlp export --weights cnn_bn.safetensors --onnx wrong.onnx
[ ! -e wrong.onnx ] || fail "a refused export wrote wrong.onnx"
expect_error "no/such/dir" ./mlp export --weights mlp.safetensors --onnx no/such/dir/m.onnx
# A model whose prediction has no ONNX form: eval mode's zeros over the batch, concatenated (not arithmetic).
cat > noisy.nn <<'NN'
model noisy(x: f32[B, 2], y: i32[B]) {
    h = concat(x, randn_like(x), axis = 1)
    logits = linear(h, 2)
    loss = cross_entropy(logits, y)
    return logits
}
NN
build noisy noisy.nn
./noisy train --data "$src/examples/data/xor" --max-steps 1 --save noisy.safetensors > train.log 2>&1
no_form="model \`noisy\` has no ONNX form: \`fill\` (read by \`h\`): a constant over the batch that is not an"
expect_error "$no_form operand of arithmetic" \
  ./noisy export --weights noisy.safetensors --onnx noisy.onnx
[ ! -e noisy.onnx ] || fail "a refused export wrote noisy.onnx"
./noisy info | grep -qF "onnx export: no: \`fill\` (read by \`h\`)" || fail "noisy info: $(./noisy info)"
./mlp info | grep -qF "onnx export: yes" || fail "mlp info: $(./mlp info)"
echo "onnx_export: 5 models exported, checked and matched by PyTorch's operators, 3 imported back"
