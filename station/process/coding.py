"""Per-coder annotation files: one CSV per coder, saved after every change, resumable.

The CSV is the hand-off format of the whole offline path: the coding tool writes it, ``station
agree`` reads two of them and writes the final one in the same layout, and ``station process
--coding`` reads that.  Frame numbers are the trial's device frame numbers (the
``color_number`` column of /frames), which is what the index reports as onset/apex/offset.

Trials are named by their identity (``trial_id``, the UUID written into the trial file when it
is created, with participant and session beside it), never by file name alone: ``trial-01-<clip>.h5``
repeats across participants on the same Latin-square row and across a participant's sessions.
The file name stays in the ``trial`` column so a person can read the CSV.  Rows written before
trial ids existed (empty ``trial_id``) are matched by name only when that is unambiguous.

Each save rewrites the file through a temporary name and an atomic rename, so a crash while
coding never leaves a half-written file; the coder's last position per trial is kept next to it
(``<csv>.cursor.json``) so the tool reopens where the coder left.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from station.checks import StationError
from station.vocab.facs import normalise

CODING_COLUMNS = ("coder", "trial", "sample", "onset", "apex", "offset", "aus", "notes", "updated",
                  "trial_id", "participant", "session")
#: Columns a coding file must have; the identity columns are absent from files older than trial ids.
REQUIRED_COLUMNS = CODING_COLUMNS[:7]


@dataclass
class Annotation:
    """One coded movement: where it is in the trial and which AUs it shows."""

    coder: str
    trial: str  # trial file name, for people (the folder may move between coding and processing)
    sample: int  # 1-based number of this movement within the trial, for this coder
    onset: int
    apex: int
    offset: int
    aus: str = ""
    notes: str = ""
    updated: str = ""
    trial_id: str = ""  # the trial file's UUID: what the coding is matched by
    participant: str = ""
    session: str = ""

    def check(self, where: str) -> None:
        """Frames in order and AUs in FACS notation, else a message naming ``where`` and the field."""
        for name in ("onset", "apex", "offset"):
            if getattr(self, name) < 0:
                raise StationError(f"{where}, field {name}: frame numbers are >= 0, got {getattr(self, name)}.")
        if self.onset > self.offset:
            raise StationError(f"{where}, field onset: onset {self.onset} is after offset {self.offset}; "
                               "a movement needs onset <= apex <= offset.")
        for name, ok in (("apex", self.onset <= self.apex <= self.offset),):
            if not ok:
                raise StationError(f"{where}, field apex: apex {self.apex} is outside onset..offset "
                                   f"{self.onset}..{self.offset}; a movement needs onset <= apex <= offset.")
        self.aus = normalise(self.aus, f"{where}, field aus")

    def same_trial(self, identity: dict) -> bool:
        """Whether this row codes the trial of ``identity``: by trial id; for a trial file without
        one (recorded before ids existed), by file name, participant and session together."""
        if self.trial_id or identity.get("trial_id"):
            return self.trial_id == identity.get("trial_id")
        return (self.trial, self.participant, self.session) == (
            identity["name"], identity.get("participant", ""), identity.get("session", ""))


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def trial_key(path: str | Path) -> str:
    """How a trial is named for people: its file name without the ``.writing`` suffix."""
    from station.record.schema import trial_key as name_of

    return name_of(path)


def read_rows(path: str | Path, required: tuple[str, ...], what: str) -> list[tuple[int, dict[str, str]]]:
    """(line, row) of a CSV/TSV in any common encoding and separator, or a clear refusal.

    Excel in most of Europe saves ``;``-separated Latin-1 or UTF-16; Numbers and LibreOffice
    add a BOM.  One reader for all of them (``station.fileio.read_table``) so a coder's file is
    read as written, and a missing column is reported as such, not as a decoding error.
    """
    from station.fileio import read_table

    table = read_table(path, required=list(required), what=what)
    return [(row.line, dict(row.data)) for row in table.rows]


def _int_field(row: dict, name: str, where: str) -> int:
    text = (row.get(name) or "").strip()
    try:
        return int(float(text)) if text and float(text).is_integer() else int(text)
    except ValueError as err:
        raise StationError(f"{where}, field {name}: {text!r} is not a frame number (a whole number of frames)."
                           ) from err


def read_coding(path: str | Path, *, strict: bool = True) -> list[Annotation]:
    """All annotations of a coding CSV; bad rows raise (``strict``) naming file, line and field."""
    path = Path(path)
    if not path.exists():
        raise StationError(f"coding file {str(path)!r} does not exist.")
    out: list[Annotation] = []
    for line, row in read_rows(path, REQUIRED_COLUMNS, "coding file"):
        where = f"{path}:{line}"
        ann = Annotation(coder=row["coder"].strip(), trial=row["trial"].strip(),
                         sample=_int_field(row, "sample", where),
                         onset=_int_field(row, "onset", where), apex=_int_field(row, "apex", where),
                         offset=_int_field(row, "offset", where), aus=row.get("aus", ""),
                         notes=row.get("notes", ""), updated=row.get("updated", ""),
                         trial_id=row.get("trial_id", "").strip(), participant=row.get("participant", "").strip(),
                         session=row.get("session", "").strip())
        if strict:
            ann.check(where)
        out.append(ann)
    return out


def coding_text(annotations: list[Annotation]) -> str:
    """The CSV text of a coding (UTF-8, sorted by trial and onset)."""
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CODING_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for ann in sorted(annotations, key=lambda a: (a.participant, a.session, a.trial, a.trial_id, a.onset, a.sample)):
        writer.writerow(asdict(ann))
    return buf.getvalue()


def write_coding(path: str | Path, annotations: list[Annotation]) -> Path:
    """Write a coding CSV atomically (fsync'd temporary file + rename)."""
    from station.fileio import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, coding_text(annotations))
    return path


