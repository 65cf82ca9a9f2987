"""From trial files and a final coding to the database (``station process``): orchestration only.

Who owns what this module uses: the trial format and trial identity are
:mod:`station.record.schema`'s, session.json is :mod:`station.session`'s, the database (index
columns, folder tree, sample files) is :mod:`station.dataset`'s, the rules are
:mod:`station.process.selection`'s.  This module decides which coded movement goes to which
trial (by ``trial_id``), names the samples, and runs 2D/3D preprocessing for each.

One trial is one unit of work (:func:`process_trial`): it opens its file once, selects the coded
movements that are micro-expressions (the duration rule of paper 3.3 on device timestamps:
total < 500 ms *or* onset < 260 ms), runs 2D and 3D preprocessing for each and writes the
sample's PNG/PLY/HDF5 files.  It never raises for a bad trial or sample: every problem becomes
a :class:`Skip` naming file and frame, so one broken file never stops a night's processing.

Sample names follow the paper's index (section 3.5): ``<trial>_<k>``, ``1_1`` being the first
exported sample of the participant's first film, numbered without gaps (a movement the rule
rejects gets no number); ``s<session>_<trial>_<k>`` when a participant has more than one
session among the inputs.  The index's Subject is the participant's number (``sub07``/``7``
give 7; pseudonyms such as ``P07`` are numbered 1..N in sorted order, the pseudonym stays in
the Participant column).  A sample that already exists in the database is refused, never
overwritten.
"""

from __future__ import annotations

import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from station import dataset
from station.checks import StationError
from station.dataset import Sample, SampleRecord
from station.process import face2d, face3d
from station.process.coding import Annotation
from station.process.selection import (Rules, durations_ms, is_micro, load_rules, nonobjective_class,
                                       objective_class, strip_uncoded)
from station.process.trialcheck import check_trial_file
from station.record import schema
from station.record.schema import TrialIdentity, trial_key
from station.vocab.facs import format_aus, parse_aus
from station.vocab.landmarks import RIGID_49, to49


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


@dataclass(frozen=True)
class TrialNaming:
    """How one trial's samples are named in the database (decided over all inputs at once)."""

    subject: str  # the index's Subject: the participant's number, "1"
    prefix: str  # sample name before the movement number: "1" (trial 1) or "s2_1" (session 2)


@dataclass
class ProcessOptions:
    out: str
    rules: str | None = None
    write_png: bool = True
    write_ply: bool = True
    icp_method: str = "point_to_plane"
    warmup: int = 5  # frames before onset that prime the temporal depth filter
    check_every: int = 15  # face re-detection period (frames)
    #: trial path (as given) -> naming, from :func:`plan_names` over all inputs; a trial missing
    #: here is named on its own (its participant's number, no session part).
    naming: dict[str, TrialNaming] = field(default_factory=dict)


@dataclass
class TrialOutcome:
    trial: str
    records: list[SampleRecord] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Plan:
    """What ``station process`` will do: (trial path, movements) jobs, names, problems found so far."""

    jobs: list[tuple[str, list[SampleSpec]]]
    naming: dict[str, TrialNaming]
    skipped: list[Skip]


# -- which trials, which names -----------------------------------------------------------------
def scan_trials(paths) -> list[TrialIdentity]:
    """The identity of every input trial (attributes only: fast).  A file that cannot be opened
    gets the identity its path gives, so codings still find it and :func:`process_trial` reports
    what is wrong with it."""
    from station.record.writer import open_trial

    out = []
    for path in paths:
        try:
            with open_trial(check_trial_file(path)) as f:
                out.append(schema.read_identity(f, path))
        except Exception:  # noqa: BLE001 - damaged: reported by process_trial, named by its path
            out.append(schema.read_identity(None, path))
    return out


def _natural(text: str) -> list:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", text) if part]


def _number(participant: str) -> int | None:
    match = re.fullmatch(r"(?i)(?:sub)?0*(\d+)", participant.strip())
    return int(match.group(1)) if match else None


