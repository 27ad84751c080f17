#!/usr/bin/env bash
# Builds the libFuzzer harness for the IDX/gzip reader (with AddressSanitizer) and runs it
# for a bounded time. Usage: Fuzz/run-idx.sh [seconds, default 60]
# Seeds: small valid image and label files, raw and gzip'd, plus the first 4 KiB of the
# real t10k labels (gzip'd, so truncated). -malloc_limit_mb bounds any single allocation:
# an input of at most 64 KiB justifies at most 64 KiB x 1032 (deflate's ratio) = 66 MB.
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${FUZZ_WORK:-$root/.build/fuzz-idx}"
rm -rf "$work/corpus"
mkdir -p "$work/corpus"

swiftc -sanitize=fuzzer,address -parse-as-library -O -g \
    -module-name FuzzIDX -I "$root/Sources/CZlib" \
    "$root/Sources/MNISTData/IDXReader.swift" "$root/Sources/MNISTData/DataError.swift" \
    "$root/Fuzz/fuzz_idx.swift" -o "$work/fuzz_idx"

python3 - "$work/corpus" <<'PY'
import gzip, struct, sys
out = sys.argv[1]
images = struct.pack(">IIII", 0x803, 3, 4, 4) + bytes(range(48))
labels = struct.pack(">II", 0x801, 3) + bytes([0, 9, 5])
for name, blob in [("images", images), ("labels", labels)]:
    open(f"{out}/{name}.idx", "wb").write(blob)
    open(f"{out}/{name}.idx.gz", "wb").write(gzip.compress(blob, mtime=0))
open(f"{out}/two-members.gz", "wb").write(gzip.compress(labels[:6], mtime=0) + gzip.compress(labels[6:], mtime=0))
PY
labels="$root/../shared/data/mnist/t10k-labels-idx1-ubyte.gz"
if [[ -f "$labels" ]]; then head -c 4096 "$labels" > "$work/corpus/t10k-labels-head.gz"; fi

"$work/fuzz_idx" "$work/corpus" \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb="${MALLOC_LIMIT_MB:-128}" -print_final_stats=1 -artifact_prefix="$work/"
