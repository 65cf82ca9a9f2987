"""FACS notation, coding files, reliability (eq. 1), selection and class rules."""

import numpy as np
import pytest

from station.checks import StationError
from station.process import selection
from station.vocab import facs


def test_parse_aus_accepts_facs_notation_and_formats_canonically():
    units = facs.parse_aus("R12+25+AU1+2C")
    assert facs.format_aus(units) == "1+2C+R12+25"
    assert facs.parse_aus("L14")[0].side == "L"
    assert facs.parse_aus("") == ()


@pytest.mark.parametrize("text", ["3", "1+x", "12F", "99"])
def test_parse_aus_rejects_unknown_notation_naming_the_field(text):
    with pytest.raises(StationError, match="sample 7"):
        facs.parse_aus(text, "sample 7")


def test_blinks_and_eye_rolls_are_not_coded():
    assert facs.au_keys("1+2+45+43+61") == {(1, ""), (2, "")}
    assert selection.strip_uncoded("12+45") == "12"


# coding files and agreement: tests/test_process_coding.py, tests/test_process_agreement.py


def test_duration_rule_uses_device_timestamps():
    rules = selection.load_rules()
    numbers = np.arange(100, 200)
    ts = (numbers - 100) * 1000 / 60.0
    total, onset = selection.durations_ms(ts, numbers, 110, 120, 150)
    assert total == pytest.approx(40 * 1000 / 60) and onset == pytest.approx(10 * 1000 / 60)
    assert selection.is_micro(total, onset, rules)  # total 667 ms but onset 167 ms < 260
    assert not selection.is_micro(700, 300, rules)
    with pytest.raises(StationError, match="not in the trial"):
        selection.durations_ms(ts, numbers, 50, 120, 150)


def test_objective_and_nonobjective_classes_follow_the_rule_tables():
    rules = selection.load_rules()
    assert selection.objective_class("6+12", rules) == "I"
    assert selection.objective_class("1+2+45", rules) == "II"
    assert selection.objective_class("1+2+4", rules) == "VI"
    assert selection.objective_class("R12", rules) == "VII"
    assert selection.objective_class("", rules) == "Others"
    assert selection.objective_class("24", rules) == "VII"  # fits no class I-VI
    assert selection.nonobjective_class("6+12", rules, clip_emotion="sad") == "happiness"
    assert selection.nonobjective_class("4", rules, clip_emotion="disgust", self_report="disgusted") == "tense"
    assert selection.nonobjective_class("4+9", rules, clip_emotion="happy") == "disgust"
    assert selection.nonobjective_class("1+2", rules, clip_emotion="fear", self_report="surprised") == "surprise"


def test_bad_rules_file_is_named(tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text("selection: {max_total_ms: 500}\n")
    with pytest.raises(StationError, match="rules.yaml"):
        selection.load_rules(bad)


@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_truncated_or_foreign_files_are_refused_before_hdf5_opens_them(tmp_path, libver):
    import h5py

    from station.process.trialcheck import check_trial_file

    good = tmp_path / "trial-01.h5"
    with h5py.File(good, "w", libver=libver) as f:
        f.create_dataset("color", data=np.arange(100_000, dtype=np.uint8))
    assert check_trial_file(good) == good
    cut = tmp_path / "trial-02.h5"
    cut.write_bytes(good.read_bytes()[:40_000])
    with pytest.raises(StationError, match="trial-02.h5.*truncated"):
        check_trial_file(cut)
    junk = tmp_path / "trial-03.h5"
    junk.write_bytes(b"not a trial" * 100)
    with pytest.raises(StationError, match="trial-03.h5.*not an HDF5 file"):
        check_trial_file(junk)


def test_trial_context_reads_recorder_attributes_and_the_session_self_report(tmp_path):
    import json

    import h5py

    from station.process.export import trial_context

    folder = tmp_path / "sessions" / "P07" / "S1"
    folder.mkdir(parents=True)
    path = folder / "trial-03-funny.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update({"participant": "P07", "clip": "funny", "clip_emotion": "happiness", "trial": 3})
    (folder / "session.json").write_text(json.dumps({"self_reports": [{"clip": "funny", "emotion": "amusement"}]}))
    with h5py.File(path, "r") as f:
        context = trial_context(f, path)
    assert context == {"subject": "P07", "trial_no": 3, "clip": "funny", "clip_emotion": "happiness",
                       "self_report": "amusement"}
    rules = selection.load_rules()
    assert selection.nonobjective_class("6+12", rules, context["clip_emotion"], context["self_report"]) == "happiness"
