"""Curvature, shape index and HK types checked against analytic surfaces with known curvatures."""

from __future__ import annotations

import numpy as np
import pytest

from station.features.curvature import (HK_NAMES, SI_NAMES, hk_types, principal_curvatures,
                                        quantise_shape_index, shape_index)
from station.features.landmarks23 import (CurvatureParams, landmark_histograms,
                                          landmark_weights, mean_difference_image, sequence_features)
from station.vocab.landmarks import LANDMARKS_23

VIEW = (0.0, 0.0, 1000.0)  # camera above the surfaces, looking down -z


def grid(half=12.0, step=1.0, jitter=0.0, seed=0):
    rng = np.random.default_rng(seed)
    g = np.arange(-half, half + step / 2, step)
    x, y = np.meshgrid(g, g)
    x = x.ravel() + rng.uniform(-jitter, jitter, x.size)
    y = y.ravel() + rng.uniform(-jitter, jitter, y.size)
    return x, y


def at_origin(points, **kw):
    """Curvature at the sample above (x, y) = (0, 0)."""
    return principal_curvatures(points, points[[np.argmin((points[:, :2] ** 2).sum(1))]], **kw)


def surface(fn, **kw):
    x, y = grid(**kw)
    return np.stack([x, y, fn(x, y)], axis=1)


def test_plane_has_zero_curvature_and_flat_type():
    rng = np.random.default_rng(1)
    pts = surface(lambda x, y: 0.3 * x - 0.2 * y + 5.0, jitter=0.3)
    rot, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    pts = pts @ rot.T  # a tilted plane anywhere: curvature must not care
    c = principal_curvatures(pts, pts[:50], viewpoint=tuple(1000 * rot[:, 2]))
    assert np.abs(c.kmax).max() < 1e-9 and np.abs(c.kmin).max() < 1e-9
    assert set(hk_types(c.mean, c.gaussian)) == {4}  # flat
    assert HK_NAMES[4] == "flat"


@pytest.mark.parametrize("radius", [20.0, 50.0])
def test_sphere_cap_facing_the_viewer(radius):
    pts = surface(lambda x, y: np.sqrt(radius ** 2 - x ** 2 - y ** 2), jitter=0.2)
    c = at_origin(pts, viewpoint=VIEW)
    assert c.kmax[0] == pytest.approx(-1 / radius, rel=0.02)
    assert c.kmin[0] == pytest.approx(-1 / radius, rel=0.02)
    assert c.normals[0] @ np.array([0, 0, 1.0]) > 0.99
    assert shape_index(c.kmax, c.kmin)[0] == pytest.approx(1.0, abs=0.02)
    assert SI_NAMES[quantise_shape_index(shape_index(c.kmax, c.kmin))[0]] == "cap"
    assert HK_NAMES[hk_types(c.mean, c.gaussian)[0]] == "peak"


def test_sphere_seen_from_inside_is_a_cup_and_pit():
    radius = 30.0
    pts = surface(lambda x, y: -np.sqrt(radius ** 2 - x ** 2 - y ** 2))
    c = at_origin(pts, viewpoint=VIEW)
    assert c.kmin[0] == pytest.approx(1 / radius, rel=0.02)
    assert SI_NAMES[quantise_shape_index(shape_index(c.kmax, c.kmin))[0]] == "cup"
    assert HK_NAMES[hk_types(c.mean, c.gaussian)[0]] == "pit"


