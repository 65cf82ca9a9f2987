"""Recorder thread + trial HDF5: every frame written or counted, files readable whatever happens."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import open3d as o3d
import pytest

from station.camera.base import EndOfStream, StreamTimes
from station.camera.pairing import FramePairer
from station.checks import StationError
from station.record import schema
from station.record.exportclouds import export_pointclouds
from station.record.inspect import check, summarize
from station.record.recorder import Recorder, record_trial
from station.record.writer import Storage, open_trial, read_markers
from swdev import SMALL, small_camera
from conftest import ROOT, run_station


def test_a_trial_holds_every_frame_with_clocks_markers_and_calibration(tmp_path):
    path = tmp_path / "trial.h5"
    stats = record_trial(small_camera(40), path, seconds=None)
    assert stats.complete and stats.path == path
    assert not Path(str(path) + schema.WRITING_SUFFIX).exists()
    assert stats.frames_written == 39  # frame 0 primes librealsense's syncer
    assert stats.dropped == 0
    report = check(path)
    assert report.ok, report.results
    s = summarize(path)
    assert s.frames == 39 and s.complete
    assert s.effective_fps == pytest.approx(60, rel=1e-5)  # device clock (µs), not wall clock
    events = [m["event"] for m in s.markers]
    assert events[0] == "recording_start" and "source_ended" in events
    with open_trial(path) as f:
        assert f[schema.COLOR].shape == (39, SMALL[1], SMALL[0], 3)
        assert f[schema.COLOR].compression is not None or f[schema.COLOR]._filters  # compressed
        assert f.attrs["schema_version"] == schema.SCHEMA_VERSION
        host = f[schema.FRAMES]["host_time"]
        markers = read_markers(f)
    # markers and frames share one clock
    assert markers[0]["host_time"] <= host[0] + 1.0 and markers[-1]["host_time"] >= host[-1]


def test_markers_from_another_thread_land_in_the_trial(tmp_path):
    recorder = Recorder(small_camera(None, realtime=True))
    recorder.open()
    try:
        recorder.begin_trial(tmp_path / "t.h5")
        sender = threading.Thread(target=lambda: [recorder.mark("clip_start", clip=f"c{i}") or time.sleep(0.02)
                                                  for i in range(5)])
        sender.start()
        sender.join()
        recorder.wait(0.3)
        stats = recorder.end_trial()
    finally:
        recorder.close()
    with open_trial(stats.path) as f:
        clips = [m["clip"] for m in read_markers(f)]
    assert clips == [f"c{i}" for i in range(5)]


class GappySource:
    """A camera source of our own (not a mock of librealsense) that skips frame numbers."""

    description = "gappy"

    def __init__(self):
        self.numbers: list[int] = []
        self.last_sent = False  # EndOfStream once the numbers handed over are used up
        self.pairer = FramePairer(60)
        self.calibration = small_camera(1).calibration

    def start(self):
        return self.calibration

    def read(self, timeout_s=1.0):
        if not self.numbers:
            if self.last_sent:
                raise EndOfStream("gappy")
            time.sleep(0.01)
            return None
        n = self.numbers.pop(0)
        times = StreamTimes(n, n * 1000 / 60, "hardware_clock")
        for stream, shape, dtype in (("color", (SMALL[1], SMALL[0], 3), np.uint8), ("depth", (SMALL[1], SMALL[0]), np.uint16)):
            self.pairer.offer(stream, n, lambda shape=shape, dtype=dtype: (times, np.zeros(shape, dtype)))
        pairs = self.pairer.pairs(time.perf_counter())
        return pairs[0] if pairs else None

    def stop(self):
        pass


def test_frame_number_gaps_are_counted_and_stored(tmp_path):
    source = GappySource()
    recorder = Recorder(source)
    recorder.open()
    try:
        recorder.begin_trial(tmp_path / "gaps.h5")
        source.numbers = [1, 2, 5, 6, 10]  # 2 + 3 frames missing
        source.last_sent = True
        while not recorder.ended.is_set():
            time.sleep(0.01)
        stats = recorder.end_trial()
    finally:
        recorder.close()
    assert stats.gaps_color == stats.gaps_depth == 5 and stats.frames_written == 5
    assert stats.dropped == stats.dropped_color == 5
    counters = summarize(stats.path).counters
    assert counters["gaps_color"] == counters["dropped_depth"] == counters["dropped"] == 5


def test_queue_overflow_is_counted_not_lost(tmp_path):
    """A writer slower than the camera: what does not fit in the queue is counted as dropped."""
    cam = small_camera(None, realtime=True)
    storage = Storage(compression="zstd", store_vertices=True)  # deliberately heavy writes
    recorder = Recorder(cam, storage=storage, queue_size=1)
    recorder.open()
    try:
        recorder.begin_trial(tmp_path / "slow.h5")
        recorder.wait(1.5)
        stats = recorder.end_trial()
    finally:
        recorder.close()
    with open_trial(stats.path) as f:
        numbers = f[schema.FRAMES]["color_number"]
        assert f[schema.VERTICES].shape[0] == len(numbers)
    span = int(numbers[-1] - numbers[0] + 1)
    # every frame number in the written span is either in the file or counted
    assert stats.frames_written + stats.dropped_color == span  # every frame in the span: written or counted
    assert stats.frames_written == len(numbers)


def test_stored_vertices_equal_rebuilt_ones(tmp_path):
    stats = record_trial(small_camera(4), tmp_path / "v.h5", storage=Storage(store_vertices=True))
    from station.record.pointcloud import deproject_depth
    from station.record.writer import read_calibration

    with open_trial(stats.path) as f:
        cal = read_calibration(f)
        for i in range(f[schema.DEPTH].shape[0]):
            np.testing.assert_array_equal(
                f[schema.VERTICES][i], deproject_depth(f[schema.DEPTH][i], cal.depth_intrinsics, cal.depth_scale))


def test_never_overwrites_a_recording(tmp_path):
    path = tmp_path / "t.h5"
    record_trial(small_camera(3), path)
    with pytest.raises(StationError, match="already exists; the station never overwrites"):
        record_trial(small_camera(3), path)


def test_unwritable_output_is_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(StationError, match="trial folder '.*a-file/sub' cannot be created"):
        record_trial(small_camera(3), blocker / "sub" / "t.h5")


def test_low_disk_stops_cleanly_and_keeps_a_readable_file(tmp_path):
    """Free space under the stop threshold mid-trial: the trial ends and is finalised."""
    recorder = Recorder(small_camera(None, realtime=True), min_free_bytes=1, warn_free_bytes=1)
    recorder.open()
    try:
        recorder.begin_trial(tmp_path / "low.h5")
        recorder.wait(0.3)
        recorder.min_free_bytes = 10 ** 18  # the disk "fills up"
        assert recorder.wait(5.0) is False  # the trial ends by itself
        stats = recorder.end_trial()
    finally:
        recorder.close()
    assert stats.stop_reason == "disk almost full" and stats.complete
    failed = [(name, detail) for name, passed, detail in check(stats.path).results if not passed]
    assert failed == [("ended on request", "the recording ended early: disk almost full")]  # readable, not whole


@pytest.fixture
def tiny_disk(tmpfs):
    return tmpfs("6m", "tiny")


@pytest.mark.slow
def test_a_really_full_disk_keeps_frames_up_to_the_last_flush(tiny_disk):
    """ENOSPC for real (a 6 MB tmpfs), in a real subprocess: it stops, the file stays readable.

    A subprocess, because after a failed write HDF5 keeps broken state in the process.
    """
    out = tiny_disk / "full.h5"
    proc = run_station("record", "--camera", "virtual", "--width", "424", "--height", "240", "--seconds", "30",
                       "--compression", "none", "--min-free-mb", "0", "--warn-free-mb", "0", "--out", str(out),
                       timeout=120)
    assert proc.returncode == 1, proc.stderr  # readable up to the last flush, but not whole: said so
    assert "NOT whole" in proc.stderr and "Traceback" not in proc.stderr
    assert "disk full" in proc.stderr and "frames up to the last flush are kept" in proc.stderr
    partial = Path(str(out) + schema.WRITING_SUFFIX)
    s = summarize(partial)
    assert s.frames > 0 and not s.complete
    with open_trial(partial) as f:
        assert f[schema.COLOR][s.frames - 1].shape == (SMALL[1], SMALL[0], 3)


def _wait_for_frames(path: Path, minimum: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                with h5py.File(path, "r", libver="latest", swmr=True) as f:
                    n = f[schema.FRAMES].shape[0]
                    if n >= minimum:
                        return n
            except (OSError, KeyError):
                pass
        time.sleep(0.2)
    raise AssertionError(f"{path} never reached {minimum} frames")


def _start_recording(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "station.cli", "record", "--camera", "virtual",
                             "--width", "424", "--height", "240", "--seconds", "60", "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_sigkill_leaves_every_flushed_frame_readable(tmp_path):
    out = tmp_path / "killed.h5"
    proc = _start_recording(out)
    try:
        seen = _wait_for_frames(Path(str(out) + schema.WRITING_SUFFIX), 30)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    partial = Path(str(out) + schema.WRITING_SUFFIX)
    assert partial.exists() and not out.exists()  # recognisable as not finalised
    s = summarize(partial)
    assert not s.complete and s.frames >= seen
    report = check(partial)
    failed = [name for name, passed, _ in report.results if not passed]
    assert failed == ["closed cleanly"], report.results
    with open_trial(partial) as f:
        last = f[schema.COLOR][s.frames - 1]
        assert last.std() > 0  # a real image, not an empty chunk


@pytest.mark.slow
def test_ctrl_c_finishes_the_flush_and_finalises(tmp_path):
    out = tmp_path / "interrupted.h5"
    proc = _start_recording(out)
    try:
        _wait_for_frames(Path(str(out) + schema.WRITING_SUFFIX), 20)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "stopped by interrupted (SIGINT)" in stderr
    s = summarize(out)
    assert s.complete and s.frames >= 20
    assert "interrupted" in [m["event"] for m in s.markers]


def test_export_pointclouds_writes_one_ply_per_frame(tmp_path):
    stats = record_trial(small_camera(4), tmp_path / "t.h5")
    written = export_pointclouds(stats.path, tmp_path / "ply")
    assert len(written) == stats.frames_written
    with open_trial(stats.path) as f:
        valid = int(np.count_nonzero(f[schema.DEPTH][0]))
    cloud = o3d.io.read_point_cloud(str(written[0]))
    assert len(cloud.points) == valid and cloud.has_colors()
    z = np.asarray(cloud.points)[:, 2]
    assert 0.45 < np.median(z) < 0.75  # metres


def test_cli_record_inspect_and_export(tmp_path):
    proc = run_station("record", "--camera", "virtual", "--width", "424", "--height", "240", "--seconds", "1.5",
                       "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    trial = tmp_path / "trial-01.h5"
    assert trial.exists() and "frames written" in proc.stderr
    assert "ground truth of the synthetic participant stored" in proc.stderr
    proc = run_station("inspect", "--check", str(trial))
    assert proc.returncode == 0, proc.stderr
    assert "color/depth pairing" in proc.stderr and "✗" not in proc.stderr
    proc = run_station("export-pointclouds", str(trial), str(tmp_path / "ply"), "--frames", "0:3")
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "ply").glob("frame-*.ply"))) == 3
    proc = run_station("record", "--camera", "realsense", "--seconds", "1", "--out", str(tmp_path))
    assert proc.returncode == 2 and "No RealSense camera found" in proc.stderr
    assert "Traceback" not in proc.stderr
