#!/usr/bin/env bash
# `make bench`: LeNet training throughput, evaluation time and peak memory of mnist-train
# with 2 and 1 threads, and, when `import torch` works (set PYTHON to choose the
# interpreter), PyTorch on the same model, data, batch size and steps; then both side by
# side with their ratio. Each configuration runs in its own process, so each peak RSS is
# its own.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA_DIR:-data/mnist}
steps=${STEPS:-300}
python=${PYTHON:-python3}
[ -f "$data/train-images-idx3-ubyte.gz" ] || .build/release/mnist-train download --data-dir "$data" >&2
results=()
for threads in 2 1; do
  results+=("$(.build/release/mnist-bench --data-dir "$data" --threads "$threads" --steps "$steps" --json)")
  if "$python" -c 'import torch' 2>/dev/null; then
    results+=("$("$python" scripts/bench_torch.py --data-dir "$data" --threads "$threads" --steps "$steps")")
  fi
done
printf '%s\n' "${results[@]}" | python3 -c '
import json, sys
rows = [json.loads(line) for line in sys.stdin if line.strip()]
print(f"{\"implementation\":<22} {\"threads\":>7} {\"samples/s\":>10} {\"s/epoch\":>8} {\"GFLOP/s\":>8} {\"eval s\":>7} {\"peak RSS MB\":>11}")
for r in rows:
    print(f"{r[\"implementation\"]:<22} {r[\"threads\"]:>7} {r[\"samples_per_second\"]:>10.0f} {r[\"seconds_per_epoch\"]:>8.1f} {r[\"gflops\"]:>8.1f} {r[\"eval_seconds\"]:>7.2f} {r[\"peak_rss_mb\"]:>11.0f}")
ours = {r["threads"]: r for r in rows if r["implementation"] == "mnist-train"}
theirs = {r["threads"]: r for r in rows if r["implementation"] != "mnist-train"}
for t in sorted(ours, reverse=True):
    if t in theirs:
        o, p = ours[t], theirs[t]
        print(f"{t} thread(s): mnist-train trains {o[\"samples_per_second\"] / p[\"samples_per_second\"]:.2f}x as fast as PyTorch, "
              f"evaluates {p[\"eval_seconds\"] / o[\"eval_seconds\"]:.2f}x as fast, with {o[\"peak_rss_mb\"] / p[\"peak_rss_mb\"]:.2f}x its peak memory")
if not theirs:
    print("(PyTorch not importable with " + sys.argv[0] + "; set PYTHON=/path/to/python with torch to compare)")
'
