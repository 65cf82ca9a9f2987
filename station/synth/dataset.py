"""A DSME-like synthetic database: trial HDF5 files of synthetic participants, with ground truth.

Each trial is filmed by the virtual D415 in fast mode (every frame goes through librealsense's
software device, syncer and z16 quantisation) and written by the same
:class:`~station.record.writer.TrialWriter` as a real recording, so every downstream verb
reads it like a session.  Layout::

    OUT/sub01/trial-01.h5   /color /depth /frames ... as any recording
                            /ground_truth/events       JSON list (station.synth.events)
                            /ground_truth/landmarks68  (N, 68, 2) float32, true landmark
                                                       positions of each stored frame (color px)
    OUT/manifest.json       subjects, trials, sample counts, seed, bytes

The ``samples`` micro-expressions are spread over the subjects (33 and 373 as in DSME-3D),
``MICRO_PER_TRIAL`` per trial, each trial also holding one macro-expression and one blink
(the blink is never coded; the macro-expression goes through the duration rule, which as the
paper writes it - total < 500 ms or onset < 260 ms - lets one with a quick onset through), in a
seeded order with short neutral gaps (frames are kept few so the
whole database stays a few GB).

Subjects are written by worker processes (:func:`make_dataset` ``jobs``): each trial is a pure
function of its plan and the seed, so the files hold the same frames whatever the number of
workers (``tests/test_synth_speed.py``, ``bench/synth_speed.py --dataset``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from station.camera.base import EndOfStream
from station.camera.virtual import VirtualD415
from station.checks import StationError, check_positive, check_writable_dir, format_bytes, free_bytes
from station.dataset import subject_folder
from station.record import schema
from station.record.writer import Storage, TrialWriter, open_trial, write_ground_truth, writing_path
from station.synth.events import Timeline, TimingRules, plan_timeline
from station.synth.participant import SyntheticParticipant

MICRO_PER_TRIAL = 6
#: Short gaps and macro-expressions just over 500 ms keep the frames per sample (and GB) down.
DATASET_TIMING = TimingRules(macro_ms=(550.0, 900.0), gap_ms=(120.0, 250.0))
LANDMARKS = schema.GT_LANDMARKS  # the name lives in the trial schema


@dataclass(frozen=True)
class TrialPlan:
    subject: int
    trial: int
    kinds: tuple[str, ...]

    @property
    def participant(self) -> str:
        """The synthetic participant's id, also its folder: ``sub01``."""
        return subject_folder(self.subject)

    @property
    def relpath(self) -> str:
        return f"{self.participant}/{schema.trial_file_name(self.trial)}"


