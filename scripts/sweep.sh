#!/usr/bin/env bash
# Example batch run: train one config with several optimizers and learning rates, rely on
# mnist-train's exit codes, and print a table of the results.
#
#   scripts/sweep.sh [CONFIG] [EPOCHS]        (defaults: configs/smoke.json, 2)
#
# Each run gets its own directory under runs/sweep-<time>/; a run that fails (non-zero exit,
# e.g. 3 for a diverging learning rate) is reported and the sweep goes on.
set -uo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/smoke.json}
epochs=${2:-2}
bin=.build/release/mnist-train
[ -x "$bin" ] || swift build -c release --product mnist-train >&2 || exit 1
root="runs/sweep-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$root"

printf '%-9s %-8s %-5s %-9s %-9s %-8s %s\n' optimizer lr exit test_acc test_loss seconds run_dir
for optimizer in sgd adam; do
  if [ "$optimizer" = sgd ]; then rates="1000 0.1 0.01"; else rates="0.01 0.001 0.0001"; fi
  for lr in $rates; do
    out="$root/$optimizer-lr$lr"
    extra=()
    [ "$optimizer" = sgd ] && extra=(--momentum 0.9)
    summary=$("$bin" --config "$config" --epochs "$epochs" --optimizer "$optimizer" --lr "$lr" "${extra[@]}" \
              --out "$out" --quiet --json 2>"$out.err")
    code=$?
    if [ $code -eq 0 ]; then
      python3 - "$summary" "$optimizer" "$lr" "$out" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
print(f"{sys.argv[2]:<9} {sys.argv[3]:<8} {0:<5} {s['test_accuracy']:<9.4f} {s['test_loss']:<9.4f} {s['seconds']:<8.1f} {sys.argv[4]}")
PY
    else
      printf '%-9s %-8s %-5s %-9s %-9s %-8s %s\n' "$optimizer" "$lr" "$code" - - - "failed: $(tr '\n' ' ' < "$out.err" | cut -c1-100)"
    fi
  done
done
