"""What every camera source yields, whatever is behind it (live D415, recording, virtual D415).

A source hands out :class:`Frameset` objects: one color and one depth image captured together,
with every clock reading librealsense gives for each, plus the host's monotonic clock at the
moment the frameset reached us.  The host clock is the one clock shared with the PsychoPy
markers, so frames and events can be put on one time line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from station.checks import StationError

#: The capture mode of the paper (section 3.2): both streams at 848x480, 60 fps.
WIDTH, HEIGHT, FPS = 848, 480, 60

#: Resolutions and rates a D415 offers for depth z16 and color rgb8 at the same time.
D415_RESOLUTIONS = [(424, 240), (480, 270), (640, 360), (640, 480), (848, 480), (1280, 720)]
D415_FPS = [6, 15, 30, 60, 90]


@dataclass(frozen=True)
class StreamTimes:
    """Every clock reading of one frame.

    ``timestamp_ms`` is librealsense's chosen timestamp in ``domain``; ``sensor_us`` and
    ``frame_us`` are the firmware metadata (mid-exposure and start-of-readout) when the device
    reports them; ``arrival_ms`` is the system time the frame reached the host.  Missing
    readings are ``nan`` so that one table layout fits every source.
    """

    number: int
    timestamp_ms: float
    domain: str
    sensor_us: float = math.nan
    frame_us: float = math.nan
    arrival_ms: float = math.nan


@dataclass
class Frameset:
    """One color + depth pair as the recorder receives it."""

    color: np.ndarray  # (H, W, 3) uint8, RGB
    depth: np.ndarray  # (H, W) uint16, in depth units (see Calibration.depth_scale)
    color_times: StreamTimes
    depth_times: StreamTimes
    host_time: float  # time.perf_counter() when the frameset was received
    #: What happened to frames since the previous frameset (repeated/late/gaps/unpaired per
    #: stream, clock_wraps), from :class:`station.camera.pairing.FramePairer`.
    events: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole + distortion model in librealsense's terms (``rs2_intrinsics``)."""

    width: int
    height: int
    ppx: float
    ppy: float
    fx: float
    fy: float
    model: str  # rs.distortion name: 'none', 'brown_conrady', 'inverse_brown_conrady', ...
    coeffs: tuple[float, float, float, float, float]


@dataclass(frozen=True)
class Extrinsics:
    """Rigid transform between two streams: ``p_to = R @ p_from + t`` (metres).

    ``rotation`` is column-major, as librealsense stores it.
    """

    rotation: tuple[float, ...]  # 9 values, column-major
    translation: tuple[float, float, float]

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix."""
        m = np.eye(4)
        m[:3, :3] = np.asarray(self.rotation, dtype=float).reshape(3, 3, order="F")
        m[:3, 3] = self.translation
        return m


@dataclass(frozen=True)
class Calibration:
    """Everything needed to turn stored depth into metric point clouds aligned with color."""

    depth_intrinsics: Intrinsics
    color_intrinsics: Intrinsics
    depth_to_color: Extrinsics
    depth_scale: float  # metres per depth unit
    fps: int
    device: dict[str, str] = field(default_factory=dict)  # name, serial, firmware, product line


class CameraError(StationError):
    """The camera cannot be opened, was lost, or was asked for something it cannot do."""


class EndOfStream(Exception):
    """A finite source (a recording, a pre-rendered trial) has no more frames."""


class CameraSource(Protocol):
    """The one interface the recorder needs from a camera."""

    description: str

    def start(self) -> Calibration:
        """Open the device and start streaming; returns its calibration."""

    def read(self, timeout_s: float = 1.0) -> Frameset | None:
        """Next frameset; ``None`` on timeout; raises :class:`EndOfStream` or :class:`CameraError`."""

    def stop(self) -> None:
        """Stop streaming and release the device (idempotent)."""
