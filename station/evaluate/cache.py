"""Feature extraction over a database: parallel over samples, cached on disk.

A feature matrix is stored once per (feature kind, parameters, sample fingerprints): the key is a
hash of the parameters and of every sample's fingerprint (path, size, mtime; see
:meth:`SampleRef.fingerprint`), so a sweep never recomputes a setting it has seen, and any change
of a sample file or of a parameter makes a new entry.  Files: ``CACHE/<kind>-<key>.npz``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

_THREADPOOLS = ThreadpoolController()

from station.checks import StationError
from station.evaluate.loaders import Database, SampleRef
from station.features.landmarks23 import CurvatureParams
from station.features.lbptop import LbpTopParams
from station.features.sample import curvature_of_sample, lbptop_grids_of_sample
from station.fileio import atomic_path, digest
from station.parallel import parallel_map


class FeatureCache:
    """npz files keyed by parameters + sample fingerprints; ``directory=None`` disables caching."""

    def __init__(self, directory: str | Path | None):
        self.directory = Path(directory) if directory is not None else None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def key(self, kind: str, params: dict, fingerprints: list[str]) -> str:
        """Parameters + the samples' identities (``SampleRef.fingerprint``): the cache-key policy of
        :mod:`station.fileio`, shared with the deep LOSO runs."""
        return digest(json.dumps({"kind": kind, "params": params}, sort_keys=True), *fingerprints)

    def load(self, kind: str, key: str) -> dict[str, np.ndarray] | None:
        if self.directory is None:
            return None
        path = self.directory / f"{kind}-{key}.npz"
        if not path.exists():
            self.misses += 1
            return None
        try:
            with np.load(path) as data:
                out = {name: data[name] for name in data.files}
        except (OSError, ValueError):  # a half-written or foreign file: recompute
            self.misses += 1
            return None
        self.hits += 1
        return out

    def save(self, kind: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        if self.directory is None:
            return
        path = self.directory / f"{kind}-{key}.npz"
        with atomic_path(path) as tmp:  # .<stem>.<pid>.tmp.npz: numpy keeps the name
            np.savez(tmp, **arrays)


# ---------------------------------------------------------------------------------------------
# workers (module level: picklable for loky and dask)


class SampleFailure(str):
    """Why one sample's features could not be computed (it is skipped, the run goes on)."""


def _failure(ref: SampleRef, err: Exception) -> SampleFailure:
    return SampleFailure(f"{type(err).__name__}: {err}")


def _guarded(ref: SampleRef, compute, *args):
    """``compute(*args)`` on one thread, or the :class:`SampleFailure` of ``ref`` it raised: a damaged
    or unreadable sample must not end a whole evaluation."""
    try:
        with _THREADPOOLS.limit(limits=1):
            return compute(*args)
    except Exception as err:
        return _failure(ref, err)


def _lbptop_of(sample, params: LbpTopParams, grids: list[tuple[int, int, int]]) -> list[np.ndarray]:
    return [v.astype(np.float32) for v in lbptop_grids_of_sample(sample, params, grids)]


def _curvature_of(sample, params: CurvatureParams) -> dict[str, np.ndarray]:
    return {k: v.astype(np.float32) for k, v in curvature_of_sample(sample, params).items()}


def _lbptop_worker(ref: SampleRef, params: LbpTopParams, grids: list[tuple[int, int, int]]):
    return _guarded(ref, lambda: _lbptop_of(ref.load(), params, grids))


def _curvature_worker(ref: SampleRef, params: CurvatureParams):
    return _guarded(ref, lambda: _curvature_of(ref.load(), params))


def sample_name(ref: SampleRef) -> str:
    return f"{ref.record.subject}/{ref.record.sample}"


def _collect(per_sample: list, db: Database, failures: dict[str, str] | None, what: str) -> list[int]:
    """Indices of the samples that failed; their reasons go into ``failures`` (or raise without it)."""
    bad = [i for i, r in enumerate(per_sample) if isinstance(r, SampleFailure)]
    for i in bad:
        if failures is None:
            raise StationError(f"sample {sample_name(db.refs[i])!r}: {what} failed: {per_sample[i]}")
        failures.setdefault(sample_name(db.refs[i]), f"{what}: {per_sample[i]}")
    return bad


def _lbptop_keys(params: LbpTopParams, grids, cache: FeatureCache, fps: list[str]):
    """(cached matrices, cache key per grid) of the LBP-TOP grids."""
    out: dict[tuple[int, int, int], np.ndarray] = {}
    keys = {}
    for grid in grids:
        setting = replace(params, rows=grid[0], cols=grid[1], overlap=grid[2])
        keys[grid] = cache.key("lbptop", setting.key(), fps)
        hit = cache.load("lbptop", keys[grid])
        if hit is not None:
            out[grid] = hit["X"]
    return out, keys


def _lbptop_compute(db: Database, params: LbpTopParams, todo, keys, out, cache: FeatureCache, n_jobs: int,
                    progress, failures: dict[str, str] | None) -> None:
    """The LBP-TOP grids ``todo`` of every sample, alone (one parallel map), into ``out`` and the cache."""
    per_sample = parallel_map(_lbptop_worker, db.refs, args=(params, todo), jobs=n_jobs, progress=progress,
                              description=f"LBP-TOP R={tuple(params.radii)} ({len(todo)} grid(s))")
    _lbptop_assemble(per_sample, db, params, todo, keys, out, cache, failures)


