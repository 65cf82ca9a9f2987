"""Verbs of the acquisition core: ``station record``, ``station inspect``, ``station export-pointclouds``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.live import Live
from rich.table import Table

from station.camera import open_camera
from station.camera.base import FPS, HEIGHT, WIDTH
from station.checks import StationError, check_positive, format_bytes
from station.console import console, print_ok, print_warning
from station.camera.faults import Faults
from station.camera.settings import POWER_LINE, VISUAL_PRESETS, CameraSettings
from station.record.recorder import (MIN_FREE_BYTES, STALL_S, WARN_FREE_BYTES, RecorderStatus, TrialInterrupted,
                                     TrialStats, record_trial)
from station.record.writer import COMPRESSIONS, Storage

CAMERA_HELP = ("camera source: 'virtual' (a synthetic participant on a librealsense software device; "
               "the default, no hardware needed), 'realsense' or 'realsense:SERIAL' (a live D415), "
               "'playback:FILE' (a librealsense .db3/.bag recording)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="record one trial from a camera to HDF5",
                       description="Record color + depth (848x480 @ 60 fps by default) with every "
                                   "timestamp to a crash-safe trial HDF5 file, showing fps, queue, drops, "
                                   "MB/s and free disk live.  Ctrl-C stops cleanly and keeps every frame.")
    p.add_argument("--camera", default="virtual", metavar="SOURCE", help=CAMERA_HELP + " (default: virtual)")
    p.add_argument("--seconds", type=float, default=10.0,
                   help="how long to record (default 10); a recording played back ends at its end")
    p.add_argument("--out", default="sessions/recordings",
                   help="trial file (*.h5) or folder; in a folder the next free trial-NN.h5 is used "
                        "(default sessions/recordings); existing files are never overwritten")
    p.add_argument("--width", type=int, default=WIDTH, help=f"image width (default {WIDTH})")
    p.add_argument("--height", type=int, default=HEIGHT, help=f"image height (default {HEIGHT})")
    p.add_argument("--fps", type=int, default=FPS, help=f"frame rate (default {FPS})")
    p.add_argument("--subject", type=int, default=1, help="virtual camera: which synthetic participant (default 1)")
    p.add_argument("--seed", type=int, default=0, help="virtual camera: seed of its expressions (default 0)")
    p.add_argument("--compression", choices=COMPRESSIONS, default="lz4",
                   help="HDF5 compression of color and depth (default lz4: holds 60 fps, see docs/benchmarks.md)")
    p.add_argument("--store-vertices", action="store_true",
                   help="also store a float32 vertex per depth pixel (not needed: clouds are rebuilt "
                        "exactly from depth; costs ~5 MB a frame)")
    p.add_argument("--min-free-mb", type=float, default=MIN_FREE_BYTES / 1e6,
                   help=f"stop cleanly when free disk falls under this (default {MIN_FREE_BYTES / 1e6:.0f} MB)")
    p.add_argument("--warn-free-mb", type=float, default=WARN_FREE_BYTES / 1e6,
                   help=f"warn when free disk falls under this (default {WARN_FREE_BYTES / 1e6:.0f} MB)")
    p.add_argument("--fast", action="store_true",
                   help="virtual/playback: produce frames as fast as they can be written instead of in real time")
    p.add_argument("--faults", default="", metavar="SPEC",
                   help="virtual camera: real-camera faults, e.g. 'clock_start_ms=360713,drop_color=0.01,"
                        "drop_depth=0.005,late_color=0.1,late_ms=9.5' (also stall_s, stall_for_s, unplug_s, "
                        "domain_switch_s, color_offset_ms, jitter_ms, no_metadata, seed); default: a healthy camera")
    p.add_argument("--stall-s", type=float, default=STALL_S,
                   help=f"no frame for this long while connected is a stall: marked, warned, trial flagged "
                        f"(default {STALL_S:g})")
    g = p.add_argument_group("camera settings (live D415; applied at start, read back and stored in the trial)")
    g.add_argument("--preset", choices=VISUAL_PRESETS, help="depth visual preset (default: the camera's)")
    g.add_argument("--advanced-json", metavar="FILE", help="advanced-mode JSON exported from realsense-viewer")
    g.add_argument("--laser-power", type=float, metavar="MW", help="laser power in mW (0-360)")
    g.add_argument("--emitter", choices=("on", "off"), help="IR projector on or off")
    g.add_argument("--exposure", type=float, metavar="US", help="colour exposure (librealsense units); turns auto off")
    g.add_argument("--gain", type=float, help="colour gain; turns auto exposure off")
    g.add_argument("--auto-exposure", choices=("on", "off"), help="colour auto exposure")
    g.add_argument("--power-line", choices=tuple(POWER_LINE), help="power-line frequency (anti-flicker)")
    g.add_argument("--depth-units", type=float, metavar="M", help="metres per depth unit (default 0.001)")
    p.set_defaults(func=run_record)

    p = sub.add_parser("inspect", help="summarise a trial file, or --check its integrity",
                       description="Print frames, duration, effective fps, drops, markers and calibration "
                                   "of a trial HDF5 file (also one left as *.h5.writing by a crash).")
    p.add_argument("trial", nargs="+", help="trial file(s), or a session folder (its per-clip verdict "
                                            "from the journal; exit status 1 if incomplete)")
    p.add_argument("--check", action="store_true",
                   help="verify monotonic timestamps, color/depth pairing, calibration and layout; "
                        "exit status 1 if a check fails")
    p.set_defaults(func=run_inspect)

    p = sub.add_parser("export-pointclouds", help="write one coloured PLY point cloud per frame",
                       description="Rebuild each frame's point cloud from the stored depth and calibration "
                                   "(rs2_deproject_pixel_to_point semantics), colour it from the color image, "
                                   "and write OUTDIR/frame-<number>.ply with open3d.")
    p.add_argument("trial", help="trial file")
    p.add_argument("outdir", help="output folder (created)")
    p.add_argument("--frames", default="", metavar="A:B",
                   help="only frames A..B-1 (positions in the file, Python slice syntax), e.g. 0:60")
    p.set_defaults(func=run_export_pointclouds)


def _identity_text(attrs: dict, path) -> str:
    """``trial_id`` (what codings refer to) and whose trial it is, from the schema's reader."""
    from station.record.schema import TRIAL_ID, read_identity

    class _Attrs:  # read_identity reads .attrs; summarize already decoded them
        pass

    holder = _Attrs()
    holder.attrs = attrs
    ident = read_identity(holder, path)
    who = ident.describe().rsplit(" (", 1)[0]
    return f"{TRIAL_ID} {ident.trial_id or '(none: recorded before trial ids)'}\n{who}"


