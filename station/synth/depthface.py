"""The depth the color camera would see for a pseudo-subject, and the D415's measurement errors.

Surface (millimetres, then metres): a head ellipsoid fitted to the jaw line, with a nose
ridge growing to the tip, nostril wings, brow ridge, eye sockets with eyeballs, lips,
cheekbones and chin, all placed from the 68 landmarks of the photo so the relief lines up
with the picture; a torso plane below the chin and a wall behind.  Sizes are typical adult
anthropometry (nose ~22 mm proud of the cheeks, sockets ~8 mm deep).

Sensor model (:class:`D415Noise`), applied per frame, because the depth filters and the
nose-tip crop downstream must have real work:

* disparity-domain noise: the D415 measures disparity ``d = f*B/z`` (f ~ 600 px at 848x480,
  B = 55 mm) with ~0.08 px RMS sub-pixel error, so depth noise grows with z^2 (~0.9 mm RMS
  at 0.6 m);
* quantisation of disparity to 1/32 px (then z16 rounds to 1 mm in the virtual D415);
* holes: steep slopes (face and nose silhouettes), a few random blobs of low texture, sparse
  speckle, and the D415's invalid band on the left edge of the depth image.
The noise pattern is drawn from a fixed pool with per-frame offsets, so it is temporal
(changes every frame), reproducible from the seed, and costs no random generation per frame.
"""

from __future__ import annotations

import numpy as np
import cv2

from station.synth.appearance import eye_centres
from station.vocab.landmarks import BROWS_68, JAW_68, OUTER_LIP_68

WALL_M = 1.35
BASELINE_M = 0.055
SUBPIXEL_RMS = 0.08
SUBPIXEL_STEP = 1.0 / 32.0


