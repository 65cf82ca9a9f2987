"""From trial files and a final coding to the database (``station process``).

One trial is one unit of work (:func:`process_trial`): it opens its file once, selects the
coded movements that are micro-expressions (duration rule on device timestamps), runs 2D and
3D preprocessing for each and writes the sample's PNG/PLY/HDF5 files.  It never raises for a
bad trial or sample: every problem becomes a :class:`Skip` naming file and frame, so one broken
file never stops a night's processing, and the summary says what is missing and why.
"""

from __future__ import annotations

import json
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from station.checks import StationError
from station.dataset import Sample, SampleRecord
from station.process import face2d, face3d
from station.process.coding import Annotation, trial_key
from station.vocab.facs import format_aus, parse_aus
from station.vocab.landmarks import RIGID_49
from station.process.trialcheck import check_trial_file
from station.process.selection import (Rules, durations_ms, is_micro, load_rules, nonobjective_class,
                                       objective_class, strip_uncoded)


@dataclass
class Skip:
    """Something that was not exported, and why (the summary lists these)."""

    file: str
    reason: str
    frame: int | None = None
    sample: str = ""
    kind: str = "error"  # "error" (bad input) or "not selected" (duration rule)

    def __str__(self) -> str:
        where = self.file + (f", frame {self.frame}" if self.frame is not None else "")
        return f"{where}{' (' + self.sample + ')' if self.sample else ''}: {self.reason}"


@dataclass
class SampleSpec:
    """A coded movement to export, with the context the non-objective label needs."""

    annotation: Annotation
    clip_emotion: str = ""
    self_report: str = ""


@dataclass
class ProcessOptions:
    out: str
    rules: str | None = None
    write_png: bool = True
    write_ply: bool = True
    icp_method: str = "point_to_plane"
    warmup: int = 5  # frames before onset that prime the temporal depth filter
    check_every: int = 15  # face re-detection period (frames)


@dataclass
class TrialOutcome:
    trial: str
    records: list[SampleRecord] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    seconds: float = 0.0


# -- trial context ----------------------------------------------------------------------------
def _attr(f, *names, default=""):
    for name in names:
        if name in f.attrs:
            value = f.attrs[name]
            return value.decode() if isinstance(value, bytes) else value
    return default


def trial_context(f, path: Path) -> dict:
    """Subject, trial number, clip and its emotion, self-report: from attributes, else the path.

    Session folders are ``sessions/<participant>/<session>/trial-NN-<clip>.h5``; a synthetic
    dataset is ``<out>/subNN/trial-NN.h5`` with a ``subject`` attribute.
    """
    match = re.match(r"trial-(\d+)(?:-(.+))?$", path.name.split(".")[0])
    subject = str(_attr(f, "participant", "subject", default="")) or path.parent.parent.name or path.parent.name
    subject = re.sub(r"^sub0*(?=\d)", "", subject)
    context = {
        "subject": subject,
        "trial_no": int(_attr(f, "trial", default=match.group(1) if match else 1) or 1),
        "clip": str(_attr(f, "clip", default=(match.group(2) if match and match.group(2) else ""))),
        "clip_emotion": str(_attr(f, "clip_emotion", "emotion", default="")),
        "self_report": str(_attr(f, "self_report", default="")),
    }
    session = path.parent / "session.json"
    if not context["self_report"] and session.exists():
        try:
            raw = json.loads(session.read_text())
            reports = raw.get("self_reports") or raw.get("reports") or []
            for report in reports if isinstance(reports, list) else []:
                if report.get("clip") == context["clip"]:
                    context["self_report"] = str(report.get("emotion", ""))
        except (OSError, ValueError, AttributeError):
            pass
    return context


