#!/usr/bin/env python3
"""PyTorch check of the speedrun recipe's changes (README, "The speedrun recipe"): the
published net (conv1 C1 k5, max-pool, ReLU, conv2 32 k3, max-pool, ReLU, fc FC, fc 10) on
the central CROP x CROP pixels, Adam lr 0.01 betas (0.7, 0.9) under OneCycleLR
(cycle_momentum False), batch 256, one epoch, optional label smoothing; 1 thread; prints
each seed's test accuracy and the mean. PyTorch's own initialisation, so the numbers per
seed differ from mnist-train's; the differences between variants are what it checks.

usage: torch_speedrun_variants.py MNIST_DIR [--crop 24] [--c1 12] [--fc 256] [--smooth 0.1]
       [--seeds 5]
"""
import argparse, gzip, struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = struct.unpack(">I", data[:4])[0] & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


p = argparse.ArgumentParser()
p.add_argument("mnist")
p.add_argument("--crop", type=int, default=28)
p.add_argument("--c1", type=int, default=12)
p.add_argument("--fc", type=int, default=256)
p.add_argument("--smooth", type=float, default=0.0)
p.add_argument("--seeds", type=int, default=5)
a = p.parse_args()
torch.set_num_threads(1)
norm = lambda x: ((torch.from_numpy(x.astype(np.float32)) / 255.0 - 0.1307) / 0.3081).unsqueeze(1)
o = (28 - a.crop) // 2
crop = lambda x: x[:, :, o:o + a.crop, o:o + a.crop].contiguous()
xtr = crop(norm(read_idx(f"{a.mnist}/train-images-idx3-ubyte.gz")))
ytr = torch.from_numpy(read_idx(f"{a.mnist}/train-labels-idx1-ubyte.gz").astype(np.int64))
xte = crop(norm(read_idx(f"{a.mnist}/t10k-images-idx3-ubyte.gz")))
yte = torch.from_numpy(read_idx(f"{a.mnist}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
side = ((a.crop - 4) // 2 - 2) // 2


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, a.c1, 5); self.conv2 = nn.Conv2d(a.c1, 32, 3)
        self.fc1 = nn.Linear(32 * side * side, a.fc); self.fc2 = nn.Linear(a.fc, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return F.log_softmax(self.fc2(F.relu(self.fc1(x.flatten(1)))), 1)


accs = []
for seed in range(a.seeds):
    torch.manual_seed(seed)
    m = Net(); opt = torch.optim.Adam(m.parameters(), lr=0.01, betas=(0.7, 0.9))
    steps = (len(xtr) + 255) // 256
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=steps, cycle_momentum=False)
    perm = torch.randperm(len(xtr))
    for i in range(steps):
        idx = perm[i * 256:(i + 1) * 256]
        opt.zero_grad(); F.cross_entropy(m(xtr[idx]), ytr[idx], label_smoothing=a.smooth).backward(); opt.step(); sched.step()
    m.eval()
    with torch.no_grad():
        accs.append(sum((m(xte[i:i + 2000]).argmax(1) == yte[i:i + 2000]).sum().item() for i in range(0, 10000, 2000)) / 10000)
print(f"crop {a.crop} c1 {a.c1} fc {a.fc} smoothing {a.smooth}: " + " ".join(f"{x * 100:.2f}" for x in accs)
      + f"; mean {np.mean(accs) * 100:.3f}% (min {np.min(accs) * 100:.2f}%)", flush=True)
