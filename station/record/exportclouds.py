"""Point clouds per frame from a trial file, written as PLY (``station export-pointclouds``)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from station.checks import StationError, check_writable_dir
from station.record import schema
from station.record.pointcloud import colored_cloud, pixel_rays, write_ply
from station.record.writer import open_trial, read_calibration


def frame_range(text: str, n: int) -> range:
    """Positions selected by a Python-style ``A:B`` slice (all frames when empty)."""
    if not text:
        return range(n)
    try:
        parts = [int(p) if p else None for p in text.split(":")]
        return range(n)[slice(*parts)]
    except (ValueError, TypeError) as err:
        raise StationError(f"--frames must look like A:B (e.g. 0:60), got {text!r}.") from err


def export_pointclouds(trial: str | Path, outdir: str | Path, frames: str = "",
                       on_frame: Callable[[int, int], None] | None = None) -> list[Path]:
    """Write ``outdir/frame-<number>.ply`` for the selected frames; returns the paths written.

    Vertices are in metres in the depth camera's frame, coloured by projecting into the color
    image through the stored extrinsics (what ``rs.pointcloud.map_to`` does).
    """
    out = check_writable_dir(outdir)
    written: list[Path] = []
    with open_trial(trial) as f:
        cal = read_calibration(f)
        rays = pixel_rays(cal.depth_intrinsics)
        n = schema.readable_frames(f)
        selected = frame_range(frames, n)
        numbers = f[schema.FRAMES]["depth_number"]
        for k, i in enumerate(selected):
            vertices, colors = colored_cloud(f[schema.DEPTH][i], f[schema.COLOR][i], cal, rays)
            path = out / f"frame-{int(numbers[i]):06d}.ply"
            try:
                write_ply(path, vertices, colors)
            except StationError as err:
                raise StationError(f"{err} {len(written)} of {len(selected)} point clouds were written before "
                                   f"it, in {str(out)!r}.") from None
            written.append(path)
            if on_frame:
                on_frame(k, len(selected))
    return written
