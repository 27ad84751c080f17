#!/bin/sh
# Open MPI's launcher agent for the namespace "hosts" of mpi_test.sh, in place of ssh:
# mpirun calls `netns_agent.sh HOST COMMAND...` to start its daemon on HOST, and this runs
# COMMAND inside the network namespace that owns HOST's address (mpi_test.sh writes the
# address → namespace table into $MPI_NETNS_TABLE, one "ADDRESS NAMESPACE" per line).
host=$1
shift
table=${MPI_NETNS_TABLE:?netns_agent.sh: MPI_NETNS_TABLE is not set}
ns=$(awk -v h="$host" '$1 == h { print $2 }' "$table")
if [ -z "$ns" ]; then
  echo "netns_agent.sh: no namespace for host $host in $table" >&2
  exit 255
fi
exec ip netns exec "$ns" sh -c "$*"
