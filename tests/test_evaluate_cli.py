"""`station evaluate` end to end on a small synthetic station database with separable classes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from station.cli import main
from station.evaluate.synthetic import make_database

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("evaldb")
    make_database(path, n_subjects=4, n_samples=24, classes=("I", "II", "IV", "Others"), size=32, n_frames=10, seed=3)
    return path


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _acc(rows, label_set, protocol, method, fusion="-") -> float:
    match = [r for r in rows if (r["label_set"], r["protocol"], r["method"], r["fusion"]) ==
             (label_set, protocol, method, fusion)]
    assert len(match) == 1, (label_set, protocol, method, fusion)
    return float(match[0]["accuracy"])


COMMON = ["--radii", "1,1,2", "--blocks", "3x3", "--repeats", "1", "--folds", "3", "--jobs", "1",
          "--radius3d", "12"]


def test_evaluate_writes_tables_plots_and_separates_classes(db, tmp_path, capsys):
    out = tmp_path / "report"
    # the station variant: on these 32 px crops Zhao's per-block borders leave 8x8 of each 10x10 block
    # (LBPTOP.m's default is checked bit for bit in test_features_lbptop_zhao.py and run by the other tests)
    rc = main(["evaluate", str(db), "--out", str(out), "--label-sets", "objective,3class", *COMMON,
               "--lbp-variant", "station"])
    assert rc == 0
    for name in ("report.html", "report.md", "results.csv", "per_class_recall.csv", "table11_fusion.md",
                 "table11_fusion.csv"):
        assert (out / name).stat().st_size > 100, name
    pngs = list((out / "figures").glob("*.png"))
    assert any(p.name.startswith("confusion_objective_loso") for p in pngs)
    assert any(p.name.startswith("fusion_objective_loso") for p in pngs)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    rows = _rows(out / "results.csv")
    # 4 objective classes (chance 25 %) and 3 classes (Others dropped, chance 33 %)
    assert _acc(rows, "objective", "loso", "LBP-TOP") >= 0.75
    assert _acc(rows, "objective", "kfold", "LBP-TOP") >= 0.75
    assert _acc(rows, "3class", "loso", "LBP-TOP") >= 0.75
    assert _acc(rows, "objective", "loso", "SI+HK") >= 0.5  # class-dependent bumps on the 3D surface
    paper = _acc(rows, "objective", "loso", "LBP-TOP + SI+HK", "paper")
    assert paper >= max(_acc(rows, "objective", "loso", "LBP-TOP"), _acc(rows, "objective", "loso", "SI+HK"))
    _acc(rows, "objective", "loso", "LBP-TOP + SI", "nested")
    html = (out / "report.html").read_text()
    assert "Table 11" in html and "<img" in html
    assert "LBP-TOP" in capsys.readouterr().err  # the console table


def test_sweep_reuses_cached_features(db, tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["evaluate", str(db), "--out", str(out), "--label-sets", "objective", "--protocols", "loso", "--no-3d",
            "--sweep", "blocks", "--sweep-blocks", "2x2,3x3", "--sweep-overlaps", "0,4", *COMMON]
    assert main(args) == 0
    first = capsys.readouterr().err
    assert "0 hit(s), 4 miss(es)" in " ".join(first.split())
    table = (out / "table7-10_blocks_objective_loso.csv").read_text().splitlines()
    assert table[0] == "blocks,overlap 0,overlap 4" and table[1].startswith("2x2,")
    assert main(args) == 0
    assert "4 hit(s), 0 miss(es)" in " ".join(capsys.readouterr().err.split())


def test_radii_sweep_table(db, tmp_path):
    out = tmp_path / "radii"
    assert main(["evaluate", str(db), "--out", str(out), "--label-sets", "objective", "--protocols", "loso",
                 "--sweep", "radii", "--sweep-radii", "1,1,1;2,2,2", *COMMON]) == 0
    rows = _rows(out / "table6_radii.csv")
    assert [r["Rx Ry Rt"] for r in rows] == ["1 1 1", "2 2 2"]
    assert all(float(r["objective LOSO Acc (%)"]) > 50 for r in rows)


def test_radius3d_sweep_table(db, tmp_path):
    out = tmp_path / "r3d"
    assert main(["evaluate", str(db), "--out", str(out), "--label-sets", "objective", "--protocols", "loso",
                 "--sweep", "radius3d", "--sweep-radius3d", "8,14", *COMMON]) == 0
    rows = _rows(out / "table_radius3d.csv")
    assert [r["radius (mm)"] for r in rows] == ["8", "14"]
    assert all(float(r["SI+HK Acc (%)"]) > 40 for r in rows)
    assert float(rows[0]["LBP-TOP + SI+HK [nested a] Acc (%)"]) > 40


def test_bad_arguments_are_explained(db, tmp_path, capsys):
    assert main(["evaluate", str(db), "--out", str(tmp_path), "--blocks", "5by5"]) == 2
    assert "ROWSxCOLS" in capsys.readouterr().err
    assert main(["evaluate", str(db), "--out", str(tmp_path), "--label-sets", "happy"]) == 2
    assert "objective, nonobjective, 3class" in " ".join(capsys.readouterr().err.split())
    assert main(["evaluate", str(db), "--out", str(tmp_path), "--models", "resnet"]) == 2
    assert "unknown model" in " ".join(capsys.readouterr().err.split())
    assert main(["evaluate", str(tmp_path / "nothing"), "--out", str(tmp_path)]) == 2
    assert "is not a folder" in " ".join(capsys.readouterr().err.split())
    assert main(["evaluate", str(db), "--out", str(tmp_path), "--fit-radius", "10"]) == 2  # 12 mm is not smaller
    assert "smaller than --fit-radius (10 mm)" in " ".join(capsys.readouterr().err.split())
