"""The fault matrix of issue #12: real `station run` subprocesses under a real pty, real signals
(Ctrl-C typed into the terminal, SIGTERM / SIGHUP to the whole process group, SIGKILL to the
session), a real tmpfs that fills up, a virtual D415 that stalls or is unplugged, a truncated
film and a bad key name.

For every case: each frame captured up to the fault is readable, the journal holds every event
up to the fault, the status and per-clip outcome are true, the exit code is the documented one
and `station selfreport` offers exactly the films that were shown.  The table of cases and
outcomes is in docs/elicit.md ("Fault matrix").
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import pytest

from station.elicit.selfreport import _session_clips, selfreport
from station.elicit.sessioninspect import inspect_session
from station.elicit.verdict import RUNNING_STATUSES
from station.record.schema import readable_frames
from station.session import JOURNAL_FILE, load_session

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display: run under xvfb-run -a"),
              pytest.mark.slow]

MANIFEST = ("schema: 1\nclips:\n"
            "  - {id: one, file: clips/one.mp4, emotion: happiness, duration: 2.0, generated: demo}\n"
            "  - {id: two, file: clips/two.mp4, emotion: disgust, duration: 1.5, generated: demo}\n")
PROTOCOL = """\
schema: 1
name: faults
stimuli: manifest.yaml
clips: [one, two]
instructions: {welcome: "Keep a neutral face. Press SPACE.", end: "Thanks."}
order: {policy: fixed}
baseline: {seconds: 1.0}
rest: {mode: key, seconds: 0.3, max_seconds: 5}
self_report: {after_each_clip: [emotion, intensity], at_end: []}
record: {baseline: true, clip: true, rest: false, after_clip_seconds: 0.3}
display: {size: [320, 240], fullscreen: false}
camera: {width: 424, height: 240, fps: 30}
sound: false
"""
#: The simulated participant takes this long per key and form: the phases last long enough to hit.
WAIT = "wait=1.0"


def _protocol(folder: Path, manifest: str) -> Path:
    (folder / "manifest.yaml").write_text(manifest)
    (folder / "faults.yaml").write_text(PROTOCOL)
    from station.elicit.democlips import ensure_demo_clips
    from station.elicit.protocol import load_protocol

    ensure_demo_clips(load_protocol(folder / "faults.yaml").manifest)
    return folder / "faults.yaml"


@pytest.fixture(scope="module")
def protocol(tmp_path_factory) -> Path:
    return _protocol(tmp_path_factory.mktemp("faults"), MANIFEST)


@pytest.fixture(scope="module")
def long_protocol(tmp_path_factory) -> Path:
    """Film `one` lasts 9 s: a camera fault at stream time 6 s falls in it whatever the start-up took."""
    return _protocol(tmp_path_factory.mktemp("faults-long"), MANIFEST.replace("duration: 2.0", "duration: 9.0"))


def command(protocol: Path, sessions: Path, *extra: str, simulate: str = WAIT) -> list[str]:
    return [sys.executable, "-m", "station.elicit.commands", "run", "--participant", "P01", "--protocol",
            str(protocol), "--sessions", str(sessions), "--simulate-participant", simulate, "--no-live", *extra]


class PtySession:
    """`station run` with a pty as its controlling terminal (so Ctrl-C is the terminal's SIGINT
    to the whole foreground process group, recorder child included)."""

    def __init__(self, argv: list[str]):
        env = {**os.environ, "COLUMNS": "160"}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child: the session leader of a new session with the pty
            os.chdir(ROOT)
            os.execve(argv[0], argv, env)
        self.output = bytearray()
        self._code: int | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                return
            if not data:
                return
            self.output += data

    def ctrl_c(self) -> None:
        os.write(self.fd, b"\x03")

    def poll(self) -> int | None:
        """Exit code (or -signal) once the session has ended, else None; never blocks."""
        if self._code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.reader.join(timeout=2)
                os.close(self.fd)
                self._code = os.waitstatus_to_exitcode(status)
        return self._code

    def wait(self, timeout: float = 90) -> int:
        """Exit code, or -signal when killed by one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (code := self.poll()) is not None:
                return code
            time.sleep(0.05)
        os.killpg(self.pid, signal.SIGKILL)
        raise AssertionError(f"station run did not end within {timeout} s:\n{self.text[-3000:]}")

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")


def journal_events(sessions: Path) -> list[dict]:
    out = []
    for path in sessions.glob(f"*/*/{JOURNAL_FILE}"):
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry["op"] == "event":
                out.append(entry["entry"])
    return out


