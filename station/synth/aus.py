"""Action units as smooth local displacement fields anchored on the 68 dlib landmarks.

Each AU is a few *anchors*: a landmark (or the mean of several), a displacement
``(dx, dy)`` in units of the interocular distance (IOD, eye centre to eye centre), a depth
change ``dz`` in millimetres (negative = towards the camera), and a Gaussian reach
``(sx, sy)`` in IOD units.  The AU's field is the sum of the anchors' Gaussians, so it is
smooth, local and moves the landmarks it is anchored on by (almost exactly) the given vector.
At intensity 1 the largest displacement is ~0.05 IOD, i.e. ~3 px at 848x480 and 0.6 m: the
size of a micro-expression.  Why fields instead of a 3D face model: they need nothing but
the landmarks of a photo, warp color and depth identically, and stay fast (a few
multiply-adds over the face box per frame).

Directions use image axes: +x = image right (the subject's left), +y = down.  ``mirror``
anchors are defined for the subject's right side and mirrored to the left side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from station.vocab.landmarks import MIRROR_68  # regions an AU moves: AREAS_68 there


@dataclass(frozen=True)
class Anchor:
    """One Gaussian of an AU field."""

    landmarks: tuple[int, ...]  # centre = mean of these landmarks
    dx: float  # IOD units; for mirrored anchors, dx on the subject's right (image left) side
    dy: float
    dz_mm: float = 0.0
    sx: float = 0.18  # Gaussian reach, IOD units
    sy: float = 0.18
    mirror: bool = True  # also place the mirrored anchor (dx negated) on the other side


def _a(lms, dx, dy, dz=0.0, sx=0.18, sy=0.18, mirror=True) -> Anchor:
    return Anchor(tuple(lms), dx, dy, dz, sx, sy, mirror)


#: The AU library.  Outward for the subject's right side is -x (image left).
AU_LIBRARY: dict[int, tuple[Anchor, ...]] = {
    1: (_a([21], 0.0, -0.06, -0.5, 0.14, 0.16), _a([20], 0.0, -0.04, 0, 0.14, 0.16)),  # inner brow raiser
    2: (_a([17], 0.0, -0.05, 0, 0.14, 0.16), _a([18], 0.0, -0.06, -0.5, 0.14, 0.16)),  # outer brow raiser
    4: (_a([21], 0.04, 0.045, -1.0, 0.14, 0.14), _a([19], 0.02, 0.04, 0, 0.16, 0.14)),  # brow lowerer
    5: (_a([37, 38], 0.0, -0.035, 0, 0.12, 0.07),),  # upper lid raiser
    6: (_a([41, 40], 0.0, -0.02, 0, 0.10, 0.06), _a([36, 48], -0.01, -0.05, -2.0, 0.2, 0.18)),  # cheek raiser
    7: (_a([41, 40], 0.0, -0.03, 0, 0.12, 0.05), _a([37, 38], 0.0, 0.012, 0, 0.12, 0.05)),  # lid tightener
    9: (_a([31], 0.0, -0.045, -1.0, 0.1, 0.12), _a([28, 29], 0.0, -0.025, 0, 0.08, 0.12, False),
        _a([21], 0.015, 0.03, 0, 0.1, 0.1)),  # nose wrinkler
    10: (_a([50], 0.0, -0.045, -1.0, 0.12, 0.08), _a([51], 0.0, -0.04, 0, 0.1, 0.08, False)),  # upper lip raiser
    12: (_a([48], -0.05, -0.045, -1.0, 0.14, 0.14), _a([36, 48], 0, -0.015, -1.5, 0.2, 0.2)),  # lip corner puller
    14: (_a([48], -0.03, 0.0, 2.0, 0.08, 0.08),),  # dimpler (corner pulled back: away from the camera)
    15: (_a([48], -0.01, 0.05, 0, 0.12, 0.12),),  # lip corner depressor
    17: (_a([57, 8], 0.0, -0.045, -2.0, 0.22, 0.14, False), _a([57], 0.0, -0.02, 0, 0.18, 0.06, False)),  # chin raiser
    20: (_a([48], -0.06, 0.012, 0, 0.12, 0.12),),  # lip stretcher
    23: (_a([48], 0.025, 0.0, 0, 0.1, 0.1), _a([51], 0.0, 0.012, -0.5, 0.14, 0.05, False),
         _a([57], 0.0, -0.012, 0, 0.14, 0.05, False)),  # lip tightener
    24: (_a([62], 0.0, 0.022, 0, 0.2, 0.05, False), _a([66], 0.0, -0.022, 0, 0.2, 0.05, False)),  # lip presser
    25: (_a([66, 57], 0.0, 0.045, 0, 0.22, 0.06, False), _a([62], 0.0, -0.012, 0, 0.18, 0.04, False)),  # lips part
    26: (_a([8, 57], 0.0, 0.07, 0, 0.4, 0.2, False),),  # jaw drop
}
#: AU43 (eyes closed, a blink) is not a smooth field: the upper lid slides over the eye with a
#: sharp edge.  :class:`Eyelids` renders it.
BLINK_AU = 43

#: AU names, for documentation and reports.
AU_NAMES = {1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
            6: "cheek raiser", 7: "lid tightener", 9: "nose wrinkler", 10: "upper lip raiser",
            12: "lip corner puller", 14: "dimpler", 15: "lip corner depressor", 17: "chin raiser",
            20: "lip stretcher", 23: "lip tightener", 24: "lip presser", 25: "lips part", 26: "jaw drop",
            43: "eyes closed (blink)"}

#: Landmarks each AU mainly moves (used to check that change is where it should be).
AU_REGION = {1: "brows", 2: "brows", 4: "brows", 5: "eyes", 6: "eyes", 7: "eyes", 9: "nose", 10: "mouth",
             12: "mouth", 14: "mouth", 15: "mouth", 17: "mouth", 20: "mouth", 23: "mouth", 24: "mouth",
             25: "mouth", 26: "mouth", 43: "eyes"}


def expand_anchors(au: int, lm: np.ndarray, iod: float) -> list[tuple[np.ndarray, np.ndarray, float, float, float]]:
    """Concrete Gaussians of one AU for one face: (centre px, vector px, dz mm, sx px, sy px)."""
    out = []
    for anc in AU_LIBRARY[au]:
        sides = [(anc.landmarks, 1.0)]
        if anc.mirror:
            sides.append((tuple(MIRROR_68.get(i, i) for i in anc.landmarks), -1.0))
        for lms, sign in sides:
            centre = lm[list(lms)].mean(axis=0)
            vec = np.array([sign * anc.dx * iod, anc.dy * iod], np.float32)
            out.append((centre.astype(np.float32), vec, anc.dz_mm, anc.sx * iod, anc.sy * iod))
    return out


def au_field(au: int, lm: np.ndarray, iod: float, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """The AU's forward field over the box (x0, y0, w, h): (3, h, w) float32 = dx px, dy px, dz mm.

    Where Gaussians overlap the field is normalised so that each anchor's own centre moves by
    its own vector (a plain sum would double the motion where two anchors meet).
    """
    ys = np.arange(y0, y0 + h, dtype=np.float32)[:, None]
    xs = np.arange(x0, x0 + w, dtype=np.float32)[None, :]
    num = np.zeros((3, h, w), np.float32)
    den = np.zeros((h, w), np.float32)
    for centre, vec, dz, sx, sy in expand_anchors(au, lm, iod):
        g = np.exp(-0.5 * (((xs - centre[0]) / sx) ** 2 + ((ys - centre[1]) / sy) ** 2)).astype(np.float32)
        num[0] += g * vec[0]
        num[1] += g * vec[1]
        num[2] += g * dz
        den += g
    # Normalise only where Gaussians pile up (den > 1), keeping the decay to zero elsewhere.
    return num / np.maximum(den, 1.0)


def sample_field(field: np.ndarray, x0: int, y0: int, pts: np.ndarray) -> np.ndarray:
    """Bilinear samples of a (C, h, w) field at frame points (N, 2) -> (N, C); zero outside."""
    c, h, w = field.shape
    x = pts[:, 0] - x0
    y = pts[:, 1] - y0
    inside = (x >= 0) & (y >= 0) & (x <= w - 1.001) & (y <= h - 1.001)
    x, y = np.clip(x, 0, w - 1.001), np.clip(y, 0, h - 1.001)
    xi, yi = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - xi)[None], (y - yi)[None]
    v = (field[:, yi, xi] * (1 - fx) * (1 - fy) + field[:, yi, xi + 1] * fx * (1 - fy)
         + field[:, yi + 1, xi] * (1 - fx) * fy + field[:, yi + 1, xi + 1] * fx * fy)
    return (v * inside[None]).T.astype(np.float32)


class Eyelids:
    """Blinks (AU43): each upper lid slides down over its eye by ``weight`` x the eye opening.

    Defined as a backward map on a small box around each eye: below the moving lid edge the
    eye is untouched; between the resting lid line and the edge the image shows the lid, i.e.
    the skin just above the lid line, compressed, ending in the lash line at the edge.  Lid
    lines are parabolas through the landmarks (straight segments make the lid wavy).
    """

    def __init__(self, lm: np.ndarray, iod: float, shape: tuple[int, int]):
        self.eyes = []
        h, w = shape
        for upper_ids, lower_ids in (((36, 37, 38, 39), (36, 41, 40, 39)), ((42, 43, 44, 45), (42, 47, 46, 45))):
            up, lo = lm[list(upper_ids)], lm[list(lower_ids)]
            x0 = int(np.floor(up[:, 0].min())) - 1
            x1 = int(np.ceil(up[:, 0].max())) + 2
            y0 = int(np.floor(up[:, 1].min() - 0.05 * iod)) - 2
            y1 = int(np.ceil(lo[:, 1].max())) + 2
            x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
            xs = np.arange(x0, x1, dtype=np.float32)
            margin = 0.025 * iod  # landmarks sit on the lid margin; the lid line is slightly outside
            upper = np.polyval(np.polyfit(up[:, 0], up[:, 1], 2), xs).astype(np.float32) - margin
            lower = np.polyval(np.polyfit(lo[:, 0], lo[:, 1], 2), xs).astype(np.float32) + margin
            opening = np.clip(lower - upper, 0, None)
            opening[(xs < up[0, 0]) | (xs > up[-1, 0])] = 0
            gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            self.eyes.append(dict(box=(x0, y0, x1 - x0, y1 - y0), gx=gx, gy=gy, upper=upper[None, :],
                                  opening=opening[None, :], xs=xs, upper_ids=upper_ids[1:3]))

    def maps(self, weight: float):
        """Per eye: (box, map_x, map_y) for cv2.remap at blink weight 0..1."""
        weight = float(np.clip(weight, 0, 1))
        out = []
        for e in self.eyes:
            gy, upper = e["gy"], e["upper"]
            lid = upper + weight * e["opening"]
            covered = (gy >= upper) & (gy <= lid)
            src = np.where(covered, upper - 1.0 - 0.6 * (lid - gy), gy).astype(np.float32)
            out.append((e["box"], e["gx"], src))
        return out

    def apply(self, image: np.ndarray, weight: float, interp: int = 1) -> np.ndarray:
        import cv2

        out = image.copy()
        for (x0, y0, w, h), mx, my in self.maps(weight):
            out[y0:y0 + h, x0:x0 + w] = cv2.remap(image, mx, my, interp, borderMode=cv2.BORDER_REPLICATE)
        return out

    def move_landmarks(self, lm: np.ndarray, weight: float) -> np.ndarray:
        """Upper-lid landmarks (37, 38, 43, 44) follow the lid edge down."""
        weight = float(np.clip(weight, 0, 1))
        out = lm.copy()
        for e in self.eyes:
            for i in e["upper_ids"]:
                out[i, 1] += weight * float(np.interp(lm[i, 0], e["xs"], e["opening"][0]))
        return out
