"""CLI verbs of the offline path: ``station code``, ``spot``, ``agree``, ``process``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from station.checks import StationError, check_choice, check_positive, check_writable_dir
from station.console import console, print_ok, print_warning


def register(subparsers) -> None:
    _register_code(subparsers)
    _register_spot(subparsers)
    _register_agree(subparsers)
    _register_process(subparsers)


def trial_files(inputs: list[str]) -> list[Path]:
    """Trial files named directly or found under session / dataset folders (sorted, unique)."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.is_file() and (q.name.endswith(".h5") or q.name.endswith(".h5.writing")))
        elif p.exists():
            found.append(p)
        else:
            raise StationError(f"{item!r} is neither a trial file nor a folder of trials.")
    unique = sorted(dict.fromkeys(found))
    if not unique:
        raise StationError(f"no trial files (*.h5) in {', '.join(repr(i) for i in inputs)}.")
    return unique


# -- code --------------------------------------------------------------------------------------
def _register_code(sub) -> None:
    p = sub.add_parser("code", help="code a trial frame by frame: onset, apex, offset, AUs (window)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=_code_help())
    p.add_argument("trial", help="trial HDF5 file")
    p.add_argument("--coder", required=True, help="coder name; annotations go to CODER.csv (see --out)")
    p.add_argument("--out", default=None, help="coding CSV (default: codings/<coder>.csv next to the trial's folder)")
    p.add_argument("--candidates", default=None, help="candidates CSV from `station spot` to jump between "
                   "(default: spotted on the fly when absent)")
    p.add_argument("--script", default=None, help="file of keys to play instead of the keyboard "
                   "(one token per line or space-separated: d, a, o, k, f, enter, esc, text:1+2, ...)")
    p.add_argument("--speed", type=float, default=0.25, help="slow-motion playback factor (default 0.25)")
    p.add_argument("--snapshot", default=None, help="save the last drawn window as this PNG when leaving")
    p.set_defaults(func=_run_code)


def _code_help() -> str:
    from station.process.coding_ui import KEY_HELP

    return "Browse a trial frame by frame and code micro-expressions.\n\nkeys:\n" + KEY_HELP


def _run_code(args) -> int:
    from station.process.coding_ui import CodingSession, script_keys

    trial = Path(args.trial)
    out = Path(args.out) if args.out else trial.parent / "codings" / f"{args.coder}.csv"
    keys = script_keys(args.script) if args.script else None
    session = CodingSession(trial, args.coder, out, candidates=args.candidates, speed=args.speed)
    result = session.run(keys, snapshot=args.snapshot)
    print_ok(f"{result['annotations']} annotation(s) for {trial.name} in {out} (stopped at frame index {result['index']})")
    return 0


# -- spot --------------------------------------------------------------------------------------
def _register_spot(sub) -> None:
    p = sub.add_parser("spot", help="propose candidate micro-movement intervals per trial",
                       description="Spot candidate micro-movements (feature difference in facial regions), "
                       "flag macro-expressions and blinks, and, for synthetic trials, score them against "
                       "the ground truth with the MEGC rule (a hit has IoU >= 0.5).")
    p.add_argument("trials", nargs="+", help="trial files or folders of trials")
    p.add_argument("--out", default="candidates.csv", help="candidates CSV (default candidates.csv)")
    p.add_argument("--rules", default=None, help="rules YAML (macro threshold; default station/process/rules.yaml)")
    p.add_argument("--jobs", type=int, default=1, help="trials spotted in parallel (worker processes)")
    p.set_defaults(func=_run_spot)


def _run_spot(args) -> int:
    from station.process.spotting import evaluate_spotting, spot_trials, write_candidates

    paths = trial_files(args.trials)
    results, problems = spot_trials(paths, args.rules, n_jobs=args.jobs)
    out = write_candidates(args.out, results)
    print_ok(f"{sum(len(r.candidates) for r in results)} candidate(s) from {len(results)} trial(s) -> {out}")
    scores = evaluate_spotting(results)
    if scores is not None:
        console.print(f"MEGC spotting against ground truth (IoU >= 0.5): precision {scores['precision']:.3f}, "
                      f"recall {scores['recall']:.3f}, F1 {scores['f1']:.3f} "
                      f"(TP {scores['tp']}, FP {scores['fp']}, FN {scores['fn']})")
    for problem in problems:
        print_warning(problem)
    return 1 if problems else 0


# -- agree -------------------------------------------------------------------------------------
def _register_agree(sub) -> None:
    p = sub.add_parser("agree", help="inter-coder reliability (eq. 1), disagreements, final coding",
                       description="Pair two coders' movements, compute R = 2*AU(C1,C2)/AU_all per sample and "
                       "overall (paper eq. 1), list the disagreements to arbitrate (disagreements.csv, with "
                       "an empty 'decision' column) and write the merged final coding (final.csv). After "
                       "arbitration, run again with --arbitration disagreements.csv.")
    p.add_argument("coder1")
    p.add_argument("coder2")
    p.add_argument("--out", default=".", help="folder for reliability.csv, disagreements.csv, final.csv")
    p.add_argument("--arbitration", default=None, help="disagreements.csv with the 'decision' column filled in")
    p.add_argument("--unresolved", default="drop", choices=("drop", "keep"),
                   help="undecided disputed AUs/movements: drop (intersection, default) or keep (union)")
    p.add_argument("--frame-tolerance", type=int, default=2,
                   help="onset/apex/offset within this many frames are averaged, not disputed (default 2)")
    p.set_defaults(func=_run_agree)


def _run_agree(args) -> int:
    import csv

    from station.process import agreement
    from station.process.coding import read_coding, write_coding

    first, second = read_coding(args.coder1), read_coding(args.coder2)
    report = agreement.compare(first, second, args.frame_tolerance)
    decisions = agreement.read_arbitration(args.arbitration) if args.arbitration else None
    final, pending = agreement.merge(report, decisions, args.unresolved)
    out = check_writable_dir(args.out)
    with open(out / "reliability.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["trial", "pair", "coder1_aus", "coder2_aus", "agreed", "au_all", "R"])
        for p in report.pairs:
            w.writerow([p.trial, p.pair, p.first.aus if p.first else "", p.second.aus if p.second else "",
                        p.agreed, p.total, f"{p.reliability:.3f}"])
        w.writerow(["ALL", "", "", "", sum(p.agreed for p in report.pairs), sum(p.total for p in report.pairs),
                    f"{report.overall:.3f}"])
    agreement.write_disagreements(out / "disagreements.csv", report.disagreements)
    write_coding(out / "final.csv", final)
    console.print(f"reliability R = {report.overall:.3f} over {len(report.pairs)} movement(s) "
                  f"(mean per sample {report.mean_per_sample:.3f}); {len(report.disagreements)} disagreement(s) "
                  f"-> {out / 'disagreements.csv'}")
    if pending:
        print_warning(f"{len(pending)} disagreement(s) undecided, resolved by --unresolved {args.unresolved}; "
                      "fill the 'decision' column and rerun with --arbitration.")
    print_ok(f"final coding: {len(final)} movement(s) -> {out / 'final.csv'}")
    return 0


# -- process -----------------------------------------------------------------------------------
def _register_process(sub) -> None:
    p = sub.add_parser("process", help="select samples, preprocess 2D and 3D, export the database",
                       description="From trial files and the final coding to the database: duration rule on "
                       "device timestamps, objective / non-objective classes (rules YAML), 49 landmarks, "
                       "alignment and 6x6-block crop, librealsense depth filters, point clouds aligned to "
                       "color, 100 mm spherical crop, ICP to the first frame; writes PNG, PLY, one HDF5 per "
                       "sample and micro-expression.xlsx/.csv. Bad trials or samples are skipped with a "
                       "message naming file and frame; the summary lists them.")
    p.add_argument("inputs", nargs="+", help="session folders, dataset folders or trial files")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--coding", help="final coding CSV (from `station agree`)")
    src.add_argument("--from-ground-truth", action="store_true",
                     help="use the synthetic ground truth of each trial as the coding (no coders needed)")
    p.add_argument("--out", required=True, help="database folder to write")
    p.add_argument("--rules", default=None, help="selection/label rules YAML (default station/process/rules.yaml)")
    p.add_argument("--jobs", type=int, default=1, help="trials processed in parallel on this machine (worker processes)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (tcp://host:8786): process the "
                   "trials on that cluster instead")
    p.add_argument("--no-png", action="store_true", help="skip the per-frame PNG sequences")
    p.add_argument("--no-ply", action="store_true", help="skip the per-frame PLY clouds")
    p.add_argument("--icp", default="point_to_plane", help="ICP variant: point_to_plane (default) or point_to_point")
    p.set_defaults(func=_run_process)


def _run_process(args) -> int:
    from rich.progress import Progress

    from station.dataset import write_index
    from station.process.coding import read_coding, trial_key
    from station.process.export import ProcessOptions, SampleSpec, Skip, ground_truth_specs
    from station.process.parallel import run_trials
    from station.process.selection import load_rules

    check_choice(args.icp, ("point_to_plane", "point_to_point"), "--icp")
    check_positive(args.jobs, "--jobs", integer=True)
    load_rules(args.rules)  # fail before any work if the rules file is wrong
    paths = trial_files(args.inputs)
    out = check_writable_dir(args.out, "database folder")
    jobs, skipped = [], []
    if args.coding:
        coding = read_coding(args.coding, strict=False)
        by_trial: dict[str, list] = {}
        for ann in coding:
            by_trial.setdefault(ann.trial, []).append(SampleSpec(ann))
        known = {trial_key(p) for p in paths}
        for trial in sorted(set(by_trial) - known):
            skipped.append(Skip(args.coding, f"codes trial {trial!r}, which is not among the inputs"))
        jobs = [(str(p), by_trial.get(trial_key(p), [])) for p in paths if trial_key(p) in by_trial]
    else:
        for p in paths:
            try:
                jobs.append((str(p), ground_truth_specs(p)))
            except Exception as err:  # noqa: BLE001 - a damaged file must not stop the others
                skipped.append(Skip(str(p), f"ground truth unreadable: {err}"))
    options = ProcessOptions(out=str(out), rules=args.rules, write_png=not args.no_png, write_ply=not args.no_ply,
                             icp_method=args.icp)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("processing trials", total=len(jobs))
        outcomes = run_trials(jobs, options, n_jobs=args.jobs, scheduler=args.scheduler,
                              on_done=lambda o: progress.advance(task))
    records = sorted((r for o in outcomes for r in o.records), key=lambda r: (r.subject, r.sample))
    csv_path, xlsx_path = write_index(out, records)
    skipped += [s for o in outcomes for s in o.skipped]
    metrics = [m for o in outcomes for m in o.metrics]
    report = {"samples": len(records), "trials": len(jobs), "metrics": metrics,
              "skipped": [vars(s) for s in skipped], "seconds_per_trial": [o.seconds for o in outcomes]}
    (out / "process-report.json").write_text(json.dumps(report, indent=1, default=float))
    _print_summary(records, skipped, metrics, xlsx_path)
    return 1 if any(s.kind == "error" for s in skipped) else 0


def _print_summary(records, skipped, metrics, xlsx_path) -> None:
    import numpy as np
    from rich.table import Table

    print_ok(f"{len(records)} sample(s) exported; index {xlsx_path}")
    if metrics:
        keys = [k for k in ("icp_fitness", "icp_rmse_mm", "rigid_drift_after_icp_mm", "lm2d_aligned_px", "lm3d_error_mm")
                if any(k in m for m in metrics)]
        console.print("  " + ", ".join(f"{k} {np.nanmean([m[k] for m in metrics if k in m]):.3f}" for k in keys))
    not_selected = [s for s in skipped if s.kind == "not selected"]
    errors = [s for s in skipped if s.kind == "error"]
    if not_selected:
        console.print(f"{len(not_selected)} coded movement(s) not selected by the duration rule.")
    if errors:
        table = Table(title=f"skipped ({len(errors)})", show_lines=False)
        table.add_column("file / frame")
        table.add_column("why")
        for s in errors:
            where = s.file + (f" frame {s.frame}" if s.frame is not None else "") + (f" [{s.sample}]" if s.sample else "")
            table.add_row(where, s.reason)
        console.print(table)
