"""The Recorder in a child process, so that HDF5 writing never steals PsychoPy's frames.

h5py holds the GIL while HDF5 compresses and writes a chunk (LZ4 of a 848x480 colour +
depth frame, 60 times a second), so a writer *thread* in the PsychoPy process delays flips;
docs/benchmarks.md measures it.  :class:`ProcessRecorder` runs the unchanged
:class:`station.record.recorder.Recorder` in a spawned child and offers the same interface
(``open``, ``begin_trial``, ``mark``, ``end_trial``, ``status``, ``ended``, ``error``,
``close``).  Markers and trial commands travel through one queue, so their order is kept;
``time.perf_counter`` is CLOCK_MONOTONIC, the same clock in both processes, so marker and
frame timestamps stay on one time line.

Signals: the child is started with SIGINT / SIGTERM / SIGHUP blocked and then ignores them
(:mod:`station.signals`), so Ctrl-C in the terminal, a closed terminal or ``kill -TERM`` to
the process group reach only the session, which then ends the trial through the queue
(frames flushed, ``interrupted`` marker, counters).  If the session process dies (SIGKILL)
the child notices within :data:`PARENT_CHECK_S`, finalises the trial and exits.  Every
command carries a request id and its reply echoes it, so a call cut short by a signal in the
parent cannot hand its late reply to the next call.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

from station.camera.base import CameraError
from station.checks import StationError
from station.vocab.markers import Marker

STATUS_PERIOD_S = 0.2
CALL_TIMEOUT_S = 120.0
PARENT_CHECK_S = 1.0  # how often an idle child checks that the session process still lives


def _child_main(spec: str, width: int, height: int, fps: int, cmd, reply, events,
                options: dict[str, Any] | None = None, camera_options: dict[str, Any] | None = None,
                preview: bool = False, priority: str = "background") -> None:
    """Child process: open the camera, then obey commands until 'close'.

    ``priority`` 'background': writing and the face check run below capture and the display,
    take rendering at the lowest priority (:mod:`station.record.priority`).
    """
    from station.signals import ignore_terminal_signals

    ignore_terminal_signals()  # the session stops us (see the module docstring)
    # daemon=True only asks the *parent* to terminate us at its exit; the camera may need
    # worker processes of its own (the virtual D415 renders ahead in a pool), which
    # multiprocessing refuses to a daemonic process unless told otherwise
    mp.current_process()._config["daemon"] = False
    from station.camera import open_camera
    from station.record.priority import ThreadPriorities
    from station.record.recorder import Recorder

    priorities = ThreadPriorities() if priority == "background" else None
    try:
        camera = open_camera(spec, width=width, height=height, fps=fps, **(camera_options or {}))
        if priorities is not None and hasattr(camera, "render_priority"):
            camera.render_priority = "low"  # the virtual D415's take workers
        source = LatestFrame(camera)
        rec = Recorder(source, on_warning=lambda m: events.put(("warning", m)), **(options or {}))
        rec.open()
    except BaseException as err:  # report, never hang the parent
        reply.put((0, "error", (type(err).__name__, str(err))))
        return
    reply.put((0, "ok", (rec.calibration, getattr(source, "description", spec))))
    stop = threading.Event()
    trials = [0]  # trials begun: the parent ignores statuses from before its last begin

    def publish() -> None:
        while not stop.wait(STATUS_PERIOD_S):
            if priorities is not None:
                priorities.apply()  # a new trial's writer and lz4 threads
            begun = trials[0]  # read before the status: a status is never labelled with a newer trial
            events.put(("status", (rec.status(), rec.ended.is_set(), rec.error, begun)))

    publisher = threading.Thread(target=publish, name="status", daemon=True)
    publisher.start()
    threading.Thread(target=_watch_face, args=(source, rec, events, stop, preview), name="face", daemon=True).start()
    parent = mp.parent_process()
    while True:
        try:
            op, args, rid = cmd.get(timeout=PARENT_CHECK_S)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                _orphaned(rec)  # the session process crashed or was killed: keep the trial
            continue
        try:
            if op == "mark":
                rec.mark(*args)
                continue
            if op == "prepare":  # no reply: the camera renders the next take in the background
                prepare = getattr(camera, "prepare_take", None)
                if prepare is not None:
                    prepare(*args)
                continue
            if op == "hold":  # no reply: a film starts / ends (take rendering pauses meanwhile)
                getattr(camera, "hold_rendering", lambda on: None)(*args)
                continue
            if op == "begin":
                path = rec.begin_trial(Path(args[0]), args[1])
                if priorities is not None:
                    priorities.apply()
                trials[0] += 1
                reply.put((rid, "ok", path))
            elif op == "end":
                reply.put((rid, "ok", rec.end_trial(args[0])))
            elif op == "close":
                rec.close()
                stop.set()
                publisher.join(timeout=2)
                reply.put((rid, "ok", rec.session_markers))
                for q in (reply, events):  # deliver what is queued, then leave without running
                    q.close()  # librealsense's static destructors (they abort on some drivers)
                    q.join_thread()
                _exit_now()
        except BaseException as err:
            reply.put((rid, "error", (type(err).__name__, str(err))))


class LatestFrame:
    """A camera source that remembers the last frameset it delivered (for the face check)."""

    def __init__(self, source):
        self.inner, self.latest = source, None

    def read(self, *args, **kwargs):
        fs = self.inner.read(*args, **kwargs)
        if fs is not None:
            self.latest = fs
        return fs

    def __getattr__(self, name):
        return getattr(self.inner, name)


PREVIEW_WINDOW = "station - experimenter view"
PREVIEW_PERIOD_S = 0.2


def _watch_face(source: LatestFrame, rec, events, stop: threading.Event, show: bool = False) -> None:
    """Check the participant's face twice a second (station.elicit.preview) and tell the session;
    with ``show``, also draw the experimenter view (colour + face box, depth, fps, drops) in a
    window of this process five times a second, so it never costs the participant window a flip.

    ~12 ms of dlib per check at 848x480 (2-3 % of a core); a missing dlib only disables it.
    """
    try:
        from station.elicit.preview import CHECK_PERIOD_S, FaceDetector, render

        detector = FaceDetector()
    except Exception as err:  # noqa: BLE001 - the view is a help, never a reason to stop recording
        events.put(("warning", f"face check unavailable: {err}"))
        return
    scale = float(getattr(rec.calibration, "depth_scale", 0.001) or 0.001)
    last, check, checked_at = None, None, 0.0
    while not stop.wait(PREVIEW_PERIOD_S if show else CHECK_PERIOD_S):
        fs = source.latest
        if fs is None or fs is last:
            continue
        last = fs
        try:
            if time.monotonic() - checked_at >= CHECK_PERIOD_S:
                check, checked_at = detector.check(fs.color, fs.depth, scale, fs.host_time), time.monotonic()
                events.put(("face", check.as_dict()))
            if show:
                import cv2

                st = rec.status()
                line = (f"{'REC' if st.recording else 'idle'}   {st.fps:.0f} fps   written {st.frames_written}   "
                        f"dropped {st.dropped}   queue {st.queue_depth}/{st.queue_size}")
                cv2.imshow(PREVIEW_WINDOW, cv2.cvtColor(render(fs.color, fs.depth, check, line, width=960),
                                                        cv2.COLOR_RGB2BGR))
                cv2.waitKey(1)
        except Exception as err:  # noqa: BLE001
            events.put(("warning", f"experimenter view stopped: {err}"))
            return


def _orphaned(rec) -> None:
    """The parent died (crash, SIGKILL): finalise the current trial, release the camera, exit."""
    rec.mark(Marker.SESSION_PROCESS_DIED, detail="recorder finalised the trial on its own")
    rec.close()  # ends the trial: queued frames flushed, file finalised
    _exit_now()


def _exit_now() -> None:
    """Leave at once (no librealsense destructors), but never leave our own workers behind.

    The camera may run worker processes (the virtual D415 renders ahead in a pool); an
    ``os._exit`` skips the pool's shutdown handshake and would orphan them for good.
    """
    import os

    for child in mp.active_children():  # SIGKILL: they inherited our ignored SIGTERM
        child.kill()
    for child in mp.active_children():
        child.join(timeout=2)
    os._exit(0)


class ProcessRecorder:
    """Same interface as :class:`~station.record.recorder.Recorder`; the work happens in a child."""

    def __init__(self, camera: str, width: int, height: int, fps: int,
                 on_warning: Callable[[str], None] | None = None, camera_options: dict[str, Any] | None = None,
                 preview: bool = False, priority: str = "background", **recorder_options: Any):
        """``recorder_options`` go to the child's Recorder (e.g. ``min_free_bytes``), ``camera_options``
        to its :func:`~station.camera.open_camera` (e.g. the virtual camera's ``faults``).
        ``priority`` 'background' lowers the child's writing, face check and take rendering below
        capture and the display (:mod:`station.record.priority`); 'normal' changes nothing."""
        from station.checks import check_choice
        from station.record.priority import PRIORITIES

        self.priority = check_choice(priority, PRIORITIES, "recorder priority")
        self.spec, self.mode, self.options = camera, (width, height, fps), recorder_options
        self.camera_options = camera_options or {}
        self.preview = preview  # the child draws the experimenter view in its own window
        self.on_warning = on_warning or (lambda m: None)
        self.calibration = None
        self.source = SimpleNamespace(description=camera)
        self.ended = threading.Event()
        self.error = ""
        self.session_markers: list[dict[str, Any]] = []
        self._status = None
        self._lock = threading.Lock()
        self._proc = None
        self._listener: threading.Thread | None = None
        self._closed = threading.Event()
        self._rid = 0  # request id of the last call
        self.face = None  # the last station.elicit.preview.FaceCheck from the child
        self._trials = 0  # trials begun, to match the child's statuses

    def open(self) -> None:
        """Start the child and wait until its camera streams (``start`` + ``wait_ready``)."""
        self.start()
        self.wait_ready()

    def start(self) -> None:
        """Spawn the child; it imports and opens the camera while the caller does other work."""
        from station.signals import signals_blocked

        ctx = mp.get_context("spawn")  # no fork of a process holding an OpenGL context
        self._cmd, self._reply, self._events = ctx.Queue(), ctx.Queue(), ctx.Queue()
        self._proc = ctx.Process(target=_child_main, args=(self.spec, *self.mode, self._cmd, self._reply, self._events,
                                                           self.options, self.camera_options, self.preview,
                                                           self.priority),
                                 name="station-recorder", daemon=True)
        with signals_blocked():  # inherited: the terminal's signals never reach the child
            self._proc.start()

    def wait_ready(self) -> None:
        """Block until the child's camera is open; raises its error if it could not open."""
        try:
            calibration, description = self._wait_reply("open the camera", 0)
        except BaseException:
            self._closed.set()
            self._proc.join(timeout=10)
            self._proc = None
            raise
        self.calibration = calibration
        self.source = SimpleNamespace(description=f"{description} (recorder process {self._proc.pid})")
        self._listener = threading.Thread(target=self._listen, name="recorder-events", daemon=True)
        self._listener.start()

    def _listen(self) -> None:
        while not self._closed.is_set():
            try:
                kind, payload = self._events.get(timeout=0.5)
            except queue.Empty:
                if self._proc is not None and not self._proc.is_alive() and not self._closed.is_set():
                    self.error = self.error or f"recorder process exited (code {self._proc.exitcode})"
                    self.ended.set()
                    return
                continue
            except (EOFError, OSError):
                return
            if kind == "warning":
                self.on_warning(payload)
            elif kind == "face":
                from station.elicit.preview import FaceCheck

                payload["box"] = tuple(payload["box"]) if payload.get("box") else None
                self.face = FaceCheck(**payload)
            elif kind == "status":
                status, ended, error, trials = payload
                if trials == self._trials:  # not a status from before the last begin_trial
                    self._status = status
                if ended and not self.ended.is_set():
                    self.error = error
                    self.ended.set()

    def _wait_reply(self, what: str, rid: int):
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while True:
            try:
                got, kind, payload = self._reply.get(timeout=0.5)
                if got != rid:  # the late reply of a call a signal cut short
                    continue
                break
            except queue.Empty:
                if not self._proc.is_alive():
                    raise CameraError(f"the recorder process died (exit code {self._proc.exitcode}) "
                                      f"while trying to {what}.") from None
                if time.monotonic() > deadline:
                    raise CameraError(f"the recorder process did not {what} within {CALL_TIMEOUT_S:g} s.") from None
        if kind == "ok":
            return payload
        name, message = payload
        if name in ("CameraError", "RuntimeError", "EndOfStream"):
            raise CameraError(message)
        raise StationError(message)

    def _call(self, op: str, *args, what: str):
        with self._lock:
            self._rid += 1
            self._cmd.put((op, args, self._rid))
            return self._wait_reply(what, self._rid)

    def begin_trial(self, path, attrs=None, ground_truth=None) -> Path:
        self._trials += 1  # statuses of the previous trial no longer count
        self._status = None
        self._in_trial = True
        try:
            return self._call("begin", str(path), attrs or {}, what=f"start trial {path}")
        except BaseException:
            self._in_trial = False
            raise

    def end_trial(self, reason: str = ""):
        self._in_trial = False
        return self._call("end", reason, what="finish the trial")

    def prepare_take(self, seconds: float, needed_s: float | None = None) -> None:
        """The child's camera gets the next trial's ``seconds`` ready, its first ``needed_s`` before
        the trial starts (:meth:`station.camera.virtual.VirtualD415.prepare_take`)."""
        self._cmd.put(("prepare", (float(seconds), None if needed_s is None else float(needed_s)), 0))

    def hold_rendering(self, on: bool) -> None:
        """A film starts (``True``) or ends: the virtual D415 pauses rendering takes meanwhile
        (:meth:`station.camera.virtual.VirtualD415.hold_rendering`); other cameras ignore it."""
        self._cmd.put(("hold", (bool(on),), 0))

    def mark(self, event: str, clip: str = "", detail: str = "", t: float | None = None) -> None:
        self._cmd.put(("mark", (event, clip, detail, time.perf_counter() if t is None else t), 0))

    def status(self):
        """The child's last status; until the first one of a new trial arrives, 'recording'."""
        from station.record.recorder import RecorderStatus

        if self._status is not None:
            return self._status
        fields = {f: 0 for f in RecorderStatus.__dataclass_fields__}
        fields.update(fps=0.0, mb_per_s=0.0, recording=getattr(self, "_in_trial", False), warning="",
                      error=self.error)
        return RecorderStatus(**fields)

    def wait(self, seconds: float) -> bool:
        return not self.ended.wait(seconds)

    def close(self) -> None:
        if self._proc is None:
            return
        try:
            if self._proc.is_alive():
                self.session_markers = self._call("close", what="close the camera") or []
        finally:
            self._closed.set()
            self._proc.join(timeout=10)
            if self._proc.is_alive():  # pragma: no cover - a hung driver
                self._proc.terminate()
                self._proc.join(timeout=5)
            self._proc = None
