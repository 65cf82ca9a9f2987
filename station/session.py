"""Session folders: ``sessions/<participant>/<NNN>/`` with a ``session.json`` that is never torn.

Modelled on the Pupil Labs recorder: each run gets the next free numbered folder (001, 002...)
so a participant who comes back, or a run that is restarted, can never overwrite earlier data.
``session.json`` holds everything that is not frames: participant (pseudonymous id, age, sex),
a copy of the protocol, device info, the event log, self-reports, timing, software versions.

**The journal is the truth.**  Every change (an event, a trial, an answered form, a field) is
first appended as one JSON line to ``session.journal.jsonl`` and fsync'd before the call
returns, so a SIGKILL or power cut at any moment loses at most the line being written.
``session.json`` is a convenience copy rebuilt from the journal and written atomically
(temporary file + fsync + ``os.replace``) at trial and form boundaries; :func:`load_session`
replays the journal when there is one, so readers (``station inspect SESSION_DIR``,
``station selfreport``) always see everything that happened, even after a hard stop that
left session.json stale.

Layout::

    sessions/<participant>/<NNN>/
        session.journal.jsonl       append-only: {"op": create|event|trial|self_report|update, ...}
        session.json                rebuilt from the journal
        trial-01-<clip>.h5          one HDF5 per clip (station.record.schema)
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import threading
from pathlib import Path
from typing import Any

from station.checks import StationError, check_writable_dir
from station.fileio import append_line_fsync, atomic_write_json
from station.fileio import json_default as _json_default
from station.vocab.participant import check_age, check_participant_id, check_sex

SCHEMA_VERSION = 1
SESSION_FILE = "session.json"
JOURNAL_FILE = "session.journal.jsonl"
JOURNAL_OPS = ("create", "event", "trial", "self_report", "update")
def software_versions() -> dict[str, str]:
    """Versions of everything that shapes timing or file contents."""
    import importlib.metadata as md

    import station

    out = {"station": station.__version__, "python": platform.python_version(), "platform": platform.platform()}
    for name in ("psychopy", "pyglet", "numpy", "h5py", "pyrealsense2", "ffpyplayer", "pylsl"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON so that ``path`` is always either the old or the new content."""
    atomic_write_json(path, data)


