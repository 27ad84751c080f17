#!/bin/sh
# Runs a command as one rank of an mpirun job, changing what one rank sees of the file
# system (in a private mount namespace, so nothing outside the test is touched):
#
#   rank_wrapper.sh RANK readonly DIR COMMAND...   DIR is read-only for rank RANK
#   rank_wrapper.sh RANK hide DIR COMMAND...       DIR is an empty directory for rank RANK
#   rank_wrapper.sh RANK bind:SRC DIR COMMAND...   DIR shows SRC's files to rank RANK
#
# Every other rank runs COMMAND as is. Needs root (unshare -m); mpi_test.sh checks first.
rank=$1 mode=$2 dir=$3
shift 3
if [ "${OMPI_COMM_WORLD_RANK:-}" != "$rank" ]; then exec "$@"; fi
case $mode in
  readonly) exec unshare -m sh -c 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"' "$dir" "$@" ;;
  hide) exec unshare -m sh -c 'mount -t tmpfs none "$0" && exec "$@"' "$dir" "$@" ;;
  bind:*) exec unshare -m sh -c 'mount --bind "$0" "$1" && shift && exec "$@"' "${mode#bind:}" "$dir" "$@" ;;
  *) echo "rank_wrapper.sh: unknown mode $mode" >&2; exit 2 ;;
esac
