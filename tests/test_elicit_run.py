"""`station run` end to end: real PsychoPy window (under xvfb-run), real virtual D415, real HDF5.

Run with ``xvfb-run -a python -m pytest tests/test_elicit_run.py``.  Clips are 1.5 s generated
demo clips and the camera runs at 424x240@30 so that the whole file stays well under a minute.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from station.camera import CameraError, open_camera
from station.checks import StationError
from station.elicit.session_run import run_session
from station.session import create_session

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display: run under xvfb-run -a")

PROTOCOL = """\
schema: 1
name: tiny
stimuli: manifest.yaml
clips: [one, two]
instructions: {{welcome: "Keep a neutral face. Press SPACE.", end: "Thanks."}}
order: {{policy: fixed}}
baseline: {{seconds: 0.5}}
rest: {{mode: {rest_mode}, seconds: 0.3, max_seconds: 5}}
self_report: {{after_each_clip: [emotion, intensity, movements], at_end: [movements]}}
record: {{baseline: true, clip: true, rest: false, after_clip_seconds: 0.3}}
display: {{size: [320, 240], fullscreen: false}}
camera: {{width: 424, height: 240, fps: 30, settings: {{visual_preset: high_density, laser_power: 150}}}}
"""


@pytest.fixture
def tiny(tmp_path) -> Path:
    (tmp_path / "manifest.yaml").write_text(
        "schema: 1\nclips:\n"
        "  - {id: one, file: clips/one.mp4, emotion: happiness, duration: 1.5, generated: demo}\n"
        "  - {id: two, file: clips/two.mp4, emotion: disgust, duration: 1.5, generated: demo}\n"
        "  - {id: lab, file: clips/lab.mp4, emotion: anger}\n")
    p = tmp_path / "tiny.yaml"
    p.write_text(PROTOCOL.format(rest_mode="key"))
    return p


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "station.elicit.commands", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "COLUMNS": "200"})


def markers(path: Path) -> list[tuple[str, float]]:
    with h5py.File(path, "r") as f:
        return [(m["event"].decode(), float(m["host_time"])) for m in f["markers"][:]]


@pytest.mark.slow
def test_run_end_to_end(tiny, tmp_path):
    sessions = tmp_path / "sessions"
    proc = run_cli("run", "--participant", "P01", "--protocol", str(tiny), "--camera", "virtual",
                   "--simulate-participant", "pause=one@0.2,abort=two@0.3", "--sessions", str(sessions), "--no-live", "--age", "30")
    assert proc.returncode == 3, proc.stderr[-3000:]  # film 'two' was aborted: incomplete (docs/elicit.md)
    folder = sessions / "P01" / "001"
    data = json.loads((folder / "session.json").read_text())
    assert data["status"] == "incomplete" and data["simulated_participant"] is True
    assert data["exit_code"] == 3 and data["stop_reason"] == "complete"  # ran to its end
    one, two = data["clips"]
    assert two["outcome"] == "incomplete" and two["shown"] == "partly" and "aborted" in two["reasons"][0]
    movie = data["trials"][0]["movie"]
    whole_file = data["trials"][0]["recorder_verdict"]["ok"]  # the recorder's verdict on the file, one rule
    assert (one["outcome"] == "complete") == (movie["frames_shown"] >= 0.98 * movie["frames_expected"]
                                              and whole_file), one
    assert ("trial verdict: trial-01-one.h5 is whole" in proc.stderr) == whole_file, proc.stderr[-3000:]
    assert "trial verdict: trial-02-two.h5 is NOT whole — ended on request" in proc.stderr  # aborted
    assert data["participant"] == {"id": "P01", "age": 30, "sex": None}
    assert data["order"] == ["one", "two"] and data["protocol"]["as_written"]["name"] == "tiny"
    assert data["device"]["serial"] == "VIRTUAL-D415-0001" and data["software"]["psychopy"]
    reports = data["self_reports"]
    assert [r["when"] for r in reports] == ["after_clip", "after_clip", "end", "end"]
    assert all(r["simulated"] and r["source"] == "simulated participant" for r in reports)
    assert reports[0]["emotion"] in data["protocol"]["as_written"].get("self_report", {}).get(
        "emotions", ["happiness", "sadness", "anger", "fear", "surprise", "disgust", "other/none"])
    events = [e["event"] for e in data["events"]]
    starts = [e["host_time"] for e in data["events"] if e["event"] == "form_start"]
    ends = [e["host_time"] for e in data["events"] if e["event"] == "form_end"]
    assert len(starts) == len(ends) == 4 and all(a <= b for a, b in zip(starts, ends))  # form_start first
    for ev in ("instructions_start", "baseline_start", "clip_first_frame", "clip_last_frame", "rest_start",
               "rest_end", "form_start", "form_end", "session_end"):
        assert ev in events, ev
    assert all(e["detail"].endswith("(simulated)") for e in data["events"] if e["event"] == "key")
    assert [t["outcome"] for t in data["trials"]] == ["complete", "aborted"]  # went on after the abort
    assert "clip_abort" in events and "answer" in events
    assert events.index("pause") < events.index("resume") < events.index("clip_last_frame")  # experimenter key
    from station.record.inspect import summarize

    for trial in data["trials"]:
        assert trial["complete_file"]
        in_file = summarize(folder / trial["file"])  # one drop count: session.json says what the file says
        assert (trial["camera"]["frames_written"], trial["camera"]["dropped"]) == (in_file.frames, in_file.dropped)
        assert trial["camera"]["frames_written"] > 0 and trial["display_clip"]["flips"] > 10
        assert trial["movie"]["frames_shown"] > 0 and trial["movie"]["frames_expected"] == 45
        assert "dropped" in trial["display_clip"] and "dropped" in trial["camera"]
    assert (folder / "frame-intervals.csv").read_text().startswith("flip_time,interval_ms,phase,clip")
    # the trial file starts with the baseline and ends after the clip; markers on the frames' clock
    trial1 = folder / "trial-01-one.h5"
    m = markers(trial1)
    names = [n for n, _ in m]
    order = ["recording_start", "baseline_start", "baseline_end", "clip_first_frame", "clip_last_frame",
             "clip_end", "recording_end"]
    assert [n for n in names if n in order] == order
    times = dict(m)
    assert times["baseline_start"] < times["clip_first_frame"] < times["clip_last_frame"] < times["clip_end"]
    assert 1.0 < times["clip_last_frame"] - times["clip_first_frame"] < 3.0
    with h5py.File(trial1, "r") as f:
        host = f["frames"]["host_time"]
        assert host[0] <= times["clip_first_frame"] and host[-1] >= times["clip_last_frame"]
        assert f.attrs["clip"] == "one" and bool(f.attrs["simulated_participant"])
        assert f.attrs["clip_file"] == "clips/one.mp4"  # relative to the protocol: no home-directory names
        settings = json.loads(f.attrs["camera_settings"])  # the protocol's camera.settings, stored per trial
        assert settings["requested"] == {"visual_preset": "high_density", "laser_power": 150.0}
        take1 = json.loads(f.attrs["virtual_take"])
    with h5py.File(folder / "trial-02-two.h5", "r") as f:
        take2 = json.loads(f.attrs["virtual_take"])
    # the virtual participant's takes: the first announced before the window opened (so before
    # session_start), the second when trial 1 began (so at least trial 1's length before its own start)
    t = {e["event"]: e["host_time"] for e in data["events"] if e["event"] in ("session_start", "recording_start")}
    first_start = next(e["host_time"] for e in data["events"] if e["event"] == "recording_start")
    assert take1["announced_s"] > first_start - t["session_start"], take1
    assert take2["announced_s"] >= data["trials"][0]["camera"]["seconds"], (take2, data["trials"][0]["camera"])
    waits = [trial["begin_wait_s"] for trial in data["trials"]]  # what begin_trial waited for, per trial
    assert all(0 <= w <= 60 for w in waits) and abs(waits[1] - take2["waited_s"]) < 0.5, (waits, take2)
    assert "session saved" in proc.stderr


@pytest.mark.slow
def test_abort_then_stop_gets_a_new_session_number(tiny, tmp_path, capsys):
    sessions = tmp_path / "sessions"
    first = create_session(sessions, "P01", age=41)
    data = json.loads((first.folder / "session.json").read_text())
    # same participant again, aborting the first film and declining to go on: new folder 002
    run_session(tiny, "P01", sessions_root=sessions, simulate="abort=one@0.3,stop", live=False,
                window_size=(240, 180))
    assert "already has session(s) 001" in capsys.readouterr().err.replace("\n", " ")
    data2 = json.loads((sessions / "P01" / "002" / "session.json").read_text())
    assert data2["status"] == "incomplete" and data2["stop_reason"] == "stopped by participant"
    assert data2["exit_code"] == 3 and [c["outcome"] for c in data2["clips"]] == ["incomplete", "not shown"]
    assert [t["outcome"] for t in data2["trials"]] == ["aborted"]
    assert data2["trials"][0]["stop_reason"] == "aborted by participant"
    m2 = dict(markers(sessions / "P01" / "002" / "trial-01-one.h5"))
    assert "clip_abort" in m2 and m2["clip_abort"] - m2["clip_first_frame"] < 1.5
    assert json.loads((first.folder / "session.json").read_text()) == data  # session 001 untouched


def test_missing_clip_stops_before_anything_is_recorded(tiny, tmp_path):
    tiny.write_text(tiny.read_text().replace("clips: [one, two]", "clips: [one, lab]"))
    with pytest.raises(StationError, match=r"manifest.yaml:5: clips\[2\].file: clip 'lab' file .*lab.mp4.* does not exist"):
        run_session(tiny, "P02", sessions_root=tmp_path / "s", simulate="", live=False)
    assert not (tmp_path / "s").exists()
    (tmp_path / "clips" / "lab.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom damaged film" * 50)
    with pytest.raises(StationError, match=r"clip 'lab' file .*lab.mp4.* cannot be decoded"):
        run_session(tiny, "P02", sessions_root=tmp_path / "s", simulate="", live=False)
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_window_closed_mid_clip_keeps_the_recording(tiny, tmp_path):
    with pytest.raises(StationError, match="window was closed") as err:
        run_session(tiny, "P03", sessions_root=tmp_path / "s", simulate="close=two@0.3", live=False,
                    window_size=(240, 180), lsl=True)  # LSL outlet on (or a clear message without pylsl)
    folder = tmp_path / "s" / "P03" / "001"
    assert str(folder) in str(err.value)
    data = json.loads((folder / "session.json").read_text())
    assert data["status"] == "incomplete" and data["stop_reason"] == "window closed" and data["exit_code"] == 4
    assert [t["outcome"] for t in data["trials"]] == ["complete", "window_closed"]
    assert len(data["self_reports"]) == 1  # the first clip's form was saved when answered
    m = [n for n, _ in markers(folder / "trial-02-two.h5")]
    assert "window_closed" in m and "recording_end" in m


class UnpluggedDuringTrial:
    """A real virtual D415 whose USB cable is 'pulled' ``n`` framesets into the first trial.

    The first trial is recognised by its ``*.h5.writing`` file, which exists only while the
    recorder writes it.
    """

    def __init__(self, sessions: Path, n: int):
        self.inner = open_camera("virtual", width=424, height=240, fps=30)
        self.description, self.sessions, self.n = "virtual D415, unplugged mid-trial", sessions, n

    def start(self):
        return self.inner.start()

    def read(self, timeout_s: float = 1.0):
        fs = self.inner.read(timeout_s)
        if fs is not None and any(self.sessions.glob("*/*/trial-01-*.h5.writing")):
            self.n -= 1
            if self.n < 0:
                raise CameraError("device disconnected (USB)")
        return fs

    def stop(self):
        self.inner.stop()


@pytest.mark.slow
def test_camera_lost_mid_clip(tiny, tmp_path):
    # the simulated experimenter answers the fault screen with its default, E (end the session)
    session = run_session(tiny, "P04", camera=UnpluggedDuringTrial(tmp_path / "s", 25), sessions_root=tmp_path / "s",
                          simulate="", live=False, window_size=(240, 180))
    folder = tmp_path / "s" / "P04" / "001"
    assert session.folder == folder
    data = json.loads((folder / "session.json").read_text())
    assert data["status"] == "incomplete" and data["exit_code"] == 4
    assert "experimenter" in data["stop_reason"]
    lost = data["trials"][-1]
    assert lost["outcome"] == "camera_lost" and lost["camera"]["frames_written"] > 0
    assert "USB" in lost["stop_reason"] and "USB" in data["clips"][0]["reasons"][0]
    assert [c["outcome"] for c in data["clips"]] == ["incomplete", "not shown"]
    files = sorted(folder.glob("trial-*.h5"))
    assert files, "the interrupted trial must be kept"
    names = [n for n, _ in markers(files[-1])]
    assert "camera_lost" in names
    events = [e["event"] for e in data["events"]]
    assert events.index("camera_lost") < events.index("question") < events.index("answer")


def test_selfreport_forms_for_an_existing_session(tmp_path):
    from station.elicit.selfreport import selfreport
    from station.session import load_session

    s = create_session(tmp_path, "P05", extra={"order": ["one", "two", "three"]})
    s.log_event("clip_first_frame", 1.0, clip="one")
    s.log_event("clip_first_frame", 9.0, clip="two")  # 'three' never reached the screen
    assert selfreport(s.folder, simulate=True, window_size=(320, 240)) == 2
    reports = load_session(s.folder).data["self_reports"]
    assert [r["clip"] for r in reports] == ["one", "two"]
    assert all(r["simulated"] and 1 <= r["intensity"] <= 5 and r["emotion"] for r in reports)
