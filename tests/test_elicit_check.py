"""`station check` and paper-form import: real files, real decoding, clear failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from station.checks import StationError
from station.elicit.check import FAIL, OK, collect_checks, probe_clip


def run_checks(*args, **kwargs) -> bool:
    """collect_checks, keeping the list for the assertions (the test hook lives here, not in check.py)."""
    run_checks.last = collect_checks(*args, **kwargs)
    return not any(c.result == FAIL for c in run_checks.last)
from station.elicit.democlips import DemoSpec, write_demo_clip
from station.elicit.forms import import_csv, validate_answers
from station.session import create_session, load_session

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory) -> Path:
    return write_demo_clip(DemoSpec("t", "anger", 1.0), tmp_path_factory.mktemp("clips") / "t.mp4")


def make_protocol(tmp_path: Path, clip_file: Path, duration: float = 1.0, extra_clip: str = "") -> Path:
    shutil.copy(clip_file, tmp_path / "good.mp4")
    (tmp_path / "manifest.yaml").write_text(
        "schema: 1\nclips:\n"
        f"  - {{id: good, file: good.mp4, emotion: anger, intensity: 2, duration: {duration}}}\n" + extra_clip)
    ids = "[good" + (", other]" if extra_clip else "]")
    p = tmp_path / "p.yaml"
    p.write_text(f"schema: 1\nstimuli: manifest.yaml\nclips: {ids}\ncamera: {{width: 424, height: 240, fps: 30}}\n")
    return p


def results(checks, name):
    return [c for c in checks if c.name == name]


def test_probe_demo_clip(clip_file):
    probe = probe_clip(clip_file)
    assert probe.first_ok and probe.last_ok and probe.has_audio
    assert (probe.width, probe.height, probe.fps) == (640, 360, 30)
    assert abs(probe.duration - 1.0) < 0.05


def test_check_passes_and_finds_problems(tmp_path, clip_file):
    p = make_protocol(tmp_path, clip_file)
    assert run_checks(p, camera=None, display=False, sessions_root=tmp_path)
    clip = results(run_checks.last, "clip")[0]
    assert clip.result == OK and "640x360" in clip.detail

    # wrong duration in the manifest, missing file, undecodable file
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a film" * 20)
    p = make_protocol(tmp_path, clip_file, duration=9.0,
                      extra_clip="  - {id: other, file: broken.mp4, emotion: sadness, duration: 1}\n")
    assert not run_checks(p, camera=None, display=False, sessions_root=tmp_path)
    good, other = results(run_checks.last, "clip")
    assert good.result == FAIL and "manifest says 9 s" in good.detail and "manifest.yaml:3" in good.detail
    assert other.result == FAIL and "broken.mp4" in other.detail
    (tmp_path / "broken.mp4").unlink()
    assert not run_checks(p, camera=None, display=False, sessions_root=tmp_path)
    assert "does not exist" in results(run_checks.last, "clip")[1].detail


def test_check_reports_a_malformed_protocol(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("schema: 1\nstimuli: [\n")
    assert not run_checks(p, camera=None, display=False)
    assert run_checks.last[0].result == FAIL and "p.yaml:" in run_checks.last[0].detail


@pytest.mark.slow
def test_check_camera_virtual_and_bad_camera(tmp_path, clip_file):
    p = make_protocol(tmp_path, clip_file)
    run_checks(p, camera="virtual", display=False, sessions_root=tmp_path)
    assert results(run_checks.last, "camera")[0].result == OK
    assert "none set" in results(run_checks.last, "camera settings")[0].detail
    p.write_text(p.read_text().replace("fps: 30}", "fps: 30, settings: {visual_preset: high_density, "
                                                       "laser_power: 150}}"))
    run_checks(p, camera="virtual", display=False, sessions_root=tmp_path)
    shown = results(run_checks.last, "camera settings")[0].detail
    assert "visual_preset=high_density, laser_power=150" in shown and "not applied: virtual D415" in shown
    assert not run_checks(p, camera="playback:/nonexistent.db3", display=False, sessions_root=tmp_path)
    assert results(run_checks.last, "camera")[0].result == FAIL


def test_validate_answers():
    assert validate_answers({"emotion": "anger", "intensity": "4", "movements": " frown "},
                            ("emotion", "intensity", "movements")) == {"emotion": "anger", "intensity": 4,
                                                                      "movements": "frown"}
    with pytest.raises(StationError, match="emotion must be one of"):
        validate_answers({"emotion": "joy"}, ("emotion",))
    with pytest.raises(StationError, match="between 1 and 5"):
        validate_answers({"intensity": 9}, ("intensity",))


def test_import_paper_forms(tmp_path):
    s = create_session(tmp_path, "P09", extra={"order": ["a", "b", "c"]})
    s.log_event("clip_first_frame", 1.0, clip="a")  # films a and b were shown, c never
    s.log_event("clip_first_frame", 9.0, clip="b")
    csv = tmp_path / "forms.csv"
    csv.write_text("clip,emotion,intensity,movements\na,anger,3,frowned\nb,,,\nend,,,\"lip press, brow raise\"\n")
    from station.elicit.selfreport import selfreport

    assert selfreport(s.folder, import_csv=str(csv)) == 3
    reports = load_session(s.folder).data["self_reports"]
    assert reports[0]["emotion"] == "anger" and reports[0]["intensity"] == 3 and not reports[0]["simulated"]
    assert reports[2]["when"] == "end" and "lip press" in reports[2]["movements"]
    csv.write_text("clip,emotion,intensity\nc,anger,3\n")
    with pytest.raises(StationError, match=r"forms.csv:2: column clip: 'c' is not a clip of this session"):
        selfreport(s.folder, import_csv=str(csv))  # never shown: no report can be about it
    csv.write_text("clip,emotion,intensity\nzz,anger,3\n")
    with pytest.raises(StationError, match=r"forms.csv:2: column clip: 'zz'"):
        import_csv(csv, ["a", "b"])
    csv.write_text("clip,feeling\n")
    with pytest.raises(StationError, match=r"forms.csv:1: header"):
        import_csv(csv, ["a"])
    csv.write_text("clip,emotion,intensity\na,anger,6\n")
    with pytest.raises(StationError, match=r"forms.csv:2: intensity must be between 1 and 5"):
        import_csv(csv, ["a"])
    assert len(json.loads((s.folder / "session.json").read_text())["self_reports"]) == 3  # nothing half-imported


def test_station_check_cli_exit_codes(station_cli):
    ok = station_cli("check", "protocols/demo.yaml", "--no-camera", "--no-display")
    assert ok.returncode == 0, ok.stderr
    assert "demo-happiness" in ok.stderr and "ready" in ok.stderr
    lab = station_cli("check", "protocols/dsme3d.yaml", "--no-camera", "--no-display")
    assert lab.returncode == 1
    assert "FAIL" in lab.stderr and "stimuli/lab/happiness-1.mp4" in lab.stderr and "check(s) failed" in lab.stderr
    bad = station_cli("run", "--participant", "John Smith", "--protocol", "protocols/nowhere.yaml")
    assert bad.returncode == 2 and "protocols/nowhere.yaml" in bad.stderr and "does not exist" in bad.stderr
