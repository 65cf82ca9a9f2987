"""The exported micro-expression database: one definition for its writer and its readers.

``station process`` writes it, ``station evaluate`` (and a lab's own scripts) read it.
Layout of a database folder ``DB/`` (CASME II style: subject folders ``sub01``, sample folders
named by the index's ``Filename``)::

    micro-expression.xlsx, micro-expression.csv   the index, one row per sample (INDEX_HEADERS)
    samples/sub01/<sample>.h5                      everything the baselines need (SAMPLE_* below)
    2d/uncropped/sub01/<sample>/img<N>.png         2D sequence as recorded (CASME II style,
    2d/cropped/sub01/<sample>/reg_img<N>.png       N = frame number in the trial)
    3d/sub01/<sample>/frame<N>.ply                 cropped, ICP-aligned point cloud per frame

The index follows the paper (section 3.5): column 1 the participant's number (``1``), column 2
the sample (``1_1``: first sample of the participant's first film; ``s2_1_1`` when the
participant has more than one session, for session 2), columns 3-5 onset, apex and offset
frames, 6 the AUs, 7 and 8 the objective and non-objective classes, under the header names a
CASME II script reads (``Subject``, ``Filename``, ``OnsetFrame``, ``ApexFrame``, ``OffsetFrame``,
``Action Units``, ``Objective Class``, ``Estimated Emotion``); then what traces a sample back to
its trial (participant pseudonym, session, trial file, ``trial_id``).  docs/process.md has the
mapping.  Nothing in a database folder is ever overwritten: a sample that exists is refused.

Sample HDF5 (``samples/sub01/<sample>.h5``), T frames from onset to offset::

    /cropped        (T, h, w, 3) uint8   aligned and cropped color frames (RGB)
    /landmarks2d    (T, 49, 2) float32   49 landmarks in /cropped pixel coordinates (x, y)
    /landmarks2d_raw(T, 49, 2) float32   49 landmarks in the original color image, before alignment
    /landmarks3d    (T, 49, 3) float32   landmarks in millimetres, after ICP to the first frame
    /cloud_points   (K, 3) float32       all frames' cropped, ICP-aligned points, millimetres
    /cloud_offsets  (T + 1,) int64       frame t's points are cloud_points[off[t]:off[t+1]]
    /frame_numbers  (T,) int64           device frame numbers
    /timestamps_ms  (T,) float64         device timestamps
    /icp_fitness, /icp_rmse  (T,) float64
    attrs           every INDEX_COLUMNS field, plus trial file, fps, schema version

``onset``/``apex``/``offset`` in the index are frame numbers of the trial (as CASME II's
``img<N>``); within a sample file, frame t has number ``frame_numbers[t]``, so the apex
position is ``index_of(apex)``.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from station.checks import StationError
from station.fileio import atomic_path, atomic_write_text, commit_temp, read_table, temp_path, write_image

DATASET_SCHEMA_VERSION = 1
INDEX_NAME = "micro-expression"

#: SampleRecord fields in index order: the paper's eight columns (section 3.5) first, then what
#: helps a user trace a sample back to its participant, session and trial.
INDEX_COLUMNS = ("subject", "sample", "onset", "apex", "offset", "aus", "objective_class",
                 "nonobjective_class", "clip", "clip_emotion", "self_report", "duration_ms",
                 "onset_duration_ms", "participant", "session", "trial", "trial_id")
#: The header of each column in micro-expression.csv/.xlsx: CASME II's names where the paper's
#: column has a CASME II counterpart (CASME2-coding-*.xlsx, CASME2-ObjectiveClasses.xlsx).
INDEX_HEADERS = {
    "subject": "Subject", "sample": "Filename", "onset": "OnsetFrame", "apex": "ApexFrame",
    "offset": "OffsetFrame", "aus": "Action Units", "objective_class": "Objective Class",
    "nonobjective_class": "Estimated Emotion", "clip": "Clip", "clip_emotion": "Clip Emotion",
    "self_report": "Self-report", "duration_ms": "Duration (ms)", "onset_duration_ms": "Onset Duration (ms)",
    "participant": "Participant", "session": "Session", "trial": "Trial", "trial_id": "Trial ID",
}
#: The paper's columns, which every index must have (under either name).
PAPER_COLUMNS = INDEX_COLUMNS[:8]


def subject_folder(subject: int | str) -> str:
    """The folder of a subject, CASME II style: ``sub01`` for 1 (or ``"1"``); ``sub104`` for 104.

    A subject that is not a number (never the case in an exported index) is used as it is.
    """
    text = str(subject).strip()
    if text.lower().startswith("sub") and text[3:].isdigit():
        text = text[3:]
    return f"sub{int(text):02d}" if text.isdigit() else text


@dataclass
class SampleRecord:
    """One row of the index."""

    subject: str
    sample: str
    onset: int
    apex: int
    offset: int
    aus: str
    objective_class: str
    nonobjective_class: str
    clip: str = ""
    clip_emotion: str = ""
    self_report: str = ""
    duration_ms: float = float("nan")
    onset_duration_ms: float = float("nan")
    participant: str = ""  # the pseudonym the station recorded (Subject is its number here)
    session: str = ""
    trial: str = ""  # trial file name, for people
    trial_id: str = ""  # the trial file's UUID (station.record.schema.TRIAL_ID)

    @property
    def folder(self) -> str:
        """The subject's folder in every tree of the database: ``sub01``."""
        return subject_folder(self.subject)

    @property
    def relpath(self) -> Path:
        """Path of the sample HDF5 relative to the database folder."""
        return Path("samples") / self.folder / f"{self.sample}.h5"

    @property
    def legacy_relpath(self) -> Path:
        """Where exports before ``sub01`` folders put it (``samples/1/...``)."""
        return Path("samples") / str(self.subject) / f"{self.sample}.h5"