def subject_numbers(participants) -> dict[str, str]:
    """Participant id -> the index's Subject.  Ids that are numbers or ``subNN`` keep their
    number; otherwise (pseudonyms) all are numbered 1..N in natural sort order."""
    ids = sorted(set(participants), key=_natural)
    numbers = [_number(p) for p in ids]
    if all(n is not None for n in numbers) and len(set(numbers)) == len(numbers):
        return {p: str(n) for p, n in zip(ids, numbers)}
    return {p: str(i) for i, p in enumerate(ids, start=1)}


def _session_label(session: str) -> str:
    return str(int(session)) if session.isdigit() else (session or "0")


def plan_names(identities: list[TrialIdentity]) -> dict[str, TrialNaming]:
    """Subject numbers and sample prefixes for every trial, unique across participants and sessions.

    Two trials that would get the same prefix (the same participant, session and trial number,
    e.g. a folder of bare ``station record`` files) are told apart by ``-2``, ``-3`` in path order.
    """
    subjects = subject_numbers(t.participant for t in identities)
    sessions: dict[str, set[str]] = {}
    for t in identities:
        sessions.setdefault(t.participant, set()).add(t.session)
    naming, taken = {}, set()
    for t in sorted(identities, key=lambda t: (_natural(t.participant), _natural(t.session), t.trial, t.path)):
        prefix = str(t.trial)
        if len(sessions[t.participant]) > 1:
            prefix = f"s{_session_label(t.session)}_{prefix}"
        base, copy = prefix, 1
        while (t.participant, prefix) in taken:
            copy += 1
            prefix = f"{base}-{copy}"
        taken.add((t.participant, prefix))
        naming[str(t.path)] = TrialNaming(subjects[t.participant], prefix)
    return naming


def match_codings(annotations: list[Annotation], trials: list[TrialIdentity], source: str
                  ) -> tuple[dict[str, list[SampleSpec]], list[Skip]]:
    """Coded movements grouped by the trial they belong to (its path), found by ``trial_id``.

    A row whose trial is not among the inputs, or that matches more than one (a row without
    ``trial_id`` whose file name repeats across participants or sessions), is skipped and
    reported once per trial it names, with :func:`station.record.schema.find_trial`'s reason.
    """
    by_path: dict[str, list[SampleSpec]] = {}
    refused: dict[tuple, list[Annotation]] = {}
    reasons: dict[tuple, str] = {}
    for ann in annotations:
        try:
            trial = schema.find_trial(ann, trials)
        except StationError as err:
            key = (ann.trial_id, ann.trial, getattr(ann, "participant", ""), getattr(ann, "session", ""))
            refused.setdefault(key, []).append(ann)
            reasons[key] = str(err)
            continue
        by_path.setdefault(str(trial.path), []).append(SampleSpec(ann))
    skipped = [Skip(source, f"{len(rows)} coded movement(s) skipped: {reasons[key]}",
                    sample=f"coder {rows[0].coder}, {rows[0].trial}") for key, rows in refused.items()]
    return by_path, skipped


def plan_jobs(paths, coding: str | Path | None = None) -> Plan:
    """Jobs, names and early problems for ``station process`` (a coding file, else ground truth)."""
    from station.process.coding import read_coding

    paths = [str(p) for p in paths]
    trials = scan_trials(paths)
    skipped: list[Skip] = []
    if coding is not None:
        by_path, skipped = match_codings(read_coding(coding, strict=False), trials, str(coding))
        jobs = [(p, by_path[p]) for p in paths if p in by_path]
    else:
        jobs = []
        for p in paths:
            try:
                jobs.append((p, ground_truth_specs(p)))
            except Exception as err:  # noqa: BLE001 - a damaged file must not stop the others
                skipped.append(Skip(p, f"ground truth unreadable: {err}"))
    return Plan(jobs, plan_names(trials), skipped)


def index_order(records: list[SampleRecord]) -> list[SampleRecord]:
    """Rows as the paper lists them: by subject number, then sample (``1_2`` before ``10_1``)."""
    return sorted(records, key=lambda r: (_natural(str(r.subject)), _natural(r.sample)))