def test_cylinder_is_a_ridge_with_one_zero_curvature():
    radius = 25.0
    pts = surface(lambda x, y: np.sqrt(radius ** 2 - x ** 2))
    c = at_origin(pts, viewpoint=VIEW)
    assert c.kmax[0] == pytest.approx(0.0, abs=1e-4)
    assert c.kmin[0] == pytest.approx(-1 / radius, rel=0.02)
    assert shape_index(c.kmax, c.kmin)[0] == pytest.approx(0.75, abs=0.01)
    assert SI_NAMES[quantise_shape_index(shape_index(c.kmax, c.kmin))[0]] == "ridge"
    assert HK_NAMES[hk_types(c.mean, c.gaussian)[0]] == "ridge"
    pts[:, 2] *= -1  # the inside of the cylinder: valley
    c = at_origin(pts, viewpoint=VIEW)
    assert c.kmax[0] == pytest.approx(1 / radius, rel=0.02)
    assert HK_NAMES[hk_types(c.mean, c.gaussian)[0]] == "valley"
    assert SI_NAMES[quantise_shape_index(shape_index(c.kmax, c.kmin))[0]] == "rut"


def test_saddle_has_opposite_curvatures():
    a = 20.0
    pts = surface(lambda x, y: (x ** 2 - y ** 2) / (2 * a), half=6.0, step=0.5)
    c = at_origin(pts, viewpoint=VIEW)
    assert c.kmax[0] == pytest.approx(1 / a, rel=0.03)
    assert c.kmin[0] == pytest.approx(-1 / a, rel=0.03)
    assert shape_index(c.kmax, c.kmin)[0] == pytest.approx(0.5, abs=0.01)
    assert HK_NAMES[hk_types(c.mean, c.gaussian)[0]] == "minimal"


def test_ellipsoid_pole_curvatures_and_all_points_against_closed_form():
    a, b, cc = 40.0, 25.0, 30.0
    x, y = grid(half=10.0, step=0.7)
    z = cc * np.sqrt(1 - x ** 2 / a ** 2 - y ** 2 / b ** 2)
    pts = np.stack([x, y, z], axis=1)
    c = at_origin(pts, viewpoint=VIEW)
    assert sorted([c.kmax[0], c.kmin[0]]) == pytest.approx([-cc / b ** 2, -cc / a ** 2], rel=0.03)
    # Gaussian curvature of an ellipsoid at every (interior) point: 1 / (a b c (x²/a⁴+y²/b⁴+z²/c⁴))²
    inner = (np.abs(x) < 6) & (np.abs(y) < 6)
    c_all = principal_curvatures(pts, pts[inner], viewpoint=VIEW)
    p = pts[inner]
    k_true = 1.0 / (a * b * cc * ((p[:, 0] / a ** 2) ** 2 + (p[:, 1] / b ** 2) ** 2 + (p[:, 2] / cc ** 2) ** 2)) ** 2
    assert np.allclose(c_all.gaussian, k_true, rtol=0.05)
    assert (c_all.mean < 0).all()


def test_shape_index_convention_and_quantisation():
    k = np.array([[-1, -1], [0, -1], [1, -1], [1, 0], [1, 1]], float)
    si = shape_index(k[:, 0], k[:, 1])
    assert si == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    assert [SI_NAMES[i] for i in quantise_shape_index(si)] == ["cap", "ridge", "saddle", "rut", "cup"]
    assert quantise_shape_index(np.array([0.0, 1 / 16 - 1e-9, 1 / 16, 1.0])).tolist() == [0, 0, 1, 8]


def test_hk_table_of_besl_and_jain():
    h = np.array([-1, 0, 1, -1, 0, 1, -1, 0, 1.0])
    k = np.array([1, 1, 1, 0, 0, 0, -1, -1, -1.0])
    assert hk_types(h, k, eps_h=0.1, eps_k=0.1).tolist() == list(range(9))


