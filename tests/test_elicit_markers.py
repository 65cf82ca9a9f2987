"""Marker fan-out: recorder (HDF5 via a real trial), session.json, Lab Streaming Layer."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import h5py
import pytest

from station.camera import open_camera
from station.elicit.markers import LSL_MISSING, LSLOutlet, Markers, open_lsl
from station.record.recorder import Recorder
from station.session import create_session, load_session


def test_markers_reach_trial_file_and_session(tmp_path):
    session = create_session(tmp_path, "P01")
    rec = Recorder(open_camera("virtual", width=424, height=240, fps=30))
    rec.open()
    try:
        markers = Markers(rec, session)
        markers.emit("before_trial", detail="between trials")
        rec.begin_trial(session.trial_path(1, "a"), {})
        t = time.perf_counter()
        markers.emit("clip_first_frame", "a", "pts=0.000", t=t)
        rec.wait(0.3)
        rec.end_trial()
    finally:
        rec.close()
    with h5py.File(session.trial_path(1, "a"), "r") as f:
        m = f["markers"][:]
    assert m["event"].tolist() == [b"clip_first_frame"] and m["host_time"][0] == t
    assert rec.session_markers[0]["event"] == "before_trial"
    session.save()  # markers are logged in memory and written with the next save
    events = load_session(session.folder).data["events"]
    assert [e["event"] for e in events] == ["before_trial", "clip_first_frame"] and events[1]["host_time"] == t


def test_lsl_outlet_publishes_the_same_markers():
    pylsl = pytest.importorskip("pylsl")
    assert isinstance(open_lsl(True), LSLOutlet)
    name = f"station-markers-test-{os.getpid()}-{time.monotonic_ns()}"  # not another run's outlet
    outlet = LSLOutlet(name=name, source_id=name)
    streams = pylsl.resolve_byprop("name", name, timeout=5)
    assert streams
    inlet = pylsl.StreamInlet(streams[0])
    inlet.open_stream(timeout=5)
    markers = Markers(lsl=outlet)
    t = time.perf_counter()
    time.sleep(0.2)
    markers.emit("clip_first_frame", "a", "x", t=t)
    sample, ts = inlet.pull_sample(timeout=5)
    assert sample is not None and '"event": "clip_first_frame"' in sample[0]
    assert abs(ts - (t + outlet.offset)) < 1e-3  # stamped with the marker's time, not the send time


def test_lsl_missing_is_a_clear_message_not_a_crash():
    code = ("import sys; sys.modules['pylsl'] = None\n"
            "from station.elicit.markers import open_lsl\n"
            "msgs = []\nassert open_lsl(True, warn=msgs.append) is None\nprint(msgs[0])\n"
            "assert open_lsl(False) is None\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == LSL_MISSING and "pip install 'station[lsl]'" in out.stdout



def test_psychopy_times_convert_to_the_recorders_clock_whichever_psychopy_clock_they_are_on():
    """Flip times (monotonicClock) and absolute core.getTime() values both land on perf_counter."""
    from psychopy import core

    from station.elicit.markers import psychopy_to_perf

    to_perf = psychopy_to_perf()
    for psychopy_now in (core.getTime(), core.monotonicClock.getTime()):
        assert abs(to_perf(psychopy_now) - time.perf_counter()) < 0.05
