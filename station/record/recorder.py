"""The recorder: a capture thread that never waits, a writer thread that never loses count.

::

    camera ──read()──> capture thread ──bounded queue──> writer thread ──> TrialWriter (HDF5)
      │ pairs: each frame once │ queue overflow counted      │ flush every flush_s, free disk
      └ (camera/pairing.py)    └ stall watchdog              └ checked every frame; counts added

The camera stays open across trials (opening a D415 takes seconds); frames that arrive
between trials are not recorded.  Every frame the camera produced between a trial's first and
last row is either written or counted, by cause (see ``schema.COUNTERS_FIELDS``): the counts a
frameset carries (:attr:`Frameset.events`) are added when it is written, so they count exactly
the frames inside the trial; a frameset the queue cannot take hands its counts, plus itself,
to the next one.  Frames delivered while the trial is open but never paired into a row --
before its first row, after its last, or all of them when it has none -- are counted too
(``unpaired_ends_s``; ``schema.DELIVERED`` gives the formulas).  A camera that stays connected but sends nothing for ``stall_s`` gets a
``camera_stalled`` marker, a warning and a flag in the trial, and ``camera_resumed`` when
frames come back; meanwhile the recorder asks the source to recover.  Markers from any thread
(:meth:`Recorder.mark`) carry ``time.perf_counter()`` timestamps: the clock of each frame's
``host_time``.
"""

from __future__ import annotations

import collections
import json
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from station.camera.base import CameraError, CameraSource, EndOfStream, Frameset
from station.camera.pairing import merge_events
from station.checks import StationError, check_writable_dir, format_bytes, free_bytes
from station.record import schema
from station.record.writer import Storage, TrialWriter, marker_row
from station.signals import check_interrupted, interruption, signal_name
from station.vocab.markers import Marker

#: No frame for this long while connected is a stall (librealsense #9417, #13365, #7252, #2168).
STALL_S = 1.0
#: During a stall, ask the source to recover (restart streaming) this often.
RECOVER_EVERY_S = 5.0
#: Below this much free disk the recorder warns; below ``min_free`` it stops the trial cleanly.
WARN_FREE_BYTES = 5_000_000_000
MIN_FREE_BYTES = 500_000_000


@dataclass
class TrialStats:
    """Counts for one trial; also what :meth:`Recorder.end_trial` returns (see ``schema.COUNTERS_FIELDS``)."""

    path: Path
    frames_written: int = 0
    gaps_color: int = 0
    gaps_depth: int = 0
    unpaired_color: int = 0
    unpaired_depth: int = 0
    late_color: int = 0
    late_depth: int = 0
    repeated_color: int = 0
    repeated_depth: int = 0
    dropped_queue: int = 0
    stalls: int = 0
    stalled_ms: int = 0
    clock_wraps: int = 0
    lost_at_stop: int = 0
    unpaired_ends_color: int = 0  # delivered, never paired, before the first / after the last row
    unpaired_ends_depth: int = 0
    bytes_written: int = 0
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None
    stop_reason: str = ""  # why the trial ended early, '' if it ended on request
    complete: bool = False  # final file renamed and stamped

    def dropped_stream(self, stream: str) -> int:
        """Frames of ``stream`` produced between the first and last row that are not in the file."""
        return sum(getattr(self, f"{cause}_{stream}") for cause in schema.DROP_CAUSES) + self.dropped_queue

    @property
    def dropped_color(self) -> int:
        return self.dropped_stream("color")

    @property
    def dropped_depth(self) -> int:
        return self.dropped_stream("depth")

    @property
    def dropped(self) -> int:
        """Capture instants without a row (the larger of the two streams' losses)."""
        return max(self.dropped_color, self.dropped_depth)

    @property
    def delivered_color(self) -> int:
        """Colour frames librealsense delivered during the trial (``schema.delivered_per_stream``)."""
        return schema.delivered_per_stream(vars(self), "color")

    @property
    def delivered_depth(self) -> int:
        return schema.delivered_per_stream(vars(self), "depth")

    def add_events(self, events: dict[str, int]) -> None:
        for key, value in events.items():
            if key in self.__dataclass_fields__ and key in schema.COUNTERS_FIELDS:
                setattr(self, key, getattr(self, key) + int(value))

    def counters(self) -> dict[str, int]:
        """Every counter, in ``schema.COUNTERS_FIELDS`` order: what /counters and the attributes hold."""
        return {k: int(getattr(self, k)) for k in schema.COUNTERS_FIELDS}


