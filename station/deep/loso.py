"""Leave-one-subject-out training of a deep baseline, resumable fold by fold.

A LOSO run trains one network per participant; on a CPU the 3D CNN takes minutes per fold,
so a run must survive being interrupted.  Every fold writes its checkpoint (``.pt``) and
then its held-out probabilities (``.npz``), each atomically; a rerun with the same
samples, labels, seed and settings finds them and trains only the folds still missing.

Runs live in ``work_dir/<model>-<fingerprint>/``: the fingerprint hashes everything that
changes the result (samples, labels, groups, seed, training settings, flow method), so a
changed setting starts a fresh folder instead of mixing folds of two different runs, and
no earlier run is ever overwritten.
"""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn
from sklearn.model_selection import LeaveOneGroupOut

from station.checks import StationError, check_choice, check_writable_dir
from station.console import console
from station.dataset import Sample
from station.deep.features import sequence_input, ststnet_input
from station.deep.training import DEFAULT_CONFIGS, DeepClassifier, TrainConfig
from station.fileio import atomic_path, atomic_write_json, digest


@dataclass
class LosoResult:
    """Out-of-fold probabilities and what the run did to get them."""

    probabilities: np.ndarray  # (n_samples, n_classes), rows sum to 1
    classes: np.ndarray  # sorted unique labels; column k of probabilities is classes[k]
    run_dir: Path
    trained_folds: list[str] = field(default_factory=list)
    resumed_folds: list[str] = field(default_factory=list)


def network_inputs(model_name: str, samples: list[Sample], config: TrainConfig,
                   on_sample: Callable[[], None] | None = None) -> np.ndarray:
    """Every sample's network input, stacked (float32)."""
    rows = []
    for sample in samples:
        if model_name == "ststnet":
            rows.append(ststnet_input(sample, size=config.size, method=config.flow))
        else:
            rows.append(sequence_input(sample, frames=config.frames, size=config.size))
        if on_sample is not None:
            on_sample()
    return np.stack(rows).astype(np.float32)


def _pixels_digest(samples: list[Sample]) -> str:
    """Identity of samples that exist only in memory: a digest of every sample's aligned crops
    (the station's cache-key policy, :mod:`station.fileio`).  A re-exported database with the
    same sample names but new pixels must not reuse old folds.  BLAKE2 runs at about a
    gigabyte per second, a second or two for a whole database."""
    parts = []
    for sample in samples:
        crops = np.ascontiguousarray(sample.cropped)
        parts += [repr((crops.shape, crops.dtype.str)), crops]
    return digest(*parts)


def run_fingerprint(model_name: str, samples: list[Sample], y: np.ndarray, groups: np.ndarray,
                    seed: int, config: TrainConfig, inputs: list[str] | None = None) -> dict:
    """Everything that changes a run's probabilities, as plain JSON-able values.

    ``inputs``: the samples' file identities when they were loaded from a database
    (``SampleRef.fingerprint()``, the feature cache's key too); without them the pixels are hashed.
    """
    if inputs is not None and len(inputs) != len(samples):
        raise StationError(f"inputs: {len(inputs)} identities for {len(samples)} samples.")
    return {"model": model_name, "seed": int(seed), "config": config.as_dict(),
            "samples": [f"{s.record.subject}/{s.record.sample}" for s in samples],
            "frames": [[int(s.record.onset), int(s.record.apex), int(s.record.offset), int(len(s))]
                       for s in samples],
            "pixels": digest(*inputs) if inputs is not None else _pixels_digest(samples),
            "y": [str(v) for v in y], "groups": [str(g) for g in groups],
            "torch": torch.__version__.split("+")[0]}


def _fold_stem(index: int, group) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(group))[:40]
    return f"fold-{index:03d}-{safe}"


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file object keeps numpy from appending ".npz" to the name
        np.savez(fh, **arrays)


def _load_finished_fold(run_dir: Path, stem: str, test_index: np.ndarray, n_classes: int) -> np.ndarray | None:
    """The held-out probabilities of a finished fold, or None if it must be (re)trained."""
    npz_path, pt_path = run_dir / f"{stem}.npz", run_dir / f"{stem}.pt"
    if not (npz_path.exists() and pt_path.exists()):
        return None
    try:
        with np.load(npz_path) as data:
            index, proba = data["test_index"], data["probabilities"]
    except (OSError, KeyError, ValueError):
        return None  # unreadable (disk trouble): train the fold again rather than fail
    if not np.array_equal(index, test_index) or proba.shape != (len(test_index), n_classes):
        return None
    return proba


