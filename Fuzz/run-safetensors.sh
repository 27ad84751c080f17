#!/usr/bin/env bash
# Builds the libFuzzer harness for the safetensors reader (with AddressSanitizer) and runs it
# for a bounded time. Usage: Fuzz/run-safetensors.sh [seconds, default 60]
# Seeds: the empty file, a small valid file with metadata and two dtypes, and the header of
# the reference lenet_init.safetensors (its first 600 bytes: prefix + real header; the data is
# left out so each run stays fast, and mutations explore the header paths).
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${FUZZ_WORK:-$root/.build/fuzz-safetensors}"
rm -rf "$work/corpus"
mkdir -p "$work/corpus"

swiftc -sanitize=fuzzer,address -parse-as-library -O -g \
    -module-name FuzzSafeTensors \
    "$root"/Sources/SafeTensors/*.swift "$root/Fuzz/fuzz_safetensors.swift" \
    -o "$work/fuzz_safetensors"

# Seed corpus: small valid files (one tensor, several dtypes, metadata) and the empty file.
printf '\x08\x00\x00\x00\x00\x00\x00\x00{}      ' > "$work/corpus/empty.safetensors"
{
    header='{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F16","shape":[1],"data_offsets":[8,10]}}'
    printf "$(printf '\\x%02x' $(( ${#header} )))\\x00\\x00\\x00\\x00\\x00\\x00\\x00"
    printf '%s' "$header"
    printf '\x00\x00\x80\x3f\x00\x00\x00\xc0\x00\x3c'
} > "$work/corpus/small.safetensors"
reference="$root/../shared/reference/lenet_init.safetensors"
if [[ -f "$reference" ]]; then head -c 600 "$reference" > "$work/corpus/lenet_init_header.safetensors"; fi

"$work/fuzz_safetensors" "$work/corpus" \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/"
