# Two "hosts" made of network namespaces, for mpi_test.sh and measure.sh (sourced, bash).
#
#   netns_allowed                  true when root may create namespaces here
#   netns_up NAME NET DIR          namespaces NAME-1 and NAME-2 joined by a veth pair, with
#                                  the addresses NET.1 and NET.2 (/24); writes DIR/hostfile
#                                  and DIR/netns_table (for netns_agent.sh) and sets NSRUN,
#                                  an `mpirun -np 2` over the two, TCP on NET.0/24 only
#   netns_down NAME                removes both namespaces (their veth pair goes with them)
#
# mpirun runs inside NAME-1 and starts its daemon in NAME-2 through netns_agent.sh instead
# of ssh. --bind-to none: each namespace "host" would bind its rank to its core 0, the same
# core, and two busy-polling ranks would take turns on it.
netns_allowed() {
  [ "$(id -u)" = 0 ] || return 1
  ip netns add "mpi-probe-$$" 2>/dev/null || return 1
  ip netns del "mpi-probe-$$"
}

netns_up() {
  local name=$1 net=$2 dir=$3
  ip netns add "$name-1"
  ip netns add "$name-2"
  ip link add "$name-v1" type veth peer name "$name-v2"
  ip link set "$name-v1" netns "$name-1"
  ip link set "$name-v2" netns "$name-2"
  for i in 1 2; do
    ip -n "$name-$i" addr add "$net.$i/24" dev "$name-v$i"
    ip -n "$name-$i" link set lo up
    ip -n "$name-$i" link set "$name-v$i" up
  done
  printf '%s.1 %s-1\n%s.2 %s-2\n' "$net" "$name" "$net" "$name" >"$dir/netns_table"
  printf '%s.1 slots=1\n%s.2 slots=1\n' "$net" "$net" >"$dir/hostfile"
  export MPI_NETNS_TABLE=$dir/netns_table
  NSRUN=(ip netns exec "$name-1" mpirun -np 2 --hostfile "$dir/hostfile"
         --mca plm_rsh_agent "$PWD/scripts/mpi/netns_agent.sh"
         --mca btl tcp,self --mca btl_tcp_if_include "$net.0/24" --mca oob_tcp_if_include "$net.0/24"
         -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM --wdir "$PWD" --bind-to none)
}

netns_down() {
  ip netns del "$1-1" 2>/dev/null || true
  ip netns del "$1-2" 2>/dev/null || true
}
