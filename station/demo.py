"""``station demo``: the whole station, end to end, on the virtual D415.

What a lab does over weeks, in a few minutes and without hardware or participants:

1. a participant session with ``protocols/demo.yaml`` (PsychoPy window, clips, rests,
   self-report forms answered by a simulated participant) recorded from the virtual D415;
2. an integrity check of every trial it recorded;
3. a small synthetic database of micro-expressions with ground truth (the recorded demo
   session is too short to hold enough samples for a baseline);
4. spotting against that ground truth, then processing (2D and 3D preprocessing, export);
5. the baseline evaluation (LBP-TOP + curvature, SVM, LOSO and k-fold, fusion) and its report.

Each step runs the same verb a lab would type, so the demo is also a smoke test of the CLI.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from station.checks import StationError
from station.console import console, print_ok

STEPS = ("session", "check", "synth", "spot", "process", "evaluate")
DEMO_PROTOCOL = Path(__file__).resolve().parents[1] / "protocols" / "demo.yaml"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole station end to end on the virtual D415",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="sessions/demo",
                   help="folder for everything the demo makes (default sessions/demo; a new numbered "
                        "run folder is made inside, nothing is overwritten)")
    p.add_argument("--subjects", type=int, default=6, help="synthetic subjects in the database (default 6)")
    p.add_argument("--samples", type=int, default=48, help="synthetic micro-expressions in total (default 48)")
    p.add_argument("--skip", default="", help=f"comma-separated steps to skip, among {', '.join(STEPS)}")
    p.set_defaults(func=run_demo)


def _next_run_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    n = 1 + max((int(p.name.split("-")[1]) for p in root.glob("run-*") if p.name.split("-")[1].isdigit()),
                default=0)
    folder = root / f"run-{n:03d}"
    folder.mkdir()
    return folder


def _verb(*argv: str) -> None:
    """Run one ``station`` verb in this process; a non-zero exit stops the demo."""
    from station.cli import main

    console.rule(f"[bold]station {' '.join(argv)}")
    code = main(list(argv))
    if code:
        raise StationError(f"the demo stopped: `station {' '.join(argv)}` exited with status {code}.")


def run_demo(args: argparse.Namespace) -> int:
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(STEPS)
    if unknown:
        raise StationError(f"--skip accepts {', '.join(STEPS)}; got {', '.join(sorted(unknown))}.")
    out = _next_run_folder(Path(args.out))
    sessions, synth, db, report = out / "sessions", out / "synth", out / "database", out / "report"
    if "session" not in skip:
        _verb("run", "--participant", "demo01", "--protocol", str(DEMO_PROTOCOL), "--camera", "virtual",
              "--simulate-participant", "--windowed", "--sessions", str(sessions), "--no-live")
        if "check" not in skip:
            trials = sorted(str(p) for p in sessions.rglob("trial-*.h5"))
            if not trials:
                raise StationError(f"the demo session recorded no trial under {sessions}.")
            _verb("inspect", "--check", *trials)
    if "synth" not in skip:
        _verb("synth", "dataset", "--subjects", str(args.subjects), "--samples", str(args.samples),
              "--out", str(synth))
    trials = sorted(str(p) for p in synth.rglob("*.h5"))
    if "spot" not in skip:
        _verb("spot", *trials, "--out", str(out / "candidates.csv"))
    if "process" not in skip:
        _verb("process", str(synth), "--from-ground-truth", "--out", str(db), "--no-ply")
    if "evaluate" not in skip:
        _verb("evaluate", str(db), "--out", str(report), "--repeats", "2")
    print_ok(f"demo finished: everything is under {out}"
             + (f"; open {report / 'report.html'}" if "evaluate" not in skip else ""))
    return 0
