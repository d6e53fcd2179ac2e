#!/usr/bin/env bash
# Checkpoints to and from PyTorch: a torch.nn model with BatchNorm2d, its state_dict written as the safetensors
# package writes it (F32 and an I64 num_batches_tracked), loads with `--init`/`--weights` into the trainer of the
# same model and predicts what PyTorch predicts; F64, F16 and BF16 copies load too (F64 with one note per rounded
# tensor). The checkpoint the trainer writes then loads into the torch.nn model with load_state_dict(strict=True),
# every dtype as PyTorch's, num_batches_tracked an int64 counting the trainer's step.
# Needs /usr/bin/python3 with torch and numpy (Debian's python3-torch); exits 77 (skipped) without them.
# Usage: pytorch_checkpoint.sh NNC SOURCE_DIR WORK_DIR
set -euo pipefail
nnc=$1 work=$3
py=/usr/bin/python3
"$py" -c "import torch, numpy" 2> /dev/null || { echo "skipped: $py lacks torch or numpy"; exit 77; }
rm -rf "$work" && mkdir -p "$work/data" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > bn.nn <<'EOF'
model bn(x: f32[B, 1, 4, 4], y: i32[B]) {
    conv = conv2d(x, 2, kernel = 3, padding = 1, bias = 0)
    norm = batch_norm(conv)
    logits = linear(flatten(relu(norm)), 3)
    loss = cross_entropy(logits, y)
    return logits
}
train {
    data = "data"
    batch = 4
    optimizer = sgd(lr = 0.1)
}
EOF
"$nnc" build bn.nn -o bn > build.log 2>&1 || { cat build.log; exit 1; }

# The safetensors layout by hand (the package is not installed), and the equivalent torch.nn model.
cat > st.py <<'EOF'
import json, struct, torch

# What safetensors.torch.save_file(state_dict, path) writes (huggingface/safetensors: safetensors/src/tensor.rs,
# prepare() and Metadata's Serialize; bindings/python/py_src/safetensors/torch.py):
# - tensors sorted by dtype, descending in the Rust Dtype enum's order (... F16, BF16, I32, U32, F32, C64, F64,
#   I64, U64), then by name; data offsets contiguous from 0 in that order, each tensor's little-endian bytes;
# - the header is compact JSON (serde_json: no spaces), "__metadata__" first when given (save_file gives none),
#   then the tensors in data order, each {"dtype", "shape", "data_offsets"} in that key order, a 0-d tensor's
#   shape []; padded with spaces to a multiple of 8 bytes and preceded by its length, a little-endian u64.
NAMES = {torch.float16: "F16", torch.bfloat16: "BF16", torch.int32: "I32", torch.float32: "F32",
         torch.float64: "F64", torch.int64: "I64"}  # in the enum's order
ORDER = list(NAMES.values())
DTYPES = {name: dtype for dtype, name in NAMES.items()}

def write(path, tensors):
    items = sorted(tensors.items(), key=lambda kv: (-ORDER.index(NAMES[kv[1].dtype]), kv[0]))
    header, data = {}, b""
    for name, t in items:
        raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + data)

def read(path):  # -> (tensors, header without __metadata__, data section)
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n:]
    tensors = {name: torch.frombuffer(bytearray(data[e["data_offsets"][0]:e["data_offsets"][1]]),
                                      dtype=DTYPES[e["dtype"]]).reshape(e["shape"]) for name, e in header.items()}
    return tensors, header, data

class Bn(torch.nn.Module):  # bn.nn
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3, padding=1, bias=False)
        self.norm = torch.nn.BatchNorm2d(2)
        self.logits = torch.nn.Linear(32, 3)

    def forward(self, x):
        return self.logits(torch.flatten(torch.relu(self.norm(self.conv(x))), 1))
EOF

# PyTorch's side: data, a model with every BatchNorm term away from its start, 3 batches through it in train mode
# (num_batches_tracked 3), its eval-mode probabilities, its state_dict in the package's layout and as copies.
"$py" - <<'EOF'
import numpy as np, torch
from st import Bn, write
torch.manual_seed(0)
x, y = torch.rand(8, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1], dtype=torch.int32)
for split in ("train", "test"):
    np.save(f"data/{split}_x.npy", x.numpy())
    np.save(f"data/{split}_y.npy", y.numpy())