# -- trial context --------------------------------------------------------------------------------
def trial_context(f, path: Path) -> dict:
    """Participant (``subject``), trial number, clip and its emotion, self-report of one trial.

    Identity from the trial's attributes (:func:`station.record.schema.read_identity`, which
    falls back on the path for older files); the self-report from the trial, else from the
    session folder's session.json through :mod:`station.session`.
    """
    ident = schema.read_identity(f, path)
    clip_emotion = str(schema.read_attr(f, schema.CLIP_EMOTION, ""))
    self_report = str(schema.read_attr(f, schema.SELF_REPORT, "")) or _session_self_report(Path(path).parent, ident.clip)
    return {"subject": ident.participant, "trial_no": ident.trial, "clip": ident.clip, "clip_emotion": clip_emotion,
            "self_report": self_report}


def _session_self_report(folder: Path, clip: str) -> str:
    """The participant's reported emotion for ``clip`` in the session folder ('' when none)."""
    from station.session import SESSION_FILE, load_session

    if not clip or not (folder / SESSION_FILE).exists():
        return ""
    try:
        reports = load_session(folder).data.get("self_reports") or []
    except (StationError, OSError, ValueError, AttributeError, TypeError):
        return ""
    answers = [r for r in reports if isinstance(r, dict) and r.get("clip") == clip and r.get("emotion")]
    return str(answers[-1]["emotion"]) if answers else ""


def ground_truth_specs(path: str | Path) -> list[SampleSpec]:
    """The synthetic ground truth as a coding: micro- and macro-expressions (blinks are not coded).

    Macro-expressions go through the same duration rule as coded movements.  The rule as the
    paper writes it (total < 500 ms *or* onset < 260 ms) rejects those whose onset takes 260 ms
    or more, and lets through a macro-expression with a quick onset: that is the rule, not a bug
    (``mode: all`` in rules.yaml asks for both conditions).
    """
    from station.record.writer import open_trial

    with open_trial(check_trial_file(path)) as f:
        events = schema.read_ground_truth_events(f)
        ident = schema.read_identity(f, path)
    specs = []
    for n, ev in enumerate(sorted((e for e in events if e.get("kind") != "blink"), key=lambda e: e["onset"]), start=1):
        aus = ev.get("aus", "")
        aus = "+".join(str(a) for a in aus) if isinstance(aus, list) else str(aus)
        ann = Annotation("ground-truth", trial_key(path), n, int(ev["onset"]), int(ev["apex"]), int(ev["offset"]),
                         aus, ev.get("kind", ""))
        ann.trial_id, ann.participant, ann.session = ident.trial_id, ident.participant, ident.session
        specs.append(SampleSpec(ann, clip_emotion=str(ev.get("emotion", ""))))
    return specs


# -- one sample ---------------------------------------------------------------------------------
def _ground_truth_landmarks(f, numbers: np.ndarray) -> np.ndarray | None:
    truth = schema.read_ground_truth_landmarks(f, numbers)
    return None if truth is None else to49(truth)