# -- record ---------------------------------------------------------------------------------------

def next_trial_path(out: str | Path) -> Path:
    """``out`` itself if it names a .h5 file, else the next free ``trial-NN.h5`` in that folder."""
    out = Path(out)
    if out.suffix == ".h5":
        return out
    from station.record.schema import next_trial_number, trial_file_name

    return out / trial_file_name(next_trial_number(out))


def status_table(status: RecorderStatus, elapsed: float, seconds: float, source: str) -> Table:
    """The live status line: what a lab watches while recording."""
    table = Table.grid(padding=(0, 2))
    state = "[red]● REC[/]" if status.recording else "[dim]○ idle[/]"
    table.add_row(
        state, f"{elapsed:5.1f}/{seconds:.0f} s", f"{status.fps:5.1f} fps",
        f"queue {status.queue_depth}/{status.queue_size}",
        f"[{'red' if status.dropped else 'green'}]drops {status.dropped}[/]",
        f"{status.mb_per_s:6.1f} MB/s", f"disk free {format_bytes(status.disk_free)}", f"[dim]{source}[/]",
    )
    if status.stalled:
        table.add_row("[bold red]STALLED[/]", f"no frame for {status.stalled_s:.1f} s — check the camera and its cable")
    if status.warning:
        table.add_row("[yellow]warning[/]", status.warning)
    return table


def settings_from_args(args: argparse.Namespace) -> CameraSettings:
    """The camera settings named on the command line (None = the camera's own value)."""
    onoff = {"on": True, "off": False, None: None}
    return CameraSettings(visual_preset=args.preset, advanced_json=args.advanced_json, laser_power=args.laser_power,
                          emitter=onoff[args.emitter], color_exposure=args.exposure, color_gain=args.gain,
                          color_auto_exposure=onoff[args.auto_exposure], power_line=args.power_line,
                          depth_units=args.depth_units)


