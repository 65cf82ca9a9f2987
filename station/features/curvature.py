"""Principal curvatures of a point cloud, shape index (SI) and HK surface types (paper 4.2.2-4.2.3).

Curvature per vertex (after Goldfeather & Interrante 2004, "cubic fit"):

1. the ``k`` nearest points of the vertex (KD-tree) give a normal by PCA, oriented towards the
   ``viewpoint`` (the camera, at the origin of the camera frame the clouds are in);
2. the neighbours in the tangent frame (u, v, n) are fitted, least squares, by the cubic
   ``z = c0 + c1 x + c2 y + c3 x^2 + c4 xy + c5 y^2 + c6 x^3 + c7 x^2 y + c8 x y^2 + c9 y^3``;
   the constant and linear terms absorb noise on the vertex and a slightly wrong PCA normal;
3. the Weingarten (shape operator) matrix of that Monge patch at the vertex,
   ``W = I^-1 II`` with ``I = [[1+fx^2, fx fy], [fx fy, 1+fy^2]]`` and
   ``II = [[fxx, fxy], [fxy, fyy]] / sqrt(1+fx^2+fy^2)``; its eigenvalues are the principal
   curvatures ``kmax >= kmin``, ``K = det W = kmax*kmin`` (eq. 4), ``H = tr W / 2`` (eq. 5).

The station's default (:func:`classify_vertices`): every point within 16 mm, or within 12 mm
where the two fits disagree by more than noise allows (:func:`scale_selected_curvatures`), and
zero thresholds for kmax, kmin and H from each fit's own propagated noise
(:func:`noise_thresholds`); validated on analytic surfaces through the D415 noise model and the
station's librealsense filters (docs/benchmarks.md, "Curvature under D415 noise").

Sign convention (Besl & Jain, the one Table 5 uses): curvature is measured along the normal
pointing at the viewer, so a surface bulging towards the camera (nose tip, a cap) has
``kmax, kmin < 0``, ``H < 0``, ``K > 0`` ("peak"); a cup (eye socket) has ``H > 0`` ("pit").

Shape index, paper eq. 6: ``SI = 1/2 - (1/pi) * arctan((kmax + kmin) / (kmax - kmin))``,
computed with ``arctan2`` so umbilics are defined; it lies in [0, 1] with this convention:
cup 0, rut 0.25, saddle 0.5, ridge 0.75, cap 1 (Dorai & Jain).  A plane (kmax = kmin = 0) has
no shape; it gets 0.5.  Quantised into 9 bins (Fig. 7, Dorai & Jain's categories): bin edges
at 1/16, 3/16, ..., 15/16: cup, trough, rut, saddle rut, saddle, saddle ridge, ridge, dome, cap.

HK types (Table 5): ``H`` is 0 when ``|H| < eps_h``, ``K`` is 0 when ``|K| < eps_k`` (mm^-1 and
mm^-2); type index = 3 * row + column with rows K > 0, K = 0, K < 0 and columns H < 0, H = 0,
H > 0: 0 peak, 1 none (K>0, H=0: impossible, kept as a bin as the paper does), 2 pit, 3 ridge,
4 flat, 5 valley, 6 saddle ridge, 7 minimal surface, 8 saddle valley.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial import cKDTree

from station.features.neighbourhoods import CellGrid, nested_balls

SI_NAMES = ("cup", "trough", "rut", "saddle rut", "saddle", "saddle ridge", "ridge", "dome", "cap")
HK_NAMES = ("peak", "none", "pit", "ridge", "flat", "valley", "saddle ridge", "minimal", "saddle valley")


@dataclass(frozen=True)
class Curvatures:
    """Per query point: principal curvatures (1/mm), unit normals towards the viewer.

    ``sigma``: the fitted normal curvature's standard deviation under white depth noise of the
    ``noise_mm`` given to :func:`principal_curvatures` (1/mm; the earlier flat threshold's base).
    ``hessian_cov``: (Q, 3, 3) least-squares covariance of the fitted second derivatives
    (fxx, fxy, fyy) per unit depth noise variance (mm^-4 per mm^2): multiply by sigma^2 (mm^2)
    for their covariance in mm^-2.  ``count``: the number of points fitted.
    """

    kmax: np.ndarray
    kmin: np.ndarray
    normals: np.ndarray
    sigma: np.ndarray | None = None
    hessian_cov: np.ndarray | None = None
    count: np.ndarray | None = None
    hessian: np.ndarray | None = None  # (Q, 3) fitted fxx, fxy, fyy of the tangent-frame patch (1/mm)
    radius: np.ndarray | None = None  # (Q,) fit radius (mm) each point's values come from (scale selection)

    @property
    def mean(self) -> np.ndarray:
        return 0.5 * (self.kmax + self.kmin)

    @property
    def gaussian(self) -> np.ndarray:
        return self.kmax * self.kmin


#: At most this many neighbours enter one radius fit (an even subsample of the ball): the noise
#: estimate ``sigma`` uses the points actually fitted, so the flat threshold stays consistent.
MAX_FIT_POINTS = 1200

# The cubic's 10 monomials x^a y^b in the column order of the module docstring, and where the
# normal equations find them among the moments sum(x^a y^b) (a + b <= 6) and sum(z x^a y^b).
_EXP_X = np.array([0, 1, 0, 2, 1, 0, 3, 2, 1, 0])
_EXP_Y = np.array([0, 0, 1, 0, 1, 2, 0, 1, 2, 3])
_ATA_AT = (_EXP_X[:, None] + _EXP_X[None, :], _EXP_Y[:, None] + _EXP_Y[None, :])
_HESSIAN_J = np.diag([2.0, 1.0, 2.0])  # (c3, c4, c5) -> (fxx, fxy, fyy)
_MU_ROW = np.array([0, 4, 1, 2, 3, 5, 6])  # basis row of x^a, a = 0..6 (see _fit_offsets)
_NU_ROW = np.array([8, 7, 9, 10])  # basis row of z x^a, a = 0..3


def principal_curvatures(points: np.ndarray, queries: np.ndarray | None = None, *, k: int = 24,
                         radius: float | None = None, noise_mm: float | np.ndarray = 0.0,
                         viewpoint: tuple[float, float, float] = (0.0, 0.0, 0.0),
                         tree: cKDTree | None = None, chunk: int = 128) -> Curvatures:
    """Principal curvatures at ``queries`` (default: every point) of the surface ``points``.

    ``points`` (N, 3) and ``queries`` (Q, 3) in the same unit (mm).  Neighbourhood: every point
    within ``radius`` mm (the station default; see :class:`CurvatureParams`; balls of more than
    :data:`MAX_FIT_POINTS` points are evenly subsampled in index order), or, with
    ``radius=None``, the ``k`` nearest (at least 10, the number of cubic coefficients).  A radius
    ball with fewer than 10 points falls back to the 10 nearest.  With ``noise_mm`` > 0 (scalar
    or one per query) the result's ``sigma`` is the standard deviation of the fitted normal
    curvature that white depth noise of that RMS would cause (see :class:`Curvatures`).  Pass a
    prebuilt ``tree`` of ``points`` to reuse it (k-nearest path and the fallback).

    Speed: the neighbourhoods come from a cell grid as padded arrays
    (:mod:`station.features.neighbourhoods`), and each chunk of queries is fitted at once from
    its normal equations, built as moment sums by one batched matrix product (no per-query
    Python); the result equals the per-query least-squares fit to rounding (tests).
    """
    points, queries, noise = _inputs(points, queries, noise_mm)
    if radius is not None:
        return _radius_fits(points, queries, (float(radius),), noise, viewpoint, tree, chunk)[0]
    out = {name: np.empty((len(queries),) + shape) for name, shape in _FIT_FIELDS}
    k = int(min(max(k, 10), len(points)))
    tree = tree if tree is not None else cKDTree(points)
    for i in range(0, len(queries), chunk):
        sel = np.arange(i, min(i + chunk, len(queries)))
        _store(out, sel, _fit_knn(points, queries[sel], tree, k, noise[sel], viewpoint))
    return Curvatures(**out)


def _inputs(points, queries, noise_mm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points, queries (default: the points), noise per query) as float64, checked."""
    points = np.asarray(points, dtype=np.float64)
    queries = points if queries is None else np.asarray(queries, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got shape {points.shape}")
    if len(points) < 10:
        raise ValueError(f"curvature needs at least 10 points, got {len(points)}")
    return points, queries, np.broadcast_to(np.asarray(noise_mm, dtype=np.float64), (len(queries),))


def _radius_fits(points: np.ndarray, queries: np.ndarray, radii: tuple[float, ...], noise: np.ndarray,
                 viewpoint, tree: cKDTree | None, chunk: int = 128) -> list[Curvatures]:
    """The radius fits of :func:`principal_curvatures`, one :class:`Curvatures` per radius.

    Several radii share one cell grid (cells of half the largest radius) and each chunk's
    neighbour search (:func:`~station.features.neighbourhoods.nested_balls`); with one radius
    this is exactly the single-radius fit.
    """
    outs = [{name: np.empty((len(queries),) + shape) for name, shape in _FIT_FIELDS} for _ in radii]
    grid = CellGrid(points, cell=max(radii) / 2.0)
    order = np.lexsort(grid.cell_of(queries).T[::-1])  # queries of a cell together: shared candidates
    for i in range(0, len(queries), chunk):
        sel = order[i:i + chunk]
        for out, balls in zip(outs, nested_balls(grid, queries[sel], radii, cap=MAX_FIT_POINTS, with_index=False)):
            few = balls.count < 10
            dense = np.flatnonzero(~few)
            for j in range(0, len(dense), 32):  # the fit in sub-chunks that stay in cache
                part = dense[j:j + 32]
                width = int(balls.count[part].max())
                res = _fit_offsets(balls.offsets[:, part, :width], balls.count[part], balls.d2max[part],
                                   queries[sel[part]], noise[sel[part]], viewpoint)
                _store(out, sel[part], res)
            if few.any():  # a hole or the crop edge: the 10 nearest points
                tree = tree if tree is not None else cKDTree(points)
                rows = sel[few]
                _store(out, rows, _fit_knn(points, queries[rows], tree, 10, noise[rows], viewpoint))
    return [Curvatures(**out) for out in outs]


#: (Curvatures field, per-query shape) in the order :func:`_fit_offsets` returns them
_FIT_FIELDS = (("kmax", ()), ("kmin", ()), ("normals", (3,)), ("sigma", ()), ("hessian_cov", (3, 3)), ("count", ()),
               ("hessian", (3,)))


def _store(out: dict, rows: np.ndarray, res: tuple) -> None:
    for (name, _), value in zip(_FIT_FIELDS, res, strict=True):
        out[name][rows] = value


def _fit_knn(points, queries, tree, k, noise, viewpoint):
    _, idx = tree.query(queries, k=k)
    offsets = np.stack([points[idx, c] - queries[:, None, c] for c in range(3)])
    d2max = np.max(offsets[0] ** 2 + offsets[1] ** 2 + offsets[2] ** 2, axis=1)
    return _fit_offsets(offsets, np.full(len(queries), k), d2max, queries, noise, viewpoint)


def _fit_offsets(offsets: np.ndarray, count: np.ndarray, d2max: np.ndarray, queries: np.ndarray,
                 noise_mm: np.ndarray, viewpoint) -> tuple:
    """Batched cubic fits of Q neighbourhoods: ``offsets`` (3, Q, M) neighbour minus query, 0-padded.

    Same estimator as the per-query recipe of the module docstring, in units of each patch's
    size (conditioning): PCA normal from the neighbours' scatter, then the normal equations
    ``A^T A c = A^T z`` of the cubic in the tangent frame.  Their entries are moments
    ``sum x^a y^b`` (a + b <= 6) and ``sum z x^a y^b`` (a + b <= 3), all of which come out of one
    batched product ``[x^0..x^6, z x^0..z x^3] @ [y^0..y^6]^T`` (padding rows are 0 and add
    only to the count, which is set exactly).
    """
    q_n, m = offsets.shape[1], offsets.shape[2]
    cnt = count.astype(np.float64)
    scale = np.sqrt(d2max)
    scale[scale == 0] = 1.0
    pq = offsets.transpose(1, 0, 2)  # (Q, 3, M) in mm; patch units = mm / scale
    mean = offsets.sum(axis=2).T / cnt[:, None]
    scatter = np.matmul(pq, pq.transpose(0, 2, 1)) - cnt[:, None, None] * mean[:, :, None] * mean[:, None, :]
    _, vecs = np.linalg.eigh(scatter / (scale * scale)[:, None, None])  # ascending: column 0 is the normal
    normal = vecs[:, :, 0]
    to_view = np.asarray(viewpoint, dtype=np.float64)[None] - queries
    normal = normal * np.where((normal * to_view).sum(-1) < 0, -1.0, 1.0)[:, None]
    u = vecs[:, :, 2]
    frame = np.stack([u, normal, np.cross(normal, u)], axis=1) / scale[:, None, None]  # rows u, n, v per scale
    # basis rows: 0..10 = 1, x^2, x^3, x^4, x, x^5, x^6, z x, z, z x^2, z x^3 and 11..17 = 1, y, ..., y^6;
    # x, z, y at rows 4, 8, 12 so the tangent-frame coordinates are written there by one product
    basis = np.empty((q_n, 18, m))
    np.matmul(frame, pq, out=basis[:, 4:13:4])
    x, z, y = basis[:, 4], basis[:, 8], basis[:, 12]
    basis[:, 0] = 1.0
    basis[:, 11] = 1.0
    np.multiply(x, x, out=basis[:, 1])
    np.multiply(basis[:, 1], x, out=basis[:, 2])
    np.multiply(basis[:, 1], basis[:, 1], out=basis[:, 3])
    np.multiply(basis[:, 3], x, out=basis[:, 5])
    np.multiply(basis[:, 3], basis[:, 1], out=basis[:, 6])
    np.multiply(z, x, out=basis[:, 7])
    np.multiply(basis[:, 7], x, out=basis[:, 9])
    np.multiply(basis[:, 9], x, out=basis[:, 10])
    for e in range(13, 18):
        np.multiply(basis[:, e - 1], y, out=basis[:, e])
    moments = np.matmul(basis[:, :11], basis[:, 11:].transpose(0, 2, 1))  # (Q, 11, 7)
    mu = moments[:, _MU_ROW]  # (Q, 7, 7): sum x^a y^b, a = 0..6
    mu[:, 0, 0] = cnt
    ata = mu[:, _ATA_AT[0], _ATA_AT[1]] + 1e-9 * np.eye(10)[None]
    atz = moments[:, _NU_ROW[_EXP_X], _EXP_Y]
    coef = np.linalg.solve(ata, atz[..., None])[..., 0]

    fxx, fxy, fyy = 2 * coef[:, 3], coef[:, 4], 2 * coef[:, 5]
    kmax, kmin = monge_curvatures(coef[:, 1], coef[:, 2], fxx, fxy, fyy)
    kmax, kmin = kmax / scale, kmin / scale

    inv = np.linalg.inv(ata)
    # Var(coef) = sigma^2 (A^T A)^-1 in patch units; the normal curvature 2*c3 (or 2*c5), in mm^-1
    sigma = 2.0 * (noise_mm / scale) * np.sqrt(np.maximum(inv[:, 3, 3], inv[:, 5, 5])) / scale
    hess_cov = _HESSIAN_J @ inv[:, 3:6, 3:6] @ _HESSIAN_J / scale[:, None, None] ** 4
    hessian = np.stack([fxx, fxy, fyy], axis=1) / scale[:, None]
    return kmax, kmin, normal, sigma, hess_cov, cnt, hessian


def monge_curvatures(fx, fy, fxx, fxy, fyy) -> tuple[np.ndarray, np.ndarray]:
    """(kmax, kmin) of the height field ``z = f(x, y)`` from its first and second derivatives:
    the eigenvalues of the Weingarten matrix ``I^-1 II`` (module docstring), via H and K."""
    e, f, g = 1 + fx * fx, fx * fy, 1 + fy * fy
    w = np.sqrt(1 + fx * fx + fy * fy)
    l_, m_, n_ = fxx / w, fxy / w, fyy / w
    det_i = e * g - f * f
    gauss = (l_ * n_ - m_ * m_) / det_i
    mean = (e * n_ - 2 * f * m_ + g * l_) / (2 * det_i)
    disc = np.sqrt(np.maximum(mean * mean - gauss, 0.0))
    return mean + disc, mean - disc


def shape_index(kmax: np.ndarray, kmin: np.ndarray) -> np.ndarray:
    """Paper eq. 6 in [0, 1] (cup 0, saddle 0.5, cap 1 under the Besl & Jain sign convention)."""
    return 0.5 - np.arctan2(kmax + kmin, kmax - kmin) / np.pi


def quantise_shape_index(si: np.ndarray) -> np.ndarray:
    """9 categories of Dorai & Jain (Fig. 7): edges at (2i+1)/16, i = 0..7."""
    edges = (2 * np.arange(8) + 1) / 16.0
    return np.searchsorted(edges, si, side="right")


def hk_types(mean: np.ndarray, gauss: np.ndarray, eps_h: float = 0.005, eps_k: float = 2.5e-5) -> np.ndarray:
    """Besl & Jain surface type 0..8 (see module docstring) from H and K with zero thresholds."""
    h_col = np.where(mean < -eps_h, 0, np.where(mean > eps_h, 2, 1))
    k_row = np.where(gauss > eps_k, 0, np.where(gauss < -eps_k, 2, 1))
    return 3 * k_row + h_col


def normalised_histogram(labels: np.ndarray, n_bins: int = 9) -> np.ndarray:
    """Frequencies s_i / M of eqs. 7-8 (zeros when the neighbourhood is empty)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_bins)[:n_bins].astype(np.float64)
    total = counts.sum()
    return counts / total if total > 0 else counts


# ---------------------------------------------------------------------------------------------
# the D415 noise model the thresholds use

#: SI category of a flat point: it has no shape index and is counted in no SI bin.
FLAT_SI = -1

#: D415 depth noise model (raw, before filters): RMS = D415_RMS_600_MM * (z / 600 mm)^2, the
#: sub-pixel disparity error spatially correlated over ~1.2 pixels
#: (:class:`station.synth.depthface.D415Noise`: 0.08 px, B = 55 mm, f = 603 px; Gaussian 1.2 px).
D415_RMS_600_MM = 0.87


def d415_noise_mm(z_mm: np.ndarray) -> np.ndarray:
    """Raw D415 depth RMS (mm) at distance ``z_mm``: grows with z^2."""
    return D415_RMS_600_MM * (np.asarray(z_mm, dtype=np.float64) / 600.0) ** 2


# ---------------------------------------------------------------------------------------------
# per-quantity noise thresholds (the station default since the curvature work of issue #14)

#: Fitted-curvature noise on the station's filter chain over the white-noise prediction for the
#: D415's raw RMS: the temporal filter lowers the noise, its spatial correlation (1.2 px, more
#: after the spatial filter) raises a fit's variance; together the fitted (fxx, fxy, fyy) of a
#: 16 mm fit scatter 1.6x the white-noise least-squares prediction.  Measured on the *tuning*
#: plane (Mahalanobis scatter of the fitted Hessian; 1.52-1.68 over 0.5 / 0.9 mm and two seeds:
#: :func:`station.features.surfaces.measure_noise_inflation`, checked by the tests).
FIT_NOISE_INFLATION = 1.6

#: A quantity is 0 when within FLAT_Z of its own standard deviation (see noise_thresholds).  Noise
#: alone would say 3 (0.3 % false "curved" per test); but the 16 mm cubic fit and the filters also
#: bias curvature (up to ~0.004 1/mm on a 30 mm sphere at 0.9 mm, docs/benchmarks.md), and on the
#: surfaces looked at (tuning, validation, first-round held-out: 44 rows) 6 had the fewest rows
#: below target (6, against 9 at 3; 6 and 7 tie): a surface whose curvature runs through a
#: threshold -- a torus's top ring -- loses ~0.8 sd x (points per unit curvature) per crossing
#: whatever the factor, and a larger factor moves the crossings out of more tori.
FLAT_Z = 6.0


@dataclass(frozen=True)
class Thresholds:
    """Per point zero thresholds (1/mm) for ``kmax``, ``kmin`` and the mean curvature ``H``."""

    kmax: np.ndarray
    kmin: np.ndarray
    mean: np.ndarray


def noise_thresholds(curv: Curvatures, noise_mm: float | np.ndarray, z: float = FLAT_Z,
                     inflation: float = FIT_NOISE_INFLATION) -> Thresholds:
    """Zero thresholds ``z * sd`` of kmax, kmin and H, each from its own propagated noise.

    Why per quantity: one fit gives the covariance of its second derivatives
    ``Cov(fxx, fxy, fyy) = s^2 (J (A^T A)^-1 J^T)`` (``Curvatures.hessian_cov``; ``s`` = depth
    noise RMS ``noise_mm`` x ``inflation``, the measured effect of the filters and the noise's
    spatial correlation).  A principal curvature is the normal curvature along its eigenvector
    ``e`` of the fitted Hessian, so ``Var(k) = g^T Cov g`` with ``g = (e_x^2, 2 e_x e_y, e_y^2)``
    (first order); ``H = (fxx + fyy) / 2`` has ``Var(H) = (C_xx + C_yy + 2 C_xy) / 4`` -- about
    0.8 of a principal curvature's standard deviation, not the same threshold.  ``z`` = 3: a flat
    point is called curved by one test with probability 0.3 % (the default, :data:`FLAT_Z`, is 6).
    """
    if curv.hessian_cov is None or curv.hessian is None:
        raise ValueError("noise_thresholds needs curvatures from principal_curvatures (hessian_cov)")
    noise = np.broadcast_to(np.asarray(noise_mm, dtype=np.float64), curv.kmax.shape)
    cov = curv.hessian_cov * ((inflation * noise) ** 2)[:, None, None]
    fxx, fxy, fyy = curv.hessian[:, 0], curv.hessian[:, 1], curv.hessian[:, 2]
    theta = 0.5 * np.arctan2(2 * fxy, fxx - fyy)  # direction of the larger eigenvalue
    ex, ey = np.cos(theta), np.sin(theta)
    g_max = np.stack([ex * ex, 2 * ex * ey, ey * ey], axis=1)
    g_min = np.stack([ey * ey, -2 * ex * ey, ex * ex], axis=1)
    sd_max = np.sqrt(np.maximum(np.einsum("qi,qij,qj->q", g_max, cov, g_max), 0.0))
    sd_min = np.sqrt(np.maximum(np.einsum("qi,qij,qj->q", g_min, cov, g_min), 0.0))
    sd_h = 0.5 * np.sqrt(np.maximum(cov[:, 0, 0] + cov[:, 2, 2] + 2 * cov[:, 0, 2], 0.0))
    return Thresholds(z * sd_max, z * sd_min, z * sd_h)


def categories(kmax: np.ndarray, kmin: np.ndarray, thr: Thresholds) -> tuple[np.ndarray, np.ndarray]:
    """(SI category or ``FLAT_SI``, HK type) of principal curvatures under per-point thresholds.

    A principal curvature below its threshold is 0.  HK (Table 5): K = 0 when either principal
    curvature is 0 (parabolic), else its sign is that of their product; H = 0 when
    ``|H| < thr.mean`` (H's own test on the unsnapped curvatures).  SI: "flat, no SI"
    (``FLAT_SI``) when both are 0, else eq. 6 of the snapped curvatures, quantised (a cylinder
    is exactly a ridge).  The same function classifies the true curvatures for validation, with
    the estimate's thresholds.
    """
    k1 = np.where(np.abs(kmax) < thr.kmax, 0.0, kmax)
    k2 = np.where(np.abs(kmin) < thr.kmin, 0.0, kmin)
    mean = 0.5 * (kmax + kmin)
    h_col = np.where(mean < -thr.mean, 0, np.where(mean > thr.mean, 2, 1))
    k_row = np.where((k1 == 0) | (k2 == 0), 1, np.where(k1 * k2 > 0, 0, 2))
    flat = (k1 == 0) & (k2 == 0)
    si = quantise_shape_index(shape_index(np.where(flat, 0.0, k1), np.where(flat, -1.0, k2)))
    return np.where(flat, FLAT_SI, si), 3 * k_row + h_col


# ---------------------------------------------------------------------------------------------
# fit-scale selection (the station default since round 3 of issue #14)

#: The smaller fit radius of the scale selection (mm) and its consistency test (in standard
#: deviations of the smaller fit): see :func:`scale_selected_curvatures`.
SMALL_FIT_RADIUS = 12.0
SCALE_Z = 2.5


def scale_selected_curvatures(points: np.ndarray, queries: np.ndarray, *, radius: float = 16.0,
                              small_radius: float | None = SMALL_FIT_RADIUS, scale_z: float = SCALE_Z,
                              noise_mm: float | np.ndarray, viewpoint: tuple[float, float, float] = (0.0, 0.0, 0.0),
                              tree: cKDTree | None = None) -> Curvatures:
    """Per point, the ``radius`` fit unless the ``small_radius`` fit contradicts it (Lepski's rule).

    Why: a fit radius is a bias/noise trade.  16 mm keeps D415 noise low enough for the flat
    tests, but where the surface changes within 16 mm (a feature smaller than the fit: the cap of
    a 25 mm sphere next to its flat skirt, the nose tip) the cubic's bias turns a cap into a dome.
    The smaller fit is less biased and noisier; when the two disagree by more than noise can
    explain -- ``|k_16 - k_12| > scale_z`` x the smaller fit's own propagated standard deviation
    (:func:`noise_thresholds` at z = 1) for kmax or kmin -- the larger one is biased and the point
    takes every field of the smaller fit, its thresholds included (its ``radius`` says which).
    ``scale_z``: chosen over the surfaces looked at (tuning, validation, held-out rounds 1-4 and
    small spheres on 4 more noise seeds: 118 rows): 2.5 left 16 rows below target, 3 (the
    noise-only test level) and 2 left 17, a 10 mm small radius 21-26; held-out rounds 5 and 6
    were each scored once after (docs/benchmarks.md).  ``small_radius=None``: the plain ``radius`` fit.
    """
    if small_radius is not None and not 0 < small_radius < radius:
        raise ValueError(f"small_radius must lie between 0 and radius ({radius:g} mm), got {small_radius:g}")
    if small_radius is None:
        big = principal_curvatures(points, queries, radius=radius, noise_mm=noise_mm, viewpoint=viewpoint, tree=tree)
        return replace(big, radius=np.full(len(big.kmax), float(radius)))
    points, queries, noise = _inputs(points, queries, noise_mm)
    big, small = _radius_fits(points, queries, (float(radius), float(small_radius)), noise, viewpoint, tree)
    sd = noise_thresholds(small, noise, z=1.0)
    biased = (np.abs(big.kmax - small.kmax) > scale_z * sd.kmax) | (np.abs(big.kmin - small.kmin) > scale_z * sd.kmin)
    fields = {}
    for name, _ in _FIT_FIELDS:
        a, b = getattr(big, name), getattr(small, name)
        fields[name] = np.where(biased.reshape((-1,) + (1,) * (a.ndim - 1)), b, a)
    return Curvatures(**fields, radius=np.where(biased, float(small_radius), float(radius)))


def classify_vertices(points: np.ndarray, queries: np.ndarray, *, radius: float = 16.0,
                      small_radius: float | None = SMALL_FIT_RADIUS, scale_z: float = SCALE_Z,
                      flat_z: float = FLAT_Z, viewpoint: tuple[float, float, float] = (0.0, 0.0, 0.0),
                      tree: cKDTree | None = None) -> tuple[np.ndarray, np.ndarray, Curvatures, Thresholds]:
    """(SI category or ``FLAT_SI``, HK type, curvatures, thresholds) of each query vertex.

    The station's whole recipe in one place (the 3D feature, the bench and the tests call it):
    the D415 model's depth RMS at each vertex's distance from ``viewpoint``, the scale-selected
    fit (:func:`scale_selected_curvatures`), per-quantity thresholds at ``flat_z``
    (:func:`noise_thresholds`) and :func:`categories`.
    """
    queries = np.asarray(queries, dtype=np.float64)
    noise = d415_noise_mm(np.linalg.norm(queries - np.asarray(viewpoint, dtype=np.float64), axis=1))
    curv = scale_selected_curvatures(points, queries, radius=radius, small_radius=small_radius, scale_z=scale_z,
                                     noise_mm=noise, viewpoint=viewpoint, tree=tree)
    thr = noise_thresholds(curv, noise, flat_z)
    si, hk = categories(curv.kmax, curv.kmin, thr)
    return si, hk, curv, thr
