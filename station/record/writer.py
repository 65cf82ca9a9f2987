"""Crash-safe trial HDF5 writer and the matching reader helpers.

The file is written in SWMR mode: after every :meth:`TrialWriter.flush` the file on disk is
consistent, so a crash or SIGKILL leaves every frame up to the last flush readable.  While
being written it is named ``<name>.h5.writing``; :meth:`TrialWriter.close` stamps the final
attributes and renames it, so a finished trial is recognisable by its name and by
``attrs['complete']``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import h5py
import hdf5plugin
import numpy as np

import station
from station.camera.base import Calibration, Extrinsics, Frameset, Intrinsics
from station.checks import StationError, check_choice, is_disk_full
from station.record import schema
from station.record.pointcloud import deproject_depth, pixel_rays

COMPRESSIONS = ("none", "lz4", "blosc2", "zstd")

#: h5py objects of files whose close failed (disk full); freeing them would crash HDF5.
_UNCLOSABLE: list[tuple] = []


@dataclass(frozen=True)
class Storage:
    """How frames are stored; the defaults are what holds 60 fps on 2 cores (docs/benchmarks.md)."""

    compression: str = "lz4"
    store_vertices: bool = False

    def __post_init__(self) -> None:
        check_choice(self.compression, COMPRESSIONS, "compression")

    def filter_kwargs(self) -> dict[str, Any]:
        """h5py dataset keyword arguments for the chosen compression."""
        if self.compression == "lz4":
            return dict(hdf5plugin.LZ4())
        if self.compression == "blosc2":
            return dict(hdf5plugin.Blosc2(cname="lz4", clevel=5, filters=hdf5plugin.Blosc2.SHUFFLE))
        if self.compression == "zstd":
            return dict(hdf5plugin.Zstd(clevel=1))
        return {}


def calibration_to_json(calib: Calibration) -> str:
    return json.dumps(dataclasses.asdict(calib))


def calibration_from_json(text: str) -> Calibration:
    raw = json.loads(text)
    return Calibration(
        depth_intrinsics=Intrinsics(**{**raw["depth_intrinsics"], "coeffs": tuple(raw["depth_intrinsics"]["coeffs"])}),
        color_intrinsics=Intrinsics(**{**raw["color_intrinsics"], "coeffs": tuple(raw["color_intrinsics"]["coeffs"])}),
        depth_to_color=Extrinsics(tuple(raw["depth_to_color"]["rotation"]), tuple(raw["depth_to_color"]["translation"])),
        depth_scale=raw["depth_scale"],
        fps=raw["fps"],
        device=raw.get("device", {}),
    )


def writing_path(final: Path) -> Path:
    return final.with_name(final.name + schema.WRITING_SUFFIX)


def _row_layout() -> tuple[tuple[str, str], ...]:
    """(stream, field) of each /frames column before ``skew_ms`` and ``host_time``, in dtype order."""
    names = list(schema.FRAME_DTYPE.names)
    if names[-2:] != ["skew_ms", "host_time"]:
        raise RuntimeError(f"schema.FRAME_DTYPE ends {names[-2:]}, expected skew_ms, host_time; update writer.py")
    return tuple(tuple(name.split("_", 1)) for name in names[:-2])


_ROW_LAYOUT = _row_layout()


def _row_values(fs: Frameset) -> tuple:
    """A frameset's /frames fields in ``schema.FRAME_DTYPE`` order (one tuple: one numpy assignment)."""
    values = []
    for stream, name in _ROW_LAYOUT:
        times = fs.color_times if stream == "color" else fs.depth_times
        if name == "domain":
            values.append(schema.DOMAINS.index(times.domain) if times.domain in schema.DOMAINS else -1)
        else:
            values.append(getattr(times, name))
    return (*values, fs.color_times.timestamp_ms - fs.depth_times.timestamp_ms, fs.host_time)


def fill_frame_row(out: np.ndarray, fs: Frameset) -> None:
    """Write a frameset's /frames row into ``out`` (a length-1 slice of a ``FRAME_DTYPE`` array)."""
    out[0] = _row_values(fs)


def frame_row(fs: Frameset) -> np.ndarray:
    """One /frames row from a frameset: both streams' numbers, clocks and domains, and the skew."""
    row = np.zeros(1, schema.FRAME_DTYPE)
    fill_frame_row(row, fs)
    return row[0]