def process_sample(f, path: Path, spec: SampleSpec, sample_name: str, context: dict, rules: Rules,
                   options: ProcessOptions, frames_table: np.ndarray, calibration,
                   identity: TrialIdentity | None = None, subject: str | None = None) -> tuple[SampleRecord, dict]:
    """Preprocess and write one selected sample; returns its index row and quality figures.

    Everything is computed before the first file is written, so a failure leaves nothing behind.
    """
    ann = spec.annotation
    identity = identity or schema.read_identity(f, path)
    numbers = schema.frame_numbers(frames_table)
    color_ts, depth_ts_all = schema.timestamps_ms(frames_table), schema.timestamps_ms(frames_table, schema.DEPTH)
    lookup = {int(n): i for i, n in enumerate(numbers)}
    i0, i1 = lookup[ann.onset], lookup[ann.offset]
    sel_numbers = numbers[i0: i1 + 1]
    color = schema.read_rows(schema.color_dataset(f), i0, i1 + 1, numbers)
    w0 = max(0, i0 - options.warmup)
    depth = schema.read_rows(schema.depth_dataset(f), w0, i1 + 1, numbers)

    try:
        lm68 = face2d.track_landmarks(color, check_every=options.check_every)
    except face2d.FaceNotFound as err:
        raise face2d.FaceNotFound(f"no face found by dlib in frame {int(sel_numbers[err.frame])}",
                                  int(sel_numbers[err.frame])) from err
    lm49 = to49(lm68)
    aligned = face2d.align_and_crop(color, lm49)
    filtered = face3d.filter_face_sequence(depth, depth_ts_all[w0: i1 + 1], calibration, lm49, warmup=i0 - w0)
    truth = _ground_truth_landmarks(f, sel_numbers)
    try:
        clouds = face3d.process_clouds(filtered, lm49, calibration, icp_method=options.icp_method, probes2d=truth)
    except ValueError as err:
        raise StationError(f"3D preprocessing failed: {err}") from err

    total_ms, onset_ms = durations_ms(color_ts, numbers, ann.onset, ann.apex, ann.offset)
    aus = strip_uncoded(ann.aus)
    clip_emotion = spec.clip_emotion or context["clip_emotion"]
    self_report = spec.self_report or context["self_report"]
    record = SampleRecord(
        subject=subject if subject is not None else plan_names([identity])[str(identity.path)].subject,
        sample=sample_name, onset=ann.onset, apex=ann.apex, offset=ann.offset, aus=aus,
        objective_class=objective_class(aus, rules),
        nonobjective_class=nonobjective_class(aus, rules, clip_emotion, self_report),
        clip=context["clip"], clip_emotion=clip_emotion, self_report=self_report, duration_ms=round(total_ms, 3),
        onset_duration_ms=round(onset_ms, 3), participant=identity.participant, session=identity.session,
        trial=trial_key(path), trial_id=identity.trial_id)
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in clouds.clouds])]).astype(np.int64)
    sample = Sample(record=record, cropped=aligned.cropped, landmarks2d=aligned.landmarks2d,
                    landmarks2d_raw=aligned.landmarks2d_raw, landmarks3d=clouds.landmarks3d,
                    cloud_points=np.concatenate(clouds.clouds).astype(np.float32), cloud_offsets=offsets,
                    frame_numbers=sel_numbers.astype(np.int64), timestamps_ms=color_ts[i0: i1 + 1].astype(np.float64),
                    icp_fitness=clouds.fitness, icp_rmse=clouds.rmse_mm)
    metrics = _quality(sample, aligned, clouds, truth)
    metrics.update(sample=sample_name, subject=record.subject, participant=identity.participant,
                   session=identity.session, trial=trial_key(path), trial_id=identity.trial_id,
                   frames=len(sel_numbers))
    _write(Path(options.out), sample, color, aligned, clouds, path, calibration, options)
    return record, metrics


def _write(out: Path, sample: Sample, color, aligned, clouds, path: Path, calibration, options) -> None:
    """The sample's files, refusing any that exists (the database's tree is station.dataset's)."""
    record = sample.record
    existing = [p for p in dataset.sample_outputs(out, record) if p.exists()]
    if existing:
        raise StationError(f"{existing[0]} already exists; a database never overwrites a sample "
                           "(export into a new folder).")
    if options.write_png:
        dataset.write_sample_images(out, record, color, aligned.cropped, sample.frame_numbers)
    if options.write_ply:
        dataset.write_sample_clouds(out, record, clouds.clouds, sample.frame_numbers)
    dataset.write_sample(out, sample, {"trial_file": str(path), "fps": float(calibration.fps), "units_3d": "mm",
                                       "crop_box": list(aligned.box), "alignment": aligned.transform.tolist()})


