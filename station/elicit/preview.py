"""The experimenter's view of the camera: colour, depth, the face, its distance, fps and drops.

A micro-expression session needs the participant seated so that the face is found, 0.5-0.7 m
from the D415 (its depth is most accurate there, and the paper's framing is a head-and-
shoulders view) and lit; during a clip the experimenter must learn at once when the face
leaves the frame or moves away (coders want to know too, so it is a marker).

* :class:`FaceDetector` finds the face in a colour frame (dlib's HOG frontal-face detector on
  a half-size image, ~12 ms at 848x480, no model file to download) and measures its distance
  as the median depth of the box's central half (depth and colour of the station's frames share
  the colour frame's geometry closely enough for a seating check; not for measurement).
* :class:`FaceWatch` turns a stream of checks into ``face_lost`` / ``face_moved`` events
  relative to where the face was when the clip began.
* :func:`render` draws the view (colour with the face box | colourised depth, a status line).
* ``station preview --camera ...`` shows it in a window before the session, like
  realsense-viewer but with the seating checks; ``--snapshot`` saves the window's image.

During ``station run`` the recorder child checks the face twice a second and sends the result
to the session (the live terminal panel shows it; see :mod:`station.record.procrecorder`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from station.vocab.markers import Marker

#: Seating: the face's distance from the camera (m).
SEATING_RANGE_M = (0.5, 0.7)
#: Mean luminance (0-255) in the face box below which the face is too dark to code.
MIN_FACE_LUMA = 60.0
#: During a clip: the face centre moved by more than this fraction of the image width...
MOVE_FRACTION = 0.15
#: ...or its distance changed by more than this (m): ``face_moved``.
MOVE_DISTANCE_M = 0.10
#: No face found for this long during a clip: ``face_lost``.
LOST_AFTER_S = 0.5
#: Depth shown from near (blue) to far (red), in raw D415 units (mm).
DEPTH_VIEW_MM = (300.0, 1500.0)
#: How often the recorder child checks the face (s).
CHECK_PERIOD_S = 0.5


@dataclass(frozen=True)
class FaceCheck:
    """One look at the participant."""

    t: float  # perf_counter time of the frame
    found: bool
    box: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 in colour pixels
    distance_m: float | None = None
    luma: float | None = None
    width: int = 0  # image width, for relative movement

    def seating_problems(self) -> list[str]:
        """What keeps the participant from being well seated ([] when ready)."""
        if not self.found:
            return ["no face found in the colour image"]
        out = []
        lo, hi = SEATING_RANGE_M
        if self.distance_m is None:
            out.append("no depth on the face (too close, or reflective glasses)")
        elif not lo <= self.distance_m <= hi:
            out.append(f"face at {self.distance_m:.2f} m, seat the participant {lo:g}-{hi:g} m from the camera")
        if self.luma is not None and self.luma < MIN_FACE_LUMA:
            out.append(f"face too dark (mean level {self.luma:.0f} < {MIN_FACE_LUMA:g}): add light")
        return out

    def summary(self) -> str:
        if not self.found:
            return "no face"
        d = f"{self.distance_m:.2f} m" if self.distance_m is not None else "no depth"
        problems = self.seating_problems()
        return f"face {d}" + (f" — {problems[0]}" if problems else " — seated OK")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaceDetector:
    """The station's face detector (:func:`station.process.face2d.detect_face`, dlib's HOG) on a
    half-size image without the upsampled retry, plus the face's depth and brightness."""

    def __init__(self, scale: float = 0.5):
        self.scale = scale

    def check(self, color: np.ndarray, depth: np.ndarray | None, depth_scale: float, t: float) -> FaceCheck:
        import cv2

        from station.process.face2d import detect_face

        h, w = color.shape[:2]
        box = detect_face(color, int(round(w * self.scale)), retry_upsampled=False)
        if box is None:
            return FaceCheck(t, False, width=w)
        x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
        x1, y1 = min(w, int(box[2])), min(h, int(box[3]))
        luma = float(cv2.cvtColor(color[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).mean()) if x1 > x0 and y1 > y0 else None
        distance = None
        if depth is not None and x1 > x0 and y1 > y0:
            dh, dw = depth.shape[:2]
            fx, fy = dw / w, dh / h
            qx, qy = (x1 - x0) // 4, (y1 - y0) // 4  # the central half of the box: no background
            patch = depth[int((y0 + qy) * fy):int((y1 - qy) * fy), int((x0 + qx) * fx):int((x1 - qx) * fx)]
            valid = patch[patch > 0]
            if valid.size > 20:
                distance = float(np.median(valid)) * depth_scale
        return FaceCheck(t, True, (x0, y0, x1, y1), distance, luma, w)


class FaceWatch:
    """``face_lost`` / ``face_moved`` events during a clip, relative to the clip's first face."""

    def __init__(self):
        self.reference: FaceCheck | None = None
        self.lost_since: float | None = None
        self.lost = self.moved = False

    def reset(self) -> None:
        self.__init__()

    def update(self, check: FaceCheck) -> list[tuple[str, str]]:
        """New (event, detail) pairs for this check: each episode is reported once."""
        events: list[tuple[str, str]] = []
        if not check.found:
            self.lost_since = self.lost_since if self.lost_since is not None else check.t
            if not self.lost and check.t - self.lost_since >= LOST_AFTER_S:
                self.lost = True
                events.append((Marker.FACE_LOST, f"no face for {check.t - self.lost_since:.1f} s"))
            return events
        if self.lost:
            events.append((Marker.FACE_FOUND, "face back in the frame"))
        self.lost, self.lost_since = False, None
        if self.reference is None:
            self.reference = check
            return events
        ref = self.reference
        shift = abs(_centre(check.box) - _centre(ref.box)) / max(1, check.width)
        dist = (abs(check.distance_m - ref.distance_m)
                if check.distance_m is not None and ref.distance_m is not None else 0.0)
        moved = shift > MOVE_FRACTION or dist > MOVE_DISTANCE_M
        if moved and not self.moved:
            events.append((Marker.FACE_MOVED, f"face centre moved {100 * shift:.0f} % of the width, "
                                         f"distance changed {dist:.2f} m since the clip began"))
        self.moved = moved
        return events


def _centre(box) -> float:
    return (box[0] + box[2]) / 2 if box else 0.0


def render(color: np.ndarray, depth: np.ndarray | None, check: FaceCheck | None, status: str,
           width: int = 848) -> np.ndarray:
    """The experimenter view as an RGB image: colour (face box) | depth (colourised), status below."""
    import cv2

    half = width // 2
    h = int(round(color.shape[0] * half / color.shape[1]))
    left = cv2.resize(color, (half, h), interpolation=cv2.INTER_AREA).copy()
    if depth is not None:
        near, far = DEPTH_VIEW_MM
        d = np.clip((depth.astype(np.float32) - near) / (far - near) * 255.0, 0, 255).astype(np.uint8)
        right = cv2.applyColorMap(cv2.resize(d, (half, h), interpolation=cv2.INTER_NEAREST), cv2.COLORMAP_TURBO)
        right = cv2.cvtColor(right, cv2.COLOR_BGR2RGB)
        right[cv2.resize(depth, (half, h), interpolation=cv2.INTER_NEAREST) == 0] = 0
    else:
        right = np.zeros_like(left)
    if check is not None and check.found and check.box:
        k = half / color.shape[1]
        x0, y0, x1, y1 = (int(v * k) for v in check.box)
        ok = not check.seating_problems()
        colour = (0, 220, 0) if ok else (255, 160, 0)
        for img in (left, right):
            cv2.rectangle(img, (x0, y0), (x1, y1), colour, 2)
        if check.distance_m is not None:
            cv2.putText(left, f"{check.distance_m:.2f} m", (x0, max(12, y0 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        colour, 1, cv2.LINE_AA)
    view = np.vstack([np.hstack([left, right]), np.zeros((56, 2 * half, 3), np.uint8)])
    lines = [status, check.summary() if check is not None else "checking the face..."]
    for i, line in enumerate(lines):
        cv2.putText(view, line[:110], (8, h + 20 + 22 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (230, 230, 230), 1, cv2.LINE_AA)
    return view


@dataclass
class StreamStats:
    """fps over the last second and frames missing (frame-number gaps) since the start."""

    arrivals: list[float]  # arrival times within the last second
    last_number: int | None = None
    frames: int = 0
    missing: int = 0

    def add(self, number: int, t: float) -> None:
        self.frames += 1
        if self.last_number is not None and number > self.last_number + 1:
            self.missing += number - self.last_number - 1
        self.last_number = number
        self.arrivals.append(t)
        while self.arrivals and t - self.arrivals[0] > 1.0:
            self.arrivals.pop(0)

    @property
    def fps(self) -> float:
        return float(len(self.arrivals))


class _Reader:
    """Reads every frameset in its own thread (so a slow view never looks like camera drops)."""

    def __init__(self, source):
        import threading

        self.source, self.latest, self.stats = source, None, StreamStats([])
        self.error = ""
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="preview-reader", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                fs = self.source.read(timeout_s=0.5)
            except Exception as err:  # noqa: BLE001 - camera lost or source ended: say so, stop reading
                self.error = str(err) or type(err).__name__
                return
            if fs is not None:
                self.stats.add(fs.color_times.number, time.perf_counter())
                self.latest = fs

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)


def preview(camera: str = "virtual", *, width: int = 848, height: int = 480, fps: int = 60,
            seconds: float | None = None, window: bool = True, snapshot: str | None = None,
            view_width: int = 1280, refresh_hz: float = 15.0) -> FaceCheck | None:
    """Show the experimenter view until ``seconds`` pass or the window is closed (Esc / q);
    returns the last face check (None when no frame came)."""
    from rich.live import Live

    from station.camera import open_camera
    from station.console import console

    source = open_camera(camera, width=width, height=height, fps=fps)
    calib = source.start()
    depth_scale = float(getattr(calib, "depth_scale", 0.001) or 0.001)
    detector, reader = FaceDetector(), _Reader(source)
    view_size = (view_width, int(round(height * view_width / 2 / width)) + 56)
    win = stim = None
    if window:
        from psychopy import event, visual

        win = visual.Window(size=list(view_size), units="pix", color="black", winType="pyglet",
                            allowGUI=True, checkTiming=False, title="station preview")
        stim = visual.ImageStim(win, size=view_size, units="pix")
    check, view, last_check, t0 = None, None, 0.0, time.perf_counter()
    try:
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            while (seconds is None or time.perf_counter() - t0 < seconds) and not reader.error:
                time.sleep(1.0 / refresh_hz)
                fs, stats = reader.latest, reader.stats
                if fs is None:
                    continue
                now = time.perf_counter()
                if now - last_check >= CHECK_PERIOD_S or check is None:
                    check, last_check = detector.check(fs.color, fs.depth, depth_scale, fs.host_time), now
                status = (f"{getattr(source, 'description', camera)}   {stats.fps:.0f} fps   "
                          f"frames {stats.frames}   missing {stats.missing}")
                live.update(f"{status}\n{check.summary()}")
                view = render(fs.color, fs.depth, check, status, width=view_width)
                if win is not None:
                    from PIL import Image

                    stim.image = Image.fromarray(view)
                    stim.draw()
                    win.flip()
                    if event.getKeys(["escape", "q"]):
                        break
        if reader.error:
            console.print(f"[red]camera stopped:[/] {reader.error}")
    finally:
        reader.stop()
        source.stop()
        try:
            if snapshot and view is not None:
                _save_snapshot(snapshot, view, win, stim)
        finally:
            if win is not None:
                win.close()
    return check


def _save_snapshot(path, view: np.ndarray, win, stim) -> None:
    """What the window shows (read back from OpenGL), else the rendered view, through the one
    image writer: PsychoPy's ``saveMovieFrames`` on a full disk named no file."""
    from station.fileio import write_image

    if win is not None:
        stim.draw()
        view = np.asarray(win.getMovieFrame(buffer="back").convert("RGB"))
        win.movieFrames.clear()
    write_image(path, view, "snapshot")
