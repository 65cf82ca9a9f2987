"""Spotting: candidate micro-movement intervals in a long trial, for the coders to check.

Method (a feature-difference spotter in landmark regions of interest, after the MEGC
spotting baselines, with a background reference instead of fixed-length windows):

1. dlib landmarks are tracked on every frame; each frame is aligned to a template by its own
   inner eye corners (so slow head motion is removed) and reduced to a blurred gray face.
2. The reference of frame t is the per-pixel temporal median of the frames around it
   (``background_s``): movements are sparse and short, so the median is the neutral face.
3. For each region of interest (brows, eyes, nose, mouth, each side separately) the score is the
   mean of the largest 10 % absolute differences to the reference, in units of that region's
   own noise (median and MAD over the trial).
4. A frame's score is the largest region score, smoothed over a few frames; intervals are runs
   above a low threshold that peak above a high one (hysteresis), widened to the surrounding
   minima so onset and offset are not cut short by the threshold.
5. Each interval is labelled ``micro`` or ``macro`` (longer than ``macro_min_ms``, rules.yaml)
   and ``blink`` when the eye regions carry the movement alone.

Scoring follows MEGC: a proposed interval is a true positive when its temporal IoU with a
ground-truth micro-expression is at least 0.5 (each truth matched once).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from station.process import face2d
from station.vocab.landmarks import EYE_REGIONS, INNER_EYE_CORNERS_49, REGIONS_68, STABILISE_68, to49

#: dlib-68 landmark groups that define the regions of interest (station.vocab.landmarks).
REGIONS = REGIONS_68
SCALE = 0.5  # working resolution relative to the 60-px-eye template
#: cv2.calcOpticalFlowFarneback(pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags)
FARNEBACK = (0.5, 2, 9, 1, 5, 1.1, 0)  # one iteration per level: same F1 on the benches, 1.2x faster (docs)


@dataclass
class SpotParams:
    background_s: float = 1.0  # half-width of the median reference window
    smooth_frames: int = 3
    low: float = 3.0  # hysteresis thresholds in noise units
    high: float = 4.0  # tuned on synthetic subjects 1-3 of docs/benchmarks.md (seed 1)
    min_frames: int = 4
    merge_gap_frames: int = 3
    blink_share: float = 0.6  # eye regions' share of the apex score that makes a blink
    macro_min_ms: float = 500.0
    method: str = "flow"  # "flow" (optical flow) or "difference" (intensity difference)
    landmark_step: int = 3  # landmarks predicted every n-th frame, interpolated between (spot_trial)
    check_s: float = 2.0  # the detector re-checks the tracked face this often (spot_trial)
    block_frames: int = 64  # frames read from the file at once (spot_trial)
    measure_step: int = 2  # optical flow on every n-th frame, region scores interpolated between


@dataclass
class Candidate:
    onset: int  # device frame numbers
    apex: int
    offset: int
    score: float
    kind: str  # micro | macro | blink
    duration_ms: float = 0.0
    regions: str = ""


@dataclass
class SpotResult:
    trial: str
    path: str
    candidates: list[Candidate]
    frame_numbers: np.ndarray
    score: np.ndarray  # per frame
    truth: list[dict] = field(default_factory=list)
    trial_id: str = ""  # the trial file's UUID (station.record.schema.TRIAL_ID): what candidates refer to
    per_region: np.ndarray | None = None  # (T, R) region scores in noise units (spot_trial)
    regions: tuple[str, ...] = ()  # names of per_region's columns
    identity: dict = field(default_factory=dict)  # schema.TrialIdentity.as_dict() of the trial
    fps: float = 0.0


# -- numpy in, numpy out ----------------------------------------------------------------------
RIGID_68 = list(STABILISE_68)  # nose and eye corners: barely move with AUs (a list: fancy indexing)


def stable_transforms(landmarks68: np.ndarray, first: np.ndarray, window: int = 15) -> np.ndarray:
    """(T, 2, 3) per-frame similarities to the template, fitted on rigid landmarks and smoothed.

    Per-frame fits follow landmark jitter (about a pixel), and a one-pixel shift of the whole
    face is a larger image difference than a micro-expression; head motion is slow, so a
    moving median over ``window`` frames keeps it and drops the jitter.
    """
    ref = face2d.apply_affine(landmarks68[0][RIGID_68], first)
    params = []
    for lm in landmarks68:
        m, _ = cv2.estimateAffinePartial2D(lm[RIGID_68].astype(np.float32), ref.astype(np.float32), method=cv2.LMEDS)
        m = m if m is not None else first
        params.append([m[0, 0], m[1, 0], m[0, 2], m[1, 2]])
    params = np.array(params)
    half = window // 2
    padded = np.pad(params, ((half, half), (0, 0)), mode="edge")
    smooth = np.stack([np.median(padded[t: t + window], axis=0) for t in range(len(params))])
    a, b, tx, ty = smooth.T
    return np.stack([np.stack([a, -b, tx], 1), np.stack([b, a, ty], 1)], 1)


def aligned_faces(frames: np.ndarray, landmarks68: np.ndarray) -> tuple[np.ndarray, dict[str, tuple]]:
    """(T, h, w) float32 gray faces aligned per frame, and the region boxes in that image."""
    first, (x0, y0, x1, y1), size = _template_geometry(landmarks68[0])
    faces = np.empty((len(frames), y1 - y0, x1 - x0), np.float32)
    for t, (frame, m) in enumerate(zip(frames, stable_transforms(landmarks68, first))):
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        warped = cv2.warpAffine(gray, m, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        faces[t] = cv2.GaussianBlur(warped[y0:y1, x0:x1].astype(np.float32), (3, 3), 0)
    mean_lm = face2d.apply_affine(landmarks68, first).mean(0) - np.array([x0, y0])
    return faces, _region_boxes(mean_lm, (x1 - x0, y1 - y0))


def median_of_frames(stack: np.ndarray) -> np.ndarray:
    """Per-pixel median of (N, h, w) frames, equal to ``np.median(stack, axis=0)``.

    Pixels are made rows of a contiguous array and partitioned at the middle: 6x faster than
    ``np.median`` along the first axis, which walks memory with a stride of a whole frame.
    """
    m = len(stack)
    flat = np.ascontiguousarray(stack.reshape(m, -1).T)
    if m % 2:
        return np.partition(flat, m // 2, axis=1)[:, m // 2].reshape(stack.shape[1:])
    part = np.partition(flat, [m // 2 - 1, m // 2], axis=1)
    return ((part[:, m // 2 - 1] + part[:, m // 2]) / 2).astype(stack.dtype).reshape(stack.shape[1:])


def _against_local_background(faces: np.ndarray, regions: dict[str, tuple], fps: float, background_s: float,
                              measure, top_divisor: int, every: int = 1) -> np.ndarray:
    """(T, R) robust z-scores of ``measure(background, frame)`` per region.

    The background of frame t is the median of the frames within ``background_s`` around it
    (recomputed every sixth of that span), so slow drifts and head motion cancel while a
    movement of a few hundred milliseconds stands out; each region scores the mean of its top
    ``1 / top_divisor`` of pixels, then every region is scaled by its own median and MAD.
    With ``every`` > 1 only every n-th frame (and the last) is measured and the raw region
    scores of the frames between are interpolated linearly: at 60 fps a micro-expression
    spans 12-30 frames, and the score is smoothed over 3 frames anyway.
    """
    n = len(faces)
    half = max(2, int(round(background_s * fps)))
    step = max(1, half // 6)
    raw = np.zeros((n, len(regions)), np.float32)
    for c in range(0, n, step):
        lo, hi = max(0, c - half), min(n, c + half + 1)
        background = median_of_frames(faces[lo:hi:2])
        frames = [t for t in range(c, min(n, c + step)) if t % every == 0 or t == n - 1]
        if not frames:
            continue
        block = np.stack([measure(background, faces[t]) for t in frames])
        for r, (x0, y0, x1, y1) in enumerate(regions.values()):  # top share of every frame at once
            patch = block[:, y0:y1, x0:x1].reshape(len(block), -1)
            if patch.shape[1]:
                k = max(1, patch.shape[1] // top_divisor)
                raw[frames, r] = np.partition(patch, -k, axis=1)[:, -k:].mean(axis=1)
    if every > 1:
        measured = np.array(sorted({*range(0, n, every), n - 1}))
        for r in range(raw.shape[1]):
            raw[:, r] = np.interp(np.arange(n), measured, raw[measured, r])
    median = np.median(raw, axis=0)
    mad = np.median(np.abs(raw - median), axis=0) * 1.4826 + 1e-3
    return (raw - median) / mad


def region_scores(faces: np.ndarray, regions: dict[str, tuple], fps: float, background_s: float = 1.0) -> np.ndarray:
    """(T, R) difference to the local median background, per region, in noise units."""
    return _against_local_background(faces, regions, fps, background_s,
                                     lambda background, frame: np.abs(frame - background), top_divisor=10)


def flow_region_scores(faces: np.ndarray, regions: dict[str, tuple], fps: float, background_s: float = 1.0,
                       every: int = 1) -> np.ndarray:
    """(T, R) optical-flow magnitude from the local median background to each frame, per region.

    Farneback flow (as the MEGC optical-flow baselines) is insensitive to the sub-pixel global
    misalignment that plain differences see at every edge; what global motion is left is
    removed by subtracting the nose region's median flow (the nose barely moves with AUs).
    """
    nx0, ny0, nx1, ny1 = regions["nose"]

    def flow_magnitude(background: np.ndarray, frame: np.ndarray) -> np.ndarray:
        flow = cv2.calcOpticalFlowFarneback(np.clip(background, 0, 255).astype(np.uint8),
                                            np.clip(frame, 0, 255).astype(np.uint8), None, *FARNEBACK)
        flow -= np.median(flow[ny0:ny1, nx0:nx1].reshape(-1, 2), axis=0)
        return cv2.magnitude(flow[..., 0], flow[..., 1])

    return _against_local_background(faces, regions, fps, background_s, flow_magnitude, top_divisor=4, every=every)


def intervals_from_score(score: np.ndarray, params: SpotParams) -> list[tuple[int, int, int]]:
    """(start, peak, end) frame positions of hysteresis runs, widened to the nearby minima."""
    above = score > params.low
    runs, t = [], 0
    while t < len(score):
        if above[t]:
            s = t
            while t < len(score) and above[t]:
                t += 1
            runs.append([s, t - 1])
        t += 1
    merged: list[list[int]] = []
    for run in runs:
        if merged and run[0] - merged[-1][1] <= params.merge_gap_frames:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    out = []
    for s, e in merged:
        peak = s + int(np.argmax(score[s: e + 1]))
        if score[peak] < params.high or e - s + 1 < params.min_frames:
            continue
        floor = 0.15 * score[peak]
        while s > 0 and score[s - 1] < score[s] and score[s - 1] > floor:
            s -= 1
        while e < len(score) - 1 and score[e + 1] < score[e] and score[e + 1] > floor:
            e += 1
        out.append((s, peak, e))
    return out


def spot_sequence(frames: np.ndarray, landmarks68: np.ndarray, frame_numbers: np.ndarray, timestamps_ms: np.ndarray,
                  fps: float, params: SpotParams = SpotParams()) -> tuple[list[Candidate], np.ndarray]:
    """Candidates and the per-frame score of one trial held in memory (module docstring)."""
    faces, regions = aligned_faces(frames, landmarks68)
    candidates, score, _ = spot_faces(faces, regions, frame_numbers, timestamps_ms, fps, params)
    return candidates, score


def spot_faces(faces: np.ndarray, regions: dict[str, tuple], frame_numbers: np.ndarray, timestamps_ms: np.ndarray,
               fps: float, params: SpotParams = SpotParams()) -> tuple[list[Candidate], np.ndarray, np.ndarray]:
    """Candidates, the smoothed per-frame score and the (T, R) region scores of aligned faces."""
    if params.method == "flow":
        per_region = flow_region_scores(faces, regions, fps, params.background_s, every=params.measure_step)
    else:
        per_region = region_scores(faces, regions, fps, params.background_s)
    score = per_region.max(axis=1)
    if params.smooth_frames > 1:
        score = np.convolve(score, np.ones(params.smooth_frames) / params.smooth_frames, mode="same")
    names = list(regions)
    eyes = [names.index(r) for r in EYE_REGIONS]
    candidates = []
    for s, p, e in intervals_from_score(score, params):
        positive = np.clip(per_region[p], 0, None)
        share = positive[eyes].sum() / max(positive.sum(), 1e-6)
        duration = float(timestamps_ms[e] - timestamps_ms[s])
        kind = "blink" if share >= params.blink_share else ("macro" if duration > params.macro_min_ms else "micro")
        top = [names[i] for i in np.argsort(-per_region[p])[:2]]
        candidates.append(Candidate(int(frame_numbers[s]), int(frame_numbers[p]), int(frame_numbers[e]),
                                    float(score[p]), kind, duration, "+".join(top)))
    return candidates, score, per_region


# -- a whole trial, streamed ----------------------------------------------------------------------
def _template_geometry(first_landmarks68: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int], tuple[int, int]]:
    """The first frame's similarity to the template, the face crop in it and the canvas size (aligned_faces)."""
    lm49 = to49(first_landmarks68)
    template_eyes = np.array(face2d.TEMPLATE_EYES) * SCALE
    first = face2d.similarity_from_two_points(lm49[list(INNER_EYE_CORNERS_49)].astype(np.float64), template_eyes)
    box = np.array(face2d.crop_box(face2d.apply_affine(lm49, first) / SCALE)) * SCALE
    size = (int(face2d.TEMPLATE_SIZE[0] * SCALE), int(face2d.TEMPLATE_SIZE[1] * SCALE))
    return first, tuple(int(v) for v in box), size


