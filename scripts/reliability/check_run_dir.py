#!/usr/bin/env python3
"""Checks that every file of an mnist-train run directory is complete and readable.

Usage: check_run_dir.py RUN_DIR
Parses each *.safetensors file present (8-byte little-endian header length, JSON header,
every tensor's data_offsets inside the file, byte counts matching dtype x shape, F32 values
finite for weights), config.json as JSON, and metrics.jsonl line by line. Prints one line
per problem and exits 1 if there is any; prints the number of leftover temporary files.
"""
import json
import math
import os
import struct
import sys

SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def check_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        return [f"{path}: {len(blob)} bytes, shorter than the 8-byte header length"]
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        return [f"{path}: header length {n} runs past the end ({len(blob)} bytes)"]
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except Exception as e:  # noqa: BLE001 - any parse failure is a finding
        return [f"{path}: header is not JSON: {e}"]
    data = blob[8 + n:]
    problems = []
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, stop = entry["data_offsets"]
        count = 1
        for d in entry["shape"]:
            count *= d
        if stop - begin != count * SIZES[entry["dtype"]]:
            problems.append(f"{path}: {name}: {stop - begin} bytes for shape {entry['shape']}")
        if stop > len(data):
            problems.append(f"{path}: {name}: data ends at {stop}, file data has {len(data)} bytes")
        end = max(end, stop)
        if entry["dtype"] == "F32" and not problems:
            values = struct.unpack(f"<{count}f", data[begin:stop])
            if not all(math.isfinite(v) for v in values):
                problems.append(f"{path}: {name}: non-finite values")
    if end != len(data):
        problems.append(f"{path}: tensors cover {end} bytes of {len(data)}")
    return problems


def main():
    run = sys.argv[1]
    problems = []
    temporaries = 0
    for name in sorted(os.listdir(run)):
        path = os.path.join(run, name)
        if ".tmp-" in name:
            temporaries += 1
        elif name.endswith(".safetensors"):
            problems += check_safetensors(path)
        elif name == "config.json":
            try:
                json.load(open(path))
            except Exception as e:  # noqa: BLE001
                problems.append(f"{path}: not JSON: {e}")
        elif name == "metrics.jsonl":
            for i, line in enumerate(open(path)):
                try:
                    json.loads(line)
                except Exception as e:  # noqa: BLE001
                    problems.append(f"{path}:{i + 1}: torn line: {e}")
    for p in problems:
        print(p)
    print(f"temporaries={temporaries}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