@dataclass(frozen=True)
class RecorderStatus:
    """A snapshot for live displays (rich status line, experimenter console)."""

    fps: float
    queue_depth: int
    queue_size: int
    frames_written: int
    dropped: int
    mb_per_s: float
    disk_free: int
    recording: bool
    warning: str
    error: str
    stalled: bool = False  # no frame for longer than the stall limit right now
    stalled_s: float = 0.0  # how long the current stall has lasted
    stalls: int = 0  # stalls in the current trial
    repeated: int = 0  # stale framesets refused in the current trial (not losses)


class _Trial:
    """State of the trial being written: its writer, counters and pending markers."""

    def __init__(self, writer: TrialWriter, queue_size: int):
        self.writer = writer
        self.stats = TrialStats(writer.path)
        self.queue: queue.Queue[Frameset | None] = queue.Queue(maxsize=queue_size)
        self.markers: list[np.ndarray] = []
        self.markers_lock = threading.Lock()
        self.rows = 0  # framesets handed to the writer; the first one's counts precede the trial
        self.window_started = False  # the camera's pairing counts since the trial began (capture thread)
        self.tail: dict[str, int] = {}  # counts after the last pair, set when the source or the trial ends
        self.closing = threading.Event()  # end_trial asks the capture thread to cut the tail
        self.tail_cut = threading.Event()  # ... and it did: nothing more is queued for this trial
        self.finished = threading.Event()
        self.markers_closed = False  # set (under markers_lock) once the last markers were written


