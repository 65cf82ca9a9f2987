"""The one definition of the trial HDF5 layout; writers and readers both import it.

Layout (schema version 2: per-stream domains and pairing skew in /frames)::

    /color       (N, H, W, 3) uint8   RGB, one chunk per frame, compressed
    /depth       (N, H, W)    uint16  z16 in the depth camera's own view (see calibration)
    /vertices    (N, H, W, 3) float32 optional: point cloud per depth pixel, metres
    /frames      (N,) table           clocks of each frame (see FRAME_DTYPE)
    /markers     (M,) table           events on the host clock (see MARKER_DTYPE)
    /counters    (len(COUNTERS),) int64  running totals, rewritten at every flush
    /ground_truth/events  JSON text   only for synthetic participants; never coder data
    /ground_truth/landmarks68 (N, 68, 2) float32  true landmarks, attr frame_numbers (synthetic)
    attrs        calibration (JSON), device, versions, fps, resolution, completion;
                 identity: trial_id (UUID4 at creation), participant, session, trial, clip

Read a trial only through the functions below (``readable_frames``, ``frames_table``,
``read_identity``, ``read_ground_truth_*``, ``trial_file_name``...): no module outside
``station/record/`` indexes a trial file with string literals.

Point clouds need not be stored: ``depth`` + ``calibration`` rebuild them exactly with
``rs2_deproject_pixel_to_point`` semantics (:mod:`station.record.pointcloud`).
A file being written is named ``*.h5.writing`` and has ``attrs['complete'] == False``.
"""

from __future__ import annotations

import numpy as np

SCHEMA_VERSION = 2
WRITING_SUFFIX = ".writing"

COLOR, DEPTH, VERTICES, FRAMES, MARKERS, COUNTERS = "color", "depth", "vertices", "frames", "markers", "counters"
GROUND_TRUTH = "ground_truth"

#: Timestamp domains as librealsense names them, stored as small integers in /frames.
DOMAINS = ("hardware_clock", "system_time", "global_time")

_STREAM_FIELDS = [
    ("number", "<i8"),  # device frame counter (a host counter when metadata is unavailable)
    ("timestamp_ms", "<f8"),  # librealsense timestamp in ``domain``; hardware clock unwrapped
    ("domain", "<i1"),  # index into DOMAINS, -1 if unknown; stored per stream (they can switch)
    ("sensor_us", "<f8"),
    ("frame_us", "<f8"),
    ("arrival_ms", "<f8"),
]
#: One row per written frameset: a colour frame and a depth frame, each written exactly once.
#: ``skew_ms`` is colour minus depth timestamp (what the pairing matched on).
FRAME_DTYPE = np.dtype(
    [(f"color_{n}", t) for n, t in _STREAM_FIELDS]
    + [(f"depth_{n}", t) for n, t in _STREAM_FIELDS]
    + [("skew_ms", "<f8"), ("host_time", "<f8")]
)
STREAMS = ("color", "depth")

MARKER_DTYPE = np.dtype([("host_time", "<f8"), ("event", "S32"), ("clip", "S64"), ("detail", "S256")])

#: Running totals kept in /counters, in this order; the final attributes repeat the same values.
#: Per stream s: ``dropped_s`` = frames of s the camera produced between the trial's first and
#: last row that are not in the file = (last - first + 1 device frame numbers) - rows; it is
#: the sum of its causes ``gaps_s`` (never reached the host: USB, firmware, librealsense),
#: ``unpaired_s`` (reached the host, no partner within half a frame), ``late_s`` (arrived after
#: a newer frame of its stream), and the pairs lost on the host (``dropped_queue``: writer
#: queue full, or stopped early).  ``repeated_s`` counts stale frames librealsense handed over
#: again (never written; not drops).  ``dropped`` = max over streams: capture instants
#: without a row.
COUNTERS_FIELDS = (
    "frames_written", "dropped",
    "dropped_color", "dropped_depth",
    "gaps_color", "gaps_depth",
    "unpaired_color", "unpaired_depth",
    "late_color", "late_depth",
    "repeated_color", "repeated_depth",
    "dropped_queue",
    "stalls", "stalled_ms",
    "clock_wraps",
    "lost_at_stop",  # pairs queued when the trial stopped early (disk full...): after the last row
    "delivered_color", "delivered_depth",
    "unpaired_ends_color", "unpaired_ends_depth",
)
#: Counter values that are causes of ``dropped_s`` (see above).
DROP_CAUSES = ("gaps", "unpaired", "late")
#: Frames at the ends of a trial (issue #11 follow-up).  ``delivered_s`` counts every distinct
#: frame of s that librealsense handed to the station while the trial was open (stale repeats
#: excluded), whatever became of it; ``unpaired_ends_s`` counts those never paired into a row
#: that came *before the first row* or *after the last row* (every one of them in a trial with
#: 0 rows): no partner within half a frame, late, or still waiting for a partner when the
#: source or the trial ended.  They lie outside the span ``dropped_s`` covers, so /frames cannot
#: show them and they are not drops; what the file holds against what arrived is
#:
#:     not_written_s = delivered_s - frames_written
#:                   = (dropped_s - gaps_s) + unpaired_ends_s + lost_at_stop
#:
#: (``dropped_s - gaps_s``: frames that reached the host between the first and last row but are
#: not in the file; ``lost_at_stop``: pairs after the last row the writer could not take).
DELIVERED, UNPAIRED_ENDS = "delivered", "unpaired_ends"
#: Counters of schema 2 files written before the ends were counted lack these names.
ENDS_FIELDS = tuple(f"{name}_{s}" for name in (DELIVERED, UNPAIRED_ENDS) for s in STREAMS)

