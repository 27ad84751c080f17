#!/usr/bin/env python3
"""Time-to-accuracy summary of `make bench`: reads mnist-train --json summaries (stdin, one
per seed, seeds 0.. in order) and prints each seed and the mean/min over them."""
import json
import statistics
import sys

runs = [json.loads(line) for line in sys.stdin if line.strip()]
accuracies = [r["test_accuracy"] for r in runs]
seconds = [r["seconds"] for r in runs]
for seed, r in enumerate(runs):
    print(f"  seed {seed}: {r['seconds']:.2f} s, test accuracy {100 * r['test_accuracy']:.2f}%")
print(f"mnist-train: mean {statistics.mean(seconds):.2f} s (data loading, training, evaluation and the run's files); "
      f"mean accuracy {100 * statistics.mean(accuracies):.3f}% (min {100 * min(accuracies):.2f}%) over {len(runs)} seeds")
