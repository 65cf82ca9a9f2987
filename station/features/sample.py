"""Features of one :class:`station.dataset.Sample`: what ``station evaluate`` computes per sample.

Numpy in, numpy out: the sample is already loaded; no file access here.
"""

from __future__ import annotations

import numpy as np

from station.checks import StationError
from station.dataset import Sample
from station.features.landmarks23 import CurvatureParams, sequence_features
from station.features.lbptop import LbpTopParams, ensure_min_frames, lbptop, lbptop_grids


def sample_gray(sample: Sample) -> np.ndarray:
    """(T, H, W) uint8 grey sequence of a sample (onset to offset, as exported)."""
    if sample.cropped.ndim == 3:  # already grey (CASME II / SAMM loaders)
        return sample.cropped
    return sample.gray


def lbptop_of_sample(sample: Sample, params: LbpTopParams) -> np.ndarray:
    """The LBP-TOP vector of the whole cropped sequence."""
    return lbptop(ensure_min_frames(sample_gray(sample), params), params)


def lbptop_grids_of_sample(sample: Sample, params: LbpTopParams, grids: list[tuple[int, int, int]]) -> list[np.ndarray]:
    """LBP-TOP vectors of many block grids (sweeps) from one pass over the codes."""
    return lbptop_grids(ensure_min_frames(sample_gray(sample), params), params, grids)


def key_frames(sample: Sample) -> tuple[int, int]:
    """Positions of the onset and apex frames within the sample."""
    return sample.index_of(sample.record.onset), sample.index_of(sample.record.apex)


def curvature_of_sample(sample: Sample, params: CurvatureParams) -> dict[str, np.ndarray]:
    """SI, HK and SI+HK vectors (paper eqs. 11-12) from the onset and apex frames."""
    if len(sample.cloud_offsets) < 2 or len(sample.landmarks3d) == 0:
        raise StationError(f"sample {sample.record.sample!r} of subject {sample.record.subject!r} has no "
                           "point clouds or 3D landmarks: 3D features need a station database.")
    onset, apex = key_frames(sample)
    frames = [onset, apex]
    return sequence_features([sample.cloud(t) for t in frames], [sample.landmarks3d[t] for t in frames],
                             sample_gray(sample), sample.landmarks2d[onset], params)