class Journal:
    """Append-only JSON lines, each written with one ``write`` on an ``O_APPEND`` descriptor and
    fsync'd before returning (:func:`station.fileio.append_line_fsync`): a hard stop tears at
    most the line in flight."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def append(self, op: str, **payload: Any) -> None:
        append_line_fsync(self.path, json.dumps({"op": op, **payload}, ensure_ascii=False, default=_json_default))

    def close(self) -> None:
        """Nothing stays open between lines; kept so that owners can say they are done."""


def replay_journal(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Rebuild the session dict from its journal; returns (data, info about the replay).

    A last line cut off by a hard stop is skipped and reported (``info['torn_line']``); a bad
    line anywhere else is an error naming the line, since it means the file was edited.
    """
    lines = Path(path).read_bytes().split(b"\n")
    data: dict[str, Any] | None = None
    info: dict[str, Any] = {"lines": 0, "torn_line": None}
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
            op = entry["op"]
        except (ValueError, KeyError, TypeError) as err:
            if number >= len(lines) - 1:  # the line in flight when the process died
                info["torn_line"] = number
                break
            raise StationError(f"{path}:{number}: not a journal line ({err}); the journal must not be edited.") from err
        if op not in JOURNAL_OPS:
            raise StationError(f"{path}:{number}: unknown journal op {op!r}; allowed: {', '.join(JOURNAL_OPS)}.")
        if op == "create":
            data = dict(entry["data"])
        elif data is None:
            raise StationError(f"{path}:{number}: the journal does not start with a 'create' line.")
        elif op == "event":
            data["events"].append(entry["entry"])
        elif op == "trial":
            data["trials"].append(entry["info"])
        elif op == "self_report":
            data["self_reports"].append(entry["report"])
        else:
            data.update(entry["fields"])
        info["lines"] += 1
    if data is None:
        raise StationError(f"{path} holds no 'create' line; it is not a session journal.")
    return data, info


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a session.json of any earlier schema up to :data:`SCHEMA_VERSION`.

    Version 0 (the prototype, before a version field existed) stored the participant as a bare
    string and self-reports under ``reports``.  Newer versions than ours are refused instead of
    being guessed at.
    """
    version = data.get("schema_version", 0)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise StationError(f"session.json has schema_version {version!r}; this station reads up to "
                           f"{SCHEMA_VERSION}. Update the station software.")
    data = dict(data)
    if version == 0:
        if isinstance(data.get("participant"), str):
            data["participant"] = {"id": data["participant"], "age": None, "sex": None}
        data["self_reports"] = data.pop("reports", data.get("self_reports", []))
        data.setdefault("events", [])
        data.setdefault("trials", [])
        data.setdefault("timing", {})
        data["schema_version"] = 1
    return data


class Session:
    """One numbered session folder, its journal and session.json; thread-safe appends.

    Every mutation goes to the journal first (fsync'd), then to ``data``; :meth:`save`
    rebuilds session.json from ``data``, which always equals the journal's replay.
    """

    def __init__(self, folder: Path, data: dict[str, Any], journal_info: dict[str, Any] | None = None):
        self.folder = Path(folder)
        self.data = data
        self.journal = Journal(self.folder / JOURNAL_FILE)
        self.journal_info = journal_info or {}
        self._lock = threading.RLock()

    @property
    def json_path(self) -> Path:
        return self.folder / SESSION_FILE

    @property
    def journal_path(self) -> Path:
        return self.journal.path

    @property
    def participant(self) -> str:
        return self.data["participant"]["id"]

    @property
    def session_id(self) -> str:
        return self.folder.name

    def save(self) -> None:
        with self._lock:
            write_json_atomic(self.json_path, self.data)

    def log_event(self, event: str, host_time: float, clip: str = "", detail: str = "", save: bool = False,
                  **extra: Any) -> dict:
        """Append to the event log (host_time on ``time.perf_counter``, as the trial markers)."""
        entry = {"host_time": host_time, "wall": now_iso(), "event": event, "clip": clip, "detail": detail, **extra}
        with self._lock:
            self.journal.append("event", entry=entry)
            self.data["events"].append(entry)
            if save:
                self.save()
        return entry

    def add_self_report(self, report: dict[str, Any]) -> None:
        """Store one answered form and write session.json at once (forms are not re-asked)."""
        report = {"answered": now_iso(), **report}
        with self._lock:
            self.journal.append("self_report", report=report)
            self.data["self_reports"].append(report)
            self.save()

    def add_trial(self, info: dict[str, Any]) -> None:
        with self._lock:
            self.journal.append("trial", info=info)
            self.data["trials"].append(info)
            self.save()

    def update(self, save: bool = True, **fields: Any) -> None:
        with self._lock:
            self.journal.append("update", fields=fields)
            self.data.update(fields)
            if save:
                self.save()

    def close(self) -> None:
        self.journal.close()

    def trial_path(self, number: int, clip_id: str) -> Path:
        from station.record.schema import trial_file_name

        return self.folder / trial_file_name(number, clip_id)


def create_session(root: str | Path, participant: str, *, age: int | None = None, sex: str | None = None,
                   protocol: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Session:
    """Make the next numbered folder for ``participant`` (never reusing one) and write session.json."""
    check_participant_id(participant)
    check_age(age)
    check_sex(sex)
    parent = check_writable_dir(Path(root) / participant, "participant folder")
    existing = [int(p.name) for p in parent.iterdir() if p.is_dir() and p.name.isdigit()]
    number = max(existing, default=0) + 1
    while True:  # mkdir is atomic: two stations sharing a disk still get different folders
        folder = parent / f"{number:03d}"
        try:
            folder.mkdir()
            break
        except FileExistsError:
            number += 1
    data = {
        "schema_version": SCHEMA_VERSION,
        "session_id": folder.name,
        "created": now_iso(),
        "participant": {"id": participant, "age": age, "sex": sex},
        "previous_sessions": sorted(f"{n:03d}" for n in existing),
        "protocol": protocol or {},
        "device": {},
        "software": software_versions(),
        "status": "created",
        "events": [],
        "trials": [],
        "self_reports": [],
        "timing": {},
        **(extra or {}),
    }
    session = Session(folder, data)
    session.journal.append("create", data=data)
    session.save()
    return session


def load_session(folder: str | Path) -> Session:
    """Open an existing session folder: the journal's replay when there is one (the truth,
    also after a hard stop), else session.json (older sessions), migrated in memory."""
    folder = Path(folder)
    path = folder / SESSION_FILE
    journal = folder / JOURNAL_FILE
    if journal.exists():
        data, info = replay_journal(journal)
        return Session(folder, migrate(data), info)
    if not path.exists():
        raise StationError(f"{str(folder)!r} is not a session folder: it has no {SESSION_FILE}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise StationError(f"{path} cannot be read: {err}") from err
    if not isinstance(data, dict):
        raise StationError(f"{path} must contain a JSON object, got {type(data).__name__}.")
    return Session(folder, migrate(data))
