"""What a synthetic participant looks like: real photographs that installed packages ship.

Why photographs: landmark detectors, LBP-TOP and optical flow respond to skin texture, pores,
hair and shading in ways no procedural texture imitates; a real face is the cheapest way to
give the processing chain realistic work.  Nothing is downloaded: the photos come from
scikit-image (``astronaut.png``), matplotlib (``grace_hopper.jpg``) and PsychoPy's demo stimuli
(``face01-03.jpg``), whichever are installed.

A *pseudo-subject* is one photo placed in the D415's 848x480 color frame at a plausible
distance (0.52-0.68 m, so the interocular distance is ~55-75 px), with a seeded shape morph
(eye spacing, nose length, mouth width, jaw width), skin tone, lighting gradient and small
head roll.  Everything derives from ``(seed, subject)``, so a subject is reproducible.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from station.checks import StationError
from station.vocab.landmarks import BROWS_68, EYE_L_68, EYE_R_68, OUTER_LIP_68

#: Real interocular distance (eye centre to eye centre) range, millimetres.
IOD_MM = (58.0, 68.0)
#: Distance of the face from the camera, metres (the paper films at ~0.5-0.7 m).
DISTANCE_M = (0.52, 0.68)

def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _photo_candidates() -> list[tuple[str, Path | None]]:
    """(name, path) of every face photo we know of, in subject order; missing packages give None."""
    skimage, mpl, psychopy = _package_dir("skimage"), _package_dir("matplotlib"), _package_dir("psychopy")
    stims = psychopy / "demos/builder/Design Templates/randomisedBlocks/stims" if psychopy else None
    return [
        ("psychopy-face01", stims / "face01.jpg" if stims else None),
        ("skimage-astronaut", skimage / "data/astronaut.png" if skimage else None),
        ("matplotlib-grace-hopper", mpl / "mpl-data/sample_data/grace_hopper.jpg" if mpl else None),
        ("psychopy-face03", stims / "face03.jpg" if stims else None),
        ("psychopy-face02", stims / "face02.jpg" if stims else None),
    ]


@functools.lru_cache(maxsize=1)
def available_photos() -> tuple[tuple[str, str], ...]:
    """(name, path) of the face photos present on this machine."""
    found = tuple((name, str(p)) for name, p in _photo_candidates() if p is not None and p.is_file())
    if not found:
        raise StationError("no face photo found for the synthetic participant: install scikit-image, "
                           "matplotlib or psychopy (they ship the photos it uses).")
    return found


@functools.lru_cache(maxsize=8)
def photo_with_landmarks(path: str) -> tuple[np.ndarray, np.ndarray]:
    """The RGB photo and dlib's 68 landmarks of its largest face (computed once, deterministic)."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise StationError(f"face photo {path!r} cannot be read as an image.")
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    from station.process.face2d import detect_face, predict_landmarks

    # Detect on a copy no bigger than 640 px (seconds saved), fit landmarks on the full photo.
    box = detect_face(rgb, rgb.shape[1] * min(1.0, 640.0 / max(rgb.shape[:2])))
    if box is None:
        raise StationError(f"dlib finds no face in the photo {path!r}.")
    return rgb, predict_landmarks(rgb, box)


