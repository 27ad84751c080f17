#!/usr/bin/env python3
"""PyTorch half of `make bench`: the seed's LeNet, SGD (lr 0.01, momentum 0.9), batch 64,
the same MNIST files, the same number of timed steps after 10 warm-up steps, then the
10,000 test images in batches of 1000. Prints one JSON object like `mnist-bench --json`."""
import argparse, gzip, json, resource, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 20, 5), nn.Conv2d(20, 50, 5)
        self.fc1, self.fc2 = nn.Linear(800, 500), nn.Linear(500, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.log_softmax(self.fc2(F.relu(self.fc1(x.flatten(1)))), 1)


def load(directory, prefix):
    images = np.frombuffer(gzip.open(f"{directory}/{prefix}-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
    labels = np.frombuffer(gzip.open(f"{directory}/{prefix}-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
    x = (torch.from_numpy(images.reshape(-1, 1, 28, 28).astype(np.float32)) / 255 - 0.1307) / 0.3081
    return x, torch.from_numpy(labels.astype(np.int64))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="data/mnist")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    x, y = load(args.data_dir, "train")
    tx, ty = load(args.data_dir, "t10k")
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    order = torch.randperm(len(x))
    b = args.batch_size

    def step(i):
        idx = order[(i * b) % (len(x) - b):][:b]
        optimizer.zero_grad()
        loss = F.nll_loss(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()

    for i in range(10):
        step(i)
    start = time.perf_counter()
    for i in range(10, 10 + args.steps):
        step(i)
    seconds = time.perf_counter() - start
    model.eval()
    start = time.perf_counter()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(tx), 1000):
            correct += (model(tx[i:i + 1000]).argmax(1) == ty[i:i + 1000]).sum().item()
    eval_seconds = time.perf_counter() - start
    rate = args.steps * b / seconds
    print(json.dumps({
        "implementation": f"pytorch {torch.__version__}", "threads": args.threads, "batch_size": b, "steps": args.steps,
        "train_seconds": seconds, "samples_per_second": rate, "seconds_per_epoch": len(x) / rate,
        "gflops": rate * 13.2e6 / 1e9, "eval_seconds": eval_seconds, "eval_accuracy": correct / len(tx),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,
    }))


if __name__ == "__main__":
    main()
