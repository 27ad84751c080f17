#!/usr/bin/env bash
# Where a command's resident memory goes, at its largest sampled moment: runs the command,
# reads /proc/PID/smaps every 50 ms, keeps the snapshot with the highest total Rss, and
# prints it split into anonymous mappings (large allocations: the images, big tensors), the
# C heap, and file-backed mappings (the shared libraries and the binary), largest first.
# The sampled peak can miss a spike shorter than 50 ms; VmHWM (printed too) does not.
# Example: scripts/rss_breakdown.sh .build/release/mnist-bench --data-dir ../shared/data/mnist --steps 300
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
snapshot=$(mktemp) best=$(mktemp)
trap 'rm -f "$snapshot" "$best"' EXIT
"$@" > /dev/null &
pid=$!
max=0 hwm=0
while kill -0 "$pid" 2> /dev/null; do
  if cp "/proc/$pid/smaps" "$snapshot" 2> /dev/null; then
    total=$(awk '/^Rss:/ { s += $2 } END { print s + 0 }' "$snapshot")
    if [ "$total" -gt "$max" ]; then max=$total; cp "$snapshot" "$best"; fi
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2> /dev/null || echo "$hwm")
  fi
  sleep 0.05
done
wait "$pid"
awk -v hwm="$hwm" '
  /^[0-9a-f]+-[0-9a-f]+ / { name = $6; if (name == "") name = "[anon]" }
  /^Rss:/ { rss[name] += $2; total += $2; if (name != "[anon]" && name != "[heap]") files += $2 }
  END {
    printf "sampled peak %.1f MB (VmHWM %.1f MB): anonymous %.1f MB, heap %.1f MB, files %.1f MB\n",
      total / 1024, hwm / 1024, rss["[anon]"] / 1024, rss["[heap]"] / 1024, files / 1024
    for (n in rss) if (n != "[anon]" && n != "[heap]" && rss[n] >= 100) printf "%8.1f MB  %s\n", rss[n] / 1024, n | "sort -rn"
  }' "$best"
