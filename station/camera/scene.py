"""Scenes that feed the virtual D415.

A scene draws what the color camera sees: an RGB image and the metric depth of every color
pixel (a z-buffer in the color camera's frame).  The virtual D415 turns that z-buffer into
what the D415's depth camera would report (other viewpoint, other intrinsics, z16 units),
so a scene never needs to know about the stereo geometry.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from station.camera.base import HEIGHT, WIDTH


class Scene(Protocol):
    """Anything the virtual D415 can film."""

    name: str
    #: Number of frames the scene lasts, or ``None`` for an endless scene.
    n_frames: int | None

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``index`` as (color (H, W, 3) uint8 RGB, depth (H, W) float32 metres, 0 = no data)."""


def _checker_texture(height: int, width: int, seed: int) -> np.ndarray:
    """A textured board: coloured checks plus fine noise, so motion and compression are realistic."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    checks = ((yy // 40 + xx // 40) % 2).astype(np.float32)
    tint = rng.uniform(60, 200, size=3).astype(np.float32)
    base = checks[..., None] * tint + (1 - checks[..., None]) * (255 - tint)
    noise = rng.normal(0, 12, size=(height, width, 1)).astype(np.float32)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


class MovingSurface:
    """A textured board at ~0.6 m with a spherical bump, sliding sideways and breathing in depth.

    Enough to exercise alignment, point clouds and the depth filters before the synthetic
    face exists; the texture moves one pixel a frame so every frame differs.
    """

    name = "moving-surface"

    def __init__(self, width: int = WIDTH, height: int = HEIGHT, n_frames: int | None = None, seed: int = 0):
        self.width, self.height, self.n_frames = width, height, n_frames
        self._texture = _checker_texture(height, width * 2, seed)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        r2 = ((xx - width / 2) ** 2 + (yy - height / 2) ** 2) / (0.22 * height) ** 2
        self._bump = (0.06 * np.sqrt(np.clip(1 - r2, 0, None))).astype(np.float32)  # 6 cm dome
        self._tilt = (0.05 * (xx / width - 0.5)).astype(np.float32)  # 5 cm across the image

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        shift = index % self.width
        color = self._texture[:, shift : shift + self.width]
        distance = 0.60 + 0.02 * np.sin(2 * np.pi * index / 120.0)
        depth = distance + self._tilt - self._bump
        return color, depth