class CodingStore:
    """One coder's annotations for one or more trials, persisted on every change, with undo.

    Trials are addressed by their identity dict (``trial_id``, participant, session, ``name``;
    see :func:`station.gui.media.trial_identity`).  Rows of other trials in the same file are
    kept untouched, whatever their file name.
    """

    def __init__(self, path: str | Path, coder: str):
        self.path, self.coder = Path(path), coder
        self.annotations: list[Annotation] = read_coding(self.path) if self.path.exists() else []
        other = {a.coder for a in self.annotations} - {coder}
        if other:
            raise StationError(f"coding file {str(self.path)!r} belongs to coder(s) {', '.join(sorted(other))}, "
                               f"not {coder!r}; each coder keeps their own file.")
        self.cursor_path = self.path.with_name(self.path.name + ".cursor.json")
        self._undo: list[list[Annotation]] = []
        self._seen = self._stat()

    # -- which rows belong to a trial --------------------------------------------------------
    def adopt_legacy(self, identity: dict, unambiguous: bool) -> int:
        """Give rows without a trial id that name this trial's file this trial's identity.

        Only when the caller knows the name is unambiguous (the coding file sits in the trial's
        own folder); otherwise they stay as they are and :meth:`legacy_rows` reports them.
        Returns how many rows were adopted (and saves if any).
        """
        rows = self.legacy_rows(identity)
        if not rows or not unambiguous:
            return 0
        for a in rows:
            a.trial_id, a.participant, a.session = (identity.get("trial_id", ""), identity.get("participant", ""),
                                                    identity.get("session", ""))
        self.save()
        return len(rows)

    def legacy_rows(self, identity: dict) -> list[Annotation]:
        """Rows naming this trial's file without saying whose trial it is (no id, no participant)."""
        return [a for a in self.annotations if not a.trial_id and not a.participant and a.trial == identity["name"]
                and not a.same_trial(identity)]

    def for_trial(self, identity: dict) -> list[Annotation]:
        return sorted((a for a in self.annotations if a.same_trial(identity)), key=lambda a: (a.onset, a.sample))

    # -- changes (each one saved, each one undoable) ---------------------------------------------
    def _snapshot(self) -> None:
        self._undo.append([Annotation(**asdict(a)) for a in self.annotations])
        del self._undo[:-200]

    def add(self, identity: dict, onset: int, apex: int, offset: int, aus: str = "", notes: str = "") -> Annotation:
        """Add a movement (checked first) and save."""
        number = max((a.sample for a in self.for_trial(identity)), default=0) + 1
        ann = Annotation(self.coder, identity["name"], number, onset, apex, offset, aus, notes, _now(),
                         identity.get("trial_id", ""), identity.get("participant", ""), identity.get("session", ""))
        ann.check(f"coder {self.coder}, trial {identity['name']}")
        self._snapshot()
        self.annotations.append(ann)
        self._commit()
        return ann

    def update(self, identity: dict, sample: int, **changes) -> Annotation:
        """Change fields of one saved movement (checked first) and save."""
        current = self.get(identity, sample)
        edited = Annotation(**{**asdict(current), **changes, "updated": _now()})
        edited.check(f"coder {self.coder}, trial {identity['name']}, movement {sample}")
        self._snapshot()
        self.annotations[self.annotations.index(current)] = edited
        self._commit()
        return edited

    def get(self, identity: dict, sample: int) -> Annotation:
        for a in self.for_trial(identity):
            if a.sample == sample:
                return a
        raise StationError(f"trial {identity['name']} has no movement {sample} by {self.coder}.")

    def remove(self, identity: dict, sample: int) -> None:
        current = self.get(identity, sample)
        self._snapshot()
        self.annotations.remove(current)
        self._commit()

    def undo(self) -> bool:
        """Restore the state before the last change (and save); False when there is nothing to undo."""
        if not self._undo:
            return False
        current = self.annotations
        self.annotations = self._undo.pop()
        try:
            self.save()
        except StationError:
            self._undo.append(self.annotations)
            self.annotations = current
            raise
        return True

    def _commit(self) -> None:
        """Save a change just made; if the disk refuses, undo it in memory too and say so."""
        try:
            self.save()
        except StationError:
            self.annotations = self._undo.pop()
            raise

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def save(self) -> None:
        """Write the file, unless someone else changed it since this store read or wrote it
        (a coder checking it in a spreadsheet): their edit is not overwritten."""
        if self._stat() != self._seen:
            raise StationError(f"the coding file {str(self.path)!r} was changed by another program since it was "
                               "opened; the last change was not saved, so as not to overwrite that edit. Close "
                               "the other program and reopen the coding tool to load the file as it is now.")
        try:
            write_coding(self.path, self.annotations)
            self._seen = self._stat()
        except OSError as err:
            raise StationError(f"cannot save the coding file {str(self.path)!r}: {err.strerror or err}; the last "
                               "change was not made (the file holds everything saved before it).") from err

    # -- resume ---------------------------------------------------------------------------
    @staticmethod
    def _cursor_key(identity: dict) -> str:
        return identity.get("trial_id") or identity["name"]

    def cursor(self, identity: dict) -> int | None:
        """Frame index the coder was at when they last left this trial."""
        try:
            return int(json.loads(self.cursor_path.read_text())[self._cursor_key(identity)])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def set_cursor(self, identity: dict, index: int) -> None:
        from station.fileio import atomic_write_text

        try:
            state = json.loads(self.cursor_path.read_text())
        except (OSError, ValueError):
            state = {}
        state[self._cursor_key(identity)] = int(index)
        self.cursor_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.cursor_path, json.dumps(state, indent=1))


def annotation_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Annotation))
