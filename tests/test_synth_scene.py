"""The synthetic participant scene: ground truth matches the frames; the virtual D415 films it."""

from __future__ import annotations

import numpy as np
import pytest

from station.camera import open_camera
from station.synth.events import Event
from station.synth.participant import SyntheticParticipant
from station.vocab.landmarks import AREAS_68 as REGION_LANDMARKS


def _scene(aus, *, subject=1, seed=0, intensity=1.0, kind="micro", **kwargs) -> SyntheticParticipant:
    ev = Event(kind, 5, 12, 25, list(aus), "I", "test", intensity, subject)
    return SyntheticParticipant(subject, seed, events=[ev], n_frames=30, **kwargs)


def _region_box(lm: np.ndarray, ids: list[int], pad: float) -> tuple[slice, slice]:
    (x0, y0), (x1, y1) = lm[ids].min(axis=0) - pad, lm[ids].max(axis=0) + pad
    return slice(int(y0), int(y1) + 1), slice(int(x0), int(x1) + 1)


@pytest.fixture(scope="module")
def still_scenes():
    """Scenes without head motion or sensor noise, so any change comes from the action units."""
    return {name: _scene(aus, head_motion=False, noise=False)
            for name, aus in (("mouth", [12]), ("brows", [1, 2]), ("eyes", [43]))}


@pytest.mark.slow  # builds three scenes (~6 s with the photo landmarks)
@pytest.mark.parametrize("region", ["mouth", "brows", "eyes"])
def test_pixel_change_between_onset_and_apex_is_in_the_au_region(still_scenes, region):
    scene = still_scenes[region]
    ev = scene.events()[0]
    onset, apex = (scene.render(i)[0].astype(np.int16) for i in (ev.onset, ev.apex))
    change = np.abs(apex - onset).sum(axis=2).astype(np.float64)
    iod = scene.look.iod_px
    rows, cols = _region_box(scene.landmarks0, REGION_LANDMARKS[region], 0.6 * iod)
    inside = change[rows, cols].sum()
    assert change.sum() > 0
    assert inside / change.sum() > 0.9, f"only {inside / change.sum():.0%} of the change is in the {region}"
    far = {"mouth": ("brows", "eyes"), "brows": ("mouth",), "eyes": ("mouth",)}
    for other in far[region]:
        rows, cols = _region_box(scene.landmarks0, REGION_LANDMARKS[other], 0.1 * iod)
        assert change[rows, cols].sum() / change.sum() < 0.05, f"{region} AU changed the {other}"


def test_au_moves_its_landmarks_by_a_few_pixels_and_leaves_the_rest(still_scenes):
    scene = still_scenes["mouth"]  # AU12: lip corners 48 and 54
    ev = scene.events()[0]
    move = np.linalg.norm(scene.landmarks(ev.apex) - scene.landmarks(ev.onset), axis=1)
    assert 1.5 < move[48] < 8 and 1.5 < move[54] < 8  # "a few pixels at 848x480"
    assert move[list(range(17, 27))].max() < 0.3  # brows stay
    assert np.all(scene.landmarks(ev.onset) == scene.landmarks0)  # neutral at the onset frame
    assert np.allclose(scene.landmarks(ev.offset), scene.landmarks0)


def test_landmark_ground_truth_follows_the_image(still_scenes):
    """Warp the onset image by the true landmark motion: the apex patch around a lip corner matches."""
    scene = still_scenes["mouth"]
    ev = scene.events()[0]
    onset, apex = (scene.render(i)[0].astype(np.float32) for i in (ev.onset, ev.apex))
    p0, p1 = scene.landmarks(ev.onset)[48], scene.landmarks(ev.apex)[48]

    def patch(img, p, r=6):
        x, y = int(round(p[0])), int(round(p[1]))
        return img[y - r:y + r + 1, x - r:x + r + 1]

    moved = np.abs(patch(apex, p1) - patch(onset, p0)).mean()
    unmoved = np.abs(patch(apex, p0) - patch(onset, p0)).mean()
    assert moved < unmoved


def test_scene_protocol_and_depth_geometry():
    scene = _scene([6, 12])
    color, depth = scene.render(12)
    assert color.shape == (480, 848, 3) and color.dtype == np.uint8
    assert depth.shape == (480, 848) and depth.dtype == np.float32
    lm = scene.landmarks(12)
    assert lm.shape == (68, 2) and lm.dtype == np.float32
    nose = depth[int(lm[30, 1]) - 3:int(lm[30, 1]) + 4, int(lm[30, 0]) - 3:int(lm[30, 0]) + 4]
    cheek = depth[int(lm[1, 1]), int(lm[1, 0]) + int(0.3 * scene.look.iod_px)]
    nose = nose[nose > 0]
    assert 0.45 < nose.mean() < 0.7  # ~0.5-0.7 m from the camera
    assert nose.mean() < cheek - 0.01  # the nose is in front of the cheeks
    assert (depth == 0).mean() > 0.01  # holes


def test_same_seed_same_frames_other_seed_other_subject():
    a, b = _scene([4, 7], seed=3), _scene([4, 7], seed=3)
    for i in (0, 12, 20):
        ca, da = a.render(i)
        cb, db = b.render(i)
        assert np.array_equal(ca, cb) and np.array_equal(da, db)
        assert np.array_equal(a.landmarks(i), b.landmarks(i))
    c = _scene([4, 7], seed=4)
    assert not np.array_equal(a.render(12)[0], c.render(12)[0])


def test_virtual_camera_films_a_synthetic_participant_with_sensor_noise_and_holes():
    camera = open_camera("virtual", width=424, height=240, realtime=False, subject=2, seed=1)
    assert isinstance(camera.scene, SyntheticParticipant) and camera.scene.subject == 2
    assert camera.scene.n_frames is None  # live: endless
    camera.start()
    try:
        frames = []
        while len(frames) < 6:
            fs = camera.read(2.0)
            if fs is not None:
                frames.append(fs)
    finally:
        camera.stop()
    depths = np.stack([f.depth for f in frames]).astype(np.float32)
    face = (depths > 400) & (depths < 800)
    assert face.mean() > 0.05
    both = face[0] & face[1]
    assert np.abs(depths[0][both] - depths[1][both]).mean() > 0.3  # temporal noise (mm)
    assert (depths[0] == 0).mean() > 0.02  # holes
    assert [f.color_times.number for f in frames] == list(range(1, 7))  # device frame n == rendered n


def test_endless_scene_plans_events_as_it_goes():
    scene = SyntheticParticipant(3, 0, width=424, height=240)
    scene.render(0)
    scene.render(5000)
    kinds = {e.kind for e in scene.timeline.events}
    assert "micro" in kinds
    assert any(e.onset > 4800 for e in scene.timeline.events)