def _quality(sample: Sample, aligned: face2d.Aligned2D, clouds: face3d.Processed3D, truth: np.ndarray | None) -> dict:
    """ICP fitness/RMSE, rigid-landmark residuals, and landmark error against ground truth if known
    (``truth``: the true 49 landmarks of the sample's frames, also looked up in its clouds by
    :func:`station.process.face3d.process_clouds`)."""
    rigid = list(RIGID_49)
    drift_before = np.nanmean(np.linalg.norm(clouds.landmarks3d_raw[:, rigid] - clouds.landmarks3d_raw[:1, rigid], axis=-1))
    drift_after = np.nanmean(np.linalg.norm(clouds.landmarks3d[:, rigid] - clouds.landmarks3d[:1, rigid], axis=-1))
    metrics = {"icp_fitness": float(np.mean(clouds.fitness[1:])) if len(clouds.fitness) > 1 else 1.0,
               "icp_rmse_mm": float(np.mean(clouds.rmse_mm[1:])) if len(clouds.rmse_mm) > 1 else 0.0,
               "rigid_drift_before_icp_mm": float(drift_before), "rigid_drift_after_icp_mm": float(drift_after)}
    if truth is not None:
        raw = face2d.landmark_error(sample.landmarks2d_raw, truth)
        al = face2d.landmark_error(sample.landmarks2d_raw, truth, aligned.transform)
        metrics.update(lm2d_raw_px=raw["mean_px"], lm2d_aligned_px=al["mean_px"], lm2d_nme=al["normalised"])
        # 3D: the true 2D landmarks looked up in the same filtered clouds, moved by the same ICP
        true3d = np.stack([face3d.transform_points(lm, m) for lm, m in zip(clouds.probes3d_raw, clouds.transforms)])
        metrics["lm3d_error_mm"] = float(np.nanmean(np.linalg.norm(sample.landmarks3d - true3d, axis=-1)))
    return metrics


def _sample_skip(path: Path, err: Exception, onset: int, what: str) -> Skip:
    if isinstance(err, face2d.FaceNotFound):
        return Skip(str(path), str(err), err.frame, what)
    if isinstance(err, StationError):
        return Skip(str(path), str(err), onset, what)
    last = traceback.extract_tb(err.__traceback__)[-1]
    return Skip(str(path), f"unexpected {type(err).__name__}: {err} ({Path(last.filename).name}:{last.lineno})",
                onset, what)


# -- one trial --------------------------------------------------------------------------------
def process_trial(path: str | Path, specs: list[SampleSpec], options: ProcessOptions) -> TrialOutcome:
    """Everything for one trial file; never raises (problems become :class:`Skip` entries).

    Samples are numbered in onset order among those exported, so the index has no gaps.
    """
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
            frames_table = schema.frames_table(f)  # rows present in frames, colour and depth
            identity = schema.read_identity(f, path)
            context = trial_context(f, path)
        except Exception as err:  # noqa: BLE001
            outcome.skipped.append(Skip(str(path), f"is not a complete trial file: {err}"))
            return outcome
        if len(frames_table) == 0:
            outcome.skipped.append(Skip(str(path), "holds no frames"))
            return outcome
        naming = options.naming.get(str(path)) or plan_names([identity])[str(identity.path)]
        numbers = schema.frame_numbers(frames_table)
        stored = set(numbers.tolist())
        exported = 0
        for k, spec in enumerate(sorted(specs, key=lambda s: s.annotation.onset), start=1):
            ann = spec.annotation
            what = f"{identity.participant} trial {identity.trial}, movement {k}"
            try:
                ann.aus = format_aus(parse_aus(ann.aus, f"AUs of {what}"))
                total_ms, onset_ms = durations_ms(schema.timestamps_ms(frames_table), numbers,
                                                  ann.onset, ann.apex, ann.offset)
            except StationError as err:
                frame = next((x for x in (ann.onset, ann.apex, ann.offset) if int(x) not in stored), None)
                outcome.skipped.append(Skip(str(path), str(err), frame, what))
                continue
            if not is_micro(total_ms, onset_ms, rules):
                outcome.skipped.append(Skip(str(path), f"not a micro-expression: total {total_ms:.0f} ms, "
                                            f"onset {onset_ms:.0f} ms", ann.onset, what, kind="not selected"))
                continue
            name = f"{naming.prefix}_{exported + 1}"
            outputs = dataset.sample_outputs(options.out, SampleRecord(naming.subject, name, 0, 0, 0, "", "", ""))
            existed = any(p.exists() for p in outputs)
            try:
                record, metrics = process_sample(f, path, spec, name, context, rules, options, frames_table,
                                                 calibration, identity, naming.subject)
            except Exception as err:  # noqa: BLE001 - keep the other samples going, but say what broke
                outcome.skipped.append(_sample_skip(path, err, ann.onset, what))
                if not existed and any(p.exists() for p in outputs):
                    exported += 1  # half-written by a failed write: its name is never reused
                continue
            exported += 1
            outcome.records.append(record)
            outcome.metrics.append(metrics)
    outcome.seconds = time.perf_counter() - started
    return outcome
