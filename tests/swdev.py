"""A tiny helper that makes hardware-free camera tests read like a specification.

In the spirit of librealsense's ``unit-tests/sw-dev/sw.py``: build a small virtual D415
(real librealsense ``software_device``) around a scene, and grab frames from it.
"""

from __future__ import annotations

from pathlib import Path

from station.camera.scene import MovingSurface
from station.camera.virtual import VirtualD415

SMALL = (424, 240)  # a D415 mode; keeps tests quick


def small_camera(n_frames: int | None = 30, *, realtime: bool = False, record_to: Path | None = None,
                 seed: int = 0) -> VirtualD415:
    """A virtual D415 at 424x240 filming a moving textured surface for ``n_frames`` frames."""
    scene = MovingSurface(*SMALL, n_frames=n_frames, seed=seed)
    return VirtualD415(scene, realtime=realtime, record_to=record_to)


def grab(camera, n: int) -> list:
    """The next ``n`` framesets of a started camera (skipping timeouts)."""
    frames = []
    while len(frames) < n:
        fs = camera.read(timeout_s=2.0)
        if fs is not None:
            frames.append(fs)
    return frames


def drain(camera) -> list:
    """Every frameset a started finite source still has, until its end of stream."""
    from station.camera.base import EndOfStream

    frames = []
    while True:
        try:
            fs = camera.read(timeout_s=2.0)
        except EndOfStream:
            return frames
        if fs is not None:
            frames.append(fs)