def _validate(model_name: str, samples: list[Sample], y: np.ndarray, groups: np.ndarray) -> None:
    check_choice(model_name, DEFAULT_CONFIGS, "model")
    if not (len(samples) == len(y) == len(groups)):
        raise StationError(f"samples, y and groups must have one entry per sample, got {len(samples)} "
                           f"samples, {len(y)} labels and {len(groups)} groups.")
    if len(np.unique(groups)) < 2:
        raise StationError(f"leave-one-subject-out needs at least 2 subjects, got "
                           f"{len(np.unique(groups))} ({', '.join(map(str, np.unique(groups)))}).")
    if len(np.unique(y)) < 2:
        raise StationError(f"classification needs at least 2 classes, got only {np.unique(y).tolist()}.")


def _default_progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=False)


def run_loso(model_name: str, samples: list[Sample], y: np.ndarray, groups: np.ndarray, *,
             seed: int = 0, work_dir: Path, config: TrainConfig | None = None,
             progress: Progress | None = None, device: torch.device | str | None = None,
             threads: int | None = None, inputs: list[str] | None = None) -> LosoResult:
    """Train and evaluate ``model_name`` once per held-out subject (LOSO), resumably.

    ``progress`` is a running rich Progress to add bars to (the caller's), or None to show
    our own.  ``threads`` sets torch's CPU thread count (None leaves torch's default).
    ``inputs``: the samples' file identities, if loaded from files (see :func:`run_fingerprint`).
    """
    y, groups = np.asarray(y), np.asarray(groups)
    _validate(model_name, samples, y, groups)
    config = config or DEFAULT_CONFIGS[model_name]
    if threads is not None:
        torch.set_num_threads(int(threads))
    classes = np.unique(y)
    y_index = np.searchsorted(classes, y)
    fingerprint = run_fingerprint(model_name, samples, y, groups, seed, config, inputs)
    run_id = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:12]
    run_dir = check_writable_dir(Path(work_dir) / f"{model_name}-{run_id}", "deep-learning work folder")
    run_file = run_dir / "run.json"
    if not run_file.exists():
        atomic_write_json(run_file, fingerprint)

    folds = list(LeaveOneGroupOut().split(np.zeros(len(y)), y_index, groups))
    result = LosoResult(np.full((len(y), len(classes)), np.nan), classes, run_dir)
    pending = []
    for i, (train, test) in enumerate(folds):
        stem = _fold_stem(i, groups[test[0]])
        proba = _load_finished_fold(run_dir, stem, test, len(classes))
        if proba is None:
            pending.append((i, stem, train, test))
        else:
            result.probabilities[test] = proba
            result.resumed_folds.append(stem)

    own = progress is None
    progress = progress or _default_progress()
    with progress if own else nullcontext():
        if pending:
            prep = progress.add_task(f"{model_name}: inputs", total=len(samples), status="")
            X = network_inputs(model_name, samples, config, lambda: progress.advance(prep))
            progress.remove_task(prep)
        fold_task = progress.add_task(f"{model_name}: LOSO folds", total=len(folds),
                                      completed=len(result.resumed_folds),
                                      status=f"{len(result.resumed_folds)} resumed")
        for i, stem, train, test in pending:
            epoch_task = progress.add_task(f"  {stem}", total=config.epochs, status="")

            def on_epoch(epoch: int, loss: float, task=epoch_task) -> None:
                progress.update(task, advance=1, status=f"loss {loss:.3f}")

            clf = DeepClassifier(model_name, len(classes), config, seed=seed, device=device)
            clf.fit(X[train], y_index[train], on_epoch=on_epoch)
            proba = clf.predict_proba(X[test])
            with atomic_path(run_dir / f"{stem}.pt") as tmp:
                torch.save(clf.state(), tmp)
            with atomic_path(run_dir / f"{stem}.npz") as tmp:
                _write_npz(tmp, test_index=test, probabilities=proba)
            result.probabilities[test] = proba
            result.trained_folds.append(stem)
            progress.remove_task(epoch_task)
            progress.update(fold_task, advance=1)
    return result
