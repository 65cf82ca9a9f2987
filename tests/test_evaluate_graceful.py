"""`station evaluate` on databases too small or damaged for the full protocol: a report with notes.

Real station databases (synthetic samples written by the station's own writer), real HDF5 files
(one truncated on purpose), the real CLI in-process; the report's HTML is read back.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from station.cli import main
from station.evaluate.synthetic import make_database

pytestmark = pytest.mark.slow

FAST = ["--radii", "1,1,2", "--blocks", "2x2", "--repeats", "1", "--jobs", "1", "--no-3d", "--label-sets",
        "objective,3class", "--lbp-variant", "station"]


def _db(tmp_path: Path, name: str, subjects: int, samples: int, classes=("I", "II", "IV", "Others")) -> Path:
    path = tmp_path / name
    make_database(path, n_subjects=subjects, n_samples=samples, classes=classes, size=24, n_frames=8, seed=1)
    return path


def _run(db: Path, out: Path, *extra: str) -> tuple[int, str, list[dict]]:
    rc = main(["evaluate", str(db), "--out", str(out), *FAST, *extra])
    html = (out / "report.html").read_text(encoding="utf-8") if (out / "report.html").exists() else ""
    rows = []
    if (out / "results.csv").exists():
        with open(out / "results.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    return rc, html, rows


def test_one_subject_skips_loso_and_runs_kfold(tmp_path, capsys):
    rc, html, rows = _run(_db(tmp_path, "one", 1, 16), tmp_path / "r1")
    assert rc == 0
    assert "LOSO needs at least two subjects" in html
    assert {r["protocol"] for r in rows} == {"kfold"}
    # 4 samples per class: 10-fold cannot stratify, 4-fold is used and said so
    assert {r["folds"] for r in rows} == {"4"}
    assert "10-fold needs &gt;= 10 samples in every class; the smallest class has 4: 4-fold" in html
    assert "LOSO needs at least two subjects" in capsys.readouterr().err


@pytest.mark.parametrize("subjects", [3, 4])
def test_three_and_four_subjects_adapt_the_folds(tmp_path, subjects):
    rc, html, rows = _run(_db(tmp_path, f"s{subjects}", subjects, 4 * subjects), tmp_path / f"r{subjects}")
    assert rc == 0
    loso = [r for r in rows if r["protocol"] == "loso"]
    kfold = [r for r in rows if r["protocol"] == "kfold"]
    assert loso and kfold
    assert {r["folds"] for r in loso} == {str(subjects)}
    assert {int(r["folds"]) for r in kfold} == {subjects}  # `subjects` samples per class
    assert f"{subjects} folds (one per subject)" in html
    assert "chance (majority)" in html and "per-class recall" in html


def test_label_set_with_one_class_is_skipped_with_the_reason(tmp_path):
    db = _db(tmp_path, "oneclass", 3, 9, classes=("I",))
    rc, html, rows = _run(db, tmp_path / "rc")
    assert rc == 0 and rows == []
    assert "a label set needs two" in html


def test_broken_sample_is_reported_and_skipped(tmp_path):
    db = _db(tmp_path, "broken", 4, 16)
    victim = sorted((db / "samples").rglob("*.h5"))[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 3])  # a cut file, as from a full disk or a copy that died
    rc, html, rows = _run(db, tmp_path / "rb")
    assert rc == 0
    assert {int(r["n_samples"]) for r in rows if r["label_set"] == "objective"} == {15}
    assert victim.stem in html and "skipped" in html
    assert "Loading notes" in html


def test_damaged_index_is_refused_with_row_and_column(tmp_path, capsys):
    db = _db(tmp_path, "cut", 3, 12)
    index = db / "micro-expression.csv"
    text = index.read_text(encoding="utf-8")
    lines = text.splitlines()
    index.write_text("\n".join(lines[:6]) + "\n" + lines[6][:25], encoding="utf-8")  # cut mid-row
    assert main(["evaluate", str(db), "--out", str(tmp_path / "rcut"), *FAST]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "micro-expression.csv:7, column" in err and "cut" in err
    cells = lines[3].split(",")
    cells[2] = ""  # OnsetFrame emptied
    index.write_text("\n".join(lines[:3] + [",".join(cells)] + lines[4:]) + "\n", encoding="utf-8")
    assert main(["evaluate", str(db), "--out", str(tmp_path / "rempty"), *FAST]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "micro-expression.csv:4, column OnsetFrame: empty" in err