model = Bn()
with torch.no_grad():
    model.norm.weight.uniform_(0.5, 1.5)
    model.norm.bias.uniform_(-0.2, 0.2)
    for _ in range(3):
        model(torch.rand(4, 1, 4, 4))
    model.eval()
    np.save("torch_probabilities.npy", torch.softmax(model(x), 1).numpy())
state = model.state_dict()
assert state["norm.num_batches_tracked"].dtype == torch.int64 and state["norm.num_batches_tracked"].item() == 3
write("torch.safetensors", state)
# Every floating tensor as F64 (off the f32 grid: each value times 1 + 1e-10, so every one rounds), F16 and BF16;
# and each copy's values as F32 (rounded to nearest, even on ties, as the trainer rounds), what it should load.
copies = {"float64": lambda v: v.double() * (1 + 1e-10), "float16": torch.Tensor.half, "bfloat16": torch.Tensor.bfloat16}
for name, copy in copies.items():
    write(f"{name}.safetensors", {k: copy(v) if v.is_floating_point() else v for k, v in state.items()})
    write(f"{name}_as_f32.safetensors", {k: copy(v).float() if v.is_floating_point() else v for k, v in state.items()})
EOF

# The trainer predicts from PyTorch's checkpoint what PyTorch predicts.
./bn predict --weights torch.safetensors data/test_x.npy -o from_torch.npy > /dev/null 2> predict.err ||
  fail "PyTorch's checkpoint refused: $(cat predict.err)"
[ -s predict.err ] && fail "notes on an F32 and I64 checkpoint: $(cat predict.err)"
"$py" -c '
import numpy as np, sys
nnc, torch = np.load("from_torch.npy"), np.load("torch_probabilities.npy")
sys.exit(f"predictions differ by {abs(nnc - torch).max()}" if nnc.shape != torch.shape or abs(nnc - torch).max() > 1e-5 else 0)' ||
  fail "the trainer's predictions from PyTorch's checkpoint are not PyTorch's"

# Other dtypes arrive as their values in F32: the same predictions, bit for bit. Only F64 rounds, noted per tensor.
for dtype in float64 float16 bfloat16; do
  ./bn predict --weights $dtype.safetensors data/test_x.npy -o $dtype.npy > /dev/null 2> $dtype.err ||
    fail "$dtype: $(cat $dtype.err)"
  ./bn predict --weights ${dtype}_as_f32.safetensors data/test_x.npy -o ${dtype}_as_f32.npy > /dev/null 2>&1
  cmp -s $dtype.npy ${dtype}_as_f32.npy || fail "$dtype: predictions differ from those of its values as F32"
done
[ "$(grep -c "^note: float64.safetensors: tensor \`[a-z._]*\`: [0-9]* of [0-9]* F64 values rounded to the nearest f32$" float64.err)" = 7 ] ||
  fail "F64 checkpoint: not one note per rounded tensor (7): $(cat float64.err)"
[ -s float16.err ] || [ -s bfloat16.err ] && fail "notes on exact conversions: $(cat float16.err bfloat16.err)"

# --init from PyTorch's checkpoint, one step, and back into torch.nn.
./bn train --init torch.safetensors --max-steps 1 --save nnc.safetensors > train.log 2>&1 || fail "$(cat train.log)"
"$py" - <<'EOF' || fail "the trainer's checkpoint is not what PyTorch's would be"
import torch
from st import Bn, read, write
tensors, header, data = read("nnc.safetensors")
model = Bn()
reference = model.state_dict()
model.load_state_dict(tensors, strict=True)  # copies into the module's own tensors: check the file's dtypes apart
wrong = {k: (v.dtype, reference[k].dtype) for k, v in tensors.items() if v.dtype != reference[k].dtype}
assert not wrong, f"dtypes (nnc's, PyTorch's): {wrong}"
count = tensors["norm.num_batches_tracked"]
assert count.dtype == torch.int64 and count.item() == 4, f"num_batches_tracked {count!r}, expected 3 + 1 step"
# The data section is the package's: same order, offsets and bytes.
write("again.safetensors", tensors)
_, again_header, again_data = read("again.safetensors")
assert again_data == data and again_header == header, "the data section is not laid out as safetensors lays it out"
EOF
echo "pytorch checkpoint: PyTorch's layout, F64/F16/BF16 and the way back all as expected"
