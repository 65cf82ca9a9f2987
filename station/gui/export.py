"""A frame range of a trial as an MP4 for a supervisor or a talk (``station view --export``).

Colour and depth side by side, the device frame number, the time on the device clock and any
protocol marker burnt into each frame, encoded with the ffmpeg that imageio-ffmpeg ships (no
system ffmpeg needed).  Frames are read one at a time, so any range of any trial fits in memory.
The video plays at the trial's frame rate by default (``--rate`` slows it down for a talk).
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from station.checks import StationError, format_bytes, free_bytes
from station.fileio import name_when_whole
from station.gui.media import TrialMedia


def composite(media: TrialMedia, index: int, depth: bool = True) -> np.ndarray:
    """One video frame: colour (and depth scaled to its height) with the frame's labels on it."""
    color = media.color(index)
    parts = [color]
    if depth:
        d = media.depth_rgb(index)
        if d is not None:
            h = color.shape[0]
            parts.append(cv2.resize(d, (round(d.shape[1] * h / d.shape[0]), h), interpolation=cv2.INTER_NEAREST))
    frame = np.ascontiguousarray(np.hstack(parts))
    label = f"{media.name}  frame {media.number(index)}  t {media.time_s(index):8.3f} s"
    ident = media.identity
    if ident.get("participant"):
        label = f"{ident['participant']} s{ident['session']}  " + label
    for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(frame, label, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, width, cv2.LINE_AA)
    return frame


def export_mp4(trial: str | Path, out: str | Path, start: int | None = None, end: int | None = None,
               depth: bool = True, rate: float = 1.0, progress=None) -> dict:
    """Write device frames ``start..end`` (inclusive) of ``trial`` to ``out``; never overwrites."""
    import imageio_ffmpeg

    out = Path(out)
    if out.exists():
        raise StationError(f"{out} already exists; choose another name (the station never overwrites a file).")
    if out.suffix.lower() != ".mp4":
        raise StationError(f"export file {str(out)!r} must end in .mp4.")
    began = time.perf_counter()
    with TrialMedia(trial, cache_frames=2) as media:
        first = media.index_of(start) if start is not None else 0
        last = media.index_of(end) if end is not None else media.n - 1
        if start is not None and end is not None and end < start:
            raise StationError(f"--end {end} is before --start {start}.")
        sample = composite(media, first, depth)
        h, w = sample.shape[:2]
        fps = media.fps * rate
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial.mp4")
        writer = imageio_ffmpeg.write_frames(str(partial), (w, h), fps=fps, quality=7, macro_block_size=8,
                                             ffmpeg_log_level="error")
        writer.send(None)
        try:
            for k, i in enumerate(range(first, last + 1)):
                writer.send(composite(media, i, depth) if i != first else sample)
                if progress is not None:
                    progress(k + 1, last - first + 1)
        finally:
            writer.close()
        _check_video(partial, last - first + 1)
        name_when_whole(partial, out)  # a video only under its name once complete
        return {"path": str(out), "frames": last - first + 1, "first": media.number(first),
                "last": media.number(last), "fps": fps, "seconds": (last - first + 1) / fps,
                "wall_s": time.perf_counter() - began}


def _check_video(partial: Path, expected: int) -> None:
    """Refuse a video that does not hold every frame sent (ffmpeg's own failures, a full disk:
    imageio-ffmpeg does not report its exit code).  Counted by ffmpeg stream copy (no decoding)."""
    import imageio_ffmpeg

    try:
        frames = int(imageio_ffmpeg.count_frames_and_secs(str(partial))[0])
    except (RuntimeError, OSError, ValueError):
        frames = 0
    if frames != expected:
        raise StationError(f"the video {str(partial)!r} holds {frames} of the {expected} frames sent (ffmpeg "
                           f"failed: disk full? {format_bytes(free_bytes(partial))} free there); it keeps its "
                           f"partial name.")
