#!/usr/bin/env python3
"""Writes examples/data/separable/{train,test}.csv: points in [-1, 1]^2 labelled by the side of the line
0.8 x1 - 0.6 x2 + 0.1 = 0, keeping only points at least 0.1 from it, so the set is linearly separable with a
margin and Rosenblatt's perceptron converges on it. Deterministic (seeded); standard library only."""
import os
import random

def write(path, count, rng):
    with open(path, "w") as f:
        f.write("x1,x2,label\n")
        written = 0
        while written < count:
            x1, x2 = rng.uniform(-1, 1), rng.uniform(-1, 1)
            side = 0.8 * x1 - 0.6 * x2 + 0.1  # the line's normal has length 1, so this is the distance
            if abs(side) < 0.1:
                continue
            f.write(f"{x1:.4f},{x2:.4f},{int(side > 0)}\n")
            written += 1

if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "data", "separable")
    rng = random.Random(7)
    write(os.path.join(out, "train.csv"), 200, rng)
    write(os.path.join(out, "test.csv"), 100, rng)
