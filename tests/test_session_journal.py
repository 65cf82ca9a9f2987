"""The session journal (the truth after any stop) and the verdict rules, on real files."""

from __future__ import annotations

import json

import pytest

from station.checks import StationError
from station.elicit.verdict import FILM_SHOWN_MIN, clip_verdict, session_verdict, shown_clips
from station.session import JOURNAL_FILE, create_session, load_session

PROTOCOL = {"as_written": {"self_report": {"after_each_clip": ["emotion", "intensity"], "at_end": []}}}


def trial(clip: str, number: int = 1, outcome: str = "complete", shown: int = 180, expected: int = 180,
          written: int = 400, dropped: int = 0, complete_file: bool = True) -> dict:
    return {"number": number, "clip": clip, "outcome": outcome, "file": f"trial-{number:02d}-{clip}.h5",
            "complete_file": complete_file, "stop_reason": "" if outcome == "complete" else outcome,
            "camera": {"frames_written": written, "dropped": dropped, "stop_reason": ""},
            "movie": {"frames_shown": shown, "frames_expected": expected}}


def session_with(tmp_path, trials=(), reports=(), order=("a", "b")):
    s = create_session(tmp_path, "P01", protocol=PROTOCOL, extra={"order": list(order)})
    for t in trials:
        s.log_event("clip_first_frame", 1.0, clip=t["clip"])
        s.add_trial(t)
    for clip in reports:
        s.add_self_report({"clip": clip, "when": "after_clip", "emotion": "happiness", "intensity": 3})
    return s


def test_journal_survives_a_torn_last_line_and_is_the_truth(tmp_path):
    s = session_with(tmp_path, [trial("a")], ["a"])
    s.update(status="running")
    s.log_event("clip_first_frame", 5.0, clip="b")  # journalled, session.json not rewritten since
    with open(s.journal_path, "a") as f:
        f.write('{"op": "event", "entry": {"event": "clip_la')  # the line in flight at SIGKILL
    stale = json.loads(s.json_path.read_text())
    assert [e["event"] for e in stale["events"]] == ["clip_first_frame"]
    again = load_session(s.folder)
    assert [e["clip"] for e in again.data["events"]] == ["a", "b"] and again.data["status"] == "running"
    assert again.journal_info["torn_line"] == 7 and again.journal_info["lines"] == 6
    assert again.data["self_reports"][0]["clip"] == "a"


def test_an_edited_journal_is_refused_with_its_line(tmp_path):
    s = session_with(tmp_path, [trial("a")])
    lines = s.journal_path.read_text().splitlines()
    lines.insert(1, "not json")
    s.journal_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(StationError, match=rf"{JOURNAL_FILE}:2: not a journal line"):
        load_session(s.folder)


def test_complete_only_when_every_clip_is_whole_and_answered(tmp_path):
    s = session_with(tmp_path, [trial("a"), trial("b", 2)], ["a", "b"])
    assert session_verdict(s.data)[0] == "complete"
    s = session_with(tmp_path / "2", [trial("a"), trial("b", 2)], ["a"])
    status, verdicts = session_verdict(s.data)
    assert status == "incomplete" and verdicts[1].reasons == ["form not answered: after_clip"]


@pytest.mark.parametrize("kw, words", [
    ({"shown": int(180 * FILM_SHOWN_MIN) - 1}, "film showed 175 of 180 frames"),
    ({"outcome": "aborted"}, "aborted"),
    ({"dropped": 10}, "camera missed 10 of 410 frames"),  # journal counters before the file's verdict
    ({"dropped": 3, "written": 397}, "camera missed 3 of 400 frames (more than 0.5 %"),
    ({"complete_file": False}, "not finalised"),
])
def test_a_clip_not_recorded_whole_is_incomplete_with_the_reason(tmp_path, kw, words):
    s = session_with(tmp_path, [trial("a", **kw), trial("b", 2)], ["a", "b"])
    status, verdicts = session_verdict(s.data)
    assert status == "incomplete" and verdicts[0].outcome == "incomplete"
    assert any(words in r for r in verdicts[0].reasons), verdicts[0].reasons
    assert verdicts[1].outcome == "complete"


@pytest.mark.parametrize("seed, whole", [(1, False), (6, True)])
def test_the_clip_verdict_is_the_recorders_verdict_on_the_real_file(tmp_path, seed, whole):
    """One rule: 3 of 399 frames missing (0.75 %) fails the recorder's 0.5 % limit, so the clip too."""
    from station.camera.faults import Faults
    from station.camera.scene import MovingSurface
    from station.camera.virtual import VirtualD415
    from station.elicit.verdict import RECORDER_VERDICT, stamp_recorder_verdicts
    from station.record.recorder import record_trial
    from swdev import SMALL

    s = session_with(tmp_path, [], ["a", "b"])
    for number, (clip, faults) in enumerate((("a", Faults(seed=seed, drop_color=0.008)), ("b", Faults())), 1):
        cam = VirtualD415(MovingSurface(*SMALL, n_frames=400), realtime=False, faults=faults, queue_size=64)
        stats = record_trial(cam, s.trial_path(number, clip))
        s.add_trial(trial(clip, number, written=stats.frames_written, dropped=stats.dropped))
    assert stamp_recorder_verdicts(s) == 2 and s.data["trials"][0][RECORDER_VERDICT]["ok"] is whole
    status, (a, b) = session_verdict(s.data)
    assert b.outcome == "complete" and (status == "complete") is whole
    if not whole:
        assert a.outcome == "incomplete" and any("missing frames: 0.75 %" in r and "limit 0.5 %" in r
                                                 for r in a.reasons), a.reasons


def test_a_retry_that_succeeds_makes_the_clip_complete(tmp_path):
    s = session_with(tmp_path, [trial("a", 1, outcome="camera_stalled", shown=40), trial("a", 2), trial("b", 3)],
                     ["a", "b"])
    assert session_verdict(s.data)[0] == "complete"
    assert clip_verdict(s.data, "a").files == ["trial-01-a.h5", "trial-02-a.h5"]


def test_hard_stop_mid_film_shows_partly_and_unreached_is_not_shown(tmp_path):
    s = create_session(tmp_path, "P01", protocol=PROTOCOL, extra={"order": ["a", "b"]})
    s.log_event("recording_start", 1.0, clip="a", detail="trial-01-a.h5")
    s.log_event("clip_first_frame", 2.0, clip="a")
    data = load_session(s.folder).data
    a, b = session_verdict(data)[1]
    assert (a.outcome, a.shown) == ("incomplete", "partly") and "hard stop" in a.reasons[0]
    assert a.files == ["trial-01-a.h5"]
    assert (b.outcome, b.shown) == ("not shown", "no")
    assert shown_clips(data) == [("a", "partly")]


@pytest.mark.parametrize("pid, why", [("P01\n", "blanks around it"), ("P0\x071", "control character"), ("", "")])
def test_participant_ids_are_refused_before_anything_and_no_dialog_for_a_simulation(pid, why):
    from station.elicit.session_run import ask_participant_info

    with pytest.raises(StationError, match="participant id must be|needs --participant") as err:
        ask_participant_info(pid, None, None, simulated=True)  # would wait on an invisible dialog before
    assert why in str(err.value)
