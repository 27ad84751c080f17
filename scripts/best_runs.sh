#!/bin/bash
# make best: the runs behind the README's table of recipes. configs/mnist-best.json with
# seeds 1, 2 and 3, then configs/fashion-best.json (seed 1); one at a time, each timed
# (wall clock, peak RSS). Environment: BIN_DIR (.build/release), DATA_DIR
# (../shared/data/mnist), OUT (runs/best).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=${BIN_DIR:-.build/release}
DATA_DIR=${DATA_DIR:-../shared/data/mnist}
OUT=${OUT:-runs/best}
mkdir -p "$OUT"
run() {  # name config seed [data-dir]
  local dir="$OUT/$1-seed$3"
  if [ -e "$dir" ]; then echo "$dir exists; remove it to run again" >&2; exit 1; fi
  /usr/bin/time -f "%e %M" -o "$OUT/$1-seed$3.time" "$BIN_DIR/mnist-train" --config "$2" --seed "$3" --out "$dir" \
    ${4:+--data-dir "$4"} --quiet --json > "$OUT/$1-seed$3.json"
  python3 - "$OUT/$1-seed$3" <<'PY'
import json, sys
base = sys.argv[1]
summary = json.load(open(base + ".json"))
seconds, peak = open(base + ".time").read().split()
print(f"{base}: {summary['epochs_completed']} epochs, {float(seconds):.0f} s wall, peak {int(peak) / 1024:.0f} MB, "
      f"test accuracy {100 * summary['test_accuracy']:.2f}%"
      + (f" (EMA {100 * summary['ema_test_accuracy']:.2f}%)" if 'ema_test_accuracy' in summary else ""))
PY
}
for seed in 1 2 3; do run mnist-best configs/mnist-best.json "$seed" "$DATA_DIR"; done
run fashion-best configs/fashion-best.json 1