def marker_row(host_time: float, event: str, clip: str = "", detail: str = "") -> np.ndarray:
    """One /markers row; text is UTF-8 and truncated to the column width."""
    row = np.zeros((), schema.MARKER_DTYPE)
    row["host_time"] = host_time
    for name, text in (("event", event), ("clip", clip), ("detail", detail)):
        width = schema.MARKER_DTYPE[name].itemsize
        row[name] = text.encode("utf-8")[:width]
    return row


class LZ4Chunks:
    """Image chunks compressed by a small thread pool and written in order with direct chunk writes.

    h5py runs the HDF5 LZ4 filter while holding the GIL, so for ~2 ms a frame the capture
    thread (and, with ``--recorder thread``, the PsychoPy window) cannot run.  Here each
    frame's color and depth are compressed by ``lz4.block`` (which releases the GIL) in worker
    threads, into exactly the chunk format of the HDF5 LZ4 filter (id 32004, as hdf5plugin's
    ``H5Zlz4.c``: big-endian original size, block size, then per block its compressed size and
    LZ4 data, a block stored raw when LZ4 does not shrink it), and the writer thread hands the
    finished chunks to ``write_direct_chunk`` in frame order.  Readers need nothing new: h5py +
    hdf5plugin decode them like filter-written chunks.  Crash safety is unchanged: every
    pending chunk is written before :meth:`TrialWriter.flush` flushes the file, and nothing is
    durable before a flush in either design.
    """

    #: frames compressed ahead before the writer waits for the oldest (back-pressure)
    MAX_PENDING = 8

    def __init__(self, datasets: list[h5py.Dataset], threads: int = 2):
        import collections
        from concurrent.futures import ThreadPoolExecutor

        import lz4.block

        self._lz4 = lz4.block
        self.datasets = datasets
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lz4")
        self._pending: collections.deque = collections.deque()  # (frame index, [future per dataset])

    @staticmethod
    def available() -> bool:
        try:
            import lz4.block  # noqa: F401
        except ImportError:
            return False
        return True

    def chunk(self, image: np.ndarray) -> bytes:
        """One frame as the HDF5 LZ4 filter stores it (one block: the filter's default 1 GiB block)."""
        raw = memoryview(np.ascontiguousarray(image)).cast("B")
        n = raw.nbytes
        packed = self._lz4.compress(raw, mode="default", store_size=False)
        body = packed if len(packed) < n else raw.tobytes()  # the filter stores a block raw when LZ4 cannot shrink it
        return b"".join((n.to_bytes(8, "big"), n.to_bytes(4, "big"), len(body).to_bytes(4, "big"), body))

    def submit(self, index: int, images: list[np.ndarray]) -> None:
        self._pending.append((index, [self._pool.submit(self.chunk, image) for image in images]))
        while len(self._pending) > self.MAX_PENDING or (self._pending and all(f.done() for f in self._pending[0][1])):
            self._write_oldest()

    def drain(self) -> None:
        """Write every pending chunk (before a flush)."""
        while self._pending:
            self._write_oldest()

    def _write_oldest(self) -> None:
        index, futures = self._pending.popleft()
        for dataset, future in zip(self.datasets, futures):
            data = future.result()
            dataset.resize(index + 1, axis=0)
            dataset.id.write_direct_chunk((index,) + (0,) * (dataset.ndim - 1), data)

    def close(self, discard: bool = False) -> None:
        if discard:
            self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=discard)


def _appendable(f: h5py.File, name: str, shape: tuple[int, ...], dtype, chunk_rows: int, **filters) -> h5py.Dataset:
    return f.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                            chunks=(chunk_rows, *shape), **filters)


