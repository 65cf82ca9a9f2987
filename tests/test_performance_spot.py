"""Streamed spotting gives what the in-memory path gives, and stores its score curve by trial identity."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from station.process import face2d, spotting
from station.record.writer import Storage, open_trial

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synth_trial(tmp_path_factory):
    """A synthetic participant's trial with a micro-expression and a blink (real camera path and writer)."""
    from station.synth.dataset import TrialPlan, record_scene, trial_scene

    path = tmp_path_factory.mktemp("spot") / "sub01" / "trial-01.h5"
    path.parent.mkdir()
    record_scene(trial_scene(TrialPlan(1, 1, ("micro", "blink")), 3), path, Storage("lz4"))
    return path


def test_face_stream_equals_aligning_the_whole_trial_in_memory(synth_trial):
    with open_trial(synth_trial) as f:
        frames = f["color"][...]
    landmarks = face2d.track_landmarks(frames, check_every=10 ** 6)
    faces, regions = spotting.aligned_faces(frames, landmarks)
    stream = spotting.FaceStream(len(frames), 60.0, spotting.SpotParams(landmark_step=1, check_s=0.25))
    for t, rgb in enumerate(frames):
        stream.add(t, rgb)
    np.testing.assert_array_equal(stream.landmarks, landmarks)
    assert stream.regions() == regions
    diff = np.abs(stream.faces - faces)  # the window offset folded into the warp: rounding only
    assert diff.max() < 1.0 and diff.mean() < 0.01, (diff.max(), diff.mean())


def test_face_stream_reports_the_frame_where_the_face_is_lost(synth_trial):
    with open_trial(synth_trial) as f:
        frames = f["color"][:40].copy()
    frames[30:] = frames[30:, :40, :40].mean(axis=(1, 2), keepdims=True).astype(np.uint8)  # face gone
    stream = spotting.FaceStream(len(frames), 60.0, spotting.SpotParams(check_s=0.5))
    with pytest.raises(face2d.FaceNotFound) as err:
        for t, rgb in enumerate(frames):
            stream.add(t, rgb)
    assert err.value.frame == 30


def test_median_of_frames_equals_numpy(synth_trial):
    rng = np.random.default_rng(0)
    for n in (7, 8):
        stack = rng.random((n, 5, 6)).astype(np.float32)
        np.testing.assert_array_equal(spotting.median_of_frames(stack), np.median(stack, axis=0))


def test_spot_cli_writes_the_score_curve_keyed_by_trial_identity(synth_trial, tmp_path):
    out = tmp_path / "candidates.csv"
    proc = subprocess.run([sys.executable, "-m", "station.cli", "spot", str(synth_trial), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "F1" in proc.stdout + proc.stderr  # the console writes to stderr
    from station.record import schema

    with open_trial(synth_trial) as f:
        identity = schema.read_identity(f, synth_trial)
        n = schema.readable_frames(f)
    curve = spotting.read_score_curve(out, identity)
    assert curve is not None and spotting.scores_path(out).exists()
    assert curve["trial_id"] == identity.trial_id and curve["participant"] == identity.participant
    assert curve["score"].shape == (n,) and curve["per_region"].shape == (n, len(curve["regions"]))
    assert curve["high"] == spotting.SpotParams().high
    again = spotting.spot_trial(synth_trial)  # the stored curve is what spotting computes
    np.testing.assert_allclose(curve["score"], again.score, rtol=1e-6)
    assert spotting.read_score_curve(out, "not-this-trial.h5") is None
    rows = spotting.read_candidates(out, identity)
    assert rows and max(curve["score"]) >= max(c.score for c in rows) - 0.01
