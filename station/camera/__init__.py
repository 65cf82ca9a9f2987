"""Camera sources: live D415, librealsense recordings, and the virtual D415."""

from __future__ import annotations

from station.camera.base import (
    D415_FPS,
    D415_RESOLUTIONS,
    FPS,
    HEIGHT,
    WIDTH,
    CameraError,
    CameraSource,
    EndOfStream,
    Frameset,
)
from station.checks import StationError, check_choice

CAMERA_KINDS = ("virtual", "realsense", "realsense:SERIAL", "playback:FILE")


def open_camera(spec: str, *, width: int = WIDTH, height: int = HEIGHT, fps: int = FPS,
                realtime: bool = True, scene=None, subject: int = 1, seed: int = 0, faults=None,
                settings=None, prerender_s: float | None = None, takes: bool = False) -> CameraSource:
    """Build the source named by ``spec`` ('virtual', 'realsense[:SERIAL]' or 'playback:FILE').

    Nothing is opened yet: call ``start()`` (the recorder does).  ``subject`` and ``seed`` pick
    the synthetic participant the virtual D415 films; ``scene`` replaces it altogether.
    ``faults`` (:class:`station.camera.faults.Faults`) makes the virtual camera misbehave like
    a real one; ``prerender_s`` renders that many seconds of it before streaming starts (so
    streaming costs the host what a real camera costs); ``takes`` streams the endless virtual
    participant as takes rendered before each trial (``station run``, see
    :mod:`station.camera.virtual`).  ``settings``
    (:class:`station.camera.settings.CameraSettings`) are applied to a live D415 (the virtual
    one stores them as requested, not applied).
    """
    check_choice((width, height), D415_RESOLUTIONS, "resolution (width, height)")
    check_choice(fps, D415_FPS, "fps")
    kind, _, arg = spec.partition(":")
    if kind == "virtual":
        from station.camera.virtual import VirtualD415

        if scene is None:
            from station.synth.participant import SyntheticParticipant

            scene = SyntheticParticipant(subject, seed, width=width, height=height)
        frames = int(round(prerender_s * fps)) + fps if prerender_s else None
        return VirtualD415(scene, realtime=realtime, fps=fps, faults=faults, prerender_frames=frames, settings=settings,
                           takes=takes)
    if kind == "realsense":
        from station.camera.realsense import LiveD415

        return LiveD415(arg or None, width, height, fps, settings=settings)
    if kind == "playback":
        from station.camera.realsense import PlaybackSource

        if not arg:
            raise StationError("camera 'playback:FILE' needs a file, e.g. playback:sessions/demo.db3.")
        return PlaybackSource(arg, realtime=realtime)
    raise StationError(f"camera must be one of {', '.join(repr(k) for k in CAMERA_KINDS)}, got {spec!r}.")


__all__ = ["open_camera", "CameraError", "CameraSource", "EndOfStream", "Frameset", "CAMERA_KINDS"]