def _similarity_params(landmarks68: np.ndarray, ref: np.ndarray, fallback: np.ndarray) -> list[float]:
    m, _ = cv2.estimateAffinePartial2D(landmarks68[RIGID_68].astype(np.float32), ref, method=cv2.LMEDS)
    m = m if m is not None else fallback
    return [m[0, 0], m[1, 0], m[0, 2], m[1, 2]]


#: The gray window kept per frame reaches this share of the landmarks' box beyond each side,
#: more than the face crop needs (4 eye distances wide, brows to chin), so warping the window
#: gives exactly what warping the whole frame gives.
WINDOW_MARGIN = 0.6


class FaceStream:
    """Aligned gray faces of a trial fed frame by frame, with a lag of half the smoothing window.

    What :func:`aligned_faces` computes from a whole trial in memory, in one pass over the file
    and without keeping its frames: the face is detected once, followed by the landmark
    predictor every ``landmark_step`` frames (linear in between: the transforms are smoothed
    over 15 frames anyway, :func:`stable_transforms`), re-checked by the detector every
    ``check_s`` seconds; only a gray window around the face is kept until its frame's smoothed
    transform is known, then warped straight into the face crop.
    """

    def __init__(self, n_frames: int, fps: float, params: SpotParams, window: int = 15):
        self.n, self.params, self.half = n_frames, params, window // 2
        self.check_every = max(1, int(round(params.check_s * fps)))
        self.landmarks = np.zeros((n_frames, 68, 2), np.float32)
        self._params: list[list[float] | None] = [None] * n_frames
        self._pending: dict[int, tuple[np.ndarray, int, int]] = {}
        self._known = -1  # landmarks known up to this frame
        self._done = 0  # faces warped up to (not including) this frame
        self._last_predicted = -1
        self.faces: np.ndarray | None = None

    def add(self, t: int, rgb: np.ndarray) -> None:
        """Frame ``t`` (in order); raises :class:`face2d.FaceNotFound` when the face is lost."""
        if t == 0:
            self._box0 = face2d.detect_face(rgb)
            if self._box0 is None:
                raise face2d.FaceNotFound("no face found in the first frame", 0)
            self._predict(0, rgb, self._box0)
            self._first, (x0, y0, x1, y1), self._size = _template_geometry(self.landmarks[0])
            self._crop = (x0, y0, x1, y1)
            self._ref = face2d.apply_affine(self.landmarks[0][RIGID_68], self._first).astype(np.float32)
            self.faces = np.empty((self.n, y1 - y0, x1 - x0), np.float32)
        else:
            box = face2d.follow_box(self._box0, self.landmarks[0], self.landmarks[self._last_predicted])
            if t % self.check_every == 0 and not face2d.face_still_there(rgb, box):
                raise face2d.FaceNotFound(f"no face found in frame {t}", t)
            if t % self.params.landmark_step == 0 or t == self.n - 1:
                self._predict(t, rgb, box)
        self._keep_window(t, rgb)
        self._warp_ready(final=t == self.n - 1)

    def _predict(self, t: int, rgb: np.ndarray, box) -> None:
        self.landmarks[t] = face2d.predict_landmarks(rgb, box)
        last = self._last_predicted
        if last >= 0 and t - last > 1:  # frames in between: linear
            w = (np.arange(last + 1, t) - last)[:, None, None] / (t - last)
            self.landmarks[last + 1: t] = (1 - w) * self.landmarks[last] + w * self.landmarks[t]
        for u in range(last + 1, t + 1):
            self._params[u] = _similarity_params(self.landmarks[u], self._ref, self._first) if t else None
        self._last_predicted = self._known = t

    def _keep_window(self, t: int, rgb: np.ndarray) -> None:
        lm = self.landmarks[self._last_predicted]
        (lx0, ly0), (lx1, ly1) = lm.min(0), lm.max(0)
        mx, my = WINDOW_MARGIN * (lx1 - lx0), WINDOW_MARGIN * (ly1 - ly0)
        h, w = rgb.shape[:2]
        x0, y0 = int(max(0, lx0 - mx)), int(max(0, ly0 - my))
        x1, y1 = int(min(w, lx1 + mx + 1)), int(min(h, ly1 + my + 1))
        self._pending[t] = (cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY), x0, y0)

    def _warp_ready(self, final: bool) -> None:
        if self._params[0] is None:  # frame 0's own fit, once the reference exists
            self._params[0] = _similarity_params(self.landmarks[0], self._ref, self._first)
        ready = self.n if final else self._known - self.half + 1
        x0, y0, x1, y1 = self._crop
        while self._done < ready:
            u = self._done
            lo, hi = u - self.half, u + self.half
            rows = [self._params[min(max(i, 0), self.n - 1)] for i in range(lo, hi + 1)]  # edge padding
            a, b, tx, ty = np.median(np.array(rows), axis=0)
            gray, wx, wy = self._pending.pop(u)
            # template <- frame is [[a, -b, tx], [b, a, ty]]; the window starts at (wx, wy) and
            # only the crop (x0, y0)..(x1, y1) of the template canvas is made
            m = np.array([[a, -b, tx + a * wx - b * wy - x0], [b, a, ty + b * wx + a * wy - y0]])
            warped = cv2.warpAffine(gray, m, (x1 - x0, y1 - y0), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
            self.faces[u] = cv2.GaussianBlur(warped.astype(np.float32), (3, 3), 0)
            self._done += 1

    def regions(self) -> dict[str, tuple]:
        """Region boxes in the face crop, from the trial's mean landmarks (as :func:`aligned_faces`)."""
        x0, y0, x1, y1 = self._crop
        mean_lm = face2d.apply_affine(self.landmarks, self._first).mean(0) - np.array([x0, y0])
        return _region_boxes(mean_lm, (x1 - x0, y1 - y0))


def _region_boxes(mean_lm: np.ndarray, size: tuple[int, int]) -> dict[str, tuple]:
    eye_gap = float(np.linalg.norm(mean_lm[42] - mean_lm[39]))
    regions = {}
    for name, idx in REGIONS.items():
        pts = mean_lm[list(idx)]
        pad = 0.25 * eye_gap
        rx0, ry0 = np.maximum(0, pts.min(0) - pad).astype(int)
        rx1, ry1 = np.minimum(list(size), pts.max(0) + pad).astype(int)
        regions[name] = (rx0, ry0, rx1, ry1)
    return regions


# -- scoring (MEGC) ----------------------------------------------------------------------------
def match_intervals(proposed: list[tuple[int, int]], truth: list[tuple[int, int]], min_iou: float = 0.5) -> int:
    """True positives: proposals with IoU >= min_iou to a not yet matched truth interval."""
    from station.process.agreement import interval_iou

    used: set[int] = set()
    tp = 0
    for p in proposed:
        best, best_iou = None, min_iou
        for i, g in enumerate(truth):
            iou = interval_iou(p, g)
            if i not in used and iou >= best_iou:
                best, best_iou = i, iou
        if best is not None:
            used.add(best)
            tp += 1
    return tp


def spotting_scores(tp: int, n_proposed: int, n_truth: int) -> dict:
    precision = tp / n_proposed if n_proposed else 0.0
    recall = tp / n_truth if n_truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": n_proposed - tp, "fn": n_truth - tp, "precision": precision, "recall": recall, "f1": f1}


def evaluate_spotting(results: list[SpotResult], kinds: tuple[str, ...] = ("micro",)) -> dict | None:
    """MEGC scores of the ``micro`` candidates against the ``micro`` ground truth, pooled over trials."""
    with_truth = [r for r in results if r.truth]
    if not with_truth:
        return None
    tp = n_prop = n_truth = 0
    for r in with_truth:
        proposed = [(c.onset, c.offset) for c in r.candidates if c.kind in kinds]
        truth = [(e["onset"], e["offset"]) for e in r.truth if e.get("kind") in kinds]
        tp += match_intervals(proposed, truth)
        n_prop += len(proposed)
        n_truth += len(truth)
    return spotting_scores(tp, n_prop, n_truth)


# -- I/O ---------------------------------------------------------------------------------------
def spot_trial(path: str | Path, rules: str | None = None, params: SpotParams | None = None,
               progress=None) -> SpotResult:
    """Read a trial block by block, follow the face and spot; raises StationError naming file and frame.

    Only the aligned gray face of each frame is kept (:class:`FaceStream`), so a trial of any
    length fits in memory; ``progress(k)`` is called after every ``k`` frames read.
    """
    from station.checks import StationError
    from station.process.coding import trial_key
    from station.process.selection import load_rules
    from station.record import schema
    from station.record.writer import open_trial, read_calibration

    params = params or SpotParams(macro_min_ms=load_rules(rules).macro_min_ms)
    from station.process.trialcheck import check_trial_file

    path = check_trial_file(path)
    with open_trial(path) as f:
        try:
            calibration = read_calibration(f)
            table = schema.frames_table(f)
            n = len(table)
            color = schema.color_dataset(f)
            truth = schema.read_ground_truth_events(f)
            identity = schema.read_identity(f, path)
        except StationError:
            raise
        except Exception as err:  # noqa: BLE001 - damaged file: say which
            raise StationError(f"{path}: cannot read frames ({err})") from err
        numbers, stamps = schema.frame_numbers(table), schema.timestamps_ms(table)
        if n < 10:
            raise StationError(f"{path}: only {n} frame(s), too short to spot.")
        fps = float(calibration.fps)
        stream = FaceStream(n, fps, params)
        buffer = np.empty((min(n, params.block_frames), *color.shape[1:]), color.dtype)
        try:
            for start in range(0, n, params.block_frames):
                stop = min(n, start + params.block_frames)
                block = schema.read_rows(color, start, stop, numbers, out=buffer[: stop - start])
                for i, rgb in enumerate(block):
                    stream.add(start + i, rgb)
                if progress is not None:
                    progress(len(block))
        except face2d.FaceNotFound as err:
            raise StationError(f"{path}: no face found in frame {int(numbers[err.frame])}") from err
        except StationError:
            raise
        except Exception as err:  # noqa: BLE001 - damaged file: say which
            raise StationError(f"{path}: cannot read frames ({err})") from err
    regions = stream.regions()
    candidates, score, per_region = spot_faces(stream.faces, regions, numbers, stamps, fps, params)
    return SpotResult(trial_key(path), str(path), candidates, numbers, score, truth, identity.trial_id,
                      per_region=per_region, regions=tuple(regions), identity=identity.as_dict(), fps=fps)


def _spot_or_message(path, rules, progress=None):
    from station.checks import StationError

    try:
        return spot_trial(path, rules, progress=progress), None
    except StationError as err:
        return None, f"skipped {err}"


def spot_trials(paths, rules: str | None = None, n_jobs: int = 1, progress=None
                ) -> tuple[list[SpotResult], list[str]]:
    """Spot every trial (worker processes when ``n_jobs`` > 1); bad trials become messages, the rest go on.

    ``progress``: a ``rich.progress.Progress``; one process advances a bar frame by frame,
    worker processes trial by trial.
    """
    import functools

    from station.parallel import n_workers, parallel_map  # spawn workers: see station.parallel for why not loky

    paths = list(paths)
    if n_workers(n_jobs) > 1 and len(paths) > 1:
        pairs = parallel_map(functools.partial(_spot_or_message, rules=rules), paths, jobs=n_jobs,
                             progress=progress, description=f"spotting {len(paths)} trials")
    else:
        task = progress.add_task("spotting", total=_frames_in(paths)) if progress is not None else None
        advance = (lambda k: progress.advance(task, k)) if task is not None else None
        pairs = [_spot_or_message(p, rules, advance) for p in paths]
    return [r for r, _ in pairs if r is not None], [m for _, m in pairs if m is not None]


def _frames_in(paths) -> int:
    from station.record import schema
    from station.record.writer import open_trial

    total = 0
    for path in paths:
        try:
            with open_trial(path) as f:
                total += schema.readable_frames(f)
        except Exception:  # noqa: BLE001 - spot_trial reports a bad file properly
            pass
    return total


# -- the score curve, for the coding tool ---------------------------------------------------------
#: Layout of the score-curve file ``<candidates>.scores.h5`` that ``station spot`` writes beside
#: its candidates CSV (version 1).  One group per trial (``trial-0001``, ``trial-0002`` ... in
#: the order spotted) whose attributes carry the trial's identity: it is found by ``trial_id``,
#: or, for a file recorded before trial ids existed, by its path (then its file name).  It holds::
#:
#:     frame_numbers  (T,) int64    device frame numbers of the trial's colour frames
#:     score          (T,) float32  the smoothed spotting score (noise units), what candidates are cut from
#:     per_region     (T, R) float32 each region's score; attrs['regions'] names the R columns
#:     attrs          trial_id, participant, session, trial, clip, name, path (TrialIdentity),
#:                    fps, low, high (the hysteresis thresholds), method
#:
#: Read it with :func:`read_score_curve`; nothing needs recomputing to draw the curve.
SCORES_VERSION = 1


def scores_path(candidates_csv: str | Path) -> Path:
    """Where ``station spot`` puts the score curves of ``candidates.csv``: ``candidates.scores.h5``."""
    path = Path(candidates_csv)
    return path.with_name(path.stem + ".scores.h5")


def _same_path(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def write_score_curves(path: str | Path, results: list[SpotResult], params: SpotParams | None = None) -> Path:
    """Write every trial's score curve (layout above), atomically."""
    import h5py

    from station.fileio import atomic_path

    params = params or SpotParams()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update({"version": SCORES_VERSION, "kind": "station spot score curves"})
        for i, r in enumerate(results, start=1):
            identity = r.identity or {"trial_id": r.trial_id, "name": r.trial, "path": r.path}
            g = f.create_group(f"trial-{i:04d}")
            g.create_dataset("frame_numbers", data=np.asarray(r.frame_numbers, np.int64))
            g.create_dataset("score", data=np.asarray(r.score, np.float32))
            if r.per_region is not None:
                g.create_dataset("per_region", data=np.asarray(r.per_region, np.float32))
            g.attrs.update({k: ("" if v is None else v) for k, v in identity.items()})
            g.attrs.update({"regions": list(r.regions), "fps": r.fps, "low": params.low, "high": params.high,
                            "method": params.method})
    return path


def read_score_curve(path: str | Path, trial) -> dict | None:
    """One trial's curve from a score-curve file (or the candidates CSV beside it), or None.

    ``trial``: a trial id, a :class:`station.record.schema.TrialIdentity` or a file name (for
    files without ids).  Returns ``frame_numbers``, ``score``, ``per_region`` (or None),
    ``regions`` and the group's attributes (identity, fps, low, high).
    """
    import h5py

    from station.record import schema

    path = Path(path)
    if path.suffix == ".csv":
        path = scores_path(path)
    if not path.exists():
        return None
    if isinstance(trial, schema.TrialIdentity):
        trial_id, where, name = trial.trial_id, trial.path, trial.name
    elif schema.is_trial_id(str(trial)):
        trial_id, where, name = str(trial), "", ""
    else:
        trial_id, where, name = "", str(trial), schema.trial_key(str(trial))
    with h5py.File(path, "r") as f:
        groups = [f[k] for k in sorted(f)]
        same_path = [g for g in groups if where and _same_path(g.attrs.get("path", ""), where)]
        by_name = [g for g in groups if name and g.attrs.get("name", "") == name]
        match = ([g for g in groups if trial_id and g.attrs.get("trial_id", "") == trial_id]
                 or ([] if trial_id and not where else same_path) or (by_name if len(by_name) == 1 else []))
        if not match:
            return None
        g = match[0]
        attrs = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in g.attrs.items()}
        return {"frame_numbers": g["frame_numbers"][...], "score": g["score"][...],
                "per_region": g["per_region"][...] if "per_region" in g else None,
                "regions": list(attrs.pop("regions", [])), **attrs}


#: ``trial`` (file name) and ``path`` are for people; ``trial_id`` is what a row is matched by.
CANDIDATE_COLUMNS = ("trial", "onset", "apex", "offset", "kind", "score", "duration_ms", "regions", "path", "trial_id")


def write_candidates(path: str | Path, results: list[SpotResult]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CANDIDATE_COLUMNS)
        for r in results:
            for c in r.candidates:
                w.writerow([r.trial, c.onset, c.apex, c.offset, c.kind, f"{c.score:.2f}", f"{c.duration_ms:.1f}",
                            c.regions, r.path, r.trial_id])
    return path


def read_candidates(path: str | Path, trial=None) -> list[Candidate]:
    """Candidates of a candidates CSV, all or those of ``trial``: a trial id, a file name, or an
    identity (:class:`station.record.schema.TrialIdentity`).  A row with a ``trial_id`` is
    matched by it only; older rows without one by file name."""
    from station.checks import StationError

    path = Path(path)
    if not path.exists():
        raise StationError(f"candidates file {str(path)!r} does not exist (make it with `station spot`).")
    from station.fileio import read_table

    rows = read_table(path, required=("onset", "apex", "offset", "score", "kind"), what="candidates file").rows
    frame = "a frame number"
    return [Candidate(r.value("onset", int, frame), r.value("apex", int, frame), r.value("offset", int, frame),
                      r.value("score", float, "a number"), r["kind"],
                      r.value("duration_ms", lambda t: float(t or 0), "a number"), r.get("regions", ""))
            for r in rows if trial is None or _is_trial(r, trial)]


def _is_trial(row: dict, trial) -> bool:
    from station.record import schema

    if isinstance(trial, schema.TrialIdentity):
        trial_id, name = trial.trial_id, trial.name
    elif schema.is_trial_id(trial):
        trial_id, name = trial, ""
    else:
        trial_id, name = "", schema.trial_key(str(trial))
    if row.get("trial_id") and trial_id:
        return row["trial_id"] == trial_id
    return bool(name) and schema.trial_key(row.get("trial", "")) == name
