#!/usr/bin/env python3
"""Compare two safetensors files tensor by tensor (standard library only).

usage: compare_weights.py A B [--tolerance T] [--exact]
Prints the largest absolute difference of every float tensor and in all; exits 1 when the
names, shapes or types differ, or when the largest difference exceeds T (default 1e-5),
or with --exact when any byte of any tensor differs.
"""
import json, struct, sys
from array import array


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n:]
    return {name: (h["dtype"], h["shape"], body[h["data_offsets"][0]:h["data_offsets"][1]]) for name, h in header.items()}


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    tolerance = 1e-5
    if "--tolerance" in sys.argv:
        tolerance = float(sys.argv[sys.argv.index("--tolerance") + 1])
        args.remove(sys.argv[sys.argv.index("--tolerance") + 1])
    exact = "--exact" in sys.argv
    a, b = load(args[0]), load(args[1])
    if sorted(a) != sorted(b):
        print(f"different tensors: {sorted(set(a) ^ set(b))}")
        return 1
    worst = 0.0
    differing = 0
    for name in sorted(a):
        (ta, sa, da), (tb, sb, db) = a[name], b[name]
        if (ta, sa) != (tb, sb):
            print(f"{name}: {ta}{sa} vs {tb}{sb}")
            return 1
        if da != db:
            differing += 1
        if ta == "F32":
            x, y = array("f", da), array("f", db)
            if any(v != v for v in x) or any(v != v for v in y):  # NaN never passes
                print(f"{name}: holds NaN")
                return 1
            d = max((abs(p - q) for p, q in zip(x, y)), default=0.0)
            worst = max(worst, d)
            print(f"{name:32s} {str(sa):18s} max |diff| {d:.3g}")
        else:
            print(f"{name:32s} {str(sa):18s} {'equal' if da == db else 'DIFFERENT'}")
    print(f"largest |diff| {worst:.3g} over {len(a)} tensors; {differing} differ in some bit")
    if exact:
        return 0 if differing == 0 else 1
    return 0 if worst <= tolerance else 1


sys.exit(main())
