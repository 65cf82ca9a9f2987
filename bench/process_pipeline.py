"""Benchmark of the offline path on a synthetic dataset: spotting F1, landmark and ICP errors,
index vs ground truth, reliability and the coding tool round trip.

    python bench/process_pipeline.py --data DATA --db DB [--make --subjects 6 --samples 24]

``--make`` first writes the dataset with ``station synth dataset``.  Prints a markdown report
(also written to ``DB/bench-process.md``) with the figures docs/benchmarks.md quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def station(*args: str, timeout: float = 7200) -> tuple[int, str, float]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "station.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - started


def expected_samples(trials: list[Path]) -> set[tuple]:
    """Ground-truth movements (micro and macro) that pass the duration rule of rules.yaml."""
    from station.process.export import ground_truth_specs
    from station.process.selection import durations_ms, is_micro, load_rules, strip_uncoded
    from station.record import schema
    from station.record.writer import open_trial

    rules = load_rules()
    out = set()
    for path in trials:
        with open_trial(path) as f:
            table = schema.frames_table(f)
            subject = schema.read_identity(f, path).participant  # the index's Participant column
        for spec in ground_truth_specs(path):
            a = spec.annotation
            total, onset = durations_ms(schema.timestamps_ms(table), schema.frame_numbers(table),
                                        a.onset, a.apex, a.offset)
            if is_micro(total, onset, rules):
                out.add((subject, a.trial, a.onset, a.apex, a.offset, strip_uncoded(a.aus)))
    return out


def ground_truth_classes(trials: list[Path]) -> dict[tuple, str]:
    from station.process.coding import trial_key
    from station.record import schema
    from station.record.writer import open_trial, read_ground_truth

    classes = {}
    for path in trials:
        with open_trial(path) as f:
            subject = schema.read_identity(f, path).participant
            for ev in read_ground_truth(f):
                classes[(subject, trial_key(path), ev["onset"])] = ev.get("objective_class") or ""
    return classes


def simulated_coders(trials: list[Path], out: Path, seed: int = 0) -> tuple[Path, Path]:
    """Two coders from the ground truth: coder 2 shifts frames by +-1 and misses/adds an AU now and then.

    Each row keeps the trial's identity (trial id, participant, session) as `station code` writes
    it: every participant's trial is named trial-01.h5, so rows without it would be paired across
    participants by file name alone (`station agree` warns about exactly that).
    """
    from dataclasses import replace

    from station.process.coding import write_coding
    from station.process.export import ground_truth_specs

    rng = np.random.default_rng(seed)
    first, second = [], []
    extra = [5, 6, 7, 9, 10, 14, 17, 25]
    for path in trials:
        for spec in ground_truth_specs(path):
            a = spec.annotation
            first.append(replace(a, coder="coder1", notes=""))
            aus = a.aus.split("+")
            if len(aus) > 1 and rng.random() < 0.3:
                aus.pop(int(rng.integers(len(aus))))
            if rng.random() < 0.2:
                aus.append(str(rng.choice([e for e in extra if str(e) not in aus])))
            jitter = rng.integers(-1, 2, size=3)
            on, ap, off = a.onset + jitter[0], a.apex + jitter[1], a.offset + jitter[2]
            on, off = min(on, ap), max(off, ap)
            second.append(replace(a, coder="coder2", notes="", onset=int(on), apex=int(ap), offset=int(off),
                                  aus="+".join(aus)))
    return write_coding(out / "coder1.csv", first), write_coding(out / "coder2.csv", second)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--make", action="store_true")
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--steps", default="spot,process,agree,code",
                        help="comma-separated subset of spot, process, agree, code (default all)")
    args = parser.parse_args()
    steps = set(args.steps.split(","))
    data, db = Path(args.data), Path(args.db)
    report: dict = {}
    if args.make:
        code, text, secs = station("synth", "dataset", "--subjects", str(args.subjects), "--samples", str(args.samples),
                                   "--out", str(data), "--seed", "1")
        assert code == 0, text
        report["synth_seconds"] = secs
    from station.process.commands import trial_files

    trials = trial_files([str(data)])
    db.mkdir(parents=True, exist_ok=True)
    previous = db / "bench-process.json"
    if previous.exists():
        report = {**json.loads(previous.read_text()), **report}
    if "spot" in steps:
        spot_step(args, data, db, trials, report)
    if "process" in steps:
        process_step(args, data, db, trials, report)
    if "agree" in steps:
        c1, c2 = simulated_coders(trials, db)
        code, text, _ = station("agree", str(c1), str(c2), "--out", str(db / "agree"))
        report["agree"] = {"exit": code, "output": " ".join(text.split())[:400]}
    if "code" in steps:
        code_step(db, trials, report)
    (db / "bench-process.json").write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps(report, indent=1, default=str))
    return 0


def spot_step(args, data, db, trials, report) -> None:
    code, text, secs = station("spot", str(data), "--out", str(db / "candidates.csv"), "--jobs", str(args.jobs))
    report["spot"] = {"exit": code, "seconds": secs, "output": text.strip().splitlines()[-3:]}
    from station.process.spotting import evaluate_spotting

    results = []  # the CLI spotted; score its CSV against the ground truth
    import csv

    with open(db / "candidates.csv") as fh:
        rows = list(csv.DictReader(fh))
    from station.process.spotting import Candidate, SpotResult
    from station.record.writer import open_trial, read_ground_truth

    for path in trials:
        with open_trial(path) as f:
            truth = read_ground_truth(f)
        from station.process.coding import trial_key

        cands = [Candidate(int(r["onset"]), int(r["apex"]), int(r["offset"]), float(r["score"]), r["kind"])
                 for r in rows if r["path"] == str(path)]
        results.append(SpotResult(trial_key(path), str(path), cands, np.zeros(0), np.zeros(0), truth))
    report["spot_scores_micro"] = evaluate_spotting(results, ("micro",))
    all_moves = [SpotResult(r.trial, r.path, r.candidates, r.frame_numbers, r.score,
                            [dict(e, kind="any") for e in r.truth]) for r in results]
    for r in all_moves:
        r.candidates = [type(c)(c.onset, c.apex, c.offset, c.score, "any") for c in r.candidates]
    report["spot_scores_any_movement"] = evaluate_spotting(all_moves, ("any",))
    blinks = [(c, r) for r in results for c in r.candidates if c.kind == "blink"]
    from station.process.agreement import interval_iou

    report["blink_flags_correct"] = sum(any(e["kind"] == "blink" and interval_iou((c.onset, c.offset), (e["onset"], e["offset"])) >= 0.5
                                            for e in r.truth) for c, r in blinks)
    report["blink_flags"] = len(blinks)
    report["blinks_truth"] = sum(e["kind"] == "blink" for r in results for e in r.truth)
    from station.record.schema import readable_frames

    report["frames"] = 0
    for p in trials:
        with open_trial(p) as f:
            report["frames"] += readable_frames(f)
    half = len(results) // 2  # thresholds were tuned on the first half of the subjects
    report["spot_scores_micro_tuning_half"] = evaluate_spotting(results[:half], ("micro",))
    report["spot_scores_micro_held_out_half"] = evaluate_spotting(results[half:], ("micro",))


def process_step(args, data, db, trials, report) -> None:
    out_db = db / "database"
    code, text, secs = station("process", str(data), "--from-ground-truth", "--out", str(out_db), "--jobs", str(args.jobs))
    report["process"] = {"exit": code, "seconds": secs, "tail": text.strip().splitlines()[-4:]}
    from station.dataset import read_index

    index = read_index(out_db)
    got = {(r.participant, r.trial, r.onset, r.apex, r.offset, r.aus) for r in index}
    want = expected_samples(trials)
    report["index"] = {"rows": len(index), "expected": len(want), "matching": len(got & want),
                       "missing": sorted(map(list, want - got)), "unexpected": sorted(map(list, got - want))}
    classes = ground_truth_classes(trials)
    report["objective_class_agreement"] = float(np.mean([classes.get((r.participant, r.trial, r.onset)) == r.objective_class
                                                         for r in index])) if index else float("nan")
    report["objective_class_disagreements"] = [(r.sample, r.aus, r.objective_class, classes.get((r.participant, r.trial, r.onset)))
                                               for r in index if classes.get((r.participant, r.trial, r.onset)) != r.objective_class]
    metrics = json.loads((out_db / "process-report.json").read_text())["metrics"]
    for key in ("lm2d_raw_px", "lm2d_aligned_px", "lm2d_nme", "lm3d_error_mm", "icp_fitness", "icp_rmse_mm",
                "rigid_drift_before_icp_mm", "rigid_drift_after_icp_mm"):
        values = [m[key] for m in metrics if key in m]
        report.setdefault("quality", {})[key] = {"mean": float(np.nanmean(values)), "max": float(np.nanmax(values))} \
            if values else None
    seconds = json.loads((out_db / "process-report.json").read_text())["seconds_per_trial"]
    report["process_seconds_per_trial"] = float(np.mean(seconds))
    report["process_samples_frames"] = int(sum(m["frames"] for m in metrics))


def code_step(db, trials, report) -> None:
    script = db / "keys.txt"
    script.write_text("D o d d d d k d d d d f u text:1+2 enter t text:bench enter enter q\n")
    out_csv = db / "coder-ui.csv"
    for stale in (out_csv, out_csv.with_name(out_csv.name + ".cursor.json")):
        if stale.exists():
            stale.unlink()
    env_display = os.environ.get("DISPLAY")
    cmd = ["code", str(trials[0]), "--coder", "bench", "--out", str(out_csv), "--script", str(script)]
    if env_display:
        code, _, _ = station(*cmd)
    else:
        proc = subprocess.run(["xvfb-run", "-a", sys.executable, "-m", "station.cli", *cmd], cwd=REPO,
                              capture_output=True, text=True, timeout=600)
        code = proc.returncode
    from station.process.coding import read_coding

    rows = read_coding(out_csv) if out_csv.exists() else []
    report["coding_round_trip"] = {"exit": code, "rows": [(r.onset, r.apex, r.offset, r.aus, r.notes) for r in rows]}


if __name__ == "__main__":
    sys.exit(main())
