"""LBP-TOP throughput: the vectorised implementation vs the loop reference kept in the tests.

Run:  python bench/features_lbptop.py
Prints the speed ratio on a volume small enough for the reference (both compute bit-identical
histograms, checked here again), and the fast path's throughput on sample-sized sequences.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_features_lbptop import ref_lbptop  # noqa: E402

from station.features.lbptop import LbpTopParams, lbptop  # noqa: E402


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    params = LbpTopParams(radii=(1, 1, 2), rows=5, cols=5, overlap=2)
    small = rng.integers(0, 256, (10, 32, 32)).astype(np.uint8)
    t_ref = best_of(lambda: ref_lbptop(small, params.radii, params.neighbours, params.mapping, 5, 5, 2), 1)
    t_fast = best_of(lambda: lbptop(small, params), 5)
    reference = ref_lbptop(small, params.radii, params.neighbours, params.mapping, 5, 5, 2)
    same = np.array_equal(lbptop(small, params), reference)
    print(f"volume 10x32x32, R=(1,1,2), P=8x3, u2, 5x5 blocks: reference {t_ref * 1e3:.0f} ms, "
          f"vectorised {t_fast * 1e3:.2f} ms, ratio {t_ref / t_fast:.0f}x, bit-identical: {same}")
    for shape in ((20, 64, 64), (30, 128, 128), (26, 328, 240)):
        vol = rng.integers(0, 256, shape).astype(np.uint8)
        p = LbpTopParams(radii=(1, 1, 4), rows=5, cols=5)
        t = best_of(lambda: lbptop(vol, p), 3)
        voxels = np.prod(shape)
        print(f"volume {shape[0]}x{shape[1]}x{shape[2]}, R=(1,1,4): {t * 1e3:.1f} ms per sequence, "
              f"{voxels / t / 1e6:.1f} Mvoxel/s (3 planes x 8 neighbours)")


if __name__ == "__main__":
    main()
