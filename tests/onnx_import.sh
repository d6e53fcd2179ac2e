#!/usr/bin/env bash
# `nnc import` end to end: a PyTorch CNN (tests/onnx/export_models.py: conv, pools, BatchNorm1d, linear layers, a
# view) and a token model (embedding, LayerNorm, a class per position) exported to ONNX, imported (to
# tests/onnx/export_cnn.nn and export_tokens.nn), built and run: `predict` matches PyTorch's probabilities within
# 1e-4, and the CNN's trainer trains from the imported checkpoint. Then the import's errors: a
# missing file, a file that is not ONNX, unsupported operators (each with its node), models that break ONNX's rules
# or nnc's (results too large to build among them), an unknown loss.
# Usage: onnx_import.sh NNC SOURCE_DIR WORK_DIR TENSOR_DIFF
source "$2/tests/onnx/script_setup.sh"  # nnc, src, work, tensor_diff, fail, python

"$python" "$src/tests/onnx/export_models.py" . 2> export.log || fail "export: $(tail -n 3 export.log)"
"$nnc" import net.onnx -o net.nn --loss cross_entropy 2> import.log || fail "import: $(cat import.log)"
grep -q "^nnc: imported net.onnx into net.nn and 12 tensors into net.safetensors" import.log || fail "$(cat import.log)"
# The .nn is tests/onnx/export_cnn.nn: PyTorch's module names are the bindings, so the layer forms' params have
# PyTorch's names (regenerate them with `cp WORK_DIR/net.nn tests/onnx/export_cnn.nn` and
# `cp WORK_DIR/tokens.nn tests/onnx/export_tokens.nn` when the import changes).
diff -u "$src/tests/onnx/export_cnn.nn" net.nn > golden.diff || fail "net.nn differs from export_cnn.nn: $(cat golden.diff)"
"$nnc" build net.nn -o net 2> build.log || fail "build: $(cat build.log)"
./net predict --weights net.safetensors in.npy -o pred.npy > /dev/null
"$tensor_diff" expected.npy pred.npy 1e-5 1e-4 > diff.log || fail "predictions differ from PyTorch's: $(cat diff.log)"
./net train --init net.safetensors --max-steps 2 --save trained.safetensors --threads 1 > train.log ||
  fail "training from the imported checkpoint: $(tail -n 3 train.log)"
"$nnc" import tokens.onnx -o tokens.nn --loss cross_entropy 2> import.log || fail "import: $(cat import.log)"
diff -u "$src/tests/onnx/export_tokens.nn" tokens.nn > golden.diff || fail "tokens.nn differs from export_tokens.nn: $(cat golden.diff)"
"$nnc" build tokens.nn -o tokens 2> build.log || fail "build: $(cat build.log)"
./tokens predict --weights tokens.safetensors tokens_in.npy -o tokens_pred.npy > /dev/null
"$tensor_diff" tokens_expected.npy tokens_pred.npy 1e-5 1e-4 > diff.log || fail "token predictions differ: $(cat diff.log)"

# Errors: exit code 1 and a message that names the file (and the nodes).
expect_error() {  # expect_error PATTERN ARGS...: nnc import fails with PATTERN in its message
  local pattern=$1; shift
  if "$nnc" import "$@" 2> err.log; then fail "nnc import $* succeeded"; fi
  grep -qF -- "$pattern" err.log || fail "nnc import $*: expected \`$pattern\`, got: $(cat err.log)"
}
expect_error "nnc: error: missing.onnx: cannot open: No such file or directory" missing.onnx -o m.nn
echo "not a model" > junk.onnx
expect_error "junk.onnx: not an ONNX model (the protobuf does not parse)" junk.onnx -o m.nn
"$python" - <<'PY'
import onnx
from onnx import TensorProto, helper
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
nodes = [helper.make_node("Sin", ["x"], ["s"], name="sine"), helper.make_node("Relu", ["s"], ["r"], name="rectify"),
         helper.make_node("Cos", ["r"], ["y"], name="cosine")]
