"""A quick synthetic station database with known, class-dependent local motion (tests, benchmarks).

Not the virtual participant of ``station synth`` (that one goes through the camera, recorder and
``station process``): this writes the exported layout directly with :func:`write_sample`, so the
evaluation can be tested and benchmarked on its own.  Each subject has its own face texture;
each class moves the texture near its own landmarks (a small warp, peaking at the apex) and
raises a bump on the 3D face surface at the same landmarks.  ``strength`` scales both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from station.dataset import Sample, SampleRecord, write_index, write_sample
from station.vocab.classes import CLASS_EMOTION, OTHERS
from station.vocab.landmarks import N49

#: class -> (landmarks that move, 2D displacement direction (dx, dy), 3D bump sign)
_MOTION = {
    "I": ((31, 37, 32, 36), (1.0, -1.0), -1.0),
    "II": ((0, 2, 4, 5, 7, 9), (0.0, -1.0), -1.0),
    "III": ((4, 5, 22, 25), (0.0, 1.0), 1.0),
    "IV": ((14, 16, 18, 13), (0.0, -1.0), -1.0),
    "V": ((31, 37, 38, 42), (0.0, 1.0), 1.0),
    "VI": ((0, 9, 34, 40), (1.0, 0.0), -1.0),
    "VII": ((31, 32), (-1.0, -1.0), -1.0),
    OTHERS: ((19, 28, 20, 27), (0.0, 1.0), 1.0),
}
#: class -> (emotion, landmarks that move, 2D displacement direction (dx, dy), 3D bump sign);
#: the emotions are the classes' linked emotions of station.vocab.classes.
CLASSES = {cls: ({**CLASS_EMOTION, OTHERS: "others"}[cls], *motion) for cls, motion in _MOTION.items()}


def template_landmarks(size: int) -> np.ndarray:
    """49 landmarks (x, y) in a ``size`` x ``size`` crop, in the 49-point layout
    (the ranges of ``station.vocab.landmarks``: brows 0-9, nose 10-18, eyes 19-30, lips 31-48)."""
    s = float(size)
    pts = []
    pts += [(s * (0.15 + 0.065 * i), s * (0.26 - 0.02 * min(i, 4 - i))) for i in range(5)]  # right brow 0-4
    pts += [(s * (0.59 + 0.065 * i), s * (0.26 - 0.02 * min(i, 4 - i))) for i in range(5)]  # left brow 5-9
    pts += [(s * 0.5, s * (0.36 + 0.06 * i)) for i in range(4)]  # nose bridge 10-13
    pts += [(s * (0.40 + 0.05 * i), s * (0.60 + 0.015 * min(i, 4 - i))) for i in range(5)]  # nose base 14-18
    for cx in (0.30, 0.70):  # eyes 19-24, 25-30
        for k in range(6):
            a = np.pi * k / 3
            pts.append((s * (cx - 0.08 * np.cos(a)), s * (0.38 - 0.03 * np.sin(a))))
    for k in range(12):  # outer lip 31-42 (31 right corner, 34 top, 37 left corner, 40 bottom)
        a = np.pi - 2 * np.pi * k / 12
        pts.append((s * (0.5 + 0.17 * np.cos(a)), s * (0.78 - 0.07 * np.sin(a))))
    for k in range(6):  # inner lip 43-48
        a = np.pi - 2 * np.pi * k / 6
        pts.append((s * (0.5 + 0.10 * np.cos(a)), s * (0.78 - 0.03 * np.sin(a))))
    return np.array(pts, dtype=np.float32)


def _smooth_noise(rng: np.random.Generator, size: int, scale: int) -> np.ndarray:
    import cv2

    coarse = rng.normal(size=(max(2, size // scale),) * 2).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def face_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A subject's grey face: smooth shading + fine skin texture + darker eyes/brows/mouth."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    face = 150 - 60 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
    face = face + 12 * _smooth_noise(rng, size, 8) + 10 * _smooth_noise(rng, size, 2)
    lm = template_landmarks(size) / size
    for idx, depth in ((range(0, 10), 40), (range(19, 31), 50), (range(31, 43), 35), (range(14, 19), 20)):
        for j in idx:
            face -= depth * np.exp(-((xx - lm[j, 0]) ** 2 + (yy - lm[j, 1]) ** 2) / (2 * 0.02 ** 2))
    return face.astype(np.float32)


def _profile(n_frames: int, apex: int) -> np.ndarray:
    t = np.arange(n_frames, dtype=np.float64)
    up = t / max(apex, 1)
    down = (n_frames - 1 - t) / max(n_frames - 1 - apex, 1)
    return np.clip(np.where(t <= apex, up, down), 0, 1)


def face_surface(xy: np.ndarray) -> np.ndarray:
    """Depth (mm, camera at the origin looking +z) of a face-like surface at (x, y) mm."""
    x, y = xy[:, 0], xy[:, 1]
    z = 450 + (x ** 2) / (2 * 80) + (y ** 2) / (2 * 110)
    z -= 22 * np.exp(-(x ** 2 / (2 * 7 ** 2) + (y - 5) ** 2 / (2 * 14 ** 2)))  # nose
    return z


def make_sample(rng: np.random.Generator, subject: str, name: str, cls: str, texture: np.ndarray, *,
                n_frames: int = 12, strength: float = 1.0, cloud_step: float = 3.0, noise: float = 2.0) -> Sample:
    import cv2

    size = texture.shape[0]
    emotion, moving, direction, bump_sign = CLASSES[cls]
    apex = int(rng.integers(n_frames // 3, 2 * n_frames // 3 + 1))
    prof = _profile(n_frames, apex)
    lm2 = template_landmarks(size) + rng.normal(0, 0.3, (N49, 2)).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    window = np.zeros((size, size), np.float32)
    for j in moving:
        window += np.exp(-((xx - lm2[j, 0]) ** 2 + (yy - lm2[j, 1]) ** 2) / (2 * (0.07 * size) ** 2))
    window = np.clip(window, 0, 1)
    amp = float(2.5 * strength * (0.8 + 0.4 * rng.random()))
    frames = []
    for t in range(n_frames):
        dx = window * direction[0] * amp * prof[t]
        dy = window * direction[1] * amp * prof[t]
        img = cv2.remap(texture, (xx - dx).astype(np.float32), (yy - dy).astype(np.float32), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REFLECT)
        img = img + rng.normal(0, noise, img.shape)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    gray = np.stack(frames)
    cropped = np.repeat(gray[..., None], 3, axis=3)

    # 3D: crop pixel (x, y) <-> face mm; a bump at the moving landmarks grows towards the apex
    mm_per_px = 120.0 / size

    def to_mm(p: np.ndarray) -> np.ndarray:
        return np.stack([(p[:, 0] - size / 2) * mm_per_px, (p[:, 1] - size / 2) * mm_per_px], axis=1)

    g = np.arange(-60, 60 + 1e-9, cloud_step)
    gx, gy = np.meshgrid(g, g)
    base_xy = np.stack([gx.ravel(), gy.ravel()], axis=1)
    lm_mm = to_mm(lm2)
    points, offsets, lm3 = [], [0], []
    for t in range(n_frames):
        xy = base_xy + rng.normal(0, 0.15, base_xy.shape)
        z = face_surface(xy)
        for j in moving:
            d2 = ((xy - lm_mm[j]) ** 2).sum(1)
            z = z + bump_sign * 4.0 * strength * prof[t] * np.exp(-d2 / (2 * 5.0 ** 2))
        z = z + rng.normal(0, 0.05, len(z))
        points.append(np.column_stack([xy, z]).astype(np.float32))
        offsets.append(offsets[-1] + len(xy))
        lm3.append(np.column_stack([lm_mm, face_surface(lm_mm)]).astype(np.float32))
    onset_frame = int(rng.integers(100, 1000))
    numbers = np.arange(onset_frame, onset_frame + n_frames, dtype=np.int64)
    record = SampleRecord(subject=subject, sample=name, onset=int(numbers[0]), apex=int(numbers[apex]),
                          offset=int(numbers[-1]), aus="", objective_class=cls, nonobjective_class=emotion,
                          clip=f"clip-{emotion}", clip_emotion=emotion, duration_ms=n_frames * 1000 / 60,
                          onset_duration_ms=apex * 1000 / 60)
    return Sample(record=record, cropped=cropped, landmarks2d=np.repeat(lm2[None], n_frames, 0),
                  landmarks2d_raw=np.repeat(lm2[None], n_frames, 0), landmarks3d=np.stack(lm3),
                  cloud_points=np.concatenate(points), cloud_offsets=np.array(offsets, np.int64),
                  frame_numbers=numbers, timestamps_ms=numbers * (1000 / 60), icp_fitness=np.ones(n_frames),
                  icp_rmse=np.zeros(n_frames))


def make_database(db: str | Path, *, n_subjects: int = 6, n_samples: int = 48,
                  classes: tuple[str, ...] = ("I", "II", "IV", OTHERS),
                  size: int = 40, n_frames: int = 12, strength: float = 1.0, seed: int = 0,
                  class_weights: tuple[float, ...] | None = None) -> list[SampleRecord]:
    """Write a synthetic database of ``n_samples`` samples over ``n_subjects`` subjects."""
    rng = np.random.default_rng(seed)
    textures = {f"s{i + 1:02d}": face_texture(rng, size) for i in range(n_subjects)}
    subjects = list(textures)
    weights = np.asarray(class_weights if class_weights is not None else np.ones(len(classes)), float)
    labels = [classes[(i // n_subjects) % len(classes)] for i in range(n_samples)] if class_weights is None else \
        [str(c) for c in rng.choice(classes, size=n_samples, p=weights / weights.sum())]
    records = []
    for i, cls in enumerate(labels):
        subject = subjects[i % n_subjects]
        sample = make_sample(rng, subject, f"{subject}_{i:04d}", cls, textures[subject], n_frames=n_frames,
                             strength=strength)
        write_sample(db, sample)
        records.append(sample.record)
    write_index(db, records)
    return records
