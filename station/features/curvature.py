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

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

SI_NAMES = ("cup", "trough", "rut", "saddle rut", "saddle", "saddle ridge", "ridge", "dome", "cap")
HK_NAMES = ("peak", "none", "pit", "ridge", "flat", "valley", "saddle ridge", "minimal", "saddle valley")


@dataclass(frozen=True)
class Curvatures:
    """Per query point: principal curvatures (1/mm), unit normals towards the viewer."""

    kmax: np.ndarray
    kmin: np.ndarray
    normals: np.ndarray
    sigma: np.ndarray | None = None  # curvature noise of the fit (1/mm), see principal_curvatures

    @property
    def mean(self) -> np.ndarray:
        return 0.5 * (self.kmax + self.kmin)

    @property
    def gaussian(self) -> np.ndarray:
        return self.kmax * self.kmin


def _cubic_design(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    one = np.ones_like(x)
    return np.stack([one, x, y, x * x, x * y, y * y, x ** 3, x * x * y, x * y * y, y ** 3], axis=-1)


#: At most this many neighbours enter one radius fit (an even subsample of the ball): the noise
#: estimate ``sigma`` uses the points actually fitted, so the flat threshold stays consistent.
MAX_FIT_POINTS = 1200


def _neighbourhoods(tree: cKDTree, points: np.ndarray, queries: np.ndarray, k: int,
                    radius: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(Q, M) neighbour indices and a (Q, M) mask: the k nearest, or every point within ``radius``.

    A radius neighbourhood with fewer than 10 points (a hole, the crop edge) falls back to the 10
    nearest points so every query gets a determined fit.
    """
    if radius is None:
        _, idx = tree.query(queries, k=k)
        return idx, np.ones(idx.shape, bool)
    groups = [g if len(g) <= MAX_FIT_POINTS else sorted(g)[::-(-len(g) // MAX_FIT_POINTS)]
              for g in tree.query_ball_point(queries, r=radius)]
    sizes = np.array([len(g) for g in groups])
    width = max(10, int(sizes.max()) if len(sizes) else 10)
    idx = np.zeros((len(queries), width), np.int64)
    mask = np.zeros((len(queries), width), bool)
    small = np.flatnonzero(sizes < 10)
    if len(small):
        _, near = tree.query(queries[small], k=min(10, len(points)))
    for q, g in enumerate(groups):
        if sizes[q] >= 10:
            idx[q, :sizes[q]] = g
            mask[q, :sizes[q]] = True
    for j, q in enumerate(small):
        idx[q, :near.shape[1]] = near[j]
        mask[q, :near.shape[1]] = True
    return idx, mask


def principal_curvatures(points: np.ndarray, queries: np.ndarray | None = None, *, k: int = 24,
                         radius: float | None = None, noise_mm: float | np.ndarray = 0.0,
                         viewpoint: tuple[float, float, float] = (0.0, 0.0, 0.0),
                         tree: cKDTree | None = None, chunk: int = 256) -> Curvatures:
    """Principal curvatures at ``queries`` (default: every point) of the surface ``points``.

    ``points`` (N, 3) and ``queries`` (Q, 3) in the same unit (mm).  Neighbourhood: every point
    within ``radius`` mm (the station default; see :class:`CurvatureParams`), or, with
    ``radius=None``, the ``k`` nearest (at least 10, the number of cubic coefficients).  With
    ``noise_mm`` > 0 (scalar or one per query) the result also carries ``sigma``: the standard
    deviation of the fitted normal curvature that white depth noise of that RMS would cause with
    this neighbourhood (least-squares covariance of the second-order coefficients), from which
    the flat threshold is derived (:func:`flat_threshold`).  Pass a prebuilt ``tree`` of ``points``
    to reuse it across calls.
    """
    points = np.asarray(points, dtype=np.float64)
    queries = points if queries is None else np.asarray(queries, dtype=np.float64)
    if len(points) < 10:
        raise ValueError(f"curvature needs at least 10 points, got {len(points)}")
    k = int(min(max(k, 10), len(points)))
    tree = tree if tree is not None else cKDTree(points)
    noise = np.broadcast_to(np.asarray(noise_mm, dtype=np.float64), (len(queries),))
    parts = [_fit(points, queries[i:i + chunk], tree, k, radius, noise[i:i + chunk], viewpoint)
             for i in range(0, len(queries), chunk)] or [_fit(points, queries, tree, k, radius, noise, viewpoint)]
    return Curvatures(*(np.concatenate([p[j] for p in parts]) for j in range(4)))


def _fit(points, queries, tree, k, radius, noise_mm, viewpoint):
    idx, mask = _neighbourhoods(tree, points, queries, k, radius)
    wts = mask.astype(np.float64)
    count = wts.sum(1)
    nbrs = (points[idx] - queries[:, None, :]) * wts[..., None]  # (Q, M, 3), centred on the query
    scale = np.sqrt((nbrs ** 2).sum(-1)).max(axis=1)  # conditioning: fit in units of the patch size
    scale[scale == 0] = 1.0
    nbrs = nbrs / scale[:, None, None]

    mean = nbrs.sum(axis=1, keepdims=True) / count[:, None, None]
    centred = (nbrs - mean) * wts[..., None]
    cov = np.matmul(centred.transpose(0, 2, 1), centred)
    _, vecs = np.linalg.eigh(cov)  # ascending eigenvalues: column 0 is the normal
    normal = vecs[:, :, 0]
    to_view = np.asarray(viewpoint, dtype=np.float64)[None] - queries
    normal = normal * np.where((normal * to_view).sum(-1) < 0, -1.0, 1.0)[:, None]
    u = vecs[:, :, 2]
    v = np.cross(normal, u)

    frame = np.stack([u, v, normal], axis=-1)  # (Q, 3, 3): columns u, v, n
    local = np.matmul(nbrs, frame)  # (Q, M, 3) tangent-frame coordinates
    x, y, z = local[..., 0], local[..., 1], local[..., 2]
    design = _cubic_design(x, y) * wts[..., None]  # (Q, M, 10), padding rows zero
    ata = np.matmul(design.transpose(0, 2, 1), design) + 1e-9 * np.eye(10)[None]
    atz = np.matmul(design.transpose(0, 2, 1), (z * wts)[..., None])[..., 0]
    coef = np.linalg.solve(ata, atz[..., None])[..., 0]

    fx, fy = coef[:, 1], coef[:, 2]
    fxx, fxy, fyy = 2 * coef[:, 3], coef[:, 4], 2 * coef[:, 5]
    e, f, g = 1 + fx * fx, fx * fy, 1 + fy * fy
    w = np.sqrt(1 + fx * fx + fy * fy)
    l_, m_, n_ = fxx / w, fxy / w, fyy / w
    det_i = e * g - f * f
    gauss = (l_ * n_ - m_ * m_) / det_i
    mean_c = (e * n_ - 2 * f * m_ + g * l_) / (2 * det_i)
    disc = np.sqrt(np.maximum(mean_c * mean_c - gauss, 0.0))
    kmax = (mean_c + disc) / scale
    kmin = (mean_c - disc) / scale
    if np.any(np.asarray(noise_mm) > 0):
        # Var(coef) = sigma^2 (A^T A)^-1 in patch units; the normal curvature 2*c3 (or 2*c5), in mm^-1
        inv = np.linalg.inv(ata)
        var = np.maximum(inv[:, 3, 3], inv[:, 5, 5])
        sigma = 2.0 * (np.asarray(noise_mm, dtype=np.float64) / scale) * np.sqrt(var) / scale
    else:
        sigma = np.zeros(len(queries))
    return kmax, kmin, normal, sigma


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
# noise-aware categories (the station default): principal curvatures within noise of 0 are 0


def snap_to_noise(kmax: np.ndarray, kmin: np.ndarray, tau) -> tuple[np.ndarray, np.ndarray]:
    """Principal curvatures with ``|k| < tau`` set to exactly 0 (``tau`` scalar or per point).

    Why: under depth noise a plane's or a cylinder's zero curvature comes out as small random
    values whose signs are meaningless; eq. 6 turns them into any shape index.  With the noise
    threshold a cylinder is exactly a ridge (SI 0.75) and a plane is exactly flat.
    """
    tau = np.asarray(tau, dtype=np.float64)
    return np.where(np.abs(kmax) < tau, 0.0, kmax), np.where(np.abs(kmin) < tau, 0.0, kmin)


def hk_types_noise(kmax: np.ndarray, kmin: np.ndarray, tau) -> np.ndarray:
    """Table 5 types from snapped principal curvatures: K = 0 when one of them is 0 (parabolic),
    H = 0 when ``|H| < tau``; same numbering as :func:`hk_types` (4 = flat)."""
    k1, k2 = snap_to_noise(kmax, kmin, tau)
    mean = 0.5 * (k1 + k2)
    tau = np.asarray(tau, dtype=np.float64)
    h_col = np.where(mean < -tau, 0, np.where(mean > tau, 2, 1))
    prod = k1 * k2
    k_row = np.where((k1 == 0) | (k2 == 0), 1, np.where(prod > 0, 0, 2))
    return 3 * k_row + h_col


#: SI category of a flat point: it has no shape index and is counted in no SI bin.
FLAT_SI = -1


def si_categories_noise(kmax: np.ndarray, kmin: np.ndarray, tau) -> np.ndarray:
    """Dorai & Jain's 9 categories from snapped principal curvatures; ``FLAT_SI`` when both are 0."""
    k1, k2 = snap_to_noise(kmax, kmin, tau)
    flat = (k1 == 0) & (k2 == 0)
    cat = quantise_shape_index(shape_index(np.where(flat, 0.0, k1), np.where(flat, -1.0, k2)))
    return np.where(flat, FLAT_SI, cat)


#: D415 depth noise model (raw, before filters): RMS = D415_RMS_600_MM * (z / 600 mm)^2, the
#: sub-pixel disparity error spatially correlated over ~D415_CORRELATION_PX pixels
#: (:class:`station.synth.depthface.D415Noise`: 0.08 px, B = 55 mm, f = 603 px; Gaussian 1.2 px).
D415_RMS_600_MM = 0.87
D415_CORRELATION_PX = 1.2


def d415_noise_mm(z_mm: np.ndarray) -> np.ndarray:
    """Raw D415 depth RMS (mm) at distance ``z_mm``: grows with z^2."""
    return D415_RMS_600_MM * (np.asarray(z_mm, dtype=np.float64) / 600.0) ** 2


def correlation_inflation(correlation_px: float = D415_CORRELATION_PX) -> float:
    """How much spatially correlated noise raises a fit's variance over white noise (as a std).

    Noise smoothed by a Gaussian of ``s`` pixels has about one independent value per
    ``4*pi*s^2`` pixels, so a least-squares fit over many pixels sees ``sqrt(4*pi) * s`` times the
    white-noise standard deviation (at least 1).
    """
    return max(1.0, float(np.sqrt(4 * np.pi)) * correlation_px)


def flat_threshold(curv: Curvatures, z: float, inflation: float = 1.0) -> np.ndarray:
    """Per point ``z * inflation * sigma``: below it noise cannot tell a curvature from 0."""
    if curv.sigma is None:
        raise ValueError("flat_threshold needs curvatures computed with noise_mm > 0")
    return z * inflation * curv.sigma
