#!/usr/bin/env python3
"""PyTorch half of `make bench`: the seed's LeNet, SGD (lr 0.01, momentum 0.9), batch 64,
the same MNIST files, the same number of timed steps after 10 warm-up steps, then the
10,000 test images in batches of 1000. Prints one JSON object like `mnist-bench --json`
(with the 10th percentile and the median of the step times).

With --config FILE (as `mnist-bench --config FILE`): the config's layer list built as an
nn.Sequential (center_crop, conv2d, batch_norm1d/2d, max/avg/adaptive pooling, activations, dropout,
flatten, linear, log_softmax), its optimizer (sgd/adam/adamw with their keys), batch size
and test batch size; no schedule or augmentation (compute only), like mnist-bench."""
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


def pair(v):
    return tuple(v) if isinstance(v, list) else (v, v)


class CenterCrop(nn.Module):
    """torchvision's CenterCrop on tensors (offsets rounded as Python's round), without torchvision."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, x):
        if self.size[0] > x.shape[-2] or self.size[1] > x.shape[-1]:
            raise ValueError(f"center_crop: size {self.size} is larger than the {tuple(x.shape[-2:])} input")
        top, left = round((x.shape[-2] - self.size[0]) / 2), round((x.shape[-1] - self.size[1]) / 2)
        return x[..., top:top + self.size[0], left:left + self.size[1]]


def from_config(config):
    """The config's model as an nn.Sequential, with the shapes worked out layer by layer."""
    shape = list(config["model"]["input_shape"])
    layers = []
    for spec in config["model"]["layers"]:
        t = spec["type"]
        if t == "conv2d":
            m = nn.Conv2d(shape[0], spec["out_channels"], pair(spec["kernel_size"]), pair(spec.get("stride", 1)),
                          pair(spec.get("padding", 0)), pair(spec.get("dilation", 1)), spec.get("groups", 1),
                          spec.get("bias", True))
        elif t == "linear":
            m = nn.Linear(shape[0], spec["out_features"], spec.get("bias", True))
        elif t in ("batch_norm2d", "batch_norm1d"):
            cls = nn.BatchNorm2d if t == "batch_norm2d" else nn.BatchNorm1d
            m = cls(shape[0], spec.get("eps", 1e-5), spec.get("momentum", 0.1), spec.get("affine", True),
                    spec.get("track_running_stats", True))
        elif t == "max_pool2d":
            m = nn.MaxPool2d(pair(spec["kernel_size"]), pair(spec.get("stride", spec["kernel_size"])),
                             pair(spec.get("padding", 0)), ceil_mode=spec.get("ceil_mode", False))
        elif t == "avg_pool2d":
            m = nn.AvgPool2d(pair(spec["kernel_size"]), pair(spec.get("stride", spec["kernel_size"])),
                             pair(spec.get("padding", 0)), spec.get("ceil_mode", False), spec.get("count_include_pad", True))
        elif t == "adaptive_avg_pool2d":
            m = nn.AdaptiveAvgPool2d(pair(spec["output_size"]))
        elif t == "center_crop":
            m = CenterCrop(pair(spec["size"]))
        elif t == "flatten":
            m = nn.Flatten()
        elif t == "dropout":
            m = nn.Dropout(spec.get("p", 0.5))
        elif t == "log_softmax":
            m = nn.LogSoftmax(spec.get("dim", 1))
        elif t == "softmax":
            m = nn.Softmax(spec.get("dim", 1))
        elif t == "leaky_relu":
            m = nn.LeakyReLU(spec.get("negative_slope", 0.01))
        elif t == "gelu":
            m = nn.GELU(spec.get("approximate", "none"))
        else:
            m = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "silu": nn.SiLU}[t]()
        layers.append(m)
        with torch.no_grad():
            shape = list(nn.Sequential(*layers).eval()(torch.zeros([2] + list(config["model"]["input_shape"]))).shape[1:])
    return nn.Sequential(*layers)


def flops_per_image(model, input_shape):
    """Forward multiply-adds of convolutions and linear layers, x 6 (forward and two gradients)."""
    total, x = 0, torch.zeros([1] + list(input_shape))
    with torch.no_grad():
        for m in model.eval():
            y = m(x)
            if isinstance(m, nn.Conv2d):
                total += y.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            elif isinstance(m, nn.Linear):
                total += m.in_features * m.out_features
            x = y
    return 6 * total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="data/mnist")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--config")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    x, y = load(args.data_dir, "train")
    tx, ty = load(args.data_dir, "t10k")
    flops, eval_batch, logits = 13.2e6, 1000, False
    if args.config:
        config = json.load(open(args.config))
        model = from_config(config)
        logits = config["model"]["layers"][-1]["type"] != "log_softmax"
        o = config.get("optimizer", {})
        kind, lr = o.get("type", "sgd"), o.get("lr", 0.01)
        if kind == "sgd":
            optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=o.get("momentum", 0),
                                        dampening=o.get("dampening", 0), weight_decay=o.get("weight_decay", 0),
                                        nesterov=o.get("nesterov", False))
        else:
            cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
            optimizer = cls(model.parameters(), lr=lr, betas=tuple(o.get("betas", (0.9, 0.999))), eps=o.get("eps", 1e-8),
                            weight_decay=o.get("weight_decay", 0 if kind == "adam" else 0.01))
        b = args.batch_size or config.get("batch_size", 64)
        eval_batch = config.get("test_batch_size", 100)
        flops = flops_per_image(model, config["model"]["input_shape"])
        model.train()
    else:
        model = Net()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        b = args.batch_size or 64
    order = torch.randperm(len(x))

    def step(i):
        idx = order[(i * b) % (len(x) - b):][:b]
        optimizer.zero_grad()
        out = model(x[idx])
        loss = F.cross_entropy(out, y[idx]) if logits else F.nll_loss(out, y[idx])
        loss.backward()
        optimizer.step()

    for i in range(10):
        step(i)
    step_seconds = []
    start = previous = time.perf_counter()
    for i in range(10, 10 + args.steps):
        step(i)
        now = time.perf_counter()
        step_seconds.append(now - previous)
        previous = now
    seconds = previous - start
    step_seconds.sort()
    percentile = lambda q: step_seconds[int((len(step_seconds) - 1) * q + 0.5)]  # nearest rank, as mnist-bench
    model.eval()
    start = time.perf_counter()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(tx), eval_batch):
            correct += (model(tx[i:i + eval_batch]).argmax(1) == ty[i:i + eval_batch]).sum().item()
    eval_seconds = time.perf_counter() - start
    rate = args.steps * b / seconds
    print(json.dumps({
        # The vector ISA PyTorch's kernels ran with (`BENCH_ISA=avx2` in scripts/bench.sh holds it to AVX2).
        "implementation": f"pytorch {torch.__version__} {torch.backends.cpu.get_cpu_capability()}",
        "model": config["name"] if args.config else "LeNet",
        "threads": args.threads, "batch_size": b, "steps": args.steps,
        "train_seconds": seconds, "samples_per_second": rate, "seconds_per_epoch": len(x) / rate,
        "gflops": rate * flops / 1e9, "eval_seconds": eval_seconds, "eval_accuracy": correct / len(tx),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,
        "step_ms_p10": percentile(0.1) * 1e3, "step_ms_p50": percentile(0.5) * 1e3,
    }))


if __name__ == "__main__":
    main()
