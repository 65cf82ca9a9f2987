"""``station synth dataset`` and ``station synth preview``: synthetic participants with ground truth."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from station.checks import StationError, check_positive, format_bytes, free_bytes
from station.console import console, print_ok
from station.record.writer import COMPRESSIONS

DATASET_HELP = """\
Film synthetic participants with the virtual D415 (fast mode, every frame through librealsense)
into trial HDF5 files with the same layout as a recording: OUT/sub01/trial-01.h5, ...  Each trial
holds a few micro-expressions (the samples), one macro-expression and one or two blinks as
negatives, separated by short neutral gaps, with the ground truth in /ground_truth/events (JSON)
and the true 68 landmarks of every frame in /ground_truth/landmarks68.  The defaults mirror
DSME-3D (33 subjects, 373 samples); OUT/manifest.json lists trials, frames and bytes.
The same --seed gives the same frames (whatever --jobs); an interrupted run resumes when
started again.  Subjects are written in parallel, one worker process per core by default."""

PREVIEW_HELP = """\
Write a PNG contact sheet of one micro-expression of a synthetic participant: color and z16
depth at onset, apex and offset, the apex-onset difference, the true landmarks and the ground
truth, to check by eye what the generator makes."""


def _aus(text: str) -> list[int]:
    from station.synth.aus import AU_LIBRARY

    try:
        aus = [int(t) for t in text.replace("+", ",").split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--aus must be AU numbers like 6,12 or 1+2, got {text!r}") from None
    unknown = [a for a in aus if a not in AU_LIBRARY]
    if not aus or unknown:
        raise argparse.ArgumentTypeError(f"--aus must list action units among {sorted(AU_LIBRARY)}, got {text!r}")
    return aus


def _resolution(text: str) -> tuple[int, int]:
    from station.camera.base import D415_RESOLUTIONS

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        w = h = None
    if (w, h) not in D415_RESOLUTIONS:
        raise argparse.ArgumentTypeError(f"--resolution must be one of {', '.join(f'{a}x{b}' for a, b in D415_RESOLUTIONS)}"
                                         f" (D415 modes), got {text!r}")
    return w, h


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="synthetic participants: a DSME-like dataset with ground truth, previews",
                       description="Synthetic participants: real face photos from installed packages, animated "
                                   "with FACS action units, on a D415-like depth surface, with ground truth.")
    verbs = p.add_subparsers(dest="synth_verb", metavar="SUBVERB")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    d = verbs.add_parser("dataset", help="write a DSME-like synthetic dataset of trial HDF5 files",
                         description=DATASET_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--subjects", type=int, default=33, help="number of synthetic subjects (default 33)")
    d.add_argument("--samples", type=int, default=373, help="micro-expression samples in total (default 373)")
    d.add_argument("--out", required=True,
                   help="output folder (created); a rerun resumes: finished trials are kept, other files are never touched")
    d.add_argument("--seed", type=int, default=0, help="seed of appearance and expressions (default 0)")
    d.add_argument("--compression", choices=COMPRESSIONS, default="zstd",
                   help="HDF5 compression (default zstd: ~15%% smaller files than lz4 here, depth ~45%% smaller)")
    d.add_argument("--resolution", type=_resolution, default=(848, 480), metavar="WxH",
                   help="colour and depth size, a D415 mode (default 848x480, the paper's; station demo uses "
                        "424x240: a quarter of the bytes and of the processing)")
    d.add_argument("--jobs", type=int, default=-1,
                   help="worker processes writing subjects in parallel (default -1: every core; 1: this process only); "
                        "the files hold the same frames whatever the number")
    d.set_defaults(func=run_dataset)

    v = verbs.add_parser("preview", help="PNG contact sheet of one synthetic micro-expression",
                         description=PREVIEW_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("--out", default="docs/synth-preview.png", help="PNG to write (default docs/synth-preview.png)")
    v.add_argument("--subject", type=int, default=1, help="synthetic subject (default 1)")
    v.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    v.add_argument("--aus", type=_aus, default=[6, 12], help="action units of the event, e.g. 6,12 (default) or 1+2")
    v.add_argument("--intensity", type=float, default=1.0,
                   help="apex intensity (1.0 ~ 3 px displacement, a typical micro-expression; default 1.0)")
    v.set_defaults(func=run_preview)


def run_dataset(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from station.record.writer import Storage
    from station.synth.dataset import make_dataset, plan_dataset, planned_bytes, planned_frames

    check_positive(args.subjects, "--subjects", integer=True)
    check_positive(args.samples, "--samples", integer=True)
    plans = plan_dataset(args.subjects, args.samples, args.seed)
    frames = [planned_frames(p, args.seed) for p in plans]
    n_trials, n_frames = len(plans), sum(frames)
    width, height = args.resolution
    out = Path(args.out)
    if (out / "manifest.json").exists():
        raise StationError(f"{str(out)!r} already holds a synthetic dataset (manifest.json); choose another --out.")
    need = planned_bytes(plans, frames, width, height, args.compression)
    if free_bytes(out) < need * 1.1:
        raise StationError(f"--out {str(out)!r}: {n_trials} trials of {n_frames} frames need about "
                           f"{format_bytes(need)}, only {format_bytes(free_bytes(out))} free there.")
    jobs = args.jobs
    if jobs == 0 or jobs < -1:
        raise StationError(f"--jobs must be a positive number of worker processes or -1 (every core), got {jobs}.")
    from station.parallel import n_workers

    console.print(f"{n_trials} trials, {n_frames} frames at {width}x{height}, about {format_bytes(need)}, "
                  f"{min(n_workers(jobs), len({p.subject for p in plans}))} worker process(es)")  # one subject a task
    t0 = time.perf_counter()
    with Progress(TextColumn("[bold]synth dataset[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeRemainingColumn(), console=console, transient=False) as bar:
        task = bar.add_task("", total=n_trials)

        def advance(plan, frames, size):
            bar.update(task, advance=1, description=f"{plan.relpath}: {frames} frames, {format_bytes(size)}")

        manifest = make_dataset(out, args.subjects, args.samples, args.seed, Storage(args.compression), advance,
                                width=width, height=height, jobs=jobs)
    print_ok(f"{len(manifest['trials'])} trials, {manifest['frames']} frames, {args.samples} micro-expressions "
             f"from {args.subjects} subjects: {format_bytes(manifest['bytes'])} in {str(out)!r} "
             f"({time.perf_counter() - t0:.0f} s)")
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from station.synth.preview import write_preview

    check_positive(args.subject, "--subject", integer=True)
    check_positive(args.intensity, "--intensity")
    path = write_preview(args.out, subject=args.subject, seed=args.seed, aus=args.aus, intensity=args.intensity)
    print_ok(f"contact sheet written to {str(path)!r}")
    return 0
