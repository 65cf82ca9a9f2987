"""The 3D feature of a sample: SI and HK histograms around 23 landmarks, weighted by 2D motion.

Paper 4.2.4, eqs. 7-12.  Landmark numbering is the 49-point layout (iPar-CLR / IntraFace, and
dlib's 68 without the jaw and the two inner mouth corners): 0-4 right brow, 5-9 left brow,
10-13 nose bridge, 14-18 nose base, 19-24 right eye, 25-30 left eye, 31-42 outer lip
(31 right corner, 34 top centre, 37 left corner, 40 bottom centre), 43-48 inner lip.

The paper shows its 23 landmarks only in a figure (Fig. 8); we chose 23 that cover the regions
whose action units carry micro-expressions:

* brows (AU 1, 2, 4): 0, 2, 4 (right: outer, middle, inner), 5, 7, 9 (left: inner, middle, outer)
* eyes (AU 6, 7): 19, 22 (right outer / inner corner), 25, 28 (left inner / outer corner)
* nose (AU 9, 10): 10 (bridge top), 13 (tip), 14, 16, 18 (right ala, base centre, left ala)
* mouth (AU 12, 14, 15, 20, 23, 24, 25): 31, 32, 34, 36, 37 (upper lip: corners and arch),
  38, 40, 42 (lower lip)

Per landmark j and frame k (onset, then apex): the 9-bin SI and HK histograms (eqs. 7, 8) of the
vertices within ``radius`` mm of the 3D landmark.  Weight ``w_j`` (eqs. 9, 10) = mean of the 2D
mean-difference image ``D = mean_t |I_t - I_onset|`` in a disc of ``weight_radius`` pixels around
the onset 2D landmark, divided by the mean weight over the 23 landmarks (so weights describe
*where* the face moved, independently of the sequence's overall contrast).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from station.features.curvature import (FLAT_SI, FLAT_Z, SCALE_Z, SMALL_FIT_RADIUS, classify_vertices, hk_types,
                                        normalised_histogram, principal_curvatures, quantise_shape_index,
                                        shape_index)
from station.vocab.landmarks import LANDMARKS_23


@dataclass(frozen=True)
class CurvatureParams:
    """3D feature parameters.

    ``radius``: the landmark neighbourhood (mm) whose vertices are counted (eqs. 7-8).
    ``fit_radius``: every point within this many mm enters each vertex's cubic fit (default 16:
    chosen on tuning surfaces so the estimate holds at D415 noise, docs/benchmarks.md); ``None``
    restores the earlier k-nearest fit (``k``) with the fixed thresholds ``eps_h``/``eps_k``.
    ``flat_z``: kmax, kmin and H are each 0 when below ``flat_z`` times their own noise (the
    fit's least-squares covariance for the D415's depth RMS at that distance, times the measured
    inflation of the station's filter chain: ``curvature.noise_thresholds``); flat points are HK
    "flat" and have no SI bin.  ``small_fit_radius`` / ``scale_z``: where a fit of this radius
    contradicts the ``fit_radius`` fit by more than ``scale_z`` of its own noise, the vertex takes
    the smaller fit (``curvature.scale_selected_curvatures``; ``None`` = always ``fit_radius``).
    """

    radius: float = 10.0
    fit_radius: float | None = 16.0
    flat_z: float = FLAT_Z
    small_fit_radius: float | None = SMALL_FIT_RADIUS
    scale_z: float = SCALE_Z
    k: int = 24
    eps_h: float = 0.005
    eps_k: float = 2.5e-5
    weight_radius: float = 5.0
    weighted: bool = True
    max_vertices: int = 64  # vertices per landmark neighbourhood whose curvature is computed (even subsample)

    def key(self) -> dict:
        return {"radius": float(self.radius), "fit_radius": self.fit_radius, "flat_z": float(self.flat_z),
                "thresholds": "per-quantity (kmax, kmin, H), fit noise x1.6",
                "small_fit_radius": self.small_fit_radius, "scale_z": float(self.scale_z),
                "k": int(self.k), "eps_h": float(self.eps_h), "eps_k": float(self.eps_k),
                "weight_radius": float(self.weight_radius), "weighted": bool(self.weighted),
                "max_vertices": int(self.max_vertices)}


def vertex_categories(cloud: np.ndarray, queries: np.ndarray, params: CurvatureParams,
                      viewpoint: tuple[float, float, float] = (0.0, 0.0, 0.0),
                      tree: cKDTree | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(SI category or ``FLAT_SI``, HK type) of each query vertex of ``cloud`` (mm, camera frame)."""
    if params.fit_radius is None:
        curv = principal_curvatures(cloud, queries, k=params.k, viewpoint=viewpoint, tree=tree)
        return (quantise_shape_index(shape_index(curv.kmax, curv.kmin)),
                hk_types(curv.mean, curv.gaussian, params.eps_h, params.eps_k))
    si, hk, _, _ = classify_vertices(cloud, queries, radius=params.fit_radius, small_radius=params.small_fit_radius,
                                     scale_z=params.scale_z, flat_z=params.flat_z, viewpoint=viewpoint, tree=tree)
    return si, hk


def landmark_histograms(cloud: np.ndarray, landmarks: np.ndarray, params: CurvatureParams,
                        viewpoint: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """(L, 9) SI and (L, 9) HK frequencies of the cloud's vertices near each of L 3D landmarks.

    Non-finite points are ignored; a landmark with no finite position gets all-zero histograms.
    """
    cloud = np.asarray(cloud, dtype=np.float64)
    cloud = cloud[np.isfinite(cloud).all(axis=1)]  # holes in the depth can leave NaN points
    landmarks = np.asarray(landmarks, dtype=np.float64)
    n_lm = len(landmarks)
    si_hist = np.zeros((n_lm, 9))
    hk_hist = np.zeros((n_lm, 9))
    if len(cloud) < 10:
        return si_hist, hk_hist
    tree = cKDTree(cloud)
    valid = np.isfinite(landmarks).all(axis=1)  # a landmark without depth: empty neighbourhood (zeros)
    groups = [[] for _ in range(n_lm)]
    for j, group in zip(np.flatnonzero(valid), tree.query_ball_point(landmarks[valid], r=params.radius)):
        step = -(-len(group) // params.max_vertices) if params.max_vertices else 1
        groups[j] = sorted(group)[::max(step, 1)]
    used = np.unique(np.concatenate([np.asarray(g, dtype=np.int64) for g in groups] + [np.zeros(0, np.int64)]))
    if len(used) == 0:
        return si_hist, hk_hist
    si_bin, hk_bin = vertex_categories(cloud, cloud[used], params, viewpoint, tree)
    position = {int(v): i for i, v in enumerate(used)}
    for j, group in enumerate(groups):
        rows = [position[int(v)] for v in group]
        si_rows = si_bin[rows]
        # flat vertices have no shape index: they count in M (eq. 7) but in no SI bin
        si_hist[j] = normalised_histogram(si_rows[si_rows != FLAT_SI]) * (np.mean(si_rows != FLAT_SI) if rows else 0)
        hk_hist[j] = normalised_histogram(hk_bin[rows])
    return si_hist, hk_hist


def mean_difference_image(gray: np.ndarray) -> np.ndarray:
    """``mean_t |I_t - I_0|`` of a (T, H, W) grey sequence: where the face moved."""
    seq = np.asarray(gray, dtype=np.float32)
    if len(seq) < 2:
        return np.zeros(seq.shape[1:], np.float32)
    return np.abs(seq[1:] - seq[:1]).mean(axis=0)


def landmark_weights(diff: np.ndarray, landmarks2d: np.ndarray, radius: float) -> np.ndarray:
    """Mean of ``diff`` in a disc around each 2D landmark (x, y), normalised to mean 1."""
    h, w = diff.shape
    yy, xx = np.mgrid[0:h, 0:w]
    weights = np.zeros(len(landmarks2d))
    for j, (x, y) in enumerate(np.asarray(landmarks2d, dtype=np.float64)):
        disc = (xx - x) ** 2 + (yy - y) ** 2 <= radius ** 2
        weights[j] = float(diff[disc].mean()) if disc.any() else 0.0
    mean = weights.mean()
    return weights / mean if mean > 0 else np.ones(len(landmarks2d))


def sequence_features(clouds: list[np.ndarray], landmarks3d: list[np.ndarray], gray: np.ndarray,
                      landmarks2d_onset: np.ndarray, params: CurvatureParams) -> dict[str, np.ndarray]:
    """SI (eq. 11), HK (eq. 12) and SI+HK vectors from the onset and apex frames.

    ``clouds``/``landmarks3d``: the frames to use (onset, apex), 3D landmarks as (49, 3) arrays;
    ``gray`` the whole (T, H, W) 2D sequence and ``landmarks2d_onset`` its (49, 2) onset landmarks.
    Layout of SI: landmark-major, then frame, then the 9 bins (23 * frames * 9 values).
    """
    sel = list(LANDMARKS_23)
    if params.weighted:
        weights = landmark_weights(mean_difference_image(gray), np.asarray(landmarks2d_onset)[sel],
                                   params.weight_radius)
    else:
        weights = np.ones(len(sel))
    si_frames, hk_frames = [], []
    for cloud, lm in zip(clouds, landmarks3d):
        si_h, hk_h = landmark_histograms(cloud, np.asarray(lm)[sel], params)
        si_frames.append(si_h)
        hk_frames.append(hk_h)
    si = np.stack(si_frames, axis=1) * weights[:, None, None]  # (23, frames, 9)
    hk = np.stack(hk_frames, axis=1) * weights[:, None, None]
    return {"si": si.ravel(), "hk": hk.ravel(), "sihk": np.concatenate([si.ravel(), hk.ravel()])}
