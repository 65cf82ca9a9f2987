"""One trial file as the windows see it: frames read on demand, markers, drops, identity.

Trials run 1,000 s and more (60,000 frames, several GB), so nothing here reads the image
datasets whole: a frame is decompressed when it is shown and kept in a small LRU cache, which
is what makes stepping back and forth around a movement instant.  The frame table, the markers
and the counters are small and are read once.

Kept free of Qt so the same code serves the coding tool, the viewer, the MP4 export and tests.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from station.checks import StationError
from station.record import schema

#: Frames kept decoded per stream; 64 colour frames at 848x480 are ~78 MB.
CACHE_FRAMES = 64


def trial_identity(f, path: str | Path) -> dict[str, Any]:
    """``trial_id``, participant, session, trial number and readable ``name`` of an open trial
    (:func:`station.record.schema.read_identity`, the one reader), as the coding store takes it."""
    ident = schema.read_identity(f, path)
    out = ident.as_dict()
    out["session"] = str(out["session"])
    out["name"] = file_name(path)
    return out


def file_name(path: str | Path) -> str:
    """A trial's readable name: its file name without the ``.writing`` suffix."""
    return schema.trial_key(path)


@dataclass
class Span:
    """A marked period of the protocol (film, baseline, rest ...) in frame indices."""

    kind: str
    label: str
    start: int
    end: int


class LRU:
    """A tiny least-recently-used cache of decoded frames."""

    def __init__(self, size: int):
        self.size, self.data = size, OrderedDict()

    def get(self, key, load):
        if key in self.data:
            self.data.move_to_end(key)
            return self.data[key]
        value = load(key)
        self.data[key] = value
        if len(self.data) > self.size:
            self.data.popitem(last=False)
        return value


