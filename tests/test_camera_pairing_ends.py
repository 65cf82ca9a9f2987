"""Frames delivered but never paired into a row -- before the first row, after the last, or in a
trial with no row at all -- are counted (issue #11 follow-up), on real librealsense playback, a
real software device and real HDF5 files."""

from __future__ import annotations

import time

import numpy as np
import pyrealsense2 as rs

from conftest import ROOT, run_station
from station.camera.base import EndOfStream, StreamTimes
from station.camera.faults import Faults
from station.camera.pairing import FramePairer
from station.camera.realsense import PlaybackSource
from station.camera.scene import MovingSurface
from station.camera.virtual import VirtualD415
from station.record import schema
from station.record.inspect import check, summarize
from station.record.recorder import Recorder, record_trial
from station.record.writer import open_trial
from swdev import SMALL, small_camera

BAG = ROOT / "tests" / "data" / "realsense" / "single_depth_color_640x480.bag"


def failing(path) -> dict[str, str]:
    return {name: detail for name, passed, detail in check(path).results if not passed}


def delivered(stats) -> tuple[int, int]:
    return stats.delivered_color, stats.delivered_depth


def pipeline_frames(path) -> set[tuple[str, int]]:
    """Every distinct (stream, frame number) ``rs.pipeline`` hands out for a recording."""
    pipe, cfg = rs.pipeline(), rs.config()
    cfg.enable_device_from_file(str(path), repeat_playback=False)
    profile = pipe.start(cfg)
    profile.get_device().as_playback().set_real_time(False)
    seen = set()
    try:
        while (got := pipe.try_wait_for_frames(1000))[0]:
            seen |= {(f.profile.stream_name(), f.get_frame_number()) for f in got[1]}
    finally:
        pipe.stop()
    return seen


def test_librealsense_bag_says_what_arrived_and_that_none_of_it_was_written(tmp_path):
    """The D435 bag holds colour #162 and depth #169, #170.  rs.pipeline hands out one frameset,
    colour #162 with depth #170 (268 ms apart; #169 never leaves librealsense's aggregator): 2
    frames reach the station, neither can be paired, so 0 rows -- and both are counted."""
    assert pipeline_frames(BAG) == {("Color", 162), ("Depth", 170)}
    source = PlaybackSource(BAG, realtime=False)
    stats = record_trial(source, tmp_path / "bag.h5")
    assert stats.frames_written == 0 and delivered(stats) == (1, 1) == (source.pairer.delivered["color"],
                                                                        source.pairer.delivered["depth"])
    assert (stats.unpaired_ends_color, stats.unpaired_ends_depth, stats.dropped) == (1, 1, 0)
    summary = summarize(stats.path)
    assert summary.counters["delivered_color"] == summary.counters["unpaired_ends_depth"] == 1
    assert (summary.not_written("color"), summary.not_written("depth")) == (1, 1)
    bad = failing(stats.path)
    assert bad["frames"].startswith("0 frames in the file: 2 frames delivered (colour 1, depth 1), 0 frames written")
    assert "counters agree" not in bad  # the ends are accounted for, /counters and attributes agree
    proc = run_station("record", "--camera", f"playback:{BAG}", "--fast", "--seconds", "5",
                       "--out", str(tmp_path / "cli.h5"))
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 1 and "Traceback" not in out
    assert "2 frames delivered (colour 1, depth 1), 0 frames written per stream; not written: colour 1, depth 1" in out
    assert "NOT whole" in out
    proc = run_station("inspect", "--check", str(tmp_path / "cli.h5"))
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 1 and "colour 1, depth 1; not written: colour 1, depth 1" in out
    assert "0 between the first and last row" in out  # 'missing' never reads as "nothing was lost"


def test_a_frame_still_waiting_for_its_partner_after_the_last_row_is_counted(tmp_path):
    """A real software device whose colour runs 7 ms (+-1 ms jitter) after depth: the syncer hands
    over depth #11 last, its colour partner never comes, and the pairer still holds it when the
    source ends.  It is delivered, not written, and counted as unpaired at the end."""
    cam = VirtualD415(MovingSurface(*SMALL, n_frames=12), realtime=False,
                      faults=Faults(seed=1, color_offset_ms=7.0, jitter_ms=1.0), queue_size=64)
    stats = record_trial(cam, tmp_path / "pending.h5")
    with open_trial(stats.path) as f:
        table = schema.frames_table(f)
    assert table["depth_number"][-1] == 10 and stats.frames_written == len(table) == 8
    # the pairer's own count of distinct frames taken in: every one is in the file or counted
    assert delivered(stats) == (cam.pairer.delivered["color"], cam.pairer.delivered["depth"]) == (10, 11)
    assert (stats.unpaired_ends_color, stats.unpaired_ends_depth) == (0, 1)
    assert stats.delivered_depth == stats.frames_written + stats.unpaired_depth + stats.late_depth + 1
    assert cam.pairer.pending() == {"color": 0, "depth": 0}  # let go at the end, not dropped silently
    assert "counters agree" not in failing(stats.path)