# -- the database's folder tree (one owner: this module) ---------------------------------------
def image_folder(db: str | Path, record: SampleRecord, cropped: bool) -> Path:
    """``2d/cropped/sub01/<sample>`` (``reg_img<N>.png``) or ``2d/uncropped/...`` (``img<N>.png``)."""
    return Path(db) / "2d" / ("cropped" if cropped else "uncropped") / record.folder / record.sample


def image_name(frame_number: int, cropped: bool) -> str:
    return f"{'reg_img' if cropped else 'img'}{int(frame_number)}.png"


def cloud_folder(db: str | Path, record: SampleRecord) -> Path:
    """``3d/sub01/<sample>`` with ``frame<N>.ply`` per frame."""
    return Path(db) / "3d" / record.folder / record.sample


def cloud_name(frame_number: int) -> str:
    return f"frame{int(frame_number)}.ply"


def sample_outputs(db: str | Path, record: SampleRecord) -> list[Path]:
    """Every path a sample occupies in the database (to refuse overwriting any of them)."""
    return [Path(db) / record.relpath, image_folder(db, record, False), image_folder(db, record, True),
            cloud_folder(db, record)]


def _new_folder(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=False)
    except FileExistsError as err:
        raise StationError(f"{str(folder)!r} already exists; a database never overwrites a sample "
                           "(export into a new folder, or remove the old sample first).") from err
    return folder


def write_sample_images(db: str | Path, record: SampleRecord, color: np.ndarray, cropped: np.ndarray,
                        numbers: np.ndarray) -> None:
    """The 2D sequences as PNG (RGB arrays in, CASME II names out)."""
    for is_cropped, frames in ((False, color), (True, cropped)):
        folder = _new_folder(image_folder(db, record, is_cropped))
        for image, n in zip(frames, numbers):
            write_image(folder / image_name(n, is_cropped), image, "frame image")


def write_sample_clouds(db: str | Path, record: SampleRecord, clouds: list[np.ndarray], numbers: np.ndarray) -> None:
    """One PLY per frame (points in millimetres, cropped and ICP-aligned)."""
    from station.record.pointcloud import write_ply

    folder = _new_folder(cloud_folder(db, record))
    for cloud, n in zip(clouds, numbers):
        write_ply(folder / cloud_name(n), cloud)


