"""Training one network: a scikit-learn style ``fit`` / ``predict_proba`` around PyTorch.

Reproducibility is the point here: a LOSO run trains one network per participant, and a
lab must be able to rerun a table and get the same numbers.  So every fit seeds torch,
shuffles with its own seeded generator, runs with deterministic kernels (strictly on CPU;
on a GPU, where some pooling backward passes have no deterministic kernel, PyTorch warns
instead of failing) and uses no worker processes.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Callable

import numpy as np

# cuBLAS reads this once, when CUDA starts: set it before torch can touch a GPU.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from station.checks import StationError, check_choice, check_positive  # noqa: E402
from station.deep.features import FLOW_METHOD, FLOW_METHODS  # noqa: E402
from station.deep.models import STSTNet, SpatioTemporalCNN3D  # noqa: E402


@dataclass(frozen=True)
class TrainConfig:
    """How one network is trained, and the size of what it reads.

    ``size`` is the side of the network's square input; ``frames`` the clip length the
    3D CNN's sequences are resampled to and ``flow`` the optical flow method of STSTNet's
    motion image (each model ignores what it does not read).
    """

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.0
    size: int = 28
    frames: int = 16
    flow: str = FLOW_METHOD

    def __post_init__(self) -> None:
        check_choice(self.flow, FLOW_METHODS, "TrainConfig.flow")
        for name in ("epochs", "batch_size", "size", "frames"):
            check_positive(getattr(self, name), f"TrainConfig.{name}", integer=True)
        check_positive(self.learning_rate, "TrainConfig.learning_rate")
        if self.weight_decay < 0:
            raise StationError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}.")

    def with_(self, **changes) -> "TrainConfig":
        """A copy with some fields changed (e.g. fewer epochs for a quick run)."""
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)


#: Defaults per model.  STSTNet is tiny (~1.6k weights) and its input is one 28x28 image,
#: so many epochs are cheap; the 3D CNN reads 16x64x64 clips and gets fewer.
DEFAULT_CONFIGS: dict[str, TrainConfig] = {
    "ststnet": TrainConfig(epochs=100, batch_size=32, learning_rate=1e-3, weight_decay=1e-4, size=28),
    "cnn3d": TrainConfig(epochs=25, batch_size=16, learning_rate=1e-3, weight_decay=1e-4, size=64,
                         frames=16),
}


def build_network(model_name: str, n_classes: int, config: TrainConfig) -> nn.Module:
    """A freshly initialised network of this kind (initialisation follows torch's seed)."""
    check_choice(model_name, DEFAULT_CONFIGS, "model")
    if model_name == "ststnet":
        return STSTNet(n_classes=n_classes, size=config.size)
    return SpatioTemporalCNN3D(n_classes=n_classes)


def default_device() -> torch.device:
    """The first GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_deterministic(seed: int, device: torch.device) -> None:
    """Seed torch and ask for deterministic kernels (see the module docstring)."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    torch.backends.cudnn.benchmark = False


def balanced_class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """``n / (k * count)`` per class (scikit-learn's "balanced"); classes absent get 0.

    Spontaneous micro-expression classes are very unequal (negative dominates), and the
    paper reports F1 next to accuracy, so the loss must not ignore the rare classes.
    """
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights


class DeepClassifier:
    """Fit a network on preprocessed inputs; scikit-learn style.

    ``X`` is a float32 array of network inputs (N, 3, 28, 28) for STSTNet or
    (N, frames, size, size) for the 3D CNN; ``y`` holds class indices 0..n_classes-1.
    After :meth:`fit`, ``loss_history_`` holds the mean training loss of every epoch.
    """

    def __init__(self, model_name: str, n_classes: int, config: TrainConfig | None = None, *,
                 seed: int = 0, device: torch.device | str | None = None):
        self.model_name = check_choice(model_name, DEFAULT_CONFIGS, "model")
        self.n_classes = int(check_positive(n_classes, "n_classes", integer=True))
        self.config = config or DEFAULT_CONFIGS[model_name]
        self.seed = int(seed)
        self.device = torch.device(device) if device is not None else default_device()
        self.network_: nn.Module | None = None
        self.loss_history_: list[float] = []

    def fit(self, X: np.ndarray, y: np.ndarray,
            on_epoch: Callable[[int, float], None] | None = None) -> "DeepClassifier":
        """Train from scratch; ``on_epoch(epoch, mean_loss)`` is called after every epoch."""
        X = np.asarray(X, np.float32)
        y = np.asarray(y, np.int64)
        if len(X) != len(y) or len(X) == 0:
            raise StationError(f"fit needs as many inputs as labels (at least one), got {len(X)} "
                               f"inputs and {len(y)} labels.")
        if y.min() < 0 or y.max() >= self.n_classes:
            raise StationError(f"labels must be class indices 0..{self.n_classes - 1}, got "
                               f"{sorted(set(y.tolist()))}.")
        was_deterministic = torch.are_deterministic_algorithms_enabled()
        was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        make_deterministic(self.seed, self.device)
        try:
            self._train(X, y, on_epoch)
        finally:  # a process-wide switch: give the caller's setting back
            torch.use_deterministic_algorithms(was_deterministic, warn_only=was_warn_only)
        return self

    def _train(self, X: np.ndarray, y: np.ndarray, on_epoch: Callable[[int, float], None] | None) -> None:
        net = build_network(self.model_name, self.n_classes, self.config).to(self.device)
        weights = torch.as_tensor(balanced_class_weights(y, self.n_classes), dtype=torch.float32)
        loss_fn = nn.CrossEntropyLoss(weight=weights.to(self.device))
        optimiser = torch.optim.Adam(net.parameters(), lr=self.config.learning_rate,
                                     weight_decay=self.config.weight_decay)
        inputs = torch.from_numpy(X)
        targets = torch.from_numpy(y)
        shuffler = torch.Generator().manual_seed(self.seed)
        self.loss_history_ = []
        net.train()
        for epoch in range(self.config.epochs):
            order = torch.randperm(len(inputs), generator=shuffler)
            total, seen = 0.0, 0
            for start in range(0, len(order), self.config.batch_size):
                batch = order[start:start + self.config.batch_size]
                if len(batch) == 1 and len(order) > 1:
                    continue  # batch-norm cannot learn statistics from a single sample
                xb, yb = inputs[batch].to(self.device), targets[batch].to(self.device)
                optimiser.zero_grad(set_to_none=True)
                loss = loss_fn(net(xb), yb)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
                seen += len(batch)
            self.loss_history_.append(total / max(seen, 1))
            if on_epoch is not None:
                on_epoch(epoch, self.loss_history_[-1])
        self.network_ = net.eval()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(N, n_classes) float64 class probabilities (softmax of the network's outputs)."""
        if self.network_ is None:
            raise StationError("this DeepClassifier is not fitted yet: call fit() or "
                               "DeepClassifier.from_state() first.")
        X = np.asarray(X, np.float32)
        outputs = []
        with torch.no_grad():
            for start in range(0, len(X), 64):
                xb = torch.from_numpy(X[start:start + 64]).to(self.device)
                outputs.append(torch.softmax(self.network_(xb).double(), dim=1).cpu().numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0, self.n_classes))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)

    def state(self) -> dict:
        """What a checkpoint needs to rebuild the fitted network (plain types and tensors)."""
        if self.network_ is None:
            raise StationError("this DeepClassifier is not fitted yet: nothing to save.")
        return {"model_name": self.model_name, "n_classes": self.n_classes, "seed": self.seed,
                "config": self.config.as_dict(), "loss_history": list(self.loss_history_),
                "state_dict": {k: v.detach().cpu() for k, v in self.network_.state_dict().items()}}

    @classmethod
    def from_state(cls, state: dict, device: torch.device | str | None = None) -> "DeepClassifier":
        """Rebuild a fitted classifier from :meth:`state` (e.g. a fold checkpoint)."""
        clf = cls(state["model_name"], state["n_classes"], TrainConfig(**state["config"]),
                  seed=state["seed"], device=device)
        net = build_network(clf.model_name, clf.n_classes, clf.config)
        net.load_state_dict(state["state_dict"])
        clf.network_ = net.to(clf.device).eval()
        clf.loss_history_ = list(state["loss_history"])
        return clf
