"""Point clouds from stored depth, exactly as librealsense computes them.

Storing a float32 vertex per pixel costs 4.9 MB a frame (293 MB/s at 60 fps, see
docs/benchmarks.md); the z16 depth plus intrinsics and depth scale rebuild the same vertices,
so the station stores depth and rebuilds clouds on demand.  The maths follows
``rs2_deproject_pixel_to_point`` / ``rs2_project_point_to_pixel`` (rsutil.h), in float32 as
librealsense does, so results agree with ``rs.pointcloud`` to float rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from station.camera.base import Calibration, Intrinsics
from station.checks import StationError, format_bytes, free_bytes
from station.fileio import name_when_whole

_SUPPORTED = ("none", "brown_conrady", "inverse_brown_conrady", "modified_brown_conrady")


def pixel_rays(intr: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Normalised (x, y) of every pixel after undistortion: the depth-independent part of deprojection."""
    if intr.model not in _SUPPORTED:
        raise ValueError(f"distortion model {intr.model!r} is not supported; supported: {', '.join(_SUPPORTED)}")
    v, u = np.mgrid[0 : intr.height, 0 : intr.width].astype(np.float32)
    x = (u - np.float32(intr.ppx)) / np.float32(intr.fx)
    y = (v - np.float32(intr.ppy)) / np.float32(intr.fy)
    k = np.asarray(intr.coeffs, dtype=np.float32)
    if intr.model in ("brown_conrady", "inverse_brown_conrady") and np.any(k):
        x0, y0 = x.copy(), y.copy()
        for _ in range(10):  # librealsense's fixed-point undistortion, 10 iterations
            r2 = x * x + y * y
            icdist = np.float32(1) / (1 + ((k[4] * r2 + k[1]) * r2 + k[0]) * r2)
            xq, yq = (x / icdist, y / icdist) if intr.model == "inverse_brown_conrady" else (x, y)
            dx = 2 * k[2] * xq * yq + k[3] * (r2 + 2 * xq * xq)
            dy = 2 * k[3] * xq * yq + k[2] * (r2 + 2 * yq * yq)
            x, y = (x0 - dx) * icdist, (y0 - dy) * icdist
    return x, y


def deproject_depth(depth: np.ndarray, intr: Intrinsics, depth_scale: float,
                    rays: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(H, W, 3) float32 vertices in metres in the depth camera's frame; 0 where depth is 0."""
    x, y = rays if rays is not None else pixel_rays(intr)
    z = depth.astype(np.float32) * np.float32(depth_scale)
    return np.stack([x * z, y * z, z], axis=-1)


def project_points(points: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Pixel coordinates (..., 2) of 3D points (..., 3) seen by a camera (rs2_project_point_to_pixel)."""
    z = np.where(points[..., 2] > 0, points[..., 2], np.nan)
    x, y = points[..., 0] / z, points[..., 1] / z
    k = np.asarray(intr.coeffs, dtype=np.float32)
    if intr.model != "none" and np.any(k):
        r2 = x * x + y * y
        f = 1 + k[0] * r2 + k[1] * r2 * r2 + k[4] * r2 * r2 * r2
        xf, yf = x * f, y * f
        # brown_conrady adds tangential terms of the undistorted point, the others of the scaled one
        bx, by = (x, y) if intr.model == "brown_conrady" else (xf, yf)
        x = xf + 2 * k[2] * bx * by + k[3] * (r2 + 2 * bx * bx)
        y = yf + 2 * k[3] * bx * by + k[2] * (r2 + 2 * by * by)
    return np.stack([x * intr.fx + intr.ppx, y * intr.fy + intr.ppy], axis=-1)


def colored_cloud(depth: np.ndarray, color: np.ndarray, calib: Calibration,
                  rays: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Valid vertices (K, 3) in metres (depth camera frame) and their RGB colors (K, 3) in [0, 1].

    Colors come from projecting each vertex into the color camera through the stored
    extrinsics, which is what ``rs.pointcloud.map_to(color)`` does.
    """
    vertices = deproject_depth(depth, calib.depth_intrinsics, calib.depth_scale, rays).reshape(-1, 3)
    vertices = vertices[vertices[:, 2] > 0]
    m = calib.depth_to_color.matrix().astype(np.float32)
    in_color = vertices @ m[:3, :3].T + m[:3, 3]
    pix = np.round(project_points(in_color, calib.color_intrinsics)).astype(np.int64)
    h, w = color.shape[:2]
    inside = (pix[:, 0] >= 0) & (pix[:, 0] < w) & (pix[:, 1] >= 0) & (pix[:, 1] < h)
    rgb = np.zeros((len(vertices), 3), np.float64)
    rgb[inside] = color[pix[inside, 1], pix[inside, 0]] / 255.0
    return vertices, rgb


#: Bytes per value of a PLY property type (the PLY spec's names and their sized aliases).
_PLY_SIZES = {"char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
              "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8}


def ply_shortfall(path: Path, points: int) -> str | None:
    """Why the binary PLY at ``path`` does not hold ``points`` vertices, or None when it does.

    Its own header says how many vertices it has and how many bytes each takes, so the check
    holds whatever types the writer chose; a file cut short by a full disk is smaller than that.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
        size = path.stat().st_size
    except OSError as err:
        return f"it cannot be read back ({err.strerror})"
    end = head.find(b"end_header\n")
    if end < 0:
        return f"its header is incomplete ({size:,} bytes)"
    count, row = None, 0
    for line in head[:end].decode("ascii", "replace").splitlines():
        words = line.split()
        if words[:2] == ["element", "vertex"]:
            count = int(words[2])
        elif words[:1] == ["property"] and count is not None and words[1] in _PLY_SIZES:
            row += _PLY_SIZES[words[1]]
    need = end + len(b"end_header\n") + (count or 0) * row
    if count != points:
        return f"its header says {count} vertices, not {points:,}"
    if size < need:
        return f"{size:,} bytes came out where its {points:,} points need {need:,}"
    return None


def write_ply(path: str | Path, vertices: np.ndarray, colors: np.ndarray | None = None) -> None:
    """Write a point cloud as binary PLY with open3d, under its name only once whole.

    Why the check: open3d reports success even when its writer (RPly) failed on a full disk, so
    the file is read back against its own header (:func:`ply_shortfall`) before it is renamed
    from ``.NAME.partial.ply``; a short file is removed and refused.
    """
    import open3d as o3d  # heavy import, only where clouds are written

    path = Path(path)
    partial = path.with_name(f".{path.name}.partial.ply")
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(vertices.astype(np.float64)))
    if colors is not None:
        cloud.colors = o3d.utility.Vector3dVector(colors)
    ok = o3d.io.write_point_cloud(str(partial), cloud, write_ascii=False)
    short = ply_shortfall(partial, len(vertices)) if ok else "open3d reported a failure"
    if short:
        partial.unlink(missing_ok=True)
        raise StationError(f"cannot write point cloud {str(path)!r}: {short} (disk full or not writable? "
                           f"{format_bytes(free_bytes(path.parent))} free there).")
    name_when_whole(partial, path)