#: Verdict thresholds (issue #11): a trial passes only if it is whole by these measures.
MAX_MISSING_FRACTION = 0.005
MIN_FPS_FRACTION = 0.98
#: Root attributes of the acquisition half.
ATTR_METADATA = "frame_metadata"  # True when frame numbers/timestamps come from the firmware
ATTR_CAMERA_SETTINGS = "camera_settings"  # JSON: settings applied and read back
ATTR_LIBREALSENSE = "librealsense_version"
ATTR_VERDICT = "verdict"  # JSON written at close: {"ok": bool, "reasons": [...]}


def dropped_per_stream(first: int, last: int, rows: int) -> int:
    """Frames of one stream the camera produced from frame ``first`` to ``last`` not among ``rows``."""
    return 0 if rows == 0 else int(last - first + 1 - rows)


def not_written_per_stream(dropped: int, gaps: int, unpaired_ends: int, lost_at_stop: int) -> int:
    """Frames of one stream delivered during the trial that are not in the file (see
    ``DELIVERED``): ``(dropped - gaps) + unpaired_ends + lost_at_stop``, ``dropped`` as
    :func:`dropped_per_stream` computes it from /frames."""
    return int(dropped - gaps + unpaired_ends + lost_at_stop)


def delivered_per_stream(counts, stream: str) -> int:
    """``delivered_s`` from a trial's other counters (a mapping of ``COUNTERS_FIELDS`` names):
    every fate a delivered frame can have, summed -- written, lost in the writer's queue or at
    an early stop, unpaired or late between the rows, or never paired at the trial's ends."""
    return int(counts["frames_written"] + counts["dropped_queue"] + counts["lost_at_stop"]
               + counts[f"unpaired_{stream}"] + counts[f"late_{stream}"] + counts[f"{UNPAIRED_ENDS}_{stream}"])


def ends_counts(events) -> dict[str, int]:
    """The counters a batch of pairing events adds when it lies outside the trial's rows (before
    the first row, after the last, or in a trial with no row): its frames never paired (no
    partner, late) are ``unpaired_ends_s``; pairs the writer's queue could not take there are
    ``lost_at_stop``.  Gaps there are not counted: how many of them fell inside the trial is
    unknowable, and they are outside the span ``dropped_s`` covers."""
    out = {f"{UNPAIRED_ENDS}_{s}": int(events.get(f"unpaired_{s}", 0)) + int(events.get(f"late_{s}", 0))
           for s in STREAMS}
    out["lost_at_stop"] = int(events.get("dropped_queue", 0))
    return {k: v for k, v in out.items() if v}


# == Readers, trial identity, ground truth and file names (owner: trialfile) =================
# Everything outside station/record/ reads a trial through these names and functions, never
# with string keys of its own: one place to change the layout, one answer to "how many frames
# of this trial can be used".

import re as _re
import uuid as _uuid
from dataclasses import dataclass as _dataclass
from pathlib import Path as _Path
from typing import Any as _Any

#: Root attributes of a trial file that readers outside record/ rely on.
ATTR_COMPLETE = "complete"  # False while written (``.writing``), True once closed
ATTR_SYNTHETIC = "synthetic"  # True for a virtual participant with ground truth
ATTR_SCHEMA_VERSION = "schema_version"
ATTR_FPS = "fps"  # nominal frame rate of the streams
ATTR_DEPTH_SCALE = "depth_scale"  # metres per z16 unit

