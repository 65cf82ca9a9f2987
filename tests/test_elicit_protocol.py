"""Protocol and manifest validation: shipped files load, bad files name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.checks import StationError
from station.elicit.protocol import load_manifest, load_protocol
from station.vocab.classes import REPORT_EMOTIONS, TARGET_EMOTIONS

ROOT = Path(__file__).resolve().parents[1]

MANIFEST = """\
schema: 1
clips:
  - id: a
    file: a.mp4
    emotion: happiness
    intensity: 3.5
    duration: 2
  - id: b
    file: b.mp4
    emotion: disgust
    duration: 2
"""


def write(tmp_path: Path, manifest: str = MANIFEST, protocol: str = "") -> Path:
    (tmp_path / "manifest.yaml").write_text(manifest)
    p = tmp_path / "p.yaml"
    p.write_text("schema: 1\nstimuli: manifest.yaml\nclips: [a, b]\n" + protocol)
    return p


def test_shipped_protocols_follow_the_paper():
    dsme = load_protocol(ROOT / "protocols" / "dsme3d.yaml")
    assert len(dsme.clips) == 14
    assert {c.emotion for c in dsme.clips} == {"happiness", "anger", "sadness", "surprise", "disgust"}
    assert (dsme.camera.width, dsme.camera.height, dsme.camera.fps) == (848, 480, 60)
    assert dsme.rest.mode == "key" and dsme.self_report.at_end == ("movements",)
    assert "neutral" in dsme.instructions.welcome and "prize" in dsme.instructions.welcome
    assert "ESCAPE" in dsme.instructions.welcome
    demo = load_protocol(ROOT / "protocols" / "demo.yaml")
    assert [c.generated for c in demo.clips] == ["demo"] * 3
    total = sum(c.duration + demo.baseline.seconds + demo.rest.seconds for c in demo.clips)
    assert total < 60


def test_manifest_entries(tmp_path):
    m = load_manifest(write(tmp_path).parent / "manifest.yaml")
    assert m.clips["a"].intensity == 3.5 and m.clips["a"].path == (tmp_path / "a.mp4").resolve()
    assert m.clips["b"].intensity is None and m.clips["b"].emotion in TARGET_EMOTIONS


@pytest.mark.parametrize("bad, line, words", [
    (MANIFEST.replace("emotion: disgust", "emotion: joy"), 10, ["clips[1].emotion", "'joy'", "happiness"]),
    (MANIFEST.replace("intensity: 3.5", "intensity: 7"), 6, ["clips[0].intensity", "between 1 and 5"]),
    (MANIFEST.replace("id: b", "id: a"), 8, ["clips[1].id", "already used"]),
    (MANIFEST.replace("    duration: 2\n  - id: b", "    duraton: 2\n  - id: b"), 7, ["clips[0].duraton", "not a known field"]),
    (MANIFEST.replace("    file: b.mp4\n", ""), 8, ["clips[1].file", "required"]),
])
def test_bad_manifest_names_line_and_field(tmp_path, bad, line, words):
    p = write(tmp_path, manifest=bad)
    with pytest.raises(StationError) as err:
        load_protocol(p)
    msg = str(err.value)
    assert f"manifest.yaml:{line}:" in msg, msg
    for w in words:
        assert w in msg, msg


@pytest.mark.parametrize("extra, line, words", [
    ("order:\n  policy: shuffled\n", 5, ["order.policy", "'shuffled'", "latin_square"]),
    ("rest:\n  mode: key\n  seconds: 30\n  max_seconds: 10\n", 7, ["rest.max_seconds", "shorter"]),
    ("rest:\n  seconds: -1\n", 5, ["rest.seconds", "at least 0"]),
    ("self_report:\n  after_each_clip: [emotion, mood]\n", 5, ["self_report.after_each_clip[1]", "'mood'"]),
    ("self_report:\n  emotions: [happiness, joy]\n", 5, ["self_report.emotions[1]", "unknown emotion 'joy'"]),
    ("baseline:\n  seconds: five\n", 5, ["baseline.seconds", "must be float"]),
    ("camera:\n  width: 800\n  height: 600\n", 4, ["camera", "800x600", "848x480"]),
    ("recrd: {}\n", 4, ["recrd", "not a known field"]),
    ("camera:\n  settings:\n    visual_preset: face\n", 6, ["camera.settings.visual_preset", "'face'",
                                                           "high_density"]),
    ("camera:\n  settings:\n    laser_power: 500\n", 6, ["camera.settings.laser_power", "between 0 and 360"]),
    ("camera:\n  settings:\n    lazer_power: 150\n", 6, ["camera.settings.lazer_power", "laser_power"]),
    ("camera:\n  settings:\n    power_line: 55hz\n", 6, ["camera.settings.power_line", "'50hz'"]),
    ("camera:\n  settings:\n    advanced_json: face.json\n", 6, ["camera.settings.advanced_json", "face.json",
                                                                  "does not exist"]),
    ("camera:\n  settings:\n    color_exposure: 150\n    color_auto_exposure: true\n", 7,
     ["color_auto_exposure", "manual exposure"]),
    ("keys:\n  continue: escape\n", 4, ["keys", "must differ"]),
])
def test_bad_protocol_names_line_and_field(tmp_path, extra, line, words):
    p = write(tmp_path, protocol=extra)
    with pytest.raises(StationError) as err:
        load_protocol(p)
    msg = str(err.value)
    assert f"p.yaml:{line}:" in msg, msg
    for w in words:
        assert w in msg, msg


def test_unknown_clip_and_missing_manifest(tmp_path):
    p = write(tmp_path)
    p.write_text("schema: 1\nstimuli: manifest.yaml\nclips:\n  - a\n  - zz\n")
    with pytest.raises(StationError, match=r"p.yaml:5: clips\[1\] 'zz' is not in the stimuli manifest"):
        load_protocol(p)
    p.write_text("schema: 1\nstimuli: nowhere.yaml\nclips: all\n")
    with pytest.raises(StationError, match=r"p.yaml:2: stimuli names .*nowhere.yaml"):
        load_protocol(p)


def test_yaml_syntax_error_and_duplicate_key(tmp_path):
    p = write(tmp_path)
    p.write_text("schema: 1\nclips: [a, b\nstimuli: manifest.yaml\n")
    with pytest.raises(StationError, match=r"p.yaml:\d+:\d+: not valid YAML"):
        load_protocol(p)
    p.write_text("schema: 1\nstimuli: manifest.yaml\nclips: all\nclips: [a]\n")
    with pytest.raises(StationError, match=r"p.yaml:4: key 'clips' appears twice"):
        load_protocol(p)
    p.write_text("- just\n- a list\n")
    with pytest.raises(StationError, match="must be a YAML mapping"):
        load_protocol(p)


def test_defaults_and_all_clips(tmp_path):
    p = write(tmp_path)
    p.write_text("schema: 1\nstimuli: manifest.yaml\nclips: all\n")
    proto = load_protocol(p)
    assert [c.id for c in proto.clips] == ["a", "b"]
    assert proto.self_report.emotions == REPORT_EMOTIONS
    assert proto.keys.abort == ("escape",) and proto.record.baseline and not proto.record.rest


def test_camera_settings_from_the_protocol(tmp_path):
    p = write(tmp_path, protocol="camera:\n  settings:\n    visual_preset: high_density\n    laser_power: 150\n"
                                  "    emitter: on\n    power_line: off\n    depth_units: 0.0001\n")
    settings = load_protocol(p).camera.settings
    assert settings.requested() == {"visual_preset": "high_density", "laser_power": 150.0, "emitter": True,
                                    "power_line": "off", "depth_units": 0.0001}
    assert load_protocol(write(tmp_path)).camera.settings.requested() == {}
