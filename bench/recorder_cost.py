"""CPU cost of the recorder per recorded second at 848x480@60 (LZ4), against a reference checkout.

A replay source hands the real :class:`~station.record.recorder.Recorder` pre-rendered
framesets of synthetic participant 1 (virtual D415, 848x480) at 60 fps, paced on the clock,
with fresh frame numbers and timestamps: it costs next to nothing itself, so the process's CPU
time over the recording (``resource.getrusage(RUSAGE_SELF)``: every thread, user + system) is
what capturing, queueing, compressing and writing cost.  Each checkout runs in its own
subprocess under ``nice``, interleaved (ref, new, ref, new ...); medians over ``--repeats``.
The files are then read back with h5py + hdf5plugin and compared frame by frame with what
was sent (bit-identical) and checked for completeness.

    git worktree add /tmp/ref-rec <commit-before>
    nice python bench/recorder_cost.py --ref /tmp/ref-rec --seconds 10 --repeats 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class ReplaySource:
    """``CameraSource`` replaying framesets in a loop at ``fps``, numbered and stamped afresh."""

    def __init__(self, calibration, framesets, fps: float = 60.0, seconds: float = 10.0):
        self.calibration, self.framesets, self.fps = calibration, framesets, fps
        self.total = int(round(seconds * fps))
        self.sent = 0

    def start(self):
        self._t0 = time.perf_counter()
        return self.calibration

    def read(self, timeout_s: float = 1.0):
        from station.camera.base import EndOfStream

        if self.sent >= self.total:
            raise EndOfStream()
        due = self._t0 + self.sent / self.fps
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        fs = self.framesets[self.sent % len(self.framesets)]
        n, stamp = self.sent + 1, 1000.0 * self.sent / self.fps
        self.sent += 1
        return dataclasses.replace(fs, color_times=dataclasses.replace(fs.color_times, number=n, timestamp_ms=stamp),
                                   depth_times=dataclasses.replace(fs.depth_times, number=n, timestamp_ms=stamp),
                                   host_time=time.perf_counter())

    def stop(self) -> None:
        pass


def render(n: int):
    """``n`` framesets of the virtual participant, as bench/record.py renders them."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from record import render as render_frames  # bench/record.py

    return render_frames(n)


def child(seconds: float, frames: int, out: Path) -> dict:
    """Runs inside one checkout: record ``seconds`` of replayed frames, report CPU and read-back."""
    import resource

    import h5py
    import hdf5plugin  # noqa: F401 - the LZ4 filter for reading back
    import numpy as np

    from station.record.recorder import Recorder
    from station.record.writer import Storage

    cal, framesets = render(frames)
    source = ReplaySource(cal, framesets, seconds=seconds)
    recorder = Recorder(source, storage=Storage("lz4"))
    path = out / "trial.h5"
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    try:
        recorder.open(path, {"participant": "bench"}, None)
        while recorder.wait(0.1):
            pass
        stats = recorder.end_trial()
    finally:
        recorder.close()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    identical = True
    from station.record import schema

    with h5py.File(stats.path, "r") as f:
        n = schema.readable_frames(f)
        color, depth = schema.color_dataset(f), schema.depth_dataset(f)
        for i in range(n):
            fs = framesets[i % len(framesets)]
            identical &= bool(np.array_equal(color[i], fs.color) and np.array_equal(depth[i], fs.depth))
        complete = bool(schema.read_attr(f, schema.ATTR_COMPLETE, False))
    return {"cpu_s": cpu, "wall_s": wall, "recorded_s": source.sent / source.fps, "frames_written": n,
            "frames_sent": source.sent, "identical": identical, "complete": complete,
            "bytes_per_frame": stats.path.stat().st_size / max(n, 1)}


def child_live(seconds: float, out: Path) -> dict:
    """The live virtual D415 (pre-rendered, librealsense software device) through the recorder.

    The camera renders its frames before streaming (worker processes, not counted); the
    figure is this process's CPU from the first frame of the trial to its file being final:
    streaming through librealsense, pairing, queueing, compressing, writing.
    """
    import resource

    from station.camera import open_camera
    from station.record.recorder import Recorder
    from station.record.writer import Storage

    recorder = Recorder(open_camera("virtual", prerender_s=seconds + 2), storage=Storage("lz4"))
    recorder.open()
    try:
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        recorder.begin_trial(out / "live.h5", {"participant": "bench"})
        recorder.wait(seconds)
        stats = recorder.end_trial()
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        recorder.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_s": cpu, "wall_s": wall, "recorded_s": wall, "frames_written": stats.frames_written,
            "frames_sent": int(round(wall * 60)), "identical": None, "complete": bool(stats.complete),  # read-back not compared live
            "bytes_per_frame": stats.path.stat().st_size / max(stats.frames_written, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", type=Path, help="reference checkout (git worktree)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--frames", type=int, default=60, help="distinct pre-rendered framesets replayed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--live", action="store_true",
                        help="the live pre-rendered virtual D415 instead of the replay source (read-back not compared)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as td:
            result = child_live(args.seconds, Path(td)) if args.live else child(args.seconds, args.frames, Path(td))
            print(json.dumps(result))
        return 0
    trees = {"reference": args.ref.resolve(), "new": REPO} if args.ref else {"new": REPO}
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(args.repeats):
        for name, tree in trees.items():
            env = {**os.environ, "PYTHONPATH": str(tree)}
            proc = subprocess.run(["nice", "-n", "5", sys.executable, str(Path(__file__).resolve()), "--child",
                                   "--seconds", str(args.seconds), "--frames", str(args.frames)]
                                  + (["--live"] if args.live else []),
                                  cwd=tree, env=env, capture_output=True, text=True, timeout=1800)
            if proc.returncode:
                raise SystemExit(f"{name}: {proc.stderr[-3000:]}")
            runs[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{args.seconds:g} s of 848x480 color + depth at 60 fps per run, LZ4; {args.repeats} interleaved runs, "
          "medians\n")
    print("| writer | CPU s per recorded s (cores) | ratio to reference | frames written / sent | bit-identical "
          "read-back | complete | MB/frame |")
    print("|---|---|---|---|---|---|---|")
    ref = statistics.median(r["cpu_s"] / r["recorded_s"] for r in runs.get("reference", runs["new"]))
    for name, rs in runs.items():
        core = statistics.median(r["cpu_s"] / r["recorded_s"] for r in rs)
        last = rs[-1]
        print(f"| {name} | {core:.3f} | {ref / core:.2f}x | {last['frames_written']} / {last['frames_sent']} | "
              f"{'not compared' if any(r['identical'] is None for r in rs) else all(r['identical'] for r in rs)} | {all(r['complete'] for r in rs)} | "
              f"{last['bytes_per_frame'] / 1e6:.2f} |")
    print("\nraw:", json.dumps(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
