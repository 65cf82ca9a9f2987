"""Curvature throughput: vertices per second of the cubic-fit principal curvatures, and the 3D
feature (SI + HK around 23 landmarks, onset + apex) of one synthetic sample.

Run:  python bench/features_curvature.py
Reference in the same run: the per-vertex loop over the same cubic fit (numpy lstsq per vertex),
so the ratio shows what the batched implementation buys.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.spatial import cKDTree

from station.evaluate.synthetic import face_texture, make_sample
from station.features.curvature import principal_curvatures
from station.features.landmarks23 import CurvatureParams
from station.features.sample import curvature_of_sample


def loop_curvatures(points: np.ndarray, queries: np.ndarray, k: int = 24) -> np.ndarray:
    """One vertex at a time: the same PCA frame + cubic fit, solved with np.linalg.lstsq."""
    tree = cKDTree(points)
    out = []
    for q in queries:
        _, idx = tree.query(q, k=k)
        nb = points[idx] - q
        w, v = np.linalg.eigh(np.cov(nb.T))
        n, u = v[:, 0], v[:, 2]
        if n[2] > 0:
            n = -n
        vv = np.cross(n, u)
        x, y, z = nb @ u, nb @ vv, nb @ n
        a = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y, x ** 3, x * x * y, x * y * y, y ** 3], 1)
        c = np.linalg.lstsq(a, z, rcond=None)[0]
        out.append((c[3] + c[5]))  # mean curvature (small-slope), enough to time the work
    return np.array(out)


def main() -> None:
    rng = np.random.default_rng(0)
    g = np.arange(-60, 60, 1.0)
    gx, gy = np.meshgrid(g, g)
    pts = np.column_stack([gx.ravel(), gy.ravel(), 450 + (gx.ravel() ** 2 + gy.ravel() ** 2) / 160])
    queries = pts[rng.choice(len(pts), 4000, replace=False)]
    t = time.perf_counter()
    principal_curvatures(pts, queries, k=24)
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    loop_curvatures(pts, queries[:500])
    t_loop = (time.perf_counter() - t) * len(queries) / 500
    print(f"{len(pts)} points, 4000 query vertices, k=24: batched {len(queries) / t_fast:,.0f} vertices/s, "
          f"per-vertex loop {len(queries) / t_loop:,.0f} vertices/s, ratio {t_loop / t_fast:.1f}x")
    sample = make_sample(rng, "s01", "s01_0000", "I", face_texture(rng, 64), n_frames=14, cloud_step=1.5)
    params = CurvatureParams()
    t = time.perf_counter()
    for _ in range(3):
        curvature_of_sample(sample, params)
    per = (time.perf_counter() - t) / 3
    print(f"3D feature of one sample ({len(sample.cloud(0))} points per frame, 23 landmarks, r={params.radius} mm, "
          f"onset + apex): {per * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
