"""`station process --jobs 2` as a lab runs it, against a reference checkout, in one run.

The whole command (start-up, planning, spawn workers, export, index), with the environment a
user has (no ``OMP_NUM_THREADS`` & co.: what the station does about threads is part of what is
measured), ``--no-png --no-ply`` as in the paper-scale chain.  Reference and new runs are
interleaved (ref, new, ref, new ...) under ``nice`` so the load of the shared machine hits both
alike; medians over ``--repeats``.  CPU is the command's and its workers'
(``RUSAGE_CHILDREN``); the load average is printed with each run.

Accuracy next to it: ICP RMSE, 3D and 2D landmark errors from each run's
``process-report.json``, and every array and attribute of every exported sample compared
between the reference's and the new export of the last repeat.

    git worktree add -f /tmp/ref-proc <commit-before>
    nice python bench/process_jobs.py --ref /tmp/ref-proc --data /tmp/feat6/synth --repeats 2

The paper-scale projection is CPU seconds per sample x 419 samples / 2 cores (both workers
busy), plus the command's serial start and end measured here.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import THREAD_VARS, children_cpu_s, ref_data_parser, scratch

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]
PAPER_SAMPLES = 419


def run(tree: Path, data: Path, db: Path, jobs: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env["PYTHONPATH"] = str(tree)
    before = children_cpu_s()
    load = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.run(["nice", "-n", "5", sys.executable, "-m", "station.cli", "process", str(data),
                           "--from-ground-truth", "--out", str(db), "--no-png", "--no-ply", "--jobs", str(jobs)],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=7200)
    wall = time.perf_counter() - started
    cpu = children_cpu_s() - before
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{tree}: station process failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    report = json.loads((db / "process-report.json").read_text())
    out = {"cpu": cpu, "wall": wall,
           "load": load, "samples": report["samples"],
           "trial_seconds": sum(report.get("seconds_per_trial", []))}
    for key in ("icp_rmse_mm", "icp_fitness", "lm3d_error_mm", "lm2d_aligned_px"):
        values = [m[key] for m in report["metrics"] if key in m]
        out[key] = float(np.nanmean(values)) if values else float("nan")
    return out


def compare_exports(a: Path, b: Path) -> dict:
    """How many samples, arrays and attributes differ between two exports (and by how much)."""
    names_a = sorted(p.relative_to(a) for p in (a / "samples").rglob("*.h5"))
    names_b = sorted(p.relative_to(b) for p in (b / "samples").rglob("*.h5"))
    out = {"samples": len(names_a), "same_names": names_a == names_b, "arrays": 0, "identical_arrays": 0,
           "max_abs_diff": {}, "attrs_differ": 0}
    for rel in set(names_a) & set(names_b):
        with h5py.File(a / rel) as x, h5py.File(b / rel) as y:
            for name in x:
                u, v = x[name][...], y[name][...]
                out["arrays"] += 1
                if u.shape == v.shape and np.array_equal(u, v, equal_nan=True):
                    out["identical_arrays"] += 1
                else:
                    diff = float(np.nanmax(np.abs(u.astype(float) - v.astype(float)))) if u.shape == v.shape else float("inf")
                    out["max_abs_diff"][name] = max(out["max_abs_diff"].get(name, 0.0), diff)
            out["attrs_differ"] += sum(str(x.attrs[k]) != str(y.attrs.get(k)) for k in x.attrs if k != "trial_file")
    return out


def main() -> int:
    parser = ref_data_parser(__doc__, repeats=2)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    trees = {"reference": args.ref.resolve(), "new": REPO}
    runs: dict = {name: [] for name in trees}
    with scratch("process-jobs-") as work:
        for rep in range(args.repeats):
            for name, tree in trees.items():
                db = work / f"{name}-{rep}"
                runs[name].append(run(tree, args.data, db, args.jobs))
                print(f"{name} {rep}: " + json.dumps(runs[name][-1]), flush=True)
                if rep < args.repeats - 1:
                    shutil.rmtree(db)
        same = compare_exports(work / f"reference-{args.repeats - 1}", work / f"new-{args.repeats - 1}")
    print(f"\ndata {args.data}; --jobs {args.jobs}; {args.repeats} interleaved repeats, medians; "
          f"load average at the runs' starts {min(r['load'] for v in runs.values() for r in v):.1f}-"
          f"{max(r['load'] for v in runs.values() for r in v):.1f}\n")
    print("| `station process --jobs 2` | CPU s | wall s | samples | CPU s / sample | CPU ratio | wall ratio | "
          "paper scale projected, 2 idle cores | ICP RMSE mm | 3D landmarks mm | 2D landmarks px | ICP fitness |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    med = {n: {k: statistics.median(r[k] for r in v) for k in ("cpu", "wall")} for n, v in runs.items()}
    for name, values in runs.items():
        q, c, w = values[-1], med[name]["cpu"], med[name]["wall"]
        per = c / max(q["samples"], 1)
        print(f"| {name} | {c:.1f} | {w:.1f} | {q['samples']} | {per:.2f} | {med['reference']['cpu'] / c:.2f}x | "
              f"{med['reference']['wall'] / w:.2f}x | {per * PAPER_SAMPLES / 2:.0f} s | {q['icp_rmse_mm']:.3f} | "
              f"{q['lm3d_error_mm']:.3f} | {q['lm2d_aligned_px']:.3f} | {q['icp_fitness']:.4f} |")
    print(f"\nexports of the last repeat, reference vs new: {same['samples']} samples, names "
          f"{'the same' if same['same_names'] else 'DIFFERENT'}, {same['identical_arrays']} of {same['arrays']} "
          f"arrays identical, max |difference| {same['max_abs_diff'] or 'none'}, "
          f"{same['attrs_differ']} attribute(s) differ")
    print("raw:", json.dumps(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
