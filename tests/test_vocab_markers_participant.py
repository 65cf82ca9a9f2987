"""Marker names and participant fields: one list each, errors that say what is allowed."""

import json

import pytest

from station.checks import StationError
from station.vocab.markers import MARKER_NAMES, Marker, check_marker
from station.vocab.participant import SEXES, check_age, check_participant_id, check_sex


def test_markers_are_plain_strings_in_files():
    assert Marker.CLIP_END == "clip_end" and f"{Marker.CAMERA_STALLED}" == "camera_stalled"
    assert json.dumps({"event": Marker.ABORT}) == '{"event": "abort"}'
    for name in ("camera_stalled", "camera_resumed", "camera_lost", "face_lost", "face_moved", "disk_low",
                 "recorder_died", "interrupted", "abort", "clip_first_frame", "session_start"):
        assert name in MARKER_NAMES
    with pytest.raises(StationError, match="got 'clip_ende'"):
        check_marker("clip_ende")


@pytest.mark.parametrize("pid,why", [(" P01", "blanks"), ("P01\n", "blanks"), ("P\t1", "control"),
                                     ("a/b", "separator"), ("x" * 33, "33 characters"), (7, "int")])
def test_bad_participant_ids_say_what_was_given_and_allowed(pid, why):
    with pytest.raises(StationError, match=why) as err:
        check_participant_id(pid)
    assert "letters, digits" in str(err.value) and repr(pid) in str(err.value)


def test_good_ids_sexes_and_ages():
    assert check_participant_id("P07") == "P07" and check_participant_id("lab-3_x") == "lab-3_x"
    assert check_sex(None) is None and check_sex(SEXES[0]) == SEXES[0]
    with pytest.raises(StationError, match="female, male"):
        check_sex("f")
    with pytest.raises(StationError, match="between 10 and 120"):
        check_age(True)