def wait_for_event(sessions: Path, event: str, clip: str = "", timeout: float = 90, proc=None) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e["event"] == event and (not clip or e["clip"] == clip) for e in journal_events(sessions)):
            return time.monotonic()
        if proc is not None and (code := proc.poll()) is not None:  # it will never come: say why now
            raise AssertionError(f"station run ended (exit {code}) before {event} reached the journal:\n"
                                 f"{proc.text[-3000:]}")
        time.sleep(0.03)
    raise AssertionError(f"event {event} never reached the journal" + (f":\n{proc.text[-3000:]}" if proc else ""))


def wait_finalised(folder: Path, timeout: float = 20) -> None:
    """The recorder child finalises on its own after a SIGKILL of the session: no *.writing left."""
    deadline = time.monotonic() + timeout
    while any(folder.glob("*.writing")) and time.monotonic() < deadline:
        time.sleep(0.1)


def trial_frames(folder: Path) -> dict[str, int]:
    """Readable frames of every trial file, opening each with h5py as a coder would."""
    out = {}
    for path in sorted(folder.glob("trial-*.h5*")):
        with h5py.File(path, "r") as f:
            out[path.name] = readable_frames(f)
    return out


def file_markers(path: Path) -> list[str]:
    with h5py.File(path, "r") as f:
        return [m["event"].decode() for m in f["markers"][:]]


#: phase -> (journal event that starts it, its clip, seconds to wait into it, events that must precede)
PHASES = {
    "instructions": ("instructions_start", "", 0.3, ["session_start", "instructions_start"]),
    "baseline": ("baseline_start", "one", 0.4, ["session_start", "instructions_start", "instructions_end",
                                                  "recording_start", "baseline_start"]),
    "mid-film": ("clip_first_frame", "one", 0.8, ["session_start", "instructions_end", "recording_start",
                                                   "baseline_start", "baseline_end", "clip_first_frame"]),
    "form": ("form_start", "one", 0.5, ["session_start", "baseline_end", "clip_first_frame", "clip_last_frame",
                                         "clip_end", "recording_end", "form_start"]),
}
#: how each signal is delivered, and the documented exit code (docs/elicit.md)
SIGNALS = {"SIGKILL": -9, "SIGINT-pty": 130, "SIGTERM-group": 143, "SIGHUP-group": 129}


@pytest.mark.parametrize("phase", list(PHASES))
@pytest.mark.parametrize("how", list(SIGNALS))
def test_signal_at_phase(protocol, tmp_path, how, phase):
    sessions = tmp_path / "sessions"
    event, clip, delay, before = PHASES[phase]
    # the form lasts as long as the simulated participant waits: 2 s leave 1.5 s for a loaded CI machine
    proc = PtySession(command(protocol, sessions, simulate="wait=2.0" if phase == "form" else WAIT))
    wait_for_event(sessions, event, clip, proc=proc)
    time.sleep(delay)
    if how == "SIGKILL":
        os.kill(proc.pid, signal.SIGKILL)  # the session process only: its recorder child must cope
    elif how == "SIGINT-pty":
        proc.ctrl_c()
    else:
        os.killpg(proc.pid, signal.SIGTERM if how == "SIGTERM-group" else signal.SIGHUP)
    code = proc.wait()
    assert code == SIGNALS[how], proc.text[-3000:]
    folder = sessions / "P01" / "001"
    wait_finalised(folder)
    # every event up to the fault is in the journal, in order
    session = load_session(folder)
    names = [e["event"] for e in session.data["events"]]
    positions = [names.index(n) for n in before]
    assert positions == sorted(positions), names
    # every frame captured is readable; a trial was open at baseline and mid-film
    frames = trial_frames(folder)
    if phase in ("baseline", "mid-film", "form"):
        assert frames.get("trial-01-one.h5", 0) > 0, (frames, proc.text[-2000:])
    assert not list(folder.glob("*.writing")), "the trial must be finalised (by the session or its recorder)"
    offered = _session_clips(session)
    if how == "SIGKILL":
        assert session.data["status"] in RUNNING_STATUSES  # the journal tells the truth: it never ended
        assert inspect_session(folder) == 3
        if phase in ("baseline", "mid-film"):
            assert "session_process_died" in file_markers(folder / "trial-01-one.h5")
    else:
        data = json.loads((folder / "session.json").read_text())  # rebuilt from the journal at the end
        assert data["status"] == "incomplete" and data["exit_code"] == code
        after = names[names.index("interrupted") + 1:]  # only the trial's own closing events follow it
        assert set(after) <= {"clip_last_frame", "recording_end"}, names
        verdict = {c["clip"]: c for c in data["clips"]}
        assert verdict["two"]["outcome"] == "not shown"
        if phase == "instructions":
            assert verdict["one"]["outcome"] == "not shown" and data["trials"] == []
        elif phase == "form":
            assert verdict["one"]["outcome"] == "incomplete"
            assert any("form not answered" in r for r in verdict["one"]["reasons"])
        else:
            trial = data["trials"][0]
            assert trial["outcome"] == "interrupted" and trial["complete_file"], trial
            assert trial["camera"]["frames_written"] == frames["trial-01-one.h5"]  # one count everywhere
            assert "interrupted" in file_markers(folder / "trial-01-one.h5")
            assert verdict["one"]["outcome"] == "incomplete" and "interrupted" in verdict["one"]["reasons"][0]
    # station selfreport offers exactly the films that reached the screen
    if phase in ("instructions", "baseline"):
        assert offered == []
    elif phase == "mid-film":
        assert offered == [("one", "partly")]
    else:
        assert [c for c, _ in offered] == ["one"]