class TrialWriter:
    """Appends framesets and markers to one trial file; see the module docstring."""

    def __init__(self, path: str | Path, calibration: Calibration, storage: Storage = Storage(),
                 attrs: dict[str, Any] | None = None, ground_truth: list[dict] | None = None):
        self.path = Path(path)
        self.calibration, self.storage = calibration, storage
        self.partial_path = writing_path(self.path)
        for existing in (self.path, self.partial_path):
            if existing.exists():
                raise StationError(f"trial file {str(existing)!r} already exists; the station never overwrites a recording.")
        self.frames_written = 0
        #: /frames rows appended since the last flush; written in one resize + write per flush
        #: (one h5py write per frame cost ~0.25 ms, 0.015 core at 60 fps).  Readers see /frames
        #: grow at flushes only, which is all SWMR ever promised them.
        self._rows = np.zeros(64, schema.FRAME_DTYPE)
        self._rows_pending = 0
        self._rows_on_disk = 0
        self._landmarks: tuple[np.ndarray, np.ndarray] | None = None
        self._rays = pixel_rays(calibration.depth_intrinsics) if storage.store_vertices else None
        try:
            self._file = h5py.File(self.partial_path, "w", libver="latest")
        except OSError as err:
            if is_disk_full(err):  # the CLI says so in one line naming the file, exit 1
                raise
            raise StationError(f"cannot create trial file {str(self.partial_path)!r}: {err}") from err
        self._create_layout(attrs or {}, ground_truth)
        self._file.swmr_mode = True  # from here on, every flush leaves a readable file
        # LZ4 images: compressed off the GIL, written as direct chunks (LZ4Chunks)
        self._chunks = (LZ4Chunks([self._color, self._depth])
                        if storage.compression == "lz4" and LZ4Chunks.available() else None)

    def _create_layout(self, attrs: dict[str, Any], ground_truth: list[dict] | None) -> None:
        f, cal = self._file, self.calibration
        h, w = cal.color_intrinsics.height, cal.color_intrinsics.width
        dh, dw = cal.depth_intrinsics.height, cal.depth_intrinsics.width
        filters = self.storage.filter_kwargs()
        self._color = _appendable(f, schema.COLOR, (h, w, 3), np.uint8, 1, **filters)
        self._depth = _appendable(f, schema.DEPTH, (dh, dw), np.uint16, 1, **filters)
        self._vertices = (_appendable(f, schema.VERTICES, (dh, dw, 3), np.float32, 1, **filters)
                          if self.storage.store_vertices else None)
        self._frames = _appendable(f, schema.FRAMES, (), schema.FRAME_DTYPE, 256)
        self._markers = _appendable(f, schema.MARKERS, (), schema.MARKER_DTYPE, 64)
        self._counters = f.create_dataset(schema.COUNTERS, data=np.zeros(len(schema.COUNTERS_FIELDS), np.int64))
        self._counters.attrs["fields"] = json.dumps(schema.COUNTERS_FIELDS)
        gt = f.create_group(schema.GROUND_TRUTH)
        gt.create_dataset(schema.GT_EVENTS, data=json.dumps(ground_truth or []))
        f.attrs.update({
            schema.TRIAL_ID: schema.new_trial_id(),  # identity from the first byte on (issue #13)
            "schema_version": schema.SCHEMA_VERSION,
            "software_version": station.__version__,
            "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "complete": False,
            "calibration": calibration_to_json(cal),
            "depth_scale": cal.depth_scale,
            "fps": cal.fps,
            "resolution": (w, h),
            "serial": cal.device.get("serial", ""),
            "device": json.dumps(cal.device),
            "compression": self.storage.compression,
            "stores_vertices": self.storage.store_vertices,
        })
        for key, value in attrs.items():
            f.attrs[key] = value if isinstance(value, (int, float, str, bool)) else json.dumps(value)

    def append(self, fs: Frameset) -> None:
        """Append one frameset (not yet durable: see :meth:`flush`)."""
        n = self.frames_written
        if self._chunks is not None:
            self._chunks.submit(n, [fs.color, fs.depth])
            datasets = []
        else:
            datasets = [(self._color, fs.color), (self._depth, fs.depth)]
        if self._vertices is not None:
            datasets.append((self._vertices, deproject_depth(fs.depth, self.calibration.depth_intrinsics,
                                                             self.calibration.depth_scale, self._rays)))
        for dataset, value in datasets:
            dataset.resize(n + 1, axis=0)
            dataset[n] = value
        if self._rows_pending == len(self._rows):
            self._rows = np.concatenate([self._rows, np.zeros_like(self._rows)])
        fill_frame_row(self._rows[self._rows_pending : self._rows_pending + 1], fs)
        self._rows_pending += 1
        self.frames_written = n + 1

    def _write_rows(self) -> None:
        """The /frames rows appended since the last flush, in one resize and one write."""
        if self._rows_pending:
            start, stop = self._rows_on_disk, self._rows_on_disk + self._rows_pending
            self._frames.resize(stop, axis=0)
            self._frames[start:stop] = self._rows[: self._rows_pending]
            self._rows_on_disk, self._rows_pending = stop, 0

    def add_markers(self, rows: Iterable[np.ndarray]) -> None:
        rows = list(rows)
        if rows:
            n = self._markers.shape[0]
            self._markers.resize(n + len(rows), axis=0)
            self._markers[n:] = np.array(rows, dtype=schema.MARKER_DTYPE)

    def set_counters(self, counters: dict[str, int]) -> None:
        self._counters[...] = np.array([counters.get(k, 0) for k in schema.COUNTERS_FIELDS], np.int64)

    def set_ground_truth_landmarks(self, numbers, landmarks) -> None:
        """True landmarks (N, 68, 2) of frames with device ``numbers``; stored when the trial closes."""
        self._landmarks = (np.asarray(numbers, np.int64), np.asarray(landmarks, np.float32).reshape(-1, 68, 2))

    def flush(self) -> None:
        """Make everything appended so far durable and visible to readers."""
        if self._chunks is not None:
            self._chunks.drain()
        self._write_rows()
        self._file.flush()

    def close(self, final_attrs: dict[str, Any] | None = None, counters: dict[str, int] | None = None) -> Path:
        """Flush, stamp the final attributes and give the file its final name.

        ``counters`` are written to /counters and to the attributes in one go, so the two
        always agree (one source of truth for what was lost).

        If the final step fails (disk full...), the ``.writing`` file is left as it is: it is
        still readable up to the last flush, and its path is returned.
        """
        if self._file is None:
            return self.path
        try:
            if self._chunks is not None:
                self._chunks.drain()
            self._write_rows()
            if counters is not None:
                self.set_counters(counters)
            self._file.flush()
        finally:
            if self._chunks is not None:
                self._chunks.close(discard=True)
                self._chunks = None
            self._close_file()
        try:
            with _hdf5_file(self.partial_path, "r+") as f:
                f.attrs.update({k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v)
                                for k, v in {**(final_attrs or {}), **(counters or {})}.items()})
                if self._landmarks is not None:  # SWMR cannot add datasets: they go in now
                    _store_ground_truth(f, None, *self._landmarks)
                f.attrs["closed"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
                f.attrs["complete"] = True
            os.replace(self.partial_path, self.path)
        except (OSError, RuntimeError):  # a full disk: the file keeps its .writing name
            return self.partial_path
        return self.path

    def _close_file(self) -> None:
        """Close the file being written (kept alive if HDF5 cannot close it, see :func:`_close_or_keep`)."""
        handles = (self._file, self._color, self._depth, self._vertices, self._frames, self._markers, self._counters)
        self._file = self._color = self._depth = self._vertices = None
        self._frames = self._markers = self._counters = None
        _close_or_keep(*handles)

    def abandon(self) -> Path:
        """Close after a failure without finalising; what was flushed stays readable."""
        if self._chunks is not None:  # frames after the last flush are not written
            self._chunks.close(discard=True)
            self._chunks = None
        if self._file is not None:
            try:
                self._close_file()
            except Exception:  # noqa: BLE001 - the file handle may already be broken (ENOSPC)
                pass
        return self.partial_path


def _close_or_keep(file: h5py.File, *objects) -> None:
    """Close an HDF5 file; if HDF5 cannot (a full disk), keep it and its ``objects`` alive and
    raise: freeing them after a failed close crashes HDF5 (exit 139, seen when `station synth
    dataset --jobs 1` met a full disk while closing a trial)."""
    try:
        file.close()
    except Exception:
        _UNCLOSABLE.append((file, *objects))
        raise


@contextlib.contextmanager
def _hdf5_file(path: Path, mode: str) -> Iterator[h5py.File]:
    """``h5py.File`` as a context, closed through :func:`_close_or_keep` (an error inside wins
    over a close that fails after it)."""
    f = h5py.File(path, mode)
    try:
        yield f
    except BaseException:
        with contextlib.suppress(Exception):
            _close_or_keep(f)
        raise
    _close_or_keep(f)


def exit_after_hdf5_write_failure(code: int) -> None:
    """End the process now with ``code``: some HDF5 file of it met a full disk, maybe outside
    :class:`TrialWriter` (a spotting score file, a feature cache), whose objects are still held
    (by the error's traceback); freeing them, or shutting down, would crash HDF5 (exit 139)."""
    _UNCLOSABLE.append(())
    hard_exit_if_hdf5_broken(code)


def hard_exit_if_hdf5_broken(code: int) -> None:
    """End the process now with ``code`` if an HDF5 write of this process failed, else return.

    Why: after a write failure HDF5 holds objects that cannot be freed (see
    ``TrialWriter.abandon``, :func:`exit_after_hdf5_write_failure`) and crashes while the interpreter
    shuts down (SIGSEGV, exit 139: reproduced with a trial written in-process onto a 6 MB
    tmpfs); the data on disk is already as safe as it gets, so the process ends with
    ``os._exit`` after flushing its output.  Called where a process ends on purpose: the CLI's
    entry point, pool workers (atexit, :func:`station.parallel.exit_with_parent`) and the test
    suite's last hook, so a disk that filled mid-write gives the exit code that was meant.
    """
    if _UNCLOSABLE:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def open_trial(path: str | Path) -> h5py.File:
    """Open a trial for reading, including one whose writer was killed (SWMR read)."""
    path = Path(path)
    if not path.exists():
        raise StationError(f"trial file {str(path)!r} does not exist.")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        if "truncated file" in str(err):  # an SWMR open would retry its checksums for minutes
            raise StationError(f"trial file {str(path)!r} is truncated: {str(err).split('(')[-1].rstrip(')')}; "
                               "it ends before its own end-of-file address (copy interrupted, or disk full).") from None
    try:
        return h5py.File(path, "r", libver="latest", swmr=True)
    except OSError as err:
        raise StationError(f"trial file {str(path)!r} is not a readable HDF5 trial: {err}") from err


def read_calibration(f: h5py.File) -> Calibration:
    if "calibration" not in f.attrs:
        raise StationError(f"trial file {f.filename!r} has no calibration attribute.")
    return calibration_from_json(f.attrs["calibration"])


def read_markers(f: h5py.File) -> list[dict[str, Any]]:
    rows = f[schema.MARKERS][...]
    return [{"host_time": float(r["host_time"]), "event": r["event"].decode(), "clip": r["clip"].decode(),
             "detail": r["detail"].decode()} for r in rows]


def read_counters(f: h5py.File) -> dict[str, int]:
    """/counters by name; the names stored with the dataset win (files of older schemas)."""
    dataset = f[schema.COUNTERS]
    names = json.loads(dataset.attrs["fields"]) if "fields" in dataset.attrs else schema.COUNTERS_FIELDS
    return {k: int(v) for k, v in zip(names, dataset[...])}


def read_ground_truth(f: h5py.File) -> list[dict]:
    """The ground-truth events (see :func:`station.record.schema.read_ground_truth_events`)."""
    return schema.read_ground_truth_events(f)


def _store_ground_truth(f: h5py.File, events: list[dict] | None, numbers=None, landmarks=None) -> None:
    """(Re)write /ground_truth/events and/or /ground_truth/landmarks68 of a file open for writing."""
    group = f.require_group(schema.GROUND_TRUTH)
    if events is not None:
        if schema.GT_EVENTS in group:
            del group[schema.GT_EVENTS]
        group.create_dataset(schema.GT_EVENTS, data=json.dumps(events))
    if landmarks is not None:
        if schema.GT_LANDMARKS in group:
            del group[schema.GT_LANDMARKS]
        ds = group.create_dataset(schema.GT_LANDMARKS, data=np.asarray(landmarks, np.float32).reshape(-1, 68, 2))
        ds.attrs[schema.GT_FRAME_NUMBERS] = np.asarray(numbers, np.int64)
        ds.attrs["units"] = "color image pixels (x, y), dlib 68-point order"


def write_ground_truth(path: str | Path, events: list[dict] | None = None, numbers=None, landmarks=None,
                       attrs: dict[str, Any] | None = None) -> None:
    """Add ground truth to a closed trial (a live recording of a virtual participant is
    annotated after the fact, when its frame range is known).  Only /ground_truth and the
    given attributes are touched; frames are never rewritten."""
    try:
        with h5py.File(path, "r+") as f:
            _store_ground_truth(f, events, numbers, landmarks)
            f.attrs.update(attrs or {})
    except OSError as err:
        raise StationError(f"cannot add ground truth to trial file {str(path)!r}: {err}") from err