class Recorder:
    """Records a camera source into one HDF5 file per trial; see the module docstring."""

    def __init__(self, source: CameraSource, *, storage: Storage = Storage(), queue_size: int = 120,
                 flush_s: float = 0.5, warn_free_bytes: int = WARN_FREE_BYTES,
                 min_free_bytes: int = MIN_FREE_BYTES, on_warning: Callable[[str], None] | None = None,
                 stall_s: float = STALL_S, recover_every_s: float = RECOVER_EVERY_S):
        self.source, self.storage = source, storage
        self.queue_size, self.flush_s = queue_size, flush_s
        self.warn_free_bytes, self.min_free_bytes = warn_free_bytes, min_free_bytes
        self.on_warning = on_warning or (lambda message: None)
        self.calibration = None
        self.error = ""  # set when the camera fails; the current trial is then closed
        self.ended = threading.Event()  # finite source exhausted or camera lost
        self.session_markers: list[dict[str, Any]] = []  # markers that fell between trials
        self._trial: _Trial | None = None
        self._trial_lock = threading.Lock()
        self._stop = threading.Event()
        self._capture: threading.Thread | None = None
        self._writer_thread: threading.Thread | None = None
        self._arrivals: collections.deque[float] = collections.deque()  # arrival times in the last second
        self._warning = ""
        self._disk_free = 0
        self._disk_path: Path | None = None
        self.stall_s, self.recover_every_s = stall_s, recover_every_s
        self._carry: dict[str, int] = {}  # counts of framesets the queue could not take
        self._last_frame_at = time.perf_counter()
        self._stalled_since: float | None = None
        self._last_recovery = 0.0

    # -- camera -----------------------------------------------------------------------------
    def open(self, first_trial: str | Path | None = None, attrs: dict[str, Any] | None = None,
             ground_truth: list[dict] | None = None) -> None:
        """Start the camera and the capture thread.

        With ``first_trial`` the trial begins before the first frame is read, so a source
        that runs faster than real time (playback, fast virtual camera) loses nothing.
        """
        self.calibration = self.source.start()
        if first_trial is not None:
            self.begin_trial(first_trial, attrs, ground_truth)
            self.mark(Marker.RECORDING_START)
        self._capture = threading.Thread(target=self._capture_loop, name="capture", daemon=True)
        self._capture.start()

    def close(self) -> None:
        """End any trial, stop the capture thread and release the camera."""
        if self._trial is not None:
            self.end_trial()
        self._stop.set()
        if self._capture is not None:
            self._capture.join(timeout=5)
        self.source.stop()

    def __enter__(self) -> "Recorder":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _capture_loop(self) -> None:
        self._last_frame_at = time.perf_counter()
        while not self._stop.is_set():
            trial = self._trial  # a frameset belongs to the trial open when its read began
            if trial is not None and trial.closing.is_set():
                if not trial.tail_cut.is_set():
                    trial.tail = self._cut_tail()
                    trial.tail_cut.set()
                trial = None  # frames from now on come after the trial
            if trial is not None and not trial.window_started:
                trial.window_started = True  # counts from before the trial are not the trial's
                getattr(getattr(self.source, "pairer", None), "start_window", dict)()
            try:
                fs = self.source.read(timeout_s=min(0.5, self.stall_s / 2))
            except EndOfStream:
                self._finish_source("")
                return
            except (CameraError, RuntimeError) as err:
                self._finish_source(f"camera lost: {err}")
                return
            now = time.perf_counter()
            if fs is None:
                self._watch_stall(now)
                continue
            if self._stalled_since is not None:
                self._resumed(now)
            self._last_frame_at = now
            self._arrivals.append(now)
            while now - self._arrivals[0] >= 1.0:
                self._arrivals.popleft()
            if trial is None:
                self._carry = {}
                continue
            events = fs.events
            if self._carry:
                events = dict(self._carry)
                for key, value in fs.events.items():
                    events[key] = events.get(key, 0) + value
                self._carry = {}
            fs.events = events
            try:
                trial.queue.put_nowait(fs)
            except queue.Full:
                self._carry = dict(events)
                self._carry["dropped_queue"] = self._carry.get("dropped_queue", 0) + 1

    def _watch_stall(self, now: float) -> None:
        """No frame came: after ``stall_s`` mark a stall, warn, and keep asking the source to recover."""
        silent = now - self._last_frame_at
        if self._stalled_since is None and silent >= self.stall_s:
            self._stalled_since = self._last_frame_at
            self._last_recovery = now
            trial = self._trial
            if trial is not None:
                trial.stats.stalls += 1
            self.mark(Marker.CAMERA_STALLED, detail=f"no frame for {silent:.1f} s while connected")
            self._warn(f"camera stalled: no frame for {silent:.1f} s (still connected); trying to recover.")
        elif self._stalled_since is not None and now - self._last_recovery >= self.recover_every_s:
            self._last_recovery = now
            recover = getattr(self.source, "recover", None)
            if recover is not None:
                try:
                    recover()
                except Exception as err:  # noqa: BLE001 - keep trying; the stall stays marked
                    self._warn(f"camera stalled; recovery failed: {err}")

    def _resumed(self, now: float) -> None:
        lasted = now - self._stalled_since
        trial = self._trial
        if trial is not None:
            trial.stats.stalled_ms += int(round(lasted * 1000))
        self.mark(Marker.CAMERA_RESUMED, detail=f"frames again after {lasted:.1f} s")
        self._warn(f"camera resumed after a {lasted:.1f} s stall; the trial is flagged.")
        self._stalled_since = None

    def _cut_tail(self) -> dict[str, int]:
        """Counts after the last pair (capture thread): frames still pending become unpaired, plus
        the framesets the queue could not take; the writer adds them as ``schema.ends_counts``."""
        pairer = getattr(self.source, "pairer", None)
        tail = dict(pairer.finish()) if pairer is not None else {}
        merge_events(tail, self._carry)
        self._carry = {}
        return tail

    def _finish_source(self, error: str) -> None:
        self.error = error
        self.mark(Marker.CAMERA_LOST if error else Marker.SOURCE_ENDED, detail=error[:250])
        tail = self._cut_tail()  # frames still pending when the source ended: unpaired, counted
        self.ended.set()
        trial = self._trial
        if trial is not None:
            trial.stats.stop_reason = trial.stats.stop_reason or error or "end of source"
            if not trial.tail_cut.is_set():  # after the last row: the writer counts it (schema.ends_counts)
                trial.tail = tail
                trial.tail_cut.set()
            trial.queue.put(None)

    # -- trials -----------------------------------------------------------------------------
    def begin_trial(self, path: str | Path, attrs: dict[str, Any] | None = None,
                    ground_truth: list[dict] | None = None) -> Path:
        """Start writing every incoming frame to a new trial file at ``path``."""
        if self.calibration is None:
            raise StationError("Recorder.open() must be called before begin_trial().")
        if self._trial is not None:
            raise StationError(f"a trial is already being recorded to {self._trial.writer.path}.")
        if self.ended.is_set():
            raise CameraError(self.error or "the camera source has ended.")
        path = Path(path)
        check_writable_dir(path.parent, "trial folder")
        self._disk_path = path.parent
        self._check_disk(first=True)
        take = getattr(self.source, "start_take", lambda: None)()  # a virtual take rendered ahead
        source_attrs = getattr(self.source, "trial_attrs", lambda: {})()
        if take:
            source_attrs = {**source_attrs, "virtual_take": json.dumps(take)}
        writer = TrialWriter(path, self.calibration, self.storage, {**base_trial_attrs(), **source_attrs, **(attrs or {})},
                             ground_truth)
        trial = _Trial(writer, self.queue_size)
        self._carry = {}
        self._writer_thread = threading.Thread(target=self._write_loop, args=(trial,), name="writer", daemon=True)
        self._trial = trial
        self._writer_thread.start()
        return writer.partial_path

    def end_trial(self, reason: str = "") -> TrialStats:
        """Finish the trial: write what is queued, flush, finalise; returns its counts.

        ``reason`` (e.g. 'aborted by participant') is stored with the trial when it ends early.
        """
        trial = self._trial
        if trial is None:
            raise StationError("no trial is being recorded.")
        trial.stats.stop_reason = trial.stats.stop_reason or reason
        trial.closing.set()  # the capture thread counts what is still pending (one loop, <= 0.5 s)
        if self._capture is not None and self._capture.is_alive() and not self.ended.is_set():
            trial.tail_cut.wait(timeout=max(1.0, self.stall_s))
        while not trial.finished.is_set():  # the writer may have stopped by itself (disk full)
            try:
                trial.queue.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        self._writer_thread.join()
        self._trial = None
        take = getattr(self.source, "end_take", lambda: None)()
        if take and take.get("overrun_frames"):
            self._warn(f"the virtual participant's take ran out {take['overrun_frames']} frames before the trial "
                       "ended (it looped its idle second instead); the trial was longer than planned")
        return trial.stats

    def prepare_take(self, seconds: float, needed_s: float | None = None) -> None:
        """Ask the camera to get the next trial's ``seconds`` ready (the virtual D415 renders them
        ahead, without waiting); a real camera has nothing to prepare.

        ``needed_s`` (how much must be ready when the trial begins) is the child-process
        recorder's business: it pauses rendering during films, so the rest can render during the
        trial.  In this process nothing pauses it, so the whole take is rendered before the
        trial and ``needed_s`` is deliberately not passed on."""
        getattr(self.source, "prepare_take", lambda s: None)(seconds)

    def mark(self, event: str, clip: str = "", detail: str = "", t: float | None = None) -> None:
        """Add a marker (thread-safe); ``t`` defaults to now on ``time.perf_counter()``."""
        t = time.perf_counter() if t is None else t
        trial = self._trial
        if trial is not None:
            with trial.markers_lock:
                if not trial.markers_closed:
                    trial.markers.append(marker_row(t, event, clip, detail))
                    return
        # between trials, or after the trial's file was closed: kept for the session log
        self.session_markers.append({"host_time": t, "event": event, "clip": clip, "detail": detail})

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; returns early (False) if the trial or the source ended."""
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            trial = self._trial
            if self.ended.is_set() or (trial is not None and trial.finished.is_set()):
                return False
            time.sleep(min(0.05, max(0.0, deadline - time.perf_counter())))
        return True

    def status(self) -> RecorderStatus:
        trial = self._trial
        stats = trial.stats if trial else None
        elapsed = (time.perf_counter() - stats.started) if stats else 0.0
        return RecorderStatus(
            fps=float(len(self._arrivals)),
            queue_depth=trial.queue.qsize() if trial else 0,
            queue_size=self.queue_size,
            frames_written=stats.frames_written if stats else 0,
            dropped=stats.dropped if stats else 0,
            mb_per_s=(stats.bytes_written / 1e6 / elapsed) if stats and elapsed > 0 else 0.0,
            disk_free=self._disk_free,
            recording=trial is not None and not trial.finished.is_set(),
            warning=self._warning,
            error=self.error,
            stalled=self._stalled_since is not None,
            stalled_s=(time.perf_counter() - self._stalled_since) if self._stalled_since is not None else 0.0,
            stalls=stats.stalls if stats else 0,
            repeated=(stats.repeated_color + stats.repeated_depth) if stats else 0,
        )

    # -- writer thread -----------------------------------------------------------------------
    def _check_disk(self, first: bool = False) -> bool:
        """Refresh free disk; warn once when low; False when the trial must stop."""
        self._disk_free = free_bytes(self._disk_path)
        if self._disk_free < self.min_free_bytes:
            message = (f"only {format_bytes(self._disk_free)} free on {self._disk_path} (minimum "
                       f"{format_bytes(self.min_free_bytes)}): recording stopped to keep the files intact.")
            if first:
                raise StationError(message)
            self._warn(message)
            return False
        if self._disk_free < self.warn_free_bytes and not self._warning:
            self._warn(f"disk almost full: {format_bytes(self._disk_free)} free on {self._disk_path}.")
        return True

    def _warn(self, message: str) -> None:
        self._warning = message
        self.on_warning(message)

    def _write_loop(self, trial: _Trial) -> None:
        writer, stats = trial.writer, trial.stats
        last_flush = time.perf_counter()
        frame_bytes = 0
        ended_on_request = False
        try:
            while True:
                fs = trial.queue.get()
                if fs is None:
                    ended_on_request = True
                    break
                if not self._check_disk():
                    stats.stop_reason = "disk almost full"
                    stats.lost_at_stop += 1  # this frame, and those queued behind it (below)
                    stats.add_events(schema.ends_counts(fs.events))
                    break
                writer.append(fs)
                # the first row's counts are about frames before it: outside the rows' span
                stats.add_events(fs.events if trial.rows else schema.ends_counts(fs.events))
                trial.rows += 1
                stats.frames_written = writer.frames_written
                frame_bytes = frame_bytes or fs.color.nbytes + fs.depth.nbytes
                stats.bytes_written += frame_bytes
                if time.perf_counter() - last_flush >= self.flush_s:
                    self._flush(trial)
                    last_flush = time.perf_counter()
            if not ended_on_request:
                self._drain(trial, count=True)  # stopped early: what is queued will not be written
            stats.add_events(schema.ends_counts(trial.tail))  # after the last row (end of source)
            self._flush(trial, last=True)
        except Exception as err:  # noqa: BLE001 - disk full (h5py raises RuntimeError or OSError), I/O error...
            reason = "disk full" if "No space left" in str(err) or getattr(err, "errno", 0) == 28 else str(err)
            stats.stop_reason = f"write failed: {reason}"
            self._warn(f"writing {writer.partial_path} failed ({reason}); frames up to the last flush are kept.")
            trial.finished.set()
            stats.ended = time.perf_counter()
            stats.path = writer.abandon()
            self._drain(trial, count=True)
            return
        trial.finished.set()
        stats.ended = time.perf_counter()
        source_attrs = getattr(self.source, "trial_attrs", lambda: {})()  # metadata is known only now
        stats.path = writer.close({**source_attrs, **stats.counters(), "stop_reason": stats.stop_reason,
                                   "stall_limit_s": self.stall_s}, counters=stats.counters())
        stats.complete = stats.path == writer.path
        self._drain(trial, count=False)

    def _flush(self, trial: _Trial, last: bool = False) -> None:
        with trial.markers_lock:
            markers, trial.markers = trial.markers, []
            trial.markers_closed = last
        trial.writer.add_markers(markers)
        trial.writer.set_counters(trial.stats.counters())
        trial.writer.flush()

    @staticmethod
    def _drain(trial: _Trial, count: bool) -> None:
        """Empty the queue so the capture thread never blocks on it.

        With ``count`` (the trial stopped early), frames queued before the end request are
        counted as not written; frames behind the end sentinel arrived after the trial was
        ended on request, were never part of it, and are discarded uncounted.
        """
        while True:
            try:
                fs = trial.queue.get_nowait()
            except queue.Empty:
                return
            if fs is None:
                count = False
            elif count:
                trial.stats.lost_at_stop += 1
                trial.stats.add_events(schema.ends_counts(fs.events))


def base_trial_attrs() -> dict[str, Any]:
    """What every trial stores about the software that made it."""
    import pyrealsense2 as rs

    return {schema.ATTR_LIBREALSENSE: rs.__version__}


def record_trial(source: CameraSource, path: str | Path, seconds: float | None = None, *,
                 storage: Storage = Storage(), attrs: dict[str, Any] | None = None,
                 ground_truth: list[dict] | None = None, on_tick: Callable[[RecorderStatus], None] | None = None,
                 **recorder_kwargs) -> TrialStats:
    """Open ``source``, record one trial of ``seconds`` (or until the source ends), close.

    ``on_tick`` is called about ten times a second with the recorder's status (the CLI's live
    line uses it).  KeyboardInterrupt ends the trial cleanly: frames are flushed first.
    """
    recorder = Recorder(source, storage=storage, **recorder_kwargs)
    try:
        recorder.open(path, attrs, ground_truth)
        deadline = None if seconds is None else time.perf_counter() + seconds
        try:
            while deadline is None or time.perf_counter() < deadline:
                if not recorder.wait(0.1):
                    break
                if on_tick:
                    on_tick(recorder.status())
                check_interrupted()
        except BaseException as err:  # Ctrl-C, or SIGTERM / SIGHUP via station.signals
            if (stop := interruption(err)) is None:
                raise
            why = "Ctrl-C" if type(stop) is KeyboardInterrupt else signal_name(stop)
            recorder.mark(Marker.INTERRUPTED, detail=why)
            raise TrialInterrupted(recorder.end_trial(f"interrupted ({why})")) from None
        recorder.mark(Marker.RECORDING_END)
        return recorder.end_trial()
    finally:
        recorder.close()


class TrialInterrupted(Exception):
    """Ctrl-C ended a recording; ``stats`` says what was kept."""

    def __init__(self, stats: TrialStats):
        super().__init__(stats.stop_reason)
        self.stats = stats
