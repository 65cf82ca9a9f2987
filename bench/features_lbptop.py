"""LBP-TOP throughput, side by side with scikit-image, plus the bit-identity checks.

Run:  OPENBLAS_NUM_THREADS=1 nice python bench/features_lbptop.py

1. A 40x128x128 uint8 volume (the issue's size): scikit-image's ``local_binary_pattern``
   (P = 8, R = 1, ``method="default"``, bilinear) applied plane by plane -- 40 XY images,
   128 XT and 128 YT images, i.e. every centre of the three planes, the work LBP-TOP does
   (scikit-image only samples circles, so R = 1 on every plane; its histograms are not
   computed, which only flatters it) -- against ``station.features.lbptop.lbptop`` with
   R = (1, 1, 4), 5x5 blocks, u2, in each variant.  Interleaved runs, best of N each.
2. Bit identity of the fast path with the plain-loop references kept in the tests
   (``ref_casme2_blocks`` = the LBPTOP.m transcription, ``ref_lbptop`` = the station definition)
   on a small volume, and the time of those references for scale.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_features_lbptop import ref_lbptop  # noqa: E402
from test_features_lbptop_zhao import ref_casme2_blocks  # noqa: E402

from station.features.lbptop import LbpTopParams, lbptop  # noqa: E402


def skimage_planes(vol: np.ndarray) -> None:
    from skimage.feature import local_binary_pattern

    for t in range(vol.shape[0]):
        local_binary_pattern(vol[t], 8, 1)
    for y in range(vol.shape[1]):
        local_binary_pattern(vol[:, y, :], 8, 1)
    for x in range(vol.shape[2]):
        local_binary_pattern(vol[:, :, x], 8, 1)


def side_by_side(vol: np.ndarray, repeats: int) -> dict[str, float]:
    fns = {"scikit-image plane by plane": lambda: skimage_planes(vol)}
    for variant, interp in (("zhao", "bilinear"), ("zhao", "nearest"), ("station", "bilinear")):
        p = LbpTopParams(radii=(1, 1, 4), variant=variant, interpolation=interp)
        fns[f"station lbptop {variant}/{interp}"] = lambda p=p: lbptop(vol, p)
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {k: min(v) for k, v in times.items()}


def main() -> None:
    rng = np.random.default_rng(0)
    vol = rng.integers(0, 256, (40, 128, 128)).astype(np.uint8)
    best = side_by_side(vol, repeats=7)
    sk = best["scikit-image plane by plane"]
    print("40x128x128 uint8 volume, P = 8 on three planes")
    for name, t in best.items():
        ratio = "" if name.startswith("scikit") else f"  {sk / t:.1f}x faster than scikit-image"
        print(f"  {name:40s} {t * 1e3:7.1f} ms{ratio}")

    small = rng.integers(0, 256, (9, 20, 24)).astype(np.uint8)
    small[:, 2:8, 3:9] = 9  # flat patch: single-precision ties
    for interp in ("bilinear", "nearest"):
        p = LbpTopParams(radii=(1, 1, 2), rows=2, cols=2, interpolation=interp)
        t = time.perf_counter()
        ref = ref_casme2_blocks(small, 2, 2, 0, (1, 1, 2), (8, 8, 8), 2, 1, interp == "bilinear", "u2")
        t_ref = time.perf_counter() - t
        t = time.perf_counter()
        fast = lbptop(small, p)
        t_fast = time.perf_counter() - t
        print(f"9x20x24, 2x2 blocks, zhao/{interp}: LBPTOP.m transcription {t_ref * 1e3:.0f} ms, fast "
              f"{t_fast * 1e3:.2f} ms, bit-identical: {np.array_equal(fast, ref)}")
    p = LbpTopParams(radii=(1, 1, 2), rows=2, cols=2, overlap=2, variant="station")
    same = np.array_equal(lbptop(small, p), ref_lbptop(small, (1, 1, 2), (8, 8, 8), "u2", 2, 2, 2))
    print(f"9x20x24, 2x2 blocks overlap 2, station: bit-identical to its loop reference: {same}")


if __name__ == "__main__":
    main()