class TrialMedia:
    """Read-only access to one trial; ``close()`` (or ``with``) releases the file."""

    def __init__(self, path: str | Path, cache_frames: int = CACHE_FRAMES):
        from station.process.trialcheck import check_trial_file
        from station.record.writer import open_trial, read_markers

        self.path = Path(path)
        self.file = open_trial(check_trial_file(self.path))
        try:
            table = schema.frames_table(self.file)
            self._color = schema.color_dataset(self.file)
            self._depth = schema.depth_dataset(self.file)
            self.n = len(table)
            self.markers = read_markers(self.file) if schema.MARKERS in self.file else []
            self.identity = trial_identity(self.file, self.path)
            self.fps = float(schema.read_attr(self.file, schema.ATTR_FPS, 60))
            self.depth_scale = float(schema.read_attr(self.file, schema.ATTR_DEPTH_SCALE, 0.001))
        except StationError:
            self.file.close()
            raise
        except Exception as err:  # noqa: BLE001 - a damaged file: say which
            self.file.close()
            raise StationError(f"trial file {str(self.path)!r} cannot be read: {err}") from err
        if self.n == 0:
            self.file.close()
            raise StationError(f"trial file {str(self.path)!r} holds no frames.")
        self.table = table[: self.n]
        self.numbers = schema.frame_numbers(self.table).astype(np.int64)
        self.stamps = schema.timestamps_ms(self.table).astype(np.float64)
        self.host = self.table["host_time"].astype(np.float64)
        self._colors = LRU(cache_frames)
        self._depths = LRU(cache_frames)
        self._face_box: tuple[int, int, int, int] | None = None

    # -- identity and frame numbers ---------------------------------------------------------
    @property
    def name(self) -> str:
        return self.identity["name"]

    def number(self, index: int) -> int:
        """Device frame number of a frame index (what codings store)."""
        return int(self.numbers[index])

    def index_of(self, number: int) -> int:
        """Index of the frame whose device number is nearest ``number``."""
        i = int(np.searchsorted(self.numbers, number))
        if i >= self.n:
            return self.n - 1
        if i > 0 and abs(self.numbers[i - 1] - number) <= abs(self.numbers[i] - number):
            return i - 1
        return i

    def time_s(self, index: int) -> float:
        """Seconds since the first frame on the device clock."""
        return float(self.stamps[index] - self.stamps[0]) / 1000.0

    # -- images -----------------------------------------------------------------------------
    def color(self, index: int) -> np.ndarray:
        """RGB uint8 (H, W, 3) of one frame, decoded once and cached."""
        return self._colors.get(int(index), lambda i: np.ascontiguousarray(self._color[i]))

    def depth(self, index: int) -> np.ndarray | None:
        """z16 depth (H, W) of one frame, or None when the trial has no depth."""
        if self._depth is None:
            return None
        return self._depths.get(int(index), lambda i: np.ascontiguousarray(self._depth[i]))

    def depth_rgb(self, index: int, near_m: float = 0.3, far_m: float = 1.5) -> np.ndarray | None:
        """Depth as a colour image (turbo map, near = red); holes (0) black."""
        depth = self.depth(index)
        if depth is None:
            return None
        metres = depth.astype(np.float32) * self.depth_scale
        scaled = np.clip((far_m - metres) / (far_m - near_m), 0, 1)
        rgb = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
        rgb = np.ascontiguousarray(rgb)
        rgb[depth == 0] = 0
        return rgb

    def difference(self, index: int, reference: int, gain: float = 4.0) -> np.ndarray:
        """|frame - reference| amplified, as an RGB heat map: where the face moved since onset."""
        a = cv2.cvtColor(self.color(index), cv2.COLOR_RGB2GRAY).astype(np.int16)
        b = cv2.cvtColor(self.color(reference), cv2.COLOR_RGB2GRAY).astype(np.int16)
        diff = np.clip(np.abs(a - b) * gain, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(cv2.applyColorMap(diff, cv2.COLORMAP_INFERNO)[..., ::-1])

    def face_box(self, index: int, pad: float = 0.25) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) around the 68 dlib landmarks of a frame, padded; None if no face.

        Found once per trial (on the first frame asked) and kept: the participant sits still
        enough that one box frames the face for the whole trial, and the zoom must not jitter.
        """
        if self._face_box is None:
            from station.process import face2d

            image = self.color(index)
            box = face2d.detect_face(image)
            if box is None:
                return None
            lm = face2d.predict_landmarks(image, box)
            x0, y0 = lm.min(0)
            x1, y1 = lm.max(0)
            w, h = x1 - x0, y1 - y0
            side = max(w, h) * (1 + 2 * pad)
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.1 * h  # include the brows' rise
            H, W = image.shape[:2]
            self._face_box = (int(max(0, cx - side / 2)), int(max(0, cy - side / 2)),
                              int(min(W, cx + side / 2)), int(min(H, cy + side / 2)))
        return self._face_box

    def depth_face_box(self, index: int) -> tuple[int, int, int, int] | None:
        """The face box in the depth image: the depth pixels whose 3D point projects into the
        colour face box (depth is stored in the depth camera's own view, see the schema)."""
        if getattr(self, "_depth_box", None) is None:
            box, depth = self.face_box(index), self.depth(index)
            if box is None or depth is None:
                return None
            from station.record.pointcloud import deproject_depth, project_points
            from station.record.writer import read_calibration

            calib = read_calibration(self.file)
            points = deproject_depth(depth, calib.depth_intrinsics, calib.depth_scale)
            m = calib.depth_to_color.matrix().astype(np.float32)
            pix = project_points(points @ m[:3, :3].T + m[:3, 3], calib.color_intrinsics)
            x0, y0, x1, y1 = box
            inside = ((pix[..., 0] >= x0) & (pix[..., 0] < x1) & (pix[..., 1] >= y0) & (pix[..., 1] < y1)
                      & (depth > 0))
            rows, cols = np.nonzero(inside)
            if len(rows) == 0:
                return None
            self._depth_box = (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)
        return self._depth_box

    # -- protocol and quality ------------------------------------------------------------------
    def marker_index(self, host_time: float) -> int:
        return int(np.clip(np.searchsorted(self.host, host_time), 0, self.n - 1))

    def spans_and_events(self) -> tuple[list[Span], list[tuple[int, str]]]:
        """``X_start``/``X_end`` marker pairs as spans (film, baseline, rest ...); the rest as ticks."""
        spans: list[Span] = []
        ticks: list[tuple[int, str]] = []
        open_: dict[str, tuple[int, str]] = {}
        for m in self.markers:
            event, index = m["event"], self.marker_index(m["host_time"])
            if event.endswith("_start"):
                open_[event[:-6]] = (index, m["clip"])
            elif event.endswith("_end") and event[:-4] in open_:
                start, clip = open_.pop(event[:-4])
                spans.append(Span(event[:-4], clip or m["clip"], start, index))
            else:
                ticks.append((index, event + (f" {m['clip']}" if m["clip"] else "")))
        for kind, (start, clip) in open_.items():  # started, never ended (interrupted trial)
            spans.append(Span(kind, clip, start, self.n - 1))
        return spans, ticks

    def drops(self) -> list[tuple[int, int]]:
        """(index, frames missing before it) wherever the colour or the depth frame numbers skip
        (the larger of the two gaps: a frameset is whole only if both streams are)."""
        gaps = np.diff(self.numbers) - 1
        depth_numbers = schema.frame_numbers(self.table, schema.DEPTH).astype(np.int64)
        if len(depth_numbers) == len(self.numbers):
            gaps = np.maximum(gaps, np.diff(depth_numbers) - 1)
        return [(int(i) + 1, int(g)) for i, g in enumerate(gaps) if g > 0]

    # -- the curve under the timeline ------------------------------------------------------------
    def stored_score(self, candidates: str | Path | None) -> tuple[np.ndarray, np.ndarray, str] | None:
        """The spotting score (frame numbers, score, label) that ``station spot`` stored beside the
        candidates CSV (``candidates.scores.h5``) for this trial, found by its identity; else None."""
        if candidates is None:
            return None
        from station.process.spotting import read_score_curve

        try:
            found = read_score_curve(candidates, schema.read_identity(self.file, self.path))
        except Exception:  # noqa: BLE001 - an unreadable curve file: the motion curve is drawn instead
            return None
        if found is None:
            return None
        return (np.asarray(found["frame_numbers"], np.int64), np.asarray(found["score"], np.float64),
                "spotting score (station spot)")

    def motion(self, index: int, previous: int, size: int = 96) -> float:
        """Mean absolute grey-level change between two frames at low resolution (cheap curve)."""
        def small(i):
            return cv2.resize(cv2.cvtColor(self.color(i), cv2.COLOR_RGB2GRAY), (size, size * 9 // 16),
                              interpolation=cv2.INTER_AREA).astype(np.float32)

        return float(np.mean(np.abs(small(index) - small(previous))))

    def close(self) -> None:
        try:
            self.file.close()
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def frame_cloud(media: TrialMedia, index: int):
    """The coloured point cloud of one frame as an open3d geometry (depth + stored calibration)."""
    import open3d as o3d

    from station.record.pointcloud import colored_cloud
    from station.record.writer import read_calibration

    depth = media.depth(index)
    if depth is None:
        raise StationError(f"{media.path}: the trial has no depth, so no point cloud.")
    vertices, colors = colored_cloud(depth, media.color(index), read_calibration(media.file))
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(vertices.astype(np.float64)))
    cloud.colors = o3d.utility.Vector3dVector(colors)
    return cloud
