#!/usr/bin/env bash
# Interleaved A/B of two mnist-train binaries on one config: N rounds, each runs A then B
# with seed round % 5, and prints every run's `--json` seconds and samples/s, then the means.
# Interleaving spreads this shared machine's drift over both sides.
#
#   scripts/ab_runs.sh N BIN_A BIN_B CONFIG [DATA_DIR]
#
# e.g. the worker pool's yield change (3502529): build before and after, copy each
# .build/release/mnist-train aside, then `scripts/ab_runs.sh 5 /tmp/mt-A /tmp/mt-B configs/speedrun.json`.
set -euo pipefail
n=$1 a=$2 b=$3 config=$4 data=${5:-../shared/data/mnist}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ((i = 1; i <= n; i++)); do
  for side in A B; do
    bin=$a
    [ $side = B ] && bin=$b
    rm -rf "$out/run"
    "$bin" --config "$config" --data-dir "$data" --seed $((i % 5)) --json --quiet --out "$out/run" \
      | python3 -c "import json, sys; s = json.load(sys.stdin); print('$side', round(s['seconds'], 3), round(s['samples_per_second']))"
  done
done | tee "$out/runs.txt"
awk '{ s[$1] += $2; r[$1] += $3; k[$1]++ } END { for (x in s) printf "%s: mean %.3f s, %.0f samples/s over %d runs\n", x, s[x] / k[x], r[x] / k[x], k[x] }' "$out/runs.txt" | sort
