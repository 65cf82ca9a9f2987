"""`station evaluate` speed, this tree against a reference worktree, same run, interleaved (issue #16 item 5).

Run:
    git worktree add /tmp/ref-eval <commit>         # the previous implementation
    nice python bench/evaluate_speed.py --ref /tmp/ref-eval --db DB [--db DB2] [--repeats 3] [--jobs 2]

Per database and repeat, in turn: the reference and this tree, each ``station evaluate DB --jobs N``
from scratch (a fresh feature cache), then each again with its cache warm (classification,
fusion and report only; features = cold - warm).  Wall seconds, CPU seconds of the command and
its workers, and the load average before each run; medians over repeats and the ratio
reference / new.  Then the identity check: results.csv, per_class_recall.csv and
table11_fusion.csv of both trees compared byte for byte (every accuracy, UF1, UAR, recall).

``--split N`` also times, in this process on one core, the per-sample parts of the features on N
samples of the first database (HDF5 load, LBP-TOP, SI/HK curvature), so the curvature's share
(station/features/curvature.py) can be told from the rest.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import children_cpu_s, scratch

ROOT = Path(__file__).resolve().parents[1]
COMPARED = ("results.csv", "per_class_recall.csv", "table11_fusion.csv")


def run(tree: Path, db: Path, out: Path, cache: Path, jobs: int, extra: list[str]) -> dict:
    """One ``station evaluate`` from ``tree``'s sources: wall, CPU (process + workers), load before."""
    load = os.getloadavg()[0]
    before = children_cpu_s()
    t = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(tree))
    subprocess.run([sys.executable, "-m", "station.cli", "evaluate", str(db), "--out", str(out), "--cache", str(cache),
                    "--jobs", str(jobs), *extra], check=True, cwd=tree, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    return {"wall": wall, "cpu": children_cpu_s() - before, "load": load}


def split(db: Path, n: int) -> None:
    """Per-sample CPU seconds of loading, LBP-TOP and curvature (one core, this tree)."""
    from threadpoolctl import threadpool_limits

    from station.evaluate.baseline import EvalOptions
    from station.evaluate.loaders import load_database
    from station.features.sample import curvature_of_sample, lbptop_grids_of_sample

    database = load_database(db)
    options = EvalOptions()
    refs = database.refs[:: max(1, len(database.refs) // n)][:n]
    total = {"load": 0.0, "lbptop": 0.0, "curvature": 0.0}
    with threadpool_limits(1):
        for ref in refs:
            t = time.process_time()
            sample = ref.load()
            total["load"] += time.process_time() - t
            t = time.process_time()
            lbptop_grids_of_sample(sample, options.lbptop, [(options.lbptop.rows, options.lbptop.cols,
                                                              options.lbptop.overlap)])
            total["lbptop"] += time.process_time() - t
            t = time.process_time()
            curvature_of_sample(sample, options.curvature)
            total["curvature"] += time.process_time() - t
    print(f"per-sample CPU on {len(refs)} samples of {db} (one core): "
          + ", ".join(f"{k} {v / len(refs):.3f} s" for k, v in total.items()), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", type=Path, required=True, help="reference worktree (the previous implementation)")
    ap.add_argument("--new", type=Path, default=ROOT, help="tree under test (default: this checkout)")
    ap.add_argument("--db", type=Path, action="append", required=True, help="database (repeatable)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    ap.add_argument("--split", type=int, default=0, help="also time the per-sample feature parts on N samples")
    ap.add_argument("--no-cold", action="store_true", help="only the warm-cache runs (classification + report)")
    ap.add_argument("extra", nargs="*", help="more `station evaluate` arguments (after --)")
    args = ap.parse_args()
    with scratch("evaluate-speed-", args.work) as work:
        compare(args, work)


def compare(args, work: Path) -> None:
    """Every database in ``args.db``: cold and warm runs of both trees, then their outputs compared."""
    trees = {"ref": args.ref.resolve(), "new": args.new.resolve()}
    for db in args.db:
        print(f"\n== {db} ({args.repeats} repeats, --jobs {args.jobs}) ==", flush=True)
        times: dict[tuple[str, str], list[dict]] = {}
        for r in range(args.repeats):
            for phase in (("warm",) if args.no_cold else ("cold", "warm")):
                for name, tree in trees.items():
                    out, cache = work / db.name / name, work / db.name / f"{name}-cache"
                    if phase == "cold" or not cache.exists():
                        shutil.rmtree(cache, ignore_errors=True)
                        if phase == "warm":  # --no-cold: fill the cache once, untimed
                            run(tree, db, out, cache, args.jobs, args.extra)
                    m = run(tree, db, out, cache, args.jobs, args.extra)
                    times.setdefault((phase, name), []).append(m)
                    print(f"  repeat {r + 1} {phase:4s} {name}: {m['wall']:6.1f} s wall, {m['cpu']:6.1f} CPU-s "
                          f"(load {m['load']:.1f})", flush=True)
        for phase in (("warm",) if args.no_cold else ("cold", "warm")):
            med = {n: {k: statistics.median(m[k] for m in times[(phase, n)]) for k in ("wall", "cpu")} for n in trees}
            print(f"  median {phase}: ref {med['ref']['wall']:.1f} s / {med['ref']['cpu']:.1f} CPU-s, new "
                  f"{med['new']['wall']:.1f} s / {med['new']['cpu']:.1f} CPU-s; ratio ref/new wall "
                  f"{med['ref']['wall'] / med['new']['wall']:.2f}, CPU {med['ref']['cpu'] / med['new']['cpu']:.2f}",
                  flush=True)
        for f in COMPARED:
            a, b = work / db.name / "ref" / f, work / db.name / "new" / f
            same = a.exists() and b.exists() and filecmp.cmp(a, b, shallow=False)
            print(f"  {f}: {'identical' if same else 'DIFFERENT'}", flush=True)
    if args.split:
        sys.path.insert(0, str(trees["new"]))  # the tree under test's station package
        split(args.db[0], args.split)


if __name__ == "__main__":
    main()