@dataclass
class Sample:
    """A sample's arrays, as loaded from its HDF5 file."""

    record: SampleRecord
    cropped: np.ndarray
    landmarks2d: np.ndarray
    landmarks2d_raw: np.ndarray
    landmarks3d: np.ndarray
    cloud_points: np.ndarray
    cloud_offsets: np.ndarray
    frame_numbers: np.ndarray
    timestamps_ms: np.ndarray
    icp_fitness: np.ndarray = field(default_factory=lambda: np.zeros(0))
    icp_rmse: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.frame_numbers)

    def cloud(self, t: int) -> np.ndarray:
        """(K, 3) points of frame ``t`` in millimetres."""
        return self.cloud_points[self.cloud_offsets[t]: self.cloud_offsets[t + 1]]

    def index_of(self, frame_number: int) -> int:
        """Position in the sample of the frame with this trial frame number (nearest)."""
        return int(np.argmin(np.abs(self.frame_numbers - frame_number)))

    @property
    def gray(self) -> np.ndarray:
        """(T, h, w) uint8 luminance of the cropped frames (what LBP-TOP reads)."""
        weights = np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip(self.cropped.astype(np.float32) @ weights + 0.5, 0, 255).astype(np.uint8)


_ARRAYS = ("cropped", "landmarks2d", "landmarks2d_raw", "landmarks3d", "cloud_points", "cloud_offsets",
           "frame_numbers", "timestamps_ms", "icp_fitness", "icp_rmse")


def write_sample(db: str | Path, sample: Sample, attrs: dict[str, Any] | None = None) -> Path:
    """Write a sample's HDF5 file (atomically: a :func:`station.fileio.temp_path` file, fsync'd and
    renamed); an existing sample is refused, never replaced."""
    path = Path(db) / sample.record.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise StationError(f"sample file {str(path)!r} already exists; a database never overwrites a sample.")
    tmp = temp_path(path)
    with h5py.File(tmp, "w") as f:
        for name in _ARRAYS:
            value = np.asarray(getattr(sample, name))
            # /cropped: one chunk per frame, gzip level 1 (any HDF5 reader opens it). Level 1
            # keeps 98 % of level 4's 1.5x at 0.09 instead of 0.12 CPU s a sample (~9 % of
            # `station process`); uncompressed crops put the demo over its 600 MB
            # (docs/benchmarks.md, "station process (item 4)")
            crop = name == "cropped" and value.ndim == 4 and len(value) > 0
            f.create_dataset(name, data=value, chunks=(1, *value.shape[1:]) if crop else None,
                             compression="gzip" if crop else None, compression_opts=1 if crop else None)
        for key, value in asdict(sample.record).items():
            f.attrs[key] = value
        f.attrs["schema_version"] = DATASET_SCHEMA_VERSION
        for key, value in (attrs or {}).items():
            f.attrs[key] = value if isinstance(value, (int, float, str, bool)) else json.dumps(value)
    commit_temp(tmp, path)
    return path


def read_sample(db: str | Path, record: SampleRecord) -> Sample:
    """Load a sample's arrays; the error names the file when it is missing or broken."""
    path = sample_path(db, record)
    try:
        with h5py.File(path, "r") as f:
            arrays = {name: f[name][...] for name in _ARRAYS if name in f}
    except (OSError, KeyError) as err:
        raise StationError(f"sample file {str(path)!r} cannot be read: {err}") from err
    return Sample(record=record, **arrays)


def sample_path(db: str | Path, record: SampleRecord) -> Path:
    """The sample's HDF5 file (``samples/sub01/...``; an export older than ``sub01`` folders
    is found where it put it)."""
    path = Path(db) / record.relpath
    legacy = Path(db) / record.legacy_relpath
    return legacy if not path.exists() and legacy.exists() else path


