#!/usr/bin/env python3
"""How much of LeNet's tensors ReLU leaves zero while it trains, in PyTorch: fc1's input (the
pooled ReLU output of conv2), fc1's ReLU output (where fc1's gradient is zero), and conv2's
input, and how much of conv2's input is zero in whole rows (12 pixels), in pairs of rows (what
one step of the direct forward kernel reads) and in whole planes. The figures behind the
sparse fully connected gradients (`sparseRowProduct`, `linearGradientIsSparse` in
Sources/Kernels/Linear.swift), and behind leaving conv2's forward dense (its input's zeros are
scattered: see Sources/Benchmarks/RESULTS.md).

    /path/to/venv/bin/python scripts/relu_sparsity.py ../shared/data/mnist [--epochs 2]

The tutorial's LeNet (conv 1->20 k5, conv 20->50 k5, fc 800->500, fc 500->10), SGD 0.01
momentum 0.9, batch 64, seed 1, 2 threads; prints the fractions every 200 steps.
PyTorch is never a dependency of the project: install it in a venv to run this.
"""
import argparse
import gzip

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(1)
    torch.set_num_threads(2)
    with gzip.open(f"{args.data_dir}/train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28).astype(np.float32) / 255
    with gzip.open(f"{args.data_dir}/train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    x, y = torch.tensor((x - 0.1307) / 0.3081), torch.tensor(y)
    conv1, conv2 = nn.Conv2d(1, 20, 5), nn.Conv2d(20, 50, 5)
    fc1, fc2 = nn.Linear(800, 500), nn.Linear(500, 10)
    parameters = [p for m in (conv1, conv2, fc1, fc2) for p in m.parameters()]
    optimizer = torch.optim.SGD(parameters, lr=0.01, momentum=0.9)
    steps = len(x) // 64
    for epoch in range(args.epochs):
        order = torch.randperm(len(x))
        for i in range(steps):
            index = order[i * 64:(i + 1) * 64]
            pooled1 = F.max_pool2d(F.relu(conv1(x[index])), 2)
            pooled2 = F.max_pool2d(F.relu(conv2(pooled1)), 2).flatten(1)
            hidden = F.relu(fc1(pooled2))
            loss = F.nll_loss(F.log_softmax(fc2(hidden), 1), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if i % 200 == 0:
                zero = lambda t: (t == 0).float().mean().item()
                z = pooled1 == 0
                rows = z.all(dim=3)
                print(f"epoch {epoch + 1} step {i:4d}: loss {loss.item():.3f}; zero: fc1 input {zero(pooled2):.3f}, "
                      f"fc1 ReLU output (fc1 gradient) {zero(hidden):.3f}, conv2 input {zero(pooled1):.3f} "
                      f"(whole rows {rows.float().mean().item():.3f}, "
                      f"pairs of rows {(rows[:, :, :-1] & rows[:, :, 1:]).float().mean().item():.3f}, "
                      f"planes {z.flatten(2).all(dim=2).float().mean().item():.3f})")


if __name__ == "__main__":
    main()