graph = helper.make_graph(nodes, "trig", [x], [y])
onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), "trig.onnx")
PY
expect_error "trig.onnx: operators nnc does not support (README.md lists those it does):
  node \`sine\`: Sin" trig.onnx -o m.nn
grep -qF "  node \`cosine\`: Cos" err.log || fail "the unsupported Cos is not listed: $(cat err.log)"
grep -q "rectify" err.log && fail "the supported Relu is listed: $(cat err.log)"
# Models that break ONNX's rules or nnc's, made with ONNX's helper API: each error names what is wrong.
"$python" - <<'PY'
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
def save(name, nodes, inputs, outputs, initializers=(), opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), name + ".onnx")
def info(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)
x, y = info("x", [2, 3]), info("y", [2, 3])
relu = helper.make_node("Relu", ["x"], ["y"], name="act")
save("no_producer", [helper.make_node("Relu", ["x"], ["r"])], [x], [y])
save("undefined", [helper.make_node("Add", ["x", "zz"], ["y"], name="plus")], [x], [y])
save("two_inputs", [helper.make_node("Add", ["x", "w"], ["y"])], [x, info("w", [2, 3])], [y])
save("two_outputs", [relu, helper.make_node("Relu", ["x"], ["z"])], [x], [y, info("z", [2, 3])])
save("rank1", [relu], [info("x", [3])], [info("y", [3])])
save("varying", [relu], [info("x", ["n", "m"])], [y])
save("opset9", [relu], [x], [y], opset=9)
save("opset18", [relu], [x], [y], opset=18)
save("ceil_pool", [helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2], strides=[2, 2],
                                      ceil_mode=1)],
     [info("x", [1, 1, 5, 5])], [info("y", [1, 1, 3, 3])])
save("batch_sum", [helper.make_node("ReduceSum", ["x", "axes"], ["y"], name="total")], [x], [info("y", [1, 3])],
     [numpy_helper.from_array(np.array([0], np.int64), "axes")])
save("nan", [helper.make_node("Add", ["x", "c"], ["y"], name="plus")], [x], [y],
     [numpy_helper.from_array(np.array([np.nan], np.float32), "c")])
# Results too large to build: Tile's 10^12 copies (shape inference gives [2, 3 10^12]), (2^64 + 2) / 3 copies
# (3 times that wraps to 2 in shape inference's product: [2, 2]), a Reshape to [2, 2^40, 2^40]; 3 10^8 copies fit
# in a tensor, not in a .nn file.
def tiled(name, repeats):
    save(name, [helper.make_node("Tile", ["x", "reps"], ["y"], name="tiles")], [x], [info("y", None)],
         [numpy_helper.from_array(np.array(repeats, np.int64), "reps")])
tiled("huge_tile", [1, 10**12])
tiled("wrapped_tile", [1, (2**64 + 2) // 3])
tiled("many_copies", [1, 3 * 10**8])
save("huge_reshape", [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshaped")], [x], [info("y", None)],
     [numpy_helper.from_array(np.array([2, 2**40, 2**40], np.int64), "shape")])
PY
expect_error "no_producer.onnx: output \`y\` is computed by no node" no_producer.onnx -o m.nn
expect_error "undefined.onnx: node \`plus\` (Add): input \`zz\` is not defined before it" undefined.onnx -o m.nn
expect_error "inputs \`x\` and \`w\`: an nnc model takes one input of features" two_inputs.onnx -o m.nn
expect_error "two_outputs.onnx: the graph has 2 outputs; an nnc model returns one" two_outputs.onnx -o m.nn
expect_error "input \`x\` has rank 1; nnc's features are [B, ...] of rank 2 or more" rank1.onnx -o m.nn
"$nnc" import rank1.onnx -o rank1.nn --new-batch-axis 2> err.log || fail "--new-batch-axis: $(cat err.log)"
grep -qF "model g(x: f32[B, 3]) {" rank1.nn || fail "--new-batch-axis puts no batch axis before x: $(cat rank1.nn)"
expect_error "axis 1 of \`x\` has no fixed size (\`m\`); only the batch axis may vary" varying.onnx -o m.nn
expect_error "opset18.onnx: opset 18 of the default domain; nnc imports opsets up to 17" opset18.onnx -o m.nn
"$nnc" import opset9.onnx -o opset9.nn 2> err.log || fail "an opset 9 model: $(cat err.log)"
grep -qF "(ONNX opset 13, converted from opset 9)" opset9.nn || fail "ONNX's version converter did not bring opset 9 to 13: $(cat opset9.nn)"
expect_error "node \`pool\` (MaxPool): ceil_mode; nnc rounds window counts down" ceil_pool.onnx -o m.nn
expect_error "node \`total\` (ReduceSum): it acts on axis 0, the batch axis of nnc's models" batch_sum.onnx -o m.nn
expect_error "node \`plus\` (Add): the number nan has no .nn literal" nan.onnx -o m.nn
too_large="would have a negative size or more than 2147483647 elements per example"
expect_error "huge_tile.onnx: node \`tiles\` (Tile): \`y\` $too_large" huge_tile.onnx -o m.nn
expect_error "wrapped_tile.onnx: node \`tiles\` (Tile): \`y\` $too_large" wrapped_tile.onnx -o m.nn
expect_error "huge_reshape.onnx: node \`reshaped\` (Reshape): \`y\` $too_large" huge_reshape.onnx -o m.nn
expect_error "many_copies.onnx: node \`tiles\` (Tile): repeats [1, 300000000] make more than 5592405 copies of \`x\`" \
  many_copies.onnx -o m.nn
mkdir -p dir.onnx
expect_error "dir.onnx: is a directory, not an ONNX model" dir.onnx -o m.nn
expect_error "unknown loss \`hinge\`; expected cross_entropy or mse" net.onnx -o m.nn --loss hinge
[ ! -e m.nn ] || fail "a failed import wrote m.nn"
echo "onnx_import: all checks passed"
