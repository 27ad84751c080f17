#!/bin/bash
# make interop-check: the real consumers of mnist-train's files, from PyPI in a venv
# (.build/interop-venv, made once): the ONNX checker and onnxruntime on exported models,
# TensorBoard's EventAccumulator on run directories, Pillow-written PNGs through mnist-predict.
# Environment: BIN_DIR (default .build/release), DATA_DIR (default ../shared/data/mnist),
# PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN_DIR=${BIN_DIR:-.build/release}
DATA_DIR=${DATA_DIR:-../shared/data/mnist}
PYTHON=${PYTHON:-python3}
VENV=.build/interop-venv
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check onnx onnxruntime tensorboard numpy pillow
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s)

# Every layer type, batch norm with and without running statistics, an EMA, a validation
# split; 40 steps.
"$BIN_DIR/mnist-train" --config scripts/interop/all-layers.json --data-dir "$DATA_DIR" --out "$WORK/all" --quiet
# A network ending in logits (cross-entropy): configs/mnist-best.json; 20 steps.
"$BIN_DIR/mnist-train" --config configs/mnist-best.json --data-dir "$DATA_DIR" --out "$WORK/best" --max-steps 20 --quiet
# Batch norm without running statistics (evaluation normalizes each batch by itself); 30 steps.
"$BIN_DIR/mnist-train" --config scripts/interop/batch-stats.json --data-dir "$DATA_DIR" --out "$WORK/stats" --quiet

for model in "$WORK/all/model.safetensors" "$WORK/all/ema.safetensors" "$WORK/best/model.safetensors" "$WORK/stats/model.safetensors"; do
  name=$(basename "$(dirname "$model")")-$(basename "$model" .safetensors)
  batches=1,7,200
  [ "$name" = stats-model ] && batches=200  # mnist-eval's batches (test_batch_size 200)
  "$BIN_DIR/mnist-export" --checkpoint "$model" --out "$WORK/$name.onnx" > /dev/null
  "$BIN_DIR/mnist-eval" --checkpoint "$model" --data-dir "$DATA_DIR" --save-outputs "$WORK/$name.outputs.safetensors" > /dev/null
  "$VENV/bin/python" scripts/interop/check.py onnx "$WORK/$name.onnx" "$WORK/$name.outputs.safetensors" "$DATA_DIR" "$batches"
done
for run in all best; do
  "$VENV/bin/python" scripts/interop/check.py tensorboard "$WORK/$run"
done
# A model good enough that its answers mean something: LeNet, 600 steps (about 5 s).
"$BIN_DIR/mnist-train" --config configs/lenet.json --data-dir "$DATA_DIR" --out "$WORK/lenet" --max-steps 600 --quiet
"$BIN_DIR/mnist-eval" --checkpoint "$WORK/lenet/model.safetensors" --data-dir "$DATA_DIR" --save-outputs "$WORK/lenet.outputs.safetensors" > /dev/null
mkdir -p "$WORK/pictures"
"$VENV/bin/python" scripts/interop/check.py predict "$BIN_DIR/mnist-predict" "$WORK/lenet/model.safetensors" \
  "$WORK/lenet.outputs.safetensors" "$DATA_DIR" "$WORK/pictures"
echo "interop-check passed in $(( $(date +%s) - start )) s"
