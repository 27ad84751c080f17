#!/usr/bin/env bash
# make mpi-test: data-parallel training under Open MPI, checked end to end.
#
#   scripts/mpi/mpi_test.sh [one-host|netns|all]      (default all)
#
# One host (mpirun on this machine):
#   1. np 2 and np 4 equal a single-process run of the same config, seed and global batch
#      up to float summation order (largest |diff| <= 1e-5 after the smoke config's 2 epochs);
#   2. rank 1 runs with the run's parent directory read-only: rank 0 alone writes the run;
#   3. --deterministic-reduce: two np-2 runs are bit-identical (batch norm, dropout, EMA,
#      augmentation: scripts/mpi/dp-smoke.json);
#   4. stopped at step 11 and resumed under mpirun: bit-identical to the uninterrupted run;
#   5. resuming with another number of processes, and a batch the ranks cannot share, are
#      refused with a message;
#   6. SIGTERM to mpirun: every rank stops at the same step, the state is saved, the resume
#      ends bit-identical to the uninterrupted run;
#   7. kill -9 of rank 1: the job ends within seconds with a non-zero exit, the last
#      checkpoint is intact, and its resume ends bit-identical to the uninterrupted run;
#   8. a rank that cannot read the data: the job fails with that rank's message and leaves
#      no run directory behind.
# Namespace hosts (needs root and `ip netns`; skipped with a message where not allowed):
#   9. two network namespaces joined by a veth pair are the hosts (10.199.0.1, .2); mpirun
#      starts its daemon in the second through scripts/mpi/netns_agent.sh instead of ssh,
#      and all traffic is TCP on those two addresses (--mca btl tcp,self, *_if_include).
#      The run equals the single-process run (1e-5) and, with --deterministic-reduce, the
#      one-host run bit for bit.
set -euo pipefail
cd "$(dirname "$0")/../.."
part=${1:-all}
B=$(realpath "${BIN_DIR:-.build/release}")
D=$(realpath "${MNIST_DIR:-../shared/data/mnist}")
T=$(mktemp -d /tmp/mpi-test.XXXXXX)
compare=scripts/mpi/compare_weights.py
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Quiet, deterministic Open MPI: no warnings about missing fabrics, oversubscription allowed
# (np 4 on 2 cores), the shared-memory and TCP transports only.
MPIRUN=(mpirun --oversubscribe --mca btl self,vader,tcp --mca btl_base_warn_component_unused 0)
failures=0
source scripts/mpi/netns_hosts.sh
hosts=mpit$$
cleanup() {
  # A job a failed check left running, and the namespaces of the multi-host part.
  pkill -KILL -f "mnist-train.*$T/" 2>/dev/null || true
  netns_down $hosts
}
trap cleanup EXIT
# Waits up to 60 s for a file a background job writes; fails if the job ends first.
wait_for() {  # file pid
  local deadline=$((SECONDS + 60))
  until [ -f "$1" ]; do
    if ! kill -0 "$2" 2>/dev/null || [ $SECONDS -ge $deadline ]; then return 1; fi
    sleep 0.1
  done
}
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
train() { "$B/mnist-train" --data-dir "$D" --quiet "$@"; }
mtrain() { local np=$1; shift; "${MPIRUN[@]}" -np "$np" "$B/mnist-train" --data-dir "$D" --quiet "$@"; }
same() { python3 $compare "$@" >"$T/compare.txt" 2>&1; }
# The checkpoint's step and whether it is finished.
meta() { python3 -c "
import json, struct, sys
d = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', d[:8])[0]
print(json.loads(d[8:8 + n])['__metadata__'].get(sys.argv[2], ''))" "$1" "$2"; }

one_host() {
  echo "== one host: $(mpirun --version | head -1), $(nproc) cores"
  # 1. Equal to a single process up to summation order.
  train --config configs/smoke.json --out "$T/single"
  for np in 2 4; do
    mtrain $np --config configs/smoke.json --out "$T/np$np"
    if same "$T/single/model.safetensors" "$T/np$np/model.safetensors" --tolerance 1e-5; then
      pass "np $np equals the single-process run: $(tail -1 "$T/compare.txt")"
    else fail "np $np differs from the single-process run: $(tail -1 "$T/compare.txt")"; fi
  done
  files() { ls "$1" | sed 's/^events\.out\.tfevents\..*/events.out.tfevents.*/' | tr '\n' ' '; }
  if [ "$(files "$T/np2")" = "$(files "$T/single")" ]; then
    pass "the np-2 run directory holds the files of a single-process run: $(ls "$T/np2" | tr '\n' ' ')"
  else fail "run directory contents differ: $(ls "$T/np2" | tr '\n' ' ') vs $(ls "$T/single" | tr '\n' ' ')"; fi

  # 2. Only rank 0 writes: rank 1 cannot write anywhere under $T/ro.
  mkdir -p "$T/ro"
  if unshare -m true 2>/dev/null; then
    if "${MPIRUN[@]}" -np 2 scripts/mpi/rank_wrapper.sh 1 readonly "$T/ro" "$B/mnist-train" --data-dir "$D" --quiet \
         --config scripts/mpi/dp-smoke.json --out "$T/ro/run" && [ -f "$T/ro/run/model.safetensors" ]; then
      pass "rank 1 with the run's parent directory read-only: the run completes (rank 0 writes it alone)"
    else fail "a run with rank 1 unable to write failed"; fi
  else
    echo "skip rank-1-read-only check: unshare -m is not allowed here"
  fi

  # 3. --deterministic-reduce: bit-identical jobs.
  mtrain 2 --config scripts/mpi/dp-smoke.json --deterministic-reduce --out "$T/detA"
  mtrain 2 --config scripts/mpi/dp-smoke.json --deterministic-reduce --out "$T/detB"
  if same "$T/detA/checkpoint.safetensors" "$T/detB/checkpoint.safetensors" --exact; then
    pass "--deterministic-reduce: two np-2 runs bit-identical ($(tail -1 "$T/compare.txt"))"
  else fail "--deterministic-reduce runs differ: $(tail -1 "$T/compare.txt")"; fi
  if [ "$(meta "$T/detA/checkpoint.safetensors" data_parallel_ranks)" = 2 ] && \
     python3 -c "
import json, struct, sys
d = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', d[:8])[0]; h = json.loads(d[8:8 + n])
a, b = h['drop.generator'], h['ranks.1.drop.generator']
sys.exit(0 if d[8 + n + a['data_offsets'][0]:8 + n + a['data_offsets'][1]] != d[8 + n + b['data_offsets'][0]:8 + n + b['data_offsets'][1]] else 1)
" "$T/detA/checkpoint.safetensors"; then
    pass "the checkpoint holds rank 1's own dropout generator (ranks.1.drop.generator, not rank 0's)"
  else fail "the checkpoint lacks rank 1's generator state"; fi

  # 4. Resume under mpirun.
  mtrain 2 --config scripts/mpi/dp-smoke.json --deterministic-reduce --out "$T/res" --max-steps 11
  "${MPIRUN[@]}" -np 2 "$B/mnist-train" --resume "$T/res" --no-max-steps --quiet
  if same "$T/detA/checkpoint.safetensors" "$T/res/checkpoint.safetensors" --exact \
     && same "$T/detA/ema.safetensors" "$T/res/ema.safetensors" --exact; then
    pass "stopped at step 11 and resumed: bit-identical to the uninterrupted run (weights, optimizer, EMA, generators)"
  else fail "the resumed run differs: $(tail -1 "$T/compare.txt")"; fi

  # 5. Refusals.
  if ! "${MPIRUN[@]}" -np 4 "$B/mnist-train" --resume "$T/res" --epochs 3 --quiet 2>"$T/err4" \
     && grep -q "written by a job of 2 process(es) and this one has 4" "$T/err4"; then
    pass "resume with np 4 of an np-2 run refused: $(grep -m1 'error' "$T/err4" | cut -c1-150)"
  else fail "resume with another np was not refused clearly: $(head -3 "$T/err4")"; fi
  if ! "$B/mnist-train" --resume "$T/res" --epochs 3 --quiet 2>"$T/err1" && grep -q "mpirun -np 2" "$T/err1"; then
    pass "resume of an np-2 run without mpirun refused"
  else fail "resume without mpirun was not refused clearly: $(head -3 "$T/err1")"; fi
  if ! mtrain 3 --config configs/smoke.json --out "$T/np3" 2>"$T/err3" && grep -q "batch_size.*is 64, which 3 processes" "$T/err3" \
     && [ ! -e "$T/np3" ]; then
    pass "batch 64 over np 3 refused, nothing written: $(grep -m1 'error' "$T/err3" | cut -c1-120)"
  else fail "batch 64 over 3 ranks not refused clearly: $(head -3 "$T/err3")"; fi

  # The longer run the fault checks interrupt: 40 epochs of dp-smoke, a checkpoint every 4 steps.
  long=(--config scripts/mpi/dp-smoke.json --deterministic-reduce --epochs 40)
  mtrain 2 "${long[@]}" --out "$T/long"

  # 6. SIGTERM to mpirun: a clean stop on every rank at the same step, then resume.
  (set +e; "${MPIRUN[@]}" -np 2 "$B/mnist-train" --data-dir "$D" --quiet "${long[@]}" --out "$T/term" 2>"$T/term.err"; \
   echo $? >"$T/term.rc") &
  wait_for "$T/term/checkpoint.safetensors" $! || { fail "the SIGTERM job wrote no checkpoint: $(head -3 "$T/term.err")"; return; }
  sleep 0.5
  pkill -TERM -f "^mpirun .*$T/term" || true
  wait
  step=$(meta "$T/term/checkpoint.safetensors" step)
  if [ "$(cat "$T/term.rc")" -ne 0 ] && grep -q "SIGTERM received: stopped after step $step" "$T/term.err"; then
    "${MPIRUN[@]}" -np 2 "$B/mnist-train" --resume "$T/term" --quiet
    if same "$T/long/checkpoint.safetensors" "$T/term/checkpoint.safetensors" --exact; then
      pass "SIGTERM to mpirun: stopped at step $step on every rank, saved; the resume is bit-identical"
    else fail "resume after SIGTERM differs: $(tail -1 "$T/compare.txt")"; fi
  else fail "SIGTERM to mpirun: rc $(cat "$T/term.rc"), $(head -2 "$T/term.err")"; fi

  # 7. kill -9 of rank 1.
  (set +e; "${MPIRUN[@]}" -np 2 "$B/mnist-train" --data-dir "$D" --quiet "${long[@]}" --out "$T/kill" 2>"$T/kill.err"; \
   echo $? >"$T/kill.rc") &
  wait_for "$T/kill/checkpoint.safetensors" $! || { fail "the kill -9 job wrote no checkpoint: $(head -3 "$T/kill.err")"; return; }
  sleep 0.5
  victim=""
  for pid in $(pgrep -f "mnist-train.*$T/kill"); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1; then victim=$pid; fi
  done
  if [ -z "$victim" ]; then fail "kill -9: no process of rank 1 found"; wait; return; fi
  killed_at=$(date +%s.%N)
  kill -9 "$victim"
  wait
  ended=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$killed_at" "$(date +%s.%N)")
  step=$(meta "$T/kill/checkpoint.safetensors" step)
  if [ "$(cat "$T/kill.rc")" -ne 0 ] && python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 10 else 1)" "$ended"; then
    "${MPIRUN[@]}" -np 2 "$B/mnist-train" --resume "$T/kill" --quiet
    if same "$T/long/checkpoint.safetensors" "$T/kill/checkpoint.safetensors" --exact; then
      pass "kill -9 of rank 1: the job ended in ${ended} s (exit $(cat "$T/kill.rc")); the checkpoint of step $step resumed bit-identically"
    else fail "resume after kill -9 differs: $(tail -1 "$T/compare.txt")"; fi
  else fail "kill -9 of rank 1: exit $(cat "$T/kill.rc") after ${ended} s"; fi

  # 8. A rank that cannot read the data.
  if unshare -m true 2>/dev/null; then
    if ! MNIST_MIRRORS=/nonexistent "${MPIRUN[@]}" -np 2 scripts/mpi/rank_wrapper.sh 1 hide "$D" "$B/mnist-train" \
           --data-dir "$D" --quiet --config configs/smoke.json --out "$T/nodata" 2>"$T/nodata.err" \
       && grep -q "rank 1 of 2 on .*: Missing dataset files" "$T/nodata.err" && [ ! -e "$T/nodata" ]; then
      pass "rank 1 without the data: the job fails with rank 1's message and leaves no run directory"
    else fail "rank 1 without data: $(head -3 "$T/nodata.err")"; fi
  fi
}