def test_a_camera_that_hands_over_nothing_says_0_delivered(tmp_path):
    """Colour lost before the host for all 30 instants: like rs.pipeline's aggregator, the virtual
    D415 completes no frameset without a colour frame, nothing reaches the station, and the file
    says so rather than '0 missing'."""
    cam = VirtualD415(MovingSurface(*SMALL, n_frames=30), realtime=False, faults=Faults(seed=1, drop_color=0.999),
                      queue_size=64)
    stats = record_trial(cam, tmp_path / "none.h5")
    truth = cam.schedule.delivered
    assert truth["color"].size == 0 and truth["depth"].size == 30 - cam.schedule.first
    assert stats.frames_written == 0 and delivered(stats) == (0, 0)
    assert failing(stats.path)["frames"].startswith("0 frames in the file: 0 frames delivered (colour 0, depth 0)")


class ScriptedSource:
    """A camera source of our own (not a mock of librealsense): frames in the order given, one
    per read, through the real :class:`FramePairer`, stamped at their frame number's time."""

    description = "scripted"

    def __init__(self, script: list[tuple[str, int]]):
        self.script = list(script)
        self.pairer = FramePairer(60)
        self.calibration = small_camera(1).calibration

    def start(self):
        return self.calibration

    def read(self, timeout_s=1.0):
        if not self.script:
            raise EndOfStream("scripted")
        stream, n = self.script.pop(0)
        times = StreamTimes(n, n * 1000 / 60, "hardware_clock")
        shape, dtype = ((SMALL[1], SMALL[0], 3), np.uint8) if stream == "color" else ((SMALL[1], SMALL[0]), np.uint16)
        self.pairer.offer(stream, n, lambda: (times, np.zeros(shape, dtype)))
        pairs = self.pairer.pairs(time.perf_counter())
        return pairs[0] if pairs else None

    def stop(self):
        pass


def test_a_late_frame_and_a_pending_one_after_the_last_row_are_counted(tmp_path):
    """Rows 1-5; then depth #7, and depth #6 overtaken by it (late); colour never comes again."""
    script = [(s, n) for n in range(1, 6) for s in ("depth", "color")] + [("depth", 7), ("depth", 6)]
    source = ScriptedSource(script)
    stats = record_trial(source, tmp_path / "late.h5")
    assert stats.frames_written == 5 and stats.dropped == 0 and stats.late_depth == stats.gaps_depth == 0
    assert delivered(stats) == (5, 7) == (source.pairer.delivered["color"], source.pairer.delivered["depth"])
    assert (stats.unpaired_ends_color, stats.unpaired_ends_depth) == (0, 2)  # #7 pending, #6 late
    assert summarize(stats.path).not_written("depth") == 2 and check(stats.path).ok


def test_a_silent_stream_leaves_every_frame_of_the_other_counted(tmp_path):
    source = ScriptedSource([("depth", n) for n in range(100, 190)])  # 90 > the 60 frames the pairer holds
    stats = record_trial(source, tmp_path / "silent.h5")
    assert stats.frames_written == 0 and delivered(stats) == (0, 90) and stats.unpaired_ends_depth == 90
    assert stats.dropped == 0 and stats.unpaired_depth == 0  # no row: nothing between rows to miss
    assert failing(stats.path)["frames"].startswith("0 frames in the file: 90 frames delivered (colour 0, depth 90)")
    assert "counters agree" not in failing(stats.path)


def test_pairer_finish_counts_pending_frames_and_start_window_forgets_the_time_before():
    pairer = FramePairer(60)

    def offer(stream, n):
        times = StreamTimes(n, n * 1000 / 60, "hardware_clock")
        return pairer.offer(stream, n, lambda: (times, np.zeros(1)))

    offer("depth", 1), offer("color", 1), offer("depth", 2)
    assert len(pairer.pairs(0.0)) == 1 and pairer.pending() == {"color": 0, "depth": 1}
    offer("color", 4)  # colour #2, #3 never came: depth #2 has no partner, colour #4 waits for depth #4
    assert pairer.pairs(0.0) == [] and pairer.pending() == {"color": 1, "depth": 0}
    assert pairer.start_window() == {"unpaired_depth": 1, "gaps_color": 2}  # the time before a trial
    assert pairer.events == {} and pairer.pending() == {"color": 1, "depth": 0}  # colour #4 still waits
    assert not offer("color", 4)  # a stale repeat: not delivered again
    assert pairer.finish() == {"unpaired_color": 1, "repeated_color": 1}  # the source ended
    assert pairer.pending() == {"color": 0, "depth": 0} and pairer.finish() == {}
    assert pairer.delivered == {"color": 2, "depth": 2}


def test_frames_after_the_trial_ended_are_not_the_trials(tmp_path):
    """A live virtual camera kept open across two trials: each file accounts for exactly the
    frames delivered while it was open; frames between and after the trials are in none."""
    cam = small_camera(None, realtime=True)
    recorder = Recorder(cam)
    recorder.open()
    try:
        trials = []
        for name in ("a.h5", "b.h5"):
            recorder.begin_trial(tmp_path / name)
            recorder.wait(0.6)
            trials.append(recorder.end_trial())
            recorder.wait(0.3)  # the camera keeps sending between trials
    finally:
        recorder.close()
    total = cam.pairer.delivered
    for stats in trials:
        assert stats.complete and stats.frames_written > 10
        assert "counters agree" not in failing(stats.path)
        for s in ("color", "depth"):
            assert getattr(stats, f"delivered_{s}") - stats.frames_written <= 2 + getattr(stats, f"dropped_{s}")
    for s in ("color", "depth"):  # about 0.3 s of frames between and after the trials are in no file
        assert sum(getattr(t, f"delivered_{s}") for t in trials) <= total[s] - 10
