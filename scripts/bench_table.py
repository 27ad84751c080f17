#!/usr/bin/env python3
"""Prints the JSON lines of mnist-bench and bench_torch.py (stdin) as a table with ratios."""
import json
import sys

runs = [json.loads(line) for line in sys.stdin if line.strip()]
# One row per (model, implementation, threads): the run with the median training rate.
groups = {}
for r in runs:
    groups.setdefault((r.get("model", "LeNet"), r["implementation"], r["threads"]), []).append(r)
rows = []
models = list(dict.fromkeys(r.get("model", "LeNet") for r in runs))
for key in sorted(groups, key=lambda k: (models.index(k[0]), -k[2], k[1] != "mnist-train")):
    ordered = sorted(groups[key], key=lambda r: r["samples_per_second"])
    median = dict(ordered[len(ordered) // 2])
    median["range"] = "%.0f-%.0f" % (ordered[0]["samples_per_second"], ordered[-1]["samples_per_second"])
    median["runs"] = len(ordered)
    steps = sorted(r["step_ms_p50"] for r in ordered if r.get("step_ms_p50") is not None)
    median["median_step_ms"] = steps[len(steps) // 2] if steps else None
    serial = sorted(r["step_serial_ms"] for r in ordered if r.get("step_serial_ms") is not None)
    median["serial_ms"] = serial[len(serial) // 2] if serial else None
    rows.append(median)
# The FMA peak is measured by mnist-bench (per thread count); PyTorch's share is of the same peak.
peaks = {r["threads"]: r["peak_gflops"] for r in rows if "peak_gflops" in r}
header = ("model", "implementation", "threads", "runs", "samples/s", "(range)", "s/epoch", "GFLOP/s", "of peak", "eval s",
          "peak RSS MB")
print("%-18s %-29s %7s %4s %10s %11s %8s %8s %8s %7s %11s" % header)
for r in rows:
    peak = peaks.get(r["threads"])
    share = "%7.0f%%" % (100 * r["gflops"] / peak) if peak else "%8s" % "-"
    print("%-18s %-29s %7d %4d %10.0f %11s %8.1f %8.1f %s %7.2f %11.0f" % (
        r.get("model", "LeNet"), r["implementation"], r["threads"], r["runs"], r["samples_per_second"], r["range"],
        r["seconds_per_epoch"],
        r["gflops"], share, r["eval_seconds"], r["peak_rss_mb"]))
for t in sorted(peaks, reverse=True):
    print("FMA peak measured with %d thread(s): %.0f GFLOP/s" % (t, peaks[t]))
ours = {(r.get("model", "LeNet"), r["threads"]): r for r in rows if r["implementation"] == "mnist-train"}
theirs = {(r.get("model", "LeNet"), r["threads"]): r for r in rows if r["implementation"] != "mnist-train"}
for key in sorted(ours, key=lambda k: (models.index(k[0]), -k[1])):
    if key in theirs:
        o, p = ours[key], theirs[key]
        print("%s, %d thread(s): mnist-train trains %.2fx as fast as PyTorch, evaluates %.2fx as fast, "
              "with %.2fx its peak memory" % (key[0], key[1], o["samples_per_second"] / p["samples_per_second"],
                                              p["eval_seconds"] / o["eval_seconds"], o["peak_rss_mb"] / p["peak_rss_mb"]))
        # The median step (the median over runs of each run's median step time) moves less
        # than the throughput when a few steps of a run are slowed by the machine's other load.
        if o.get("median_step_ms") and p.get("median_step_ms"):
            # With 2+ threads: the mean time of mnist-train's step on one thread alone, outside
            # its parallel regions (the median over runs), which the other threads wait through.
            serial = ("; %.2f ms of mnist-train's step outside its parallel regions" % o["serial_ms"]
                      if key[1] > 1 and o.get("serial_ms") is not None else "")
            print("    median step: %.2f ms against %.2f ms (%.2fx)%s" % (
                o["median_step_ms"], p["median_step_ms"], p["median_step_ms"] / o["median_step_ms"], serial))
        # bench.sh runs each mnist-train run straight before the PyTorch run of the same model
        # and thread count: the ratio round by round shares a spell of the machine's load
        # between the two sides, where the medians above may each come from another spell.
        pairs = list(zip(groups[(key[0], "mnist-train", key[1])], groups[(key[0], p["implementation"], key[1])]))
        if len(pairs) > 1:
            ratios = [a["samples_per_second"] / b["samples_per_second"] for a, b in pairs]
            print("    round by round: %s (median %.2fx)" % (
                " ".join("%.2fx" % r for r in ratios), sorted(ratios)[len(ratios) // 2]))
if not theirs:
    print("(PyTorch is not importable; set PYTHON=/path/to/python with torch installed to compare)")
