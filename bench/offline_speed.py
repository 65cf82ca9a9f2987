"""`station process` and `station spot`: CPU time against a reference checkout, in one run.

Both trees run the same verbs on the same synthetic data, one job, one thread per library
(``OMP_NUM_THREADS=1`` etc.: "per core"), under ``nice``, interleaved (ref, new, ref, new ...)
so the load of the shared machine hits both alike.  The figure is the CPU time of the child
process (``resource.getrusage(RUSAGE_CHILDREN)``), not wall time; medians over ``--repeats``.
Accuracy is read back from what each tree wrote: ICP RMSE and landmark errors from
``process-report.json``, spotting F1 (MEGC, IoU >= 0.5) from the candidates CSV against the
ground truth, so a speed-up never hides a loss of accuracy.

    git worktree add /tmp/ref-perf <commit-before>
    station synth dataset --subjects 6 --samples 24 --seed 1 --out /tmp/perf/data6
    nice python bench/offline_speed.py --ref /tmp/ref-perf --data /tmp/perf/data6 --repeats 3
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import THREAD_VARS, children_cpu_s, ref_data_parser, scratch

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ONE_CORE = {name: "1" for name in THREAD_VARS}


def run(tree: Path, *args: str) -> tuple[float, float, str]:
    """(child CPU seconds, wall seconds, output) of ``python -m station.cli ARGS`` run in ``tree``."""
    env = {**os.environ, **ONE_CORE, "PYTHONPATH": str(tree)}
    before = children_cpu_s()
    started = time.perf_counter()
    proc = subprocess.run(["nice", "-n", "5", sys.executable, "-m", "station.cli", *args], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=7200)
    wall = time.perf_counter() - started
    cpu = children_cpu_s() - before
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{tree}: station {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return cpu, wall, proc.stdout + proc.stderr


STEADY = r"""
import json, sys, time
import cv2
from station.process import face2d
face2d.face_detector(), face2d.landmark_predictor()  # model loading and imports are start-up, not per-frame work
from station.process.commands import trial_files
paths = trial_files([sys.argv[2]])
if sys.argv[1] == "spot":
    from station.process.spotting import spot_trials
    t = time.process_time(); results, _ = spot_trials(paths); cpu = time.process_time() - t
    print(json.dumps({"cpu": cpu, "frames": int(sum(len(r.score) for r in results))}))
else:
    from station.process import face3d
    getattr(face3d, "_open3d", lambda: __import__("open3d"))()
    from station.process.export import ProcessOptions, ground_truth_specs, process_trial
    options = ProcessOptions(out=sys.argv[3], write_png=False, write_ply=False)
    t = time.process_time(); n = 0
    for p in paths:
        n += len(process_trial(p, ground_truth_specs(p), options).records)
    print(json.dumps({"cpu": time.process_time() - t, "samples": n}))
