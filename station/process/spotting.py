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
from station.vocab.landmarks import EYE_REGIONS, REGIONS_68, STABILISE_68

#: dlib-68 landmark groups that define the regions of interest (station.vocab.landmarks).
REGIONS = REGIONS_68
SCALE = 0.5  # working resolution relative to the 60-px-eye template


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
    lm49 = face2d.to49(landmarks68)
    template_eyes = np.array(face2d.TEMPLATE_EYES) * SCALE
    first = face2d.similarity_from_two_points(lm49[0][list(face2d.INNER_EYE_CORNERS)].astype(np.float64), template_eyes)
    box = np.array(face2d.crop_box(face2d.apply_affine(lm49[0], first) / SCALE)) * SCALE
    x0, y0, x1, y1 = (int(v) for v in box)
    size = (int(face2d.TEMPLATE_SIZE[0] * SCALE), int(face2d.TEMPLATE_SIZE[1] * SCALE))
    faces = np.empty((len(frames), y1 - y0, x1 - x0), np.float32)
    for t, (frame, m) in enumerate(zip(frames, stable_transforms(landmarks68, first))):
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        warped = cv2.warpAffine(gray, m, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        faces[t] = cv2.GaussianBlur(warped[y0:y1, x0:x1].astype(np.float32), (3, 3), 0)
    mean_lm = face2d.apply_affine(landmarks68, first).mean(0) - np.array([x0, y0])
    eye_gap = float(np.linalg.norm(mean_lm[42] - mean_lm[39]))
    regions = {}
    for name, idx in REGIONS.items():
        pts = mean_lm[list(idx)]
        pad = 0.25 * eye_gap
        rx0, ry0 = np.maximum(0, pts.min(0) - pad).astype(int)
        rx1, ry1 = np.minimum([x1 - x0, y1 - y0], pts.max(0) + pad).astype(int)
        regions[name] = (rx0, ry0, rx1, ry1)
    return faces, regions


def _against_local_background(faces: np.ndarray, regions: dict[str, tuple], fps: float, background_s: float,
                              measure, top_divisor: int) -> np.ndarray:
    """(T, R) robust z-scores of ``measure(background, frame)`` per region.

    The background of frame t is the median of the frames within ``background_s`` around it
    (recomputed every sixth of that span), so slow drifts and head motion cancel while a
    movement of a few hundred milliseconds stands out; each region scores the mean of its top
    ``1 / top_divisor`` of pixels, then every region is scaled by its own median and MAD.
    """
    n = len(faces)
    half = max(2, int(round(background_s * fps)))
    step = max(1, half // 6)
    raw = np.zeros((n, len(regions)), np.float32)
    for c in range(0, n, step):
        lo, hi = max(0, c - half), min(n, c + half + 1)
        background = np.median(faces[lo:hi:2], axis=0)
        for t in range(c, min(n, c + step)):
            magnitude = measure(background, faces[t])
            for r, (x0, y0, x1, y1) in enumerate(regions.values()):
                patch = magnitude[y0:y1, x0:x1].ravel()
                k = max(1, patch.size // top_divisor)
                raw[t, r] = np.partition(patch, -k)[-k:].mean() if patch.size else 0.0
    median = np.median(raw, axis=0)
    mad = np.median(np.abs(raw - median), axis=0) * 1.4826 + 1e-3
    return (raw - median) / mad


def region_scores(faces: np.ndarray, regions: dict[str, tuple], fps: float, background_s: float = 1.0) -> np.ndarray:
    """(T, R) difference to the local median background, per region, in noise units."""
    return _against_local_background(faces, regions, fps, background_s,
                                     lambda background, frame: np.abs(frame - background), top_divisor=10)


def flow_region_scores(faces: np.ndarray, regions: dict[str, tuple], fps: float, background_s: float = 1.0
                       ) -> np.ndarray:
    """(T, R) optical-flow magnitude from the local median background to each frame, per region.

    Farneback flow (as the MEGC optical-flow baselines) is insensitive to the sub-pixel global
    misalignment that plain differences see at every edge; what global motion is left is
    removed by subtracting the nose region's median flow (the nose barely moves with AUs).
    """
    nx0, ny0, nx1, ny1 = regions["nose"]

    def flow_magnitude(background: np.ndarray, frame: np.ndarray) -> np.ndarray:
        flow = cv2.calcOpticalFlowFarneback(np.clip(background, 0, 255).astype(np.uint8),
                                            np.clip(frame, 0, 255).astype(np.uint8), None,
                                            0.5, 2, 9, 3, 5, 1.1, 0)
        flow -= np.median(flow[ny0:ny1, nx0:nx1].reshape(-1, 2), axis=0)
        return np.linalg.norm(flow, axis=-1)

    return _against_local_background(faces, regions, fps, background_s, flow_magnitude, top_divisor=4)


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
    """Candidates and the per-frame score of one trial (module docstring)."""
    faces, regions = aligned_faces(frames, landmarks68)
    scorer = flow_region_scores if params.method == "flow" else region_scores
    per_region = scorer(faces, regions, fps, params.background_s)
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
    return candidates, score


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
def spot_trial(path: str | Path, rules: str | None = None, params: SpotParams | None = None) -> SpotResult:
    """Read a trial, track landmarks and spot; raises StationError naming file and frame."""
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
            frames = schema.read_rows(schema.color_dataset(f), 0, n, schema.frame_numbers(table))
            truth = schema.read_ground_truth_events(f)
            trial_id = schema.read_identity(f, path).trial_id
        except StationError:
            raise
        except Exception as err:  # noqa: BLE001 - damaged file: say which
            raise StationError(f"{path}: cannot read frames ({err})") from err
    numbers, stamps = schema.frame_numbers(table), schema.timestamps_ms(table)
    if n < 10:
        raise StationError(f"{path}: only {n} frame(s), too short to spot.")
    try:
        landmarks = face2d.track_landmarks(frames)
    except face2d.FaceNotFound as err:
        raise StationError(f"{path}: no face found in frame {int(numbers[err.frame])}") from err
    candidates, score = spot_sequence(frames, landmarks, numbers, stamps, float(calibration.fps), params)
    return SpotResult(trial_key(path), str(path), candidates, numbers, score, truth, trial_id)


def _spot_or_message(path, rules):
    from station.checks import StationError

    try:
        return spot_trial(path, rules), None
    except StationError as err:
        return None, f"skipped {err}"


def spot_trials(paths, rules: str | None = None, n_jobs: int = 1) -> tuple[list[SpotResult], list[str]]:
    """Spot every trial (a process pool when ``n_jobs`` > 1); bad trials become messages, the rest go on."""
    import functools

    from station.parallel import parallel_map  # spawn workers: see station.parallel for why not loky

    pairs = parallel_map(functools.partial(_spot_or_message, rules=rules), paths, jobs=n_jobs)
    return [r for r, _ in pairs if r is not None], [m for _, m in pairs if m is not None]


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
