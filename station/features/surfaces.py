"""Analytic surfaces seen by a virtual D415, for validating curvature where real data goes.

Why: SI/HK features are only worth fusing if the curvature estimate is right at the D415's
noise.  A surface with known curvature is rendered as the depth camera sees it (pinhole rays,
z16 in the camera's depth units), given the D415's measurement errors by
:class:`station.synth.depthface.D415Noise` (disparity-domain noise: RMS growing with z^2, about
0.9 mm at 0.6 m, spatially correlated; 1/32 px disparity steps; holes), passed through the
station's own librealsense filters (:class:`station.process.face3d.RecordedDepthFilters`:
spatial, temporal over a few frames, hole filling) exactly like a recorded trial, and
deprojected into a cloud in millimetres.  The true curvatures come from the surface's formula
at the true point of each pixel.

A surface is a height towards the camera ``h(x, y)`` (mm) over the plane at ``z0``: depth
``z = z0 - h``.  Its curvatures use the normal pointing at the camera (the station's
convention), so a bump towards the camera has negative principal curvatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from station.camera.base import Calibration, Extrinsics, Intrinsics

#: fx of the virtual D415's depth stream at 848x480 (px): ~1 mm per pixel at 0.6 m.
FX = 603.1
SIGMA_AT_600 = 0.87  # mm: D415Noise's RMS at 0.6 m (0.08 px sub-pixel error, B = 55 mm)


@dataclass(frozen=True)
class Surface:
    """``height(x, y)`` in mm towards the camera; ``region(x, y)`` where points are evaluated."""

    name: str
    height: Callable[[np.ndarray, np.ndarray], np.ndarray]
    region: Callable[[np.ndarray, np.ndarray], np.ndarray]


def _cap(radius: float, extent: float) -> Callable:
    def h(x, y):
        r2 = np.minimum(x * x + y * y, extent * extent)
        return np.sqrt(radius * radius - r2) - np.sqrt(radius * radius - extent * extent)
    return h


def sphere(radius: float = 40.0) -> Surface:
    return Surface(f"sphere R={radius:g}", _cap(radius, 0.8 * radius),
                   lambda x, y: x * x + y * y <= (0.45 * radius) ** 2)


def cylinder(radius: float = 25.0) -> Surface:
    def h(x, y):
        xx = np.minimum(np.abs(x), 0.8 * radius)
        return np.sqrt(radius ** 2 - xx ** 2) - np.sqrt(radius ** 2 - (0.8 * radius) ** 2) + 0 * y
    return Surface(f"cylinder R={radius:g}", h, lambda x, y: (np.abs(x) <= 0.4 * radius) & (np.abs(y) <= 25))


def saddle(a: float = 40.0) -> Surface:
    return Surface(f"saddle z=(x²-y²)/{2 * a:g}", lambda x, y: (x * x - y * y) / (2 * a),
                   lambda x, y: (np.abs(x) <= 16) & (np.abs(y) <= 16))


def paraboloid(a: float = 30.0) -> Surface:
    return Surface(f"paraboloid z=-(x²+y²)/{2 * a:g}", lambda x, y: -np.minimum(x * x + y * y, 50.0 ** 2) / (2 * a),
                   lambda x, y: np.hypot(x, y) <= 15)


def torus(major: float = 45.0, minor: float = 18.0) -> Surface:
    def h(x, y):
        d = np.minimum(np.abs(np.sqrt(x * x + y * y) - major), 0.9 * minor)
        return np.sqrt(minor ** 2 - d * d)
    return Surface(f"torus R={major:g} r={minor:g}", h,
                   lambda x, y: np.abs(np.sqrt(x * x + y * y) - major) <= 0.45 * minor)


def plane() -> Surface:
    return Surface("plane", lambda x, y: 0 * x, lambda x, y: (np.abs(x) <= 20) & (np.abs(y) <= 20))


def ellipsoid(a: float = 30.0, b: float = 50.0) -> Surface:
    """Tuning surface (not in the validation set)."""
    def h(x, y):
        q = np.minimum((x / a) ** 2 + (y / b) ** 2, 0.64)
        return 20.0 * (np.sqrt(1 - q) - 0.6)
    return Surface(f"ellipsoid {a:g}x{b:g}", h, lambda x, y: (x / a) ** 2 + (y / b) ** 2 <= 0.2)


def gaussian_bump(height: float = 12.0, width: float = 14.0) -> Surface:
    """Tuning surface (not in the validation set)."""
    return Surface(f"gaussian bump {height:g}/{width:g}",
                   lambda x, y: height * np.exp(-(x * x + y * y) / (2 * width * width)),
                   lambda x, y: x * x + y * y <= 22 ** 2)


VALIDATION = (sphere, cylinder, saddle, torus, paraboloid)
#: Tuning: what the fit radius, the noise inflation and the threshold factor were chosen on -- the
#: first round's three surfaces (an ellipsoid whose flatter curvature lies near a threshold, a
#: Gaussian bump with an inflection ring, a plane) and, since the per-quantity thresholds of this
#: round, one more size of each validation family.
TUNING = (ellipsoid, gaussian_bump, plane, lambda: sphere(60.0), lambda: cylinder(45.0), lambda: saddle(70.0),
          lambda: torus(55.0, 22.0), lambda: paraboloid(35.0))
#: First round's held-out surfaces (noise seeds 5, 6): looked at while the per-quantity
#: thresholds were developed, so they are reported but no longer held out.
HELD_OUT_ROUND1 = (lambda: sphere(30.0), lambda: sphere(50.0), lambda: cylinder(18.0), lambda: cylinder(35.0),
                   lambda: saddle(30.0), lambda: saddle(50.0), lambda: torus(40.0, 14.0), lambda: paraboloid(25.0),
                   lambda: paraboloid(40.0))
#: Held out, round 2 (noise seeds 11, 12): sizes fixed before the threshold factor was chosen and
#: scored once after it; looked at since (its misses, sphere R=25 and the tori, motivated round 3).
HELD_OUT = (lambda: sphere(25.0), lambda: sphere(45.0), lambda: cylinder(22.0), lambda: cylinder(30.0),
            lambda: saddle(35.0), lambda: saddle(60.0), lambda: torus(50.0, 16.0), lambda: torus(42.0, 20.0),
            lambda: paraboloid(28.0), lambda: paraboloid(45.0))
#: Held out, round 3 (noise seeds 21, 22): fixed on 2026-12-01 before any change of this round
#: (adaptive fit scale), scored once after the method was chosen on the sets above.
HELD_OUT_ROUND3 = (lambda: sphere(22.0), lambda: sphere(35.0), lambda: sphere(55.0), lambda: cylinder(20.0),
                   lambda: cylinder(40.0), lambda: saddle(45.0), lambda: saddle(55.0), lambda: torus(38.0, 16.0),
                   lambda: torus(48.0, 18.0), lambda: torus(52.0, 21.0), lambda: paraboloid(32.0),
                   lambda: paraboloid(42.0))
#: Held out, round 4 (noise seeds 31, 32): fixed on 2026-12-01 after round 3 was scored and before
#: a ridge-following fit was tried (on the sets above only; not adopted, docs/benchmarks.md); so
#: the method is still round 3's, and this set was scored once, as a second held-out test of it.
HELD_OUT_ROUND4 = (lambda: sphere(28.0), lambda: sphere(42.0), lambda: cylinder(24.0), lambda: cylinder(32.0),
                   lambda: saddle(38.0), lambda: saddle(65.0), lambda: torus(36.0, 15.0), lambda: torus(44.0, 17.0),
                   lambda: torus(46.0, 19.0), lambda: torus(54.0, 20.0), lambda: paraboloid(36.0),
                   lambda: paraboloid(48.0))
#: Held out, round 5 (noise seeds 41, 42, 43): fixed on 2026-12-01 after round 4 was scored, before
#: the scale test's level was revisited (small spheres at 0.9 mm were marginal on other seeds).
HELD_OUT_ROUND5 = (lambda: sphere(24.0), lambda: sphere(33.0), lambda: sphere(48.0), lambda: cylinder(21.0),
                   lambda: cylinder(27.0), lambda: saddle(42.0), lambda: saddle(58.0), lambda: torus(42.0, 16.0),
                   lambda: torus(50.0, 20.0), lambda: paraboloid(30.0), lambda: paraboloid(40.0),
                   lambda: paraboloid(52.0))
#: Held out, round 6 (noise seeds 51, 52): fixed on 2026-12-01 after round 5 was scored, before
#: a third fit radius was tried in the scale selection (on the sets above; not adopted), so scored
#: once as one more held-out test of round 5's method.
HELD_OUT_ROUND6 = (lambda: sphere(26.0), lambda: sphere(38.0), lambda: cylinder(19.0), lambda: cylinder(36.0),
                   lambda: saddle(48.0), lambda: saddle(62.0), lambda: torus(39.0, 15.0), lambda: torus(47.0, 17.0),
                   lambda: torus(53.0, 19.0), lambda: paraboloid(34.0), lambda: paraboloid(46.0))
#: (name, surfaces, noise seeds) of the benchmark table, in order.
SETS = (("tuning", TUNING, (0, 1)), ("validation", VALIDATION, (0, 1)), ("held out, round 1", HELD_OUT_ROUND1, (5, 6)),
        ("held out, round 2", HELD_OUT, (11, 12)), ("held out, round 3", HELD_OUT_ROUND3, (21, 22)),
        ("held out, round 4", HELD_OUT_ROUND4, (31, 32)),
        ("held out, round 5", HELD_OUT_ROUND5, (41, 42, 43)),
        ("held out, round 6", HELD_OUT_ROUND6, (51, 52)))


def true_curvatures(surface: Surface, x: np.ndarray, y: np.ndarray,
                    step: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """(kmax, kmin) of the height field at (x, y) mm, normal towards the camera (central differences)."""
    h = surface.height
    hx = (h(x + step, y) - h(x - step, y)) / (2 * step)
    hy = (h(x, y + step) - h(x, y - step)) / (2 * step)
    hxx = (h(x + step, y) - 2 * h(x, y) + h(x - step, y)) / step ** 2
    hyy = (h(x, y + step) - 2 * h(x, y) + h(x, y - step)) / step ** 2
    hxy = (h(x + step, y + step) - h(x + step, y - step) - h(x - step, y + step)
           + h(x - step, y - step)) / (4 * step ** 2)
    from station.features.curvature import monge_curvatures

    return monge_curvatures(hx, hy, hxx, hxy, hyy)


def window_calibration(size: int = 128) -> Calibration:
    """A size x size window of the virtual D415's depth stream, centred on the optical axis."""
    intr = Intrinsics(size, size, size / 2 - 0.5, size / 2 - 0.5, FX, FX, "none", (0.0, 0.0, 0.0, 0.0, 0.0))
    ident = Extrinsics((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0), (0.0, 0.0, 0.0))
    return Calibration(intr, intr, ident, 0.001, 60, {"name": "surface window"})