def _gauss(xs: np.ndarray, ys: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    return np.exp(-0.5 * (((xs - cx) / sx) ** 2 + ((ys - cy) / sy) ** 2)).astype(np.float32)


def _ridge(xs, ys, p0, p1, width, h0, h1) -> np.ndarray:
    """A ridge along segment p0->p1 whose height goes from h0 to h1 (Gaussian across it)."""
    d = p1 - p0
    length2 = float(d @ d) or 1.0
    t = np.clip(((xs - p0[0]) * d[0] + (ys - p0[1]) * d[1]) / length2, 0, 1)
    px, py = p0[0] + t * d[0], p0[1] + t * d[1]
    dist2 = (xs - px) ** 2 + (ys - py) ** 2
    return ((h0 + (h1 - h0) * t) * np.exp(-0.5 * dist2 / width**2)).astype(np.float32)


def face_depth(lm: np.ndarray, shape: tuple[int, int], distance_m: float, fx: float) -> np.ndarray:
    """Depth in metres (H, W) float32 of head, torso and wall for a face with landmarks ``lm``."""
    h, w = shape
    mm_px = distance_m * 1000.0 / fx  # millimetres per pixel at the face
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    jaw = lm[list(JAW_68)]
    right_eye, left_eye = eye_centres(lm)
    iod = float(np.linalg.norm(left_eye - right_eye))
    brow_y = float(lm[list(BROWS_68), 1].mean())
    chin = lm[8]
    # Head ellipsoid: as wide as the jaw line (+ ears), from the chin to the skull top.
    cx = float(jaw[:, 0].mean())
    a = 0.5 * float(jaw[:, 0].max() - jaw[:, 0].min()) * 1.12
    top = brow_y - 1.25 * iod
    b = 0.5 * float(chin[1] - top)
    cy = float(top + b)
    c_mm = 95.0
    r2 = ((xs - cx) / a) ** 2 + ((ys - cy) / b) ** 2
    head = r2 < 1
    # Front of the skull 8 mm behind the cheek plane at `distance`.
    z_mm = np.full((h, w), WALL_M * 1000.0, np.float32)
    head_z = distance_m * 1000.0 + 8.0 + c_mm * (1 - np.sqrt(np.clip(1 - r2, 0, 1)))
    relief = np.zeros((h, w), np.float32)
    s = iod  # feature sizes in pixels scale with the face
    nose_top, nose_tip = lm[27], lm[30]
    relief -= _ridge(xs, ys, nose_top, nose_tip, 0.09 * s, 8.0, 20.0)
    relief -= 4.0 * _gauss(xs, ys, *nose_tip, 0.12 * s, 0.1 * s)  # round tip
    for wing in (31, 35):
        relief -= 9.0 * _gauss(xs, ys, *lm[wing], 0.08 * s, 0.07 * s)
    relief -= 6.0 * _gauss(xs, ys, *lm[33], 0.15 * s, 0.08 * s)  # nose base
    for a_i, b_i in ((17, 21), (22, 26)):
        relief -= _ridge(xs, ys, lm[a_i], lm[b_i], 0.09 * s, 5.0, 6.0)  # brow ridge
    for eye in (right_eye, left_eye):
        relief += 9.0 * _gauss(xs, ys, *eye, 0.22 * s, 0.16 * s)  # socket
        relief -= 4.0 * _gauss(xs, ys, *eye, 0.11 * s, 0.07 * s)  # eyeball and lids
    mouth = lm[list(OUTER_LIP_68)].mean(axis=0)
    mouth_w = float(lm[54, 0] - lm[48, 0])
    relief -= 9.0 * _gauss(xs, ys, *mouth, 0.42 * mouth_w, 0.22 * s)  # lips
    relief -= 6.0 * _gauss(xs, ys, *lm[8], 0.25 * s, 0.16 * s)  # chin
    for eye, corner in ((right_eye, lm[48]), (left_eye, lm[54])):
        cheek = 0.55 * eye + 0.45 * corner
        relief -= 5.0 * _gauss(xs, ys, *cheek, 0.3 * s, 0.25 * s)  # cheekbones
    face_z = head_z + relief * np.clip(1.3 - r2, 0, 1)
    z_mm[head] = face_z[head]
    # Neck and torso: a slab 70-110 mm behind the face, below the chin, wider than the head.
    neck = (ys > cy + 0.6 * b) & (np.abs(xs - cx) < 0.55 * a) & ~head
    torso = (ys > chin[1] + 0.9 * iod) & (np.abs(xs - cx) < 2.6 * a + (ys - chin[1]) * 0.8) & ~head
    z_mm[neck] = distance_m * 1000.0 + 70.0
    z_mm[torso] = distance_m * 1000.0 + 60.0 + 0.15 * (ys[torso] - chin[1]) * mm_px
    return (z_mm / 1000.0).astype(np.float32)


class D415Noise:
    """Per-frame D415-like measurement errors on a color-frame z-buffer (see module docstring)."""

    def __init__(self, shape: tuple[int, int], fx: float, seed: int, pool_margin: int = 64):
        h, w = shape
        rng = np.random.default_rng([seed, 4150])
        self.shape, self.margin = shape, pool_margin
        self.f_b = fx * BASELINE_M  # px * m
        ph, pw = h + pool_margin, w + pool_margin
        # Spatially correlated sub-pixel error (the D415's noise is blotchy, not white).
        white = rng.normal(0, 1, (ph, pw)).astype(np.float32)
        smooth = cv2.GaussianBlur(white, (0, 0), 1.2)
        self._noise = (smooth / smooth.std() * SUBPIXEL_RMS).astype(np.float32)
        blobs = cv2.GaussianBlur(rng.normal(0, 1, (ph, pw)).astype(np.float32), (0, 0), 9)
        self._blob_holes = blobs > 2.4 * blobs.std()  # ~1 % of pixels, in clumps
        speckle = rng.random((ph, pw)) < 0.004
        self._random_holes = self._blob_holes | speckle
        self._seed = seed
        self.band = int(round(self.f_b / WALL_M))  # the D415's invalid band at the wall distance

    def _offset(self, index: int) -> tuple[int, int]:
        rng = np.random.default_rng([self._seed, index, 17])
        oy, ox = rng.integers(0, self.margin, size=2)
        return int(oy), int(ox)

    def _steep(self, z: np.ndarray) -> np.ndarray:
        """Where depth jumps more than ~1.2 % per pixel (> ~7 mm at 0.6 m): no stereo match."""
        gy = np.abs(np.diff(z, axis=0, prepend=z[:1]))
        gx = np.abs(np.diff(z, axis=1, prepend=z[:, :1]))
        return np.maximum(gx, gy) > 0.012 * z

    def __call__(self, z: np.ndarray, index: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Noisy, quantised, holed copy of ``z`` (metres, 0 = no data) for frame ``index``.

        With ``box`` (x, y, w, h) the caller promises that only that region of ``z`` changes
        from frame to frame: disparity and silhouette holes outside it are computed once and
        reused (the noise and random holes still change every frame).
        """
        h, w = self.shape
        oy, ox = self._offset(index)
        noise = self._noise[oy:oy + h, ox:ox + w]
        random_holes = self._random_holes[oy:oy + h, ox:ox + w]
        if box is None or getattr(self, "_static", None) is None or self._static[0] != box:
            valid = z > 0
            disparity = self.f_b / np.where(valid, z, np.float32(1.0))
            holes = self._steep(z) | ~valid
            holes[:, :self.band] = True
            holes |= random_holes
            if box is not None:
                # (the first frame's random holes stay in the static part: the generator has
                # always done so, and the dataset's frames are kept bit for bit)
                self._static = (box, disparity.astype(np.float32), holes.copy())
            disparity = disparity.astype(np.float32, copy=False)
            disparity += noise
        else:
            # The static part plus this frame's noise in one pass each (no copies first), then
            # the head box, computed as the full frame would be: the same numbers bit for bit.
            disparity = np.add(self._static[1], noise)
            holes = np.bitwise_or(self._static[2], random_holes)
            x, y, bw, bh = box
            zb = z[y:y + bh, x:x + bw]
            valid = zb > 0
            inside = (self.f_b / np.where(valid, zb, np.float32(1.0))).astype(np.float32, copy=False)
            np.add(inside, noise[y:y + bh, x:x + bw], out=disparity[y:y + bh, x:x + bw])
            np.bitwise_or(self._steep(zb) | ~valid, random_holes[y:y + bh, x:x + bw], out=holes[y:y + bh, x:x + bw])
            if x < self.band:
                holes[:, :self.band] = True
        disparity *= np.float32(1 / SUBPIXEL_STEP)
        np.rint(disparity, out=disparity)
        out = np.divide(np.float32(self.f_b / SUBPIXEL_STEP), disparity, out=disparity)
        np.copyto(out, np.float32(0.0), where=holes)
        return out
