"""Deep baselines of the paper's section 4.3.3 (Table 12): STSTNet and a spatio-temporal 3D CNN.

``station evaluate DB --models ststnet,cnn3d`` calls :func:`oof_probabilities` and fuses
its probabilities with the 3D-feature SVM's, ``P = (1 - a) p2D + a p3D``, reporting the
results with and without 3D.  PyTorch is an optional extra (``pip install -e .[deep]``):
this module imports without it, and says how to install it when a model is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from station.checks import StationError, check_choice

if TYPE_CHECKING:
    from rich.progress import Progress

    from station.dataset import Sample

#: The deep models ``station evaluate --models`` accepts.
MODELS = ("ststnet", "cnn3d")

MODEL_DESCRIPTIONS = {
    "ststnet": "STSTNet (Liong et al. 2019): onset->apex optical flow + strain, 3-stream shallow CNN",
    "cnn3d": "spatio-temporal 3D CNN on the aligned gray clip (16 frames x 64x64)",
}


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError as err:
        raise StationError("the deep baselines (ststnet, cnn3d) need PyTorch, which is not installed: "
                           "run `pip install -e .[deep]` (CPU build of torch 2.13.0).") from err


def oof_probabilities(model_name: str, samples: list["Sample"], y: np.ndarray, groups: np.ndarray, *,
                      seed: int = 0, work_dir: Path, progress: "Progress | None" = None,
                      config=None, threads: int | None = None, inputs: list[str] | None = None) -> np.ndarray:
    """Out-of-fold leave-one-subject-out probabilities of a deep model.

    Returns (n_samples, n_classes) with classes ``sorted(np.unique(y))`` in column order;
    row i comes from the network trained without sample i's subject (``groups[i]``).
    Fold checkpoints go to ``work_dir``; an interrupted run resumes where it stopped.
    ``config`` (a :class:`station.deep.training.TrainConfig`) overrides the model's
    default training settings; ``threads`` caps torch's CPU threads; ``inputs`` are the
    samples' file identities when they were loaded from a database (the cache key then follows
    the files, as the feature cache does; otherwise the pixels are hashed).
    """
    check_choice(model_name, MODELS, "model")
    _require_torch()
    from station.deep.loso import run_loso

    return run_loso(model_name, samples, y, groups, seed=seed, work_dir=Path(work_dir), config=config,
                    progress=progress, threads=threads, inputs=inputs).probabilities


__all__ = ["MODELS", "MODEL_DESCRIPTIONS", "oof_probabilities"]
