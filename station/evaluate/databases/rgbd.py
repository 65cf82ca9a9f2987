"""Another lab's RGB-D sample through the station's own 2D and 3D preprocessing (paper 4.1).

The same chain ``station process`` runs on a trial (:func:`station.process.export.process_sample`),
on frames read from image files instead of a trial file:

1. 2D: dlib 68 -> 49 landmarks on the RGB frames, eye-corner alignment and crop (face2d);
2. 3D: the 16-bit depth frames go through librealsense's spatial / temporal / hole-filling
   filters on a software device with the database's intrinsics, are deprojected (depth is
   registered to colour, so the extrinsics are the identity), landmarks are lifted to 3D, the
   cloud is cut to a 100 mm sphere round the nose tip and every frame is ICP-registered to the
   first (face3d).

The result is a full :class:`~station.dataset.Sample`, so SI / HK curvature and the 2D+3D
fusion run on it unchanged.
"""

from __future__ import annotations

import numpy as np

from station.camera.base import Calibration, Extrinsics, Intrinsics
from station.checks import StationError
from station.dataset import Sample
from station.evaluate.databases.base import SampleRef, frame_number, timestamps_ms
from station.vocab.landmarks import to49
from pathlib import Path


def calibration_of(ref: SampleRef, width: int, height: int) -> Calibration:
    cam = ref.camera
    if cam is None:
        raise StationError(f"sample {ref.record.sample!r} has depth but no intrinsics.")
    intr = Intrinsics(width, height, cam.ppx, cam.ppy, cam.fx, cam.fy, "none", (0.0, 0.0, 0.0, 0.0, 0.0))
    identity = Extrinsics((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0), (0.0, 0.0, 0.0))
    return Calibration(intr, intr, identity, cam.depth_scale, int(round(ref.fps)), {"name": ref.fmt})


def read_rgbd(ref: SampleRef) -> tuple[np.ndarray, np.ndarray]:
    """(T, H, W, 3) RGB uint8 and (T, H, W) uint16 depth of a sample, checked to match."""
    import cv2

    color, depth = [], []
    for cpath, dpath in zip(ref.frames, ref.depth):
        bgr = cv2.imread(cpath, cv2.IMREAD_COLOR)
        d = cv2.imread(dpath, cv2.IMREAD_UNCHANGED)
        if bgr is None or d is None:
            raise StationError(f"frame {cpath if bgr is None else dpath!r} of sample {ref.record.sample!r} "
                               "cannot be read.")
        if d.ndim != 2 or d.dtype != np.uint16:
            raise StationError(f"depth image {dpath!r} is {d.dtype} with shape {d.shape}; a 16-bit single-channel "
                               "PNG is expected.")
        if d.shape != bgr.shape[:2]:
            raise StationError(f"depth image {dpath!r} is {d.shape[1]}x{d.shape[0]}, its colour frame "
                               f"{bgr.shape[1]}x{bgr.shape[0]}: depth must be registered to colour.")
        color.append(bgr[..., ::-1])
        depth.append(d)
    return np.stack(color), np.stack(depth)


def load_rgbd_sample(ref: SampleRef) -> Sample:
    from station.process import face2d, face3d

    color, depth = read_rgbd(ref)
    numbers = np.array([frame_number(Path(p)) for p in ref.frames], dtype=np.int64)
    times = timestamps_ms(numbers, ref.fps)
    where = f"sample {ref.record.subject}/{ref.record.sample}"
    try:
        lm49 = to49(face2d.track_landmarks(color))
    except face2d.FaceNotFound as err:
        raise StationError(f"{where}: no face found by dlib in frame {int(numbers[err.frame])}") from err
    aligned = face2d.align_and_crop(color, lm49)
    calibration = calibration_of(ref, color.shape[2], color.shape[1])
    filtered = face3d.filter_sequence(depth, times, calibration)
    try:
        clouds = face3d.process_clouds(filtered, lm49, calibration)
    except ValueError as err:
        raise StationError(f"{where}: 3D preprocessing failed: {err}") from err
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in clouds.clouds])]).astype(np.int64)
    return Sample(record=ref.record, cropped=aligned.cropped, landmarks2d=aligned.landmarks2d,
                  landmarks2d_raw=aligned.landmarks2d_raw, landmarks3d=clouds.landmarks3d,
                  cloud_points=np.concatenate(clouds.clouds).astype(np.float32), cloud_offsets=offsets,
                  frame_numbers=numbers, timestamps_ms=times, icp_fitness=clouds.fitness, icp_rmse=clouds.rmse_mm)