def test_landmark_neighbourhoods_see_local_bump_and_weights_follow_motion():
    x, y = grid(half=30.0, step=1.0)
    z = 500 - 0.001 * (x ** 2 + y ** 2)  # nearly flat face, camera at origin looking +z
    bump = (x - 10) ** 2 + (y - 0) ** 2 < 36
    z = z - np.where(bump, np.sqrt(np.clip(36 - (x - 10) ** 2 - y ** 2, 0, None)), 0)  # dome towards camera
    cloud = np.stack([x, y, z], axis=1)
    lm = np.array([[10.0, 0.0, 494.0], [-15.0, 0.0, 500.0]])
    si_h, hk_h = landmark_histograms(cloud, lm, CurvatureParams(radius=4.0, k=16, fit_radius=None))
    assert si_h.sum(1) == pytest.approx([1.0, 1.0])
    assert si_h[0, 7:].sum() > 0.6  # dome/cap on the bump
    assert hk_h[1, 4] > 0.9  # flat far from it
    holes = np.vstack([cloud, np.full((5, 3), np.nan)])
    lm_nan = np.vstack([lm, np.full((1, 3), np.nan)])
    si_n, hk_n = landmark_histograms(holes, lm_nan, CurvatureParams(radius=4.0, k=16, fit_radius=None))
    assert np.array_equal(si_n[:2], si_h) and not si_n[2].any() and not hk_n[2].any()
    diff = np.zeros((40, 40), np.float32)
    diff[5:15, 5:15] = 10
    w = landmark_weights(diff, np.array([[10, 10], [30, 30]], float), radius=3)
    assert w[0] > w[1] and w.mean() == pytest.approx(1.0)
    assert mean_difference_image(np.stack([np.zeros((4, 4)), np.full((4, 4), 6.0)])).max() == 6.0


def test_sequence_feature_layout():
    x, y = grid(half=40.0, step=2.0)
    cloud = np.stack([x, y, 500 - 0.002 * (x ** 2 + y ** 2)], axis=1)
    rng = np.random.default_rng(0)
    lm3 = np.stack([rng.uniform(-20, 20, 49), rng.uniform(-20, 20, 49), np.full(49, 500.0)], axis=1)
    gray = rng.integers(0, 255, (5, 32, 32)).astype(np.uint8)
    lm2 = rng.uniform(4, 28, (49, 2))
    feats = sequence_features([cloud, cloud], [lm3, lm3], gray, lm2, CurvatureParams(radius=6.0))
    assert feats["si"].shape == (23 * 2 * 9,) and feats["sihk"].shape == (23 * 2 * 9 * 2,)
    assert len(LANDMARKS_23) == 23


