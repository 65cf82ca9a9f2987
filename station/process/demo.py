"""A tiny trial with a real face and known movements, for tests and demos of the offline path.

``station.synth`` builds full synthetic participants; this module only needs a face photo that
an installed package ships (scikit-image's astronaut), a face-shaped depth surface and a
brow-raise warp, so processing tests stay small and do not depend on the synthesis area.
The trial is written like a real one: frames pass through the virtual D415 (a librealsense
``software_device``) and the crash-safe :class:`~station.record.writer.TrialWriter`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from station.camera.base import EndOfStream
from station.record import schema
from station.record.writer import TrialWriter


class AstronautScene:
    """The astronaut photo at ~0.6 m with a face-shaped depth; brows rise during ``events``."""

    name = "astronaut"

    def __init__(self, events: list[dict], n_frames: int, width: int = 848, height: int = 480,
                 amplitude_px: float = 4.0, head_shift_px: float = 0.0):
        from skimage import data

        photo = data.astronaut()
        scale = 1.7
        photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        cx, cy = int(222 * scale), int(128 * scale)  # face centre in the photo
        x0, y0 = max(0, cx - width // 2), max(0, cy - height // 2)
        self.base = np.ascontiguousarray(photo[y0:y0 + height, x0:x0 + width])
        self.height, self.width = self.base.shape[:2]
        self.n_frames, self.events, self.amplitude, self.head_shift = n_frames, events, amplitude_px, head_shift_px
        fx, fy = cx - x0, cy - y0
        yy, xx = np.mgrid[0:self.height, 0:self.width].astype(np.float32)
        self._xx, self._yy = xx, yy
        # face dome (ellipsoid) + nose bump, metres, in front of a wall at 1.2 m
        r2 = ((xx - fx) / (70 * scale)) ** 2 + ((yy - fy) / (95 * scale)) ** 2
        face = 0.60 - 0.05 * np.sqrt(np.clip(1 - r2, 0, None))
        nose = 0.025 * np.exp(-(((xx - fx) / (9 * scale)) ** 2 + ((yy - fy - 5 * scale) / (16 * scale)) ** 2))
        self.depth = np.where(r2 < 1, face - nose, 1.2).astype(np.float32)
        # brow region: a band above the eyes
        self._brow = np.exp(-(((xx - fx) / (45 * scale)) ** 2 + ((yy - (fy - 40 * scale)) / (9 * scale)) ** 2)
                            ).astype(np.float32)

    def intensity(self, frame_number: int) -> float:
        """Piecewise-linear onset -> apex -> offset profile of the brow raise."""
        for ev in self.events:
            on, ap, off = ev["onset"], ev["apex"], ev["offset"]
            if on <= frame_number <= ap:
                return (frame_number - on) / max(1, ap - on)
            if ap < frame_number <= off:
                return (off - frame_number) / max(1, off - ap)
        return 0.0

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        lift = self.amplitude * self.intensity(index)
        shift = self.head_shift * index / max(1, self.n_frames)
        map_x = self._xx - shift
        map_y = self._yy + lift * self._brow
        color = cv2.remap(self.base, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        depth = cv2.remap(self.depth, map_x, self._yy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        return color, depth


def default_events() -> list[dict]:
    """One micro (1+2, 250 ms) and one macro (1+2, 800 ms) movement, in device frame numbers."""
    return [
        {"onset": 20, "apex": 27, "offset": 35, "aus": "1+2", "objective_class": "II", "emotion": "surprise",
         "kind": "micro"},
        {"onset": 60, "apex": 80, "offset": 108, "aus": "1+2", "objective_class": "II", "emotion": "surprise",
         "kind": "macro"},
    ]


def write_demo_trial(path: str | Path, n_frames: int = 120, events: list[dict] | None = None,
                     attrs: dict | None = None, **scene_kwargs) -> Path:
    """Film the scene with the virtual D415 (fast mode) and write a complete trial file."""
    from station.camera.virtual import VirtualD415

    events = default_events() if events is None else events
    camera = VirtualD415(AstronautScene(events, n_frames, **scene_kwargs), realtime=False)
    calibration = camera.start()
    writer = TrialWriter(path, calibration, attrs=attrs or schema.identity_attrs("demo", "", (schema.parse_trial_file_name(path) or (1,))[0], "demo-clip",
                                                                                 **{schema.CLIP_EMOTION: "surprise"}),
                         ground_truth=events)
    try:
        while True:
            try:
                fs = camera.read(2.0)
            except EndOfStream:
                break
            if fs is not None:
                writer.append(fs)
        return writer.close()
    finally:
        camera.stop()
