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
from station.process.face2d import NOSE_TIP
from station.record.pointcloud import deproject_depth, pixel_rays, project_points

CROP_RADIUS_MM = 100.0


# -- librealsense filters on recorded depth -----------------------------------------------------
class RecordedDepthFilters:
    """Spatial -> temporal -> hole filling, by librealsense, on depth frames read from a file."""

    def __init__(self, calibration: Calibration, spatial: bool = True, temporal: bool = True,
                 hole_filling: bool = True):
        import pyrealsense2 as rs

        from station.camera.realsense import intrinsics_to_rs

        self._rs = rs
        intr = calibration.depth_intrinsics
        self.shape = (intr.height, intr.width)
        self._device = rs.software_device()
        self._sensor = self._device.add_sensor("Stereo Module")
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid, vs.fmt, vs.bpp = rs.stream.depth, 0, 0, rs.format.z16, 2
        vs.width, vs.height, vs.fps = intr.width, intr.height, int(calibration.fps)
        vs.intrinsics = intrinsics_to_rs(intr)
        self._profile = rs.video_stream_profile(self._sensor.add_video_stream(vs, True))
        self._sensor.add_read_only_option(rs.option.depth_units, float(calibration.depth_scale))
        self._queue = rs.frame_queue(4, keep_frames=True)
        self._sensor.open(self._profile)
        self._sensor.start(self._queue)
        self.filters = ([rs.spatial_filter()] if spatial else []) + ([rs.temporal_filter()] if temporal else []) \
            + ([rs.hole_filling_filter()] if hole_filling else [])
        self._number = 0

    def __call__(self, depth: np.ndarray, timestamp_ms: float) -> np.ndarray:
        """Filter one frame (frames must come in time order for the temporal filter)."""
        rs = self._rs
        depth = np.ascontiguousarray(depth, dtype=np.uint16)
        if depth.shape != self.shape:
            raise ValueError(f"depth frame is {depth.shape}, the calibration says {self.shape}")
        frame = rs.software_video_frame()
        frame.pixels, frame.bpp, frame.stride = depth, 2, depth.shape[1] * 2
        frame.timestamp, frame.domain, frame.frame_number = float(timestamp_ms), rs.timestamp_domain.hardware_clock, self._number
        frame.profile = self._profile
        self._number += 1
        self._sensor.on_video_frame(frame)
        out = self._queue.wait_for_frame(2000)
        for f in self.filters:
            out = f.process(out)
        return np.asanyarray(out.get_data()).copy()

    def close(self) -> None:
        try:
            self._sensor.stop()
            self._sensor.close()
        except RuntimeError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def filter_sequence(depth: np.ndarray, timestamps_ms: np.ndarray, calibration: Calibration, warmup: int = 0,
                    **switches) -> np.ndarray:
    """Filter (T, H, W) depth in order; the first ``warmup`` frames only prime the temporal filter."""
    with RecordedDepthFilters(calibration, **switches) as chain:
        out = [chain(d, t) for d, t in zip(depth, timestamps_ms)]
    return np.stack(out[warmup:])


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
    v = deproject_depth(depth, calibration.depth_intrinsics, calibration.depth_scale, rays).reshape(-1, 3)
    v = v[v[:, 2] > 0]
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


def spherical_crop(points_mm: np.ndarray, centre_mm: np.ndarray, radius_mm: float = CROP_RADIUS_MM) -> np.ndarray:
    """Points within ``radius_mm`` of ``centre_mm``."""
    return points_mm[np.linalg.norm(points_mm - centre_mm, axis=1) <= radius_mm]


# -- ICP --------------------------------------------------------------------------------------
@dataclass
class Registration:
    transform: np.ndarray  # 4x4, frame -> first frame
    fitness: float
    rmse_mm: float


def _o3d_cloud(points: np.ndarray, voxel_mm: float, normals: bool):
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    if voxel_mm > 0:
        cloud = cloud.voxel_down_sample(voxel_mm)
    if normals:
        cloud.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=4 * max(voxel_mm, 1.0), max_nn=30))
    return cloud


def icp_to_reference(source_mm: np.ndarray, target_mm, max_distance_mm: float = 5.0,
                     voxel_mm: float = 2.0, method: str = "point_to_plane") -> Registration:
    """Register ``source`` onto ``target`` (open3d ICP); fitness and inlier RMSE as open3d reports them.

    ``target_mm`` may be an already prepared open3d cloud (see :func:`prepare_target`), so a
    sample's first frame is downsampled and given normals once, not once per frame.
    """
    import open3d as o3d

    reg = o3d.pipelines.registration
    plane = method == "point_to_plane"
    src = _o3d_cloud(source_mm, voxel_mm, False)
    tgt = target_mm if not isinstance(target_mm, np.ndarray) else _o3d_cloud(target_mm, voxel_mm, plane)
    estimation = reg.TransformationEstimationPointToPlane() if plane else reg.TransformationEstimationPointToPoint()
    result = reg.registration_icp(src, tgt, max_distance_mm, np.eye(4), estimation,
                                  reg.ICPConvergenceCriteria(max_iteration=30))
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


def process_clouds(filtered_depth: np.ndarray, landmarks2d_raw: np.ndarray, calibration: Calibration,
                   radius_mm: float = CROP_RADIUS_MM, icp_method: str = "point_to_plane") -> Processed3D:
    """Steps 2-4 of the module docstring for one sample (depth already filtered)."""
    rays = pixel_rays(calibration.depth_intrinsics)
    clouds, lms3d, lms_raw, fit, rmse, transforms = [], [], [], [], [], []
    for t, depth in enumerate(filtered_depth):
        points = cloud_in_color_frame(depth, calibration, rays, face_roi(depth, landmarks2d_raw[t], calibration, radius_mm))
        lm = landmarks_3d(xyz_image(points, calibration, landmarks2d_raw[t]), landmarks2d_raw[t])
        nose = lm[NOSE_TIP]
        if np.isnan(nose).any():
            raise ValueError(f"no depth at the nose tip in frame {t} of the sample")
        face = spherical_crop(points, nose, radius_mm)
        if t == 0:
            reg = Registration(np.eye(4), 1.0, 0.0)
            reference = prepare_target(face, method=icp_method)
        else:
            reg = icp_to_reference(face, reference, method=icp_method)
        clouds.append(transform_points(face, reg.transform))
        lms_raw.append(lm)
        lms3d.append(transform_points(lm, reg.transform))
        fit.append(reg.fitness)
        rmse.append(reg.rmse_mm)
        transforms.append(reg.transform)
    return Processed3D(clouds, np.stack(lms3d), np.stack(lms_raw), np.array(fit), np.array(rmse), np.stack(transforms))