def distance_for_noise(sigma_mm: float) -> float:
    """Distance (m) at which the D415's raw depth RMS is ``sigma_mm`` (RMS grows with z^2)."""
    return 0.6 * float(np.sqrt(sigma_mm / SIGMA_AT_600))


def render(surface: Surface, calibration: Calibration, z0_mm: float) -> np.ndarray:
    """True depth (H, W) in mm along every pixel ray (fixed-point iteration on z = z0 - h)."""
    intr = calibration.depth_intrinsics
    v, u = np.mgrid[0:intr.height, 0:intr.width].astype(np.float64)
    rx, ry = (u - intr.ppx) / intr.fx, (v - intr.ppy) / intr.fy
    z = np.full(rx.shape, z0_mm)
    for _ in range(30):
        z = z0_mm - surface.height(rx * z, ry * z)
    return z


@dataclass
class Observation:
    """What the station sees of a surface, and the truth at the same pixels."""

    cloud: np.ndarray        # (N, 3) mm, the filtered noisy cloud (every valid pixel)
    queries: np.ndarray      # (Q, 3) mm, cloud points of the evaluated pixels
    kmax: np.ndarray         # (Q,) true principal curvatures at those pixels (1/mm)
    kmin: np.ndarray
    raw_rms_mm: float        # RMS of the raw (unfiltered) depth error in the region
    filtered_rms_mm: float   # RMS after the librealsense filters, mean offset removed
    filtered_offset_mm: float  # mean depth offset the filters add


