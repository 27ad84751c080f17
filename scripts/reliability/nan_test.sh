#!/usr/bin/env bash
# Numerical-fault test: the smoke config at --lr 10 (the largest allowed), std 1e-6, must stop at the
# first non-finite loss with exit code 3, a message naming the step and the learning rate,
# and a checkpoint.safetensors of the step before, complete and finite.
# Usage: scripts/reliability/nan_test.sh   Env: BIN, DATA_DIR, CONFIG as in crash_test.sh
set -uo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$(realpath "${BIN:-$root/.build/release/mnist-train}")"
data="$(realpath "${DATA_DIR:-$root/../shared/data/mnist}")"
config="${CONFIG:-$root/configs/smoke.json}"
work="$(mktemp -d /tmp/mnist-nan.XXXXXX)"
python3 - "$config" "$work/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.setdefault("checkpoint", {})["every_steps"] = 1
# --lr 10 alone (the largest allowed) does not overflow the smoke LeNet: its loss peaks near
# 8e3 and the ReLUs die. Inputs scaled by 1/std = 1e6 make the first updates overflow.
c["data"]["std"] = 1e-6
json.dump(c, open(sys.argv[2], "w"))
PY

"$bin" --config "$work/config.json" --data-dir "$data" --out "$work/run" --lr 10 --quiet >"$work/log" 2>&1; code=$?
message="$(grep 'error:' "$work/log")"
echo "exit $code: $message"
failures=0
(( code == 3 )) || { echo "FAIL: exit $code, expected 3"; failures=$((failures + 1)); }
step="$(sed -nE 's/.* at step ([0-9]+) .*/\1/p' <<<"$message")"
[[ -n "$step" ]] || { echo "FAIL: the message names no step"; failures=$((failures + 1)); }
grep -q "learning rate 10" <<<"$message" || { echo "FAIL: the message does not name the learning rate"; failures=$((failures + 1)); }
if [[ -n "$step" && "$step" -gt 1 ]]; then
    kept="$(python3 -c "
import json,struct;b=open('$work/run/checkpoint.safetensors','rb').read();n=struct.unpack('<Q',b[:8])[0];print(json.loads(b[8:8+n])['__metadata__']['step'])")"
    python3 "$root/scripts/reliability/check_run_dir.py" "$work/run" >/dev/null \
        || { echo "FAIL: run directory has torn or non-finite files"; python3 "$root/scripts/reliability/check_run_dir.py" "$work/run"; failures=$((failures + 1)); }
    [[ "$kept" == "$((step - 1))" ]] || { echo "FAIL: kept checkpoint is step $kept, expected $((step - 1))"; failures=$((failures + 1)); }
    echo "kept checkpoint: step $kept, finite and complete"
fi
echo "nan test: $failures failure(s)"
exit $(( failures > 0 ))
