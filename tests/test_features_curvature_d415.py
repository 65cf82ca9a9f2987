"""Curvature on what a D415 delivers: analytic surfaces, D415 noise, librealsense filters.

The station's defaults (fit radius 16 mm, 12 mm where the two fits disagree by more than 3 sd of
the smaller; kmax, kmin and H each 0 below 6 x their own propagated fit noise) were chosen on the
surfaces of :mod:`station.features.surfaces` named TUNING, VALIDATION, HELD_OUT_ROUND1 and
HELD_OUT (round 2); HELD_OUT_ROUND3 to _ROUND6 were each frozen before a change and scored once.  The full
table (every surface x noise x filter chain) is in docs/benchmarks.md (bench/features_curvature.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from station.features import surfaces as S
from station.features.curvature import FLAT_SI, HK_NAMES, SI_NAMES
from station.features.landmarks23 import CurvatureParams, vertex_categories

pytestmark = pytest.mark.slow


def _correct(ob: S.Observation) -> float:
    params = CurvatureParams()
    scored = S.score_observation(ob, params)
    assert np.array_equal(scored.si, vertex_categories(ob.cloud, ob.queries, params)[0])  # the feature path is this path
    return float(np.mean(scored.right))


def test_noise_model_is_the_d415s():
    """RMS grows with z^2 (0.5 mm at ~0.45 m, 0.9 mm at ~0.61 m) before the filters; z16 adds its
    1 mm rounding (1/12 mm^2)."""
    for sigma in (0.5, 0.9):
        ob = S.observe(S.plane(), sigma, filters="none", size=96)
        assert ob.raw_rms_mm == pytest.approx(np.sqrt(sigma ** 2 + 1 / 12), rel=0.12)
    assert S.distance_for_noise(0.9) / S.distance_for_noise(0.5) == pytest.approx(np.sqrt(1.8))


@pytest.mark.parametrize("sigma,target", [(0.5, 0.95), (0.9, 0.90)])
@pytest.mark.parametrize("make", [S.sphere, S.cylinder, S.saddle, S.paraboloid, lambda: S.cylinder(35.0),
                                  lambda: S.sphere(25.0)])
def test_validation_surfaces_hold_at_d415_noise(make, sigma, target):
    """The station's chain (spatial smooth_alpha 0.75, temporal, holes).  cylinder R=35 at 0.9 mm
    was 73.7 % with the round-1 single threshold (H = kappa/2 sat on it); H's own threshold fixes it.
    sphere R=25: 82.7 % at 0.9 mm with the 16 mm fit only (round 2); the scale selection fixes it."""
    ob = S.observe(make(), sigma, seed=3)  # seeds 0, 1 are the bench's
    assert _correct(ob) >= target


@pytest.mark.parametrize("sigma,floor", [(0.5, 0.80), (0.9, 0.90)])
def test_torus_known_limit(sigma, floor):
    """The torus's second curvature runs through 0 on its top ring: whatever the threshold, the
    points within noise of it go either way (docs/benchmarks.md).  0.5 mm: 81.6-91.0 % in the bench
    (the 95 % target is not met, and lies below the noise floor: the next test); this guards
    against regressions from there."""
    assert _correct(S.observe(S.torus(), sigma, seed=3)) >= floor


def test_unbiased_bound_follows_the_crossing_law():
    """A ring curvature running linearly through both thresholds (+-tau = 6 sd) beside a strong
    tube curvature: an unbiased estimate errs on 2 x sd x sqrt(2/pi) / range of the points
    (0.8 sd per crossing, two crossings); with no crossing it errs on none."""
    from station.features.curvature import Thresholds

    n, sd = 40_000, 0.001
    ring, tube = np.linspace(-0.01, 0.01, n), np.full(n, -0.1)  # SI stays "ridge"
    thr = Thresholds(np.full(n, 6 * sd), np.full(n, 6 * sd), np.full(n, 6 * sd))
    expected = 100 * (1 - 2 * sd * np.sqrt(2 / np.pi) / 0.02)  # 92.0 %
    got = S.unbiased_bound(np.maximum(ring, tube), np.minimum(ring, tube), thr, flat_z=6.0)
    assert got == pytest.approx(expected, abs=0.3)
    assert S.unbiased_bound(np.full(n, -0.03), tube, thr, flat_z=6.0) == 100.0  # a dome, far from every edge
    assert S.unbiased_bound(np.maximum(ring, tube), np.minimum(ring, tube), thr, flat_z=6.0, scale=0.5) \
        == pytest.approx(100 * (1 - sd * np.sqrt(2 / np.pi) / 0.02), abs=0.3)


def test_torus_target_at_half_a_millimetre_is_below_the_noise_floor():
    """Why the 0.5 mm torus rows miss 95 %: even a bias-free fit with the measured scatter (0.85-0.92
    of the predicted sd, bench --noise-floor) would score below it under the same thresholds."""
    ob = S.observe(S.torus(), 0.5, seed=3)
    thr = S.score_observation(ob).thresholds
    wrong = {scale: 100.0 - S.unbiased_bound(ob.kmax, ob.kmin, thr, scale=scale) for scale in (0.85, 0.3)}
    assert wrong[0.85] > 5.0
    assert 0.25 < wrong[0.3] / wrong[0.85] < 0.5  # errors in proportion to the noise: it is the noise that costs


def test_scale_selection_takes_the_small_fit_only_where_the_big_one_is_biased():
    """A 25 mm sphere's cap is 11 mm wide: the 16 mm fit reaches its flat skirt and reads a dome
    (82.7 % at 0.9 mm in round 2, 78 % here); the 12 mm fit is taken where the two disagree.  On a plane the
    16 mm fit is kept almost everywhere (less noise, same truth)."""
    from station.features.curvature import categories, classify_vertices

    ob = S.observe(S.sphere(25.0), 0.9, seed=3)

    def correct(si, hk, thr) -> float:
        truth_si, truth_hk = categories(ob.kmax, ob.kmin, thr)
        return float(np.mean((si == truth_si) & (hk == truth_hk)))

    si, hk, curv, thr = classify_vertices(ob.cloud, ob.queries)
    only16 = classify_vertices(ob.cloud, ob.queries, small_radius=None)
    selected, plain = correct(si, hk, thr), correct(only16[0], only16[1], only16[3])
    assert selected >= 0.90 and selected > plain + 0.1
    assert set(np.unique(curv.radius)) <= {12.0, 16.0} and (curv.radius == 12.0).any()
    assert np.all(only16[2].radius == 16.0)
    flat = S.observe(S.plane(), 0.9, size=96, seed=2)
    assert np.mean(classify_vertices(flat.cloud, flat.queries)[2].radius == 12.0) < 0.05


def test_scale_selection_off_is_the_plain_fit():
    from station.features.curvature import principal_curvatures, scale_selected_curvatures

    ob = S.observe(S.saddle(), 0.5, size=96, seed=4)
    a = scale_selected_curvatures(ob.cloud, ob.queries, small_radius=None, noise_mm=0.5)
    b = principal_curvatures(ob.cloud, ob.queries, radius=16.0, noise_mm=0.5)
    assert np.array_equal(a.kmax, b.kmax) and np.array_equal(a.hessian_cov, b.hessian_cov)



def test_noise_inflation_constant_is_measured():
    from station.features.curvature import FIT_NOISE_INFLATION

    measured = S.measure_noise_inflation(sigmas=(0.5, 0.9), seeds=(3,))
    assert measured == pytest.approx(FIT_NOISE_INFLATION, rel=0.12)


def test_flat_points_are_hk_flat_and_have_no_shape_index():
    ob = S.observe(S.plane(), 0.9, size=96, seed=2)
    si, hk = vertex_categories(ob.cloud, ob.queries, CurvatureParams())
    assert np.mean(hk == HK_NAMES.index("flat")) > 0.98
    assert np.mean(si == FLAT_SI) > 0.98
    ob = S.observe(S.sphere(), 0.9, seed=2)
    si, hk = vertex_categories(ob.cloud, ob.queries, CurvatureParams())
    assert np.mean(si == SI_NAMES.index("cap")) > 0.9 and np.mean(hk == HK_NAMES.index("peak")) > 0.9


@pytest.mark.parametrize("make", [S.sphere, S.saddle])
def test_spatial_filter_at_alpha_075_keeps_curvature(make):
    """librealsense's spatial filter at its default smooth_alpha 0.5 (what `station process` runs)
    distorts curved surfaces (docs/benchmarks.md); at 0.75 the same chain holds the targets."""
    for sigma, target in ((0.5, 0.95), (0.9, 0.90)):
        assert _correct(S.observe(make(), sigma, filters="spatial a=0.75", seed=3)) >= target