def eye_centres(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(subject's right eye centre, left eye centre) from 68 landmarks."""
    return lm[list(EYE_R_68)].mean(axis=0), lm[list(EYE_L_68)].mean(axis=0)


def interocular(lm: np.ndarray) -> float:
    right, left = eye_centres(lm)
    return float(np.linalg.norm(left - right))


def face_centre(lm: np.ndarray) -> np.ndarray:
    """A stable face centre: between the eye centres and the mouth centre."""
    right, left = eye_centres(lm)
    return ((right + left) / 2 + lm[list(OUTER_LIP_68)].mean(axis=0)) / 2


@dataclass
class SubjectLook:
    """One pseudo-subject in the color frame (before any expression or head motion)."""

    subject: int
    photo: str
    color: np.ndarray  # (H, W, 3) uint8 RGB, neutral
    landmarks: np.ndarray  # (68, 2) float32, color pixel coordinates
    distance_m: float  # camera to the face plane (cheeks), metres
    iod_px: float
    roll_deg: float
    gain: float  # how strongly this subject expresses (multiplies event intensities)

    @property
    def mm_per_px(self) -> float:
        return self.distance_m * 1000.0 / self.fx

    fx: float = 611.4


def _similarity(src_pts: np.ndarray, scale: float, angle_deg: float, centre_from: np.ndarray,
                centre_to: np.ndarray) -> np.ndarray:
    """2x3 matrix: rotate by angle and scale about ``centre_from`` and move it to ``centre_to``."""
    m = cv2.getRotationMatrix2D((float(centre_from[0]), float(centre_from[1])), angle_deg, scale)
    m[:, 2] += centre_to - centre_from
    return m


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return (pts @ m[:, :2].T + m[:, 2]).astype(np.float32)


def skin_mask(shape: tuple[int, int], lm: np.ndarray, iod: float) -> np.ndarray:
    """Soft (0..1) mask of the face skin: jaw line closed over a raised forehead, feathered."""
    brows = lm[list(BROWS_68)][::-1].copy()
    brows[:, 1] -= 0.45 * iod  # forehead above the brows
    hull = np.concatenate([lm[0:17], brows]).astype(np.int32)
    mask = np.zeros(shape, np.float32)
    cv2.fillPoly(mask, [hull], 1.0)
    k = int(0.35 * iod) | 1
    return cv2.GaussianBlur(mask, (k * 2 + 1, k * 2 + 1), k / 2)


def photo_of(subject: int) -> tuple[str, str]:
    """(name, path) of the photo pseudo-subject ``subject`` (1-based) is made from: they take turns."""
    photos = available_photos()
    return photos[(subject - 1) % len(photos)]


def build_look(subject: int, seed: int, width: int, height: int, fx: float) -> SubjectLook:
    """Place a photo in the frame as pseudo-subject ``subject`` (1-based), reproducibly from ``seed``.

    Shape morphs are applied by :mod:`station.synth.participant` with the AU field machinery,
    so here we only do the global placement, skin tone and lighting.
    """
    name, path = photo_of(subject)
    rgb, lm_src = photo_with_landmarks(path)
    rng = np.random.default_rng([seed, subject, 101])
    distance = float(rng.uniform(*DISTANCE_M))
    iod_px = float(rng.uniform(*IOD_MM)) * fx / (distance * 1000.0)
    roll = float(rng.uniform(-4.0, 4.0))
    right, left = eye_centres(lm_src)
    src_roll = float(np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0])))
    scale = iod_px / interocular(lm_src)
    target = np.array([width / 2 + rng.uniform(-35, 35), height / 2 + rng.uniform(-12, 12)], np.float32)
    # Pre-shrink big photos with area averaging (warpAffine would alias), then rotate/place.
    if scale < 1.0:
        small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        lm_small, rest = lm_src * np.float32(scale), 1.0
    else:
        small, lm_small, rest = rgb, lm_src, scale
    m = _similarity(lm_small, rest, src_roll + roll, face_centre(lm_small), target)
    color = _place_on_wall(small, m, width, height)
    lm = apply_affine(m, lm_small)
    color = _tone_and_light(color, lm, iod_px, rng)
    gain = float(rng.uniform(0.7, 1.3))
    return SubjectLook(subject, name, color, lm, distance, iod_px, roll, gain, fx)


def _place_on_wall(photo: np.ndarray, m: np.ndarray, width: int, height: int) -> np.ndarray:
    """Warp the photo into the frame; where it does not reach, a plain wall of its border colour.

    Mirroring the photo instead would put extra faces in the frame, which face detectors
    (rightly) find.
    """
    color = cv2.warpAffine(photo, m, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)
    inside = cv2.warpAffine(np.ones(photo.shape[:2], np.float32), m, (width, height), flags=cv2.INTER_LINEAR)
    if inside.min() > 0.999:
        return color
    border = np.concatenate([photo[0], photo[-1], photo[:, 0], photo[:, -1]]).astype(np.float32)
    wall = np.empty_like(color, dtype=np.float32)
    wall[:] = np.median(border, axis=0) * 0.9
    inside = cv2.GaussianBlur(cv2.erode(inside, np.ones((9, 9), np.uint8)), (0, 0), 6)[..., None]
    return (color * inside + wall * (1 - inside)).astype(np.uint8)


def _tone_and_light(color: np.ndarray, lm: np.ndarray, iod: float, rng: np.random.Generator) -> np.ndarray:
    """Seeded skin tone on the face and a soft lighting gradient over the whole frame."""
    h, w = color.shape[:2]
    img = color.astype(np.float32)
    mask = skin_mask((h, w), lm, iod)[..., None]
    lightness = rng.uniform(0.8, 1.12)
    warmth = rng.uniform(-0.06, 0.06)
    tone = np.array([lightness * (1 + warmth), lightness, lightness * (1 - warmth)], np.float32)
    img = img * (1 - mask) + img * tone * mask
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = rng.uniform(-0.25, 0.25), rng.uniform(-0.12, 0.12)
    light = 1 + gx * (xx - w / 2) / w + gy * (yy - h / 2) / h
    img *= light[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)
