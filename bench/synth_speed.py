"""How fast is the synthetic participant?  Ratios against references measured in the same run.

References: a plain copy of one color + depth frame, and one full-frame ``cv2.remap`` of the
848x480 color image (the least a warping generator must do).  Measured: ``render(index)`` over
a trial with micro/macro-expressions and blinks (head motion and sensor noise on), and a
virtual-D415 fast-mode ``read()`` (render + reprojection into the depth camera + librealsense
software device + syncer).  One thread for OpenCV, as on one core; times are CPU time of this process (what a dedicated
core spends), because the machine the figures come from is shared.

    python bench/synth_speed.py [--frames 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from station.camera.base import EndOfStream
from station.camera.virtual import VirtualD415
from station.synth.participant import sample_timeline_scene


def per_frame_ms(fn, n: int) -> float:
    """CPU milliseconds per call: on a shared machine wall time counts other jobs' turns too,
    CPU time of this (single-threaded) process is what one dedicated core would spend."""
    fn(0)  # warm up
    t0 = time.process_time()
    for i in range(n):
        fn(i)
    return (time.process_time() - t0) * 1000.0 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    kinds = ["micro", "blink", "micro", "macro", "micro", "blink", "micro", "micro"]
    scene = sample_timeline_scene(1, 0, kinds)
    n = min(args.frames, scene.n_frames)
    color, depth = scene.render(0)
    gy, gx = np.mgrid[0:480, 0:848].astype(np.float32)
    mx, my = gx + 0.37, gy - 0.21

    # Interleave the measurements in rounds and keep each one's median: the machine is shared,
    # and a load burst during one measurement would otherwise skew its ratio.
    steps = {
        "copy color+depth (reference)": lambda i: (color.copy(), depth.copy()),
        "cv2.remap full color frame (reference)": lambda i: cv2.remap(color, mx, my, cv2.INTER_LINEAR),
        "scene.render (synthetic participant)": scene.render,
    }
    rounds = {name: [] for name in steps}
    chunk = max(1, n // args.rounds)
    for r in range(args.rounds):
        for name, fn in steps.items():
            start = r * chunk
            rounds[name].append(per_frame_ms(lambda i, fn=fn: fn(start + i), chunk))
    results = {name: float(np.median(v)) for name, v in rounds.items()}
    camera = VirtualD415(sample_timeline_scene(1, 0, kinds), realtime=False)
    results["DepthReprojector alone (station/camera/virtual.py)"] = per_frame_ms(
        lambda i: camera._reproject(depth), min(n, 60))
    camera.start()
    try:
        def read(_):
            try:
                camera.read(2.0)
            except EndOfStream:
                pass
        results["virtual D415 fast read (render + reprojection + librealsense)"] = per_frame_ms(read, n - 2)
    finally:
        camera.stop()

    ref = results["cv2.remap full color frame (reference)"]
    print(f"{n} frames of a {scene.n_frames}-frame trial, 848x480, cv2 threads = 1, CPU time")
    print(f"{'step':<66} {'ms/frame':>9} {'x remap':>8} {'fps':>7}")
    for name, ms in results.items():
        print(f"{name:<66} {ms:9.2f} {ms / ref:8.2f} {1000 / ms:7.1f}")


if __name__ == "__main__":
    main()