#: Trial identity (attributes of the root group).  ``trial_id`` is a UUID4 written when the
#: file is created; the others say whose trial it is, so a coding never depends on a file name.
TRIAL_ID = "trial_id"
PARTICIPANT = "participant"
SESSION = "session"
TRIAL_NUMBER = "trial"
CLIP = "clip"
CLIP_EMOTION = "clip_emotion"
SELF_REPORT = "self_report"
#: Synthetic trials written before identities existed carried only an integer ``subject``.
LEGACY_SUBJECT = "subject"

#: Datasets of the /ground_truth group (synthetic participants only; never coder data).
GT_EVENTS = "events"  # JSON list of event dicts (station.synth.events)
GT_LANDMARKS = "landmarks68"  # (N, 68, 2) float32 true landmarks of stored frames, colour px
GT_FRAME_NUMBERS = "frame_numbers"  # attribute of GT_LANDMARKS: device frame number per row

#: Trial file names: ``trial-NN.h5`` or ``trial-NN-<clip>.h5`` (+ ``.writing`` while open).
TRIAL_SUFFIX = ".h5"
TRIAL_GLOB = "trial-*.h5"
_TRIAL_NAME = _re.compile(r"^trial-(\d+)(?:-(.+?))?\.h5(?:" + _re.escape(WRITING_SUFFIX) + r")?$")


def trial_file_name(number: int, clip: str = "") -> str:
    """The file name of trial ``number`` (``trial-03-joy_1.h5``); the one pattern for all writers."""
    if isinstance(number, bool) or not isinstance(number, (int, np.integer)) or number < 0:
        raise ValueError(f"trial number must be a non-negative integer, got {number!r}.")
    return f"trial-{int(number):02d}" + (f"-{clip}" if clip else "") + TRIAL_SUFFIX


def parse_trial_file_name(name: str | _Path) -> tuple[int, str] | None:
    """(trial number, clip) from a trial file name made by :func:`trial_file_name`, else None."""
    match = _TRIAL_NAME.match(_Path(name).name)
    return (int(match.group(1)), match.group(2) or "") if match else None


def trial_key(path: str | _Path) -> str:
    """A trial's file name without the ``.writing`` suffix: the readable half of its identity."""
    name = _Path(path).name
    return name[: -len(WRITING_SUFFIX)] if name.endswith(WRITING_SUFFIX) else name


def next_trial_number(folder: str | _Path) -> int:
    """1 + the highest trial number already used in ``folder`` (finished or ``.writing``)."""
    taken = [parsed[0] for p in _Path(folder).glob("trial-*") if (parsed := parse_trial_file_name(p))]
    return max(taken, default=0) + 1


def new_trial_id() -> str:
    """A fresh trial identity (UUID4, as text)."""
    return str(_uuid.uuid4())


def identity_attrs(participant: str, session: str = "", trial: int = 0, clip: str = "", **extra: _Any) -> dict:
    """The identity attributes a recorder passes to :class:`~station.record.writer.TrialWriter`
    (which adds ``trial_id`` itself), so every writer spells them the same way."""
    return {PARTICIPANT: str(participant), SESSION: str(session), TRIAL_NUMBER: int(trial), CLIP: str(clip),
            **extra}


@_dataclass(frozen=True)
class TrialIdentity:
    """Who and what a trial is.  ``trial_id`` is empty for files recorded before identities
    existed; ``source`` says whether participant/session/trial came from attributes or the path."""

    trial_id: str
    participant: str
    session: str
    trial: int
    clip: str
    path: str
    source: str = "attributes"

    @property
    def name(self) -> str:
        """The trial's file name (readable, not unique: see :attr:`trial_id`)."""
        return trial_key(self.path)

    def as_dict(self) -> dict[str, _Any]:
        """For JSON, CSV rows and the coding tool: identity fields plus the readable ``name``."""
        return {"trial_id": self.trial_id, "participant": self.participant, "session": self.session,
                "trial": self.trial, "clip": self.clip, "name": self.name, "path": self.path}

    def describe(self) -> str:
        """For messages: ``participant P07, session 001, trial 3 (sessions/P07/001/trial-03-x.h5)``."""
        parts = [f"participant {self.participant or '?'}"] + ([f"session {self.session}"] if self.session else [])
        return ", ".join(parts + [f"trial {self.trial}"]) + f" ({self.path})"


