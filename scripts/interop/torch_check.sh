#!/bin/bash
# make torch-check: PyTorch itself loads mnist-train's checkpoints with
# load_state_dict(strict=True) and computes mnist-eval's log-probabilities
# (scripts/interop/torch_load.py): a batch-norm CNN (configs/mnist-best.json, 30 steps) and
# every layer type with its EMA weights (scripts/interop/all-layers.json). PyTorch comes
# into its own venv (.build/torch-venv) from pip's configured sources (the CPU wheel is a
# few hundred MB: not part of `make test` or CI). Environment: BIN_DIR, DATA_DIR, PYTHON.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN_DIR=${BIN_DIR:-.build/release}
DATA_DIR=${DATA_DIR:-../shared/data/mnist}
PYTHON=${PYTHON:-python3}
VENV=.build/torch-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import torch, numpy' 2>/dev/null; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check numpy torch \
    || "$VENV/bin/pip" install --quiet --disable-pip-version-check numpy torch --index-url https://download.pytorch.org/whl/cpu
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$BIN_DIR/mnist-train" --config configs/mnist-best.json --data-dir "$DATA_DIR" --out "$WORK/best" --max-steps 30 --quiet
"$BIN_DIR/mnist-train" --config scripts/interop/all-layers.json --data-dir "$DATA_DIR" --out "$WORK/all" --quiet
for model in "$WORK/best/model.safetensors" "$WORK/best/best.safetensors" "$WORK/all/model.safetensors" "$WORK/all/ema.safetensors"; do
  "$BIN_DIR/mnist-eval" --checkpoint "$model" --data-dir "$DATA_DIR" --save-outputs "$model.outputs" > /dev/null
  "$VENV/bin/python" scripts/interop/torch_load.py "$model" "$model.outputs" "$DATA_DIR"
done
echo "torch-check passed ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