def ground_truth_specs(path: str | Path) -> list[SampleSpec]:
    """The synthetic ground truth as a coding: micro- and macro-expressions (blinks are not coded).

    Macro-expressions are included on purpose: the duration rule has to reject them.
    """
    from station.record.writer import open_trial, read_ground_truth

    with open_trial(check_trial_file(path)) as f:
        events = read_ground_truth(f)
    specs = []
    for n, ev in enumerate(sorted((e for e in events if e.get("kind") != "blink"), key=lambda e: e["onset"]), start=1):
        aus = ev.get("aus", "")
        aus = "+".join(str(a) for a in aus) if isinstance(aus, list) else str(aus)
        specs.append(SampleSpec(Annotation("ground-truth", trial_key(path), n, int(ev["onset"]), int(ev["apex"]),
                                           int(ev["offset"]), aus, ev.get("kind", "")),
                                clip_emotion=str(ev.get("emotion", ""))))
    return specs


# -- one sample ---------------------------------------------------------------------------------
def _ground_truth_landmarks(f, numbers: np.ndarray) -> np.ndarray | None:
    if "ground_truth" not in f or "landmarks68" not in f["ground_truth"]:
        return None
    ds = f["ground_truth"]["landmarks68"]
    stored = ds.attrs.get("frame_numbers")
    if stored is None:
        return None
    lookup = {int(n): i for i, n in enumerate(stored)}
    if not all(int(n) in lookup for n in numbers):
        return None
    return face2d.to49(ds[...][[lookup[int(n)] for n in numbers]])


def _write_pngs(folder: Path, prefix: str, frames: np.ndarray, numbers: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for image, n in zip(frames, numbers):
        if not cv2.imwrite(str(folder / f"{prefix}{int(n)}.png"), np.ascontiguousarray(image[..., ::-1])):
            raise OSError(f"cannot write {folder / f'{prefix}{int(n)}.png'}")


def _read_rows(dataset, start: int, stop: int, path: str, numbers: np.ndarray) -> np.ndarray:
    """Rows start..stop-1; a damaged chunk is reported with the frame number it belongs to."""
    try:
        return dataset[start:stop]
    except (OSError, ValueError, RuntimeError) as err:
        for i in range(start, stop):  # find the first unreadable frame to name it
            try:
                dataset[i]
            except (OSError, ValueError, RuntimeError):
                raise StationError(f"{dataset.name} of frame {int(numbers[i])} is unreadable ({err})") from err
        raise StationError(f"{dataset.name} frames {start}..{stop - 1} are unreadable ({err})") from err


def process_sample(f, path: Path, spec: SampleSpec, sample_name: str, context: dict, rules: Rules,
                   options: ProcessOptions, frames_table: np.ndarray, calibration) -> tuple[SampleRecord, dict]:
    """Preprocess and write one selected sample; returns its index row and quality figures."""
    ann = spec.annotation
    numbers = frames_table["color_number"]
    lookup = {int(n): i for i, n in enumerate(numbers)}
    i0, i1 = lookup[ann.onset], lookup[ann.offset]
    sel_numbers = numbers[i0: i1 + 1]
    timestamps = frames_table["color_timestamp_ms"][i0: i1 + 1]
    color = _read_rows(f["color"], i0, i1 + 1, str(path), numbers)
    w0 = max(0, i0 - options.warmup)
    depth = _read_rows(f["depth"], w0, i1 + 1, str(path), numbers)
    depth_ts = frames_table["depth_timestamp_ms"][w0: i1 + 1]

    try:
        lm68 = face2d.track_landmarks(color, check_every=options.check_every)
    except face2d.FaceNotFound as err:
        raise face2d.FaceNotFound(f"no face found by dlib in frame {int(sel_numbers[err.frame])}",
                                  int(sel_numbers[err.frame])) from err
    lm49 = face2d.to49(lm68)
    aligned = face2d.align_and_crop(color, lm49)
    filtered = face3d.filter_sequence(depth, depth_ts, calibration, warmup=i0 - w0)
    try:
        clouds = face3d.process_clouds(filtered, lm49, calibration, icp_method=options.icp_method)
    except ValueError as err:
        raise StationError(f"3D preprocessing failed: {err}") from err

    total_ms, onset_ms = durations_ms(frames_table["color_timestamp_ms"], numbers, ann.onset, ann.apex, ann.offset)
    aus = strip_uncoded(ann.aus)
    record = SampleRecord(
        subject=context["subject"], sample=sample_name, onset=ann.onset, apex=ann.apex, offset=ann.offset, aus=aus,
        objective_class=objective_class(aus, rules),
        nonobjective_class=nonobjective_class(aus, rules, spec.clip_emotion or context["clip_emotion"],
                                              spec.self_report or context["self_report"]),
        clip=context["clip"], clip_emotion=spec.clip_emotion or context["clip_emotion"],
        self_report=spec.self_report or context["self_report"], duration_ms=round(total_ms, 3),
        onset_duration_ms=round(onset_ms, 3), trial=trial_key(path))
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in clouds.clouds])]).astype(np.int64)
    sample = Sample(record=record, cropped=aligned.cropped, landmarks2d=aligned.landmarks2d,
                    landmarks2d_raw=aligned.landmarks2d_raw, landmarks3d=clouds.landmarks3d,
                    cloud_points=np.concatenate(clouds.clouds).astype(np.float32), cloud_offsets=offsets,
                    frame_numbers=sel_numbers.astype(np.int64), timestamps_ms=timestamps.astype(np.float64),
                    icp_fitness=clouds.fitness, icp_rmse=clouds.rmse_mm)
    out = Path(options.out)
    if options.write_png:
        _write_pngs(out / "2d" / "uncropped" / record.subject / sample_name, "img", color, sel_numbers)
        _write_pngs(out / "2d" / "cropped" / record.subject / sample_name, "reg_img", aligned.cropped, sel_numbers)
    if options.write_ply:
        from station.record.pointcloud import write_ply

        folder = out / "3d" / record.subject / sample_name
        folder.mkdir(parents=True, exist_ok=True)
        for cloud, n in zip(clouds.clouds, sel_numbers):
            write_ply(folder / f"frame{int(n)}.ply", cloud)
    from station.dataset import write_sample

    write_sample(out, sample, {"trial_file": str(path), "fps": float(calibration.fps), "units_3d": "mm",
                               "crop_box": list(aligned.box), "alignment": aligned.transform.tolist()})
    metrics = _quality(f, sample, aligned, clouds, filtered, calibration)
    metrics.update(sample=sample_name, subject=record.subject, trial=trial_key(path), frames=len(sel_numbers))
    return record, metrics


