"""Acquisition benchmark: a long real-time recording, then which trial storage holds 60 fps.

Part 1 records the live virtual D415 (848x480 @ 60 fps, synthetic participant, real-time
producer thread) for ``--seconds`` through the real Recorder and reports frames, drops
(queue overflow and frame-number gaps), effective fps, MB per frame and MB/s.

Part 2: depth-only (clouds rebuilt) vs stored vertices, per compression.

Writes the same pre-rendered 848x480 framesets (virtual D415 filming synthetic participant 1)
through the real TrialWriter,
with a flush every 30 frames as the recorder does, and reports frames/s, MB per frame on disk
and the ratio to the reference in the same run: an uncompressed depth-only write.

    python bench/record.py [--seconds 180] [--frames 120]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

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

    stats = record_trial(open_camera("virtual"), folder / "live.h5", seconds)
    size = stats.path.stat().st_size
    expected = round(seconds * 60)
    print(f"Part 1: {seconds:g} s of the virtual D415 at 848x480@60, LZ4, recorder thread\n")
    print("| frames written | expected (60 fps) | dropped: queue | dropped: frame-number gaps | MB/frame | MB/s |")
    print("|---|---|---|---|---|---|")
    print(f"| {stats.frames_written} | {expected} | {stats.dropped_queue} | {stats.dropped_gaps_color} | "
          f"{size / max(stats.frames_written, 1) / 1e6:.2f} | {size / seconds / 1e6:.1f} |\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="length of the live recording (0 skips it)")
    parser.add_argument("--frames", type=int, default=120, help="frames written per storage option")
    args = parser.parse_args()
    if args.seconds > 0:
        with tempfile.TemporaryDirectory() as td:
            live_recording(args.seconds, Path(td))
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
