"""A hostile virtual D415 and real recordings: one frame one row, exact counts, honest verdicts."""

from __future__ import annotations

import gc
import json
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pyrealsense2 as rs
import pytest

from station.camera.faults import Faults, FrameSchedule
from station.camera.pairing import WRAP_MS
from station.camera.realsense import PlaybackSource, calibration_from_profile
from station.camera.scene import MovingSurface
from station.camera.virtual import VirtualD415
from station.record import schema
from station.record.inspect import check, trial_verdict
from station.record.pointcloud import deproject_depth
from station.record.recorder import record_trial
from station.record.writer import open_trial, read_markers
from conftest import ROOT, run_station
from swdev import SMALL

BAG = ROOT / "tests" / "data" / "realsense" / "single_depth_color_640x480.bag"
DONE_WHEN = Faults(seed=3, clock_start_ms=360713, drop_color=0.01, drop_depth=0.005, late_color=0.1, late_ms=9.5)


def camera(n_frames: int, faults: Faults, *, size=SMALL, realtime=False, record_to=None) -> VirtualD415:
    # a deep hand-over queue: on a loaded CI machine the host must not add losses of its own
    return VirtualD415(MovingSurface(*size, n_frames=n_frames), realtime=realtime, faults=faults, record_to=record_to,
                       queue_size=64)


def failing(path) -> dict[str, str]:
    return {name: detail for name, passed, detail in check(path).results if not passed}


def expected(schedule: FrameSchedule, with_prime: bool = False) -> dict[str, int]:
    """The simulator's truth; ``with_prime`` when frame 0 (which primes the live syncer) is in the file."""
    delivered = {s: np.union1d([0], d) if with_prime else d for s, d in schedule.delivered.items()}
    both = np.intersect1d(delivered["color"], delivered["depth"])
    return {"rows": both.size, "dropped": int(both[-1] - both[0] + 1 - both.size)}


@pytest.mark.slow
def test_done_when_d415_like_db3_at_848x480_60_every_missing_frame_counted(tmp_path):
    """Issue #11 'done when': clock at 360713 ms, 1 % colour / 0.5 % depth drops, 10 % colour 9.5 ms late."""
    db3, n = tmp_path / "d415.db3", 181
    cam = camera(n, DONE_WHEN, size=(848, 480), realtime=True, record_to=db3)
    live = record_trial(cam, tmp_path / "live.h5")
    truth = cam.schedule.truth()
    assert min(truth["missing_before_host"].values()) > 0  # both streams lost frames before the host
    # the live virtual camera through librealsense's syncer: exact counts
    assert live.frames_written == truth["rows"] and live.dropped == truth["dropped"]
    assert live.dropped_color == truth["dropped_color"] and live.dropped_depth == truth["dropped_depth"]
    assert live.repeated_color + live.repeated_depth > 0  # librealsense did hand stale frames over
    # the same camera recorded by rs.recorder, played back through rs.pipeline
    gc.collect()  # rs.recorder finishes the .db3 when the last librealsense object holding it goes
    played = record_trial(PlaybackSource(db3, realtime=False), tmp_path / "played.h5")  # blocking: no host drops
    with open_trial(played.path) as f:
        frames = schema.frames_table(f)
        assert f[schema.COLOR].shape[1:] == (480, 848, 3)
    # frame 0 (which primed the live syncer) reaches the played trial in most runs, not all (1 in
    # ~6 on the 2-core VM): read from the .db3's sensors, the file sometimes lacks colour frame 0
    # and sometimes holds both while rs.pipeline's playback does not hand them over; the station
    # then counts nothing delivered before row 1, correctly.  The truth starts where delivery does.
    truth = expected(cam.schedule, with_prime=int(frames["color_number"][0]) == 0)
    assert played.frames_written == truth["rows"] and played.dropped == truth["dropped"]
    for stream in schema.STREAMS:  # 0 repeated rows
        assert np.all(np.diff(frames[f"{stream}_number"]) > 0)
    first = int(frames["color_number"][0])  # the hardware clock starts at 360713 ms on frame 0
    assert frames["color_timestamp_ms"][0] == pytest.approx(360713 + first * 1000 / 60, abs=1)
    assert np.all(np.abs(frames["skew_ms"]) < 1e-3)
    reasons = failing(played.path)
    assert set(reasons) <= {"missing frames", "effective fps"} and "limit 0.5 %" in reasons["missing frames"]
    # a clean camera through the same path passes
    clean = record_trial(camera(61, Faults(), realtime=True), tmp_path / "clean.h5")
    assert clean.frames_written == 60 and clean.dropped == 0 and check(clean.path).ok


