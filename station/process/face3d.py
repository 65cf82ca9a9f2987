"""3D preprocessing of a depth sequence (paper 4.1.2): filters, clouds, landmarks, crop, ICP.

1. The recorded z16 frames are fed back into librealsense through a ``software_device`` depth
   sensor, so the *real* spatial, temporal and hole-filling filters run on real ``rs.frame``
   objects, with the trial's intrinsics and depth units (the temporal filter needs frames in
   order: a sample's frames are pushed in order, after a few warm-up frames before its onset).
2. Every filtered frame is deprojected (rs2_deproject_pixel_to_point semantics,
   :mod:`station.record.pointcloud`) and moved into the color camera's frame with the stored
   extrinsics: the cloud is aligned to color, so a 2D landmark picks its 3D point by
   projection.
3. The cloud is cropped to a 100 mm sphere around the nose tip (paper: nose tip = extreme
   point; here it is the nose-tip landmark's 3D point, which is the same point for a frontal
   face and robust to hair or shoulders being closer to the camera).
4. Each frame is registered to the first with open3d ICP (point-to-plane), and the same
   transform moves its landmarks.  Everything is in millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from station.camera.base import Calibration
from station.record.pointcloud import pixel_rays, project_points
from station.vocab.landmarks import NOSE_TIP_49

CROP_RADIUS_MM = 100.0
#: ICP convergence: change of inlier RMSE (mm) per iteration below which it stops (1 micrometre).
ICP_TOLERANCE_MM = 1e-3
#: librealsense's spatial filter at its default smooth_alpha 0.5 bends curved surfaces under
#: D415 noise (SI/HK right on only 40-100 % of points, depth shifted by 3-4.7 mm on the analytic
#: surfaces of ``features/surfaces.py``); at 0.75 every validation surface but the torus at
#: 0.5 mm meets >= 95 % / >= 90 % (docs/benchmarks.md, curvature table). The paper does not give
#: the filter's settings, so the station uses the value that keeps curvature true.
SPATIAL_SMOOTH_ALPHA = 0.75


# -- librealsense filters on recorded depth -----------------------------------------------------
class RecordedDepthFilters:
    """Spatial -> temporal -> hole filling, by librealsense, on depth frames read from a file."""

    def __init__(self, calibration: Calibration, spatial: bool = True, temporal: bool = True,
                 hole_filling: bool = True, roi: tuple[int, int, int, int] | None = None,
                 smooth_alpha: float = SPATIAL_SMOOTH_ALPHA):
        import dataclasses

        import pyrealsense2 as rs

        from station.camera.softdevice import build_software_device

        self._rs = rs
        intr = calibration.depth_intrinsics
        self.full_shape = (intr.height, intr.width)
        self.roi = roi
        if roi is not None:  # the window is a smaller sensor whose principal point moves with it
            x0, y0, x1, y1 = roi
            intr = dataclasses.replace(intr, width=x1 - x0, height=y1 - y0, ppx=intr.ppx - x0, ppy=intr.ppy - y0)
        self.shape = (intr.height, intr.width)
        # the station's one software-device builder (camera/softdevice.py), depth sensor only
        self._soft = build_software_device(dataclasses.replace(calibration, depth_intrinsics=intr), ("depth",))
        self._sensor, self._profile = self._soft.sensors["depth"], self._soft.profiles["depth"]
        self._queue = rs.frame_queue(4, keep_frames=True)
        self._soft.start(self._queue)
        self.filters = ([self._spatial(rs, smooth_alpha)] if spatial else []) + ([rs.temporal_filter()] if temporal else []) \
            + ([rs.hole_filling_filter()] if hole_filling else [])
        self._number = 0

    @staticmethod
    def _spatial(rs, smooth_alpha: float):
        spatial = rs.spatial_filter()
        spatial.set_option(rs.option.filter_smooth_alpha, float(smooth_alpha))
        return spatial

    def __call__(self, depth: np.ndarray, timestamp_ms: float, out: np.ndarray | None = None) -> np.ndarray:
        """Filter one frame (frames must come in time order for the temporal filter).

        ``out``: a full-size uint16 frame to write into (with a window, only the window is
        written: the rest keeps what ``out`` holds, zeros in :func:`filter_sequence`).
        """
        rs = self._rs
        if depth.shape != self.full_shape:
            raise ValueError(f"depth frame is {depth.shape}, the calibration says {self.full_shape}")
        if self.roi is not None:
            x0, y0, x1, y1 = self.roi
            depth = depth[y0:y1, x0:x1]
        depth = np.ascontiguousarray(depth, dtype=np.uint16)
        frame = rs.software_video_frame()
        frame.pixels, frame.bpp, frame.stride = depth, 2, depth.shape[1] * 2
        frame.timestamp, frame.domain, frame.frame_number = float(timestamp_ms), rs.timestamp_domain.hardware_clock, self._number
        frame.profile = self._profile
        self._number += 1
        self._sensor.on_video_frame(frame)
        filtered = self._queue.wait_for_frame(2000)
        for f in self.filters:
            filtered = f.process(filtered)
        data = np.asanyarray(filtered.get_data())
        if self.roi is None:
            if out is None:
                return data.copy()
            out[...] = data
            return out
        full = np.zeros(self.full_shape, np.uint16) if out is None else out
        x0, y0, x1, y1 = self.roi
        full[y0:y1, x0:x1] = data
        return full

    def close(self) -> None:
        self._soft.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def filter_sequence(depth: np.ndarray, timestamps_ms: np.ndarray, calibration: Calibration, warmup: int = 0,
                    roi: tuple[int, int, int, int] | None = None, **switches) -> np.ndarray:
    """Filter (T, H, W) depth in order; the first ``warmup`` frames only prime the temporal filter.

    With ``roi`` (x0, y0, x1, y1) only that window is filtered (zeros elsewhere): see
    :func:`filter_face_sequence`.
    """
    depth = np.asarray(depth)
    warmup = max(0, min(int(warmup), len(depth)))
    # one zeroed block for the result (pages outside the window are never touched), no
    # per-frame full-size copy and stack
    out = np.zeros((len(depth) - warmup, *depth.shape[1:]), np.uint16)
    scratch = np.zeros(depth.shape[1:], np.uint16)
    with RecordedDepthFilters(calibration, roi=roi, **switches) as chain:
        for t, (d, ts) in enumerate(zip(depth, timestamps_ms)):
            chain(d, ts, out[t - warmup] if t >= warmup else scratch)
    return out


#: Pixels of depth kept around the crop windows when filtering a sample's face only.
FILTER_MARGIN_PX = 48


def sample_roi(depth: np.ndarray, landmarks2d: np.ndarray, calibration: Calibration,
               radius_mm: float = CROP_RADIUS_MM, margin_px: int = FILTER_MARGIN_PX) -> tuple[int, int, int, int]:
    """One depth window holding every frame's :func:`face_roi`, grown by ``margin_px``."""
    boxes = np.array([face_roi(d, lm, calibration, radius_mm) for d, lm in zip(depth, landmarks2d)])
    intr = calibration.depth_intrinsics
    x0, y0 = boxes[:, :2].min(0) - margin_px
    x1, y1 = boxes[:, 2:].max(0) + margin_px
    return int(max(0, x0)), int(max(0, y0)), int(min(intr.width, x1)), int(min(intr.height, y1))


