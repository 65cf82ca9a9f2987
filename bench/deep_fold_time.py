"""Time per LOSO fold of the deep baselines (STSTNet, 3D CNN), against references in the same run.

What a lab wants to know before ``station evaluate DB --models ststnet,cnn3d``: how long one
leave-one-subject-out fold takes, hence the whole run (one fold per participant).  Absolute
seconds depend on the machine, so each fold is also given as a ratio to two references
timed in the same process on the same data:

* ``forward``: one inference pass of the same network over the fold's training inputs;
* ``svm fold``: one LOSO fold (fit + decision on the held-out subject) of a linear SVM
  (scikit-learn ``SVC(kernel="linear")``, the classic baseline's classifier) on the same
  samples, with the flattened STSTNet motion images (2352 values) as features.

By default the database is synthetic (``station.deep.synthetic``: 33 subjects x 3 samples,
30 frames of 96x96 pixels); ``--db DB`` times a database exported by ``station process`` /
``station synth dataset`` instead (3-class protocol: positive / negative / surprise).
Only the first ``--folds`` folds are trained (the rest would take the same time each).

    python bench/deep_fold_time.py --folds 2 --threads 1
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import LeaveOneGroupOut
from sklearn.svm import SVC

from station.deep.loso import network_inputs
from station.deep.synthetic import synthetic_database
from station.deep.training import DEFAULT_CONFIGS, DeepClassifier, build_network


def load_db(path: Path):
    """Samples of an exported database on the 3-class protocol (others dropped)."""
    from station.dataset import read_index, read_sample
    from station.vocab.classes import THREE_CLASS, canonical

    records = [r for r in read_index(path) if THREE_CLASS.get(canonical(r.objective_class))]
    samples = [read_sample(path, r) for r in records]
    y = np.array([THREE_CLASS[canonical(r.objective_class)] for r in records])
    groups = np.array([r.subject for r in records])
    return samples, y, groups


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, help="exported database (default: synthetic samples)")
    parser.add_argument("--subjects", type=int, default=33)
    parser.add_argument("--per-subject", type=int, default=3)
    parser.add_argument("--frames", type=int, default=30, help="frames per synthetic sample")
    parser.add_argument("--size", type=int, default=96, help="crop side of synthetic samples")
    parser.add_argument("--folds", type=int, default=2, help="folds to train per model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default="ststnet,cnn3d")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.db:
        samples, y, groups = load_db(args.db)
        source = f"database {args.db}"
    else:
        samples, y, groups = synthetic_database(args.subjects, args.per_subject, seed=0, frames=args.frames,
                                                size=args.size)
        source = (f"synthetic: {args.subjects} subjects x {args.per_subject} samples, {args.frames} frames "
                  f"of {args.size}x{args.size}")
    classes = np.unique(y)
    y_index = np.searchsorted(classes, y)
    folds = list(LeaveOneGroupOut().split(np.zeros(len(y)), y_index, groups))
    print(f"# {source}; {len(samples)} samples, {len(folds)} LOSO folds; torch {torch.__version__}, "
          f"{args.threads} thread(s), {platform.processor() or platform.machine()}")

    flat = None
    rows = []
    for model_name in args.models.split(","):
        config = DEFAULT_CONFIGS[model_name]
        start = time.perf_counter()
        X = network_inputs(model_name, samples, config)
        prep = (time.perf_counter() - start) / len(samples)
        if model_name == "ststnet":
            flat = X.reshape(len(X), -1)
        net = build_network(model_name, len(classes), config).eval()
        fold_times, forward_times, svm_times = [], [], []
        for train, test in folds[:args.folds]:
            with torch.no_grad():
                forward_times.append(best_of(lambda: [net(torch.from_numpy(X[train][i:i + 64]))
                                                      for i in range(0, len(train), 64)]))
            features = flat if flat is not None else X.reshape(len(X), -1)
            svm_times.append(best_of(lambda: SVC(kernel="linear").fit(features[train], y_index[train])
                                     .decision_function(features[test])))
            start = time.perf_counter()
            clf = DeepClassifier(model_name, len(classes), config, seed=0, device="cpu")
            clf.fit(X[train], y_index[train]).predict_proba(X[test])
            fold_times.append(time.perf_counter() - start)
        fold = float(np.mean(fold_times))
        rows.append((model_name, config, prep, fold, fold / np.mean(forward_times), fold / np.mean(svm_times),
                     fold * len(folds) + prep * len(samples)))

    print("| model | epochs x batch | input prep / sample | time / fold | fold / forward pass | "
          "fold / SVM fold | full LOSO (est.) |")
    print("|---|---|---|---|---|---|---|")
    for model_name, config, prep, fold, r_fwd, r_svm, total in rows:
        print(f"| {model_name} | {config.epochs} x {config.batch_size} | {prep * 1000:.1f} ms | {fold:.1f} s | "
              f"{r_fwd:.0f}x | {r_svm:.0f}x | {total / 60:.1f} min |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
