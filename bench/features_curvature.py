"""Curvature under D415 noise: surface x noise x filter chain -> % of points with the right HK type
and SI category; then the throughput of the batched fit.

Run:  OPENBLAS_NUM_THREADS=1 nice python bench/features_curvature.py

Each analytic surface (:mod:`station.features.surfaces`) is rendered at the distance where the
D415's raw depth RMS is 0.5 or 0.9 mm, given the D415 noise model (RMS ~ z^2, spatially
correlated, quantised, holes), passed through a librealsense filter chain over 6 frames, and
deprojected.  Curvature uses the station's defaults (:class:`CurvatureParams`: fit radius 16 mm,
flat threshold 3 sigma of the D415-derived fit noise).  A point is correct when its HK type and
its SI category (or "flat, no SI") both equal those of the true curvatures under the same flat
threshold.  The fit radius and the threshold factor were chosen on the tuning surfaces
(ellipsoid, Gaussian bump, plane) only; sphere, cylinder, saddle, torus and paraboloid were not
looked at while choosing.
"""

from __future__ import annotations

import time

import numpy as np

from station.features import surfaces as S
from station.features.curvature import (correlation_inflation, d415_noise_mm, flat_threshold, hk_types_noise,
                                        principal_curvatures, si_categories_noise)
from station.features.landmarks23 import CurvatureParams


def score(ob: S.Observation, params: CurvatureParams) -> tuple[float, float, float, float, float]:
    """(% both correct, % HK, % SI, median tau, % of points truly flat)."""
    dist = np.linalg.norm(ob.queries, axis=1)
    c = principal_curvatures(ob.cloud, ob.queries, radius=params.fit_radius, noise_mm=d415_noise_mm(dist))
    tau = flat_threshold(c, params.flat_z, correlation_inflation())
    hk, si = hk_types_noise(c.kmax, c.kmin, tau), si_categories_noise(c.kmax, c.kmin, tau)
    hk0, si0 = hk_types_noise(ob.kmax, ob.kmin, tau), si_categories_noise(ob.kmax, ob.kmin, tau)
    return (100 * np.mean((hk == hk0) & (si == si0)), 100 * np.mean(hk == hk0), 100 * np.mean(si == si0),
            float(np.median(tau)), 100 * np.mean(si0 == -1))


def table(params: CurvatureParams, chains=("station", "spatial a=0.5", "no-spatial", "none"), seeds=(0, 1)) -> None:
    print("| set | surface | noise (mm, raw) | filters | points | correct (HK and SI) % | HK % | SI % | "
          "tau (1/mm) | truly flat % | filtered error sd / offset (mm) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for group, makers in (("tuning", S.TUNING), ("validation", S.VALIDATION), ("held out", S.HELD_OUT)):
        group_seeds = tuple(s + 5 for s in seeds) if group == "held out" else seeds
        for mk in makers:
            surf = mk()
            for sigma in (0.5, 0.9):
                for chain in chains:
                    res, n, sd, off = [], 0, [], []
                    for seed in group_seeds:
                        ob = S.observe(surf, sigma, filters=chain, seed=seed)
                        res.append(score(ob, params))
                        n += len(ob.queries)
                        sd.append(ob.filtered_rms_mm)
                        off.append(ob.filtered_offset_mm)
                    r = np.mean(res, axis=0)
                    print(f"| {group} | {surf.name} | {sigma} | {chain} | {n} | **{r[0]:.1f}** | {r[1]:.1f} | "
                          f"{r[2]:.1f} | {r[3]:.4f} | {r[4]:.0f} | {np.mean(sd):.2f} / {np.mean(off):+.2f} |",
                          flush=True)


def throughput() -> None:
    rng = np.random.default_rng(0)
    g = np.arange(-60, 60, 1.0)
    gx, gy = np.meshgrid(g, g)
    pts = np.column_stack([gx.ravel(), gy.ravel(), 450 + (gx.ravel() ** 2 + gy.ravel() ** 2) / 160])
    queries = pts[rng.choice(len(pts), 2000, replace=False)]
    for label, kw in (("k = 24 nearest (before)", {"k": 24}), ("radius 16 mm (now)",
                                                              {"radius": 16.0, "noise_mm": 0.9})):
        t = time.perf_counter()
        principal_curvatures(pts, queries, **kw)
        dt = time.perf_counter() - t
        print(f"{label}: {len(queries) / dt:,.0f} vertices/s")


if __name__ == "__main__":
    table(CurvatureParams())
    throughput()