def run_record(args: argparse.Namespace) -> int:
    check_positive(args.seconds, "--seconds")
    path = next_trial_path(args.out)
    extra = {"subject": args.subject, "seed": args.seed} if args.camera == "virtual" else {}
    if args.camera == "virtual":
        extra.update(faults=Faults.parse(args.faults), prerender_s=None if args.fast else args.seconds)
        console.print(f"[dim]rendering {args.seconds:g} s of the virtual participant ahead of streaming…[/]")
    source = open_camera(args.camera, width=args.width, height=args.height, fps=args.fps,
                         realtime=not args.fast, settings=settings_from_args(args), **extra)
    storage = Storage(compression=args.compression, store_vertices=args.store_vertices)
    console.print(f"Recording [bold]{source.description}[/] for {args.seconds:g} s to [bold]{path}[/] "
                  "(Ctrl-C stops and keeps everything)")
    live = Live(console=console, refresh_per_second=8, transient=False)
    started = [0.0]

    def tick(status: RecorderStatus) -> None:
        started[0] = started[0] or time.perf_counter()
        live.update(status_table(status, time.perf_counter() - started[0], args.seconds, source.description))

    from station.signals import interrupt_on_signals

    try:
        with interrupt_on_signals(), live:  # SIGTERM / SIGHUP end the trial like Ctrl-C: finalised, kept
            stats = record_trial(source, path, args.seconds, storage=storage, on_tick=tick, stall_s=args.stall_s,
                                 on_warning=print_warning, attrs={"camera": args.camera},
                                 min_free_bytes=int(args.min_free_mb * 1e6), warn_free_bytes=int(args.warn_free_mb * 1e6))
    except TrialInterrupted as stop:
        stats = stop.stats
        print_warning(f"stopped by {stats.stop_reason or 'Ctrl-C'}; {stats.frames_written} frames kept.")
    report_stats(stats)
    verdict_ok = report_verdict(stats.path, interrupted=stats.stop_reason.startswith("interrupted"))
    scene = getattr(source, "scene", None)
    if stats.complete and hasattr(scene, "landmarks"):  # a synthetic participant: store its ground truth
        from station.synth.dataset import annotate_recording

        n = annotate_recording(stats.path, scene)
        print_ok(f"ground truth of the synthetic participant stored: {n} event(s) in /ground_truth")
    return 0 if verdict_ok else 1


def report_verdict(path: Path, interrupted: bool = False) -> bool:
    """Check the file just written and say, in red with the reasons, if it is not whole."""
    from station.record.inspect import trial_verdict

    verdict = trial_verdict(path)
    for warning in verdict.warnings:
        print_warning(warning)
    reasons = [r for r in verdict.reasons if not (interrupted and r.startswith(("ended on request", "closed cleanly")))]
    if verdict.ok or (interrupted and not reasons):
        print_ok(f"verdict: {path.name} is whole (every check of `station inspect --check` passes)")
        return True
    console.print(f"[bold red]✗ verdict: {path.name} is NOT whole[/]")
    for reason in reasons:
        console.print(f"  [red]✗ {reason}[/]")
    return False


def report_stats(stats: TrialStats) -> None:
    """One closing summary after a recording: what was written and every frame not written, by cause."""
    where = str(stats.path)
    if stats.stop_reason:
        print_warning(f"recording ended early: {stats.stop_reason}")
    causes = ", ".join(f"{name} {value}" for name, value in (
        ("not delivered", f"{stats.gaps_color}/{stats.gaps_depth}"),
        ("unpaired", f"{stats.unpaired_color}/{stats.unpaired_depth}"),
        ("late", f"{stats.late_color}/{stats.late_depth}"), ("queue", stats.dropped_queue)))
    from station.record.inspect import delivered_text

    line = (f"{delivered_text(stats.counters(), stats.frames_written)} "
            f"(unpaired at the ends {stats.unpaired_ends_color}/{stats.unpaired_ends_depth}"
            + (f", lost at stop {stats.lost_at_stop}" if stats.lost_at_stop else "") + "); "
            f"{stats.dropped} missing between the first and last row (colour/depth: {causes}; "
            f"stale repeats refused {stats.repeated_color}/{stats.repeated_depth}"
            + (f"; stalls {stats.stalls}" if stats.stalls else "") + f") -> {where}"
            + ("" if stats.complete else " (not finalised: readable up to the last flush)"))
    console.print(f"[dim]{line}[/]")


