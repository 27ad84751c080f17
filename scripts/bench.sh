#!/usr/bin/env bash
# `make bench`: training throughput, evaluation time and peak memory of mnist-train for
# LeNet and the configs of BENCH_CONFIGS (default configs/trials/speedrun-published.json) with 2 and 1
# threads (REPEATS runs each, median shown), and, when `import torch` works (set PYTHON to
# choose the interpreter), PyTorch on the same model, data, batch size and steps; then both
# side by side with their ratio, of throughput and of the median step time (each side's
# steps timed one by one). Each configuration runs in its own process, so each peak RSS is
# its own. Then the time-to-accuracy table (configs/speedrun.json over SEEDS seeds
# against ../shared/bench/torch_speedrun.py).
#
# BENCH_ISA=avx2 holds both sides to AVX2, as on a CPU without AVX-512: PyTorch's ATen,
# oneDNN and MKL by their switches, and OpenBLAS (which picks its kernels when it loads) to
# its Haswell kernels; mnist-train's own kernels are as built, so build them for AVX2 too
# (`MNIST_TARGET_CPU=haswell BENCH_ISA=avx2 make bench`).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${BENCH_ISA:-}" in
  "") ;;
  avx2) export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 OPENBLAS_CORETYPE=Haswell ;;
  *) echo "BENCH_ISA=$BENCH_ISA: expected avx2 (or unset for the CPU's own)" >&2; exit 2 ;;
esac
data=${DATA_DIR:-data/mnist}
steps=${STEPS:-300}
python=${PYTHON:-python3}
[ -f "$data/train-images-idx3-ubyte.gz" ] || .build/release/mnist-train download --data-dir "$data" >&2
repeats=${REPEATS:-3}  # the table shows the median run of each; this machine's timings vary
results=()
# LeNet (batch 64), then each config of BENCH_CONFIGS (default: the published speedrun net,
# batch 256: conv 24 k5, conv 32 k3, fc 256).
models=("" ${BENCH_CONFIGS-configs/trials/speedrun-published.json})
for ((r = 0; r < repeats; r++)); do
  for model in "${models[@]}"; do
    config=()
    [ -n "$model" ] && config=(--config "$model")
    for threads in 2 1; do
      results+=("$(.build/release/mnist-bench --data-dir "$data" --threads "$threads" --steps "$steps" "${config[@]}" --json)")
      if "$python" -c 'import torch' 2>/dev/null; then
        results+=("$("$python" scripts/bench_torch.py --data-dir "$data" --threads "$threads" --steps "$steps" "${config[@]}")")
      fi
    done
  done
done
printf '%s\n' "${results[@]}" | python3 scripts/bench_table.py

# Time to accuracy: configs/speedrun.json (SPEEDRUN_CONFIG) with seeds 0..SEEDS-1 (`--json`
# training_seconds: first step to the end of the final evaluation; and seconds: the whole run,
# with data loading and the run's files), and, when torch imports, the fastest published
# recipe in PyTorch (../shared/bench/torch_speedrun.py: its training seconds, model creation
# to the last step, evaluation not included).
speedrun=${SPEEDRUN_CONFIG:-configs/speedrun.json}
seeds=${SEEDS:-5}
echo
echo "time to accuracy ($speedrun, seeds 0-$((seeds - 1)), 2 threads):"
tta=$(mktemp -d)
for ((seed = 0; seed < seeds; seed++)); do
  .build/release/mnist-train --config "$speedrun" --data-dir "$data" --seed "$seed" --threads 2 --quiet --json \
    --out "$tta/seed$seed"
done | python3 scripts/bench_tta.py | tee "$tta/ours.txt"
torch_speedrun=${TORCH_SPEEDRUN:-../shared/bench/torch_speedrun.py}
if "$python" -c 'import torch' 2>/dev/null && [ -f "$torch_speedrun" ]; then
  "$python" "$torch_speedrun" "$data" --seeds "$seeds" --threads 2 | tail -1 | tee "$tta/theirs.txt"
  python3 - "$tta/ours.txt" "$tta/theirs.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
ours = float(re.search(r"mnist-train: mean ([0-9.]+) s training", text).group(1))
whole = float(re.search(r"whole run ([0-9.]+) s", text).group(1))
theirs = float(re.search(r"mean train ([0-9.]+) s", open(sys.argv[2]).read()).group(1))
print(f"time to 99%: mnist-train's training and evaluation take {ours / theirs:.2f} of PyTorch's training "
      f"({theirs / ours:.2f}x as fast); its whole run {whole / theirs:.2f} ({theirs / whole:.2f}x)")
PY
else
  echo "(PyTorch is not importable: its side of the time-to-accuracy table is not run)"
fi
rm -rf "$tta"
