#!/usr/bin/python3
"""Records PyTorch's float64 training of each parity case (tests/trainer_parity_test.cpp).

For each CASE (tests/parity/CASE.nn), writes tests/parity/CASE/:
  train_x.npy, train_y.npy, test_x.npy, test_y.npy   the data (float32 features, int64 labels)
  init.safetensors                                   the starting parameters and buffers, float32, nnc's names
  expected.json                                      every parameter and buffer after the train block's run
The run is the trainer's: --no-shuffle batches in file order (a partial last batch included), the learning rate
from torch.optim.lr_scheduler, torch.nn.utils.clip_grad_norm_ before the step, torch.optim's update, all in
float64 from the float32 starting values. Needs Debian's python3-torch and python3-numpy; run it after changing
a case, and commit what it writes.
"""
import json
import math
import pathlib
import struct

import numpy as np
import torch
from torch import nn

torch.set_default_dtype(torch.float64)
HERE = pathlib.Path(__file__).resolve().parent


class AdamBnMlp(nn.Module):
    features, classes, rows, batch, epochs = (6,), 3, 30, 8, 3

    def __init__(self):
        super().__init__()
        self.h = nn.Linear(6, 8)
        self.bn = nn.BatchNorm1d(8, momentum=0.2)
        self.logits = nn.Linear(8, 3)

    def forward(self, x):
        return self.logits(torch.relu(self.bn(self.h(x))))

    def optimizer(self):
        return torch.optim.Adam(self.parameters(), lr=0.01, betas=(0.8, 0.95), weight_decay=0.01)

    clip = 0.5

    def schedule(self, opt, steps_per_epoch):  # step(every = 1, factor = 0.5), per epoch
        return torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5), "epoch"


class AdamwCnn(nn.Module):
    features, classes, rows, batch, epochs = (2, 7, 7), 3, 16, 4, 2

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 3, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(2, 2, 3, dilation=2)
        self.fc1 = nn.Linear(12, 3)
        self.fc2 = nn.Linear(32, 3)

    def forward(self, x):
        pool = nn.functional.max_pool2d(torch.relu(self.bn(self.conv1(x))), 2)
        avg = nn.functional.avg_pool2d(self.conv2(x), 2, stride=1, padding=1, count_include_pad=True)
        return self.fc1(pool.flatten(1)) + self.fc2(avg.flatten(1))

    def optimizer(self):
        return torch.optim.AdamW(self.parameters(), lr=0.01, betas=(0.85, 0.99), weight_decay=0.05)

    clip = None

    def schedule(self, opt, steps_per_epoch):  # cosine over the steps of all epochs
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps_per_epoch * self.epochs), "step"


class SgdNesterov(nn.Module):
    features, classes, rows, batch, epochs = (5,), 4, 24, 8, 2

    def __init__(self):
        super().__init__()
        self.h = nn.Linear(5, 7)
        self.logits = nn.Linear(7, 4)

    def forward(self, x):
        return self.logits(torch.tanh(self.h(x)))

    def optimizer(self):
        return torch.optim.SGD(self.parameters(), lr=0.2, momentum=0.9, nesterov=True, weight_decay=0.001)

    clip = None

    def schedule(self, opt, steps_per_epoch):  # exponential(k = 0.3, per = "step")
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=math.exp(-0.3)), "step"


class RmspropSoftmax(nn.Module):
    features, classes, rows, batch, epochs = (4,), 3, 15, 5, 3

    def __init__(self):
        super().__init__()
        self.logits = nn.Linear(4, 3)

    def forward(self, x):
        return self.logits(x)

    def optimizer(self):
        return torch.optim.RMSprop(self.parameters(), lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.01)

    clip = None

    def schedule(self, opt, steps_per_epoch):  # inverse(k = 0.5), per epoch
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 / (1 + 0.5 * t)), "epoch"


CASES = {"adam_bn_mlp": AdamBnMlp, "adamw_cnn": AdamwCnn, "sgd_nesterov": SgdNesterov,
         "rmsprop_softmax": RmspropSoftmax}


def write_safetensors(path, tensors):
    """float32 tensors in name order, as runtime/safetensors.h reads them (no checksum: as other tools write)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = np.asarray(tensors[name], dtype="<f4", order="C")  # keeps a 0-d shape, unlike ascontiguousarray
        header[name] = {"dtype": "F32", "shape": list(data.shape), "data_offsets": [offset, offset + data.nbytes]}
        blobs.append(data.tobytes())
        offset += data.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def state_of(model):
    """Parameters and buffers under nnc's names (torch's), float64."""
    return {name: value.detach().clone().to(torch.float64) for name, value in model.state_dict().items()}


def make_case(name, Model):
    rng = np.random.default_rng(sum(map(ord, name)))
    out = HERE / name
    out.mkdir(exist_ok=True)
    data = {}
    for split, rows in (("train", Model.rows), ("test", 10)):
        data[split] = (rng.standard_normal((rows, *Model.features)).astype(np.float32),
                       rng.integers(0, Model.classes, rows).astype(np.int64))
        np.save(out / f"{split}_x.npy", data[split][0])
        np.save(out / f"{split}_y.npy", data[split][1])

    torch.manual_seed(sum(map(ord, name)))
    model = Model()
    init = {}
    for key, value in state_of(model).items():  # BatchNorm away from its identity start, so every term counts
        if key.endswith("num_batches_tracked"):
            value = torch.zeros(())
        elif key.startswith("bn.") and key.endswith(("weight", "running_var")):
            value = torch.from_numpy(rng.uniform(0.5, 1.5, value.shape))
        elif key.startswith("bn."):
            value = torch.from_numpy(rng.uniform(-0.2, 0.2, value.shape))
        init[key] = value.to(torch.float32).numpy()
    write_safetensors(out / "init.safetensors", init)
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float64)) for k, v in init.items()})

    opt = model.optimizer()
    steps_per_epoch = -(-Model.rows // Model.batch)
    scheduler, per = model.schedule(opt, steps_per_epoch)
    x, y = (torch.from_numpy(a) for a in data["train"])
    x = x.to(torch.float64)
    model.train()
    for _ in range(Model.epochs):
        for start in range(0, Model.rows, Model.batch):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[start:start + Model.batch]), y[start:start + Model.batch])
            loss.backward()
            if Model.clip:
                nn.utils.clip_grad_norm_(model.parameters(), Model.clip)
            opt.step()
            if per == "step":
                scheduler.step()
        if per == "epoch":
            scheduler.step()

    expected = {key: {"shape": list(value.shape), "values": value.flatten().tolist()}
                for key, value in state_of(model).items()}
    lines = [f"{json.dumps(key)}: {json.dumps(value)}" for key, value in expected.items()]
    (out / "expected.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"{name}: {Model.epochs * steps_per_epoch} steps, loss of the last batch {loss.item():.6f}")


if __name__ == "__main__":
    for case_name, case_model in CASES.items():
        make_case(case_name, case_model)
