#!/usr/bin/env python3
"""Trains the PyTorch equivalent of examples/mlp.nn on Fashion-MNIST, for comparing accuracy and speed.

Usage: python3 bench/torch_mlp.py [--epochs N] [--lr X] [--momentum X] [--batch N] [--threads N]
       [--data DIR] [--init CKPT.safetensors]
Needs Debian's python3-torch and python3-numpy (and libopenblas0-pthread for a fast BLAS).
"""
import argparse, gzip, json, os, struct, time

import numpy as np
import torch
from torch import nn


def read_idx(path):
    opener = gzip.open if os.path.exists(path + ".gz") else open
    with opener(path + ".gz" if os.path.exists(path + ".gz") else path, "rb") as f:
        data = f.read()
    ndims = data[3]
    dims = struct.unpack(">" + "I" * ndims, data[4:4 + 4 * ndims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndims).reshape(dims)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[b:e], dtype=np.float32).reshape(info["shape"]).copy())
    return out


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.logits = nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, 10)

    def forward(self, x):
        return self.logits(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--init", default="")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    xs = torch.from_numpy(read_idx(f"{args.data}/train-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255)
    ys = torch.from_numpy(read_idx(f"{args.data}/train-labels-idx1-ubyte").astype(np.int64))
    xt = torch.from_numpy(read_idx(f"{args.data}/t10k-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255)
    yt = torch.from_numpy(read_idx(f"{args.data}/t10k-labels-idx1-ubyte").astype(np.int64))
    model = MLP()
    if args.init:
        model.load_state_dict(read_safetensors(args.init))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, args.epochs + 1):
        start = time.time()
        perm = torch.randperm(len(xs))
        for i in range(0, len(xs), args.batch):
            idx = perm[i:i + args.batch]
            opt.zero_grad()
            loss = loss_fn(model(xs[idx]), ys[idx])
            loss.backward()
            opt.step()
        seconds = time.time() - start
        with torch.no_grad():
            out = model(xt)
            acc = (out.argmax(1) == yt).float().mean().item()
            print(f"epoch {epoch}: test_loss {loss_fn(out, yt).item():.4f} test_accuracy {acc:.4f} "
                  f"({seconds:.1f} s, {len(xs) / seconds:.0f} img/s)")


if __name__ == "__main__":
    main()
