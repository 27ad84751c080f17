#!/usr/bin/env bash
# Disk-fault test (needs root for mount): a checkpoint that cannot be written must stop
# training with a clear message and a non-zero exit, leaving the previous checkpoint intact
# and loadable (proved by resuming a copy of the run directory elsewhere).
#   1. full disk: a 6 MiB tmpfs holds the first smoke checkpoint (3.4 MB) but not a second
#      one next to it (atomic writes need old + new);
#   2. read-only: a tmpfs remounted read-only after the first checkpoint;
#   3. read-only from the start: --out on a read-only mount.
# Usage: scripts/reliability/disk_test.sh   Env: BIN, DATA_DIR, CONFIG as in crash_test.sh
set -uo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$(realpath "${BIN:-$root/.build/release/mnist-train}")"
data="$(realpath "${DATA_DIR:-$root/../shared/data/mnist}")"
config="${CONFIG:-$root/configs/smoke.json}"
checker="$root/scripts/reliability/check_run_dir.py"
work="$(mktemp -d /tmp/mnist-disk.XXXXXX)"
mnt="$work/mnt"
mkdir -p "$mnt"
failures=0
cleanup() { umount "$mnt" 2>/dev/null; }
trap cleanup EXIT

if ! mount -t tmpfs -o size=64k tmpfs "$mnt" 2>/dev/null; then
    echo "disk test skipped: cannot mount a tmpfs (needs root or CAP_SYS_ADMIN)"; exit 0
fi
umount "$mnt"

python3 - "$config" "$work/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.setdefault("checkpoint", {})["every_steps"] = 1
json.dump(c, open(sys.argv[2], "w"))
PY

expect_failure() {  # name, exit code, log, run dir, expected message pattern
    local name="$1" code="$2" log="$3" dir="$4" pattern="$5"
    if (( code == 0 )); then echo "FAIL $name: exit 0"; failures=$((failures + 1)); return; fi
    if ! grep -Eq "$pattern" "$log"; then
        echo "FAIL $name: message does not match /$pattern/:"; tail -2 "$log"; failures=$((failures + 1))
    fi
    echo "$name: exit $code; message: $(grep 'error:' "$log" | head -1)"
    if [[ -f "$dir/checkpoint.safetensors" ]]; then
        if ! python3 "$checker" "$dir" >/dev/null; then
            echo "FAIL $name: a file in $dir is torn"; python3 "$checker" "$dir"; failures=$((failures + 1)); return
        fi
        local copy="$work/$name-copy"
        cp -a "$dir" "$copy"
        if "$bin" --resume "$copy" --epochs 2 --quiet >"$work/$name-resume.log" 2>&1; then
            echo "$name: the kept checkpoint resumes and finishes elsewhere (step $(python3 -c "
import json,struct;b=open('$dir/checkpoint.safetensors','rb').read();n=struct.unpack('<Q',b[:8])[0];print(json.loads(b[8:8+n])['__metadata__']['step'])"))"
        else
            echo "FAIL $name: the kept checkpoint does not resume:"; tail -2 "$work/$name-resume.log"; failures=$((failures + 1))
        fi
    fi
}

# 1. Full disk.
mount -t tmpfs -o size=6m tmpfs "$mnt"
"$bin" --config "$work/config.json" --data-dir "$data" --out "$mnt/run" --quiet >"$work/full.log" 2>&1; code=$?
expect_failure full-disk "$code" "$work/full.log" "$mnt/run" "No space left on device|ENOSPC"
ls "$mnt/run" | grep -q '\.tmp-' && { echo "FAIL full-disk: a temporary file was left behind"; failures=$((failures + 1)); }
umount "$mnt"

# 2. Read-only after the first checkpoint.
mount -t tmpfs -o size=256m tmpfs "$mnt"
"$bin" --config "$work/config.json" --data-dir "$data" --out "$mnt/run" --quiet >"$work/ro.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do [[ -f "$mnt/run/checkpoint.safetensors" ]] && break; sleep 0.05; done
# Linux refuses a read-only remount while a file is open for writing (EBUSY): with a
# checkpoint every step the run is often mid-write, so try again until it lands between two.
for _ in $(seq 1 500); do mount -o remount,ro "$mnt" 2>/dev/null && break; sleep 0.005; done
wait "$pid"; code=$?
expect_failure read-only-mid-run "$code" "$work/ro.log" "$mnt/run" "Read-only file system|EROFS"

# 3. Read-only from the start.
"$bin" --config "$work/config.json" --data-dir "$data" --out "$mnt/fresh" --quiet >"$work/ro-start.log" 2>&1; code=$?
expect_failure read-only-start "$code" "$work/ro-start.log" "$mnt/fresh" "$mnt/fresh"
umount "$mnt"

echo "disk test: $failures failure(s); logs in $work"
exit $(( failures > 0 ))
