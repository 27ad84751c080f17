#!/usr/bin/env bash
# SIGKILL crash test: kills mnist-train at random moments (including inside checkpoint
# writes: the temp config checkpoints after every step) and resumes until the run ends;
# every resumed run must end with a model.safetensors bit-identical to an uninterrupted run,
# and after every kill each file in the run directory must be complete and readable.
#
# Usage: scripts/reliability/crash_test.sh [trials, default 20] [max kills per trial, default 3]
# Env:   BIN (default .build/release/mnist-train), DATA_DIR (default ../shared/data/mnist),
#        CONFIG (default configs/smoke.json), EVERY_STEPS (default 1), WORK (default a mktemp dir)
# Exit:  0 when every trial matches and no file was ever found torn; 1 otherwise.
set -uo pipefail

trials="${1:-20}"
max_kills="${2:-3}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$(realpath "${BIN:-$root/.build/release/mnist-train}")"
data="$(realpath "${DATA_DIR:-$root/../shared/data/mnist}")"
config="${CONFIG:-$root/configs/smoke.json}"
every="${EVERY_STEPS:-1}"
work="${WORK:-$(mktemp -d /tmp/mnist-crash.XXXXXX)}"
checker="$root/scripts/reliability/check_run_dir.py"
mkdir -p "$work"
cd "$work" || exit 1   # outside the repository: no configs/lenet.json to pick up by accident

# A copy of the config that checkpoints every `every` steps.
python3 - "$config" "$work/config.json" "$every" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.setdefault("checkpoint", {})["every_steps"] = int(sys.argv[3])
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY

now_ms() { date +%s%3N; }

# Reference: one uninterrupted run.
start=$(now_ms)
"$bin" --config "$work/config.json" --data-dir "$data" --out "$work/reference" --quiet || { echo "reference run failed"; exit 1; }
run_ms=$(( $(now_ms) - start ))
reference_sum="$(sha256sum "$work/reference/model.safetensors" | cut -d' ' -f1)"
echo "reference run: ${run_ms} ms, model.safetensors sha256 ${reference_sum:0:16}"

failures=0 kills_total=0 kills_mid_write=0 fresh_restarts=0
for trial in $(seq 1 "$trials"); do
    RANDOM=$trial
    dir="$work/trial-$trial"
    kills=0
    range_ms=$(( run_ms + run_ms / 10 ))
    log="$work/trial-$trial.log"
    : > "$log"
    while true; do
        if [[ -f "$dir/config.json" ]]; then
            # The run's config.json holds everything; killed before its first checkpoint,
            # --resume starts the run over (as `--out` on that directory says to).
            [[ -f "$dir/checkpoint.safetensors" ]] || fresh_restarts=$((fresh_restarts + 1))
            command=("$bin" --resume "$dir" --quiet)
        else
            command=("$bin" --config "$work/config.json" --data-dir "$data" --out "$dir" --quiet)
        fi
        "${command[@]}" >>"$log" 2>&1 &
        pid=$!
        if (( kills < max_kills )); then
            delay_ms=$(( RANDOM % (range_ms + 1) ))
            sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
            if kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null; then
                wait "$pid" 2>/dev/null
                kills=$((kills + 1)); kills_total=$((kills_total + 1))
                if [[ -d "$dir" ]]; then
                    report="$(python3 "$checker" "$dir")"; status=$?
                    if grep -q 'temporaries=[1-9]' <<<"$report"; then
                        kills_mid_write=$((kills_mid_write + 1))
                        # A leftover temporary would otherwise be counted again at the next kill.
                        rm -f "$dir"/.*.tmp-*
                    fi
                    if (( status != 0 )); then
                        echo "trial $trial: torn file after kill $kills at ${delay_ms} ms:"; echo "$report"
                        failures=$((failures + 1))
                    fi
                fi
                continue
            fi
        fi
        wait "$pid"; code=$?
        if (( kills == 0 && range_ms > 200 )); then
            # Finished before the first kill (the machine was faster than the reference run):
            # start the trial again with half the delay range, so every trial is killed.
            rm -rf "$dir"; range_ms=$(( range_ms / 2 )); continue
        fi
        if (( code != 0 )); then
            echo "trial $trial: run exited $code after $kills kill(s); log $log"; tail -3 "$log"
            failures=$((failures + 1))
        fi
        break
    done
    sum="$(sha256sum "$dir/model.safetensors" 2>/dev/null | cut -d' ' -f1)"
    if [[ "$sum" == "$reference_sum" ]]; then
        echo "trial $trial: $kills kill(s), model identical"
    else
        echo "trial $trial: $kills kill(s), model DIFFERS from the reference"
        failures=$((failures + 1))
    fi
done
echo "crash test: $trials trials, $kills_total kills ($kills_mid_write inside a checkpoint write," \
     "$fresh_restarts before the first checkpoint), $failures failure(s); work dir $work"
exit $(( failures > 0 ))
