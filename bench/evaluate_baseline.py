"""Wall time of the full baseline on a paper-sized database: 373 samples, 33 subjects, 2 cores.

Run:  python bench/evaluate_baseline.py [--db /tmp/bench-373] [--jobs 2]

The database is built by this script's quick synthetic generator (station.evaluate.synthetic:
class-dependent local warps on per-subject face textures, and matching bumps on a face-like
point cloud) when it does not exist yet.  Then ``station evaluate`` runs the whole baseline with
one parameter setting (LBP-TOP R=(1,1,4), 5x5 blocks, 3D radius 10 mm): objective,
non-objective and 3-class label sets, LOSO and 10 x 10-fold, SVM with inner C search, fusion
with paper and nested choice of a, report with plots; features are computed from scratch
into a fresh cache.  A second timing shows the same run with the feature cache warm (the
classification part alone).  CPU seconds of all processes (the joblib workers included) are
printed next to the wall time, so a run on a busy machine can still be compared.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _common import children_cpu_s

#: objective class mix of the synthetic database (roughly a spontaneous database's imbalance)
MIX = {"I": 0.22, "II": 0.14, "III": 0.10, "IV": 0.14, "V": 0.06, "VI": 0.05, "VII": 0.09, "Others": 0.20}


def build(db: Path, size: int, frames: int, strength: float) -> float:
    from station.evaluate.synthetic import make_database

    t = time.perf_counter()
    make_database(db, n_subjects=33, n_samples=373, classes=tuple(MIX), class_weights=tuple(MIX.values()),
                  size=size, n_frames=frames, strength=strength, seed=2024)
    return time.perf_counter() - t


def evaluate(db: Path, out: Path, jobs: int, extra: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the evaluate process and its workers)."""
    before = children_cpu_s()
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "station.cli", "evaluate", str(db), "--out", str(out), "--jobs", str(jobs),
                    *extra], check=True)
    wall = time.perf_counter() - t
    return wall, children_cpu_s() - before


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="/tmp/bench-373")
    ap.add_argument("--out", default="/tmp/bench-373-report")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--size", type=int, default=96, help="crop size in pixels")
    ap.add_argument("--frames", type=int, default=24, help="frames per sample (onset..offset)")
    ap.add_argument("--strength", type=float, default=0.14, help="amplitude of the class-dependent motion")
    args = ap.parse_args()
    db = Path(args.db)
    if not (db / "micro-expression.csv").exists():
        print(f"building the synthetic database in {db} ...", flush=True)
        print(f"built in {build(db, args.size, args.frames, args.strength):.0f} s", flush=True)
    n = sum(1 for _ in open(db / "micro-expression.csv")) - 1
    print(f"database: {n} samples, {args.size}x{args.size} px, {args.frames} frames", flush=True)
    cache = Path(args.out) / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    wall, cpu = evaluate(db, Path(args.out), args.jobs, ["--cache", str(cache)])
    print(f"full baseline, features from scratch, {args.jobs} jobs: {wall:.0f} s wall, {cpu:.0f} s CPU", flush=True)
    wall, cpu = evaluate(db, Path(args.out), args.jobs, ["--cache", str(cache)])
    print(f"full baseline, features from the cache, {args.jobs} jobs: {wall:.0f} s wall, {cpu:.0f} s CPU", flush=True)
    rows = np.genfromtxt(Path(args.out) / "results.csv", delimiter=",", names=True, dtype=None, encoding="utf-8")
    for r in rows:
        if r["fusion"] in ("-", "paper") and r["method"] in ("LBP-TOP", "SI+HK", "LBP-TOP + SI+HK"):
            print(f"  {r['label_set']:13s} {r['protocol']:6s} {r['method']:16s} {r['fusion']:6s} "
                  f"acc {100 * float(r['accuracy']):.1f} %  UF1 {float(r['uf1']):.3f}")


if __name__ == "__main__":
    main()
