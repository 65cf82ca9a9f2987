"""Network inputs of the deep baselines: optical flow, strain, time normalisation (no torch needed)."""

from __future__ import annotations

import numpy as np
import pytest

from station.checks import StationError
from station.deep.features import (FLOW_METHOD, motion_image, optical_flow, optical_strain, resample_frames,
                                   sequence_input, ststnet_input)
from station.deep.synthetic import CLASSES, _texture, synthetic_database, synthetic_sample


def _shifted_pair(dy: int = 0, dx: int = 0, size: int = 64):
    image = _texture(np.random.default_rng(3), size + 16).astype(np.uint8)
    first = image[8:8 + size, 8:8 + size]
    second = image[8 - dy:8 - dy + size, 8 - dx:8 - dx + size]  # content moved by (+dy, +dx)
    return first, second


@pytest.mark.parametrize("method", ["farneback", "tvl1-skimage", "tvl1"])
@pytest.mark.parametrize("dy,dx", [(0, 1), (1, 0), (0, -1), (-1, 0)])
def test_flow_points_where_the_content_moved(dy, dx, method):
    if method == "tvl1" and FLOW_METHOD != "tvl1":
        with pytest.raises(StationError, match="opencv-contrib"):
            optical_flow(*_shifted_pair(dy, dx), method=method)
        return
    first, second = _shifted_pair(dy, dx)
    flow = optical_flow(first, second, method=method)[8:-8, 8:-8]
    assert flow.dtype == np.float32
    assert np.median(flow[..., 0]) == pytest.approx(dx, abs=0.3)
    assert np.median(flow[..., 1]) == pytest.approx(dy, abs=0.3)


def test_strain_ignores_translation_and_sees_stretching():
    size = 20
    translation = np.zeros((size, size, 2), np.float32)
    translation[..., 0] = 1.5
    assert np.abs(optical_strain(translation)).max() < 1e-6
    stretch = np.zeros((size, size, 2), np.float32)
    stretch[..., 0] = 0.1 * np.arange(size)[None, :]  # u grows with x: u_x = 0.1
    assert optical_strain(stretch) == pytest.approx(np.full((size, size), 0.1), abs=1e-6)


def test_motion_image_rescales_flow_to_the_28_pixel_image():
    first, second = _shifted_pair(0, 2, size=56)  # 2 px at 56 px wide = 1 px at 28 px
    image = motion_image(first, second)
    assert image.shape == (3, 28, 28) and image.dtype == np.float32
    assert np.median(image[0, 4:-4, 4:-4]) == pytest.approx(1.0, abs=0.2)
    assert np.median(np.abs(image[1, 4:-4, 4:-4])) < 0.2


def test_ststnet_input_reads_onset_and_apex_from_the_index():
    rng = np.random.default_rng(0)
    sample = synthetic_sample("s1", "a", "surprise", rng, frames=10, size=48, amplitude=2.0)
    moving = ststnet_input(sample)
    upper_v = moving[1, 2:10].mean()  # surprise moves the upper third up: v < 0
    assert upper_v < -0.2
    sample.record.apex = sample.record.onset  # apex == onset: nothing moved
    still = ststnet_input(sample)
    assert np.abs(still[:2]).max() < 0.1 < np.abs(moving[:2]).max()


def test_synthetic_classes_differ_in_vertical_motion():
    samples, y, _ = synthetic_database(2, 6, seed=2)
    v = np.array([ststnet_input(s)[1] for s in samples])
    upper, lower = v[:, 2:10].mean(axis=(1, 2)), v[:, 18:26].mean(axis=(1, 2))
    assert set(y) == set(CLASSES)
    assert (upper[y == "negative"] > 0.1).all() and (upper[y == "surprise"] < -0.1).all()
    assert (lower[y == "positive"] < -0.1).all()


def test_resample_frames_interpolates_linearly_in_time():
    clip = np.arange(5, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    out = resample_frames(clip, 9)
    assert out.shape == (9, 2, 2)
    assert out[:, 0, 0] == pytest.approx(np.linspace(0, 4, 9))
    assert resample_frames(clip[:1], 4)[:, 0, 0] == pytest.approx([0, 0, 0, 0])
    with pytest.raises(StationError, match="0 frames"):
        resample_frames(clip[:0], 4)


def test_sequence_input_is_change_since_onset_time_normalised_to_unit_rms():
    rng = np.random.default_rng(1)
    for frames in (5, 23):
        sample = synthetic_sample("s1", "a", "positive", rng, frames=frames, size=40)
        clip = sequence_input(sample, frames=16, size=32)
        assert clip.shape == (16, 32, 32) and clip.dtype == np.float32
        assert np.abs(clip[0]).max() == 0  # the onset frame minus itself
        assert float(np.sqrt(np.mean(clip ** 2))) == pytest.approx(1.0, abs=1e-4)
    still = synthetic_sample("s1", "b", "positive", rng, frames=6, size=40, amplitude=0.0)
    still.cropped[:] = still.cropped[0]  # no motion, no noise: nothing to scale up
    assert np.abs(sequence_input(still, frames=8, size=16)).max() == 0


def test_unknown_flow_method_is_named():
    first, second = _shifted_pair()
    with pytest.raises(StationError, match="'farneback'"):
        optical_flow(first, second, method="lucas")
    with pytest.raises(StationError, match="one shape"):
        optical_flow(first, second[:10])
    assert FLOW_METHOD in ("tvl1", "farneback")


def test_without_torch_the_models_say_how_to_install_it(monkeypatch, tmp_path):
    import sys

    from station import deep

    monkeypatch.setitem(sys.modules, "torch", None)  # as on a station installed without [deep]
    samples, y, groups = synthetic_database(2, 3, seed=0, frames=4, size=16)
    assert deep.MODELS == ("ststnet", "cnn3d")
    with pytest.raises(StationError, match=r"pip install -e \.\[deep\]"):
        deep.oof_probabilities("cnn3d", samples, y, groups, work_dir=tmp_path)
