#!/usr/bin/env bash
# `make bench`: LeNet training throughput, evaluation time and peak memory of mnist-train
# with 2 and 1 threads (REPEATS runs each, median shown), and, when `import torch` works (set PYTHON to choose the
# interpreter), PyTorch on the same model, data, batch size and steps; then both side by
# side with their ratio. Each configuration runs in its own process, so each peak RSS is
# its own.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA_DIR:-data/mnist}
steps=${STEPS:-300}
python=${PYTHON:-python3}
[ -f "$data/train-images-idx3-ubyte.gz" ] || .build/release/mnist-train download --data-dir "$data" >&2
repeats=${REPEATS:-3}  # the table shows the median run of each; this machine's timings vary
results=()
for ((r = 0; r < repeats; r++)); do
  for threads in 2 1; do
    results+=("$(.build/release/mnist-bench --data-dir "$data" --threads "$threads" --steps "$steps" --json)")
    if "$python" -c 'import torch' 2>/dev/null; then
      results+=("$("$python" scripts/bench_torch.py --data-dir "$data" --threads "$threads" --steps "$steps")")
    fi
  done
done
printf '%s\n' "${results[@]}" | python3 scripts/bench_table.py
