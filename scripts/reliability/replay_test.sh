#!/usr/bin/env bash
# Replays the hostile sequences of issue 12 against the real binaries and asserts that no
# run was lost or mixed: parallel starts without --out, several processes on one --out,
# interrupt-and-resume through every resume-time option (following the printed resume
# command), refusals that must leave files untouched, and the smaller CLI defects.
#
# Usage: scripts/reliability/replay_test.sh
# Env:   BIN_DIR (default .build/release), DATA_DIR (default ../shared/data/mnist),
#        WORK (default a mktemp dir, removed on success)
# Exit:  0 when every check passes; 1 otherwise. Prints one line per check and a closing
#        "N passed, M failed" line.
set -uo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
bin_dir="$(realpath "${BIN_DIR:-$root/.build/release}")"
train="$bin_dir/mnist-train"
data="$(realpath "${DATA_DIR:-$root/../shared/data/mnist}")"
work="${WORK:-$(mktemp -d /tmp/mnist-replay.XXXXXX)}"
mkdir -p "$work"
cd "$work" || exit 1

passed=0 failed=0
check() {  # check NAME CONDITION-COMMAND...
    local name="$1"; shift
    if "$@"; then passed=$((passed + 1)); echo "ok    $name"
    else failed=$((failed + 1)); echo "FAIL  $name"; fi
}
# The weights of a safetensors file (names, shapes, bytes), without its metadata: the
# stored config names the data directory, which a resume may move.
sum() {
    python3 - "$1" <<'PY' 2>/dev/null
import hashlib, json, struct, sys
raw = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; header = json.loads(raw[8:8 + n])
h = hashlib.sha256()
for name in sorted(k for k in header if k != "__metadata__"):
    begin, end = header[name]["data_offsets"]
    h.update(f"{name} {header[name]['dtype']} {header[name]['shape']}".encode()); h.update(raw[8 + n + begin:8 + n + end])
print(h.hexdigest())
PY
}
tree_sum() { (cd "$1" && find . -type f ! -name .lock -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1; }
error_line() { grep -m1 'error:' "$1"; }

# A smoke config with 3 epochs of 16 steps, a checkpoint every step, data from DATA_DIR.
python3 - "$root/configs/smoke.json" "$work/config.json" "$data" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["data"].update(directory=sys.argv[3], download=False, train_limit=1024, test_limit=200)
c.update(epochs=3, log_interval=4, output_dir="runs")
c["checkpoint"] = {"every_steps": 1}
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
cfg="$work/config.json"
ref_epochs() {  # ref_epochs N: an uninterrupted run to N epochs; prints its model's sum
    local out="$work/reference-$1"
    [ -f "$out/model.safetensors" ] || "$train" --config "$cfg" --epochs "$1" --out "$out" --quiet >/dev/null || return 1
    sum "$out/model.safetensors"
}
ref3="$(ref_epochs 3)"; ref4="$(ref_epochs 4)"
check "reference runs" test -n "$ref3" -a -n "$ref4"

# 1. Four runs without --out started together: four directories, none lost, none mixed.
for i in 1 2 3 4; do "$train" --config "$cfg" --quiet --json > "parallel-$i.json" 2> "parallel-$i.err" & done
wait
dirs="$(python3 -c 'import json,sys; print("\n".join(json.load(open(f))["run_dir"] for f in sys.argv[1:]))' parallel-*.json 2>/dev/null)"
check "parallel starts: 4 summaries, 4 distinct run directories" test "$(sort -u <<< "$dirs" | grep -c .)" = 4
same=1; for d in $dirs; do [ "$(sum "$d/model.safetensors")" = "$ref3" ] || same=0; done
check "parallel starts: every model equals the uninterrupted run" test "$same" = 1

# 2. Three processes on one --out at once: one trains, the others are refused; the run is intact.
for i in 1 2 3; do ( "$train" --config "$cfg" --out shared-out --quiet 2> "same-$i.err"; echo $? > "same-$i.code" ) & done
wait
zeros=$(cat same-*.code | grep -c '^0$')
refused=$(cat same-*.err | grep -c -e 'in use by another mnist-train process (pid [0-9]*' -e 'already holds a run; continue it with --resume')
check "same --out: exactly one run trains ($zeros), the others are refused with one line ($refused)" test "$zeros" = 1 -a "$refused" = 2
check "same --out: the run that trained is bit-identical to the reference" test "$(sum shared-out/model.safetensors)" = "$ref3"

# 3. Interrupt and resume with every resume-time option, following the printed command.
wait_for_step() {  # wait_for_step DIR: until the run has written a checkpoint
    for _ in $(seq 1 400); do [ -f "$1/checkpoint.safetensors" ] && return 0; sleep 0.01; done; return 1
}
resume_cmd() { sed -n 's/.*Resume with: mnist-train //p' "$1"; }
"$train" --config "$cfg" --out chain --max-steps 20 --quiet 2> chain-1.err & pid=$!
wait_for_step chain; kill -INT $pid; wait $pid; code=$?
check "SIGINT: exit 130 with the resume command" test "$code" = 130 -a -n "$(resume_cmd chain-1.err)"
check "SIGINT: the stop is recorded (metrics stop line, model, best, curves)" \
    python3 -c 'import json,sys,os; r=[json.loads(l) for l in open("chain/metrics.jsonl")]; sys.exit(not (r[-1]["kind"]=="stop" and r[-1]["reason"]=="SIGINT" and all(os.path.exists("chain/"+f) for f in ("model.safetensors","best.safetensors","curves.png"))))'
eval "\"$train\" $(resume_cmd chain-1.err) --quiet" 2> chain-2.err; code=$?
steps=$(python3 -c 'import json; print(json.loads(open("chain/metrics.jsonl").read().splitlines()[-1])["step"])')
check "printed resume command: stops at the saved --max-steps 20 (step $steps)" test "$code" = 0 -a "$steps" = 20
before="$(tree_sum chain)"
"$train" --resume chain --epochs 1 --quiet 2> chain-3.err; code=$?
check "resume with fewer epochs than begun: refused, files untouched" test "$code" = 1 -a "$(tree_sum chain)" = "$before"
"$train" --resume chain --max-steps 10 --quiet 2> chain-4.err; code=$?
check "resume with --max-steps below the steps taken: refused, files untouched" test "$code" = 1 -a "$(tree_sum chain)" = "$before"
for option in "--config $cfg" "--out elsewhere" "--init-from chain/model.safetensors" "--no-shuffle" "--lr 0.1" "--seed 4" "--threads 1"; do
    # shellcheck disable=SC2086
    "$train" --resume chain $option --quiet 2> opt.err; code=$?
    check "resume refuses ${option%% *}" grep -q -- "${option%% *}: cannot be used with --resume" opt.err
done
check "refused resume options changed nothing" test "$(tree_sum chain)" = "$before"
# Extend to 4 epochs and a new step limit, stopped by SIGTERM on the way.
"$train" --resume chain --epochs 4 --max-steps 50 --quiet 2> chain-5.err & pid=$!
sleep 0.3; kill -TERM $pid; wait $pid; code=$?
check "SIGTERM during an extended resume: exit 143 (or finished first: 0) [$code]" test "$code" = 143 -o "$code" = 0
grep -q '"epochs": 4' chain/config.json && grep -q '"max_steps": 50' chain/config.json
check "resume-time --epochs 4 --max-steps 50 are saved in config.json" test $? = 0
"$train" --resume chain --quiet 2> chain-6.err; code=$?
steps=$(python3 -c 'import json; print(json.loads(open("chain/metrics.jsonl").read().splitlines()[-1])["step"])')
check "plain resume keeps the saved extension: stops at step 50 ($steps)" test "$code" = 0 -a "$steps" = 50
mkdir -p moved-data && cp "$data"/* moved-data/
"$train" --resume chain --no-max-steps --data-dir moved-data --quiet --json > chain-7.json 2> chain-7.err; code=$?
check "resume --no-max-steps --data-dir: trains all 4 epochs from the moved data" \
    python3 -c 'import json,sys; s=json.load(open("chain-7.json")); sys.exit(not (s["epochs_completed"]==4 and s["stop_reason"]=="completed"))'
check "the interrupted, extended, moved run ends bit-identical to an uninterrupted 4-epoch run" \
    test "$(sum chain/model.safetensors)" = "$ref4"
check "its metrics hold every epoch once, steps never going back" python3 -c '
import json, sys
r = [json.loads(l) for l in open("chain/metrics.jsonl")]
epochs = [x["epoch"] for x in r if x["kind"] == "epoch"]
steps = [x["step"] for x in r if x["kind"] == "step"]
sys.exit(not (epochs == [1, 2, 3, 4] and steps == sorted(set(steps))))'
before="$(tree_sum chain)"
"$train" --resume chain --quiet --json > chain-8.json 2> chain-8.err; code=$?
check "resuming a finished run: exit 0, already_complete, nothing rewritten" \
    test "$code" = 0 -a "$(tree_sum chain)" = "$before" -a -n "$(grep already_complete chain-8.json)"

# 4. Refusals that must not create or change anything.
mkdir -p foreign && echo "my notes" > foreign/notes.txt
"$train" --config "$cfg" --out foreign --quiet 2> r.err
check "--out on someone's directory: refused naming its files, files untouched" \
    sh -c 'grep -q "the directory is not empty (notes.txt)" r.err && [ "$(cat foreign/notes.txt)" = "my notes" ] && [ "$(ls foreign)" = notes.txt ]'
"$train" --config "$cfg" --out "" --quiet 2> r.err; check "--out \"\" refused" grep -q -- '--out: the path is empty' r.err
touch plain; "$train" --config "$cfg" --out plain/run --quiet 2> r.err
check "--out under a file: ENOTDIR named" grep -q 'plain is a file, not a directory (ENOTDIR)' r.err
"$train" --config "$cfg" --lr -1 --quiet 2> r.err; check "--lr -1: the allowed range" grep -q -- '--lr: got -1.0; expected a learning rate in 0...10000' r.err
"$train" --config "$cfg" --max-steps -1 --quiet 2> r.err; check "--max-steps -1: the allowed range" grep -q -- '--max-steps: got -1; expected at least 1' r.err
"$train" --config "$work" --quiet 2> r.err; check "a directory as --config: EISDIR" grep -q 'cannot read the config: is a directory (EISDIR)' r.err
python3 - "$cfg" dup.json <<'PY'
import sys; t = open(sys.argv[1]).read(); open(sys.argv[2], "w").write(t.replace('"epochs": 3', '"epochs": 3, "epochs": 5', 1))
PY
"$train" --config dup.json --quiet 2> r.err; check "duplicate key in a config: refused" grep -q 'duplicate key' r.err
python3 - "$cfg" big.json <<'PY'
import json, sys; c = json.load(open(sys.argv[1])); c["model"]["layers"][0]["out_channels"] = 65536; json.dump(c, open(sys.argv[2], "w"))
PY
"$train" --config big.json --out big --quiet 2> r.err; code=$?
check "a model larger than memory: one line with the estimate, exit 1, no directory" \
    sh -c "[ $code = 1 ] && [ \$(wc -l < r.err) = 1 ] && grep -q 'this process may use' r.err && [ ! -e big ]"
mkdir -p bad-data && cp "$data"/* bad-data/ && printf 'x' >> bad-data/t10k-labels-idx1-ubyte.gz
"$train" --config "$cfg" --data-dir bad-data --out md5 --quiet 2> r.err
check "a data file with a wrong MD5: refused naming it, no directory left" \
    sh -c 'grep -q "t10k-labels-idx1-ubyte.gz: MD5 .* is not a published mnist file" r.err && [ ! -e md5 ]'
"$bin_dir/autograd-tour" --help > tour.out; code=$?
check "autograd-tour --help prints its usage and does not run the tour" sh -c "[ $code = 0 ] && grep -q '^usage: autograd-tour' tour.out && ! grep -q 'tensor(' tour.out"
python3 - "$work/reference-3/model.safetensors" nan.safetensors <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; header = json.loads(raw[8:8 + n])
begin = header["fc2.bias"]["data_offsets"][0]; data = bytearray(raw[8 + n:]); data[begin:begin + 4] = struct.pack("<f", float("nan"))
open(sys.argv[2], "wb").write(raw[:8 + n] + bytes(data))
PY
"$bin_dir/mnist-eval" --checkpoint nan.safetensors --data-dir "$data" > /dev/null 2> r.err; code=$?
check "mnist-eval of NaN weights: exit 1 naming the tensor" sh -c "[ $code = 1 ] && grep -q 'tensor \"fc2.bias\" holds 1 non-finite' r.err"

echo "$passed passed, $failed failed"
if [ "$failed" = 0 ] && [ -z "${WORK:-}" ]; then rm -rf "$work"; fi
[ "$failed" = 0 ]