#: Filter chains of :func:`observe`: the station's (spatial -> temporal -> hole filling, as
#: ``station process`` runs them, spatial smooth_alpha ``face3d.SPATIAL_SMOOTH_ALPHA`` = 0.75),
#: the same with the spatial filter explicitly at 0.75 or at librealsense's default 0.5,
#: without the spatial filter, or none (raw z16).
FILTER_CHAINS = {"station": {}, "spatial a=0.75": {"smooth_alpha": 0.75}, "spatial a=0.5": {"smooth_alpha": 0.5},
                 "no-spatial": {"spatial": False}, "none": None}


def observe(surface: Surface, sigma_mm: float, *, size: int = 176, frames: int = 6, seed: int = 0,
            filters: str = "station", stride: int = 2) -> Observation:
    """Render, add D415 noise at the distance where its RMS is ``sigma_mm``, filter, deproject."""
    from station.process.face3d import filter_sequence
    from station.synth.depthface import D415Noise

    z0 = 1000.0 * distance_for_noise(sigma_mm)
    cal = window_calibration(size)
    intr = cal.depth_intrinsics
    true_z = render(surface, cal, z0)
    noise = D415Noise((size, size), FX, seed)
    band = noise.band
    noise.band = 0  # the D415's left invalid band belongs to the full 848 px frame, not this window
    raw = []
    for i in range(frames):
        z_m = noise((true_z / 1000.0).astype(np.float32), i)
        raw.append(np.round(z_m / cal.depth_scale).astype(np.uint16))
    noise.band = band
    raw = np.stack(raw)
    chain = FILTER_CHAINS[filters]
    depth = raw if chain is None else filter_sequence(raw, np.arange(frames) * 1000.0 / 60, cal, **chain)
    last, last_raw = depth[-1].astype(np.float64), raw[-1].astype(np.float64)
    v, u = np.mgrid[0:intr.height, 0:intr.width].astype(np.float64)
    rx, ry = (u - intr.ppx) / intr.fx, (v - intr.ppy) / intr.fy
    valid = last > 0
    cloud = np.stack([rx * last, ry * last, last], axis=-1)
    tx, ty = rx * true_z, ry * true_z
    sel = np.zeros_like(valid)
    sel[::stride, ::stride] = True
    sel &= valid & surface.region(tx, ty)
    kmax, kmin = true_curvatures(surface, tx[sel], ty[sel])
    region = surface.region(tx, ty)
    ok_raw = region & (last_raw > 0)
    err = last[region & valid] - true_z[region & valid]
    return Observation(cloud[valid], cloud[sel], kmax, kmin,
                       float(np.sqrt(np.mean((last_raw[ok_raw] - true_z[ok_raw]) ** 2))),
                       float(err.std()), float(err.mean()))