def _text(value: _Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    return "" if value is None else str(value)


def read_attr(f, name: str, default: _Any = "") -> _Any:
    """A root attribute as a plain Python value (bytes decoded), ``default`` if absent."""
    if name not in f.attrs:
        return default
    value = f.attrs[name]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value.item() if isinstance(value, np.generic) else value


def read_identity(f, path: str | _Path | None = None) -> TrialIdentity:
    """The trial's identity from its attributes; for older files, what the path says.

    Fallbacks, in order, only for attributes a file lacks: participant from the legacy
    ``subject`` attribute (synthetic, written as ``subNN``), else the folder layout
    ``<participant>/<NNN session>/trial-...`` or ``<participant>/trial-...``; session from a
    numbered parent folder; trial number and clip from the file name.  ``f=None`` (a file
    that cannot be opened) gives the path's answer with an empty ``trial_id``.
    """
    if f is None:
        if path is None:
            raise ValueError("read_identity needs an open trial or a path.")
        f = _NoAttributes()
    path = _Path(path if path is not None else f.filename)
    parsed = parse_trial_file_name(path)
    source = "attributes"
    participant = _text(read_attr(f, PARTICIPANT))
    if not participant and LEGACY_SUBJECT in f.attrs:
        subject = _text(read_attr(f, LEGACY_SUBJECT))
        participant = f"sub{int(subject):02d}" if subject.isdigit() else subject
    session = _text(read_attr(f, SESSION))
    numbered_parent = path.parent.name.isdigit()
    if not session and numbered_parent:
        session, source = path.parent.name, "path"
    if not participant:
        participant = (path.parent.parent.name if numbered_parent else path.parent.name) or "unknown"
        source = "path"
    trial = read_attr(f, TRIAL_NUMBER, None)
    try:
        trial = int(trial) if trial not in (None, "") else None
    except (TypeError, ValueError):
        trial = None
    if trial is None:
        trial, source = (parsed[0] if parsed else 1), "path"
    clip = _text(read_attr(f, CLIP)) or (parsed[1] if parsed else "")
    return TrialIdentity(_text(read_attr(f, TRIAL_ID)), participant, session, trial, clip, str(path), source)


class _NoAttributes:
    attrs: dict = {}


def _norm(text: str) -> str:
    return str(text or "").strip()


def find_trial(ref, trials) -> TrialIdentity:
    """The one trial among ``trials`` (TrialIdentity list) that ``ref`` names, else a StationError
    saying why and how to fix it.

    ``ref`` is a trial id (UUID text), a path or file name, a :class:`TrialIdentity`, or any
    object or dict with ``trial_id`` and the readable ``trial`` (file name) / ``participant`` /
    ``session`` (a coding row, a candidate row).  A trial id is matched exactly; without one
    (files coded before trial ids existed) the name, narrowed by participant and session when
    the row gives them, must be unambiguous.  The same trial id in two files (a copied trial)
    is refused, naming both.
    """
    from station.checks import StationError

    trial_id, name, participant, session, path = _ref_fields(ref)
    trials = list(trials)
    if trial_id:
        found = [t for t in trials if t.trial_id == trial_id]
        label = f"trial id {trial_id}" + (f" ({name})" if name else "")
    else:
        found = trials
        if path is not None:  # an exact path wins over a file name
            exact = [t for t in trials if _same_file(t.path, path)]
            if exact:
                found = exact
        if found is trials:
            found = [t for t in trials if t.name == name]
        if participant:
            found = [t for t in found if t.participant == participant]
        if session:
            found = [t for t in found if t.session == session]
        label = f"trial {name!r}" + (f" of participant {participant}" if participant else "") \
            + (f", session {session}" if session else "")
    if len(found) == 1:
        return found[0]
    if not found:
        raise StationError(f"{label} is not among the {len(trials)} trial file(s) given"
                           + ("" if trial_id else "; pass the folder that holds it") + ".")
    listing = "; ".join(t.describe() for t in found[:6]) + (" ..." if len(found) > 6 else "")
    if trial_id:
        raise StationError(f"{label} is in {len(found)} files ({listing}): a trial copied twice; "
                           "keep one copy among the inputs.")
    raise StationError(f"{label} matches {len(found)} trials ({listing}). The row has no trial_id (coded before "
                       "trial ids existed), so its trial is ambiguous: add the columns trial_id (see `station "
                       "inspect TRIAL`) or participant and session to the coding file, or process one session "
                       "folder at a time.")


def _ref_fields(ref) -> tuple[str, str, str, str, _Path | None]:
    """(trial_id, file name, participant, session, path or None) of anything that names a trial."""
    if isinstance(ref, TrialIdentity):
        return ref.trial_id, ref.name, ref.participant, ref.session, _Path(ref.path)
    if isinstance(ref, _Path) or (isinstance(ref, str) and not _UUID_TEXT.match(ref.strip())):
        return "", trial_key(ref), "", "", (_Path(ref) if len(_Path(ref).parts) > 1 else None)
    if isinstance(ref, str):
        return ref.strip(), "", "", "", None
    get = ref.get if isinstance(ref, dict) else (lambda k, d="": getattr(ref, k, d))
    name = _norm(get("name", "") or get("trial", ""))
    return (_norm(get("trial_id", "")), trial_key(name) if name else "", _norm(get("participant", "")),
            _norm(get("session", "")), None)


_UUID_TEXT = _re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_trial_id(text) -> bool:
    """Whether ``text`` looks like a trial id (UUID text) rather than a file name or path."""
    return isinstance(text, str) and bool(_UUID_TEXT.match(text.strip()))


def _same_file(a: str | _Path, b: str | _Path) -> bool:
    try:
        return _Path(a).resolve() == _Path(b).resolve()
    except OSError:
        return False


# -- frames ------------------------------------------------------------------------------------
def readable_frames(f) -> int:
    """Rows usable in all of /frames, /color and /depth.

    A killed recording may hold one more row in one table than in another (they are resized
    one after the other); only rows present in all three are a frame.
    """
    return int(min(f[FRAMES].shape[0], f[COLOR].shape[0], f[DEPTH].shape[0]))


def frames_table(f) -> np.ndarray:
    """The /frames rows of the readable frames (see :func:`readable_frames`)."""
    return f[FRAMES][: readable_frames(f)]


def color_dataset(f):
    """/color as an h5py dataset (index it lazily: a trial can be many GB)."""
    return f[COLOR]


def depth_dataset(f):
    """/depth as an h5py dataset (z16 units, see ``depth_scale``)."""
    return f[DEPTH]


def frame_numbers(table: np.ndarray, stream: str = COLOR) -> np.ndarray:
    """Device frame numbers of a /frames table (the numbers codings and the index use)."""
    return table[f"{stream}_number"]


def timestamps_ms(table: np.ndarray, stream: str = COLOR) -> np.ndarray:
    """Device timestamps (ms) of a /frames table, for ``stream`` ``color`` or ``depth``."""
    return table[f"{stream}_timestamp_ms"]


def read_rows(dataset, start: int, stop: int, numbers: np.ndarray | None = None,
              out: np.ndarray | None = None) -> np.ndarray:
    """Rows ``start..stop-1`` of a frame dataset; a damaged chunk raises naming its frame.

    ``out``: an array of ``stop - start`` rows to decode into and return (a buffer reused
    block after block costs half the CPU of a new array, which the kernel faults in page by page).
    """
    from station.checks import StationError

    try:
        if out is None:
            return dataset[start:stop]
        dataset.read_direct(out, np.s_[start:stop], np.s_[0: stop - start])
        return out
    except (OSError, ValueError, RuntimeError) as err:
        for i in range(start, stop):  # find the first unreadable frame to name it
            try:
                dataset[i]
            except (OSError, ValueError, RuntimeError):
                frame = int(numbers[i]) if numbers is not None else i
                raise StationError(f"{dataset.name} of frame {frame} in {dataset.file.filename} is unreadable "
                                   f"({err})") from err
        raise StationError(f"{dataset.name} frames {start}..{stop - 1} are unreadable ({err})") from err


# -- ground truth --------------------------------------------------------------------------------
def has_ground_truth(f) -> bool:
    return GROUND_TRUTH in f and GT_EVENTS in f[GROUND_TRUTH]


def read_ground_truth_events(f) -> list[dict]:
    """The synthetic ground-truth events (empty list for a real participant)."""
    import json

    if not has_ground_truth(f):
        return []
    raw = f[GROUND_TRUTH][GT_EVENTS][()]
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def has_ground_truth_landmarks(f) -> bool:
    return GROUND_TRUTH in f and GT_LANDMARKS in f[GROUND_TRUTH]


def read_ground_truth_landmarks(f, numbers: np.ndarray | None = None) -> np.ndarray | None:
    """True 68 landmarks (N, 68, 2) of the frames with device ``numbers`` (all stored rows if
    None); None when the trial has none or lacks one of the frames asked for."""
    if not has_ground_truth_landmarks(f):
        return None
    ds = f[GROUND_TRUTH][GT_LANDMARKS]
    if numbers is None:
        return ds[...]
    stored = ds.attrs.get(GT_FRAME_NUMBERS)
    if stored is None:
        return None
    lookup = {int(n): i for i, n in enumerate(stored)}
    if not all(int(n) in lookup for n in numbers):
        return None
    return ds[...][[lookup[int(n)] for n in numbers]]
