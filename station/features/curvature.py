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

    @property
    def mean(self) -> np.ndarray:
        return 0.5 * (self.kmax + self.kmin)

    @property
    def gaussian(self) -> np.ndarray:
        return self.kmax * self.kmin


def _cubic_design(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    one = np.ones_like(x)
    return np.stack([one, x, y, x * x, x * y, y * y, x ** 3, x * x * y, x * y * y, y ** 3], axis=-1)


def principal_curvatures(points: np.ndarray, queries: np.ndarray | None = None, *, k: int = 24,
                         viewpoint: tuple[float, float, float] = (0.0, 0.0, 0.0),
                         tree: cKDTree | None = None) -> Curvatures:
    """Principal curvatures at ``queries`` (default: every point) of the surface ``points``.

    ``points`` (N, 3) and ``queries`` (Q, 3) in the same unit (mm); ``k`` neighbours per fit
    (at least 10, the number of cubic coefficients).  Pass a prebuilt ``tree`` of ``points``
    to reuse it across calls.
    """
    points = np.asarray(points, dtype=np.float64)
    queries = points if queries is None else np.asarray(queries, dtype=np.float64)
    if len(points) < 10:
        raise ValueError(f"curvature needs at least 10 points, got {len(points)}")
    k = int(min(max(k, 10), len(points)))
    tree = tree if tree is not None else cKDTree(points)
    _, idx = tree.query(queries, k=k)
    nbrs = points[idx] - queries[:, None, :]  # (Q, k, 3), centred on the query
    scale = np.sqrt((nbrs ** 2).sum(-1)).max(axis=1)  # conditioning: fit in units of the patch size
    scale[scale == 0] = 1.0
    nbrs = nbrs / scale[:, None, None]

    centred = nbrs - nbrs.mean(axis=1, keepdims=True)
    cov = np.einsum("qki,qkj->qij", centred, centred)
    _, vecs = np.linalg.eigh(cov)  # ascending eigenvalues: column 0 is the normal
    normal = vecs[:, :, 0]
    to_view = np.asarray(viewpoint, dtype=np.float64)[None] - queries
    normal = normal * np.where((normal * to_view).sum(-1) < 0, -1.0, 1.0)[:, None]
    u = vecs[:, :, 2]
    v = np.cross(normal, u)

    x = np.einsum("qki,qi->qk", nbrs, u)
    y = np.einsum("qki,qi->qk", nbrs, v)
    z = np.einsum("qki,qi->qk", nbrs, normal)
    design = _cubic_design(x, y)  # (Q, k, 10)
    ata = np.einsum("qki,qkj->qij", design, design) + 1e-9 * np.eye(10)[None]
    atz = np.einsum("qki,qk->qi", design, z)
    coef = np.linalg.solve(ata, atz[..., None])[..., 0]

    fx, fy = coef[:, 1], coef[:, 2]
    fxx, fxy, fyy = 2 * coef[:, 3], coef[:, 4], 2 * coef[:, 5]
    e, f, g = 1 + fx * fx, fx * fy, 1 + fy * fy
    w = np.sqrt(1 + fx * fx + fy * fy)
    l_, m_, n_ = fxx / w, fxy / w, fyy / w
    det_i = e * g - f * f
    gauss = (l_ * n_ - m_ * m_) / det_i
    mean = (e * n_ - 2 * f * m_ + g * l_) / (2 * det_i)
    disc = np.sqrt(np.maximum(mean * mean - gauss, 0.0))
    kmax = (mean + disc) / scale
    kmin = (mean - disc) / scale
    return Curvatures(kmax=kmax, kmin=kmin, normals=normal)


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
