#!/usr/bin/env bash
# Builds the libFuzzer harness for the PNG/PGM decoder (with AddressSanitizer) and runs it
# for a bounded time. Usage: Fuzz/run-png.sh [seconds, default 60]
# Seeds: the PNGs of every colour type, bit depth and interlacing that the decoder's tests
# use (Tests/PlotTests/make_pngs.py) and three PGMs. -malloc_limit_mb bounds any single
# allocation: the decoder allows 16 Mi pixels, whose 16-bit RGBA samples are 128 MB.
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${FUZZ_WORK:-$root/.build/fuzz-png}"
rm -rf "$work/corpus"
mkdir -p "$work/corpus"

swiftc -sanitize=fuzzer,address -parse-as-library -O -g \
    -module-name FuzzPNG -I "$root/Sources/CZlib" \
    "$root/Sources/Plot/PNGDecoder.swift" "$root/Fuzz/fuzz_png.swift" -o "$work/fuzz_png"

python3 "$root/Tests/PlotTests/make_pngs.py" "$work/corpus" > /dev/null
rm -f "$work/corpus/expected.json"

"$work/fuzz_png" "$work/corpus" \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb="${MALLOC_LIMIT_MB:-400}" -print_final_stats=1 -artifact_prefix="$work/"
