"""The databases ``station evaluate`` reads: a station export, a CASME II folder, a SAMM folder.

Each becomes a :class:`Database`: a list of :class:`SampleRef` (small, picklable: what a worker
process needs to load one sample) plus what the database offers (3D or 2D only).

CASME II layout::

    ROOT/CASME2-coding-*.xlsx        columns Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame,
                                     Action Units, Estimated Emotion
    ROOT/.../sub01/EP02_01f/img46.jpg     (cropped faces; N = frame number)

SAMM layout::

    ROOT/SAMM_*.xlsx                 columns Subject, Filename, Onset Frame, Apex Frame, Offset Frame,
                                     Action Units, Estimated Emotion, Objective Classes
    ROOT/.../006/006_1_2/006_05562.jpg    (N = frame number after the last underscore)

The spreadsheet's header row may sit below a few title rows (SAMM's does): the first row that
contains ``Filename`` is taken as the header.  Frames from onset to offset are read; when the
offset is missing (0 or blank) the sample's last frame is used.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from station.checks import StationError
from station.dataset import SampleRecord, Sample, read_index, read_sample

FORMATS = ("station", "casme2", "samm")


@dataclass(frozen=True)
class SampleRef:
    """Enough to load one sample anywhere (a joblib / dask worker)."""

    fmt: str
    root: str
    record: SampleRecord
    frames: tuple[str, ...] = ()  # image files, onset..offset (CASME II / SAMM)

    def load(self) -> Sample:
        if self.fmt == "station":
            return read_sample(self.root, self.record)
        return _load_images(self)

    def files(self) -> list[Path]:
        if self.fmt == "station":
            return [Path(self.root) / self.record.relpath]
        return [Path(f) for f in self.frames]

    def fingerprint(self) -> str:
        """Identity of the sample's content: file paths, sizes and modification times.

        Why not a content hash: a station sample file is tens of MB, and a sweep asks for the
        fingerprint of every sample on every setting; size + mtime_ns change whenever a file is
        rewritten (write_sample replaces the file atomically).
        """
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((self.fmt, self.record.subject, self.record.sample, self.record.onset,
                       self.record.apex, self.record.offset)).encode())
        for path in self.files():
            try:
                st = path.stat()
            except OSError as err:
                raise StationError(f"sample file {str(path)!r} cannot be read: {err.strerror}.") from err
            h.update(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
        return h.hexdigest()


@dataclass
class Database:
    fmt: str
    root: Path
    refs: list[SampleRef]
    has_3d: bool
    #: which record field feeds the 3-class mapping (objective classes or emotions)
    three_class_field: str = "objective_class"
    notes: list[str] = field(default_factory=list)

    @property
    def records(self) -> list[SampleRecord]:
        return [r.record for r in self.refs]

    def fingerprint(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        for ref in self.refs:
            h.update(ref.fingerprint().encode())
        return h.hexdigest()


def _load_images(ref: SampleRef) -> Sample:
    import cv2

    frames = []
    for path in ref.frames:
        img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise StationError(f"image {path!r} of sample {ref.record.sample!r} cannot be read.")
        if frames and img.shape != frames[0].shape:
            img = cv2.resize(img, frames[0].shape[::-1], interpolation=cv2.INTER_AREA)
        frames.append(img)
    gray = np.stack(frames)
    numbers = np.array([_frame_number(Path(p)) for p in ref.frames], dtype=np.int64)
    n = len(frames)
    return Sample(record=ref.record, cropped=gray, landmarks2d=np.zeros((n, 49, 2), np.float32),
                  landmarks2d_raw=np.zeros((n, 49, 2), np.float32), landmarks3d=np.zeros((0, 49, 3), np.float32),
                  cloud_points=np.zeros((0, 3), np.float32), cloud_offsets=np.zeros(1, np.int64),
                  frame_numbers=numbers, timestamps_ms=numbers.astype(np.float64))


# ---------------------------------------------------------------------------------------------


def detect_format(path: str | Path) -> str:
    """``station`` if the folder has the station index, else ``casme2``/``samm`` by the xlsx columns."""
    root = Path(path)
    if not root.is_dir():
        raise StationError(f"database {str(root)!r} is not a folder.")
    if (root / "micro-expression.csv").exists():
        return "station"
    for sheet in sorted(root.glob("*.xlsx")):
        header = _header(sheet)
        if header is None:
            continue
        names = {h.lower() for h in header}
        if "onset frame" in names or "objective classes" in names:
            return "samm"
        if "onsetframe" in names:
            return "casme2"
    raise StationError(f"cannot tell what database {str(root)!r} is: no micro-expression.csv (station), and "
                       "no .xlsx with CASME II (OnsetFrame) or SAMM (Onset Frame) columns; "
                       "pass --format station|casme2|samm.")


def load_database(path: str | Path, fmt: str = "auto") -> Database:
    root = Path(path)
    fmt = detect_format(root) if fmt == "auto" else fmt
    if fmt == "station":
        if not root.is_dir():
            raise StationError(f"database {str(root)!r} is not a folder.")
        records = read_index(root)
        if not records:
            raise StationError(f"database {str(root)!r} has no samples in micro-expression.csv.")
        refs = [SampleRef("station", str(root), r) for r in records]
        return Database("station", root, refs, has_3d=True)
    if fmt == "casme2":
        return _load_spreadsheet_db(root, "casme2")
    if fmt == "samm":
        return _load_spreadsheet_db(root, "samm")
    raise StationError(f"--format must be one of auto, {', '.join(FORMATS)}, got {fmt!r}.")


_COLUMNS = {
    "casme2": {"subject": "subject", "filename": "filename", "onset": "onsetframe", "apex": "apexframe",
               "offset": "offsetframe", "aus": "action units", "emotion": "estimated emotion"},
    "samm": {"subject": "subject", "filename": "filename", "onset": "onset frame", "apex": "apex frame",
             "offset": "offset frame", "aus": "action units", "emotion": "estimated emotion",
             "objective": "objective classes"},
}


def _header(sheet: Path) -> list[str] | None:
    rows = _rows(sheet, limit=30)
    for row in rows:
        if any(str(c).strip().lower() == "filename" for c in row):
            return [str(c).strip() for c in row]
    return None


def _rows(sheet: Path, limit: int | None = None) -> list[list]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(sheet, read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many kinds for broken files
        raise StationError(f"spreadsheet {str(sheet)!r} cannot be read: {err}") from err
    ws = wb.worksheets[0]
    out = []
    for i, row in enumerate(ws.iter_rows(values_only=True)):
        if limit is not None and i >= limit:
            break
        out.append(["" if c is None else c for c in row])
    wb.close()
    return out


def _frame_number(path: Path) -> int:
    m = re.search(r"(\d+)$", path.stem)
    if not m:
        raise StationError(f"image {str(path)!r} has no frame number at the end of its name.")
    return int(m.group(1))


def _int_or_none(value) -> int | None:
    try:
        number = int(float(str(value).strip()))
    except ValueError:
        return None
    return number if number > 0 else None


def _subject_dirs(root: Path, fmt: str) -> dict[str, Path]:
    """Subject id (normalised: no leading zeros) -> folder holding that subject's sample folders."""
    pattern = re.compile(r"^sub(\d+)$" if fmt == "casme2" else r"^(\d+)$", re.IGNORECASE)
    found: dict[str, Path] = {}
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            m = pattern.match(name)
            if m:
                found.setdefault(str(int(m.group(1))), Path(dirpath) / name)
    return found


