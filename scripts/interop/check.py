#!/usr/bin/env python3
"""The real consumers of what mnist-train writes (run by check.sh inside a venv with onnx,
onnxruntime and tensorboard from PyPI):

  check.py onnx MODEL.onnx OUTPUTS.safetensors MNIST_DIR [BATCHES]
      onnx.checker.check_model(full_check=True); onnxruntime at batch 1, 7 and 200 (or the
      comma-separated BATCHES) gives mnist-eval's log-probabilities (--save-outputs) of the
      same test images within 1e-4. A network whose batch norm has no running statistics
      normalizes each batch by itself, so it is compared at mnist-eval's batch size only.
  check.py tensorboard RUN_DIR
      TensorBoard's EventAccumulator reads the run's event file; its scalars equal
      metrics.jsonl's values at the same steps.
  check.py predict MNIST_PREDICT CHECKPOINT OUTPUTS.safetensors MNIST_DIR WORK_DIR
      the first 100 test digits saved by Pillow as user-style files (RGB upscaled, RGBA,
      16-bit gray, palette, dark ink on white at 100x100, black ink drawn by its alpha) go through
      mnist-predict --json; each must be classified as mnist-eval classified the original.
"""
import gzip, json, math, struct, sys

import numpy as np


def read_safetensors(path, metadata=False):
    """The tensors of a safetensors file by name (and its __metadata__ with metadata=True)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        dtype = {"F32": np.float32, "I64": np.int64, "U64": np.uint64}[info["dtype"]]
        out[name] = np.frombuffer(data[8 + n + start:8 + n + end], dtype=dtype).reshape(info["shape"])
    return (out, meta) if metadata else out


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def check_onnx(model_path, outputs_path, mnist_dir, batches="1,7,200"):
    import onnx
    import onnxruntime as ort

    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    mean, std = float(meta["normalization_mean"]), float(meta["normalization_std"])
    assert model.opset_import[0].version == 17, model.opset_import
    graph_input = model.graph.input[0]
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert dims == ["N", 1, 28, 28], dims
    reference = read_safetensors(outputs_path)["log_probabilities"]
    images = read_idx(f"{mnist_dir}/t10k-images-idx3-ubyte.gz").astype(np.float32)
    x = ((images / 255.0 - mean) / std).astype(np.float32)[:, None, :, :]
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    output_name = session.get_outputs()[0].name
    worst = 0.0
    for batch in [int(b) for b in batches.split(",")]:
        for start in (0, 1000):
            out = session.run(None, {"input": x[start:start + batch]})[0]
            if output_name == "logits":
                out = out - out.max(axis=1, keepdims=True)
                out = out - np.log(np.exp(out).sum(axis=1, keepdims=True))
            diff = float(np.abs(out - reference[start:start + batch]).max())
            worst = max(worst, diff)
            assert diff <= 1e-4, f"batch {batch} at {start}: max |diff| {diff}"
    nodes = sorted({n.op_type for n in model.graph.node})
    print(f"onnx ok: {model_path}: checker (full_check) passed; onnxruntime {ort.__version__} matches mnist-eval at "
          f"batch {batches} (max |diff| {worst:.2e}), output {output_name}; ops {', '.join(nodes)}")


def check_tensorboard(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    accumulator.Reload()
    tags = accumulator.Tags()["scalars"]
    records = [json.loads(line) for line in open(f"{run_dir}/metrics.jsonl")]
    pairs = {"train/loss": ("step", "loss"), "lr": ("step", "lr"), "test/accuracy": (None, "test_accuracy"),
             "test/loss": (None, "test_loss"), "train/accuracy": ("epoch", "train_accuracy"),
             "validation/accuracy": (None, "validation_accuracy"), "ema_test/accuracy": (None, "ema_test_accuracy")}
    checked = 0
    for tag, (kind, key) in pairs.items():
        expected = [(r["step"], r[key]) for r in records if key in r and r[key] is not None and (kind is None or r["kind"] == kind)]
        if not expected:
            continue
        assert tag in tags, f"{tag} missing from the event file (tags: {tags})"
        got = [(e.step, e.value) for e in accumulator.Scalars(tag)]
        assert len(got) == len(expected), f"{tag}: {len(got)} events, metrics.jsonl has {len(expected)}"
        for (s1, v1), (s2, v2) in zip(got, expected):
            assert s1 == s2 and math.isclose(v1, v2, rel_tol=1e-6, abs_tol=1e-7), f"{tag}: ({s1}, {v1}) vs ({s2}, {v2})"
        checked += len(got)
    assert checked > 0, "no scalars compared"
    images = accumulator.Tags()["images"]
    assert "curves" in images, f"no curves image (images: {images})"
    curves = accumulator.Images("curves")[-1]
    assert curves.encoded_image_string.startswith(b"\x89PNG") and curves.width > 0, "curves is not a PNG"
    assert "test/confusion_matrix" in images, f"no confusion matrix image (images: {images})"
    print(f"tensorboard ok: {run_dir}: EventAccumulator reads {len(tags)} scalar tags ({', '.join(sorted(tags))}); "
          f"{checked} values equal metrics.jsonl; images {', '.join(sorted(images))} (curves {curves.width}x{curves.height} at step {curves.step})")


def check_predict(predict, checkpoint, outputs_path, mnist_dir, work):
    import subprocess
    from PIL import Image

    reference = read_safetensors(outputs_path)["log_probabilities"].argmax(axis=1)
    images = read_idx(f"{mnist_dir}/t10k-images-idx3-ubyte.gz")
    files, originals = [], []
    for i in range(100):
        digit = Image.fromarray(images[i])
        variants = {
            "rgb-x4": digit.resize((112, 112), Image.NEAREST).convert("RGB"),
            "rgba": Image.merge("RGBA", [digit.convert("L")] * 3 + [Image.new("L", digit.size, 255)]),
            "gray16": Image.fromarray(images[i].astype(np.uint16) * 257),
            "palette": digit.convert("RGB").convert("P", palette=Image.ADAPTIVE, colors=16),
            "inverted-100": Image.fromarray(255 - images[i]).resize((100, 100), Image.BILINEAR),
            "transparent-ink": Image.merge("LA", [Image.new("L", digit.size, 0), digit]),
        }
        for name, picture in variants.items():
            path = f"{work}/{i:03d}-{name}.png"
            picture.save(path)
            files.append(path)
            originals.append(i)
    result = subprocess.run([predict, "--checkpoint", checkpoint, "--json", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    predictions = [json.loads(line)["prediction"] for line in result.stdout.splitlines()]
    assert len(predictions) == len(files), f"{len(predictions)} predictions for {len(files)} files"
    agree = {}
    for path, i, p in zip(files, originals, predictions):
        kind = path.split("/")[-1][4:-4]
        agree.setdefault(kind, []).append(p == reference[i])
    summary = ", ".join(f"{kind} {sum(v)}/{len(v)}" for kind, v in agree.items())
    total = sum(sum(v) for v in agree.values())
    assert total >= 0.97 * len(files), f"only {total} of {len(files)} agree: {summary}"
    print(f"predict ok: {len(files)} Pillow-written files of 100 test digits; agreement with mnist-eval on the originals: {summary}")


if __name__ == "__main__":
    if sys.argv[1] == "onnx":
        check_onnx(*sys.argv[2:6])
    elif sys.argv[1] == "tensorboard":
        check_tensorboard(sys.argv[2])
    elif sys.argv[1] == "predict":
        check_predict(*sys.argv[2:7])
    else:
        sys.exit(__doc__)
