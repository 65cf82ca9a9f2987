"""CASME II and SAMM folders: detection, loading, and the 2D baseline on them."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from openpyxl import Workbook

from station.checks import StationError
from station.cli import main
from station.evaluate.loaders import detect_format, load_database
from station.evaluate.synthetic import face_texture, make_sample

EMOTIONS = {"I": "happiness", "II": "surprise", "IV": "disgust"}


def _samples(n_subjects=3, per_class=2, seed=0):
    rng = np.random.default_rng(seed)
    for s in range(n_subjects):
        texture = face_texture(rng, 32)
        for c, cls in enumerate(EMOTIONS):
            for k in range(per_class):
                yield s + 1, f"{s}{c}{k}", cls, make_sample(rng, f"s{s}", f"x{s}{c}{k}", cls, texture, n_frames=10)


def _sheet(path: Path, header: list[str], rows: list[list], title_rows: int = 0) -> None:
    wb = Workbook()
    ws = wb.active
    for i in range(title_rows):
        ws.append([f"title line {i}"])
    ws.append(header)
    for row in rows:
        ws.append(row)
    wb.save(path)


@pytest.fixture(scope="module")
def casme2(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("casme2")
    rows = []
    for subject, code, cls, sample in _samples():
        folder = root / "CASME2_RAW_selected" / f"sub{subject:02d}" / f"EP0{code}_01"
        folder.mkdir(parents=True)
        first = 30 + int(code)
        for t, frame in enumerate(sample.gray):
            cv2.imwrite(str(folder / f"img{first + t}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
        rows.append([f"{subject:02d}", f"EP0{code}_01", first + 1, first + 4, first + 9, "1+2", EMOTIONS[cls]])
    rows.append(["09", "EP99_01", 1, 2, 3, "4", "disgust"])  # no such folder: skipped with a note
    _sheet(root / "CASME2-coding-20140508.xlsx",
           ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion"], rows)
    return root


@pytest.fixture(scope="module")
def samm(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("samm")
    rows = []
    objective = {"I": 1, "II": 2, "IV": 4}
    for subject, code, cls, sample in _samples(seed=1):
        sid = f"{subject + 5:03d}"
        name = f"{sid}_{code}_2"
        folder = root / "SAMM" / sid / name
        folder.mkdir(parents=True)
        first = 5000 + 100 * int(code)
        for t, frame in enumerate(sample.gray):
            cv2.imwrite(str(folder / f"{sid}_{first + t:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
        rows.append([sid, name, first, first + 4, first + 9, "", "R12", EMOTIONS[cls].capitalize(), objective[cls]])
    _sheet(root / "SAMM_Micro_FACS_Codes_v2.xlsx",
           ["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame", "Duration", "Action Units",
            "Estimated Emotion", "Objective Classes"], rows, title_rows=3)
    return root


def test_casme2_folder_is_detected_and_loaded(casme2):
    assert detect_format(casme2) == "casme2"
    db = load_database(casme2)
    assert len(db.refs) == 18 and not db.has_3d
    assert any("EP99_01" in n for n in db.notes)
    ref = db.refs[0]
    sample = ref.load()
    assert sample.cropped.shape == (9, 32, 32)  # onset+1 .. offset (img31..img39 of img30..img39)
    assert sample.frame_numbers[0] == ref.record.onset and sample.index_of(ref.record.apex) == 3
    assert ref.record.nonobjective_class == "happiness" and ref.record.subject == "01"


def test_samm_folder_with_title_rows(samm):
    assert detect_format(samm) == "samm"
    db = load_database(samm, "samm")
    assert len(db.refs) == 18
    assert sorted({r.objective_class for r in db.records}) == ["1", "2", "4"]
    assert db.refs[0].load().cropped.shape[0] == 10


def test_2d_baseline_runs_on_casme2_and_samm(casme2, samm, tmp_path):
    for root, fmt in ((casme2, "casme2"), (samm, "samm")):
        out = tmp_path / fmt
        assert main(["evaluate", str(root), "--format", fmt, "--out", str(out), "--label-sets", "3class",
                     "--protocols", "loso", "--radii", "1,1,2", "--blocks", "3x3", "--jobs", "1"]) == 0
        with open(out / "results.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert {r["method"] for r in rows} == {"LBP-TOP"}  # no 3D in these databases
        assert float(rows[0]["accuracy"]) > 0.7  # 3 separable classes, chance 1/3


def test_spreadsheet_problems_are_named(tmp_path):
    _sheet(tmp_path / "coding.xlsx", ["Subject", "Filename", "OnsetFrame", "ApexFrame"], [["1", "EP01", 1, 2]])
    with pytest.raises(StationError, match="lacks the column.*offsetframe"):
        load_database(tmp_path, "casme2")
    (tmp_path / "coding.xlsx").unlink()
    with pytest.raises(StationError, match="cannot tell what database"):
        detect_format(tmp_path)