# -- inspect --------------------------------------------------------------------------------------

def run_inspect(args: argparse.Namespace) -> int:
    from station.record.inspect import check, device_summary, summarize

    failed = False
    for path in args.trial:
        if Path(path).is_dir():  # a session folder: its verdict from the journal (session engineer)
            from station.elicit.sessioninspect import inspect_session

            failed |= inspect_session(path) != 0
            continue
        try:
            s = summarize(path)
        except (StationError, OSError, KeyError, ValueError) as err:
            console.print(f"[bold red]✗ {path} is NOT whole: it cannot be read: {err}[/]")
            failed = True
            continue
        table = Table(title=f"{s.path}", show_header=False, title_justify="left")
        table.add_row("state", "complete" if s.complete else "[yellow]not finalised (crash or being written)[/]")
        table.add_row("identity", _identity_text(s.attrs, path))
        table.add_row("frames", f"{s.frames}  ({s.duration_s:.2f} s, effective {s.effective_fps:.2f} fps, "
                                f"nominal {s.nominal_fps})")
        c = s.counters
        if s.delivered("color") is not None:
            table.add_row("delivered", f"colour {s.delivered('color')}, depth {s.delivered('depth')}; not written: "
                                       f"colour {s.not_written('color')}, depth {s.not_written('depth')} (unpaired "
                                       f"before the first / after the last row {c.get('unpaired_ends_color', 0)}/"
                                       f"{c.get('unpaired_ends_depth', 0)}, lost at stop {c.get('lost_at_stop', 0)})")
        table.add_row("missing", f"{s.dropped} between the first and last row (colour {c.get('dropped_color', 0)}, "
                                 f"depth {c.get('dropped_depth', 0)}: "
                                 f"not delivered {c.get('gaps_color', 0)}/{c.get('gaps_depth', 0)}, unpaired "
                                 f"{c.get('unpaired_color', 0)}/{c.get('unpaired_depth', 0)}, late "
                                 f"{c.get('late_color', 0)}/{c.get('late_depth', 0)}, queue {c.get('dropped_queue', 0)}; "
                                 f"stale repeats refused {c.get('repeated_color', 0)}/{c.get('repeated_depth', 0)})")
        if s.attrs.get("camera_settings"):
            table.add_row("settings", str(s.attrs.get("camera_settings"))[:300])
        table.add_row("librealsense", f"{s.attrs.get('librealsense_version', '?')}  USB {s.attrs.get('usb_type', '?')}  "
                                      f"metadata {s.attrs.get('frame_metadata', '?')}")
        if s.stop_reason:
            table.add_row("stop reason", s.stop_reason)
        table.add_row("resolution", f"{s.attrs.get('resolution')}  compression {s.attrs.get('compression')}")
        table.add_row("device", device_summary(s.attrs))
        table.add_row("versions", f"schema {s.attrs.get('schema_version')}, station {s.attrs.get('software_version')}")
        table.add_row("markers", str(len(s.markers)) + "".join(
            f"\n  {m['host_time']:.3f}  {m['event']}  {m['clip']}  {m['detail']}" for m in s.markers[:20])
            + ("\n  ..." if len(s.markers) > 20 else ""))
        if s.ground_truth_events:
            table.add_row("ground truth", f"{s.ground_truth_events} synthetic events (not coder data)")
        console.print(table)
        if args.check:
            report = check(path)
            for name, passed, detail in report.results:
                console.print(f"  {'[green]✓[/]' if passed else '[red]✗[/]'} {name}: {detail}")
            for warning in report.warnings:
                console.print(f"  [yellow]![/] {warning}")
            if not report.ok:
                console.print(f"  [bold red]✗ {path} is NOT whole[/]")
            failed |= not report.ok
    return 1 if failed else 0


# -- export-pointclouds ---------------------------------------------------------------------------

def run_export_pointclouds(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from station.record.exportclouds import export_pointclouds

    with Progress(console=console) as progress:
        task = progress.add_task("writing PLY", total=None)
        written = export_pointclouds(args.trial, args.outdir, args.frames,
                                     on_frame=lambda i, n: progress.update(task, completed=i + 1, total=n))
    print_ok(f"{len(written)} point clouds written to {args.outdir}")
    return 0
