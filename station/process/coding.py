"""Per-coder annotation files: one CSV per coder, saved after every change, resumable.

The CSV is the hand-off format of the whole offline path: the coding tool writes it, ``station
agree`` reads two of them and writes the final one in the same layout, and ``station process
--coding`` reads that.  Frame numbers are the trial's device frame numbers (the
``color_number`` column of /frames), which is what the index reports as onset/apex/offset.

Each save rewrites the file through a temporary name and an atomic rename, so a crash while
coding never leaves a half-written file; the coder's last position per trial is kept next to it
(``<csv>.cursor.json``) so the tool reopens where the coder left.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from station.checks import StationError
from station.vocab.facs import normalise

CODING_COLUMNS = ("coder", "trial", "sample", "onset", "apex", "offset", "aus", "notes", "updated")


@dataclass
class Annotation:
    """One coded movement: where it is in the trial and which AUs it shows."""

    coder: str
    trial: str  # trial file name (not the path: the folder may move between coding and processing)
    sample: int  # 1-based number of this movement within the trial, for this coder
    onset: int
    apex: int
    offset: int
    aus: str = ""
    notes: str = ""
    updated: str = ""

    def check(self, where: str) -> None:
        """Frames in order and AUs in FACS notation, else a message naming ``where``."""
        if not self.onset <= self.apex <= self.offset:
            raise StationError(f"{where}: onset <= apex <= offset is required, got onset={self.onset}, "
                               f"apex={self.apex}, offset={self.offset}.")
        self.aus = normalise(self.aus, where)


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def trial_key(path: str | Path) -> str:
    """How a trial is named in coding files: its file name without the ``.writing`` suffix."""
    name = Path(path).name
    return name[: -len(".writing")] if name.endswith(".writing") else name


def read_coding(path: str | Path, *, strict: bool = True) -> list[Annotation]:
    """All annotations of a coding CSV; bad rows raise (``strict``) naming file and line."""
    path = Path(path)
    if not path.exists():
        raise StationError(f"coding file {str(path)!r} does not exist.")
    out: list[Annotation] = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in CODING_COLUMNS[:7] if c not in (reader.fieldnames or [])]
        if missing:
            raise StationError(f"coding file {str(path)!r} lacks the column(s) {', '.join(missing)}; "
                               f"expected {', '.join(CODING_COLUMNS)}.")
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            try:
                ann = Annotation(coder=row["coder"], trial=row["trial"], sample=int(row["sample"]),
                                 onset=int(row["onset"]), apex=int(row["apex"]), offset=int(row["offset"]),
                                 aus=row.get("aus") or "", notes=row.get("notes") or "",
                                 updated=row.get("updated") or "")
            except (TypeError, ValueError) as err:
                raise StationError(f"{where}: frame numbers must be integers ({err}).") from err
            if strict:
                ann.check(where)
            out.append(ann)
    return out


def write_coding(path: str | Path, annotations: list[Annotation]) -> Path:
    """Write a coding CSV atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CODING_COLUMNS)
        writer.writeheader()
        for ann in sorted(annotations, key=lambda a: (a.trial, a.onset, a.sample)):
            writer.writerow(asdict(ann))
    os.replace(tmp, path)
    return path


class CodingStore:
    """One coder's annotations for one or more trials, persisted on every change."""

    def __init__(self, path: str | Path, coder: str):
        self.path, self.coder = Path(path), coder
        self.annotations: list[Annotation] = read_coding(self.path) if self.path.exists() else []
        other = {a.coder for a in self.annotations} - {coder}
        if other:
            raise StationError(f"coding file {str(self.path)!r} belongs to coder(s) {', '.join(sorted(other))}, "
                               f"not {coder!r}; each coder keeps their own file.")
        self.cursor_path = self.path.with_name(self.path.name + ".cursor.json")

    def for_trial(self, trial: str) -> list[Annotation]:
        return sorted((a for a in self.annotations if a.trial == trial), key=lambda a: a.onset)

    def add(self, trial: str, onset: int, apex: int, offset: int, aus: str = "", notes: str = "") -> Annotation:
        """Add a movement (checked first) and save."""
        number = max((a.sample for a in self.annotations if a.trial == trial), default=0) + 1
        ann = Annotation(self.coder, trial, number, onset, apex, offset, aus, notes, _now())
        ann.check(f"coder {self.coder}, trial {trial}")
        self.annotations.append(ann)
        self.save()
        return ann

    def remove(self, trial: str, sample: int) -> None:
        self.annotations = [a for a in self.annotations if not (a.trial == trial and a.sample == sample)]
        self.save()

    def save(self) -> None:
        write_coding(self.path, self.annotations)

    # -- resume ---------------------------------------------------------------------------
    def cursor(self, trial: str) -> int | None:
        """Frame index the coder was at when they last left this trial."""
        try:
            return int(json.loads(self.cursor_path.read_text())[trial])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def set_cursor(self, trial: str, index: int) -> None:
        try:
            state = json.loads(self.cursor_path.read_text())
        except (OSError, ValueError):
            state = {}
        state[trial] = int(index)
        tmp = self.cursor_path.with_name(self.cursor_path.name + ".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, self.cursor_path)


def annotation_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Annotation))
