"""Spotting, 2D/3D preprocessing and export on a short synthetic trial (real files, real filters)."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from station.dataset import read_index, read_sample
from station.process import face2d, face3d
from station.process.coding import Annotation, write_coding
from station.process.export import ProcessOptions, ground_truth_specs, process_trial
from station.process.spotting import evaluate_spotting, spot_trial
from station.record.writer import Storage, open_trial, read_calibration
from station.vocab.landmarks import INNER_EYE_CORNERS_49, NOSE_TIP_49, to49

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synth_trial(tmp_path_factory):
    """One synthetic participant's trial: a micro-expression (AU1+2+4) and a blink, 62 frames."""
    from station.synth.dataset import TrialPlan, record_scene, trial_scene

    path = tmp_path_factory.mktemp("synth") / "sub01" / "trial-01.h5"
    path.parent.mkdir()
    record_scene(trial_scene(TrialPlan(1, 1, ("micro", "blink")), 3), path, Storage("lz4"))
    return path


def test_landmarks_alignment_and_crop_against_ground_truth(synth_trial):
    with open_trial(synth_trial) as f:
        frames = f["color"][:12]
        truth = to49(f["ground_truth"]["landmarks68"][:12])
    lm = to49(face2d.track_landmarks(frames))
    assert lm.shape == (12, 49, 2)
    aligned = face2d.align_and_crop(frames, lm)
    eyes = aligned.landmarks2d[0][list(INNER_EYE_CORNERS_49)] + np.array(aligned.box[:2])
    np.testing.assert_allclose(eyes, face2d.TEMPLATE_EYES, atol=1e-3)  # first frame's eyes on the template
    error = face2d.landmark_error(lm, truth, aligned.transform)
    assert error["normalised"] < 0.12, error
    assert aligned.cropped.shape[0] == 12 and aligned.cropped.shape[1] > 100


def test_librealsense_filters_fill_holes_and_icp_recovers_a_known_motion(synth_trial):
    with open_trial(synth_trial) as f:
        cal = read_calibration(f)
        depth = f["depth"][:6]
        stamps = f["frames"]["depth_timestamp_ms"][:6]
        lm = to49(f["ground_truth"]["landmarks68"][:1])[0]
    holed = depth.copy()
    holed[:, 200:215, 400:415] = 0
    filtered = face3d.filter_sequence(holed, stamps, cal, warmup=1)
    assert filtered.shape == (5, *depth.shape[1:])
    assert (filtered[:, 200:215, 400:415] == 0).sum() < (holed[1:, 200:215, 400:415] == 0).sum()
    cloud = face3d.cloud_in_color_frame(filtered[0], cal, roi=face3d.face_roi(filtered[0], lm, cal))
    nose = face3d.landmarks_3d(face3d.xyz_image(cloud, cal, lm), lm)[NOSE_TIP_49]
    face = face3d.spherical_crop(cloud, nose)
    assert len(face) > 1000 and np.linalg.norm(face - nose, axis=1).max() <= 100.0
    angle = np.deg2rad(2.0)
    motion = np.eye(4)
    motion[:3, :3] = [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]]
    motion[:3, 3] = [1.5, -1.0, 2.0]
    moved = face3d.transform_points(face - nose, motion) + nose
    reg = face3d.icp_to_reference(moved, face)
    back = face3d.transform_points(moved, reg.transform)
    assert reg.fitness > 0.9
    assert np.linalg.norm(back - face, axis=1).mean() < 0.7  # mm, from ~4 mm before registration


def test_spotting_finds_the_micro_expression_and_flags_the_blink(synth_trial):
    result = spot_trial(synth_trial)
    kinds = {c.kind for c in result.candidates}
    assert "blink" in kinds
    scores = evaluate_spotting([result])
    assert scores["tp"] == 1 and scores["recall"] == 1.0, (result.candidates, result.truth)


