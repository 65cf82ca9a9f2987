"""The exported micro-expression database: one definition for its writer and its readers.

``station process`` writes it, ``station evaluate`` (and a lab's own scripts) read it.
Layout of a database folder ``DB/``::

    micro-expression.xlsx, micro-expression.csv   the index, one row per sample (INDEX_COLUMNS)
    samples/<subject>/<sample>.h5                  everything the baselines need (SAMPLE_* below)
    2d/uncropped/<subject>/<sample>/img<N>.png     2D sequence as recorded (CASME II style,
    2d/cropped/<subject>/<sample>/reg_img<N>.png   N = frame number in the trial)
    3d/<subject>/<sample>/frame<N>.ply             cropped, ICP-aligned point cloud per frame

Sample HDF5 (``samples/<subject>/<sample>.h5``), T frames from onset to offset::

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
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from station.checks import StationError

DATASET_SCHEMA_VERSION = 1
INDEX_NAME = "micro-expression"

#: The paper's columns (section 3.5) first, then what helps a user trace a sample back.
INDEX_COLUMNS = ("subject", "sample", "onset", "apex", "offset", "aus", "objective_class",
                 "nonobjective_class", "clip", "clip_emotion", "self_report", "duration_ms",
                 "onset_duration_ms", "trial")


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
    trial: str = ""

    @property
    def relpath(self) -> Path:
        """Path of the sample HDF5 relative to the database folder."""
        return Path("samples") / self.subject / f"{self.sample}.h5"


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
    """Write a sample's HDF5 file (atomically: written as ``.writing`` then renamed)."""
    path = Path(db) / sample.record.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".writing")
    with h5py.File(tmp, "w") as f:
        for name in _ARRAYS:
            value = np.asarray(getattr(sample, name))
            chunks = (1, *value.shape[1:]) if name == "cropped" and value.ndim == 4 and len(value) else None
            f.create_dataset(name, data=value, chunks=chunks, compression="gzip" if name == "cropped" else None)
        for key, value in asdict(sample.record).items():
            f.attrs[key] = value
        f.attrs["schema_version"] = DATASET_SCHEMA_VERSION
        for key, value in (attrs or {}).items():
            f.attrs[key] = value if isinstance(value, (int, float, str, bool)) else json.dumps(value)
    tmp.replace(path)
    return path


def read_sample(db: str | Path, record: SampleRecord) -> Sample:
    """Load a sample's arrays; the error names the file when it is missing or broken."""
    path = Path(db) / record.relpath
    try:
        with h5py.File(path, "r") as f:
            arrays = {name: f[name][...] for name in _ARRAYS if name in f}
    except (OSError, KeyError) as err:
        raise StationError(f"sample file {str(path)!r} cannot be read: {err}") from err
    return Sample(record=record, **arrays)


def write_index(db: str | Path, records: list[SampleRecord]) -> tuple[Path, Path]:
    """Write ``micro-expression.csv`` and ``micro-expression.xlsx`` (openpyxl)."""
    db = Path(db)
    db.mkdir(parents=True, exist_ok=True)
    rows = [[getattr(r, c) for c in INDEX_COLUMNS] for r in records]
    csv_path = db / f"{INDEX_NAME}.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(INDEX_COLUMNS)
        writer.writerows(rows)
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "samples"
    ws.append(list(INDEX_COLUMNS))
    for row in rows:
        ws.append(row)
    xlsx_path = db / f"{INDEX_NAME}.xlsx"
    wb.save(xlsx_path)
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
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in INDEX_COLUMNS[:8] if c not in (reader.fieldnames or [])]
        if missing:
            raise StationError(f"{str(path)!r} lacks the column(s) {', '.join(missing)}; "
                               f"expected {', '.join(INDEX_COLUMNS)}.")
        return [SampleRecord(**{k: _convert(k, v) for k, v in row.items() if k in INDEX_COLUMNS})
                for row in reader]


def iter_samples(db: str | Path) -> Iterator[Sample]:
    """Every sample of a database, loaded one at a time."""
    for record in read_index(db):
        yield read_sample(db, record)
