"""Does the coding tool cope with a 1,000 s trial?  Open, seek and memory, long vs short trial.

Writes two trials through the real TrialWriter at 848x480 / 60 fps: 10 s (600 frames) and
1,000 s (60,000 frames), then, in this process, opens each in the real CodingWindow (under
Xvfb), seeks 200 random frames through the window (``seek`` -> refresh: decode, draw, timeline)
and reads the resident memory.  The figures are ratios long / short measured in the same run.

Frames are a flat grey image with a moving bright square (a few KB each after lz4): the bench
is about the file's size in frames (index, cache, timeline), not about JPEG-like content, and
keeps the long trial at ~0.5 GB instead of ~50 GB.  ``--keep DIR`` keeps the files.

    nice xvfb-run -a -s "-screen 0 1600x1000x24" python bench/coding_long_trial.py
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
from _common import scratch


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 1e6


def write_trial(path: Path, n: int) -> Path:
    from station.camera.base import Frameset, StreamTimes
    from station.camera.virtual import VirtualD415
    from station.process.demo import AstronautScene
    from station.record.writer import TrialWriter

    camera = VirtualD415(AstronautScene([], 2), realtime=False)
    calibration = camera.start()
    camera.stop()
    h, w = calibration.color_intrinsics.height, calibration.color_intrinsics.width
    dh, dw = calibration.depth_intrinsics.height, calibration.depth_intrinsics.width
    writer = TrialWriter(path, calibration, attrs={"participant": "bench", "session": 1, "trial": 1})
    base = np.full((h, w, 3), 120, np.uint8)
    depth = np.full((dh, dw), 600, np.uint16)
    t0 = time.perf_counter()
    for k in range(n):
        color = base.copy()
        x = 100 + (k * 3) % (w - 200)
        color[200:240, x:x + 40] = 250
        ts = k * 1000 / 60
        times = StreamTimes(k + 1, ts, float("nan"), float("nan"), ts)
        writer.append(Frameset(color, depth, times, times, t0 + ts / 1000))
        if k % 600 == 599:
            writer.flush()
    return writer.close()


def measure(path: Path, seeks: int = 200) -> dict:
    from PyQt6.QtTest import QTest

    from station.gui.app import app
    from station.gui.coding_window import CodingWindow

    app()
    before = rss_mb()
    t0 = time.perf_counter()
    window = CodingWindow(path, "bench", path.with_suffix(".csv"))
    window.show()
    QTest.qWaitForWindowExposed(window)
    opened = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    targets = rng.integers(0, window.media.n, seeks)
    t0 = time.perf_counter()
    for i in targets:
        window.seek(int(i))
        window.repaint()
    per_seek = (time.perf_counter() - t0) / seeks
    t0 = time.perf_counter()
    window.curve_thread.join()
    curve_s = time.perf_counter() - t0
    after = rss_mb()
    n = window.media.n
    window.close()
    return {"frames": n, "open_s": opened, "seek_ms": per_seek * 1000, "rss_growth_mb": after - before,
            "curve_wait_s": curve_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-s", type=float, default=1000.0)
    parser.add_argument("--keep", type=Path, default=None, help="folder for the trial files, kept afterwards")
    args = parser.parse_args()
    with scratch("coding-bench-", args.keep) as folder:
        return measure_all(args, folder)


def measure_all(args, folder: Path) -> int:
    """Write (or reuse) the short and the long trial in ``folder`` and print what opening them costs."""
    results = {}
    for name, seconds in (("warm-up", 10.0), ("short", 10.0), ("long", args.long_s)):
        path = folder / f"trial-{'short' if name == 'warm-up' else name}.h5"
        t0 = time.perf_counter()
        if not path.exists():
            write_trial(path, int(seconds * 60))
        made = time.perf_counter() - t0
        results[name] = measure(path)
        results[name]["size_mb"] = path.stat().st_size / 1e6
        print(f"{name}: {results[name]} (written in {made:.0f} s)", flush=True)
    s, lg = results["short"], results["long"]
    print(f"long/short: frames x{lg['frames'] / s['frames']:.0f}, open x{lg['open_s'] / s['open_s']:.2f}, "
          f"seek x{lg['seek_ms'] / s['seek_ms']:.2f}, memory growth {s['rss_growth_mb']:.0f} MB vs "
          f"{lg['rss_growth_mb']:.0f} MB (file {lg['size_mb']:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
