#!/usr/bin/env bash
# make mpi-bench: where data-parallel training pays, measured and projected.
#
#   scripts/mpi/measure.sh [STEPS_LENET] [STEPS_BEST]     (defaults 300 and 40)
#
# For LeNet (configs/lenet.json, batch 64) and the batch-norm net (configs/mnist-best.json,
# batch 128), one thread per process:
#   - per-step time split into compute and all-reduce (the --json summary's train_seconds
#     and allreduce_seconds over its steps) at N = 1 (and, for comparison, one process with
#     2 threads), N = 2 on this host (shared memory) and N = 2 across two network-namespace
#     hosts (TCP over a veth pair; needs root and `ip netns`, skipped otherwise). The
#     namespace hosts run with --bind-to none: each "host" would otherwise bind its rank to
#     its core 0, the same core, and the two busy-polling ranks would take turns on it;
#   - MPI_Allreduce alone on a buffer of each model's gradient size (mnist-bench
#     --allreduce-bytes), with its bus bandwidth;
#   - a projection of the step time for N = 2…64 hosts at 1 and 10 Gbit/s: compute shrinks
#     as 1/N (each host takes batch/N samples), a ring all-reduce costs
#     2(N−1)/N × gradient bytes / bandwidth.
# Run it on a quiet machine: it is a benchmark (2 cores: both ranks of an N = 2 job share them).
set -euo pipefail
cd "$(dirname "$0")/../.."
steps_lenet=${1:-300}
steps_best=${2:-40}
B=$(realpath "${BIN_DIR:-.build/release}")
D=$(realpath "${MNIST_DIR:-../shared/data/mnist}")
T=$(mktemp -d /tmp/mpi-bench.XXXXXX)
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --mca btl self,vader,tcp --mca btl_base_warn_component_unused 0)
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; $(mpirun --version | head -1)"

source scripts/mpi/netns_hosts.sh
netns=0
if netns_allowed; then
  netns=1
  hosts=mpib$$
  trap 'netns_down $hosts; rm -rf "$T"' EXIT
  netns_up "$hosts" 10.199.1 "$T"
else
  trap 'rm -rf "$T"' EXIT
  echo "(namespace hosts skipped: ip netns is not allowed here)"
fi

# One JSON line per measurement (a single process reports no train_seconds: its samples/s gives the step).
record() {  # model setup summary-file
  python3 - "$1" "$2" "$3" >>"$T/rows.jsonl" <<'PY'
import json, sys
s = json.load(open(sys.argv[3]))
print(json.dumps({"model": sys.argv[1], "setup": sys.argv[2], "steps": s["steps"], "train_seconds": s.get("train_seconds"),
                  "samples_per_second": s["samples_per_second"], "allreduce_seconds": s.get("allreduce_seconds", 0.0),
                  "bytes": s.get("allreduce_bytes_per_step", 0)}))
PY
}
for model in lenet mnist-best; do
  steps=$([ $model = lenet ] && echo "$steps_lenet" || echo "$steps_best")
  common=(--config "configs/$model.json" --data-dir "$D" --quiet --json --threads 1 --max-steps "$steps")
  "$B/mnist-train" "${common[@]}" --out "$T/$model-1" >"$T/s.json"; record $model "N=1" "$T/s.json"
  "$B/mnist-train" "${common[@]}" --threads 2 --out "$T/$model-1t2" >"$T/s.json"; record $model "N=1, 2 threads" "$T/s.json"
  "${MPIRUN[@]}" -np 2 "$B/mnist-train" "${common[@]}" --out "$T/$model-2" >"$T/s.json"; record $model "N=2 one host" "$T/s.json"
  if [ $netns = 1 ]; then
    "${NSRUN[@]}" "$B/mnist-train" "${common[@]}" --out "$T/$model-ns" >"$T/s.json"; record $model "N=2 namespace hosts" "$T/s.json"
  fi
done
python3 - "$T/rows.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
batch = {"lenet": 64, "mnist-best": 128}
print("\n| model (batch) | processes | ms per step | compute ms | all-reduce ms | gradient bytes | all-reduce share |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    step = (r["train_seconds"] / r["steps"]) if r["train_seconds"] else batch[r["model"]] / r["samples_per_second"]
    ar = r["allreduce_seconds"] / r["steps"]
    print(f"| {r['model']} ({batch[r['model']]}) | {r['setup']} | {step * 1e3:.2f} | {(step - ar) * 1e3:.2f} | "
          f"{ar * 1e3:.2f} | {r['bytes'] or '-'} | {100 * ar / step:.0f}% |")
json.dump(rows, open(sys.argv[1] + ".json", "w"))
PY

# MPI_Allreduce alone, at each model's gradient size.
for model in lenet mnist-best; do
  bytes=$(python3 -c "import json,sys; print([r['bytes'] for r in json.load(open(sys.argv[1])) if r['model'] == sys.argv[2] and r['bytes']][0])" "$T/rows.jsonl.json" $model)
  echo "$model gradients, one host:        $("${MPIRUN[@]}" -np 2 "$B/mnist-bench" --allreduce-bytes "$bytes" --calls 200)"
  if [ $netns = 1 ]; then
    echo "$model gradients, namespace hosts: $("${NSRUN[@]}" "$B/mnist-bench" --allreduce-bytes "$bytes" --calls 200)"
  fi
done

# Latency: an all-reduce of one float.
echo "one float, one host:        $("${MPIRUN[@]}" -np 2 "$B/mnist-bench" --allreduce-bytes 4 --calls 500)"
if [ $netns = 1 ]; then
  echo "one float, namespace hosts: $("${NSRUN[@]}" "$B/mnist-bench" --allreduce-bytes 4 --calls 500)"
fi

# The projection, from the measured single-process compute per step.
python3 - "$T/rows.jsonl.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
batch = {"lenet": 64, "mnist-best": 128}
alpha = 50e-6
print("\nProjected step time (ms) and speed-up over one host, for N hosts of this CPU, 1 thread each:")
print("compute(N) = compute(1) / N; all-reduce(N) = 2(N-1)/N x gradient bytes / link bandwidth + 2(N-1) x 50 us")
print("(a ring all-reduce: 2(N-1) messages of bytes/N each; 50 us per message is typical of TCP over Ethernet, assumed)\n")
ns = [1, 2, 4, 8, 16, 32, 64]
print("| model | link | " + " | ".join(f"N={n}" for n in ns) + " |")
print("|---|---|" + "---|" * len(ns))
for model in ["lenet", "mnist-best"]:
    one = [r for r in rows if r["model"] == model and r["setup"] == "N=1"][0]
    compute = batch[model] / one["samples_per_second"]
    grad = [r["bytes"] for r in rows if r["model"] == model and r["bytes"]][0]
    for gbit in [1, 10]:
        bw = gbit * 1e9 / 8
        cells = []
        for n in ns:
            t = compute / n + 2 * (n - 1) / n * grad / bw + 2 * (n - 1) * alpha
            cells.append(f"{t * 1e3:.1f} ({compute / t:.1f}x)")
        print(f"| {model} ({grad / 1e6:.2f} MB) | {gbit} Gbit/s | " + " | ".join(cells) + " |")
PY
