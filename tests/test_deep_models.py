"""The two networks and their scikit-learn style trainer (tiny data, CPU, one thread)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from station.checks import StationError  # noqa: E402
from station.deep.features import sequence_input, ststnet_input  # noqa: E402
from station.deep.models import STSTNet, SpatioTemporalCNN3D  # noqa: E402
from station.deep.synthetic import synthetic_database  # noqa: E402
from station.deep.training import (DEFAULT_CONFIGS, DeepClassifier, TrainConfig,  # noqa: E402
                                   balanced_class_weights)

TINY = {"ststnet": DEFAULT_CONFIGS["ststnet"].with_(epochs=25, batch_size=8),
        "cnn3d": DEFAULT_CONFIGS["cnn3d"].with_(epochs=8, batch_size=8, frames=8, size=24)}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_data():
    samples, y, _ = synthetic_database(3, 6, seed=5, frames=10, size=32, amplitude=1.5)
    classes = np.unique(y)
    y_index = np.searchsorted(classes, y)
    inputs = {"ststnet": np.stack([ststnet_input(s) for s in samples]),
              "cnn3d": np.stack([sequence_input(s, frames=8, size=24) for s in samples])}
    return inputs, y_index


def test_ststnet_shapes_follow_the_original_network():
    net = STSTNet(n_classes=3)
    assert [s[0].out_channels for s in net.streams] == [3, 5, 8]
    assert net.classifier.in_features == 5 * 5 * 16
    assert net.eval()(torch.zeros(2, 3, 28, 28)).shape == (2, 3)


def test_cnn3d_reads_clips_with_or_without_channel_axis():
    net = SpatioTemporalCNN3D(n_classes=4).eval()
    assert net(torch.zeros(2, 16, 64, 64)).shape == (2, 4)
    assert net(torch.zeros(1, 1, 8, 24, 24)).shape == (1, 4)
    assert sum(p.numel() for p in net.parameters()) < 30_000


@pytest.mark.parametrize("model_name", ["ststnet", "cnn3d"])
def test_training_lowers_the_loss_and_predicts_probabilities(tiny_data, model_name):
    inputs, y = tiny_data
    epochs_seen = []
    clf = DeepClassifier(model_name, 3, TINY[model_name], seed=0, device="cpu")
    clf.fit(inputs[model_name], y, on_epoch=lambda epoch, loss: epochs_seen.append(epoch))
    history = clf.loss_history_
    assert epochs_seen == list(range(TINY[model_name].epochs)) and len(history) == len(epochs_seen)
    assert np.mean(history[-2:]) < 0.8 * np.mean(history[:2])
    proba = clf.predict_proba(inputs[model_name][:5])
    assert proba.shape == (5, 3) and proba.dtype == np.float64
    assert np.all(proba >= 0) and proba.sum(axis=1) == pytest.approx(np.ones(5))


def test_same_seed_same_network_other_seed_other_network(tiny_data):
    inputs, y = tiny_data
    config = TINY["ststnet"].with_(epochs=5)
    runs = [DeepClassifier("ststnet", 3, config, seed=s, device="cpu").fit(inputs["ststnet"], y)
            .predict_proba(inputs["ststnet"]) for s in (7, 7, 8)]
    assert np.array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])
    assert not torch.are_deterministic_algorithms_enabled()  # the process-wide switch is given back


def test_checkpoint_state_rebuilds_the_same_predictions(tiny_data):
    inputs, y = tiny_data
    clf = DeepClassifier("cnn3d", 3, TINY["cnn3d"].with_(epochs=1), seed=1, device="cpu").fit(inputs["cnn3d"], y)
    state = clf.state()
    restored = DeepClassifier.from_state(state, device="cpu")
    assert np.array_equal(restored.predict_proba(inputs["cnn3d"]), clf.predict_proba(inputs["cnn3d"]))
    assert restored.config == clf.config and restored.loss_history_ == clf.loss_history_


def test_rare_classes_weigh_more_and_absent_classes_nothing():
    weights = balanced_class_weights(np.array([0, 0, 0, 1]), 3)
    assert weights == pytest.approx([4 / 6, 2.0, 0.0])


def test_bad_inputs_say_what_was_given():
    with pytest.raises(StationError, match="'ststnet', 'cnn3d'.*'resnet'"):
        DeepClassifier("resnet", 3)
    clf = DeepClassifier("ststnet", 3, device="cpu")
    with pytest.raises(StationError, match="not fitted"):
        clf.predict_proba(np.zeros((1, 3, 28, 28), np.float32))
    with pytest.raises(StationError, match="2 inputs and 3 labels"):
        clf.fit(np.zeros((2, 3, 28, 28), np.float32), np.array([0, 1, 2]))
    with pytest.raises(StationError, match=r"0\.\.2, got \[0, 5\]"):
        clf.fit(np.zeros((2, 3, 28, 28), np.float32), np.array([0, 5]))
    with pytest.raises(StationError, match="epochs must be a positive integer, got 0"):
        TrainConfig(epochs=0, batch_size=4, learning_rate=1e-3)
    with pytest.raises(StationError, match="TrainConfig.flow must be one of 'tvl1', 'tvl1-skimage', "
                                           "'farneback', got 'horn'"):
        TrainConfig(epochs=1, batch_size=4, learning_rate=1e-3, flow="horn")