more_refusals() {
  # 9. Batch norm needs 2 samples per rank in every batch, the last partial one included.
  python3 - scripts/mpi/dp-smoke.json "$T/ragged.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["data"]["train_limit"] = 1025; json.dump(c, open(sys.argv[2], "w"))
PY
  if ! mtrain 2 --config "$T/ragged.json" --out "$T/ragged" 2>"$T/ragged.err" \
     && grep -q "holds 1 of the 1025 training images.*batch norm needs at least 2 per process" "$T/ragged.err" \
     && [ ! -e "$T/ragged" ]; then
    pass "batch norm with a last batch of 1 image over np 2 refused, nothing written"
  else fail "a last batch too small for batch norm was not refused clearly: $(head -3 "$T/ragged.err")"; fi
  # 10. Ranks that loaded different data (one label changed on rank 1's host) stop together.
  if unshare -m true 2>/dev/null; then
    mkdir -p "$T/other"
    cp "$D"/*.gz "$T/other/"
    python3 - "$T/other/train-labels-idx1-ubyte.gz" <<'PY'
import gzip, sys
data = bytearray(gzip.open(sys.argv[1]).read()); data[8 + 100] = (data[8 + 100] + 1) % 10
gzip.open(sys.argv[1], "wb").write(bytes(data))
PY
    if ! "${MPIRUN[@]}" -np 2 scripts/mpi/rank_wrapper.sh 1 "bind:$T/other" "$D" \
           "$B/mnist-train" --data-dir "$D" --quiet --config configs/smoke.json --allow-unverified-data \
           --out "$T/otherrun" 2>"$T/other.err" \
       && grep -q "the ranks loaded different data" "$T/other.err" && [ ! -e "$T/otherrun" ]; then
      pass "rank 1 with one training label changed: every rank stops before training, naming the checksums"
    else fail "different data on two ranks was not caught: $(head -3 "$T/other.err")"; fi
  fi
}

netns_hosts() {
  echo "== namespace hosts"
  if ! netns_allowed; then
    echo "skip namespace hosts: ip netns is not allowed here (needs root)"
    return
  fi
  netns_up "$hosts" 10.199.0 "$T"
  where=$("${NSRUN[@]}" sh -c 'echo "rank $OMPI_COMM_WORLD_RANK in $(ip netns identify $$)"' | sort | tr '\n' ';')
  echo "     $where"
  [ -d "$T/single" ] || train --config configs/smoke.json --out "$T/single"
  "${NSRUN[@]}" "$B/mnist-train" --data-dir "$D" --quiet --config configs/smoke.json --out "$T/ns-smoke" --json >"$T/ns.json"
  if same "$T/single/model.safetensors" "$T/ns-smoke/model.safetensors" --tolerance 1e-5; then
    pass "np 2 over two namespace hosts (TCP on 10.199.0.1/.2) equals the single-process run: $(tail -1 "$T/compare.txt")"
  else fail "namespace-host run differs from the single-process run: $(tail -1 "$T/compare.txt")"; fi
  [ -d "$T/detA" ] || mtrain 2 --config scripts/mpi/dp-smoke.json --deterministic-reduce --out "$T/detA"
  "${NSRUN[@]}" "$B/mnist-train" --data-dir "$D" --quiet --config scripts/mpi/dp-smoke.json --deterministic-reduce \
    --out "$T/ns-det"
  if same "$T/detA/checkpoint.safetensors" "$T/ns-det/checkpoint.safetensors" --exact; then
    pass "--deterministic-reduce over the namespace hosts: bit-identical to the one-host run"
  else fail "namespace-host deterministic run differs from the one-host run: $(tail -1 "$T/compare.txt")"; fi
}

case $part in
  one-host) one_host; more_refusals ;;
  netns) netns_hosts ;;
  all) one_host; more_refusals; netns_hosts ;;
  *) echo "usage: $0 [one-host|netns|all]" >&2; exit 2 ;;
esac
if [ $failures -eq 0 ]; then
  echo "mpi-test: all checks passed"
  rm -rf "$T"
else
  echo "mpi-test: $failures check(s) failed; files kept in $T"
  exit 1
fi
