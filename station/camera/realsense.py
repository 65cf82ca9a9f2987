"""librealsense sources: the live D415 and playback of a ``.db3``/``.bag`` recording.

Both go through ``rs.pipeline``; the virtual D415 (``virtual.py``) produces the same
librealsense frames, so the conversions below are the single place where a librealsense
frameset becomes a :class:`~station.camera.base.Frameset`.
"""

from __future__ import annotations

import collections
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
from station.camera.diagnostics import explain, usb_problem
from station.camera.pairing import FramePairer
from station.camera.softdevice import intrinsics_to_rs  # noqa: F401 - re-exported
from station.camera.settings import CameraSettings, apply_settings, read_back, settings_json
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


def has_metadata(frame: rs.frame) -> bool:
    """True when the frame carries firmware metadata (frame counter and timestamps from the camera).

    Without kernel metadata support, librealsense numbers frames with a host counter and
    stamps them with system time, so frames lost before librealsense leave no gap.
    """
    return bool(frame.supports_frame_metadata(_META.frame_timestamp)
                or frame.supports_frame_metadata(_META.frame_counter))


def _copy_color(frame: rs.frame) -> tuple[StreamTimes, np.ndarray]:
    return stream_times(frame), np.array(frame.get_data(), dtype=np.uint8, copy=True)


def _copy_depth(frame: rs.frame) -> tuple[StreamTimes, np.ndarray]:
    return stream_times(frame), np.array(frame.get_data(), dtype=np.uint16, copy=True)


def offer_frameset(pairer: FramePairer, frames: rs.composite_frame) -> None:
    """Give each stream's frame of a librealsense frameset to ``pairer`` (new frames are copied).

    The copy is deliberate: it hands the frame back to librealsense at once, so a slow
    consumer can never starve the SDK's frame pool; stale repeats are never copied.
    """
    fs = frames.as_frameset()
    for stream, frame, take in (("color", fs.get_color_frame(), _copy_color),
                                ("depth", fs.get_depth_frame(), _copy_depth)):
        if frame:
            pairer.offer(stream, int(frame.get_frame_number()), lambda f=frame, t=take: t(f),
                         metadata=has_metadata(frame))


def frameset_from_rs(frames: rs.composite_frame, host_time: float) -> Frameset | None:
    """One librealsense frameset as a :class:`Frameset`, ``None`` if a stream is missing.

    For one-off conversions (tools, tests); sources use :class:`FramePairer`, which never
    returns a stale frame twice.
    """
    fs = frames.as_frameset()
    color, depth = fs.get_color_frame(), fs.get_depth_frame()
    if not color or not depth:
        return None
    (ct, cp), (dt, dp) = _copy_color(color), _copy_depth(depth)
    return Frameset(cp, dp, ct, dt, host_time)