def _quality(f, sample: Sample, aligned: face2d.Aligned2D, clouds: face3d.Processed3D, filtered, calibration) -> dict:
    """ICP fitness/RMSE, rigid-landmark residuals, and landmark error against ground truth if known."""
    rigid = list(RIGID_49)
    drift_before = np.nanmean(np.linalg.norm(clouds.landmarks3d_raw[:, rigid] - clouds.landmarks3d_raw[:1, rigid], axis=-1))
    drift_after = np.nanmean(np.linalg.norm(clouds.landmarks3d[:, rigid] - clouds.landmarks3d[:1, rigid], axis=-1))
    metrics = {"icp_fitness": float(np.mean(clouds.fitness[1:])) if len(clouds.fitness) > 1 else 1.0,
               "icp_rmse_mm": float(np.mean(clouds.rmse_mm[1:])) if len(clouds.rmse_mm) > 1 else 0.0,
               "rigid_drift_before_icp_mm": float(drift_before), "rigid_drift_after_icp_mm": float(drift_after)}
    truth = _ground_truth_landmarks(f, sample.frame_numbers)
    if truth is not None:
        raw = face2d.landmark_error(sample.landmarks2d_raw, truth)
        al = face2d.landmark_error(sample.landmarks2d_raw, truth, aligned.transform)
        metrics.update(lm2d_raw_px=raw["mean_px"], lm2d_aligned_px=al["mean_px"], lm2d_nme=al["normalised"])
        # 3D: the true 2D landmarks looked up in the same filtered clouds, moved by the same ICP
        rays = face3d.pixel_rays(calibration.depth_intrinsics)
        true3d = []
        for t, depth in enumerate(filtered):
            pts = face3d.cloud_in_color_frame(depth, calibration, rays,
                                              face3d.face_roi(depth, truth[t], calibration))
            lm = face3d.landmarks_3d(face3d.xyz_image(pts, calibration, truth[t]), truth[t])
            true3d.append(face3d.transform_points(lm, clouds.transforms[t]))
        true3d = np.stack(true3d)
        metrics["lm3d_error_mm"] = float(np.nanmean(np.linalg.norm(sample.landmarks3d - true3d, axis=-1)))
    return metrics


