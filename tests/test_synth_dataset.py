"""The synthetic dataset: trial HDF5 files like recordings, ground truth inside, reproducible."""

from __future__ import annotations

import argparse
import json

import cv2
import h5py
import numpy as np
import pytest

from station.record import schema
from station.record.writer import open_trial, read_ground_truth
from station.synth import commands
from station.synth.dataset import LANDMARKS, make_dataset

SMALL = dict(width=424, height=240)  # a D415 mode; keeps the test quick


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("synth")
    return [make_dataset(base / name, 1, 2, seed=5, **SMALL) and base / name for name in ("a", "b")]


@pytest.mark.slow
def test_trial_files_hold_frames_and_ground_truth(two_runs):
    manifest = json.loads((two_runs[0] / "manifest.json").read_text())
    assert manifest["samples"] == 2 and len(manifest["trials"]) == 1
    path = two_runs[0] / manifest["trials"][0]["file"]
    with open_trial(path) as f:
        assert f.attrs["complete"] and f.attrs["synthetic"]
        n = f[schema.COLOR].shape[0]
        assert n == manifest["trials"][0]["frames"] == f[schema.DEPTH].shape[0]
        numbers = f[schema.FRAMES]["color_number"]
        events = read_ground_truth(f)
        lm = f[schema.GROUND_TRUTH][LANDMARKS]
        assert lm.shape == (n, 68, 2) and lm.dtype == np.float32
        assert np.array_equal(lm.attrs["frame_numbers"], numbers)
        assert [e["kind"] for e in events].count("micro") == 2
        assert {"macro", "blink"} <= {e["kind"] for e in events}
        for e in events:  # every event lies inside the recorded device frame numbers
            assert numbers[0] <= e["onset"] < e["apex"] < e["offset"] <= numbers[-1]
        # The z16 depth shows the sensor: holes and frame-to-frame noise on the face.
        depth = f[schema.DEPTH][0:2].astype(np.float32)
        face = (depth[0] > 300) & (depth[0] < 800) & (depth[1] > 300) & (depth[1] < 800)
        assert (depth[0] == 0).mean() > 0.02 and np.abs(depth[0] - depth[1])[face].mean() > 0.3
        # Ground truth matches the frames: from onset to apex of a micro-expression the color
        # changes most near the true landmarks that move.
        micro = next(e for e in events if e["kind"] == "micro")
        row = {int(k): i for i, k in enumerate(numbers)}
        a, b = row[micro["onset"]], row[micro["apex"]]
        moved = np.linalg.norm(lm[b] - lm[a], axis=1)
        assert moved.max() > 0.5  # a micro-expression is small but real (px at 424x240)


@pytest.mark.slow
def test_same_seed_gives_identical_content(two_runs):
    a, b = (sorted(p.rglob("*.h5")) for p in two_runs)
    assert [p.relative_to(two_runs[0]) for p in a] == [p.relative_to(two_runs[1]) for p in b]
    for fa, fb in zip(a, b):
        with h5py.File(fa) as x, h5py.File(fb) as y:
            for name in (schema.COLOR, schema.DEPTH, f"{schema.GROUND_TRUTH}/{LANDMARKS}"):
                assert np.array_equal(x[name][...], y[name][...]), name
            for field in ("color_number", "depth_number", "color_timestamp_ms", "depth_timestamp_ms"):
                assert np.array_equal(x[schema.FRAMES][field], y[schema.FRAMES][field]), field
            assert read_ground_truth(x) == read_ground_truth(y)


@pytest.mark.slow
def test_rerun_resumes_keeping_finished_trials(two_runs, tmp_path):
    manifest = json.loads((two_runs[0] / "manifest.json").read_text())
    trial = two_runs[0] / manifest["trials"][0]["file"]
    before = trial.stat().st_mtime_ns
    again = make_dataset(two_runs[0], 1, 2, seed=5, **SMALL)
    assert trial.stat().st_mtime_ns == before  # kept, not re-rendered
    assert again["frames"] == manifest["frames"]
    # A trial cut short by a crash (only its .writing file) is regenerated, identically.
    trial.rename(tmp_path / "done.h5")
    (trial.parent / (trial.name + ".writing")).write_bytes(b"left by a crash")
    make_dataset(two_runs[0], 1, 2, seed=5, **SMALL)
    with h5py.File(trial) as x, h5py.File(tmp_path / "done.h5") as y:
        assert np.array_equal(x[schema.COLOR][...], y[schema.COLOR][...])
    assert not (trial.parent / (trial.name + ".writing")).exists()
    stranger = tmp_path / "sub01" / "trial-01.h5"
    stranger.parent.mkdir(parents=True)
    stranger.write_bytes(b"not a trial")
    from station.checks import StationError

    with pytest.raises(StationError, match="trial-01.h5"):
        make_dataset(tmp_path, 1, 2, seed=5, **SMALL)
    assert stranger.read_bytes() == b"not a trial"


@pytest.mark.slow
def test_preview_verb_writes_a_contact_sheet(tmp_path):
    parser = argparse.ArgumentParser(prog="station")
    commands.register(parser.add_subparsers())
    out = tmp_path / "sheet.png"
    args = parser.parse_args(["synth", "preview", "--out", str(out), "--aus", "1+2"])
    assert args.func(args) == 0
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[0] > 400 and sheet.shape[1] > 1000


def test_dataset_verb_refuses_bad_counts(tmp_path):
    parser = argparse.ArgumentParser(prog="station")
    commands.register(parser.add_subparsers())
    args = parser.parse_args(["synth", "dataset", "--subjects", "4", "--samples", "2", "--out", str(tmp_path)])
    from station.checks import StationError

    with pytest.raises(StationError, match="--samples"):
        args.func(args)


@pytest.mark.slow
def test_a_live_virtual_recording_gets_its_ground_truth_afterwards(tmp_path):
    from station.camera import open_camera
    from station.record.recorder import record_trial
    from station.synth.dataset import annotate_recording

    camera = open_camera("virtual", realtime=False, subject=3, seed=2, **SMALL)
    assert camera.scene.endless
    camera.scene.n_frames = 90  # the live scene, cut after 1.5 s so the test does not depend on speed
    stats = record_trial(camera, tmp_path / "live.h5")
    n_events = annotate_recording(stats.path, camera.scene)
    assert n_events >= 1
    with open_trial(stats.path) as f:
        numbers = f[schema.FRAMES]["color_number"][...]
        events = read_ground_truth(f)
        assert len(events) == n_events
        for e in events:  # only events that overlap the recorded frames
            assert e["offset"] > numbers.min() and e["onset"] < numbers.max()
        assert f[schema.GROUND_TRUTH][LANDMARKS].shape == (len(numbers), 68, 2)
        assert f.attrs["synthetic"] and f.attrs["subject"] == 3
