"""Small files written so a crash never leaves half of one, and tables read as people save them.

Writing: :func:`atomic_write_text` / :func:`atomic_write_bytes` / :func:`atomic_write_json` and
the :func:`atomic_path` context manager (for writers that want a file name: h5py, numpy, cv2)
write a temporary file in the same folder, fsync it, rename it over the target and fsync the
folder, so after a power cut ``path`` holds either the old or the new content, never a torn
one.  The temporary file is always ``.<stem>.<pid>.tmp<suffix>`` beside the target
(:func:`temp_path`; ``session.json`` -> ``.session.4711.tmp.json``): hidden, unique per process,
never taken for data, and still ending in the real suffix, so writers that pick the format
from the name (ffmpeg, OpenCV, ``numpy.savez``) write the right one.  Trial files being
recorded use ``.h5.writing`` instead (:mod:`station.record.schema`): those are *meant* to be
recovered after a crash, a temporary file is not.
:func:`append_line_fsync` is the journal's primitive: one ``write`` per line, fsync'd.

Reading: :func:`read_table` reads a CSV / TSV whatever saved it -- UTF-8 with or without BOM,
UTF-16 with BOM (Excel "Unicode text"), Windows-1252 / Latin-1 (Excel in Western Europe), and
``;`` as the separator (Excel where ``,`` is the decimal mark) -- and every error names the
file, the line and the column.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from station.checks import StationError, format_bytes, free_bytes

TEMP_SUFFIX = ".tmp"


def temp_path(path: str | Path) -> Path:
    """Where an atomic write of ``path`` goes first: ``.<stem>.<pid>.tmp<suffix>`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}{TEMP_SUFFIX}{path.suffix}")


def is_temp(path: str | Path) -> bool:
    """Whether ``path`` is a temporary file of :func:`temp_path` (skip it when listing data)."""
    name = Path(path).name
    stem = name[: -len(Path(name).suffix)] if Path(name).suffix else name
    return name.startswith(".") and stem.endswith(TEMP_SUFFIX)


def commit_temp(tmp: str | Path, path: str | Path) -> Path:
    """fsync the finished ``tmp``, rename it to ``path`` and fsync the folder; returns ``path``."""
    tmp, path = Path(tmp), Path(path)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return path


def name_when_whole(partial: str | Path, path: str | Path) -> Path:
    """Give an exported file that was checked whole (a PLY, an MP4) its name; returns ``path``.

    A rename without fsync: exports are rebuilt from the trial files in seconds, and an fsync
    per point cloud would cost a database export more than writing it.  Recordings and the
    small files the station cannot rebuild go through :func:`commit_temp`.
    """
    os.replace(partial, path)
    return Path(path)


def fsync_dir(folder: str | Path) -> None:
    """Make a rename or a new file in ``folder`` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is fsync'd and renamed to ``path``.

    On an exception the temporary file is removed and ``path`` is untouched.  An OSError that
    names no file (a write or flush that failed: a full disk) is raised again naming ``path``.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        commit_temp(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError) and err.filename is None and err.errno is not None:
            raise OSError(err.errno, err.strerror or str(err), str(path)) from err
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
    return path


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and durably (``\\n`` line ends as given)."""
    return atomic_write_bytes(path, text.encode(encoding))


#: Below this much free space, a write OpenCV refused is put down to a full disk.
_IMAGE_DISK_FULL_BYTES = 16_000_000


def write_image(path: str | Path, rgb, what: str = "image") -> Path:
    """Write an RGB (or grey) array as an image file (format from the suffix); refuse what
    OpenCV did not write.

    Why: ``cv2.imwrite`` says only False -- for a full disk, a folder it may not write, or a
    suffix it has no encoder for alike -- so the error names the file and the likely cause.
    Not atomic (a database writes thousands of frames; an fsync each would cost more than the
    encoding): a frame cut short is refused, and its sample with it.
    """
    import cv2
    import numpy as np

    path = Path(path)
    try:
        image = np.asarray(rgb)
        written = cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1] if image.ndim == 3 else image))
    except cv2.error:  # no encoder for the suffix (OpenCV 4 raises where 3 returned False)
        written = False
    if written:
        return path
    if not cv2.haveImageWriter(str(path)):
        why = f"OpenCV has no writer for {path.suffix or 'a name without a suffix'!r}; use .png or .jpg"
    elif not os.access(path.parent, os.W_OK):
        why = "its folder does not exist or is not writable by this user"
    elif (free := free_bytes(path.parent)) < _IMAGE_DISK_FULL_BYTES:
        why = f"disk full: {format_bytes(free)} free there"
    else:
        why = "OpenCV gave no reason"
    raise StationError(f"cannot write the {what} {str(path)!r} ({why}).")


def json_default(obj: Any) -> Any:
    """JSON for the types station data carry: paths, numpy scalars and arrays."""
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and getattr(obj, "ndim", 0) == 0:  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def atomic_write_json(path: str | Path, data: Any, indent: int | None = 1) -> Path:
    """Write ``data`` as UTF-8 JSON atomically and durably (numpy values and paths allowed)."""
    text = json.dumps(data, indent=indent, ensure_ascii=False, default=json_default)
    return atomic_write_text(path, text + "\n")


def append_line_fsync(path: str | Path, line: str) -> None:
    """Append one line (a ``\\n`` is added if missing) with a single ``write``, then fsync.

    A single ``write`` on an ``O_APPEND`` descriptor means a crash leaves at most the last line
    torn, never two lines interleaved.  A new file also gets its folder fsync'd.
    """
    path = Path(path)
    new = not path.exists()
    data = (line if line.endswith("\n") else line + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        fsync_dir(path.parent)


# -- cache keys -------------------------------------------------------------------------------
# One policy for every cache the station keeps (feature matrices, deep LOSO folds): a key is
# a digest of the parameters and of each input's identity.  An input *file* is identified by
# :func:`file_identity` -- resolved path, size and modification time in ns -- because every
# station write is an atomic replace (a rewrite always changes it) and reading tens of MB per
# sample per sweep setting to hash contents would cost more than the cache saves.  Data that
# exists only in memory has no file to stat; it is identified by a digest of its bytes.


def file_identity(path: str | Path, what: str = "file") -> str:
    """``'<resolved path>|<size>|<mtime_ns>'`` of an input file (see the cache-key policy above)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as err:
        raise StationError(f"{what} {str(path)!r} cannot be read: {err.strerror}.") from err
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def digest(*parts: str | bytes | memoryview) -> str:
    """A 32-hex-digit BLAKE2b digest of text and contiguous buffers (numpy arrays too), each
    length-prefixed so ``('ab', 'c')`` and ``('a', 'bc')`` differ."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        data = memoryview(part.encode() if isinstance(part, str) else part).cast("B")  # contiguous buffers
        h.update(data.nbytes.to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


# -- tables -----------------------------------------------------------------------------------
DELIMITERS = (",", ";", "\t")


@dataclass
class Row(Mapping):
    """One data row: ``line`` in the file (the header is line 1) and its cells by column."""

    line: int
    data: dict[str, str]
    path: Path = field(repr=False, default=Path())

    def __getitem__(self, key: str) -> str:
        return self.data[key]

    def __iter__(self):
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def where(self, column: str | None = None) -> str:
        """``file:line`` (and ``, column X``) for error messages."""
        return f"{self.path}:{self.line}" + (f", column {column}" if column else "")

    def value(self, column: str, convert: Callable[[str], Any] = str, allowed: str = "") -> Any:
        """The cell converted by ``convert``; a failure names the file, line, column and value."""
        raw = (self.data.get(column) or "").strip()
        try:
            return convert(raw)
        except (ValueError, TypeError) as err:
            want = allowed or getattr(convert, "__name__", "a valid value")
            raise StationError(f"{self.where(column)}: {raw!r} is not {want}.") from err


@dataclass
class Table:
    """A table read by :func:`read_table`: its rows, columns and how the file was written."""

    path: Path
    columns: list[str]
    rows: list[Row]
    encoding: str
    delimiter: str
    #: whether the file's last line has its line end (a file cut short, e.g. by a full disk, has not)
    ends_whole: bool = True

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def _decode(raw: bytes) -> tuple[str, str]:
    """Text and encoding name: BOMs first, then strict UTF-8, then Windows-1252 / Latin-1."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                      (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            return raw.decode(name), name
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"


def _delimiter(header: str, path: Path) -> str:
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_table(path: str | Path, required: Sequence[str] = (), *, what: str = "table",
               optional: Sequence[str] | None = None) -> Table:
    """Read a CSV / TSV into a :class:`Table`; cells are stripped strings (``''`` when absent).

    ``required`` columns must be in the header (blanks around header names and their case
    are ignored: ``' Onset'`` is ``onset`` if ``onset`` is required).  With ``optional`` given,
    any other column is refused too (a typo must not be silently ignored).  ``what`` names the
    file in messages (``"coding file"``).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StationError(f"{what} {str(path)!r} does not exist.") from None
    except OSError as err:
        raise StationError(f"{what} {str(path)!r} cannot be read: {err.strerror}.") from err
    text, encoding = _decode(raw)
    if not text.strip():
        raise StationError(f"{what} {str(path)!r} is empty; it needs a header line"
                           + (f" with {', '.join(required)}." if required else "."))
    first = text.lstrip("\ufeff").splitlines()[0]
    delimiter = _delimiter(first, path)
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader)]
    by_lower = {h.lower(): h for h in header}
    rename = {by_lower[c.lower()]: c for c in [*required, *(optional or ())] if c.lower() in by_lower}
    columns = [rename.get(h, h) for h in header]
    missing = [c for c in required if c not in columns]
    if missing:
        raise StationError(f"{path}:1: header lacks the column(s) {', '.join(missing)} a {what} needs; it has "
                           f"{', '.join(repr(c) for c in header) or 'none'} (separator {delimiter!r}, {encoding}).")
    if optional is not None:
        unknown = [c for c in columns if c and c not in (*required, *optional)]
        if unknown:
            raise StationError(f"{path}:1: header has unknown column(s) {', '.join(unknown)}; a {what} has "
                               f"{', '.join((*required, *optional))}.")
    rows = []
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns):]):
            raise StationError(f"{path}:{line}: {len(cells)} cells but the header has {len(columns)} columns "
                               f"(separator {delimiter!r}); quote cells that contain the separator.")
        data = {c: (cells[i].strip() if i < len(cells) else "") for i, c in enumerate(columns) if c}
        rows.append(Row(line, data, path))
    return Table(path, columns, rows, encoding, delimiter, text.rstrip("\x00").endswith(("\n", "\r")))