def _curvature_compute(db: Database, params: CurvatureParams, key: str, cache: FeatureCache, n_jobs: int,
                       progress, failures: dict[str, str] | None) -> dict[str, np.ndarray]:
    """The 3D matrices of every sample, alone (one parallel map), also into the cache."""
    per_sample = parallel_map(_curvature_worker, db.refs, args=(params,), jobs=n_jobs, progress=progress,
                              description=f"SI/HK curvature r={params.radius:g} mm")
    return _curvature_assemble(per_sample, db, key, cache, failures)


def _lbptop_assemble(per_sample: list, db: Database, params: LbpTopParams, todo, keys, out, cache: FeatureCache,
                     failures: dict[str, str] | None) -> None:
    bad = _collect(per_sample, db, failures, "LBP-TOP")
    good = next((f for f in per_sample if not isinstance(f, SampleFailure)), None)
    for i, grid in enumerate(todo):
        width = len(good[i]) if good is not None else params.n_features()
        out[grid] = np.stack([np.full(width, np.nan, np.float32) if isinstance(f, SampleFailure) else f[i]
                              for f in per_sample])
        if not bad:
            cache.save("lbptop", keys[grid], {"X": out[grid]})


def _curvature_assemble(per_sample: list, db: Database, key: str, cache: FeatureCache,
                        failures: dict[str, str] | None) -> dict[str, np.ndarray]:
    bad = _collect(per_sample, db, failures, "3D features")
    good = next((f for f in per_sample if not isinstance(f, SampleFailure)), None)
    out = {}
    for name in ("si", "hk", "sihk"):
        width = len(good[name]) if good is not None else 0
        out[name] = np.stack([np.full(width, np.nan, np.float32) if isinstance(f, SampleFailure) else f[name]
                              for f in per_sample])
    if not bad:
        cache.save("curvature", key, out)
    return out


def lbptop_matrices(db: Database, params: LbpTopParams, grids: list[tuple[int, int, int]] | None = None, *,
                    cache: FeatureCache, n_jobs: int = 1, progress=None,
                    failures: dict[str, str] | None = None) -> dict[tuple[int, int, int], np.ndarray]:
    """(n_samples, n_features) LBP-TOP matrices, one per (rows, cols, overlap) grid.

    A sample that fails to load or compute gets a NaN row and its reason in ``failures``
    (``{"subject/sample": reason}``); without ``failures`` the first failure raises.  Matrices
    with failed rows are not cached.
    """
    grids = grids or [(params.rows, params.cols, params.overlap)]
    out, keys = _lbptop_keys(params, grids, cache, [ref.fingerprint() for ref in db.refs])
    todo = [g for g in grids if g not in out]
    if todo:
        _lbptop_compute(db, params, todo, keys, out, cache, n_jobs, progress, failures)
    return out


def curvature_matrices(db: Database, params: CurvatureParams, *, cache: FeatureCache, n_jobs: int = 1,
                       progress=None, failures: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """{'si', 'hk', 'sihk'} -> (n_samples, n_features) 3D feature matrices (failures as in
    :func:`lbptop_matrices`)."""
    key = cache.key("curvature", params.key(), [ref.fingerprint() for ref in db.refs])
    hit = cache.load("curvature", key)
    if hit is not None:
        return hit
    return _curvature_compute(db, params, key, cache, n_jobs, progress, failures)


def _both_worker(ref: SampleRef, lbp: LbpTopParams, grids: list[tuple[int, int, int]], curvature: CurvatureParams):
    """LBP-TOP and curvature of one sample from one load of its file (each part fails on its own)."""
    sample = _guarded(ref, ref.load)
    if isinstance(sample, SampleFailure):
        return sample, sample
    return _guarded(ref, _lbptop_of, sample, lbp, grids), _guarded(ref, _curvature_of, sample, curvature)


def feature_matrices(db: Database, lbp: LbpTopParams, curvature: CurvatureParams, *, cache: FeatureCache,
                     n_jobs: int = 1, progress=None, failures: dict[str, str] | None = None
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The baseline's LBP-TOP matrix and 3D matrices: what :func:`lbptop_matrices` and
    :func:`curvature_matrices` return, but when neither is cached, from one pass over the samples
    (each sample file read once, one parallel map) instead of two."""
    grid = (lbp.rows, lbp.cols, lbp.overlap)
    fps = [ref.fingerprint() for ref in db.refs]
    out, keys = _lbptop_keys(lbp, [grid], cache, fps)
    key = cache.key("curvature", curvature.key(), fps)
    cur = cache.load("curvature", key)
    if grid in out or cur is not None:  # at least one cached: the other (if any) alone
        if grid not in out:
            _lbptop_compute(db, lbp, [grid], keys, out, cache, n_jobs, progress, failures)
        if cur is None:
            cur = _curvature_compute(db, curvature, key, cache, n_jobs, progress, failures)
        return out[grid], cur
    per_sample = parallel_map(_both_worker, db.refs, args=(lbp, [grid], curvature), jobs=n_jobs, progress=progress,
                              description=f"LBP-TOP R={tuple(lbp.radii)} + SI/HK curvature r={curvature.radius:g} mm")
    _lbptop_assemble([p[0] for p in per_sample], db, lbp, [grid], keys, out, cache, failures)
    cur = _curvature_assemble([p[1] for p in per_sample], db, key, cache, failures)
    return out[grid], cur