def intrinsics_from_rs(i: rs.intrinsics) -> Intrinsics:
    return Intrinsics(i.width, i.height, i.ppx, i.ppy, i.fx, i.fy, i.model.name, tuple(i.coeffs))


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
    """Common reading loop of every pipeline-backed source: librealsense framesets -> pairs."""

    description = "realsense pipeline"

    def __init__(self) -> None:
        self._pipeline: rs.pipeline | None = None
        self._queue = rs.frame_queue(64, keep_frames=True)
        self.pairer = FramePairer(FPS)
        self._ready: collections.deque[Frameset] = collections.deque()

    def _start_pairing(self, fps: int) -> None:
        self.pairer = FramePairer(fps)
        self._ready.clear()

    def _wait(self, timeout_ms: int):
        return self._queue.try_wait_for_frame(timeout_ms)

    def read(self, timeout_s: float = 1.0) -> Frameset | None:
        """The next colour/depth pair never returned before; ``None`` if none came in time."""
        deadline = time.perf_counter() + timeout_s
        while not self._ready:
            remaining = max(1, int((deadline - time.perf_counter()) * 1000))
            ok, frames = self._wait(remaining)
            if not ok:
                self._on_timeout()
                return None
            offer_frameset(self.pairer, frames)
            self._ready.extend(self.pairer.pairs(time.perf_counter()))
            if not self._ready and time.perf_counter() >= deadline:
                return None
        return self._ready.popleft()

    def _on_timeout(self) -> None:
        """Called when no frame came in time: decide between 'slow' and 'gone'."""

    @property
    def metadata(self) -> bool | None:
        """False when frames come without firmware metadata (host counters; see docs/record.md)."""
        return self.pairer.metadata

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

    def __init__(self, serial: str | None = None, width: int = WIDTH, height: int = HEIGHT, fps: int = FPS,
                 settings: CameraSettings | None = None):
        super().__init__()
        self.serial, self.width, self.height, self.fps = serial, width, height, fps
        self.settings = settings or CameraSettings()
        self.description = f"RealSense {serial or '(first found)'} {width}x{height}@{fps}"
        self._misses = 0
        self._attrs: dict[str, object] = {}

    def _config(self) -> rs.config:
        devices = connected_devices()
        listing = ", ".join(f"{d.get('name')} serial {d.get('serial')} on USB {d.get('usb_type', '?')}"
                            for d in devices) or "none"
        if not devices:
            raise CameraError(
                "No RealSense camera found (devices seen: none). Plug the D415 into a USB 3 port, "
                "or use --camera virtual to try the station without one."
            )
        if self.serial and self.serial not in {d.get("serial") for d in devices}:
            raise CameraError(f"No RealSense camera with serial {self.serial!r}; devices seen: {listing}.")
        chosen = next((d for d in devices if not self.serial or d.get("serial") == self.serial), devices[0])
        usb = usb_problem(chosen.get("usb_type"), self.width, self.height, self.fps)
        cfg = rs.config()
        if self.serial:
            cfg.enable_device(self.serial)
        cfg.enable_stream(rs.stream.depth, self.width, self.height, rs.format.z16, self.fps)
        cfg.enable_stream(rs.stream.color, self.width, self.height, rs.format.rgb8, self.fps)
        if usb and not cfg.can_resolve(rs.pipeline_wrapper(rs.pipeline())):
            raise CameraError(usb)
        return cfg

    def start(self) -> Calibration:
        cfg = self._config()
        self._pipeline = rs.pipeline()
        camera = f"RealSense {self.serial or 'camera'}"
        try:
            if not cfg.can_resolve(rs.pipeline_wrapper(self._pipeline)):
                raise CameraError(
                    f"The camera cannot stream depth z16 + color rgb8 at {self.width}x{self.height}@{self.fps}; "
                    "the DSME-3D setting is 848x480@60 (needs USB 3)."
                )
            profile = self._pipeline.start(cfg, self._queue)
            readback = apply_settings(profile.get_device(), self.settings)
            calibration = calibration_from_profile(profile)
        except RuntimeError as err:
            self.stop()
            raise CameraError(explain(err, camera)) from None
        self._start_pairing(self.fps)
        self._attrs = {"camera_settings": settings_json(readback, self.settings),
                       "usb_type": calibration.device.get("usb_type", ""),
                       "firmware": calibration.device.get("firmware", "")}
        return calibration

    def trial_attrs(self) -> dict[str, object]:
        """Settings read back from the device, USB type, firmware and metadata state, for every trial."""
        return {**self._attrs, **({} if self.metadata is None else {"frame_metadata": bool(self.metadata)})}

    def recover(self) -> None:
        """After a stall (connected, no frames): restart streaming, as unplugging would.

        The frame pairer keeps its state, so frames after the restart are counted against the
        ones before it.  Raises :class:`CameraError` if the camera cannot be restarted.
        """
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            except RuntimeError:
                pass
            self._pipeline = None
        pairer = self.pairer
        self.start()
        self.pairer = pairer

    def _on_timeout(self) -> None:
        self._misses += 1
        if self._misses >= 3 and not connected_devices():
            raise CameraError("The RealSense camera stopped sending frames and is no longer connected "
                              "(unplugged?): check the cable and the USB 3 port.")


class PlaybackSource(_PipelineSource):
    """A librealsense recording (``.db3`` or ``.bag``), in real time or as fast as possible."""

    def __init__(self, path: str | Path, realtime: bool = True):
        super().__init__()
        self.path = check_file_exists(path, "recording")
        self.realtime = realtime
        self.description = f"playback of {self.path.name}" + ("" if realtime else " (fast)")
        self._playback: rs.playback | None = None
        self._attrs: dict[str, object] = {}
        # Fast playback must not drop: use a blocking hand-over instead of the callback queue.
        if not realtime:
            self._queue = None

    def start(self) -> Calibration:
        cfg = rs.config()
        cfg.enable_device_from_file(str(self.path), repeat_playback=False)
        self._pipeline = rs.pipeline()
        try:
            profile = self._pipeline.start(cfg, self._queue) if self._queue else self._pipeline.start(cfg)
            self._playback = profile.get_device().as_playback()
            self._playback.set_real_time(self.realtime)
            calibration = calibration_from_profile(profile)
            self._attrs = {"camera_settings": settings_json(read_back(profile.get_device()), CameraSettings())}
        except RuntimeError as err:
            self.stop()
            raise StationError(f"recording {str(self.path)!r} cannot be played back: "
                               f"{explain(err, 'the recording')}") from None
        self._start_pairing(calibration.fps)
        return calibration

    def trial_attrs(self) -> dict[str, object]:
        return {**self._attrs, **({} if self.metadata is None else {"frame_metadata": bool(self.metadata)})}

    def _wait(self, timeout_ms: int):
        if self._queue is not None:
            return self._queue.try_wait_for_frame(timeout_ms)
        return self._pipeline.try_wait_for_frames(timeout_ms)

    def _on_timeout(self) -> None:
        if self._playback is not None and self._playback.current_status() == rs.playback_status.stopped:
            raise EndOfStream(str(self.path))