def _load_spreadsheet_db(root: Path, fmt: str) -> Database:
    sheets = sorted(root.glob("*.xlsx"))
    sheet = next((s for s in sheets if _header(s) is not None), None)
    if sheet is None:
        raise StationError(f"{fmt} database {str(root)!r} needs its coding spreadsheet (.xlsx with a Filename "
                           "column) in the top folder.")
    rows = _rows(sheet)
    head_at = next(i for i, row in enumerate(rows) if any(str(c).strip().lower() == "filename" for c in row))
    header = [str(c).strip().lower() for c in rows[head_at]]
    wanted = _COLUMNS[fmt]
    missing = [name for name in wanted.values() if name not in header]
    if missing:
        raise StationError(f"spreadsheet {str(sheet)!r} lacks the column(s) {', '.join(missing)}; a {fmt} "
                           f"coding sheet has {', '.join(wanted.values())} (case-insensitive).")
    col = {key: header.index(name) for key, name in wanted.items()}
    subjects = _subject_dirs(root, fmt)
    refs: list[SampleRef] = []
    notes: list[str] = []
    for line, row in enumerate(rows[head_at + 1:], start=head_at + 2):
        if not any(str(c).strip() for c in row):
            continue
        subject_raw = str(row[col["subject"]]).strip()
        subject_key = str(int(float(subject_raw))) if re.fullmatch(r"\d+(\.0)?", subject_raw) else subject_raw
        filename = str(row[col["filename"]]).strip()
        where = f"{sheet.name} row {line}"
        folder = subjects.get(subject_key)
        sample_dir = folder / filename if folder is not None else None
        if sample_dir is None or not sample_dir.is_dir():
            notes.append(f"{where}: no image folder for subject {subject_raw!r}, sample {filename!r}; skipped")
            continue
        images = sorted((p for p in sample_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp")),
                        key=_frame_number)
        if not images:
            notes.append(f"{where}: folder {str(sample_dir)!r} has no images; skipped")
            continue
        onset = _int_or_none(row[col["onset"]])
        apex = _int_or_none(row[col["apex"]])
        offset = _int_or_none(row[col["offset"]])
        first, last = _frame_number(images[0]), _frame_number(images[-1])
        onset = onset if onset is not None else first
        offset = offset if offset is not None and offset >= onset else last
        apex = apex if apex is not None and onset <= apex <= offset else (onset + offset) // 2
        chosen = [str(p) for p in images if onset <= _frame_number(p) <= offset]
        if len(chosen) < 2:
            notes.append(f"{where}: frames {onset}-{offset} not found in {str(sample_dir)!r}; skipped")
            continue
        emotion = str(row[col["emotion"]]).strip()
        objective = str(row[col["objective"]]).strip() if "objective" in col else emotion
        record = SampleRecord(subject=f"{int(subject_key):02d}" if subject_key.isdigit() else subject_key,
                              sample=filename, onset=onset, apex=apex, offset=offset,
                              aus=str(row[col["aus"]]).strip(), objective_class=objective,
                              nonobjective_class=emotion)
        refs.append(SampleRef(fmt, str(root), record, tuple(chosen)))
    if not refs:
        raise StationError(f"{fmt} database {str(root)!r}: none of the spreadsheet's samples was found on disk "
                           f"({len(notes)} row(s) skipped; first: {notes[0] if notes else 'no rows'}).")
    return Database(fmt, root, refs, has_3d=False, three_class_field="nonobjective_class", notes=notes)
