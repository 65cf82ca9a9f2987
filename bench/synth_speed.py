"""How fast is the synthetic participant?  Ratios against references measured in the same run.

References: a plain copy of one color + depth frame, and one full-frame ``cv2.remap`` of the
848x480 color image (the least a warping generator must do).  Measured: ``render(index)`` over
a trial with micro/macro-expressions and blinks (head motion and sensor noise on), and a
virtual-D415 fast-mode ``read()`` (render + reprojection into the depth camera + librealsense
software device + syncer).  One thread for OpenCV, as on one core.

    python bench/synth_speed.py [--frames 300]
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
    fn(0)  # warm up
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t0) * 1000.0 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    kinds = ["micro", "blink", "micro", "macro", "micro", "blink", "micro", "micro"]
    scene = sample_timeline_scene(1, 0, kinds)
    n = min(args.frames, scene.n_frames)
    color, depth = scene.render(0)
    gy, gx = np.mgrid[0:480, 0:848].astype(np.float32)
    mx, my = gx + 0.37, gy - 0.21

    results = {
        "copy color+depth (reference)": per_frame_ms(lambda i: (color.copy(), depth.copy()), n),
        "cv2.remap full color frame (reference)": per_frame_ms(
            lambda i: cv2.remap(color, mx, my, cv2.INTER_LINEAR), n),
        "scene.render (synthetic participant)": per_frame_ms(scene.render, n),
    }
    camera = VirtualD415(sample_timeline_scene(1, 0, kinds), realtime=False)
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
    print(f"{n} frames of a {scene.n_frames}-frame trial, 848x480, cv2 threads = 1")
    print(f"{'step':<66} {'ms/frame':>9} {'x remap':>8} {'fps':>7}")
    for name, ms in results.items():
        print(f"{name:<66} {ms:9.2f} {ms / ref:8.2f} {1000 / ms:7.1f}")


if __name__ == "__main__":
    main()