# -- one trial --------------------------------------------------------------------------------
def process_trial(path: str | Path, specs: list[SampleSpec], options: ProcessOptions) -> TrialOutcome:
    """Everything for one trial file; never raises (problems become :class:`Skip` entries)."""
    from station.record.writer import open_trial, read_calibration

    started = time.perf_counter()
    path = Path(path)
    outcome = TrialOutcome(trial_key(path))
    try:
        rules = load_rules(options.rules)
        check_trial_file(path)
        f = open_trial(path)
    except StationError as err:
        outcome.skipped.append(Skip(str(path), str(err)))
        return outcome
    except Exception as err:  # noqa: BLE001 - h5py raises many kinds for a damaged file
        outcome.skipped.append(Skip(str(path), f"cannot be opened as a trial: {err}"))
        return outcome
    with f:
        try:
            calibration = read_calibration(f)
            frames_table = f["frames"][...]
            context = trial_context(f, path)
            n_stored = min(len(frames_table), f["color"].shape[0], f["depth"].shape[0])
            frames_table = frames_table[:n_stored]  # a killed recording may hold more rows in one table
        except Exception as err:  # noqa: BLE001
            outcome.skipped.append(Skip(str(path), f"is not a complete trial file: {err}"))
            return outcome
        if n_stored == 0:
            outcome.skipped.append(Skip(str(path), "holds no frames"))
            return outcome
        numbers = frames_table["color_number"]
        for n, spec in enumerate(sorted(specs, key=lambda s: s.annotation.onset), start=1):
            ann = spec.annotation
            name = f"{context['subject']}_{context['trial_no']}_{n}"
            try:
                ann.aus = format_aus(parse_aus(ann.aus, f"AUs of {name}"))
                total_ms, onset_ms = durations_ms(frames_table["color_timestamp_ms"], numbers,
                                                  ann.onset, ann.apex, ann.offset)
            except StationError as err:
                frame = next((x for x in (ann.onset, ann.apex, ann.offset) if int(x) not in set(numbers.tolist())), None)
                outcome.skipped.append(Skip(str(path), str(err), frame, name))
                continue
            if not is_micro(total_ms, onset_ms, rules):
                outcome.skipped.append(Skip(str(path), f"not a micro-expression: total {total_ms:.0f} ms, "
                                            f"onset {onset_ms:.0f} ms", ann.onset, name, kind="not selected"))
                continue
            try:
                record, metrics = process_sample(f, path, spec, name, context, rules, options, frames_table, calibration)
            except face2d.FaceNotFound as err:
                outcome.skipped.append(Skip(str(path), str(err), err.frame, name))
                continue
            except StationError as err:
                outcome.skipped.append(Skip(str(path), str(err), ann.onset, name))
                continue
            except Exception as err:  # noqa: BLE001 - keep the other samples going, but say what broke
                last = traceback.extract_tb(err.__traceback__)[-1]
                outcome.skipped.append(Skip(str(path), f"unexpected {type(err).__name__}: {err} "
                                            f"({Path(last.filename).name}:{last.lineno})", ann.onset, name))
                continue
            outcome.records.append(record)
            outcome.metrics.append(metrics)
    outcome.seconds = time.perf_counter() - started
    return outcome
