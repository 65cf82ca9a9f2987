"""Which trial storage holds 60 fps?  Depth-only (clouds rebuilt) vs stored vertices, per compression.

Writes the same pre-rendered 848x480 framesets (virtual D415 filming synthetic participant 1)
through the real TrialWriter,
with a flush every 30 frames as the recorder does, and reports frames/s, MB per frame on disk
and the ratio to the reference in the same run: an uncompressed depth-only write.

    python bench/record_storage.py [--frames 120]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args()
    cal, frames = render(args.frames)
    with tempfile.TemporaryDirectory() as td:
        results = {case: write(cal, frames, Storage(*case), Path(td)) for case in CASES}
    ref_fps = results[("none", False)][0]
    print(f"{args.frames} frames of 848x480 color+depth; reference = uncompressed depth-only write\n")
    print("| storage | frames/s | ratio to reference | MB/frame on disk | holds 60 fps |")
    print("|---|---|---|---|---|")
    for (comp, verts), (fps, mb) in results.items():
        label = f"{comp}, {'depth + vertices' if verts else 'depth only (clouds rebuilt)'}"
        print(f"| {label} | {fps:.0f} | {fps / ref_fps:.2f} | {mb:.2f} | {'yes' if fps >= 60 else 'no'} |")


if __name__ == "__main__":
    main()