def test_fast_virtual_camera_with_drops_counts_exactly_and_fails_the_verdict(tmp_path):
    cam = camera(200, Faults(seed=3, drop_color=0.03, drop_depth=0.02, clock_start_ms=360713))
    stats = record_trial(cam, tmp_path / "t.h5")
    truth = cam.schedule.truth()
    assert (stats.frames_written, stats.dropped_color, stats.dropped_depth) == \
        (truth["rows"], truth["dropped_color"], truth["dropped_depth"])
    with open_trial(stats.path) as f:
        counters = {k: int(v) for k, v in zip(schema.COUNTERS_FIELDS, f[schema.COUNTERS][...])}
        assert all(int(f.attrs[k]) == v for k, v in counters.items())  # one source of truth
    assert "missing frames" in failing(stats.path) and "counters agree" not in failing(stats.path)


@pytest.mark.slow
def test_a_stall_is_marked_counted_and_fails_the_verdict(tmp_path):
    cam = camera(150, Faults(stall_s=0.8, stall_for_s=1.2), realtime=True)
    ticks = []
    stats = record_trial(cam, tmp_path / "stall.h5", stall_s=0.5, on_tick=ticks.append)
    assert any(t.stalled and t.stalled_s >= 0.5 for t in ticks) and "camera stalled" in ticks[-1].warning + \
        "".join(t.warning for t in ticks)  # what `station run` and `station record` show live
    with open_trial(stats.path) as f:
        events = [m["event"] for m in read_markers(f)]
    assert "camera_stalled" in events and "camera_resumed" in events
    assert stats.stalls == 1 and 700 <= stats.stalled_ms <= 1700
    assert stats.dropped == cam.schedule.truth()["dropped"] == 72  # 1.2 s of frames never came
    reasons = failing(stats.path)
    assert "camera stalled 1 time(s)" in reasons["no stall"] and "missing frames" in reasons


def test_domain_switch_fails_the_verdict_with_the_row(tmp_path):
    stats = record_trial(camera(90, Faults(domain_switch_s=0.75)), tmp_path / "domain.h5")
    assert stats.dropped == 0
    reasons = failing(stats.path)
    assert "changes from hardware_clock to global_time at row 44" in reasons["color timestamp domain"]
    assert "depth timestamp domain" in reasons


def test_32_bit_clock_wrap_is_unwrapped_and_the_trial_is_whole(tmp_path):
    stats = record_trial(camera(60, Faults(clock_start_ms=WRAP_MS - 300)), tmp_path / "wrap.h5")
    assert stats.clock_wraps == 1
    with open_trial(stats.path) as f:
        ts = schema.frames_table(f)["color_timestamp_ms"]
    assert np.all(np.diff(ts) > 0) and ts[-1] > WRAP_MS
    assert check(stats.path).ok, failing(stats.path)


def test_no_metadata_is_flagged_in_the_file_and_warned(tmp_path):
    stats = record_trial(camera(30, Faults(no_metadata=True, drop_color=0.1, seed=2)), tmp_path / "nometa.h5")
    with open_trial(stats.path) as f:
        assert bool(f.attrs[schema.ATTR_METADATA]) is False
        assert schema.frames_table(f)["color_domain"][0] == schema.DOMAINS.index("system_time")
    report = check(stats.path)
    assert any("no firmware metadata" in w and "patch" in w for w in report.warnings)


@pytest.mark.slow
def test_unplug_ends_the_trial_and_keeps_the_frames(tmp_path):
    stats = record_trial(camera(120, Faults(unplug_s=0.6), realtime=True), tmp_path / "unplug.h5")
    assert "unplugged" in stats.stop_reason and stats.complete and stats.frames_written >= 30
    assert "ended on request" in failing(stats.path)


def _flip_chunk(path: Path, dataset: str, index: int) -> None:
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(index)
    with open(path, "r+b") as raw:
        raw.seek(info.byte_offset + 16)
        raw.write(bytes(b ^ 0xFF for b in raw.read(4096)))


