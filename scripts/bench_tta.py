#!/usr/bin/env python3
"""Time-to-accuracy summary of `make bench`: reads mnist-train --json summaries (stdin, one
per seed, seeds 0.. in order) and prints each seed and the mean/min over them: the training
seconds with evaluation included (`training_seconds`: first step to the end of the last
evaluation), which the speed issue compares with PyTorch's training seconds, and the whole
run's (`seconds`: also the set-up, data loading and MD5 check, and the run's files)."""
import json
import statistics
import sys

runs = [json.loads(line) for line in sys.stdin if line.strip()]
accuracies = [r["test_accuracy"] for r in runs]
training = [r["training_seconds"] for r in runs]
whole = [r["seconds"] for r in runs]
for seed, r in enumerate(runs):
    print(f"  seed {seed}: {r['training_seconds']:.2f} s training and evaluation ({r['seconds']:.2f} s the whole run), "
          f"test accuracy {100 * r['test_accuracy']:.2f}%")
print(f"mnist-train: mean {statistics.mean(training):.2f} s training and evaluation, "
      f"whole run {statistics.mean(whole):.2f} s (with data loading and the run's files); "
      f"mean accuracy {100 * statistics.mean(accuracies):.3f}% (min {100 * min(accuracies):.2f}%) over {len(runs)} seeds")