def _plain_fit(points, query, radius, noise_mm, viewpoint):
    """Per-query reference of the station's radius fit, written as a loop (no shared code with it)."""
    from scipy.spatial import cKDTree

    from station.features.curvature import MAX_FIT_POINTS

    ball = sorted(cKDTree(points).query_ball_point(query, r=radius))
    if len(ball) > MAX_FIT_POINTS:
        ball = ball[::-(-len(ball) // MAX_FIT_POINTS)]
    nb = points[ball] - query
    scale = np.sqrt((nb ** 2).sum(1)).max()
    nb = nb / scale
    _, vecs = np.linalg.eigh(np.cov(nb.T, bias=True) * len(nb))
    n = vecs[:, 0] if vecs[:, 0] @ (np.asarray(viewpoint) - query) >= 0 else -vecs[:, 0]
    u = vecs[:, 2]
    v = np.cross(n, u)
    x, y, z = nb @ u, nb @ v, nb @ n
    a = np.column_stack([np.ones_like(x), x, y, x * x, x * y, y * y, x ** 3, x * x * y, x * y * y, y ** 3])
    ata = a.T @ a + 1e-9 * np.eye(10)
    c = np.linalg.solve(ata, a.T @ z)
    fx, fy, fxx, fxy, fyy = c[1], c[2], 2 * c[3], c[4], 2 * c[5]
    w = np.sqrt(1 + fx * fx + fy * fy)
    first = np.array([[1 + fx * fx, fx * fy], [fx * fy, 1 + fy * fy]])
    second = np.array([[fxx, fxy], [fxy, fyy]]) / w
    k = np.sort(np.linalg.eigvals(np.linalg.solve(first, second)).real)[::-1] / scale
    inv = np.linalg.inv(ata)
    sigma = 2 * noise_mm / scale ** 2 * np.sqrt(max(inv[3, 3], inv[5, 5]))
    return k[0], k[1], sigma, len(ball)


@pytest.mark.parametrize("spacing,half", [(1.0, 30.0), (0.45, 20.0)])  # 0.45 mm: balls over 1 200 points, subsampled
def test_batched_radius_fit_equals_a_plain_loop(spacing, half):
    rng = np.random.default_rng(4)
    g = np.arange(-half, half + 1e-9, spacing)
    x, y = [a.ravel() for a in np.meshgrid(g, g)]
    pts = np.column_stack([x, y, 450 + (x * x - 0.5 * y * y) / 90 + rng.normal(0, 0.3, x.size)])
    queries = pts[rng.choice(len(pts), 12, replace=False)]
    c = principal_curvatures(pts, queries, radius=16.0, noise_mm=0.7)
    for i, q in enumerate(queries):
        kmax, kmin, sigma, n = _plain_fit(pts, q, 16.0, 0.7, (0.0, 0.0, 0.0))
        assert c.count[i] == n
        assert c.kmax[i] == pytest.approx(kmax, rel=1e-9, abs=1e-12)
        assert c.kmin[i] == pytest.approx(kmin, rel=1e-9, abs=1e-12)
        assert c.sigma[i] == pytest.approx(sigma, rel=1e-9)
    if spacing < 0.5:
        assert c.count.max() <= 1200 and c.count.min() > 600  # the subsampled path was taken


def test_radius_balls_are_the_kd_tree_balls_boundary_included():
    from scipy.spatial import cKDTree

    from station.features.neighbourhoods import CellGrid, radius_balls

    g = np.arange(-20.0, 21.0)  # integer grid: many points exactly at distance 5
    x, y, z = [a.ravel() for a in np.meshgrid(g, g, np.arange(-3.0, 4.0))]
    pts = np.column_stack([x, y, z])
    queries = np.vstack([pts[::97], [[0.5, 0.25, 0.0], [100.0, 0.0, 0.0]]])  # one query far outside
    balls = radius_balls(CellGrid(pts, 2.5), queries, 5.0)
    for i, ref in enumerate(cKDTree(pts).query_ball_point(queries, r=5.0)):
        got = balls.index[i, :balls.count[i]]
        assert sorted(got.tolist()) == sorted(ref)
        assert np.allclose(balls.offsets[:, i, :balls.count[i]].T, pts[got] - queries[i])
    assert balls.count[-1] == 0


def test_per_quantity_thresholds_follow_the_fit_covariance():
    """H's threshold is its own: ~0.8 of a principal curvature's on a symmetric patch, and all three
    scale with the depth noise."""
    from station.features.curvature import Thresholds, categories, noise_thresholds

    rng = np.random.default_rng(2)
    g = np.arange(-30.0, 30.5, 1.0)
    x, y = [a.ravel() for a in np.meshgrid(g, g)]
    pts = np.column_stack([x, y, 500 + rng.normal(0, 0.5, x.size)])
    c = principal_curvatures(pts, pts[np.hypot(x, y) < 5], radius=16.0, noise_mm=0.5)
    t1, t2 = noise_thresholds(c, 0.5, z=3), noise_thresholds(c, 1.0, z=3)
    assert np.allclose(t2.kmax, 2 * t1.kmax) and np.allclose(t2.mean, 2 * t1.mean)
    assert 0.7 < np.median(t1.mean / t1.kmax) < 0.9
    si, hk = categories(np.array([0.0, 0.0, -0.05, 0.05]), np.array([0.0, -0.05, -0.05, -0.05]),
                        Thresholds(*(np.full(4, 0.01),) * 3))
    assert [HK_NAMES[h] for h in hk] == ["flat", "ridge", "peak", "minimal"]
    assert si[0] == -1 and [SI_NAMES[s] for s in si[1:]] == ["ridge", "cap", "saddle"]