def filter_face_sequence(depth: np.ndarray, timestamps_ms: np.ndarray, calibration: Calibration,
                         landmarks2d: np.ndarray, warmup: int = 0, radius_mm: float = CROP_RADIUS_MM) -> np.ndarray:
    """:func:`filter_sequence` on the window around the face only (zeros elsewhere).

    Only the 100 mm sphere around the nose is ever used, and the librealsense filters are local
    (the spatial filter's recursive weights fall by half per pixel, hole filling and the
    temporal filter look at neighbours and past frames of the same pixel), so filtering the
    face window plus a ``FILTER_MARGIN_PX`` border gives the same depth where it is used at a
    third of the cost of the full 848x480 frame (docs/benchmarks.md, "Offline speed").
    ``landmarks2d`` are the sample's frames after the warm-up, in color pixels.
    """
    roi = sample_roi(depth[warmup:], landmarks2d, calibration, radius_mm)
    return filter_sequence(depth, timestamps_ms, calibration, warmup=warmup, roi=roi)


# -- clouds aligned to color ---------------------------------------------------------------
def cloud_in_color_frame(depth: np.ndarray, calibration: Calibration, rays=None,
                         roi: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """(K, 3) valid points in millimetres, in the color camera's frame.

    ``roi`` (x0, y0, x1, y1) limits deprojection to a window of the depth image (the face),
    which is what makes a sample take a second instead of ten.
    """
    rays = rays if rays is not None else pixel_rays(calibration.depth_intrinsics)
    if roi is not None:
        x0, y0, x1, y1 = roi
        depth, rays = depth[y0:y1, x0:x1], (rays[0][y0:y1, x0:x1], rays[1][y0:y1, x0:x1])
    valid = depth > 0  # deproject the valid pixels only (deproject_depth's float32 maths)
    z = depth[valid].astype(np.float32) * np.float32(calibration.depth_scale)
    v = np.stack([rays[0][valid] * z, rays[1][valid] * z, z], axis=-1)
    m = calibration.depth_to_color.matrix()
    return ((v @ m[:3, :3].T.astype(np.float32)) + m[:3, 3].astype(np.float32)) * np.float32(1000.0)


def face_roi(depth: np.ndarray, landmarks2d: np.ndarray, calibration: Calibration,
             radius_mm: float = CROP_RADIUS_MM) -> tuple[int, int, int, int]:
    """Depth-image window that surely holds the sphere of ``radius_mm`` around the face.

    Color and depth views differ by the ~15 mm baseline only, so the landmarks' box, grown by
    the sphere's radius in pixels at the face's depth (plus slack), covers the crop.
    """
    intr = calibration.depth_intrinsics
    (x0, y0), (x1, y1) = landmarks2d.min(0), landmarks2d.max(0)
    cx, cy = int((x0 + x1) / 2), int((y0 + y1) / 2)
    patch = depth[max(0, cy - 10): cy + 10, max(0, cx - 10): cx + 10]
    valid = patch[patch > 0]
    z_mm = float(np.median(valid)) * calibration.depth_scale * 1000 if valid.size else 300.0
    r = radius_mm * intr.fx / max(z_mm - radius_mm, 150.0) + 20
    return (int(max(0, cx - r)), int(max(0, cy - r)), int(min(intr.width, cx + r)), int(min(intr.height, cy + r)))


def xyz_image(points_mm: np.ndarray, calibration: Calibration, region: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) color-view image of the nearest point per color pixel (nan where none).

    ``region``: (L, 2) pixels (landmarks); only points projecting near them are splatted,
    which is 10x faster than the full image and all the landmark lookup needs.
    """
    intr = calibration.color_intrinsics
    pix = np.round(project_points(points_mm, intr)).astype(np.int64)
    x0, y0, x1, y1 = 0, 0, intr.width - 1, intr.height - 1
    if region is not None:
        (x0, y0), (x1, y1) = np.floor(region.min(0)) - 8, np.ceil(region.max(0)) + 8
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(intr.width - 1, x1), min(intr.height - 1, y1)
    ok = (pix[:, 0] >= x0) & (pix[:, 0] <= x1) & (pix[:, 1] >= y0) & (pix[:, 1] <= y1)
    pts, pix = points_mm[ok], pix[ok]
    order = np.argsort(-pts[:, 2])  # far first, so the nearest point is written last and wins
    img = np.full((intr.height, intr.width, 3), np.nan, np.float32)
    img[pix[order, 1], pix[order, 0]] = pts[order]
    return img


def landmarks_3d(xyz: np.ndarray, landmarks2d: np.ndarray, window: int = 2) -> np.ndarray:
    """(L, 3) 3D landmarks: the median valid point in a (2w+1)^2 window around each 2D landmark."""
    h, w = xyz.shape[:2]
    out = np.full((len(landmarks2d), 3), np.nan, np.float32)
    for i, (x, y) in enumerate(np.round(landmarks2d).astype(int)):
        patch = xyz[max(0, y - window): min(h, y + window + 1), max(0, x - window): min(w, x + window + 1)].reshape(-1, 3)
        patch = patch[~np.isnan(patch[:, 2])]
        if len(patch):
            out[i] = np.median(patch, axis=0)
    return out


def color_pixels(points_mm: np.ndarray, calibration: Calibration) -> np.ndarray:
    """(K, 2) int64 color pixel (x, y) each point projects to (what :func:`landmark_points` needs;
    compute it once when several landmark sets are looked up in the same cloud)."""
    return np.round(project_points(points_mm, calibration.color_intrinsics)).astype(np.int64)


def nanmedian_rows(patches: np.ndarray) -> np.ndarray:
    """``np.nanmedian(patches, axis=1)`` for (N, K, C) float arrays without an all-NaN row,
    bit for bit, without numpy's masked-array path for small arrays (8x faster here).

    The middle value(s) of each sorted row (NaN sorts last); an even count averages the two
    as numpy does, ``(a + b) / 2`` in the array's dtype.
    """
    ordered = np.sort(patches, axis=1)
    count = np.count_nonzero(~np.isnan(patches), axis=1)
    low = np.take_along_axis(ordered, ((count - 1) // 2)[:, None, :], axis=1)[:, 0]
    high = np.take_along_axis(ordered, (count // 2)[:, None, :], axis=1)[:, 0]
    return (low + high) / patches.dtype.type(2)


def landmark_points(points_mm: np.ndarray, calibration: Calibration, landmarks2d: np.ndarray,
                    window: int = 2, pixels: np.ndarray | None = None) -> np.ndarray:
    """(L, 3) 3D landmarks, the same as ``landmarks_3d(xyz_image(points, cal, lm), lm, window)``.

    Vectorised: the z-buffer (nearest point per color pixel) is built only in the landmarks'
    bounding box by one sort, and the (2w+1)^2 windows are gathered at once, with no full-size
    image per frame.  ``pixels``: :func:`color_pixels` of ``points_mm`` if already computed.
    """
    intr = calibration.color_intrinsics
    pix = color_pixels(points_mm, calibration) if pixels is None else pixels
    (x0, y0), (x1, y1) = np.floor(landmarks2d.min(0)) - 8, np.ceil(landmarks2d.max(0)) + 8
    x0, y0 = int(max(0, x0)), int(max(0, y0))
    x1, y1 = int(min(intr.width - 1, x1)), int(min(intr.height - 1, y1))
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    # the (2w+1)^2 window cells of every landmark, clipped to the box (which is inside the image)
    centre = np.round(landmarks2d).astype(np.int64)
    d = np.arange(-window, window + 1)
    ys = np.broadcast_to(centre[:, 1, None, None] + d[None, :, None], (len(centre), len(d), len(d)))
    xs = np.broadcast_to(centre[:, 0, None, None] + d[None, None, :], (len(centre), len(d), len(d)))
    inside = (ys >= y0) & (ys <= y1) & (xs >= x0) & (xs <= x1)
    needed = np.zeros(bh * bw, bool)
    needed[(ys[inside] - y0) * bw + (xs[inside] - x0)] = True
    # z-buffer (nearest point per color pixel) of the needed cells only, by one sort
    ok = (pix[:, 0] >= x0) & (pix[:, 0] <= x1) & (pix[:, 1] >= y0) & (pix[:, 1] <= y1)
    idx = np.flatnonzero(ok)
    cell = (pix[idx, 1] - y0) * bw + (pix[idx, 0] - x0)
    keep = needed[cell]
    idx, cell = idx[keep], cell[keep]
    pts = points_mm[idx]
    order = np.lexsort((pts[:, 2], cell))  # by cell, nearest first within a cell
    cell, pts = cell[order], pts[order]
    first = np.ones(len(cell), bool)
    first[1:] = cell[1:] != cell[:-1]
    grid = np.full((bh * bw, 3), np.nan, np.float32)
    grid[cell[first]] = pts[first]
    patches = np.full(inside.shape + (3,), np.nan, np.float32)
    patches[inside] = grid[(ys[inside] - y0) * bw + (xs[inside] - x0)]
    patches = patches.reshape(len(centre), -1, 3)
    valid = ~np.isnan(patches[..., 2])
    out = np.full((len(centre), 3), np.nan, np.float32)
    has = valid.any(1)
    if has.any():
        out[has] = nanmedian_rows(patches[has])
    return out


def spherical_crop(points_mm: np.ndarray, centre_mm: np.ndarray, radius_mm: float = CROP_RADIUS_MM) -> np.ndarray:
    """Points within ``radius_mm`` of ``centre_mm``."""
    offset = points_mm - centre_mm
    return points_mm[np.einsum("ij,ij->i", offset, offset) <= radius_mm * radius_mm]


# -- ICP --------------------------------------------------------------------------------------
@dataclass
class Registration:
    transform: np.ndarray  # 4x4, frame -> first frame
    fitness: float
    rmse_mm: float


def _open3d():
    """open3d, loaded with one OpenMP thread unless ``OMP_NUM_THREADS`` says otherwise.

    A sample's clouds are a few thousand points: open3d's threads then spend more CPU waiting
    for each other than they save (1.65x the CPU time of one thread for no shorter wall time
    on 2 cores, docs/benchmarks.md), and ``station process --jobs`` already runs one trial per
    core.  OpenMP reads the variable when open3d is first loaded, hence here.
    """
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import open3d

    return open3d


def _o3d_cloud(points: np.ndarray, voxel_mm: float, normals: bool):
    o3d = _open3d()

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    if voxel_mm > 0:
        cloud = cloud.voxel_down_sample(voxel_mm)
    if normals:
        cloud.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=4 * max(voxel_mm, 1.0), max_nn=30))
    return cloud


def icp_to_reference(source_mm: np.ndarray, target_mm, max_distance_mm: float = 5.0,
                     voxel_mm: float = 2.0, method: str = "point_to_plane", init: np.ndarray | None = None,
                     max_iteration: int = 30, tolerance_mm: float = ICP_TOLERANCE_MM) -> Registration:
    """Register ``source`` onto ``target`` (open3d ICP); fitness and inlier RMSE as open3d reports them.

    ``target_mm`` may be an already prepared open3d cloud (see :func:`prepare_target`), so a
    sample's first frame is downsampled and given normals once, not once per frame.  ``init``
    is the starting transform: the previous frame's, in a sequence, since the head moves little
    in 1/60 s, so ICP starts next to the answer and converges in a few iterations.
    ``tolerance_mm``: ICP stops when an iteration changes the inlier RMSE by less than this
    (and the fitness by less than the same number, a fraction of the points); with open3d's
    default, 1e-6 mm, a third of the frames ran all 30 iterations with correspondences flipping
    between two states, for changes a thousand times below the D415's depth noise; at 1 um
    they converge in 1-2 iterations to the same RMSE (docs/benchmarks.md, "Offline speed").
    """
    o3d = _open3d()

    reg = o3d.pipelines.registration
    plane = method == "point_to_plane"
    src = _o3d_cloud(source_mm, voxel_mm, False)
    tgt = target_mm if not isinstance(target_mm, np.ndarray) else _o3d_cloud(target_mm, voxel_mm, plane)
    estimation = reg.TransformationEstimationPointToPlane() if plane else reg.TransformationEstimationPointToPoint()
    start = np.eye(4) if init is None else np.asarray(init, np.float64)
    result = reg.registration_icp(src, tgt, max_distance_mm, start, estimation,
                                  reg.ICPConvergenceCriteria(relative_fitness=tolerance_mm, relative_rmse=tolerance_mm,
                                                             max_iteration=max_iteration))
    return Registration(np.asarray(result.transformation), float(result.fitness), float(result.inlier_rmse))


def prepare_target(points_mm: np.ndarray, voxel_mm: float = 2.0, method: str = "point_to_plane"):
    """The reference frame as open3d needs it (downsampled, with normals for point-to-plane)."""
    return _o3d_cloud(points_mm, voxel_mm, method == "point_to_plane")


def transform_points(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    return (points @ m[:3, :3].T + m[:3, 3]).astype(np.float32)


@dataclass
class Processed3D:
    clouds: list[np.ndarray]  # per frame (K_t, 3) mm, cropped and registered to frame 0
    landmarks3d: np.ndarray  # (T, 49, 3) mm, registered
    landmarks3d_raw: np.ndarray  # (T, 49, 3) mm before ICP
    fitness: np.ndarray
    rmse_mm: np.ndarray
    transforms: np.ndarray  # (T, 4, 4)
    #: (T, P, 3) mm before ICP: the ``probes2d`` of :func:`process_clouds` looked up in the same
    #: clouds (e.g. the ground-truth landmarks, to measure the 3D landmark error); None if none
    probes3d_raw: np.ndarray | None = None


def process_clouds(filtered_depth: np.ndarray, landmarks2d_raw: np.ndarray, calibration: Calibration,
                   radius_mm: float = CROP_RADIUS_MM, icp_method: str = "point_to_plane",
                   probes2d: np.ndarray | None = None) -> Processed3D:
    """Steps 2-4 of the module docstring for one sample (depth already filtered).

    Each frame's ICP starts from the previous frame's transform (see :func:`icp_to_reference`).
    ``probes2d`` (T, P, 2): more color pixels to look up in each frame's cloud like the
    landmarks (the cloud is deprojected and projected once for both).
    """
    rays = pixel_rays(calibration.depth_intrinsics)
    clouds, lms3d, lms_raw, fit, rmse, transforms, probes = [], [], [], [], [], [], []
    previous = np.eye(4)
    for t, depth in enumerate(filtered_depth):
        points = cloud_in_color_frame(depth, calibration, rays, face_roi(depth, landmarks2d_raw[t], calibration, radius_mm))
        pixels = color_pixels(points, calibration)
        lm = landmark_points(points, calibration, landmarks2d_raw[t], pixels=pixels)
        if probes2d is not None:
            probes.append(landmark_points(points, calibration, probes2d[t], pixels=pixels))
        nose = lm[NOSE_TIP_49]
        if np.isnan(nose).any():
            raise ValueError(f"no depth at the nose tip in frame {t} of the sample")
        face = spherical_crop(points, nose, radius_mm)
        if t == 0:
            reg = Registration(np.eye(4), 1.0, 0.0)
            reference = prepare_target(face, method=icp_method)
        else:
            reg = icp_to_reference(face, reference, method=icp_method, init=previous)
        previous = reg.transform
        clouds.append(transform_points(face, reg.transform))
        lms_raw.append(lm)
        lms3d.append(transform_points(lm, reg.transform))
        fit.append(reg.fitness)
        rmse.append(reg.rmse_mm)
        transforms.append(reg.transform)
    return Processed3D(clouds, np.stack(lms3d), np.stack(lms_raw), np.array(fit), np.array(rmse), np.stack(transforms),
                       np.stack(probes) if probes2d is not None else None)
