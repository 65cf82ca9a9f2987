"""CAS(ME)^3 Part A with depth: RGB + depth per sample, clouds from the intrinsics, 3D pipeline, fusion."""

from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pytest

import dblayouts
from station.checks import StationError
from station.cli import main
from station.evaluate.loaders import LoadOptions, detect_format, load_database
from station.features.landmarks23 import CurvatureParams
from station.features.sample import curvature_of_sample
from station.vocab.landmarks import NOSE_TIP_49 as NOSE_TIP

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def casme3(tmp_path_factory):
    root = tmp_path_factory.mktemp("CASME3")
    return root, dblayouts.casme3(root)


def test_label_sheet_rgb_and_depth_are_read_in_both_layouts(casme3):
    root, quirks = casme3
    assert detect_format(root) == "casme3"
    db = load_database(root)
    assert db.has_3d and db.fps == 30.0 and len(db.refs) == 9
    assert {r.subject for r in db.records} == {"spNO.1", "spNO.2", "spNO.3"}  # as the sheet spells them
    clip = next(r for r in db.refs if r.record.subject == "spNO.2")  # ME-clip folders spelled spNo.2_a_3
    assert "Part_A_ME_clip" in clip.frames[0] and clip.depth[0].endswith(".png") and len(clip.depth) == 9
    rec = next(r.record for r in db.refs if (r.record.subject, r.record.sample) == ("spNO.3", "b_3"))
    assert (rec.nonobjective_class, rec.objective_class, rec.aus) == ("surprise", "II", "1+2+5")
    subject, sample = quirks["apex /"]
    assert any(n.sample == f"{subject}/{sample}" and "apex '/' (not coded): the middle frame 7" in n.text
               for n in db.notes)
    assert db.notes[0].text == f"depth intrinsics: {root / 'intrinsics.json'}"
    assert db.label_sources["objective"].startswith("objective class I-VII")


def test_depth_becomes_a_cropped_registered_cloud_with_3d_landmarks(casme3):
    root, _ = casme3
    ref = load_database(root).refs[4]
    sample = ref.load()
    n = len(ref.frames)
    assert sample.cropped.shape[0] == n and sample.landmarks3d.shape == (n, 49, 3)
    assert np.isfinite(sample.landmarks3d).all()
    nose = sample.landmarks3d[0, NOSE_TIP]
    assert 250 < nose[2] < 900  # millimetres in front of the camera
    assert np.linalg.norm(sample.cloud(0) - nose, axis=1).max() <= 100.0 + 1e-3  # nose-tip sphere
    assert (sample.icp_fitness[1:] > 0.8).all()
    assert np.allclose(np.diff(sample.timestamps_ms), 1000 / 30)
    feats = curvature_of_sample(sample, CurvatureParams())
    assert feats["sihk"].shape == (2 * 23 * 2 * 9,) and np.isfinite(feats["sihk"]).all()
    # the depth in the file, deprojected with the file's intrinsics, is where the landmark is
    intr = json.loads((root / "intrinsics.json").read_text())
    depth = cv2.imread(ref.depth[0], cv2.IMREAD_UNCHANGED)
    u, v = np.round(sample.landmarks2d_raw[0, NOSE_TIP]).astype(int)
    z = float(np.median(depth[v - 2:v + 3, u - 2:u + 3]))
    assert abs(z - nose[2]) < 15 and abs((u - intr["ppx"]) * z / intr["fx"] - nose[0]) < 15


def test_intrinsics_assumption_is_stated_and_overridable(casme3, tmp_path):
    root, _ = casme3
    copy = tmp_path / "c3"
    shutil.copytree(root, copy)
    (copy / "intrinsics.json").unlink()
    db = load_database(copy)
    assert db.notes[0].text.startswith("depth intrinsics: assumed: depth registered to colour")
    cam = db.refs[0].camera
    assert cam.ppx == pytest.approx((424 - 1) / 2) and cam.fx == pytest.approx(212 / np.tan(np.radians(34.7)))
    given = load_database(copy, options=LoadOptions(depth_intrinsics=(300.0, 301.0, 210.0, 120.0)))
    assert (given.refs[0].camera.fx, given.refs[0].camera.source) == (300.0, "--depth-intrinsics")
    with pytest.raises(StationError, match="ships no cropped face set"):
        load_database(copy, options=LoadOptions(images="cropped"))
    bad = given.refs[0].depth[0]
    cv2.imwrite(bad, np.zeros((240, 424), np.uint8))
    with pytest.raises(StationError, match="16-bit single-channel"):
        given.refs[0].load()


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # CAS(ME)^3 samples go through dlib + ICP once for both tests


FAST = ["--radii", "1,1,2", "--blocks", "3x3", "--jobs", "1", "--C", "0.1,1"]


def test_fusion_table_on_casme3(casme3, tmp_path, feature_cache):
    root, _ = casme3
    out = tmp_path / "report"
    assert main(["evaluate", str(root), "--out", str(out), "--label-sets", "3class", "--protocols", "loso",
                 *FAST, "--no-nested", "--cache", str(feature_cache)]) == 0
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    methods = {r["method"] for r in rows}
    assert {"LBP-TOP", "SI", "HK", "SI+HK", "LBP-TOP + SI+HK"} <= methods
    assert all(int(r["n_samples"]) == 9 for r in rows)
    assert "apex '/' (not coded)" in (out / "report.md").read_text()


def test_station_and_casme3_cross_database_with_3d(casme3, tmp_path, feature_cache):
    from station.evaluate.synthetic import make_database

    root, _ = casme3
    dsme = tmp_path / "DSME"
    make_database(dsme, n_subjects=3, n_samples=9, classes=("I", "II", "IV"), size=32, n_frames=9)
    out = tmp_path / "cross"
    assert main(["evaluate", "--protocol", "cross-database", f"casme3={root}", f"station={dsme}", "--out", str(out),
                 *FAST, "--cache", str(feature_cache)]) == 0
    with open(out / "cross_database.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["method"] for r in rows] == ["LBP-TOP (station, measured)", "SI+HK (station, measured)",
                                           "LBP-TOP + SI+HK (nested a) (station, measured)"]
    assert "CAS(ME)^3 Part A UF1" in rows[0] and "station (DSME) UAR" in rows[0]
    assert "mean a =" in (out / "report.md").read_text()
