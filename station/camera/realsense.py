"""librealsense sources: the live D415 and playback of a ``.db3``/``.bag`` recording.

Both go through ``rs.pipeline``; the virtual D415 (``virtual.py``) produces the same
librealsense frames, so the conversions below are the single place where a librealsense
frameset becomes a :class:`~station.camera.base.Frameset`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pyrealsense2 as rs

from station.camera.base import (
    FPS,
    HEIGHT,
    WIDTH,
    Calibration,
    CameraError,
    EndOfStream,
    Extrinsics,
    Frameset,
    Intrinsics,
    StreamTimes,
)
from station.checks import StationError, check_file_exists

_META = rs.frame_metadata_value


def _metadata(frame: rs.frame, key: rs.frame_metadata_value) -> float:
    return float(frame.get_frame_metadata(key)) if frame.supports_frame_metadata(key) else math.nan


def stream_times(frame: rs.frame) -> StreamTimes:
    """Every timestamp a librealsense frame carries."""
    return StreamTimes(
        number=int(frame.get_frame_number()),
        timestamp_ms=float(frame.get_timestamp()),
        domain=frame.get_frame_timestamp_domain().name,
        sensor_us=_metadata(frame, _META.sensor_timestamp),
        frame_us=_metadata(frame, _META.frame_timestamp),
        arrival_ms=_metadata(frame, _META.time_of_arrival),
    )


def frameset_from_rs(frames: rs.composite_frame, host_time: float) -> Frameset | None:
    """Copy a librealsense frameset out of the SDK's pool; ``None`` if a stream is missing.

    The copy is deliberate: it hands the frame back to librealsense at once, so a slow
    consumer can never starve the SDK's frame pool.
    """
    fs = frames.as_frameset()
    color, depth = fs.get_color_frame(), fs.get_depth_frame()
    if not color or not depth:
        return None
    return Frameset(
        color=np.array(color.get_data(), dtype=np.uint8, copy=True),
        depth=np.array(depth.get_data(), dtype=np.uint16, copy=True),
        color_times=stream_times(color),
        depth_times=stream_times(depth),
        host_time=host_time,
    )


def intrinsics_from_rs(i: rs.intrinsics) -> Intrinsics:
    return Intrinsics(i.width, i.height, i.ppx, i.ppy, i.fx, i.fy, i.model.name, tuple(i.coeffs))


def intrinsics_to_rs(i: Intrinsics) -> rs.intrinsics:
    out = rs.intrinsics()
    out.width, out.height, out.ppx, out.ppy, out.fx, out.fy = i.width, i.height, i.ppx, i.ppy, i.fx, i.fy
    out.model = getattr(rs.distortion, i.model)
    out.coeffs = list(i.coeffs)
    return out


def device_info(device: rs.device) -> dict[str, str]:
    """The identity fields of a device that it supports."""
    fields = {
        "name": rs.camera_info.name,
        "serial": rs.camera_info.serial_number,
        "firmware": rs.camera_info.firmware_version,
        "product_line": rs.camera_info.product_line,
        "usb_type": rs.camera_info.usb_type_descriptor,
    }
    return {k: device.get_info(v) for k, v in fields.items() if device.supports(v)}


def calibration_from_profile(profile: rs.pipeline_profile) -> Calibration:
    """Calibration of a started pipeline (live camera or recording)."""
    depth = profile.get_stream(rs.stream.depth).as_video_stream_profile()
    color = profile.get_stream(rs.stream.color).as_video_stream_profile()
    ext = depth.get_extrinsics_to(color)
    device = profile.get_device()
    return Calibration(
        depth_intrinsics=intrinsics_from_rs(depth.get_intrinsics()),
        color_intrinsics=intrinsics_from_rs(color.get_intrinsics()),
        depth_to_color=Extrinsics(tuple(ext.rotation), tuple(ext.translation)),
        depth_scale=float(device.first_depth_sensor().get_depth_scale()),
        fps=int(depth.fps()),
        device=device_info(device),
    )


def connected_devices() -> list[dict[str, str]]:
    """Identity of every RealSense device librealsense can see right now."""
    return [device_info(d) for d in rs.context().query_devices()]


class _PipelineSource:
    """Common reading loop of every pipeline-backed source."""

    description = "realsense pipeline"

    def __init__(self) -> None:
        self._pipeline: rs.pipeline | None = None
        self._queue = rs.frame_queue(64, keep_frames=True)

    def read(self, timeout_s: float = 1.0) -> Frameset | None:
        ok, frame = self._queue.try_wait_for_frame(int(timeout_s * 1000))
        if not ok:
            self._on_timeout()
            return None
        return frameset_from_rs(frame, time.perf_counter())

    def _on_timeout(self) -> None:
        """Called when no frame came in time: decide between 'slow' and 'gone'."""

    def stop(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            except RuntimeError:
                pass  # already stopped (device unplugged or end of file)
            self._pipeline = None


class LiveD415(_PipelineSource):
    """A real D415 through ``rs.pipeline``.

    Auto-exposure priority is switched off so the color stream keeps 60 fps in dim rooms,
    and frames go through a ``keep_frames`` queue that we drain by copying.
    """

    def __init__(self, serial: str | None = None, width: int = WIDTH, height: int = HEIGHT, fps: int = FPS):
        super().__init__()
        self.serial, self.width, self.height, self.fps = serial, width, height, fps
        self.description = f"RealSense {serial or '(first found)'} {width}x{height}@{fps}"
        self._misses = 0

    def _config(self) -> rs.config:
        devices = connected_devices()
        listing = ", ".join(f"{d.get('name')} serial {d.get('serial')}" for d in devices) or "none"
        if not devices:
            raise CameraError(
                "No RealSense camera found (devices seen: none). Plug the D415 into a USB 3 port, "
                "or use --camera virtual to try the station without one."
            )
        if self.serial and self.serial not in {d.get("serial") for d in devices}:
            raise CameraError(f"No RealSense camera with serial {self.serial!r}; devices seen: {listing}.")
        cfg = rs.config()
        if self.serial:
            cfg.enable_device(self.serial)
        cfg.enable_stream(rs.stream.depth, self.width, self.height, rs.format.z16, self.fps)
        cfg.enable_stream(rs.stream.color, self.width, self.height, rs.format.rgb8, self.fps)
        return cfg

    def start(self) -> Calibration:
        cfg = self._config()
        self._pipeline = rs.pipeline()
        if not cfg.can_resolve(rs.pipeline_wrapper(self._pipeline)):
            raise CameraError(
                f"The camera cannot stream depth z16 + color rgb8 at {self.width}x{self.height}@{self.fps}; "
                "the DSME-3D setting is 848x480@60."
            )
        profile = self._pipeline.start(cfg, self._queue)
        color_sensor = profile.get_device().first_color_sensor()
        if color_sensor.supports(rs.option.auto_exposure_priority):
            color_sensor.set_option(rs.option.auto_exposure_priority, 0)
        return calibration_from_profile(profile)

    def _on_timeout(self) -> None:
        self._misses += 1
        if self._misses >= 3 and not connected_devices():
            raise CameraError("The RealSense camera stopped sending frames and is no longer connected.")


class PlaybackSource(_PipelineSource):
    """A librealsense recording (``.db3`` or ``.bag``), in real time or as fast as possible."""

    def __init__(self, path: str | Path, realtime: bool = True):
        super().__init__()
        self.path = check_file_exists(path, "recording")
        self.realtime = realtime
        self.description = f"playback of {self.path.name}" + ("" if realtime else " (fast)")
        self._playback: rs.playback | None = None
        # Fast playback must not drop: use a blocking hand-over instead of the callback queue.
        if not realtime:
            self._queue = None

    def start(self) -> Calibration:
        cfg = rs.config()
        cfg.enable_device_from_file(str(self.path), repeat_playback=False)
        self._pipeline = rs.pipeline()
        try:
            profile = self._pipeline.start(cfg, self._queue) if self._queue else self._pipeline.start(cfg)
        except RuntimeError as err:
            raise StationError(f"recording {str(self.path)!r} cannot be played back: {err}.") from err
        self._playback = profile.get_device().as_playback()
        self._playback.set_real_time(self.realtime)
        return calibration_from_profile(profile)

    def read(self, timeout_s: float = 1.0) -> Frameset | None:
        if self._queue is not None:
            return super().read(timeout_s)
        ok, frames = self._pipeline.try_wait_for_frames(int(timeout_s * 1000))
        if not ok:
            self._on_timeout()
            return None
        return frameset_from_rs(frames, time.perf_counter())

    def _on_timeout(self) -> None:
        if self._playback is not None and self._playback.current_status() == rs.playback_status.stopped:
            raise EndOfStream(str(self.path))