def check_new_database(db: str | Path) -> Path:
    """``db`` if it holds no database yet; an export never overwrites an index or its samples."""
    db = Path(db)
    if (db / f"{INDEX_NAME}.csv").exists() or (db / "samples").exists():
        raise StationError(f"{str(db)!r} already holds a database ({INDEX_NAME}.csv or samples/); a database is "
                           "never overwritten: export into a new folder.")
    return db


def _cell(record: SampleRecord, name: str) -> Any:
    value = getattr(record, name)
    if name == "subject" and str(value).isdigit():
        return int(value)  # the paper's "1", a number in the spreadsheet as in CASME II
    return value


def write_index(db: str | Path, records: list[SampleRecord]) -> tuple[Path, Path]:
    """Write ``micro-expression.csv`` and ``micro-expression.xlsx`` (openpyxl), rows in the order given."""
    db = Path(db)
    db.mkdir(parents=True, exist_ok=True)
    header = [INDEX_HEADERS[c] for c in INDEX_COLUMNS]
    rows = [[_cell(r, c) for c in INDEX_COLUMNS] for r in records]
    csv_path = db / f"{INDEX_NAME}.csv"
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(csv_path, text.getvalue())  # whole or not at all; a full disk names the file
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "samples"
    ws.append(header)
    for row in rows:
        ws.append(row)
    xlsx_path = db / f"{INDEX_NAME}.xlsx"
    with atomic_path(xlsx_path) as tmp:
        wb.save(tmp)
    return csv_path, xlsx_path


def _convert(name: str, text: str) -> Any:
    kinds = {f.name: f.type for f in fields(SampleRecord)}
    kind = kinds[name]
    if kind in ("int", int):
        return int(float(text))
    if kind in ("float", float):
        return float(text) if text not in ("", "nan") else float("nan")
    return text


def read_index(db: str | Path) -> list[SampleRecord]:
    """The index of a database folder, from its CSV."""
    path = Path(db) / f"{INDEX_NAME}.csv"
    if not path.exists():
        raise StationError(f"{str(db)!r} is not a station database: {path.name} is missing "
                           "(make one with `station process` or `station synth dataset`).")
    # headers as written now (INDEX_HEADERS), or the field names of exports before them
    field_of = {**{h: c for c, h in INDEX_HEADERS.items()}, **{c: c for c in INDEX_COLUMNS}}
    table = read_table(path, what="database index")  # any encoding / separator a spreadsheet saves
    present = {field_of[h] for h in table.columns if h in field_of}
    missing = [INDEX_HEADERS[c] for c in PAPER_COLUMNS if c not in present]
    if missing:
        raise StationError(f"{str(path)!r} lacks the column(s) {', '.join(missing)}; "
                           f"expected {', '.join(INDEX_HEADERS[c] for c in INDEX_COLUMNS)}.")
    if table.rows and not table.ends_whole:
        # the station writes every line whole: a last line without its end was cut (full disk, copy)
        last = table.rows[-1]
        cut_at = next((h for h in reversed(table.columns) if (last.data.get(h) or "").strip()), table.columns[0])
        raise StationError(f"{last.where(cut_at)}: the index ends in the middle of this row (the file was cut); "
                           "restore it from the export or re-run `station process`.")
    needed = [h for h in table.columns if field_of.get(h) in ("subject", "sample", "onset", "apex", "offset")]
    for row in table:  # a cut or damaged file: refuse it, naming where, rather than read a partial row
        empty = [h for h in needed if not (row.data.get(h) or "").strip()]
        if empty:
            raise StationError(f"{row.where(empty[0])}: empty; every sample needs {', '.join(needed)} "
                               "(is the index cut or damaged?).")
    return [SampleRecord(**{field_of[k]: row.value(k, functools.partial(_convert, field_of[k]), "a number")
                            for k in row if k in field_of}) for row in table]


def iter_samples(db: str | Path) -> Iterator[Sample]:
    """Every sample of a database, loaded one at a time."""
    for record in read_index(db):
        yield read_sample(db, record)
