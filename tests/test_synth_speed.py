"""The faster synthetic dataset writes the same frames: parallel workers, reused preparation,
memoised motion, the head-motion field and the sensor noise, each against the plain computation."""

from __future__ import annotations

import argparse
import json

import cv2
import h5py
import numpy as np
import pytest

from station.record import schema
from station.synth import commands
from station.synth.dataset import TrialPlan, make_dataset, plan_dataset, trial_scene
from station.synth.depthface import SUBPIXEL_STEP, D415Noise
from station.synth.participant import sample_timeline_scene

SMALL = dict(width=424, height=240)  # a D415 mode; keeps the tests quick


def _old_noise(noise, z: np.ndarray, index: int, box, state: dict) -> np.ndarray:
    """D415Noise.__call__ as it was written before the speed-up (the reference)."""
    h, w = noise.shape
    oy, ox = noise._offset(index)
    if state.get("static") is None or state["static"][0] != box:
        valid = z > 0
        disparity = noise.f_b / np.where(valid, z, np.float32(1.0))
        holes = noise._steep(z) | ~valid
        holes[:, :noise.band] = True
        state["static"] = (box, disparity.astype(np.float32), holes)
    else:
        disparity, holes = state["static"][1].copy(), state["static"][2].copy()
        x, y, bw, bh = box
        zb = z[y:y + bh, x:x + bw]
        valid = zb > 0
        disparity[y:y + bh, x:x + bw] = noise.f_b / np.where(valid, zb, np.float32(1.0))
        holes[y:y + bh, x:x + bw] = noise._steep(zb) | ~valid
        if x < noise.band:
            holes[:, :noise.band] = True
    disparity = disparity.astype(np.float32, copy=False)
    disparity += noise._noise[oy:oy + h, ox:ox + w]
    disparity *= np.float32(1 / SUBPIXEL_STEP)
    np.rint(disparity, out=disparity)
    out = np.divide(np.float32(noise.f_b / SUBPIXEL_STEP), disparity, out=disparity)
    holes |= noise._random_holes[oy:oy + h, ox:ox + w]
    out[holes] = 0.0
    return out


def _old_motion(scene, index: int) -> np.ndarray:
    """SyntheticParticipant.motion as it was written before the speed-up (the reference)."""
    field = scene.displacement(index)
    m = scene.head_affine(index)
    gx, gy = scene._grid
    w = scene._head_weight
    hx = w * ((m[0, 0] - 1) * gx + m[0, 1] * gy + m[0, 2])
    hy = w * (m[1, 0] * gx + (m[1, 1] - 1) * gy + m[1, 2])
    if field is None:
        return np.stack([hx, hy, np.zeros_like(hx)]).astype(np.float32)
    return np.stack([field[0] + hx, field[1] + hy, field[2]]).astype(np.float32)


@pytest.fixture(scope="module")
def scene():
    return sample_timeline_scene(2, 4, ["micro", "blink", "macro"], **SMALL)


