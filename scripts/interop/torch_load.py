#!/usr/bin/env python3
"""PyTorch loads mnist-train's checkpoints strictly, and computes what mnist-eval computes.

usage: torch_load.py MODEL.safetensors OUTPUTS.safetensors MNIST_DIR
MODEL is a model file written by mnist-train (its config in the metadata); OUTPUTS is
`mnist-eval --checkpoint MODEL --save-outputs OUTPUTS`. Builds the config's layer list as an
nn.Sequential (scripts/bench_torch.py's `from_config`), loads MODEL with
`load_state_dict(strict=True)` (int64 `num_batches_tracked` included), evaluates the test
images in eval mode and compares the log-probabilities with mnist-eval's. Needs torch and
numpy only (files are read with scripts/interop/check.py's readers). Exits 1 on any difference above 1e-4.
"""
import json, os, sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench_torch import from_config  # noqa: E402
from check import read_idx, read_safetensors  # noqa: E402  (scripts/interop/check.py)


def main():
    model_path, outputs_path, mnist = sys.argv[1:4]
    tensors, meta = read_safetensors(model_path, metadata=True)
    config = json.loads(meta["mnist_train_config"])
    model = from_config(config)
    # from_config numbers the layers 0, 1, ...; mnist-train names them as the config says.
    names = [spec.get("name", str(i)) for i, spec in enumerate(config["model"]["layers"])]
    state = {}
    for key, value in tensors.items():
        layer, rest = key.split(".", 1)
        state[f"{names.index(layer)}.{rest}"] = torch.from_numpy(value.copy())
    result = model.load_state_dict(state, strict=True)
    print(f"load_state_dict(strict=True): {len(state)} tensors, {result}")
    model.eval()
    images = read_idx(f"{mnist}/t10k-images-idx3-ubyte.gz")
    mean, std = config["data"].get("mean", 0.1307), config["data"].get("std", 0.3081)
    x = (torch.from_numpy(images.reshape(-1, 1, 28, 28).astype(np.float32)) / 255 - mean) / std
    with torch.no_grad():
        out = torch.cat([model(x[i:i + 500]) for i in range(0, len(x), 500)])
    if config["model"]["layers"][-1]["type"] != "log_softmax":
        out = torch.log_softmax(out, 1)
    theirs = torch.from_numpy(read_safetensors(outputs_path)["log_probabilities"].copy()).reshape(out.shape)
    diff = (out - theirs).abs().max().item()
    same = (out.argmax(1) == theirs.argmax(1)).float().mean().item()
    print(f"{config['name']}: PyTorch's eval-mode log-probabilities of {len(x)} test images vs mnist-eval's: "
          f"max |diff| {diff:.2e}, same prediction for {100 * same:.2f}%")
    return 0 if diff <= 1e-4 else 1


sys.exit(main())
