"""``station evaluate`` on real-layout folders: the baseline with its notes, MEGC 2019, cross-database."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import dblayouts
from station.checks import StationError
from station.cli import main
from station.evaluate.loaders import detect_format, load_database
from station.evaluate.synthetic import make_database

FAST = ["--radii", "1,1,2", "--blocks", "3x3", "--jobs", "1", "--C", "0.1,1"]


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("dbs")
    dblayouts.casme2(base / "CASME2")
    dblayouts.samm(base / "SAMM")
    dblayouts.smic(base / "SMIC")
    make_database(base / "DSME", n_subjects=3, n_samples=18, classes=("I", "II", "IV"), size=32, n_frames=10)
    return base


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_baseline_on_casme2_lists_every_fallback_in_the_report(roots, tmp_path):
    out = tmp_path / "casme2"
    assert main(["evaluate", str(roots / "CASME2"), "--format", "casme2", "--out", str(out), "--label-sets",
                 "objective,nonobjective,3class", "--protocols", "loso", *FAST]) == 0
    rows = _csv(out / "results.csv")
    assert {r["method"] for r in rows} == {"LBP-TOP"}
    assert float(next(r for r in rows if r["label_set"] == "3class")["accuracy"]) > 0.7
    report = (out / "report.md").read_text()
    for text in ("sub01/EP02_01f: apex '/' (not coded): the middle frame 44 used",
                 "sub01/EP03_01f: offset '0' (not coded): the folder's last frame",
                 "sub02/EP04_02f: offset 24 < onset 54 (a typo in the sheet)", "sub03/EP99_99:"):
        assert text in report


def test_megc2019_composite_prints_and_writes_the_table(roots, tmp_path, capsys):
    out = tmp_path / "megc"
    assert main(["evaluate", "--protocol", "megc2019", f"casme2={roots / 'CASME2'}", f"samm={roots / 'SAMM'}",
                 str(roots / "SMIC"), "--out", str(out), *FAST]) == 0
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert "MEGC 2019 composite" in printed and "0.5882" in printed  # measured row + published row
    rows = _csv(out / "megc2019.csv")
    assert [r["method"] for r in rows] == ["LBP-TOP (station, measured)", "LBP-TOP (MEGC 2019, published)"]
    assert list(rows[0])[1:] == ["composite UF1", "composite UAR", "CASME II UF1", "CASME II UAR", "SAMM UF1",
                                 "SAMM UAR", "SMIC-HS UF1", "SMIC-HS UAR"]
    assert float(rows[0]["composite UF1"]) > 0.6 and float(rows[0]["composite UAR"]) > 0.6
    parts = _csv(out / "megc2019_parts.csv")
    assert [(p["part"], p["subjects"], p["samples"]) for p in parts] == [
        ("CASME II", "3", "18"), ("SAMM", "3", "18"), ("SMIC-HS", "3", "18")]
    assert "apex '/'" in (out / "report.md").read_text()


def test_station_database_joins_a_cross_database_run(roots, tmp_path):
    out = tmp_path / "cross"
    assert main(["evaluate", "--protocol", "cross-database", f"casme2={roots / 'CASME2'}", f"station={roots / 'DSME'}",
                 "--out", str(out), *FAST]) == 0
    rows = _csv(out / "cross_database.csv")
    assert len(rows) == 1 and "station (DSME) UF1" in rows[0]
    parts = _csv(out / "cross_database_parts.csv")
    assert [p["part"] for p in parts] == ["CASME II", "station (DSME)"] and parts[1]["samples"] == "18"


def test_several_databases_need_a_multi_database_protocol(roots, capsys):
    assert main(["evaluate", str(roots / "CASME2"), str(roots / "SAMM")]) != 0
    assert "several need --protocol megc2019 or" in capsys.readouterr().err


def test_spreadsheet_problems_are_named(tmp_path):
    dblayouts.sheet(tmp_path / "CASME2-coding.xlsx", ["Subject", "Filename", "OnsetFrame", "ApexFrame"],
                    [["1", "EP01", 1, 2]])
    assert detect_format(tmp_path) == "casme2"
    with pytest.raises(StationError, match="needs its coding sheet.*Filename, OnsetFrame, ApexFrame, OffsetFrame"):
        load_database(tmp_path)
    (tmp_path / "CASME2-coding.xlsx").unlink()
    with pytest.raises(StationError, match="cannot tell what database"):
        detect_format(tmp_path)


def test_database_options_are_checked(roots, capsys):
    for bad, message in ((["--depth-intrinsics", "600,600"], "--depth-intrinsics needs FX,FY,PPX,PPY"),
                         (["--depth-scale", "0"], "--depth-scale must be > 0"),
                         (["--images", "raw", "--format", "station"], "--images raw does not apply")):
        assert main(["evaluate", str(roots / "DSME"), *bad]) != 0
        assert message in " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert main(["evaluate", "--protocol", "megc2019", str(roots / "CASME2"), str(roots / "CASME2")]) != 0
    assert "given twice" in " ".join(capsys.readouterr().err.split())