def test_export_from_ground_truth_writes_a_readable_database(synth_trial, tmp_path):
    db = tmp_path / "db"
    outcome = process_trial(synth_trial, ground_truth_specs(synth_trial), ProcessOptions(out=str(db)))
    assert not outcome.skipped, [str(s) for s in outcome.skipped]
    (record,) = outcome.records
    assert (record.onset, record.aus, record.objective_class) == (6, "1+2+4", "VI")
    from station.dataset import write_index

    write_index(db, outcome.records)
    (row,) = read_index(db)
    sample = read_sample(db, row)
    assert len(sample) == record.offset - record.onset + 1
    assert sample.landmarks3d.shape == (len(sample), 49, 3) and np.isfinite(sample.landmarks3d).all()
    assert sample.cloud_offsets[-1] == len(sample.cloud_points)
    assert (sample.icp_fitness > 0.5).all()
    assert (db / "2d" / "cropped" / "sub01" / row.sample / f"reg_img{row.apex}.png").exists()
    assert (db / "2d" / "uncropped" / "sub01" / row.sample / f"img{row.onset}.png").exists()
    assert len(list((db / "3d" / "sub01" / row.sample).glob("*.ply"))) == len(sample)
    assert outcome.metrics[0]["lm2d_aligned_px"] < 5.0
    # crops are stored gzip level 1, one chunk per frame (the demo's 600 MB budget), and read back whole
    import h5py
    from station.dataset import sample_path

    with h5py.File(sample_path(db, row)) as f:
        crops = f["cropped"]
        assert (crops.compression, crops.compression_opts, crops.chunks[0]) == ("gzip", 1, 1)
        assert np.array_equal(crops[()], sample.cropped)


def _no_face_trial(path: Path) -> Path:
    """A trial of a textured board: frames without a face."""
    from station.camera.scene import MovingSurface
    from station.camera.virtual import VirtualD415
    from station.record.writer import TrialWriter

    cam = VirtualD415(MovingSurface(n_frames=12), realtime=False)
    writer = TrialWriter(path, cam.start())
    try:
        while (fs := cam.read(2.0)) is not None:
            writer.append(fs)
    except Exception:  # noqa: BLE001 - EndOfStream ends the scene
        pass
    cam.stop()
    return writer.close()


def test_process_cli_skips_bad_inputs_with_file_and_frame_and_goes_on(synth_trial, tmp_path):
    trials = tmp_path / "trials"
    trials.mkdir()
    shutil.copy(synth_trial, trials / "trial-01.h5")
    truncated = trials / "trial-02.h5"
    truncated.write_bytes(Path(synth_trial).read_bytes()[:200_000])
    _no_face_trial(trials / "trial-03.h5")
    coding = tmp_path / "final.csv"
    write_coding(coding, [
        Annotation("final", "trial-01.h5", 1, 6, 15, 29, "1+2+4"),
        Annotation("final", "trial-01.h5", 2, 30, 33, 500, "12"),  # offset outside the trial
        Annotation("final", "trial-01.h5", 3, 40, 42, 44, "12+99"),  # unknown AU
        Annotation("final", "trial-02.h5", 1, 6, 15, 29, "1"),
        Annotation("final", "trial-03.h5", 1, 3, 5, 8, "1"),
    ])
    db = tmp_path / "db"
    proc = subprocess.run([sys.executable, "-m", "station.cli", "process", str(trials), "--coding", str(coding),
                           "--out", str(db), "--no-ply", "--jobs", "2"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr
    assert [r.onset for r in read_index(db)] == [6]
    assert "skipped (4)" in proc.stderr
    import json

    skipped = {(Path(s["file"]).name, s["frame"]): s["reason"]
               for s in json.loads((db / "process-report.json").read_text())["skipped"]}
    assert "not in the trial" in skipped[("trial-01.h5", 500)]
    assert "AU 99" in skipped[("trial-01.h5", None)]
    assert "truncated" in skipped[("trial-02.h5", None)]
    assert "no face" in skipped[("trial-03.h5", 3)]


def test_process_cli_runs_on_a_dask_cluster_by_address(synth_trial, tmp_path):
    """``--scheduler ADDRESS``: the CLI connects to a running dask.distributed scheduler."""
    from dask.distributed import LocalCluster

    db = tmp_path / "db"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://", host="127.0.0.1",
                      dashboard_address=None) as cluster:
        proc = subprocess.run([sys.executable, "-m", "station.cli", "process", str(synth_trial), "--from-ground-truth",
                               "--out", str(db), "--no-png", "--no-ply", "--scheduler", cluster.scheduler_address],
                              cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert [(r.sample, r.onset, r.offset) for r in read_index(db)] == [("1_1", 6, 29)]


def test_unreachable_scheduler_is_a_clear_error(synth_trial, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "station.cli", "process", str(synth_trial), "--from-ground-truth",
                           "--out", str(tmp_path / "db"), "--scheduler", "tcp://127.0.0.1:9"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "cannot reach the Dask scheduler" in " ".join(proc.stderr.split())
