"""CLI verbs of the offline path: ``station code``, ``spot``, ``agree``, ``process``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from station.checks import StationError, check_choice, check_positive, check_writable_dir
from station.console import console, print_error, print_ok, print_warning


def register(subparsers) -> None:
    _register_code(subparsers)
    _register_view(subparsers)
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
    p.add_argument("trials", nargs="+", help="trial HDF5 file(s) or folders of trials, coded one after "
                   "another (keys . and , move to the next / previous trial)")
    p.add_argument("--coder", required=True, help="coder name; annotations go to CODER.csv (see --out)")
    p.add_argument("--out", default=None, help="coding CSV (default: codings/<coder>.csv inside the trial's "
                   "folder, created if needed); one file may hold many trials, told apart by trial id")
    p.add_argument("--candidates", default=None, help="candidates CSV from `station spot` to jump between "
                   "(default: candidates.csv in the trial's folder when present)")
    p.add_argument("--rate", default="1/4", help="playback rate: 1, 1/2, 1/4, 1/8 or 1/16 (default 1/4; "
                   "keys 1-5 change it while coding)")
    p.add_argument("--script", default=None, help="file of keys and clicks to play into the window instead "
                   "of a person (tokens: d, a, o, k, f, enter, esc, up, down, ctrl+z, text:1+2, click:FRAME, ...)")
    p.add_argument("--snapshot", default=None, help="save the window as this PNG when leaving")
    p.set_defaults(func=_run_code)


def _code_help() -> str:
    from station.gui.keys import CODING_KEYS, key_table

    return ("Browse a trial frame by frame and code micro-expressions (PyQt6 window).\n\n"
            "Every change is saved at once; the next session opens where the coder left.\n\nkeys:\n"
            + key_table(CODING_KEYS))


def _run_code(args) -> int:
    from station.gui.coding_window import run_coding

    trials = trial_files(args.trials)
    for result in run_coding(trials, args.coder, args.out, candidates=args.candidates, rate=args.rate,
                             script=args.script, snapshot=args.snapshot):
        print_ok(f"{result['annotations']} movement(s) coded for {result['trial']} in {result['out']} "
                 f"(stopped at frame {result['frame']})")
    return 0


# -- view --------------------------------------------------------------------------------------
def _register_view(sub) -> None:
    p = sub.add_parser("view", help="look at a trial: colour and depth, markers, drops, point cloud, MP4",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=_view_help())
    p.add_argument("trial", help="trial HDF5 file")
    p.add_argument("--export", default=None, metavar="MP4", help="write frames --start..--end to this MP4 "
                   "(colour and depth side by side, timestamps burnt in) and exit without a window")
    p.add_argument("--start", type=int, default=None, help="first device frame number to export (default: first)")
    p.add_argument("--end", type=int, default=None, help="last device frame number to export (default: last)")
    p.add_argument("--no-depth", action="store_true", help="export colour only")
    p.add_argument("--rate", default="1", help="playback rate, and of the exported video: 1, 1/2, 1/4, 1/8, "
                   "1/16 (default 1; 1/4 shows a micro-expression slowed down for a talk)")
    p.add_argument("--script", default=None, help="file of keys to play into the window (as for `station code`)")
    p.add_argument("--snapshot", default=None, help="save the window as this PNG when leaving")
    p.set_defaults(func=_run_view)


def _view_help() -> str:
    from station.gui.keys import VIEWER_KEYS, key_table

    return ("Colour and depth side by side with device timestamps, protocol markers and dropped frames on "
            "the timeline; the current frame's point cloud in an open3d window (key 3); export of a frame "
            "range to MP4 (keys [ and ] set it, e writes it, or --export without a window).\n\nkeys:\n"
            + key_table(VIEWER_KEYS))


def _run_view(args) -> int:
    if args.export:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        from station.gui.export import export_mp4
        from station.gui.keys import parse_rate

        with Progress(TextColumn("exporting"), BarColumn(), TextColumn("{task.completed}/{task.total} frames"),
                      TimeRemainingColumn(), console=console, transient=True) as progress:
            task = progress.add_task("export", total=None)
            result = export_mp4(args.trial, args.export, start=args.start, end=args.end, depth=not args.no_depth,
                                rate=parse_rate(args.rate), progress=lambda done, total: progress.update(task, completed=done, total=total))
        print_ok(f"{result['frames']} frame(s) {result['first']}..{result['last']} -> {result['path']} "
                 f"({result['seconds']:.1f} s of video at {result['fps']:g} fps)")
        return 0
    from station.gui.viewer import run_viewer

    run_viewer(args.trial, rate=args.rate, script=args.script, snapshot=args.snapshot)
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

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from station.process.spotting import scores_path, write_score_curves

    paths = trial_files(args.trials)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as progress:
        results, problems = spot_trials(paths, args.rules, n_jobs=args.jobs, progress=progress)
    out = write_candidates(args.out, results)
    curves = write_score_curves(scores_path(out), results)
    print_ok(f"{sum(len(r.candidates) for r in results)} candidate(s) from {len(results)} trial(s) -> {out} "
             f"(score curves: {curves})")
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
                       description="Pair two coders' movements per trial (by trial id), compute R = "
                       "2*AU(C1,C2)/AU_all per movement and pooled (paper eq. 1), agreement per AU and Cohen's "
                       "kappa on AU presence; list every disagreement to arbitrate - a movement one coder "
                       "missed, onset/apex/offset, an AU, its laterality (L/R/bilateral) or intensity (A-E) - in "
                       "disagreements.csv with empty 'decision' and 'decided_by' columns; write the merged "
                       "final coding (final.csv; frames averaged, half up). After arbitration, run again with "
                       "--arbitration disagreements.csv: the decisions applied and who made them go to "
                       "arbitration.csv.")
    p.add_argument("coder1")
    p.add_argument("coder2")
    p.add_argument("--out", default=".", help="folder for reliability.csv, au_agreement.csv, disagreements.csv, "
                   "final.csv (and arbitration.csv)")
    p.add_argument("--arbitration", default=None, help="disagreements.csv with 'decision' (and 'decided_by') filled in")
    p.add_argument("--arbiter", default=None, help="name recorded for decisions whose 'decided_by' is empty")
    p.add_argument("--unresolved", default="drop", choices=("drop", "keep"),
                   help="undecided disputed AUs/movements: drop (intersection, default) or keep (union)")
    p.add_argument("--frame-tolerance", type=int, default=2,
                   help="onset/apex/offset within this many frames are averaged, not disputed (default 2)")
    p.set_defaults(func=_run_agree)


def _run_agree(args) -> int:
    import math

    from rich.table import Table

    from station.process import agreement
    from station.process.coding import read_coding, write_coding

    first, second = read_coding(args.coder1), read_coding(args.coder2)
    agreement.check_one_trial_per_name(first, args.coder1)
    agreement.check_one_trial_per_name(second, args.coder2)
    anonymous = [a for a in first + second if not a.trial_id and not a.participant]
    if anonymous:
        print_warning(f"{len(anonymous)} row(s) say neither trial id nor participant (coding files older than "
                      "trial ids): they are paired by file name alone, which repeats across participants and "
                      "sessions. Open each trial once in `station code` with the coding file in the trial's "
                      "codings/ folder to link them, then rerun.")
    report = agreement.compare(first, second, args.frame_tolerance)
    decisions = agreement.read_arbitration(args.arbitration, args.arbiter) if args.arbitration else None
    final, pending, applied = agreement.merge(report, decisions, args.unresolved)
    out = check_writable_dir(args.out)
    fmt = lambda x: "" if math.isnan(x) else f"{x:.3f}"  # noqa: E731
    rows = [dict(trial_id=(p.first or p.second).trial_id, participant=(p.first or p.second).participant,
                 session=(p.first or p.second).session, trial=p.trial, pair=p.pair,
                 coder1_aus=p.first.aus if p.first else "", coder2_aus=p.second.aus if p.second else "",
                 agreed=p.agreed, au_all=p.total, R=fmt(p.reliability)) for p in report.pairs]
    rows.append(dict(trial="ALL", agreed=sum(p.agreed for p in report.pairs),
                     au_all=sum(p.total for p in report.pairs), R=fmt(report.overall)))
    agreement.write_rows(out / "reliability.csv", rows, ("trial_id", "participant", "session", "trial", "pair",
                                                         "coder1_aus", "coder2_aus", "agreed", "au_all", "R"))
    agreement.write_rows(out / "au_agreement.csv",
                         [dict(au=a.number, both=a.both, only_coder1=a.only1, only_coder2=a.only2, neither=a.neither,
                               agreement=fmt(a.agreement), kappa=fmt(a.kappa)) for a in report.per_au],
                         ("au", "both", "only_coder1", "only_coder2", "neither", "agreement", "kappa"))
    decided = {(a["pair"], a["field"]): a for a in applied}
    rows = [{**d, **({k: decided[(d["pair"], d["field"])][k] for k in ("decision", "decided_by")}
                     if (d["pair"], d["field"]) in decided else {})} for d in report.disagreements]
    backup = _keep_decisions(out / "disagreements.csv")
    agreement.write_disagreements(out / "disagreements.csv", rows)
    if applied:
        agreement.write_rows(out / "arbitration.csv", applied, agreement.ARBITRATION_COLUMNS)
    write_coding(out / "final.csv", final)
    console.print(f"[bold]reliability R = {fmt(report.overall) or 'undefined (no AU scored)'}[/bold] (paper eq. 1, "
                  f"pooled over {len(report.pairs)} movement(s); mean per movement {fmt(report.mean_per_sample) or 'n/a'}); "
                  f"Cohen's kappa on AU presence {fmt(report.kappa) or 'n/a'}")
    if report.per_au:
        table = Table(title="agreement per AU")
        for col in ("AU", "both", "only 1", "only 2", "agreement", "kappa"):
            table.add_column(col, justify="right")
        for a in report.per_au:
            table.add_row(str(a.number), str(a.both), str(a.only1), str(a.only2), fmt(a.agreement), fmt(a.kappa) or "n/a")
        console.print(table)
    kinds = ("movement", "onset", "apex", "offset", "presence", "side", "intensity")
    console.print(f"{len(report.disagreements)} disagreement(s) -> {out / 'disagreements.csv'}: "
                  + ", ".join(f"{k} {report.count(k)}" for k in kinds))
    for d in report.disagreements:
        if agreement.field_kind(d["field"]) in ("side", "intensity"):
            console.print(f"  {d['participant'] or '?'} {d['trial']} pair {d['pair']}: {d['field']} "
                          f"coder 1 {d['coder1']} / coder 2 {d['coder2']}")
    if applied:
        console.print(f"{len(applied)} decision(s) applied, with who made them -> {out / 'arbitration.csv'}")
    if backup:
        console.print(f"the decisions already in {out / 'disagreements.csv'} were kept as {backup} "
                      "(the new file carries the decisions applied)")
    if pending:
        print_warning(f"{len(pending)} disagreement(s) undecided: AUs and movements resolved by --unresolved "
                      f"{args.unresolved}, differing sides/intensities left unspecified; fill 'decision' and "
                      "'decided_by' and rerun with --arbitration.")
    print_ok(f"final coding: {len(final)} movement(s) -> {out / 'final.csv'}")
    return 0


def _keep_decisions(path: Path) -> Path | None:
    """A disagreements file with decisions in it is the arbiters' work: copy it aside before the
    new one replaces it (``disagreements-<time>.csv``); returns the copy, or None if nothing was decided."""
    import datetime as dt
    import shutil

    from station.process.coding import read_rows

    if not path.exists():
        return None
    try:
        decided = any(row.get("decision", "").strip() for _, row in read_rows(path, (), "disagreements file"))
    except StationError:
        decided = True  # unreadable: keep it rather than guess
    if not decided:
        return None
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.stem}-{stamp}.csv")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.stem}-{stamp}-{n}.csv")
    shutil.copy2(path, backup)
    return backup


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
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    from station.dataset import check_new_database, write_index
    from station.process.export import ProcessOptions, index_order, plan_jobs
    from station.process.parallel import run_trials
    from station.process.selection import load_rules

    check_choice(args.icp, ("point_to_plane", "point_to_point"), "--icp")
    check_positive(args.jobs, "--jobs", integer=True)
    load_rules(args.rules)  # fail before any work if the rules file is wrong
    paths = trial_files(args.inputs)
    out = check_new_database(check_writable_dir(args.out, "database folder"))
    plan = plan_jobs(paths, args.coding)  # codings matched to trials by trial_id; names for every trial
    jobs, skipped = plan.jobs, plan.skipped
    options = ProcessOptions(out=str(out), rules=args.rules, write_png=not args.no_png, write_ply=not args.no_ply,
                             icp_method=args.icp, naming=plan.naming)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("trials"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True) as progress:
        task = progress.add_task("processing", total=len(jobs))
        exported = [0]

        def done(outcome) -> None:
            exported[0] += len(outcome.records)
            progress.update(task, advance=1, description=f"processing ({exported[0]} samples exported)")

        outcomes = run_trials(jobs, options, n_jobs=args.jobs, scheduler=args.scheduler, on_done=done)
    records = index_order([r for o in outcomes for r in o.records])
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

    errors = [s for s in skipped if s.kind == "error"]
    line = f"{len(records)} sample(s) exported; index {xlsx_path}"
    if not errors:  # a tick only when nothing that should have been exported was lost
        print_ok(line)
    else:
        (print_warning if records else print_error)(f"{line}; {len(errors)} skipped for an error (below)")
    if metrics:
        keys = [k for k in ("icp_fitness", "icp_rmse_mm", "rigid_drift_after_icp_mm", "lm2d_aligned_px", "lm3d_error_mm")
                if any(k in m for m in metrics)]
        console.print("  " + ", ".join(f"{k} {np.nanmean([m[k] for m in metrics if k in m]):.3f}" for k in keys))
    not_selected = [s for s in skipped if s.kind == "not selected"]
    if not_selected:
        console.print(f"{len(not_selected)} coded movement(s) not selected by the duration rule.")
    if errors:
        table = Table(title=f"skipped ({len(errors)})", show_lines=False)
        table.add_column("file / frame", overflow="fold")  # wrapped whole, never cut to "…"
        table.add_column("why", overflow="fold")
        for s in errors:
            where = s.file + (f" frame {s.frame}" if s.frame is not None else "") + (f" [{s.sample}]" if s.sample else "")
            table.add_row(where, s.reason)
        console.print(table)