def test_selfreport_after_a_crash_never_reasks(protocol, tmp_path):
    sessions = tmp_path / "sessions"
    proc = PtySession(command(protocol, sessions))
    wait_for_event(sessions, "clip_first_frame", "one", proc=proc)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    folder = sessions / "P01" / "001"
    wait_finalised(folder)
    inspected = subprocess.run([sys.executable, "-m", "station.cli", "inspect", str(folder)], capture_output=True,
                               text=True, cwd=ROOT, timeout=120, env={**os.environ, "COLUMNS": "200"})
    told = " ".join((inspected.stdout + inspected.stderr).split())
    assert inspected.returncode == 1 and "hard stop" in told and "partly" in told, told[-2000:]
    assert selfreport(folder, simulate=True, window_size=(320, 240)) == 1  # the cut-off film, only
    report = load_session(folder).data["self_reports"][-1]
    assert report["clip"] == "one" and report["film_shown"] == "partly"
    assert selfreport(folder, simulate=True, window_size=(320, 240)) == 0  # answered: not asked again
    assert selfreport(folder, simulate=True, window_size=(320, 240), redo=True) == 1
    csv = tmp_path / "paper.csv"
    csv.write_text("clip,emotion,intensity,movements\none,happiness,2,smiled\n")
    assert selfreport(folder, import_csv=str(csv)) == 1  # a partly shown film is accepted
    csv.write_text("clip,emotion,intensity,movements\ntwo,happiness,2,smiled\n")
    with pytest.raises(Exception, match="'two' is not a clip of this session"):
        selfreport(folder, import_csv=str(csv))  # never shown: refused


@pytest.fixture
def small_disk(tmpfs):
    """A real 200 MB tmpfs (root, or an unprivileged mount namespace is not enough for a subprocess)."""
    return tmpfs("200m")


def test_disk_full_mid_film(long_protocol, tmp_path, small_disk):
    sessions = small_disk / "sessions"
    proc = PtySession(command(long_protocol, sessions, "--min-free-mb", "30"))
    wait_for_event(sessions, "clip_first_frame", "one", proc=proc)
    time.sleep(0.5)
    free = shutil.disk_usage(small_disk).free
    with open(small_disk / "filler", "wb") as f:  # another program fills the disk mid-film
        f.truncate(0)
        f.write(b"\0" * (free - 15_000_000))
    code = proc.wait()
    assert code == 4, proc.text[-3000:]
    folder = sessions / "P01" / "001"
    data = json.loads((folder / "session.json").read_text())
    trial = data["trials"][0]
    assert trial["outcome"] == "recording_stopped" and "disk" in trial["stop_reason"], data["trials"]
    assert 0 < trial["movie"]["frames_shown"] < trial["movie"]["frames_expected"]  # it stopped mid-film
    assert trial_frames(folder)["trial-01-one.h5"] == trial["camera"]["frames_written"] > 0
    assert data["status"] == "incomplete" and data["clips"][0]["outcome"] == "incomplete"
    assert data["clips"][1]["outcome"] == "not shown"  # the simulated experimenter chose E (end)
    names = [e["event"] for e in data["events"]]
    assert names.index("recording_stopped") < names.index("question") < names.index("form_start")
    told = " ".join(proc.text.split())
    assert "disk" in told and "R = retry" in told  # the experimenter was told in the terminal
    assert _session_clips(load_session(folder)) == [("one", "partly")]


