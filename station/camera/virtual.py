"""The virtual D415: a librealsense ``software_device`` fed by a :class:`Scene`.

Frames are real librealsense frames with D415-like intrinsics, extrinsics and depth units, so
``rs.align``, ``rs.pointcloud`` and the post-processing filters treat them exactly as they
treat the camera's.  In real-time mode a producer thread pushes frames on the device's own
60 fps clock whether or not anyone reads them, so a slow consumer loses frames as it would
with the real camera; in fast mode every :meth:`VirtualD415.read` renders the next frame, for
deterministic datasets and tests.  With ``record_to`` the device also writes itself to a
librealsense ``.db3`` through ``rs.recorder``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pyrealsense2 as rs

from station.camera.base import FPS, HEIGHT, WIDTH, Calibration, EndOfStream, Extrinsics, Frameset, Intrinsics
from station.camera.realsense import frameset_from_rs, intrinsics_to_rs
from station.camera.scene import MovingSurface, Scene

DEPTH_UNITS_M = 0.001
VIRTUAL_SERIAL = "VIRTUAL-D415-0001"


def d415_calibration(width: int = WIDTH, height: int = HEIGHT, fps: int = FPS) -> Calibration:
    """Calibration typical of a D415 at the given mode (values scaled from an 848x480 unit)."""
    s = width / 848.0
    depth = Intrinsics(width, height, 423.9 * s, 238.6 * s * height / 480 / s, 603.1 * s, 603.1 * s,
                       "brown_conrady", (0.0, 0.0, 0.0, 0.0, 0.0))
    color = Intrinsics(width, height, 427.2 * s, 244.9 * s * height / 480 / s, 611.4 * s, 611.6 * s,
                       "inverse_brown_conrady", (0.0, 0.0, 0.0, 0.0, 0.0))
    # Color sits ~15 mm to the side of the left imager; rotation is the identity.
    ext = Extrinsics((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0), (0.0148, 0.0001, 0.0003))
    info = {"name": "Virtual Intel RealSense D415", "serial": VIRTUAL_SERIAL,
            "firmware": "5.16.0.1-virtual", "product_line": "D400"}
    return Calibration(depth, color, ext, DEPTH_UNITS_M, fps, info)


class DepthReprojector:
    """Moves a color-frame z-buffer into the depth camera's view (what the D415 would measure).

    For each depth pixel we look up the color pixel that sees the same surface point, by a
    fixed-point iteration on the unknown depth (two passes of ``cv2.remap``); pixels whose
    surface the color camera cannot see become holes, as at the D415's occlusion edges.

    It runs on every frame of the live virtual camera, so the maths is arranged for speed: a
    depth pixel's point in the color camera is linear in its depth (``a * z + t`` per
    pixel, ``a`` precomputed), and the first pass, at the scene's median distance, is cached
    per millimetre of that distance.
    """

    def __init__(self, calib: Calibration):
        d, c = calib.depth_intrinsics, calib.color_intrinsics
        m = calib.depth_to_color.matrix()
        rot, t = m[:3, :3].astype(np.float32), m[:3, 3].astype(np.float32)
        v, u = np.mgrid[0 : d.height, 0 : d.width].astype(np.float32)
        rays = np.stack([(u - d.ppx) / d.fx, (v - d.ppy) / d.fy, np.ones_like(u)])  # depth rays
        a = np.einsum("ij,jhw->ihw", rot, rays).astype(np.float32)  # point in color frame = a * z + t
        self._ax, self._ay, self._az = a[0] * np.float32(c.fx), a[1] * np.float32(c.fy), a[2]
        self._tx, self._ty, self._tz = (np.float32(t[0] * c.fx), np.float32(t[1] * c.fy), np.float32(t[2]))
        self._ppx, self._ppy = np.float32(c.ppx), np.float32(c.ppy)
        self._first_pass: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _maps(self, z: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Color-image coordinates of every depth pixel if its surface were at depth ``z``."""
        den, mx, my = (np.empty_like(self._ax) for _ in range(3))
        np.multiply(self._az, z, out=den)
        den += self._tz
        np.maximum(den, np.float32(1e-6), out=den)
        np.reciprocal(den, out=den)
        np.multiply(self._ax, z, out=mx)
        mx += self._tx
        mx *= den
        mx += self._ppx
        np.multiply(self._ay, z, out=my)
        my += self._ty
        my *= den
        my += self._ppy
        return mx, my

    def __call__(self, z_color: np.ndarray) -> np.ndarray:
        sample = z_color[::8, ::8]
        valid = sample[sample > 0]
        z0_mm = int(round(float(np.median(valid)) * 1000)) if valid.size else 1000
        if z0_mm not in self._first_pass:
            if len(self._first_pass) > 64:
                self._first_pass.clear()
            self._first_pass[z0_mm] = self._maps(np.float32(z0_mm / 1000))
        mx, my = self._first_pass[z0_mm]
        z = cv2.remap(z_color, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        mx, my = self._maps(z)
        return cv2.remap(z_color, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


class VirtualD415:
    """A software D415 streaming a scene; see the module docstring."""

    def __init__(
        self,
        scene: Scene | None = None,
        *,
        realtime: bool = True,
        fps: int = FPS,
        record_to: str | Path | None = None,
        queue_size: int = 8,
    ):
        self.scene = scene or MovingSurface()
        self.realtime, self.fps = realtime, fps
        self.record_to = Path(record_to) if record_to else None
        self.description = f"virtual D415 ({self.scene.name}{', real time' if realtime else ', fast'})"
        height, width = self.scene.render(0)[1].shape
        self.calibration = d415_calibration(width, height, fps)
        self._reproject = DepthReprojector(self.calibration)
        self._queue = rs.frame_queue(queue_size, keep_frames=True)
        self._next_index = 0
        self._stop = threading.Event()
        self._producer: threading.Thread | None = None
        self._device = self._recorder = None
        self._sensors: list = []
        self.frames_pushed = 0

    # -- device construction ------------------------------------------------------------
    def _build_device(self) -> None:
        cal = self.calibration
        dev = rs.software_device()
        for key, value in (("name", rs.camera_info.name), ("serial", rs.camera_info.serial_number),
                           ("firmware", rs.camera_info.firmware_version),
                           ("product_line", rs.camera_info.product_line)):
            dev.register_info(value, cal.device[key])
        self._depth_sensor = dev.add_sensor("Stereo Module")
        self._color_sensor = dev.add_sensor("RGB Camera")
        self._depth_profile = self._add_stream(self._depth_sensor, rs.stream.depth, rs.format.z16, 2,
                                               cal.depth_intrinsics, uid=0)
        self._color_profile = self._add_stream(self._color_sensor, rs.stream.color, rs.format.rgb8, 3,
                                               cal.color_intrinsics, uid=1)
        self._depth_sensor.add_read_only_option(rs.option.depth_units, cal.depth_scale)
        ext = rs.extrinsics()
        ext.rotation, ext.translation = list(cal.depth_to_color.rotation), list(cal.depth_to_color.translation)
        self._depth_profile.register_extrinsics_to(self._color_profile, ext)
        dev.create_matcher(rs.matchers.default)
        self._device = dev

    def _add_stream(self, sensor, stream, fmt, bpp, intr: Intrinsics, uid: int) -> rs.video_stream_profile:
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid, vs.fmt, vs.bpp = stream, 0, uid, fmt, bpp
        vs.width, vs.height, vs.fps = intr.width, intr.height, self.fps
        vs.intrinsics = intrinsics_to_rs(intr)
        return rs.video_stream_profile(sensor.add_video_stream(vs, True))

    # -- CameraSource ---------------------------------------------------------------------
    def start(self) -> Calibration:
        self._build_device()
        device = self._device
        if self.record_to is not None:
            self.record_to.parent.mkdir(parents=True, exist_ok=True)
            self._recorder = rs.recorder(str(self.record_to), self._device)
            device = self._recorder
        self._syncer = rs.syncer(16)
        sensors = {s.name: s for s in device.query_sensors()}
        self._sensors = [sensors["Stereo Module"], sensors["RGB Camera"]]
        self._sensors[0].open(self._depth_profile)
        self._sensors[1].open(self._color_profile)
        for s in self._sensors:
            s.start(self._syncer)
        self._prime_syncer()
        if self.realtime:
            self._producer = threading.Thread(target=self._produce, name="virtual-d415", daemon=True)
            self._producer.start()
        return self.calibration

    def _prime_syncer(self) -> None:
        """The syncer learns which streams exist from their first frames; spend frame 0 on that."""
        self._push(0, *self._render(0))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            ok, _ = self._syncer.try_wait_for_frames(50)
            if not ok:
                break
        self._next_index = 1

    def _render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        color, z_color = self.scene.render(index)
        z_depth = self._reproject(np.asarray(z_color, dtype=np.float32))
        depth = np.round(z_depth / self.calibration.depth_scale).astype(np.uint16)
        return np.ascontiguousarray(color, dtype=np.uint8), depth

    def _push(self, index: int, color: np.ndarray, depth: np.ndarray) -> None:
        """Hand one color + depth pair to librealsense, stamped on the device clock."""
        timestamp_ms = index * 1000.0 / self.fps
        for sensor, profile, pixels, bpp in ((self._depth_sensor, self._depth_profile, depth, 2),
                                             (self._color_sensor, self._color_profile, color, 3)):
            sensor.set_metadata(rs.frame_metadata_value.frame_timestamp, int(timestamp_ms * 1000))
            sensor.set_metadata(rs.frame_metadata_value.sensor_timestamp, int(timestamp_ms * 1000) - 4000)
            frame = rs.software_video_frame()
            frame.pixels, frame.bpp, frame.stride = pixels, bpp, pixels.shape[1] * bpp
            frame.timestamp, frame.domain, frame.frame_number = timestamp_ms, rs.timestamp_domain.hardware_clock, index
            frame.profile = profile
            sensor.on_video_frame(frame)
        self.frames_pushed += 1

    def _ended(self, index: int) -> bool:
        return self.scene.n_frames is not None and index >= self.scene.n_frames

    def _produce(self) -> None:
        """Real-time producer: one frame per 1/fps on the device clock, skipping when late."""
        t0 = time.perf_counter() - self._next_index / self.fps
        index = self._next_index
        while not self._stop.is_set() and not self._ended(index):
            delay = t0 + index / self.fps - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self._push(index, *self._render(index))
            self._forward()
            index = max(index + 1, int((time.perf_counter() - t0) * self.fps))
        self._next_index = index

    def _forward(self) -> None:
        """Move every completed frameset from the syncer to the consumer queue (which may drop)."""
        while True:
            ok, frames = self._syncer.try_wait_for_frames(0 if not self.realtime else 5)
            if not ok:
                return
            frames.keep()
            self._queue.enqueue(frames)

    def read_rs(self, timeout_s: float = 1.0) -> rs.composite_frame | None:
        """Next frameset as librealsense frames (for ``rs.align``, ``rs.pointcloud``, filters)."""
        if not self.realtime:
            if self._ended(self._next_index):
                raise EndOfStream(self.scene.name)
            self._push(self._next_index, *self._render(self._next_index))
            self._next_index += 1
            ok, frames = self._syncer.try_wait_for_frames(int(timeout_s * 1000))
        else:
            ok, frames = self._queue.try_wait_for_frame(int(timeout_s * 1000))
            if not ok and self._producer is not None and not self._producer.is_alive():
                raise EndOfStream(self.scene.name)
        if not ok:
            return None
        return frames.as_frameset()

    def read(self, timeout_s: float = 1.0) -> Frameset | None:
        frames = self.read_rs(timeout_s)
        return None if frames is None else frameset_from_rs(frames, time.perf_counter())

    def stop(self) -> None:
        self._stop.set()
        if self._producer is not None:
            self._producer.join(timeout=2)
            self._producer = None
        for sensor in self._sensors:
            try:
                sensor.stop()
                sensor.close()
            except RuntimeError:
                pass
        self._sensors = []
        self._recorder = None  # closes the .db3
        self._device = None

    def __repr__(self) -> str:
        return f"<VirtualD415 {self.description} serial={self.calibration.device['serial']}>"