"""


def steady(tree: Path, verb: str, data: Path, out: Path) -> dict:
    """CPU of the work itself in one process of ``tree``, after imports and model loading."""
    env = {**os.environ, **ONE_CORE, "PYTHONPATH": str(tree)}
    proc = subprocess.run(["nice", "-n", "5", sys.executable, "-c", STEADY, verb, str(data), str(out)], cwd=tree,
                          env=env, capture_output=True, text=True, timeout=7200)
    if proc.returncode:
        raise SystemExit(f"{tree}: steady {verb} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def spot_f1(candidates_csv: Path, data: Path) -> dict:
    """MEGC F1 of the micro candidates against the trials' ground truth (this checkout's code)."""
    sys.path.insert(0, str(REPO))
    from station.process.coding import trial_key
    from station.process.commands import trial_files
    from station.process.spotting import Candidate, SpotResult, evaluate_spotting
    from station.record.writer import open_trial, read_ground_truth

    with open(candidates_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    results = []
    for path in trial_files([str(data)]):
        with open_trial(path) as f:
            truth = read_ground_truth(f)
        cands = [Candidate(int(r["onset"]), int(r["apex"]), int(r["offset"]), float(r["score"]), r["kind"])
                 for r in rows if Path(r["path"]).resolve() == path.resolve()]
        results.append(SpotResult(trial_key(path), str(path), cands, np.zeros(0), np.zeros(0), truth))
    return evaluate_spotting(results, ("micro",))


def process_quality(db: Path) -> dict:
    report = json.loads((db / "process-report.json").read_text())
    out = {"samples": report["samples"]}
    for key in ("icp_rmse_mm", "icp_fitness", "lm3d_error_mm", "lm2d_aligned_px", "rigid_drift_after_icp_mm"):
        values = [m[key] for m in report["metrics"] if key in m]
        out[key] = float(np.nanmean(values)) if values else float("nan")
    return out


def frames_in(data: Path) -> int:
    sys.path.insert(0, str(REPO))
    from station.process.commands import trial_files
    from station.record.schema import readable_frames
    from station.record.writer import open_trial

    total = 0
    for path in trial_files([str(data)]):
        with open_trial(path) as f:
            total += readable_frames(f)
    return total


def main() -> int:
    parser = ref_data_parser(__doc__, repeats=3)
    parser.add_argument("--steps", default="process,spot")
    parser.add_argument("--png", action="store_true", help="process writes PNG too (default --no-png --no-ply)")
    args = parser.parse_args()
    trees = {"reference": args.ref.resolve(), "new": REPO}
    steps = args.steps.split(",")
    cpu: dict = {(t, s): [] for t in trees for s in steps}
    wall: dict = {(t, s): [] for t in trees for s in steps}
    quality: dict = {}
    inner: dict = {(t, s): [] for t in trees for s in steps}
    with scratch("offline-speed-") as work:
        for rep in range(args.repeats):
            for name, tree in trees.items():
                for verb in steps:
                    steady_dir = work / f"{name}-steady-{rep}"
                    inner[(name, verb)].append(steady(tree, verb, args.data, steady_dir))
                    shutil.rmtree(steady_dir, ignore_errors=True)
                if "process" in steps:
                    db = work / f"{name}-db-{rep}"
                    extra = [] if args.png else ["--no-png"]
                    c, w, _ = run(tree, "process", str(args.data), "--from-ground-truth", "--out", str(db),
                                  "--no-ply", *extra)
                    cpu[(name, "process")].append(c)
                    wall[(name, "process")].append(w)
                    quality[(name, "process")] = process_quality(db)
                    shutil.rmtree(db)
                if "spot" in steps:
                    out = work / f"{name}-cand-{rep}.csv"
                    c, w, _ = run(tree, "spot", str(args.data), "--out", str(out))
                    cpu[(name, "spot")].append(c)
                    wall[(name, "spot")].append(w)
                    quality[(name, "spot")] = spot_f1(out, args.data)
    frames = frames_in(args.data)
    print(f"data {args.data}: {frames} frames; {args.repeats} interleaved repeats, medians; one thread per library\n")
    if "process" in steps:
        print("| process | CPU s (median) | wall s | samples | CPU s / sample | ratio to reference | ICP RMSE mm | "
              "3D landmarks mm | 2D landmarks px | ICP fitness |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        ref = statistics.median(cpu[("reference", "process")])
        for name in trees:
            c, w, q = statistics.median(cpu[(name, "process")]), statistics.median(wall[(name, "process")]), \
                quality[(name, "process")]
            print(f"| {name} | {c:.1f} | {w:.1f} | {q['samples']} | {c / max(q['samples'], 1):.2f} | {ref / c:.2f}x | "
                  f"{q['icp_rmse_mm']:.3f} | {q['lm3d_error_mm']:.3f} | {q['lm2d_aligned_px']:.3f} | "
                  f"{q['icp_fitness']:.4f} |")
        print()
    if "spot" in steps:
        print("| spot | CPU s (median) | wall s | frames/s per core | ratio to reference | F1 | precision | recall |")
        print("|---|---|---|---|---|---|---|---|")
        ref = statistics.median(cpu[("reference", "spot")])
        for name in trees:
            c, w, q = statistics.median(cpu[(name, "spot")]), statistics.median(wall[(name, "spot")]), \
                quality[(name, "spot")]
            print(f"| {name} | {c:.1f} | {w:.1f} | {frames / c:.0f} | {ref / c:.2f}x | {q['f1']:.3f} | "
                  f"{q['precision']:.3f} | {q['recall']:.3f} |")
    print("\nSteady state (one process, after imports and model loading; the CLI figures above include them):\n")
    print("| tree | process CPU s / sample | ratio | spot frames/s per core | ratio |")
    print("|---|---|---|---|---|")
    med = {}
    for name in trees:
        if "process" in steps:
            med[(name, "process")] = statistics.median(r["cpu"] / r["samples"] for r in inner[(name, "process")])
        if "spot" in steps:
            med[(name, "spot")] = statistics.median(r["frames"] / r["cpu"] for r in inner[(name, "spot")])
    for name in trees:
        cells = []
        if "process" in steps:
            cells += [f"{med[(name, 'process')]:.2f}", f"{med[('reference', 'process')] / med[(name, 'process')]:.2f}x"]
        else:
            cells += ["", ""]
        if "spot" in steps:
            cells += [f"{med[(name, 'spot')]:.0f}", f"{med[(name, 'spot')] / med[('reference', 'spot')]:.2f}x"]
        else:
            cells += ["", ""]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nraw CPU seconds:", json.dumps({f"{t}/{s}": v for (t, s), v in cpu.items()}))
    print("raw steady:", json.dumps({f"{t}/{s}": v for (t, s), v in inner.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
