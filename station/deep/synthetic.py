"""Tiny in-memory micro-expression samples with known classes, for tests and benchmarks.

Not a face model (``station synth dataset`` makes realistic databases): each subject gets
its own smooth random texture, and each class moves a different part of it between onset
and apex -- the lower third up (a smile's lip corners, "positive"), the upper third down
(brow lowerer, "negative") or up (brow raiser, "surprise") -- by about a pixel, rising to
the apex and falling back to the offset, with sensor noise on top.  That is enough for a
network to have something real, and subtle, to learn.
"""

from __future__ import annotations

import cv2
import numpy as np

from station.dataset import Sample, SampleRecord
from station.vocab.classes import THREE_CLASSES

CLASSES = THREE_CLASSES

#: (first row, last row) as fractions of the face, and vertical direction (+1 = down).
_CLASS_MOTION = {"positive": (0.62, 0.95, -1.0), "negative": (0.05, 0.38, 1.0), "surprise": (0.05, 0.38, -1.0)}


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random gray texture in 40..215 (blurred noise at a few scales)."""
    image = np.zeros((size, size), np.float32)
    for scale in (4, 8, 16):
        noise = rng.normal(size=(max(size // scale, 2),) * 2).astype(np.float32)
        image += cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    image = (image - image.min()) / (np.ptp(image) + 1e-6)
    return 40 + 175 * image


def synthetic_sample(subject: str, name: str, label: str, rng: np.random.Generator, *,
                     frames: int = 12, size: int = 48, amplitude: float = 1.2,
                     texture: np.ndarray | None = None, first_frame: int = 100) -> Sample:
    """One sample: ``frames`` RGB crops of ``size`` pixels, onset first, apex in the middle."""
    if label not in _CLASS_MOTION:
        raise ValueError(f"label must be one of {', '.join(_CLASS_MOTION)}, got {label!r}")
    base = texture if texture is not None else _texture(rng, size)
    top, bottom, direction = _CLASS_MOTION[label]
    rows = np.arange(size, dtype=np.float32)[:, None]
    band = np.clip(np.minimum(rows / size - top, bottom - rows / size) * 8, 0, 1)  # soft-edged band
    grid_x, grid_y = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    apex = frames // 2
    crops = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        strength = t / apex if t <= apex else max(0.0, (frames - 1 - t) / max(frames - 1 - apex, 1))
        shift = (direction * amplitude * strength * band).astype(np.float32)
        moved = cv2.remap(base, grid_x, grid_y - np.broadcast_to(shift, (size, size)), cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)
        noisy = np.clip(moved + rng.normal(0, 1.5, moved.shape), 0, 255).astype(np.uint8)
        crops[t] = noisy[..., None]
    numbers = np.arange(first_frame, first_frame + frames, dtype=np.int64)
    record = SampleRecord(subject=subject, sample=name, onset=int(numbers[0]), apex=int(numbers[apex]),
                          offset=int(numbers[-1]), aus="", objective_class=label, nonobjective_class="")
    zeros2 = np.zeros((frames, 49, 2), np.float32)
    return Sample(record=record, cropped=crops, landmarks2d=zeros2, landmarks2d_raw=zeros2.copy(),
                  landmarks3d=np.zeros((frames, 49, 3), np.float32), cloud_points=np.zeros((0, 3), np.float32),
                  cloud_offsets=np.zeros(frames + 1, np.int64), frame_numbers=numbers,
                  timestamps_ms=numbers * (1000 / 90), icp_fitness=np.ones(frames), icp_rmse=np.zeros(frames))


def synthetic_database(subjects: int, per_subject: int, *, seed: int = 0, frames: int = 12,
                       size: int = 48, amplitude: float = 1.2) -> tuple[list[Sample], np.ndarray, np.ndarray]:
    """``subjects * per_subject`` samples with classes cycling through :data:`CLASSES`.

    Returns ``(samples, y, groups)`` as :func:`station.deep.oof_probabilities` takes them.
    """
    rng = np.random.default_rng(seed)
    samples = []
    for s in range(subjects):
        subject = f"sub{s + 1:02d}"
        texture = _texture(rng, size)
        for k in range(per_subject):
            label = CLASSES[(s + k) % len(CLASSES)]
            samples.append(synthetic_sample(subject, f"{subject}_{k + 1:02d}", label, rng, frames=frames,
                                            size=size, amplitude=amplitude, texture=texture))
    y = np.array([s.record.objective_class for s in samples])
    groups = np.array([s.record.subject for s in samples])
    return samples, y, groups