@pytest.mark.parametrize("fault, kind", [("stall_s=6,stall_for_s=4", "camera_stalled"), ("unplug_s=6", "camera_lost")])
def test_camera_stall_and_loss_mid_film(long_protocol, tmp_path, fault, kind):
    sessions = tmp_path / "sessions"
    proc = PtySession(command(long_protocol, sessions, "--camera-faults", fault))
    code = proc.wait()
    assert code == 4, proc.text[-3000:]
    folder = sessions / "P01" / "001"
    data = json.loads((folder / "session.json").read_text())
    faulted = [t for t in data["trials"] if t["outcome"] == kind]
    assert len(faulted) == 1, data["trials"]
    trial = faulted[0]
    assert trial["clip"] == "one" and 0 < trial["movie"]["frames_shown"] < trial["movie"]["frames_expected"]
    frames = trial_frames(folder)
    assert frames[trial["file"]] == trial["camera"]["frames_written"] > 0
    verdict = {c["clip"]: c for c in data["clips"]}[trial["clip"]]
    assert verdict["outcome"] == "incomplete" and kind.split("_")[1][:5] in " ".join(verdict["reasons"])
    assert kind in [e["event"] for e in data["events"]]
    if kind == "camera_stalled":
        assert kind in file_markers(folder / trial["file"])
    assert data["status"] == "incomplete" and data["exit_code"] == 4


def test_retry_after_a_stall_records_the_clip_again(long_protocol, tmp_path):
    sessions = tmp_path / "sessions"
    proc = PtySession(command(long_protocol, sessions, "--camera-faults", "stall_s=6,stall_for_s=1.5",
                              simulate=f"{WAIT},fault=retry"))
    code = proc.wait(timeout=150)
    folder = sessions / "P01" / "001"
    data = json.loads((folder / "session.json").read_text())
    attempts = [t for t in data["trials"] if t["clip"] == "one"]
    assert [t["outcome"] for t in attempts][:1] == ["camera_stalled"] and len(attempts) == 2, data["trials"]
    assert [t["number"] for t in data["trials"]] == [1, 2, 3]  # the retry is trial 2, clip two trial 3
    assert attempts[1]["outcome"] == "complete" and attempts[1]["camera"]["frames_written"] > 0
    verdict = {c["clip"]: c for c in data["clips"]}
    assert verdict["one"]["files"] == [attempts[0]["file"], attempts[1]["file"]]
    assert all("stall" not in r for r in verdict["one"]["reasons"])  # the retry counts, not the stalled attempt
    assert code == (0 if data["status"] == "complete" else 3), (code, data["clips"])
    assert [e["detail"] for e in data["events"] if e["event"] == "answer"][:1] == ["retry"]


def test_station_record_finalises_on_sigterm(tmp_path):
    out = tmp_path / "rec.h5"
    proc = subprocess.Popen([sys.executable, "-m", "station.cli", "record", "--camera", "virtual", "--seconds", "30",
                             "--width", "424", "--height", "240", "--fps", "30", "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 90
    while not (tmp_path / "rec.h5.writing").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert out.exists() and not (tmp_path / "rec.h5.writing").exists(), err.decode()[-2000:]
    with h5py.File(out, "r") as f:
        assert readable_frames(f) > 0
    assert "interrupted" in file_markers(out)


def test_truncated_film_and_bad_key_are_refused_before_recording(protocol, tmp_path, station_cli):
    folder = tmp_path / "p"
    shutil.copytree(protocol.parent, folder)
    film = folder / "clips" / "one.mp4"
    film.write_bytes(film.read_bytes()[:20_000])  # a copy cut short
    run = subprocess.run(command(folder / "faults.yaml", tmp_path / "s"), capture_output=True, text=True,
                         cwd=ROOT, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert run.returncode == 2 and "stops decoding at frame" in run.stderr, run.stderr[-2000:]
    assert not (tmp_path / "s").exists()  # nothing was created
    check = station_cli("check", str(folder / "faults.yaml"), "--no-camera", "--no-display",
                        "--sessions", str(tmp_path))
    assert check.returncode == 1 and "stops decoding at frame" in " ".join((check.stdout + check.stderr).split())
    shutil.copy(protocol.parent / "clips" / "one.mp4", film)
    (folder / "faults.yaml").write_text(PROTOCOL + "keys: {abort: [esc]}\n")
    run = subprocess.run(command(folder / "faults.yaml", tmp_path / "s"), capture_output=True, text=True,
                         cwd=ROOT, timeout=120, env={**os.environ, "COLUMNS": "400"})
    message = " ".join(run.stderr.split())
    assert run.returncode == 2 and "'esc' is not a PsychoPy key name" in message and "escape" in message
    assert not (tmp_path / "s").exists()
