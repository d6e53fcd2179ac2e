#!/usr/bin/env python3
"""Times the same training step (and eval at batch 256) in PyTorch and in an nnc trainer, and prints the ratios.

  /usr/bin/python3 bench/compare_pytorch.py [--models mlp lenet5 vit] [--threads 1 2] [--repeats 7] [--steps 50]
                                            [--record bench/baseline.json] [--baseline bench/baseline.json]
                                            [--torch-runs 3] [--nnc-runs 3] [--accuracy-epochs 1]
                                            [--single-pipeline-too]

Honest by construction: Fashion-MNIST images for both; the same model, optimizer, batch and thread count; 10
warm-up steps; the median of --repeats timings of --steps steps each. PyTorch runs in a
subprocess per thread count with OPENBLAS_NUM_THREADS=1 (Debian's libopenblas0-pthread keeps its own pool,
which fights torch's on two cores) and must find an optimized BLAS (the reference BLAS is 15x slower: the
script refuses it). The nnc side builds build/nnc's trainer from examples/MODEL.nn and runs
`TRAINER bench --repeats R --steps S --threads T`, which times the same loop over its compiled kernels.
PyTorch is generous to PyTorch: its steps cycle through 16 batches (trained on one batch over and over, its
loss collapsed and LeNet-5's 1-thread step fell, mid-run, from 5-8 ms into a 27-31 ms regime), and each figure
is the fastest of --torch-runs processes (default 3), because some PyTorch processes run LeNet-5 in a slow
regime from their first step (2 threads: 16-19 ms against 3.5-5 ms; without oneDNN, always 10-24 ms). nnc's
figure is likewise the fastest of --nnc-runs processes (default 3), run in turn with PyTorch's.
--record writes the figures as JSON; --baseline adds a column with nnc's time relative to a recorded run
(above 1: slower than then), so a schedule change that costs time is visible. Last, each model trains
--accuracy-epochs epochs (default 1) on each side, as its train block says (PyTorch's own initialization and
shuffling), and both test accuracies are printed. --single-pipeline-too also builds each model with
`nnc build --single-pipeline` and times that trainer in the same turns: what the plan of kernels costs per step.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


DATA = "/usr/share/datasets/fashion-mnist"


def torch_setup(model_name, threads):
    """In a PyTorch subprocess: checks the BLAS, returns (net, optimizer, lr) as examples/MODEL.nn declares them."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(1)
    a = torch.randn(512, 512)  # the reference BLAS manages ~3 GFLOP/s, OpenBLAS 50+ on one core
    start = time.perf_counter()
    for _ in range(10):
        a @ a
    gflops = 10 * 2 * 512 ** 3 / (time.perf_counter() - start) / 1e9
    if gflops < 10:
        raise SystemExit(f"PyTorch's sgemm runs at {gflops:.1f} GFLOP/s: the reference BLAS; "
                         "install libopenblas0-pthread")
    if model_name == "mlp":  # examples/mlp.nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.fc2, self.logits = nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, 10)

            def forward(self, x):
                x = (x.reshape(-1, 784) - 0.2860) / 0.3530
                return self.logits(torch.relu(self.fc2(torch.relu(self.fc1(x)))))
        net = Net()
        return net, torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9), 0.02

    if model_name == "vit":  # examples/vit.nn
        return vit_setup(torch, nn)

    class Net(nn.Module):  # examples/lenet5.nn
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.logits = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, x):
            x = (x.reshape(-1, 1, 28, 28) - 0.2860) / 0.3530
            x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
            return self.logits(torch.relu(self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))))
    net = Net()
    return net, torch.optim.Adam(net.parameters(), lr=0.002), 0.002


VIT = {"patch": 7, "width": 128, "heads": 4, "blocks": 2, "mlp": 2, "lr": 0.001}  # examples/vit.nn


