"""The virtual D415 produces real librealsense frames that behave like the camera's."""

from __future__ import annotations

import numpy as np
import pyrealsense2 as rs
import pytest

from station.camera import open_camera
from station.camera.base import CameraError
from station.camera.realsense import PlaybackSource, connected_devices
from station.checks import StationError
from station.record.pointcloud import deproject_depth
from swdev import SMALL, drain, grab, small_camera


def test_virtual_frames_carry_d415_streams_and_hardware_timestamps():
    cam = small_camera(10)
    cal = cam.start()
    try:
        frames = grab(cam, 5)
    finally:
        cam.stop()
    assert cal.depth_scale == pytest.approx(0.001)
    assert (cal.color_intrinsics.width, cal.color_intrinsics.height) == SMALL
    fs = frames[0]
    assert fs.color.shape == (SMALL[1], SMALL[0], 3) and fs.color.dtype == np.uint8
    assert fs.depth.shape == (SMALL[1], SMALL[0]) and fs.depth.dtype == np.uint16
    assert fs.color_times.domain == "hardware_clock"
    numbers = [f.color_times.number for f in frames]
    assert numbers == list(range(numbers[0], numbers[0] + 5))
    stamps = np.diff([f.color_times.timestamp_ms for f in frames])
    assert np.allclose(stamps, 1000 / 60, atol=0.001)  # the D415 clock counts microseconds
    # the metadata clocks the real D415 sends are there too
    assert not np.isnan(fs.color_times.frame_us) and not np.isnan(fs.color_times.sensor_us)
    # depth at ~0.6 m, as a face in front of the camera
    valid = fs.depth[fs.depth > 0]
    assert 450 < np.median(valid) < 750


def test_align_pointcloud_and_filters_work_on_virtual_frames():
    cam = small_camera(5)
    cal = cam.start()
    try:
        frames = cam.read_rs(2.0)
        depth = frames.get_depth_frame()
        aligned = rs.align(rs.stream.color).process(frames)
        assert aligned.get_depth_frame().get_width() == SMALL[0]
        filtered = rs.hole_filling_filter().process(rs.spatial_filter().process(depth)).as_depth_frame()
        assert filtered.get_height() == SMALL[1]
        cloud = rs.pointcloud().calculate(depth)
        rs_vertices = np.asarray(cloud.get_vertices()).view(np.float32).reshape(-1, 3)
        ours = deproject_depth(np.asanyarray(depth.get_data()), cal.depth_intrinsics, cal.depth_scale)
    finally:
        cam.stop()
    # the station rebuilds exactly what rs.pointcloud computes: storing depth is enough
    np.testing.assert_allclose(ours.reshape(-1, 3), rs_vertices, atol=1e-6)


def test_virtual_device_records_itself_to_db3_and_plays_back_identically(tmp_path):
    db3 = tmp_path / "virtual.db3"
    cam = small_camera(12, record_to=db3)
    cam.start()
    try:
        originals = drain(cam)
    finally:
        cam.stop()
    assert db3.exists() and db3.stat().st_size > 0
    playback = PlaybackSource(db3, realtime=False)
    cal = playback.start()
    try:
        played = drain(playback)
    finally:
        playback.stop()
    assert cal.depth_scale == pytest.approx(0.001)
    by_number = {f.color_times.number: f for f in played}
    common = [f for f in originals if f.color_times.number in by_number]
    assert len(common) >= len(originals) - 2  # the syncer may hold back the last frameset
    for original in common:
        copy = by_number[original.color_times.number]
        np.testing.assert_array_equal(copy.color, original.color)
        np.testing.assert_array_equal(copy.depth, original.depth)


def test_no_camera_gives_a_message_listing_devices():
    if connected_devices():
        pytest.skip("a RealSense camera is connected to this machine")
    with pytest.raises(CameraError, match="No RealSense camera found.*--camera virtual"):
        open_camera("realsense").start()


@pytest.mark.parametrize("kwargs, message", [
    ({"width": 1000, "height": 480}, "resolution"),
    ({"fps": 59}, "fps must be one of"),
])
def test_wrong_mode_is_refused_with_the_allowed_values(kwargs, message):
    with pytest.raises(StationError, match=message):
        open_camera("virtual", **kwargs)


def test_unknown_camera_and_missing_recording_are_named():
    with pytest.raises(StationError, match="camera must be one of"):
        open_camera("webcam")
    with pytest.raises(StationError, match="recording '.*nope.db3' does not exist"):
        open_camera("playback:/nonexistent/nope.db3")
