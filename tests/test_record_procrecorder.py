"""The recorder in a child process: same files, same markers, camera failures reported."""

from __future__ import annotations

import time

import h5py
import pytest

from station.camera import CameraError
from station.checks import StationError
from station.record.procrecorder import ProcessRecorder


@pytest.mark.slow
def test_child_process_records_trials_with_markers(tmp_path):
    rec = ProcessRecorder("virtual", 424, 240, 30)
    rec.open()
    try:
        assert rec.calibration.device["serial"] == "VIRTUAL-D415-0001"
        rec.mark("between_trials")
        rec.begin_trial(tmp_path / "trial-01-a.h5", {"clip": "a"})
        t = time.perf_counter()
        rec.mark("clip_first_frame", "a", "pts=0", t=t)
        time.sleep(1.0)
        stats = rec.end_trial("test end")
        assert stats.complete and stats.frames_written > 0 and stats.path.name == "trial-01-a.h5"
        assert rec.status().fps >= 0
    finally:
        rec.close()
    assert rec.session_markers[0]["event"] == "between_trials"
    with h5py.File(tmp_path / "trial-01-a.h5", "r") as f:
        m = f["markers"][:]
        host = f["frames"]["host_time"][:]
        assert f.attrs["clip"] == "a"
    assert m["event"].tolist() == [b"clip_first_frame"] and m["host_time"][0] == t
    # the child's frame times are on the parent's perf_counter clock
    assert host[0] - 1.0 < t < host[-1] + 1.0


def test_child_process_reports_a_camera_that_cannot_open(tmp_path):
    rec = ProcessRecorder("playback:/nonexistent/recording.db3", 848, 480, 60)
    with pytest.raises((CameraError, StationError), match="nonexistent"):
        rec.open()
    rec.close()  # nothing left to close: no error, no hang


@pytest.mark.slow
def test_a_killed_session_process_still_gets_its_trial_finalised(tmp_path):
    """SIGKILL of the PsychoPy process mid-trial: the recorder child finalises the file and exits."""
    import subprocess
    import sys
    import textwrap

    trial = tmp_path / "trial-01-a.h5"
    script = textwrap.dedent(f"""
        import os, signal, time
        from station.record.procrecorder import ProcessRecorder
        rec = ProcessRecorder("virtual", 424, 240, 30)
        rec.open()
        rec.begin_trial({str(trial)!r}, {{"clip": "a"}})
        rec.mark("clip_first_frame", "a")
        time.sleep(1.5)
        print(rec._proc.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    child = int(proc.stdout.split()[-1])
    deadline = time.monotonic() + 30
    while not trial.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert trial.exists(), "the orphaned recorder did not finalise the trial"
    with h5py.File(trial, "r") as f:
        events = [e.decode() for e in f["markers"]["event"]]
        assert f.attrs["complete"] and f["color"].shape[0] > 0
    assert events[0] == "clip_first_frame" and "session_process_died" in events
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            import os

            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the orphaned recorder process is still running")