def test_sensor_noise_is_bit_identical_to_the_plain_computation(scene):
    state: dict = {}
    noise = D415Noise((scene.height, scene.width), scene.fx, scene.seed * 1000 + scene.subject)  # a fresh one
    for i in [0, 1, 2, 17, 40, scene.n_frames - 1]:
        z = scene.depth0.copy()  # the z-buffer the noise gets in render(): head motion and expressions
        field = scene.motion(i)
        bx, by, bw, bh = scene.box
        mx, my = scene._backward_maps(field[:2])
        face = cv2.remap(z, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        z[by:by + bh, bx:bx + bw] = face + field[2] * np.float32(0.001) * (face > 0)
        new = noise(z.copy(), i, scene.box)
        old = _old_noise(noise, z.copy(), i, scene.box, state)
        assert new.dtype == old.dtype == np.float32
        assert np.array_equal(new, old), f"frame {i}"
        assert (new == 0).mean() > 0.02  # holes are there (not both empty)


def test_motion_field_is_bit_identical_to_the_plain_formula(scene):
    moving = [i for i in range(scene.n_frames) if scene.displacement(i) is not None]
    assert moving and len(moving) < scene.n_frames  # both cases: expression and neutral
    for i in [0, 3, moving[0], moving[len(moving) // 2], moving[-1], scene.n_frames - 1]:
        assert np.array_equal(scene.motion(i), _old_motion(scene, i)), f"frame {i}"


def test_memo_follows_the_timeline_and_hands_out_copies(scene):
    twin = sample_timeline_scene(2, 4, ["micro", "blink", "macro"], **SMALL)
    apex = twin.events()[0].apex
    lm = twin.landmarks(apex)
    lm[:] = -1  # a caller scribbling on its landmarks does not change the scene's
    assert np.array_equal(twin.landmarks(apex), scene.landmarks(apex)) and twin.landmarks(apex).min() > 0
    moved = twin.motion(apex).copy()
    twin.timeline.events[:] = []  # a new (empty) time line: the memo must not answer for it
    assert not np.array_equal(twin.motion(apex), moved)
    assert np.array_equal(twin.motion(apex), _old_motion(twin, apex))
    assert len(twin._recent) <= 12


def test_a_second_trial_reusing_the_preparation_renders_the_same(tmp_path):
    plans = [p for p in plan_dataset(1, 8, 3) if p.subject == 1]
    assert len(plans) == 2
    first = trial_scene(plans[0], 3, **SMALL)
    for i in range(3):
        first.render(i)  # the base's noise has its static part and memo filled by now
    reused = trial_scene(plans[1], 3, **SMALL, base=first)
    fresh = trial_scene(plans[1], 3, **SMALL)
    assert reused is not first and reused.events() == fresh.events() and reused.n_frames == fresh.n_frames
    assert first.events() != fresh.events()  # the base keeps its own time line
    for i in (0, 1, fresh.events()[0].apex, fresh.n_frames - 1):
        for a, b in zip(reused.render(i), fresh.render(i)):
            assert np.array_equal(a, b), f"frame {i}"
        assert np.array_equal(reused.landmarks(i), fresh.landmarks(i))
    # another subject's scene is never reused
    other = trial_scene(TrialPlan(2, 1, ("micro",)), 3, **SMALL, base=first)
    assert other.subject == 2 and not np.array_equal(other.color0, first.color0)


def _content(folder):
    out = {}
    for path in sorted(folder.rglob("*.h5")):
        with h5py.File(path) as f:
            table = f[schema.FRAMES][...]
            out[str(path.relative_to(folder))] = (
                f[schema.COLOR][...], f[schema.DEPTH][...], f[schema.GROUND_TRUTH][schema.GT_LANDMARKS][...],
                table["color_number"], table["depth_timestamp_ms"], schema.read_ground_truth_events(f),
                bool(f.attrs["complete"]))
    return out


@pytest.mark.slow
def test_worker_processes_write_the_same_dataset(tmp_path):
    seen = []
    serial = make_dataset(tmp_path / "serial", 2, 3, seed=7, jobs=1, **SMALL)
    parallel = make_dataset(tmp_path / "parallel", 2, 3, seed=7, jobs=2, progress=lambda *a: seen.append(a), **SMALL)
    assert [t["file"] for t in parallel["trials"]] == [t["file"] for t in serial["trials"]]
    assert parallel["frames"] == serial["frames"] > 0
    assert sorted(p.relpath for p, _, _ in seen) == sorted(t["file"] for t in serial["trials"])  # one call each
    a, b = _content(tmp_path / "serial"), _content(tmp_path / "parallel")
    assert a.keys() == b.keys() and len(a) == 2
    for name in a:
        for x, y in zip(a[name], b[name]):
            assert (np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y), name
    assert json.loads((tmp_path / "parallel" / "manifest.json").read_text())["frames"] == serial["frames"]


def test_dataset_verb_refuses_a_bad_job_count(tmp_path):
    parser = argparse.ArgumentParser(prog="station")
    commands.register(parser.add_subparsers())
    args = parser.parse_args(["synth", "dataset", "--subjects", "1", "--samples", "1", "--jobs", "0",
                              "--out", str(tmp_path / "x")])
    from station.checks import StationError

    with pytest.raises(StationError, match="--jobs must be .* got 0"):
        args.func(args)
    assert not (tmp_path / "x" / "manifest.json").exists()
