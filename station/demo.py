"""``station demo``: the whole station, end to end, on the virtual D415.

What a lab does over weeks, in about three minutes, in under 600 MB, without hardware or
participants:

1. a participant session with ``protocols/demo.yaml`` (PsychoPy window, clip, self-report
   forms answered by a simulated participant) recorded from the virtual D415 at the paper's
   848x480 colour + depth at 60 fps.  ``--session short`` (default) shows one of the
   protocol's clips and records it without its baseline: 848x480@60 is 40 MB a second in
   LZ4, so the full three-clip session alone is ~0.9 GB (``--session full`` runs it);
2. an integrity check of every trial it recorded;
3. a small synthetic database of micro-expressions with ground truth, at 424x240 (a quarter
   of the bytes and of the processing of 848x480; the recorded demo session is too short
   to hold enough samples for a baseline);
4. spotting against that ground truth, then processing (2D and 3D preprocessing, export of
   the per-sample HDF5 files and the index; the PNG and PLY sequences, which repeat what the
   sample files hold, are left out: with them the demo passes 600 MB);
5. the baseline evaluation (LBP-TOP + curvature, SVM, LOSO and k-fold, fusion) and its report.

Each step runs the same verb a lab would type, so the demo is also a smoke test of the CLI.
A step that fails is reported and the steps that do not need its output still run; the
exit status is non-zero if any step failed.  Where the time and bytes go is printed at the
end (docs/benchmarks.md, "Whole chain").
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from station.checks import StationError
from station.console import console, print_ok, print_warning

STEPS = ("session", "check", "synth", "spot", "process", "evaluate")
DEMO_PROTOCOL = Path(__file__).resolve().parents[1] / "protocols" / "demo.yaml"
SYNTH_RESOLUTION = "424x240"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole station end to end on the virtual D415",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="sessions/demo",
                   help="folder for everything the demo makes (default sessions/demo; a new numbered "
                        "run folder is made inside, nothing is overwritten)")
    p.add_argument("--subjects", type=int, default=4, help="synthetic subjects in the database (default 4)")
    p.add_argument("--samples", type=int, default=24, help="synthetic micro-expressions in total (default 24)")
    p.add_argument("--session", choices=("short", "full"), default="short",
                   help="short (default): one clip of the demo protocol, recorded without its baseline; "
                        "full: the whole demo protocol (about 0.9 GB at 848x480@60)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes for spot and process (default 2)")
    p.add_argument("--skip", default="", help=f"comma-separated steps to skip, among {', '.join(STEPS)}")
    p.set_defaults(func=run_demo)


def _next_run_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    n = 1 + max((int(p.name.split("-")[1]) for p in root.glob("run-*") if p.name.split("-")[1].isdigit()),
                default=0)
    folder = root / f"run-{n:03d}"
    folder.mkdir()
    return folder


def _verb(*argv: str) -> int:
    """Run one ``station`` verb in this process; returns its exit status."""
    from station.cli import main

    console.rule(f"[bold]station {' '.join(argv)}")
    return main(list(argv))


def short_protocol(folder: Path, protocol: Path = DEMO_PROTOCOL) -> Path:
    """The demo protocol with its first clip only, recorded without the baseline (``--session short``).

    Everything else (instructions, order policy, rests, self-report forms, camera mode) is the
    protocol's own; the copy is written into the run folder so the session names it.
    """
    import yaml

    raw = yaml.safe_load(protocol.read_text(encoding="utf-8"))
    raw["name"] = f"{raw.get('name', 'demo')}-short"
    raw["description"] = f"station demo --session short: the first clip of {protocol.name}, its baseline not recorded."
    raw["stimuli"] = str((protocol.parent / raw["stimuli"]).resolve())
    raw["clips"] = list(raw["clips"])[:1]
    raw["record"] = {**raw.get("record", {}), "baseline": False}
    path = folder / "demo-short.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def run_demo(args: argparse.Namespace) -> int:
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(STEPS)
    if unknown:
        raise StationError(f"--skip accepts {', '.join(STEPS)}; got {', '.join(sorted(unknown))}.")
    out = _next_run_folder(Path(args.out))
    sessions, synth, db, report = out / "sessions", out / "synth", out / "database", out / "report"
    failed: list[str] = []
    timing: list[tuple[str, float, Path | None]] = []

    def step(name: str, *argv: str, where: Path | None = None) -> bool:
        started = time.perf_counter()
        code = _verb(*argv)
        timing.append((name, time.perf_counter() - started, where))
        if code:
            failed.append(f"{name}: `station {' '.join(argv)}` exited with status {code}")
            print_warning(f"demo step {name} exited with status {code}; the steps that do not need it go on.")
        return code == 0

    if "session" not in skip:
        protocol = short_protocol(out) if args.session == "short" else DEMO_PROTOCOL
        step("session", "run", "--participant", "demo01", "--protocol", str(protocol), "--camera", "virtual",
             "--simulate-participant", "--windowed", "--sessions", str(sessions), "--no-live", where=sessions)
        if "check" not in skip:
            trials = sorted(str(p) for p in sessions.rglob("trial-*.h5"))
            if trials:
                step("check", "inspect", "--check", *trials)
            else:
                failed.append(f"check: the demo session recorded no trial under {sessions}")
    if "synth" not in skip:
        step("synth", "synth", "dataset", "--subjects", str(args.subjects), "--samples", str(args.samples),
             "--resolution", SYNTH_RESOLUTION, "--out", str(synth), where=synth)
    trials = sorted(str(p) for p in synth.rglob("*.h5"))
    if not trials and not {"spot", "process", "evaluate"} <= skip:
        failed.append(f"spot/process/evaluate: no synthetic trials under {synth}")
    else:
        if "spot" not in skip:
            step("spot", "spot", *trials, "--out", str(out / "candidates.csv"), "--jobs", str(args.jobs))
        if "process" not in skip:
            step("process", "process", str(synth), "--from-ground-truth", "--out", str(db), "--no-ply", "--no-png",
                 "--jobs", str(args.jobs), where=db)
        if "evaluate" not in skip and (db / "micro-expression.csv").exists():
            step("evaluate", "evaluate", str(db), "--out", str(report), "--repeats", "2", where=report)
    _print_costs(out, timing)
    if failed:
        for message in failed:
            print_warning(message)
        raise StationError(f"the demo finished with {len(failed)} failed step(s); everything made is under {out}.")
    print_ok(f"demo finished: everything is under {out}"
             + (f"; open {report / 'report.html'}" if "evaluate" not in skip else ""))
    return 0


def _print_costs(out: Path, timing: list[tuple[str, float, Path | None]]) -> None:
    from rich.table import Table

    table = Table(title="where the demo's time and bytes went")
    table.add_column("step")
    table.add_column("wall s", justify="right")
    table.add_column("MB on disk", justify="right")
    for name, seconds, where in timing:
        table.add_row(name, f"{seconds:.0f}", f"{_size(where) / 1e6:.0f}" if where is not None else "")
    table.add_row("total", f"{sum(s for _, s, _ in timing):.0f}", f"{_size(out) / 1e6:.0f}")
    console.print(table)
