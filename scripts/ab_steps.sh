#!/usr/bin/env bash
# Interleaved A/B of two mnist-bench binaries by their step times: N rounds, each runs both
# with the same arguments (`--json` added), then prints, for each side, the median over the
# runs of each run's median step and 10th-percentile step, the fastest run's median step,
# the range of the time outside parallel regions when the builds report it, and in how
# many rounds B's median step was the shorter. Interleaving spreads this shared
# machine's spells (whole runs 30-40% slower for minutes) over both sides; a difference
# smaller than the spread between rounds is not one.
#
#   scripts/ab_steps.sh N BIN_A BIN_B [mnist-bench arguments]
#
# The arguments default to `--data-dir ../shared/data/mnist --threads 2 --steps 300`. E.g.
# build before and after a change, copy each .build/release/mnist-bench aside, then
# `scripts/ab_steps.sh 10 /tmp/mb-A /tmp/mb-B` (LeNet), or with `--config FILE --threads 1`.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 N BIN_A BIN_B [mnist-bench arguments]" >&2; exit 2; }
n=$1 a=$2 b=$3
shift 3
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--data-dir ../shared/data/mnist --threads 2 --steps 300)
runs=$(mktemp)
trap 'rm -f "$runs"' EXIT
# Rounds alternate the order (A then B, then B then A) so that neither side always runs
# straight after the other.
for ((i = 1; i <= n; i++)); do
  order=(A B)
  [ $((i % 2)) = 0 ] && order=(B A)
  for side in "${order[@]}"; do
    bin=$a
    [ $side = B ] && bin=$b
    "$bin" "${args[@]}" --json | python3 -c "
import json, sys
r = json.load(sys.stdin)
print('$side', $i, r['step_ms_p50'], r['step_ms_p10'], round(r['samples_per_second']), r.get('step_serial_ms'))"
  done
done | tee "$runs"
python3 - "$runs" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    side, round_, p50, p10, rate, serial = line.split()
    runs.setdefault(side, {})[int(round_)] = (float(p50), float(p10), int(rate), serial)
for side in sorted(runs):
    v = list(runs[side].values())
    # Outside parallel regions: mnist-bench's step_serial_ms (2+ threads, since bfed6f3).
    serial = [float(x[3]) for x in v if x[3] not in ("None", "null")]
    outside = ", outside parallel regions %.3f-%.3f ms" % (min(serial), max(serial)) if serial else ""
    print("%s: median step %.3f ms (median of the runs), 10th percentile %.3f ms, fastest run %.3f ms, %d runs%s" % (
        side, statistics.median(x[0] for x in v), statistics.median(x[1] for x in v), min(x[0] for x in v), len(v),
        outside))
rounds = sorted(set(runs.get("A", {})) & set(runs.get("B", {})))
print("B shorter in %d of %d rounds" % (sum(runs["B"][r][0] < runs["A"][r][0] for r in rounds), len(rounds)))
PY
