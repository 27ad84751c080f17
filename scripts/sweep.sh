#!/usr/bin/env bash
# Example batch run: train one config with several optimizers and learning rates, rely on
# mnist-train's exit codes, and print a table of the results.
#
#   scripts/sweep.sh [CONFIG] [EPOCHS]          (defaults: configs/smoke.json, 2)
#   scripts/sweep.sh --mpi [CONFIG] [EPOCHS]    the same grid spread over mpirun's processes
#
# Each run gets its own directory under runs/sweep-<time>/; a run that fails (non-zero exit,
# e.g. 3 for a diverging learning rate) is reported and the sweep goes on.
#
# With --mpi, `mpirun -np $SWEEP_PROCESSES` (default 2; add hosts with SWEEP_MPIRUN_ARGS, e.g.
# "--hostfile hosts") starts one worker per process; worker r trains runs r, r+N, r+2N, ... of
# the grid one at a time, each an ordinary single-process mnist-train (the worker clears
# Open MPI's variables so the run does not join the job), and writes its rows beside the
# runs; the table is put together in grid order once every worker is done. The runs
# directory must be on a file system every host sees.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=serial
case ${1:-} in
  --mpi) mode=mpi; shift ;;
  --worker) mode=worker; shift ;;
esac
config=${1:-configs/smoke.json}
epochs=${2:-2}
bin=.build/release/mnist-train
header() { printf '%-9s %-8s %-5s %-9s %-9s %-8s %s\n' optimizer lr exit test_acc test_loss seconds run_dir; }

# The grid, one "optimizer lr" per line, in table order.
grid() {
  for optimizer in sgd adam; do
    if [ "$optimizer" = sgd ]; then rates="1000 0.1 0.01"; else rates="0.01 0.001 0.0001"; fi
    for lr in $rates; do echo "$optimizer $lr"; done
  done
}

# One run of the grid: trains it and prints its table row.
run_one() {  # root optimizer lr
  local root=$1 optimizer=$2 lr=$3
  local out="$root/$optimizer-lr$lr" extra=() summary code
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
}

case $mode in
  serial)
    [ -x "$bin" ] || swift build -c release --product mnist-train >&2 || exit 1
    root="runs/sweep-$(date +%Y%m%d-%H%M%S)"
    mkdir -p "$root"
    header
    grid | while read -r optimizer lr; do run_one "$root" "$optimizer" "$lr"; done
    ;;
  mpi)
    [ -x "$bin" ] || swift build -c release --product mnist-train >&2 || exit 1
    command -v mpirun >/dev/null || { echo "sweep.sh --mpi: mpirun not found (make setup installs Open MPI)" >&2; exit 1; }
    root="runs/sweep-$(date +%Y%m%d-%H%M%S)"
    mkdir -p "$root"
    [ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    # shellcheck disable=SC2086 # SWEEP_MPIRUN_ARGS is a list of options
    # --bind-to none: Open MPI would pin each worker (and the runs it starts) to one core.
    mpirun -np "${SWEEP_PROCESSES:-2}" --bind-to none ${SWEEP_MPIRUN_ARGS:-} --wdir "$PWD" "$PWD/scripts/sweep.sh" --worker "$config" "$epochs" \
      "$root" || { echo "sweep.sh --mpi: mpirun failed; rows so far are in $root/rows.*" >&2; exit 1; }
    header
    sort -n "$root"/rows.* | cut -d' ' -f2-
    ;;
  worker)
    root=$3
    rank=${OMPI_COMM_WORLD_RANK:?sweep.sh --worker runs under mpirun}
    size=${OMPI_COMM_WORLD_SIZE:?}
    # The runs are single processes, not ranks of this job.
    for variable in $(env | sed -n 's/^\(OMPI_[A-Za-z0-9_]*\|PMIX_[A-Za-z0-9_]*\)=.*/\1/p'); do
      [ "$variable" = OMPI_ALLOW_RUN_AS_ROOT ] || [ "$variable" = OMPI_ALLOW_RUN_AS_ROOT_CONFIRM ] || unset "$variable"
    done
    index=0
    grid | while read -r optimizer lr; do
      if [ $((index % size)) -eq "$rank" ]; then
        echo "$index $(run_one "$root" "$optimizer" "$lr")" >>"$root/rows.$rank"
      fi
      index=$((index + 1))
    done
    ;;
esac
