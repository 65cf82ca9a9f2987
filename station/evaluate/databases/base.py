"""What every database loader returns: a :class:`Database` of :class:`SampleRef` plus its notes.

A :class:`SampleRef` is small and picklable (a worker process loads the sample from it); a
:class:`Database` says what the database offers (3D or 2D only), which label sets it has and
what each one *is* (``label_sources``: e.g. CASME II's "objective" set is the objective class
I-VII of ``CASME2-ObjectiveClasses.xlsx``, its "nonobjective" set the estimated emotion), and
every fallback applied while loading, one :class:`Note` per sample.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from station.checks import StationError
from station.dataset import Sample, SampleRecord, read_sample, sample_path
from station.fileio import digest, file_identity
from station.vocab.landmarks import N49

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class Note(str):
    """One loading note about one sample: ``str(note)`` is the line shown; ``.sample`` and ``.text``.

    A ``str`` so every consumer that prints or escapes notes keeps working; the report can group
    by ``.sample`` (``""`` for a note about the whole database).
    """

    sample: str
    text: str

    def __new__(cls, sample: str, text: str):
        obj = super().__new__(cls, f"{sample}: {text}" if sample else text)
        obj.sample, obj.text = sample, text
        return obj

    def __reduce__(self):
        return (Note, (self.sample, self.text))


@dataclass(frozen=True)
class Camera:
    """Pinhole intrinsics of registered RGB-D frames (depth pixel-aligned to colour)."""

    fx: float
    fy: float
    ppx: float
    ppy: float
    depth_scale: float  # metres per depth unit
    source: str  # where the numbers come from (a file, or the stated assumption)


@dataclass(frozen=True)
class SampleRef:
    """Enough to load one sample anywhere (a joblib / dask worker)."""

    fmt: str
    root: str
    record: SampleRecord
    frames: tuple[str, ...] = ()  # image files, onset..offset
    fps: float = 0.0  # frame rate of the database (real times from frame numbers)
    depth: tuple[str, ...] = ()  # depth images, same frames (CAS(ME)^3)
    camera: Camera | None = None

    def load(self) -> Sample:
        if self.fmt == "station":
            return read_sample(self.root, self.record)
        if self.depth:
            from station.evaluate.databases.rgbd import load_rgbd_sample

            return load_rgbd_sample(self)
        return load_image_sample(self)

    def files(self) -> list[Path]:
        if self.fmt == "station":
            return [sample_path(self.root, self.record)]  # samples/sub01/<Filename>.h5 (older: samples/1/)
        return [Path(f) for f in self.frames + self.depth]

    def fingerprint(self) -> str:
        """Identity of the sample's content: its record and its files' paths, sizes and
        modification times (:func:`station.fileio.file_identity`, the station's one cache-key
        policy, also used for the deep LOSO runs).

        Why not a content hash: a station sample file is tens of MB, and a sweep asks for the
        fingerprint of every sample on every setting; size + mtime_ns change whenever a file is
        rewritten (write_sample replaces the file atomically).
        """
        record = repr((self.fmt, self.record.subject, self.record.sample, self.record.onset,
                       self.record.apex, self.record.offset, self.camera))
        return digest(record, *(file_identity(path, "sample file") for path in self.files()))


@dataclass
class Database:
    fmt: str
    root: Path
    refs: list[SampleRef]
    has_3d: bool
    #: which record field feeds the 3-class mapping (objective classes or emotions)
    three_class_field: str = "objective_class"
    #: every fallback applied while loading, one per sample (see :class:`Note`)
    notes: list[Note] = field(default_factory=list)
    #: label set -> what it is in this database ("objective" -> "objective class I-VII (file)")
    label_sources: dict[str, str] = field(default_factory=dict)
    #: which image set was read ("cropped", "raw") and the database's frame rate
    images: str = ""
    fps: float = 0.0
    #: the part's name in a composite run ("CASME II", "SAMM", "SMIC-HS", ...)
    title: str = ""

    @property
    def records(self) -> list[SampleRecord]:
        return [r.record for r in self.refs]

    def fingerprint(self) -> str:
        return digest(*(ref.fingerprint() for ref in self.refs))


# -- image folders ------------------------------------------------------------------------------


def frame_number(path: Path) -> int:
    """The frame number at the end of an image name: ``img46``, ``reg_img46``, ``006_05562``, ``355``."""
    m = re.search(r"(\d+)$", path.stem)
    if not m:
        raise StationError(f"image {str(path)!r} has no frame number at the end of its name.")
    return int(m.group(1))


def numbered_images(folder: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> dict[int, Path]:
    """Frame number -> image file of a sample folder (sorted by number, never by name)."""
    out: dict[int, Path] = {}
    for p in folder.iterdir():
        if p.is_file() and p.suffix.lower() in suffixes and re.search(r"\d+$", p.stem):
            out.setdefault(frame_number(p), p)
    return dict(sorted(out.items()))


def timestamps_ms(numbers: np.ndarray, fps: float) -> np.ndarray:
    """Real times of frames from their numbers and the database's documented frame rate."""
    if fps <= 0:
        raise StationError("a database sample needs its frame rate to give real timestamps.")
    return numbers.astype(np.float64) * (1000.0 / fps)


def read_gray(path: str, sample: str) -> np.ndarray:
    import cv2

    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise StationError(f"image {path!r} of sample {sample!r} cannot be read.")
    return img


def load_image_sample(ref: SampleRef) -> Sample:
    """A 2D-only sample (grey frames, no landmarks or clouds) from its image files."""
    import cv2

    frames = []
    for path in ref.frames:
        img = read_gray(path, ref.record.sample)
        if frames and img.shape != frames[0].shape:
            img = cv2.resize(img, frames[0].shape[::-1], interpolation=cv2.INTER_AREA)
        frames.append(img)
    gray = np.stack(frames)
    numbers = np.array([frame_number(Path(p)) for p in ref.frames], dtype=np.int64)
    n = len(frames)
    return Sample(record=ref.record, cropped=gray, landmarks2d=np.zeros((n, N49, 2), np.float32),
                  landmarks2d_raw=np.zeros((n, N49, 2), np.float32), landmarks3d=np.zeros((0, N49, 3), np.float32),
                  cloud_points=np.zeros((0, 3), np.float32), cloud_offsets=np.zeros(1, np.int64),
                  frame_numbers=numbers, timestamps_ms=timestamps_ms(numbers, ref.fps))