def test_a_corrupt_chunk_and_a_truncated_file_fail_with_the_frame(tmp_path):
    stats = record_trial(camera(40, Faults()), tmp_path / "good.h5")
    assert check(stats.path).ok
    bad = tmp_path / "bad.h5"
    shutil.copy(stats.path, bad)
    _flip_chunk(bad, schema.COLOR, 17)
    assert "frame 17 of /color cannot be read or decompressed" in failing(bad)["/color readable"]
    cut = tmp_path / "cut.h5"
    cut.write_bytes(stats.path.read_bytes()[: stats.path.stat().st_size // 2])
    assert not check(cut).ok
    proc = run_station("inspect", "--check", str(cut), str(bad))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "NOT whole" in proc.stderr


def test_librealsense_bag_plays_back_and_its_pairing_verdict_is_right(tmp_path):
    """librealsense's own D435 recording: 2 depth frames, 1 colour frame; the pipeline's only
    frameset puts colour #162 with depth #170, 268 ms apart at 6 fps: not a pair, so 0 rows."""
    device = rs.context().load_device(str(BAG))
    device.as_playback().set_real_time(False)
    sensor_frames = rs.frame_queue(10, keep_frames=True)
    for sensor in device.query_sensors():
        sensor.open(sensor.get_stream_profiles()[0])
        sensor.start(sensor_frames)
    seen = []
    while (got := sensor_frames.try_wait_for_frame(1000))[0]:
        seen.append((got[1].profile.stream_name(), got[1].get_frame_number(), got[1].get_timestamp()))
    for sensor in device.query_sensors():
        sensor.stop(), sensor.close()
    assert sorted((s, n) for s, n, _ in seen) == [("Color", 162), ("Depth", 169), ("Depth", 170)]
    pipe, cfg = rs.pipeline(), rs.config()
    cfg.enable_device_from_file(str(BAG), repeat_playback=False)
    profile = pipe.start(cfg)
    playback = profile.get_device().as_playback()
    playback.set_real_time(False)
    try:
        framesets = []
        deadline = time.monotonic() + 30  # a wait can time out before the playback has begun: go on until it ends
        while time.monotonic() < deadline:
            ok, got = pipe.try_wait_for_frames(1000)
            if ok:
                framesets.append({f.profile.stream_name(): f for f in got})
                for f in got:
                    f.keep()
            elif playback.current_status() == rs.playback_status.stopped:
                break
        depth = framesets[0]["Depth"]
        cal = calibration_from_profile(profile)
        ours = deproject_depth(np.asanyarray(depth.get_data()), cal.depth_intrinsics, cal.depth_scale).reshape(-1, 3)
        theirs = np.asarray(rs.pointcloud().calculate(depth).get_vertices()).view(np.float32).reshape(-1, 3)
    finally:
        pipe.stop()
    np.testing.assert_allclose(ours, theirs, atol=1e-6)  # point-cloud export is rs.pointcloud's
    gap = framesets[0]["Depth"].get_timestamp() - framesets[0]["Color"].get_timestamp()
    assert gap == pytest.approx(268.2, abs=0.1) and cal.fps == 6
    stats = record_trial(PlaybackSource(BAG, realtime=False), tmp_path / "bag.h5")
    assert stats.frames_written == 0
    verdict = trial_verdict(stats.path)
    assert not verdict.ok and any("0 frames" in r for r in verdict.reasons)
    proc = run_station("inspect", "--check", str(stats.path))
    assert proc.returncode == 1 and "NOT whole" in proc.stderr and "Traceback" not in proc.stderr


def test_fault_spec_parses_and_names_what_is_allowed():
    assert Faults.parse("clock_start_ms=360713,drop_color=0.01,no_metadata") == \
        Faults(clock_start_ms=360713, drop_color=0.01, no_metadata=True)
    with pytest.raises(Exception, match="unknown camera fault 'dorp'.*allowed: seed"):
        Faults.parse("dorp=1")
    assert Faults().clean and not DONE_WHEN.clean


def test_station_record_with_faults_fails_red_with_the_reason(tmp_path):
    proc = run_station("record", "--camera", "virtual", "--width", "424", "--height", "240", "--seconds", "1",
                       "--faults", "seed=1,drop_color=0.05,clock_start_ms=360713", "--out", str(tmp_path / "f.h5"))
    assert proc.returncode == 1, proc.stderr
    assert "NOT whole" in proc.stderr and "missing frames" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_station("record", "--camera", "virtual", "--faults", "dorp=1", "--out", str(tmp_path / "g.h5"))
    assert proc.returncode == 2 and "unknown camera fault 'dorp'" in proc.stderr


def test_first_day_messages_name_the_cause_and_the_fix():
    from station.camera.diagnostics import explain, metadata_fix, usb_problem

    busy = explain(RuntimeError("xioctl(VIDIOC_S_FMT) failed, errno=16 Last Error: Device or resource busy"), "D415 123")
    assert busy.startswith("D415 123 is busy") and "realsense-viewer" in busy and "\n" not in busy
    assert "udev rules" in explain(RuntimeError("failed to open usb interface: 0, error: RS2_USB_STATUS_ACCESS"))
    assert "no colour stream" in explain(RuntimeError("Requested extrinsics are not available!"))
    assert "USB 2.1" in usb_problem("2.1", 848, 480, 60) and "USB 3 port" in usb_problem("2.1", 848, 480, 60)
    assert usb_problem("3.2", 848, 480, 60) is None
    assert "realsense_metadata_win10.ps1" in metadata_fix("Windows") and "kernel metadata patch" in metadata_fix("Linux")


def test_camera_settings_are_validated_read_back_and_stored(tmp_path):
    from station.camera.settings import CameraSettings

    with pytest.raises(Exception, match="visual preset must be one of .*high_accuracy"):
        CameraSettings(visual_preset="best")
    with pytest.raises(Exception, match="unknown camera setting.*allowed: advanced_json"):
        CameraSettings.from_dict({"laser": 150})
    assert CameraSettings.from_dict({"laser_power": 150, "emitter": True}).requested() == {"laser_power": 150,
                                                                                          "emitter": True}
    stats = record_trial(PlaybackSource(BAG, realtime=False), tmp_path / "bag.h5")
    with open_trial(stats.path) as f:
        stored = json.loads(f.attrs[schema.ATTR_CAMERA_SETTINGS])
        assert f.attrs[schema.ATTR_LIBREALSENSE] == rs.__version__
    assert stored["device"]["depth.laser_power"] == 150.0  # read back from the D435's recording
    assert stored["device"]["depth.depth_units"] == pytest.approx(0.001)


def test_frames_overtaken_by_newer_ones_are_counted_late_not_written_twice(tmp_path):
    cam = camera(240, Faults(seed=5, late_color=0.05, late_depth=0.03, late_ms=25.0, jitter_ms=0.3))
    stats = record_trial(cam, tmp_path / "late.h5")
    truth = cam.schedule.truth()
    assert cam.schedule.overtaken("color").size > 0 and cam.schedule.overtaken("depth").size > 0
    assert (stats.frames_written, stats.dropped_color, stats.dropped_depth) == \
        (truth["rows"], truth["dropped_color"], truth["dropped_depth"])
    assert stats.late_color > 0 and stats.late_depth > 0
    assert "color frames distinct" not in failing(stats.path) and "missing frames" in failing(stats.path)


def test_frame_cache_renders_ahead_identically_when_a_clip_is_too_long_to_hold():
    from station.camera.framecache import FrameCache
    from station.camera.virtual import SceneRenderer, d415_calibration

    renderer = SceneRenderer(MovingSurface(*SMALL, n_frames=100), d415_calibration(*SMALL))
    held = FrameCache(renderer, 100, SMALL[0] * SMALL[1] * 5, jobs=2)
    streamed = FrameCache(renderer, 100, SMALL[0] * SMALL[1] * 5, jobs=2, compressed_budget=10_000, ahead_s=0.5)
    try:
        held.prepare(), streamed.prepare()
        assert not held.streaming and streamed.streaming
        assert len(streamed._frames) == 30 < len(held._frames) == 100  # a head start only
        for i in (0, 29, 30, 61, 99):
            for a, b in zip(held.get(i), streamed.get(i)):
                np.testing.assert_array_equal(a, b)
        assert len(streamed._frames) <= 3 * 30  # what was streamed is forgotten
    finally:
        held.close(), streamed.close()