@dataclass
class Scored:
    """The station's categories of an observation's points, and which of them are right."""

    si: np.ndarray
    hk: np.ndarray
    curvatures: object       # station.features.curvature.Curvatures
    thresholds: object       # station.features.curvature.Thresholds
    right: np.ndarray        # (Q,) HK type and SI category both equal the truth's


def score_observation(ob: Observation, params=None) -> Scored:
    """The station's recipe (``curvature.classify_vertices`` with ``params``, default
    :class:`~station.features.landmarks23.CurvatureParams`) on ``ob``, against the true
    curvatures classified with the *same* per-point thresholds: the criterion of the benchmark
    table and of the tests."""
    from station.features.curvature import categories, classify_vertices
    from station.features.landmarks23 import CurvatureParams

    params = params or CurvatureParams()
    si, hk, curv, thr = classify_vertices(ob.cloud, ob.queries, radius=params.fit_radius,
                                          small_radius=params.small_fit_radius, scale_z=params.scale_z,
                                          flat_z=params.flat_z)
    truth_si, truth_hk = categories(ob.kmax, ob.kmin, thr)
    return Scored(si, hk, curv, thr, (si == truth_si) & (hk == truth_hk))


def measure_noise_inflation(sigmas=(0.5, 0.9), seeds=(0, 1), radius: float = 16.0, filters: str = "station") -> float:
    """Scatter of the fitted Hessian on the tuning plane over its white-noise prediction.

    For each point the fitted (fxx, fxy, fyy) of a plane (truth 0) is whitened by the fit's
    least-squares covariance for the D415 model's raw RMS (``Curvatures.hessian_cov``): the mean
    squared Mahalanobis length is 3 x inflation^2.  This is
    :data:`station.features.curvature.FIT_NOISE_INFLATION`'s measurement (through the
    station's filter chain, D415 noise as :func:`observe` renders it).
    """
    from station.features.curvature import d415_noise_mm, principal_curvatures

    sq = []
    for sigma in sigmas:
        for seed in seeds:
            ob = observe(plane(), sigma, filters=filters, seed=seed)
            noise = d415_noise_mm(np.linalg.norm(ob.queries, axis=1))
            c = principal_curvatures(ob.cloud, ob.queries, radius=radius, noise_mm=noise)
            cov = c.hessian_cov * (noise ** 2)[:, None, None]
            sq.append(np.einsum("qi,qij,qj->q", c.hessian, np.linalg.inv(cov), c.hessian))
    return float(np.sqrt(np.mean(np.concatenate(sq)) / 3.0))


