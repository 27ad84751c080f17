#!/usr/bin/env bash
# Builds the libFuzzer harness for the config decoder (TrainingConfig.decode) and runs it for
# a bounded time. Usage: Fuzz/run-config.sh [seconds, default 60]
# The Training module and its dependencies are built by SwiftPM with coverage and ASan in
# their own scratch path (.build-fuzz); the harness is linked against their object files.
# Seeds: every config in configs/.
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
scratch="$root/.build-fuzz"
work="${FUZZ_WORK:-$scratch/fuzz-config}"
rm -rf "$work/corpus"
mkdir -p "$work/corpus"

cd "$root"
swift build --scratch-path "$scratch" --target Training --sanitize address \
    -Xswiftc -sanitize=fuzzer
bin="$(swift build --scratch-path "$scratch" --show-bin-path)"
objects=()
for target in Training Autograd NN Optim Kernels Seeded SafeTensors MNISTData Plot; do
    objects+=("$bin/$target.build"/*.o)
done
swiftc -sanitize=fuzzer,address -parse-as-library -g \
    -I "$bin/Modules" -I "$bin" -I "$root/Sources/CZlib" -I "$root/Sources/COpenBLAS" \
    "$root/Fuzz/fuzz_config.swift" "${objects[@]}" -lopenblas -lz \
    -o "$work/fuzz_config"

cp "$root"/configs/*.json "$work/corpus/"

"$work/fuzz_config" "$work/corpus" \
    -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=256 -print_final_stats=1 -artifact_prefix="$work/"