def vit_setup(torch, nn):
    """examples/vit.nn in PyTorch: patches of VIT["patch"]^2 pixels embedded and added to a position table, Pre-LN
    blocks (multi-head self-attention, a GELU MLP), layer-norm, mean over the tokens, a linear head; Adam."""
    side = 28 // VIT["patch"]
    tokens, width, heads = side * side, VIT["width"], VIT["heads"]

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.q, self.k, self.v, self.o = (nn.Linear(width, width, bias=False) for _ in range(4))
            self.fc1, self.fc2 = nn.Linear(width, VIT["mlp"] * width), nn.Linear(VIT["mlp"] * width, width)

        def forward(self, x):
            h = self.ln1(x)
            split = lambda t: t.reshape(-1, tokens, heads, width // heads).transpose(1, 2)
            q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
            weights = torch.softmax(q @ k.transpose(-1, -2) / (width // heads) ** 0.5, dim=-1)
            x = x + self.o((weights @ v).transpose(1, 2).reshape(-1, tokens, width))
            return x + self.fc2(nn.functional.gelu(self.fc1(self.ln2(x))))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(VIT["patch"] ** 2, width, bias=False)
            self.pos = nn.Parameter(torch.randn(tokens, width) * 0.02)
            self.blocks = nn.Sequential(*(Block() for _ in range(VIT["blocks"])))
            self.final, self.logits = nn.LayerNorm(width), nn.Linear(width, 10)

        def forward(self, x):
            x = (x.reshape(-1, side, VIT["patch"], side, VIT["patch"]) - 0.2860) / 0.3530
            x = x.permute(0, 1, 3, 2, 4).reshape(-1, tokens, VIT["patch"] ** 2)
            x = self.blocks(self.embed(x) + self.pos)
            return self.logits(self.final(x).mean(1))
    net = Net()
    return net, torch.optim.Adam(net.parameters(), lr=VIT["lr"]), VIT["lr"]


def fashion_mnist(split, count=None):
    """Images as floats in [0, 1] and labels, as tensors; split is "train" or "t10k"."""
    import numpy as np
    import torch
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from torch_mlp import read_idx
    images = read_idx(f"{DATA}/{split}-images-idx3-ubyte")[:count]
    labels = read_idx(f"{DATA}/{split}-labels-idx1-ubyte")[:count]
    return torch.from_numpy(images.astype(np.float32) / 255), torch.from_numpy(labels.astype(np.int64))


def torch_side(model_name, threads, repeats, steps, batch, eval_batch):
    """Runs in a subprocess: prints JSON {train_ms, eval_ms} for PyTorch."""
    import torch
    from torch import nn

    net, opt, _ = torch_setup(model_name, threads)
    train_batches = 16
    x_all, y_all = fashion_mnist("train", max(eval_batch, train_batches * batch))
    loss_fn = nn.CrossEntropyLoss()
    batches = [(x_all[i * batch:(i + 1) * batch], y_all[i * batch:(i + 1) * batch]) for i in range(train_batches)]
    step = [0]

    def train_step():
        x, y = batches[step[0] % train_batches]
        step[0] += 1
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()

    def eval_step():
        with torch.no_grad():
            net(x_all[:eval_batch])

    def median_ms(fn):
        for _ in range(10):
            fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            times.append((time.perf_counter() - start) / steps * 1e3)
        return statistics.median(times)

    print(json.dumps({"train_ms": median_ms(train_step), "eval_ms": median_ms(eval_step)}))


def torch_accuracy(model_name, threads, epochs, batch):
    """Runs in a subprocess: trains `epochs` epochs as the example's train block says (shuffled batches, its
    optimizer, a cosine learning rate per step) and prints JSON {test_accuracy}."""
    import math
    import torch
    from torch import nn

    net, opt, lr = torch_setup(model_name, threads)
    x, y = fashion_mnist("train")
    steps_per_epoch = (len(x) + batch - 1) // batch
    total = epochs * steps_per_epoch
    generator = torch.Generator().manual_seed(1)
    loss_fn = nn.CrossEntropyLoss()
    step = 0
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for first in range(0, len(x), batch):
            rows = order[first:first + batch]
            for group in opt.param_groups:
                group["lr"] = lr * (1 + math.cos(math.pi * step / total)) / 2
            opt.zero_grad()
            loss_fn(net(x[rows]), y[rows]).backward()
            opt.step()
            step += 1
    test_x, test_y = fashion_mnist("t10k")
    with torch.no_grad():
        correct = (net(test_x).argmax(1) == test_y).sum().item()
    print(json.dumps({"test_accuracy": correct / len(test_x)}))


def nnc_accuracy(trainer, threads, epochs, work):
    """Trains `epochs` epochs with the nnc trainer; returns the last epoch's test accuracy from its metrics."""
    metrics = os.path.join(work, os.path.basename(trainer) + "-metrics.jsonl")
    subprocess.run([trainer, "train", "--epochs", str(epochs), "--threads", str(threads), "--metrics", metrics],
                   check=True, capture_output=True, cwd=work)
    with open(metrics) as f:
        return [json.loads(line) for line in f if line.strip()][-1]["test_accuracy"]


def nnc_ms(trainer, entry, threads, repeats, steps, batch):
    out = subprocess.run([trainer, "bench", "--entry", entry, "--threads", str(threads), "--repeats", str(repeats),
                          "--steps", str(steps), "--batch", str(batch)], check=True, capture_output=True, text=True)
    line = [l for l in out.stdout.splitlines() if l.startswith(entry + ":")][0]
    return float(line.split(",")[1].split()[0])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["mlp", "lenet5"])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--eval-batch", type=int, default=256)
    p.add_argument("--nnc", default=os.path.join(ROOT, "build", "nnc"))
    p.add_argument("--record", help="write the figures to this JSON file")
    p.add_argument("--baseline", help="a JSON file written by --record to compare nnc's times against")
    p.add_argument("--torch-runs", type=int, default=3,
                   help="PyTorch processes per model and thread count; the fastest median of each entry counts")
    p.add_argument("--nnc-runs", type=int, default=3,
                   help="trainer processes per entry, model and thread count; the fastest median counts")
    p.add_argument("--accuracy-epochs", type=int, default=1,
                   help="then train each model this many epochs on each side and print both test accuracies (0: skip)")
    p.add_argument("--single-pipeline-too", action="store_true",
                   help="also time each model built with --single-pipeline, in the same turns (plan/one column)")
    p.add_argument("--torch-side", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--torch-accuracy", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_side:
        return torch_side(args.torch_side[0], int(args.torch_side[1]), args.repeats, args.steps, args.batch,
                          args.eval_batch)
    if args.torch_accuracy:
        return torch_accuracy(args.torch_accuracy[0], int(args.torch_accuracy[1]), args.accuracy_epochs, args.batch)
    work = tempfile.mkdtemp(prefix="nnc-compare-")
    baseline = {}
    if args.baseline:
        with open(args.baseline) as f:
            baseline = {(r["model"], r["threads"], r["entry"]): r["nnc_ms"] for r in json.load(f)["results"]}
    results = []
    single = args.single_pipeline_too
    print(f"{'model':8} {'threads':>7} {'entry':>10} {'pytorch ms':>11} {'nnc ms':>8} {'speedup':>8}"
          + (f" {'vs baseline':>12}" if baseline else "")
          + (f" {'1-pipeline ms':>14} {'plan/1-pipeline':>16}" if single else ""))
    for model in args.models:
        trainer = os.path.join(work, model)
        subprocess.run([args.nnc, "build", os.path.join(ROOT, "examples", model + ".nn"), "-o", trainer], check=True,
                       capture_output=True)
        if single:
            subprocess.run([args.nnc, "build", "--single-pipeline", os.path.join(ROOT, "examples", model + ".nn"),
                            "-o", trainer + "-single-pipeline"], check=True, capture_output=True)
        for threads in args.threads:
            env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS=str(threads))
            entries = (("train_step", "train_ms", args.batch), ("predict", "eval_ms", args.eval_batch))
            torch_ms, nnc_best, single_best = {}, {}, {}
            # Each side's figure is its fastest process, the processes of the two sides taking turns, so that both
            # meet the machine's slow and fast spells alike (and PyTorch's slow regime is not counted).
            for run in range(max(args.torch_runs, args.nnc_runs)):
                if run < args.torch_runs:
                    out = subprocess.run([sys.executable, __file__, "--torch-side", model, str(threads), "--repeats",
                                          str(args.repeats), "--steps", str(args.steps), "--batch", str(args.batch),
                                          "--eval-batch", str(args.eval_batch)], check=True, capture_output=True,
                                         text=True, env=env)
                    for key, ms in json.loads(out.stdout.strip().splitlines()[-1]).items():
                        torch_ms[key] = min(ms, torch_ms.get(key, ms))
                if run < args.nnc_runs:
                    for entry, _, batch in entries:
                        ms = nnc_ms(trainer, entry, threads, args.repeats, args.steps, batch)
                        nnc_best[entry] = min(ms, nnc_best.get(entry, ms))
                        if single:
                            ms = nnc_ms(trainer + "-single-pipeline", entry, threads, args.repeats, args.steps, batch)
                            single_best[entry] = min(ms, single_best.get(entry, ms))
            for entry, key, batch in entries:
                ours = nnc_best[entry]
                before = baseline.get((model, threads, entry))
                print(f"{model:8} {threads:>7} {entry:>10} {torch_ms[key]:>11.3f} {ours:>8.3f} "
                      f"{torch_ms[key] / ours:>7.2f}x" + (f" {ours / before:>11.2f}x" if before else "")
                      + (f" {single_best[entry]:>14.3f} {ours / single_best[entry]:>15.3f}x" if single else ""),
                      flush=True)
                results.append({"model": model, "threads": threads, "entry": entry, "batch": batch,
                                "pytorch_ms": round(torch_ms[key], 4), "nnc_ms": round(ours, 4)})
                if single:
                    results[-1]["nnc_single_pipeline_ms"] = round(single_best[entry], 4)
    accuracies = []
    if args.accuracy_epochs > 0:
        threads = max(args.threads)
        print(f"\n{'model':8} {'epochs':>7} {'pytorch test accuracy':>22} {'nnc test accuracy':>18}")
        for model in args.models:
            env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS=str(threads))
            out = subprocess.run([sys.executable, __file__, "--torch-accuracy", model, str(threads),
                                  "--accuracy-epochs", str(args.accuracy_epochs), "--batch", str(args.batch)],
                                 check=True, capture_output=True, text=True, env=env)
            theirs = json.loads(out.stdout.strip().splitlines()[-1])["test_accuracy"]
            ours = nnc_accuracy(os.path.join(work, model), threads, args.accuracy_epochs, work)
            print(f"{model:8} {args.accuracy_epochs:>7} {theirs:>22.4f} {ours:>18.4f}", flush=True)
            accuracies.append({"model": model, "epochs": args.accuracy_epochs, "pytorch_test_accuracy": theirs,
                               "nnc_test_accuracy": ours})
    if args.record:
        with open(args.record, "w") as f:
            json.dump({"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d"),
                       "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                                capture_output=True, text=True).stdout.strip(),
                       "results": results, "accuracies": accuracies}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
