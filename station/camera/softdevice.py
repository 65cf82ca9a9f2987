"""The one librealsense ``software_device`` builder of the station.

A software device is a real librealsense device whose frames we supply: ``rs.align``,
``rs.pointcloud``, the post-processing filters, ``rs.syncer`` and ``rs.recorder`` treat its
frames exactly as a D415's.  The virtual D415 (:mod:`station.camera.virtual`) builds one with
a depth and a colour sensor; offline 3D processing (:mod:`station.process.face3d`) builds a
depth-only one to run librealsense's filters on recorded depth.  Both go through
:class:`SoftDevice`, so intrinsics, depth units, extrinsics and metadata are set one way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyrealsense2 as rs

from station.camera.base import Calibration, Intrinsics

_STREAM = {"depth": (rs.stream.depth, rs.format.z16, 2, "Stereo Module", 0),
           "color": (rs.stream.color, rs.format.rgb8, 3, "RGB Camera", 1)}
_DOMAIN = {"hardware_clock": rs.timestamp_domain.hardware_clock, "system_time": rs.timestamp_domain.system_time,
           "global_time": rs.timestamp_domain.global_time}
_INFO = (("name", rs.camera_info.name), ("serial", rs.camera_info.serial_number),
         ("firmware", rs.camera_info.firmware_version), ("product_line", rs.camera_info.product_line),
         ("usb_type", rs.camera_info.usb_type_descriptor))


def intrinsics_to_rs(i: Intrinsics) -> rs.intrinsics:
    out = rs.intrinsics()
    out.width, out.height, out.ppx, out.ppy, out.fx, out.fy = i.width, i.height, i.ppx, i.ppy, i.fx, i.fy
    out.model = getattr(rs.distortion, i.model)
    out.coeffs = list(i.coeffs)
    return out


@dataclass
class SoftDevice:
    """A built software device: its sensors and stream profiles by stream name ('depth', 'color')."""

    device: rs.software_device
    sensors: dict[str, rs.software_sensor]
    profiles: dict[str, rs.video_stream_profile]
    fps: int
    _opened: list = field(default_factory=list)

    def start(self, target, recorder_path: str | None = None) -> "rs.recorder | None":
        """Open every sensor and start it into ``target`` (a syncer, a frame queue or a callback).

        With ``recorder_path`` the device is wrapped by ``rs.recorder`` first, so every frame
        pushed is also written to that ``.db3`` (the recorder object must be kept alive).
        """
        recorder = rs.recorder(recorder_path, self.device, True) if recorder_path else None
        by_name = {s.name: s for s in (recorder or self.device).query_sensors()}
        for stream, sensor in self.sensors.items():
            handle = by_name[sensor.name] if recorder else sensor
            handle.open(self.profiles[stream])
            handle.start(target)
            self._opened.append(handle)
        return recorder

    def push(self, stream: str, pixels: np.ndarray, number: int, timestamp_ms: float,
             domain: str = "hardware_clock", metadata: dict[str, int] | None = None) -> None:
        """Hand one frame to librealsense.  ``metadata`` maps rs.frame_metadata_value names to values;
        ``None`` sends the frame without metadata (as a camera without the kernel patch)."""
        sensor = self.sensors[stream]
        for key, value in (metadata or {}).items():
            sensor.set_metadata(getattr(rs.frame_metadata_value, key), int(value))
        bpp = _STREAM[stream][2]
        frame = rs.software_video_frame()
        frame.pixels, frame.bpp, frame.stride = pixels, bpp, pixels.shape[1] * bpp
        frame.timestamp, frame.domain, frame.frame_number = float(timestamp_ms), _DOMAIN[domain], int(number)
        frame.profile = self.profiles[stream]
        sensor.on_video_frame(frame)

    def stop(self) -> None:
        for sensor in self._opened:
            try:
                sensor.stop()
                sensor.close()
            except RuntimeError:
                pass
        self._opened = []


def build_software_device(calibration: Calibration, streams: tuple[str, ...] = ("depth", "color"),
                          fps: int | None = None) -> SoftDevice:
    """A software device with the calibration's intrinsics, depth units, extrinsics and identity."""
    fps = int(fps or calibration.fps)
    dev = rs.software_device()
    for key, info in _INFO:
        if calibration.device.get(key):
            dev.register_info(info, str(calibration.device[key]))
    sensors, profiles = {}, {}
    for stream in streams:
        kind, fmt, bpp, sensor_name, uid = _STREAM[stream]
        intr = calibration.depth_intrinsics if stream == "depth" else calibration.color_intrinsics
        sensor = dev.add_sensor(sensor_name)
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid, vs.fmt, vs.bpp = kind, 0, uid, fmt, bpp
        vs.width, vs.height, vs.fps = intr.width, intr.height, fps
        vs.intrinsics = intrinsics_to_rs(intr)
        profiles[stream] = rs.video_stream_profile(sensor.add_video_stream(vs, True))
        sensors[stream] = sensor
    if "depth" in sensors:
        sensors["depth"].add_read_only_option(rs.option.depth_units, float(calibration.depth_scale))
    if "depth" in profiles and "color" in profiles:
        ext = rs.extrinsics()
        ext.rotation, ext.translation = list(calibration.depth_to_color.rotation), list(calibration.depth_to_color.translation)
        profiles["depth"].register_extrinsics_to(profiles["color"], ext)
        dev.create_matcher(rs.matchers.default)
    return SoftDevice(dev, sensors, profiles, fps)
