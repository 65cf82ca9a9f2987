"""Acquisition benchmark: the virtual D415's host cost, a hostile live recording, a long
real-time recording, then which trial storage holds 60 fps.

Part 0 streams the virtual D415 (848x480 @ 60 fps, synthetic participant) for
``--stream-seconds`` and measures the CPU seconds its process spends per second of streaming
(producer + librealsense + reading every pair), in a fresh subprocess each, median of
``--repeats``: the pre-rendered camera of this tree against the camera that renders while it
streams, from a ``git worktree`` of the reference commit (``--ref``), in the same run.

Part 0b records the live virtual D415 with the faults of issue #11 (hardware clock starting at
360713 ms, 1 % colour and 0.5 % depth drops, 10 % of colour frames 9.5 ms late) through the
Recorder and compares what the file says with the simulator's truth: rows, missing frames per
stream, repeated rows (must be 0), and the verdict.

Part 1 records the live virtual D415 (848x480 @ 60 fps, synthetic participant, real-time
producer thread) for ``--seconds`` through the real Recorder and reports frames, drops
(every cause), effective fps, MB per frame and MB/s.

Part 2: depth-only (clouds rebuilt) vs stored vertices, per compression.

Writes the same pre-rendered 848x480 framesets (virtual D415 filming synthetic participant 1)
through the real TrialWriter,
with a flush every 30 frames as the recorder does, and reports frames/s, MB per frame on disk
and the ratio to the reference in the same run: an uncompressed depth-only write.

    git worktree add /tmp/ref-acquisition 497ddae   # the camera before issue #11 / #16.1
    nice python bench/record.py [--seconds 180] [--frames 120] [--stream-seconds 10] [--ref /tmp/ref-acquisition]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from station.camera.virtual import VirtualD415
from station.synth.participant import SyntheticParticipant
from station.record.writer import Storage, TrialWriter

CASES = [("none", False), ("lz4", False), ("blosc2", False), ("zstd", False), ("lz4", True), ("none", True)]


def render(n: int):
    cam = VirtualD415(SyntheticParticipant(1, 0), realtime=False)
    cal = cam.start()
    frames = []
    try:
        while len(frames) < n:
            fs = cam.read(2.0)
            if fs is not None:
                frames.append(fs)
    finally:
        cam.stop()
    return cal, frames


def write(cal, frames, storage: Storage, folder: Path) -> tuple[float, float]:
    path = folder / f"{storage.compression}-{storage.store_vertices}.h5"
    t0 = time.perf_counter()
    writer = TrialWriter(path, cal, storage)
    for i, fs in enumerate(frames):
        writer.append(fs)
        if i % 30 == 29:
            writer.flush()
    final = writer.close()
    elapsed = time.perf_counter() - t0
    return len(frames) / elapsed, final.stat().st_size / len(frames) / 1e6


def live_recording(seconds: float, folder: Path) -> None:
    """Part 1: real-time recording of the virtual D415 through the recorder thread."""
    from station.camera import open_camera
    from station.record.recorder import record_trial

    stats = record_trial(open_camera("virtual", prerender_s=seconds), folder / "live.h5", seconds)
    size = stats.path.stat().st_size
    expected = round(seconds * 60)
    print(f"Part 1: {seconds:g} s of the virtual D415 at 848x480@60, LZ4, recorder thread\n")
    print("| frames written | expected (60 fps) | missing | of which queue | MB/frame | MB/s |")
    print("|---|---|---|---|---|---|")
    print(f"| {stats.frames_written} | {expected} | {stats.dropped} | {stats.dropped_queue} | "
          f"{size / max(stats.frames_written, 1) / 1e6:.2f} | {size / seconds / 1e6:.1f} |\n")


def stream_cost(seconds: float) -> dict:
    """In this process: CPU seconds per second of streaming the virtual D415 (rendering ahead excluded)."""
    from station.camera.virtual import VirtualD415

    n = int(seconds * 60) + 2
    scene = SyntheticParticipant(1, 0)
    scene.n_frames = n
    cam = VirtualD415(scene, realtime=True)
    cam.start()  # this tree renders the clip here, before streaming; the reference renders while streaming
    cpu0, wall0, frames = time.process_time(), time.perf_counter(), 0
    wall = cpu = 0.0
    try:
        while True:
            try:
                fs = cam.read(2.0)
            except Exception:  # noqa: BLE001 - EndOfStream of either implementation
                break
            if fs is not None:  # up to the last frame: the end-of-stream wait is not streaming
                frames += 1
                wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        cam.stop()
    return {"cpu_s": cpu, "wall_s": wall, "frames": frames, "cpu_per_s": cpu / wall}


def measure_stream(tree: Path, seconds: float) -> dict:
    code = (f"import sys, json; sys.path.insert(0, {str(tree)!r}); sys.path.insert(1, {str(Path(__file__).parent)!r});"
            f"from record import stream_cost; print(json.dumps(stream_cost({seconds})))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def virtual_camera_cost(seconds: float, ref: Path, repeats: int) -> None:
    """Part 0: host CPU of streaming, this tree against the reference, alternating runs."""
    here = Path(__file__).resolve().parents[1]
    runs: dict[str, list[dict]] = {"this tree (pre-rendered)": [], "reference (renders while streaming)": []}
    for _ in range(repeats):
        runs["this tree (pre-rendered)"].append(measure_stream(here, seconds))
        if ref.exists():
            runs["reference (renders while streaming)"].append(measure_stream(ref, seconds))
    print(f"Part 0: host CPU of the virtual D415 streaming 848x480@60 for {seconds:g} s "
          f"(median of {repeats}; reference {ref})\n")
    print("| camera | CPU s per s of streaming | frames read | wall s | ratio to reference |")
    print("|---|---|---|---|---|")
    medians = {k: statistics.median(r["cpu_per_s"] for r in v) for k, v in runs.items() if v}
    ref_cost = medians.get("reference (renders while streaming)")
    for name, values in runs.items():
        if values:
            frames = statistics.median(r["frames"] for r in values)
            wall = statistics.median(r["wall_s"] for r in values)
            ratio = f"{medians[name] / ref_cost:.3f}" if ref_cost else "-"
            print(f"| {name} | {medians[name]:.3f} | {frames:.0f} | {wall:.1f} | {ratio} |")
    print()


def hostile_recording(folder: Path, seconds: float = 5.0) -> None:
    """Part 0b: the live virtual D415 with issue #11's faults, against the simulator's truth."""
    from station.camera import open_camera
    from station.camera.faults import Faults
    from station.record import schema
    from station.record.inspect import trial_verdict
    from station.record.recorder import record_trial
    from station.record.writer import open_trial

    faults = Faults(seed=3, clock_start_ms=360713, drop_color=0.01, drop_depth=0.005, late_color=0.1, late_ms=9.5)
    cam = open_camera("virtual", faults=faults, prerender_s=seconds)
    stats = record_trial(cam, folder / "hostile.h5")
    truth = cam.schedule.truth()
    with open_trial(stats.path) as f:
        frames = schema.frames_table(f)
    repeated = sum(int(np.sum(np.diff(frames[f"{s}_number"]) <= 0)) for s in schema.STREAMS)
    verdict = trial_verdict(stats.path)
    print(f"Part 0b: live virtual D415 with faults ({seconds + 1:g} s pre-rendered clip; {faults})\n")
    print("(missing in the file beyond the truth = frames this loaded host lost itself, each counted)\n")
    print("| | rows | missing colour | missing depth | repeated rows | stale repeats refused | verdict |")
    print("|---|---|---|---|---|---|---|")
    print(f"| simulator's truth | {truth['rows']} | {truth['dropped_color']} | {truth['dropped_depth']} | 0 | - | "
          f"not whole |")
    print(f"| file / recorder | {stats.frames_written} | {stats.dropped_color} | {stats.dropped_depth} | {repeated} | "
          f"{stats.repeated_color + stats.repeated_depth} | {'whole' if verdict.ok else 'not whole: ' + '; '.join(r.split(':')[0] for r in verdict.reasons)} |\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="length of the live recording (0 skips it)")
    parser.add_argument("--frames", type=int, default=120, help="frames written per storage option")
    parser.add_argument("--stream-seconds", type=float, default=10.0, help="part 0 streaming length (0 skips)")
    parser.add_argument("--repeats", type=int, default=3, help="part 0 repeats (median)")
    parser.add_argument("--ref", type=Path, default=Path("/tmp/ref-acquisition"), help="reference worktree")
    args = parser.parse_args()
    if args.stream_seconds > 0:
        virtual_camera_cost(args.stream_seconds, args.ref, args.repeats)
        with tempfile.TemporaryDirectory() as td:
            hostile_recording(Path(td))
    if args.seconds > 0:
        with tempfile.TemporaryDirectory() as td:
            live_recording(args.seconds, Path(td))
    if args.frames <= 0:
        return
    cal, frames = render(args.frames)
    with tempfile.TemporaryDirectory() as td:
        results = {case: write(cal, frames, Storage(*case), Path(td)) for case in CASES}
    ref_fps = results[("none", False)][0]
    print(f"Part 2: {args.frames} frames of 848x480 color+depth; reference = uncompressed depth-only write\n")
    print("| storage | frames/s | x real time (60 fps) | ratio to reference | MB/frame on disk | MB/s at 60 fps |")
    print("|---|---|---|---|---|---|")
    for (comp, verts), (fps, mb) in results.items():
        label = f"{comp}, {'depth + vertices' if verts else 'depth only (clouds rebuilt)'}"
        print(f"| {label} | {fps:.0f} | {fps / 60:.1f} | {fps / ref_fps:.2f} | {mb:.2f} | {mb * 60:.0f} |")


if __name__ == "__main__":
    main()
