"""Camera settings: what a lab chooses, what the device reports back, what every trial stores.

The depth a D415 measures depends on how it was configured (a High Accuracy preset leaves holes
on faces, librealsense #1698), so a trial file must say how its depth was made.
:class:`CameraSettings` is embedded in the protocol (``camera.settings``) and filled from
``station record`` flags; :func:`apply_settings` sets each option the device supports and
returns what the device reports back, which the recorder stores with the librealsense
version, firmware and USB type.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from station.checks import StationError

#: rs.rs400_visual_preset names a D415 offers.
VISUAL_PRESETS = ("custom", "default", "hand", "high_accuracy", "high_density", "medium_density")
POWER_LINE = {"off": 0, "50hz": 1, "60hz": 2, "auto": 3}


@dataclass(frozen=True)
class CameraSettings:
    """Settings applied at start.  ``None`` leaves the device's own value (and still records it)."""

    visual_preset: str | None = None  # one of VISUAL_PRESETS
    advanced_json: str | None = None  # path to an advanced-mode JSON (realsense-viewer export)
    laser_power: float | None = None  # mW, 0-360 on a D415
    emitter: bool | None = None
    color_exposure: float | None = None  # microseconds x 100 (librealsense units); None = auto
    color_gain: float | None = None
    color_auto_exposure: bool | None = None
    power_line: str | None = None  # one of POWER_LINE
    depth_units: float | None = None  # metres per z16 unit (0.001 default; 0.0001 for finer steps)

    def __post_init__(self) -> None:
        if self.visual_preset is not None and self.visual_preset not in VISUAL_PRESETS:
            raise StationError(f"visual preset must be one of {', '.join(VISUAL_PRESETS)}, got {self.visual_preset!r}.")
        if self.power_line is not None and self.power_line not in POWER_LINE:
            raise StationError(f"power-line frequency must be one of {', '.join(POWER_LINE)}, got {self.power_line!r}.")
        if self.laser_power is not None and not 0 <= self.laser_power <= 360:
            raise StationError(f"laser power must be between 0 and 360 mW, got {self.laser_power!r}.")
        if self.depth_units is not None and not 1e-6 <= self.depth_units <= 0.01:
            raise StationError(f"depth units must be between 1e-6 and 0.01 m, got {self.depth_units!r}.")
        if self.advanced_json is not None and not Path(self.advanced_json).is_file():
            raise StationError(f"advanced-mode JSON {self.advanced_json!r} does not exist.")

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> "CameraSettings":
        """From a protocol's ``camera.settings`` mapping; unknown keys are named with the allowed ones."""
        raw = dict(raw or {})
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise StationError(f"unknown camera setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}.")
        return cls(**raw)

    def requested(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def apply_settings(device, settings: CameraSettings) -> dict[str, Any]:
    """Apply ``settings`` to a started librealsense device; returns what the device reports.

    Options a device (or a recording) does not support are skipped and reported as absent.
    """
    import pyrealsense2 as rs

    depth = device.first_depth_sensor() if device.query_sensors() else None
    try:
        color = device.first_color_sensor()
    except RuntimeError:
        color = None
    if settings.advanced_json:
        if not device.supports(rs.camera_info.advanced_mode):
            raise StationError("this camera has no advanced mode; remove advanced_json from the settings.")
        advanced = rs.rs400_advanced_mode(device)
        advanced.load_json(Path(settings.advanced_json).read_text())

    def put(sensor, option, value) -> None:
        if sensor is not None and value is not None and sensor.supports(option) and not sensor.is_option_read_only(option):
            sensor.set_option(option, float(value))

    if settings.visual_preset is not None:
        put(depth, rs.option.visual_preset, int(getattr(rs.rs400_visual_preset, settings.visual_preset)))
    put(depth, rs.option.emitter_enabled, None if settings.emitter is None else int(settings.emitter))
    put(depth, rs.option.laser_power, settings.laser_power)
    put(depth, rs.option.depth_units, settings.depth_units)
    if settings.color_exposure is not None or settings.color_gain is not None:
        put(color, rs.option.enable_auto_exposure, 0)
    elif settings.color_auto_exposure is not None:
        put(color, rs.option.enable_auto_exposure, int(settings.color_auto_exposure))
    put(color, rs.option.exposure, settings.color_exposure)
    put(color, rs.option.gain, settings.color_gain)
    put(color, rs.option.power_line_frequency, None if settings.power_line is None else POWER_LINE[settings.power_line])
    put(color, rs.option.auto_exposure_priority, 0)  # keep 60 fps in dim rooms
    return read_back(device)


def read_back(device) -> dict[str, Any]:
    """Every option of interest as the device reports it now (absent when unsupported)."""
    import pyrealsense2 as rs

    out: dict[str, Any] = {"requested_by": "station"}
    names = {"depth": ("visual_preset", "emitter_enabled", "laser_power", "depth_units", "exposure", "gain",
                       "enable_auto_exposure"),
             "color": ("enable_auto_exposure", "exposure", "gain", "power_line_frequency", "auto_exposure_priority",
                       "white_balance", "enable_auto_white_balance")}
    for sensor in device.query_sensors():
        kind = "depth" if sensor.is_depth_sensor() else "color" if sensor.is_color_sensor() else None
        if kind is None:
            continue
        for name in names[kind]:
            option = getattr(rs.option, name)
            if sensor.supports(option):
                try:
                    out[f"{kind}.{name}"] = float(sensor.get_option(option))
                except RuntimeError:
                    pass
        if kind == "depth" and sensor.supports(rs.option.visual_preset):
            try:
                out["depth.visual_preset_name"] = sensor.get_option_value_description(
                    rs.option.visual_preset, sensor.get_option(rs.option.visual_preset))
            except RuntimeError:
                pass
    return out


def settings_json(readback: dict[str, Any], settings: CameraSettings) -> str:
    return json.dumps({"requested": settings.requested(), "device": readback}, sort_keys=True)