def plan_dataset(subjects: int, samples: int, seed: int) -> list[TrialPlan]:
    """Which trials make the database: samples spread evenly, extras to seeded subjects."""
    check_positive(subjects, "--subjects", integer=True)
    check_positive(samples, "--samples", integer=True)
    if samples < subjects:
        raise StationError(f"--samples ({samples}) must be at least --subjects ({subjects}): "
                           "every synthetic subject needs one micro-expression.")
    rng = np.random.default_rng([seed, 909])
    per_subject = np.full(subjects, samples // subjects)
    per_subject[rng.choice(subjects, samples % subjects, replace=False)] += 1
    plans = []
    for s in range(subjects):
        left, trial = int(per_subject[s]), 1
        while left:
            n = min(MICRO_PER_TRIAL, left)
            kinds = ["micro"] * n + ["macro", "blink"]
            order = rng.permutation(len(kinds))
            plans.append(TrialPlan(s + 1, trial, tuple(kinds[i] for i in order)))
            left -= n
            trial += 1
    return plans


def trial_scene(plan: TrialPlan, seed: int, width: int = 848, height: int = 480,
                base: SyntheticParticipant | None = None) -> SyntheticParticipant:
    """The participant scene of one planned trial (appearance from (seed, subject), events per trial).

    ``base``: a scene of the same subject, seed and size (another trial's), whose preparation
    is reused; only the time line is new.
    """
    if base is not None and (base.subject, base.seed, base.width, base.height) == (plan.subject, seed, width, height):
        scene = base.with_timeline(Timeline([], 1))
    else:
        scene = SyntheticParticipant(plan.subject, seed, events=[], n_frames=1, width=width, height=height)
    rng = np.random.default_rng([seed, plan.subject, plan.trial, 606])  # same draws as planned_frames
    events, n_frames = plan_timeline(list(plan.kinds), plan.subject, scene.look.gain, rng, start=6, tail=6,
                                     rules=DATASET_TIMING)
    scene.timeline.events[:] = events
    scene.timeline.n_frames = scene.n_frames = n_frames
    return scene


def planned_frames(plan: TrialPlan, seed: int) -> int:
    """Frames the trial will store, without rendering it (timing draws do not depend on the gain)."""
    rng = np.random.default_rng([seed, plan.subject, plan.trial, 606])
    _, n_frames = plan_timeline(list(plan.kinds), plan.subject, 1.0, rng, start=6, tail=6, rules=DATASET_TIMING)
    return n_frames - 1  # the virtual D415 spends frame 0 priming the syncer


#: Stored bytes per 848x480 frame with zstd, per face photo.  Measured with `station synth
#: dataset --subjects 5 --samples 5` (seed 0): the astronaut's busy background costs 2.4x the
#: others, so an average (0.62 MB) under-estimated a small dataset by a third.  A photo not
#: listed counts as the dearest.
BYTES_PER_FRAME = {"psychopy-face01": 476_000, "skimage-astronaut": 1_160_000, "matplotlib-grace-hopper": 521_000,
                   "psychopy-face03": 435_000, "psychopy-face02": 473_000}
#: Stored bytes relative to zstd (lz4 and blosc2 measured ~1.2x; the margin is the check's)
COMPRESSION_FACTOR = {"zstd": 1.0, "lz4": 1.5, "blosc2": 1.5}


def planned_bytes(plans: list[TrialPlan], frames: list[int], width: int, height: int, compression: str) -> int:
    """Bytes the dataset will store (``frames``: :func:`planned_frames` of each plan), for the
    free-space check made before anything is written.

    Scaled from 848x480 by (pixel ratio)^0.95: a quarter of the pixels stores 0.266x the bytes
    (measured at 424x240, seed 0).  ``none`` stores colour (3 B) and depth (2 B) per pixel as
    they are, plus ~0.1 % of HDF5 and ground truth.
    """
    from station.synth.appearance import photo_of

    if compression == "none":
        return sum(frames) * width * height * 5
    dearest = max(BYTES_PER_FRAME.values())
    zstd_bytes = sum(n * BYTES_PER_FRAME.get(photo_of(p.subject)[0], dearest) for p, n in zip(plans, frames))
    return int(zstd_bytes * (width * height / (848 * 480)) ** 0.95 * COMPRESSION_FACTOR[compression])


def record_scene(scene: SyntheticParticipant, path: Path, storage: Storage, attrs: dict | None = None,
                 trial: int | None = None) -> int:
    """Film ``scene`` with the virtual D415 (fast mode) into trial file ``path``; returns frames written.

    The ground-truth events go in at creation, the true landmarks of every stored frame (looked
    up by its device frame number) when the writer closes the file, before it gets its final
    name: a finished synthetic trial always has both.  ``trial`` is the trial number of the
    identity (default: from the file name).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    camera = VirtualD415(scene, realtime=False, fps=60)
    calib = camera.start()
    numbers: list[int] = []
    landmarks: list[np.ndarray] = []
    try:
        events = [e.as_dict() for e in scene.events()]
        writer = TrialWriter(path, calib, storage, attrs={**synthetic_attrs(scene, path, trial), **(attrs or {})},
                             ground_truth=events)
        try:
            while True:
                try:
                    fs = camera.read(timeout_s=2.0)
                except EndOfStream:
                    break
                if fs is None:
                    continue
                writer.append(fs)
                numbers.append(fs.color_times.number)
                # now, while the scene still holds this frame's motion field (no second pass)
                landmarks.append(scene.landmarks(numbers[-1]))
                # No periodic flush: a synthetic trial cut short is deleted and regenerated
                # identically (see _finished_frames), so flushing would buy nothing (~0.5 ms a frame).
        except BaseException:
            writer.abandon()
            raise
    finally:
        camera.stop()
    writer.set_ground_truth_landmarks(numbers, _stack_landmarks(landmarks))
    if (final := writer.close()) != path:
        raise StationError(f"{str(final)!r}: the trial could not be finalised (HDF5 could not write its last "
                           f"attributes; {format_bytes(free_bytes(path.parent))} free there). It keeps its "
                           f"'.writing' name; run the same command again to write it anew.")
    return len(numbers)


def synthetic_attrs(scene: SyntheticParticipant, path: Path, trial: int | None = None) -> dict:
    """Identity and provenance of a synthetic trial: participant ``subNN``, trial number."""
    parsed = schema.parse_trial_file_name(path)
    number = trial if trial is not None else (parsed[0] if parsed else 1)
    return schema.identity_attrs(subject_folder(scene.subject), "", number, "",
                                 **{schema.ATTR_SYNTHETIC: True, schema.LEGACY_SUBJECT: scene.subject,
                                    "seed": scene.seed, "photo": scene.look.photo})


def true_landmarks(scene: SyntheticParticipant, numbers) -> np.ndarray:
    """(N, 68, 2) float32 true landmarks of the frames with device ``numbers``."""
    return _stack_landmarks([scene.landmarks(int(n)) for n in numbers])


def _stack_landmarks(landmarks: list[np.ndarray]) -> np.ndarray:
    """(N, 68, 2) float32 of N (68, 2) landmark arrays (N may be 0)."""
    return np.stack(landmarks).astype(np.float32) if landmarks else np.zeros((0, 68, 2), np.float32)


def events_between(scene: SyntheticParticipant, first: int, last: int) -> list[dict]:
    """Ground-truth events of ``scene`` that overlap device frames ``first``..``last``."""
    if scene.endless:
        from station.synth.events import endless_block
        from station.synth.participant import ENDLESS_BLOCK

        events = [e for b in range(max(0, first // ENDLESS_BLOCK - 1), last // ENDLESS_BLOCK + 1)
                  for e in endless_block(scene.subject, scene.seed, scene.look.gain, b, ENDLESS_BLOCK)]
    else:
        events = scene.events()
    return [e.as_dict() for e in sorted(events, key=lambda e: e.onset) if e.offset > first and e.onset < last]


def annotate_recording(path: str | Path, scene: SyntheticParticipant) -> int:
    """Add the ground truth to a trial recorded from the virtual D415 (e.g. by ``station record``).

    A live recording starts and stops at arbitrary device frames and may drop frames, so the
    ground truth is written after the trial is closed: the events overlapping its frame range
    (their frames are device frame numbers, and may start before the first stored frame) and
    the true landmarks of every stored frame.  Returns the number of events.
    """
    with open_trial(path) as f:
        numbers = schema.frame_numbers(schema.frames_table(f))
        identity = schema.read_identity(f, path)
    events = events_between(scene, int(numbers.min()), int(numbers.max())) if numbers.size else []
    attrs = {schema.ATTR_SYNTHETIC: True, schema.LEGACY_SUBJECT: scene.subject, "seed": scene.seed,
             "photo": scene.look.photo}
    if identity.source == "path":  # a bare `station record` file: say whose virtual face it is
        attrs[schema.PARTICIPANT] = subject_folder(scene.subject)
    write_ground_truth(path, events, numbers, true_landmarks(scene, numbers), attrs)
    return len(events)


def _finished_frames(path: Path) -> int | None:
    """Frames of a finished synthetic trial (so a rerun resumes), None if it must be (re)made.

    A synthetic trial cut short by an interruption is deleted: the same seed regenerates it
    identically.  Any other file in the way is left alone and reported.
    """
    if not path.exists():
        return None
    try:
        with open_trial(path) as f:
            synthetic = bool(schema.read_attr(f, schema.ATTR_SYNTHETIC, False))
            if (synthetic and schema.read_attr(f, schema.ATTR_COMPLETE, False)
                    and schema.has_ground_truth_landmarks(f)):
                return schema.readable_frames(f)
    except (StationError, OSError, KeyError):
        synthetic = False
    if not synthetic:
        raise StationError(f"{str(path)!r} is in the way and is not a synthetic trial; move it elsewhere.")
    path.unlink()
    return None


def _write_subject_trials(plans: list[TrialPlan], out: Path, seed: int, storage: Storage, width: int, height: int,
                          single_thread: bool = False) -> list[tuple[TrialPlan, int]]:
    """Render and write the given trials of one subject; ``[(plan, frames)]`` (a worker's task).

    One subject per task: its trials share the participant's preparation (photo placement,
    morph, depth surface, AU fields), which only the time line distinguishes.
    ``single_thread``: :func:`station.parallel.one_thread`, for worker processes that already
    fill the cores.
    """
    import contextlib

    from station.parallel import one_thread

    done = []
    base: SyntheticParticipant | None = None
    with one_thread() if single_thread else contextlib.nullcontext():
        for plan in plans:
            path = out / plan.relpath
            writing_path(path).unlink(missing_ok=True)  # synthetic: regenerated identically
            scene = trial_scene(plan, seed, width, height, base=base)
            base = base or scene
            done.append((plan, record_scene(scene, path, storage, trial=plan.trial)))
    return done


def make_dataset(out: Path, subjects: int, samples: int, seed: int = 0, storage: Storage = Storage("zstd"),
                 progress=None, width: int = 848, height: int = 480, jobs: int = 1) -> dict:
    """Write the whole database under ``out``; returns the manifest (also saved as manifest.json).

    An interrupted run is resumed by running it again: finished trials are kept (the same seed
    would give the same content), a half-written one is regenerated.

    ``jobs`` worker processes (``-1``: every core; :func:`station.parallel.parallel_map`) each
    write whole subjects, longest first so that the last ones to finish are short: every
    trial is a pure function of (plan, seed), so the files hold the same frames and ground
    truth whatever ``jobs`` is.  ``progress(plan, frames, bytes)`` hears of each trial.
    """
    from station.parallel import n_workers, parallel_map

    out = check_writable_dir(out, "synthetic dataset folder")
    plans = plan_dataset(subjects, samples, seed)
    frames_of: dict[str, int] = {}
    todo: dict[int, list[TrialPlan]] = {}
    for plan in plans:
        path = out / plan.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = _finished_frames(path)
        if frames is None:  # not written yet, or left half-written by an interrupted run
            todo.setdefault(plan.subject, []).append(plan)
        else:
            frames_of[plan.relpath] = frames
            if progress is not None:
                progress(plan, frames, path.stat().st_size)
    tasks = sorted(todo.values(), key=lambda ps: -sum(planned_frames(p, seed) for p in ps))
    workers = min(n_workers(jobs), len(tasks))

    def finished(done: list[tuple[TrialPlan, int]]) -> None:
        for plan, frames in done:
            frames_of[plan.relpath] = frames
            if progress is not None:
                progress(plan, frames, (out / plan.relpath).stat().st_size)

    parallel_map(_write_subject_trials, tasks, jobs=workers, progress=finished,
                 args=(out, seed, storage, width, height, workers > 1))
    trials, total_bytes = [], 0
    for plan in plans:
        size = (out / plan.relpath).stat().st_size
        total_bytes += size
        trials.append({"file": plan.relpath, "subject": plan.subject, "trial": plan.trial,
                       "frames": frames_of[plan.relpath], "micro": plan.kinds.count("micro"), "bytes": size})
    manifest = {"subjects": subjects, "samples": samples, "seed": seed, "compression": storage.compression,
                "resolution": [width, height],
                "trials": trials, "frames": sum(t["frames"] for t in trials), "bytes": total_bytes}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