# ---------------------------------------------------------------------------------------------
# the noise floor: what no unbiased estimator with the fit's noise can beat


def unbiased_bound(kmax: np.ndarray, kmin: np.ndarray, thresholds, *, flat_z: float | None = None,
                   scale: float = 1.0, draws: int = 20, seed: int = 0) -> float:
    """% of points an *unbiased* estimator with the fit's own noise would classify right.

    Why: where a surface's true curvature runs through a zero threshold (a torus's ring
    curvature does, by construction), a point whose curvature lies within about one standard
    deviation of it is called wrong half the time by any estimate with that noise, however
    good.  Each principal curvature is drawn as ``truth + N(0, scale * tau / flat_z)`` -- the
    standard deviation the threshold ``tau`` was made from, times ``scale`` (the measured
    scatter over the predicted one, :func:`scatter_ratio`) -- and classified with the *same*
    per-point thresholds as the truth (:func:`station.features.curvature.categories`): the mean
    over ``draws`` is the score a bias-free fit of the same noise would get.  Expected error per
    threshold crossing ~ 0.8 sd / |dk/dd| of the surface (points per unit curvature).
    """
    from station.features.curvature import FLAT_Z, categories

    z = FLAT_Z if flat_z is None else flat_z
    truth = categories(kmax, kmin, thresholds)
    rng = np.random.default_rng(seed)
    right = []
    for _ in range(draws):
        a = kmax + rng.normal(size=kmax.shape) * scale * thresholds.kmax / z
        b = kmin + rng.normal(size=kmin.shape) * scale * thresholds.kmin / z
        si, hk = categories(np.maximum(a, b), np.minimum(a, b), thresholds)
        right.append(np.mean((si == truth[0]) & (hk == truth[1])))
    return 100.0 * float(np.mean(right))


def scatter_ratio(surface: Surface, sigma_mm: float, seeds=range(100, 108), radius: float = 16.0) -> float:
    """Measured scatter of the ``radius`` fit's kmax over its predicted standard deviation.

    The same pixels seen with independent noise (``seeds``): per point the standard deviation
    over the seeds of the fitted kmax (bias cancels), over the fit's propagated one
    (``noise_thresholds(..., z=1)``, the inflation included); the median over points.  A seed
    whose valid pixels differ from the first one's is skipped.
    """
    from station.features.curvature import classify_vertices

    fitted, predicted, first = [], [], None
    for seed in seeds:
        ob = observe(surface, sigma_mm, seed=seed)
        if first is None:
            first = ob.kmax
        elif not np.array_equal(ob.kmax, first):
            continue
        _, _, curv, thr = classify_vertices(ob.cloud, ob.queries, radius=radius, small_radius=None, flat_z=1.0)
        fitted.append(curv.kmax)
        predicted.append(thr.kmax)
    if len(fitted) < 3:
        raise ValueError(f"scatter_ratio needs the same pixels on at least 3 seeds, got {len(fitted)} of {len(seeds)}")
    return float(np.median(np.std(fitted, axis=0, ddof=1)) / np.median(predicted))
