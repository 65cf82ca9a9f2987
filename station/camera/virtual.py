"""The virtual D415: a librealsense ``software_device`` fed by a :class:`Scene`.

Frames are real librealsense frames with D415-like intrinsics, extrinsics and depth units, so
``rs.align``, ``rs.pointcloud`` and the post-processing filters treat them exactly as they
treat the camera's.

Real-time mode behaves like the camera, costs the host what the camera costs, and is as
hostile as the camera when asked:

* frames are rendered *ahead* of streaming (:mod:`station.camera.framecache`: all of a finite
  scene before the clip, on every core; an endless scene by one worker process ahead of the
  stream), so streaming only copies frames into librealsense;
* with ``takes=True`` (``station run``) an endless participant is streamed as *takes*: a
  session announces each trial's length (:meth:`VirtualD415.prepare_take`, during the forms
  and rests before it), its frames are rendered by worker processes then, and from
  :meth:`~VirtualD415.start_take` (the trial's start) to :meth:`~VirtualD415.end_take` they
  stream from memory; between trials the camera loops a pre-rendered second of the
  participant (forward and back).  Streaming during a film then renders nothing;
* a producer thread pushes them on the device's 60 fps clock whether or not anyone reads, with
  the numbers, timestamps, domains and delivery times of a :class:`~station.camera.faults.FrameSchedule`
  (drops, late frames, stalls, clock start and wrap, domain switch, unplug, no metadata);
* they pass through librealsense's ``rs.syncer`` and then through the pipeline's aggregation
  (each output repeats the last frame of the other stream, as ``rs.pipeline`` does), into a
  bounded queue that drops the oldest when the consumer is slow; :meth:`VirtualD415.read` then
  pairs them with the same :class:`~station.camera.pairing.FramePairer` as the live camera.

Fast mode (``realtime=False``) renders frame by frame on demand, for deterministic datasets.
With ``record_to`` the device also writes itself to a librealsense ``.db3`` through
``rs.recorder``; played back, that file goes through the real ``rs.pipeline``.
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import json
import queue
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pyrealsense2 as rs

from station.camera.base import (FPS, HEIGHT, WIDTH, Calibration, CameraError, EndOfStream, Extrinsics, Frameset,
                                 Intrinsics)
from station.camera.faults import Faults, FramePush, FrameSchedule
from station.camera.framecache import FrameCache, render_pool
from station.camera.pairing import FramePairer
from station.camera.realsense import has_metadata
from station.camera.realsense import stream_times as stream_times_of
from station.camera.softdevice import SoftDevice, build_software_device
from station.camera.scene import MovingSurface, Scene
from station.parallel import n_workers

DEPTH_UNITS_M = 0.001
#: Frames of the loop streamed between takes (played forward then back: no jump).
IDLE_FRAMES = 60
#: A take is kept raw (a copy per frame while streaming, no decompression) up to this many
#: bytes: ~24 s at 848x480; longer takes are kept LZ4-compressed (framecache budgets).
TAKE_MEMORY_BUDGET = 3_000_000_000


class _Take:
    """One trial's frames, rendered ahead into a cache; ``first`` is the stream index it starts at.

    ``tail`` (optional) holds the margin after the frames the trial is expected to need (for
    pauses): the trial may start once ``cache`` is rendered (``ready``); the tail renders next
    and, if the stream reaches it before it is rendered, the idle loop is streamed instead
    (counted in ``unready``), never a missing frame.
    """

    def __init__(self, cache: FrameCache, n: int, offset: int, tail: FrameCache | None = None):
        self.cache, self.tail, self.offset = cache, tail, offset
        self.n_ready = n  # frames rendered before the trial starts
        self.n = n + (tail.n_frames if tail is not None else 0)
        self.first: int | None = None
        self.overrun = 0  # frames streamed after the take ran out (idle loop shown instead)
        self.unready = 0  # frames of the tail needed before it was rendered (idle loop shown instead)
        self.error = ""
        self.ready, self.tail_ready = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._render, name="take-render", daemon=True)
        self.started = time.perf_counter()
        self.render_s = 0.0
        self.thread.start()

    def _render(self) -> None:
        try:
            self.cache.prepare()
        except Exception as err:  # noqa: BLE001 - reported when the take starts
            self.error = f"{type(err).__name__}: {err}"
        self.render_s = time.perf_counter() - self.started
        self.ready.set()
        if self.tail is not None and not self.error:
            try:
                self.tail.prepare()
                self.tail_ready.set()
            except Exception:  # noqa: BLE001 - the idle loop stands in (counted in unready)
                pass

    def frame(self, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        if k < self.n_ready:
            return self.cache.get(k)
        if self.tail_ready.is_set():
            return self.tail.get(k - self.n_ready)
        self.unready += 1
        return None

    def close(self) -> None:
        """Free the take.  A take still rendering (replaced before its trial) stops after the
        batch in flight rather than rendering to its end: this runs on the command loop."""
        for cache in (self.cache, self.tail):
            if cache is not None:
                cache.cancel()
        self.thread.join()
        self.cache.close()
        if self.tail is not None:
            self.tail.close()


class _LowPriorityRender:
    """A renderer whose worker process moves itself to the lowest priority when it receives it
    (:func:`station.record.priority.lower_process`, at the worker's start): a take is needed
    only when its trial starts, so rendering it must take as little CPU time as it can from
    the participant's display and the recorder."""

    def __init__(self, render, hold=None):
        self.render, self.hold = render, hold  # hold: a multiprocessing Event, set while a film plays

    def __setstate__(self, state: dict) -> None:  # unpickled = arrived in a render worker
        from station.record.priority import lower_process

        self.__dict__.update(state)
        lower_process()

    def __call__(self, index: int):
        while self.hold is not None and self.hold.is_set():  # (checked between frames: ~7 ms late at most)
            time.sleep(0.02)
        return self.render(index)


VIRTUAL_SERIAL = "VIRTUAL-D415-0001"


def d415_calibration(width: int = WIDTH, height: int = HEIGHT, fps: int = FPS) -> Calibration:
    """Calibration typical of a D415 at the given mode (values scaled from an 848x480 unit)."""
    s = width / 848.0
    depth = Intrinsics(width, height, 423.9 * s, 238.6 * s * height / 480 / s, 603.1 * s, 603.1 * s,
                       "brown_conrady", (0.0, 0.0, 0.0, 0.0, 0.0))
    color = Intrinsics(width, height, 427.2 * s, 244.9 * s * height / 480 / s, 611.4 * s, 611.6 * s,
                       "inverse_brown_conrady", (0.0, 0.0, 0.0, 0.0, 0.0))
    # Color sits ~15 mm to the side of the left imager; rotation is the identity.
    ext = Extrinsics((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0), (0.0148, 0.0001, 0.0003))
    info = {"name": "Virtual Intel RealSense D415", "serial": VIRTUAL_SERIAL,
            "firmware": "5.16.0.1-virtual", "product_line": "D400"}
    return Calibration(depth, color, ext, DEPTH_UNITS_M, fps, info)


class DepthReprojector:
    """Moves a color-frame z-buffer into the depth camera's view (what the D415 would measure).

    For each depth pixel we look up the color pixel that sees the same surface point, by a
    fixed-point iteration on the unknown depth (two passes of ``cv2.remap``); pixels whose
    surface the color camera cannot see become holes, as at the D415's occlusion edges.

    It runs on every frame of the live virtual camera, so the maths is arranged for speed: a
    depth pixel's point in the color camera is linear in its depth (``a * z + t`` per
    pixel, ``a`` precomputed), and the first pass, at the scene's median distance, is cached
    per millimetre of that distance.
    """

    def __init__(self, calib: Calibration):
        d, c = calib.depth_intrinsics, calib.color_intrinsics
        m = calib.depth_to_color.matrix()
        rot, t = m[:3, :3].astype(np.float32), m[:3, 3].astype(np.float32)
        v, u = np.mgrid[0 : d.height, 0 : d.width].astype(np.float32)
        rays = np.stack([(u - d.ppx) / d.fx, (v - d.ppy) / d.fy, np.ones_like(u)])  # depth rays
        a = np.einsum("ij,jhw->ihw", rot, rays).astype(np.float32)  # point in color frame = a * z + t
        self._ax, self._ay, self._az = a[0] * np.float32(c.fx), a[1] * np.float32(c.fy), a[2]
        self._tx, self._ty, self._tz = (np.float32(t[0] * c.fx), np.float32(t[1] * c.fy), np.float32(t[2]))
        self._ppx, self._ppy = np.float32(c.ppx), np.float32(c.ppy)
        self._first_pass: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _maps(self, z: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Color-image coordinates of every depth pixel if its surface were at depth ``z``."""
        den, mx, my = (np.empty_like(self._ax) for _ in range(3))
        np.multiply(self._az, z, out=den)
        den += self._tz
        np.maximum(den, np.float32(1e-6), out=den)
        np.reciprocal(den, out=den)
        np.multiply(self._ax, z, out=mx)
        mx += self._tx
        mx *= den
        mx += self._ppx
        np.multiply(self._ay, z, out=my)
        my += self._ty
        my *= den
        my += self._ppy
        return mx, my

    def __call__(self, z_color: np.ndarray) -> np.ndarray:
        sample = z_color[::8, ::8]
        valid = sample[sample > 0]
        z0_mm = int(round(float(np.median(valid)) * 1000)) if valid.size else 1000
        if z0_mm not in self._first_pass:
            if len(self._first_pass) > 64:
                self._first_pass.clear()
            self._first_pass[z0_mm] = self._maps(np.float32(z0_mm / 1000))
        mx, my = self._first_pass[z0_mm]
        z = cv2.remap(z_color, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        mx, my = self._maps(z)
        return cv2.remap(z_color, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


class SceneRenderer:
    """Frame ``index`` of a scene as the D415 would deliver it: RGB colour and z16 depth in its own view.

    A plain picklable object, so worker processes can render ahead (:mod:`station.camera.framecache`).
    """

    def __init__(self, scene: Scene, calibration: Calibration):
        self.scene, self.depth_scale = scene, calibration.depth_scale
        self.reproject = DepthReprojector(calibration)

    def __call__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        color, z_color = self.scene.render(index)
        z_depth = self.reproject(np.asarray(z_color, dtype=np.float32))
        depth = np.round(z_depth / self.depth_scale).astype(np.uint16)
        return np.ascontiguousarray(color, dtype=np.uint8), depth


class VirtualD415:
    """A software D415 streaming a scene; see the module docstring."""

    def __init__(
        self,
        scene: Scene | None = None,
        *,
        realtime: bool = True,
        fps: int = FPS,
        record_to: str | Path | None = None,
        queue_size: int = 64,  # as the live camera's frame_queue
        faults: Faults | None = None,
        prerender_frames: int | None = None,
        render_jobs: int | None = None,
        settings=None,
        takes: bool = False,
    ):
        self.scene = scene or MovingSurface()
        self.realtime, self.fps = realtime, fps
        self.record_to = Path(record_to) if record_to else None
        self.faults = faults or Faults()
        #: A protocol's camera settings: not applied (no sensor), but stored as requested in every trial.
        self.settings = settings
        self.description = (f"virtual D415 ({self.scene.name}{', real time' if realtime else ', fast'}"
                            + ("" if self.faults.clean else ", with faults") + ")")
        height, width = self.scene.render(0)[1].shape
        self.calibration = d415_calibration(width, height, fps)
        self._renderer = SceneRenderer(self.scene, self.calibration)
        self._reproject = self._renderer.reproject  # (bench/synth_speed.py times it alone)
        self.queue_size = queue_size
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._producer: threading.Thread | None = None
        self._soft: SoftDevice | None = None
        self._recorder = None
        self.prerender_frames, self.render_jobs = prerender_frames, render_jobs
        self.cache: FrameCache | None = None
        #: Takes (see the module docstring): only for an endless scene in real time.
        self.takes = takes and realtime and self.scene.n_frames is None
        self._pool = None
        self._idle: FrameCache | None = None
        self._pending: _Take | None = None
        self._take: _Take | None = None
        self._scene_next = IDLE_FRAMES  # scene frames [0, IDLE_FRAMES) are the idle loop
        self.take_log: list[dict] = []
        #: 'low': takes render in lowest-priority worker processes, paused by :meth:`hold_rendering`
        #: (station run's recorder child sets it)
        self.render_priority = "normal"
        self._hold = None  # multiprocessing Event shared with the render workers
        self.pairer = FramePairer(fps)
        self._ready: collections.deque[Frameset] = collections.deque()
        self.frames_pushed = 0
        self.frames_skipped = 0  # real time only: rendering ahead could not keep up (counted as gaps)
        self.connected = True
        self.schedule: FrameSchedule | None = None
        self._next = 0  # next push of the schedule (fast mode)

    # -- frames ---------------------------------------------------------------------------
    def _render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self._renderer(index)

    def _frame(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self.takes:
            return self._take_frame(index)
        return self.cache.get(index) if self.cache is not None else self._render(index)

    def _take_frame(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        take = self._take
        if take is not None:
            if take.first is None:
                take.first = index
            k = index - take.first
            frame = take.frame(k) if 0 <= k < take.n else None
            if frame is not None:
                return frame
            take.overrun += k >= take.n
        period = 2 * IDLE_FRAMES - 2
        j = index % period
        return self._idle.get(j if j < IDLE_FRAMES else period - j)

    # -- takes (station run) --------------------------------------------------------------
    def _frame_bytes(self) -> int:
        return self.calibration.color_intrinsics.width * self.calibration.color_intrinsics.height * 5

    def prepare_take(self, seconds: float, needed_s: float | None = None) -> None:
        """Render the next ``seconds`` of the participant now, in worker processes, without waiting.

        Called by the session before a trial (during forms, rests, instructions); the take
        streams from :meth:`start_take`, which waits for its first ``needed_s`` (default: all of
        it); the rest, a margin for pauses, renders after that.  A no-op unless this camera
        streams takes.
        """
        if not self.takes or self._pool is None:
            return
        if self._pending is not None:
            self._pending.close()
        n = max(1, int(round(seconds * self.fps)))
        ready = n if needed_s is None else min(n, max(1, int(round(needed_s * self.fps))))
        # the take still streaming (the next one renders during it) shares the memory budget
        streaming = self._take.n * self._frame_bytes() if self._take is not None and not self._take.cache.compress else 0
        budget = max(0, TAKE_MEMORY_BUDGET - streaming)
        budget = budget if n * self._frame_bytes() <= budget else 0  # head and tail kept alike
        def cache(frames: int, offset: int) -> FrameCache:
            return FrameCache(self._renderer, frames, self._frame_bytes(), fps=self.fps, offset=offset,
                              pool=self._pool, jobs=self.render_jobs, memory_budget=budget)

        head, tail = cache(ready, self._scene_next), None
        if ready < n and not head.streaming:
            tail = cache(n - ready, self._scene_next + ready)
        elif ready < n:  # the head alone renders while it streams: no split, one cache for all of it
            head = cache(n, self._scene_next)
        self._pending = _Take(head, head.n_frames, self._scene_next, tail)
        self._scene_next += n

    def hold_rendering(self, on: bool) -> None:
        """Pause (``True``) or resume rendering takes: ``station run`` pauses it while a film plays,
        so the participant's display never shares the CPU with it; the take of the next trial
        renders before and after.  Only with ``render_priority`` 'low'."""
        if self._hold is not None:
            (self._hold.set if on else self._hold.clear)()

    def start_take(self) -> dict | None:
        """Stream the prepared take from the next frame on (waits until it is rendered)."""
        take, self._pending = self._pending, None
        if take is None:
            return None
        waited = time.perf_counter()
        take.ready.wait()  # (its tail, if any, renders on)
        waited = time.perf_counter() - waited
        if take.error:
            raise CameraError(f"virtual D415: rendering the participant ahead failed: {take.error}")
        self._take = take
        info = {"frames": take.n, "ready_frames": take.n_ready, "scene_offset": take.offset,
                "render_s": round(take.render_s, 2),
                "waited_s": round(waited, 2), "compressed": take.cache.compress, "streaming": take.cache.streaming,
                "announced_s": round(time.perf_counter() - take.started, 2)}  # prepare_take to the trial's start
        self.take_log.append(info)
        return info

    def end_take(self) -> dict | None:
        """Back to the idle loop; the take's memory is freed.  Returns the take's log entry
        (``overrun_frames``: frames streamed after it ran out, the idle loop instead)."""
        take, self._take = self._take, None
        if take is None:
            return None
        self.take_log[-1]["overrun_frames"] = take.overrun + take.unready
        self.take_log[-1]["tail_unready_frames"] = take.unready
        take.close()
        return self.take_log[-1]

    def _schedule_length(self) -> int:
        """Frames the schedule covers: the scene, or what was asked to be pre-rendered, or an hour."""
        if self.scene.n_frames is not None:
            return self.scene.n_frames
        return self.prerender_frames or 3600 * self.fps

    # -- CameraSource ---------------------------------------------------------------------
    def start(self) -> Calibration:
        self._soft = build_software_device(self.calibration, ("depth", "color"), self.fps)
        self._syncer = rs.syncer(16)
        if self.record_to is not None:
            self.record_to.parent.mkdir(parents=True, exist_ok=True)
        self._recorder = self._soft.start(self._syncer, str(self.record_to) if self.record_to else None)
        self.schedule = FrameSchedule(self.faults, self.fps, self._schedule_length(), first=1)
        if self.takes:
            render = self._renderer
            if self.render_priority == "low":
                import multiprocessing

                self._hold = multiprocessing.get_context("spawn").Event()
                render = _LowPriorityRender(self._renderer, self._hold)
            self._pool = render_pool(render, n_workers(self.render_jobs))
            self._idle = FrameCache(self._renderer, IDLE_FRAMES, self._frame_bytes(), fps=self.fps, pool=self._pool)
            self._idle.prepare()  # the loop streamed between takes, before streaming starts
        elif self.realtime:
            frame_bytes = self._frame_bytes()
            self.cache = FrameCache(self._renderer, self.scene.n_frames or self.prerender_frames, frame_bytes,
                                    jobs=self.render_jobs, fps=self.fps)
            self.cache.prepare()  # the whole clip, before it streams
        self._prime_syncer()
        if self.realtime:
            self._producer = threading.Thread(target=self._produce, name="virtual-d415", daemon=True)
            self._producer.start()
        return self.calibration

    def _prime_syncer(self) -> None:
        """The syncer learns which streams exist from their first frames; spend frame 0 on that."""
        color, depth = self._frame(0)
        for stream, pixels in (("depth", depth), ("color", color)):
            # (librealsense keeps a software sensor's metadata for later frames: none if faulted)
            self._push(FramePush(0.0, stream, 0, 0, self.faults.clock_start_ms,
                                 "system_time" if self.faults.no_metadata else "hardware_clock",
                                 not self.faults.no_metadata), pixels)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            ok, _ = self._syncer.try_wait_for_frames(50)
            if not ok:
                break

    def _push(self, push: FramePush, pixels: np.ndarray) -> None:
        """Hand one frame to librealsense, with the firmware metadata a D415 sends (unless faulted)."""
        metadata = None
        if push.metadata:
            us = int(round(push.timestamp_ms * 1000))
            metadata = {"frame_timestamp": us, "sensor_timestamp": us - 4000, "frame_counter": push.number}
        self._soft.push(push.stream, pixels, push.number, push.timestamp_ms, push.domain, metadata)
        self.frames_pushed += push.stream == "color"

    def _pixels(self, push: FramePush, frames: dict[int, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        if push.index not in frames:
            frames[push.index] = self._frame(push.index)
            for old in [k for k in frames if k < push.index - 4]:
                del frames[old]
        color, depth = frames[push.index]
        return color if push.stream == "color" else depth

    def _produce(self) -> None:
        """Real-time producer: each scheduled frame at its time on the device clock."""
        pushes = [p for p in self.schedule.pushes if not self._ended(p.index)]
        frames: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if pushes:
            self._pixels(pushes[0], frames)  # an endless scene's first frames are still being rendered
        t0 = time.perf_counter()
        last: dict[str, rs.frame] = {}
        unplug = self.faults.unplug_s
        # only an endless scene's render-ahead worker can fall behind; a late push of a
        # pre-rendered frame is a frame buffered on the way, as USB buffers a real camera's
        too_late = 0.25 if self.takes or self.cache is not None and self.cache.n_frames is None else float("inf")
        for push in pushes:
            if self._stop.is_set():
                break
            if unplug is not None and push.push_s >= unplug:
                self.connected = False
                return
            delay = t0 + push.push_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            elif -delay > too_late:  # rendering ahead fell behind: the host missed this frame
                self.frames_skipped += 1
                continue
            self._push(push, self._pixels(push, frames))
            self._aggregate(last)
        self._aggregate(last, wait_ms=50)
        if unplug is not None and not self._stop.is_set():  # the schedule ends where the cable was pulled
            time.sleep(max(0.0, t0 + unplug - time.perf_counter()))
            self.connected = False

    def _aggregate(self, last: dict, wait_ms: int = 0) -> None:
        """What rs.pipeline does with the syncer's output: a frameset of the last frame of each stream."""
        while True:
            ok, frames = self._syncer.try_wait_for_frames(wait_ms)
            if not ok:
                return
            fs = frames.as_frameset()
            for stream, frame in (("color", fs.get_color_frame()), ("depth", fs.get_depth_frame())):
                if frame:
                    frame.keep()
                    last[stream] = frame
            if len(last) == 2:
                item = (last["color"], last["depth"])
                try:
                    self._queue.put_nowait(item)
                except queue.Full:  # like rs.frame_queue: the oldest goes
                    try:
                        self._queue.get_nowait()
                    except queue.Empty:
                        pass
                    self._queue.put_nowait(item)

    def _ended(self, index: int) -> bool:
        return self.scene.n_frames is not None and index >= self.scene.n_frames

    def _offer(self, color: rs.frame, depth: rs.frame) -> None:
        for stream, frame, dtype in (("color", color, np.uint8), ("depth", depth, np.uint16)):
            self.pairer.offer(stream, int(frame.get_frame_number()),
                              lambda f=frame, d=dtype: (stream_times_of(f), np.array(f.get_data(), dtype=d, copy=True)),
                              metadata=has_metadata(frame))

    def _fast_step(self) -> bool:
        """Fast mode: push the next capture instant's frames; False when the schedule is done."""
        pushes = self.schedule.pushes
        if self._next >= len(pushes) or self._ended(pushes[self._next].index):
            return False
        index = pushes[self._next].index
        frames: dict = {}
        while self._next < len(pushes) and pushes[self._next].index <= index:
            self._push(pushes[self._next], self._pixels(pushes[self._next], frames))
            self._next += 1
        return True

    def read_rs(self, timeout_s: float = 1.0) -> rs.composite_frame | None:
        """Fast mode: the next frameset as librealsense frames (for ``rs.align``, ``rs.pointcloud``...)."""
        if self.realtime:
            raise RuntimeError("read_rs() is for the fast virtual camera; use read() in real time.")
        while True:
            ok, frames = self._syncer.try_wait_for_frames(0)
            if ok:
                return frames.as_frameset()
            if not self._fast_step():
                ok, frames = self._syncer.try_wait_for_frames(int(timeout_s * 1000))
                if ok:
                    return frames.as_frameset()
                raise EndOfStream(self.scene.name)

    def read(self, timeout_s: float = 1.0) -> Frameset | None:
        """The next colour/depth pair never returned before; ``None`` if none came in time."""
        if not self.realtime:
            last: dict = {}
            while not self._ready:
                if not self._fast_step():
                    self._drain_fast(last, wait_ms=20)
                    if not self._ready:
                        raise EndOfStream(self.scene.name)
                    break
                self._drain_fast(last)
            return self._ready.popleft()
        deadline = time.perf_counter() + timeout_s
        while not self._ready:
            try:
                color, depth = self._queue.get(timeout=max(0.001, deadline - time.perf_counter()))
            except queue.Empty:
                if not self.connected:
                    raise CameraError("virtual D415 unplugged: the camera is no longer connected.") from None
                if self._producer is not None and not self._producer.is_alive():
                    raise EndOfStream(self.scene.name) from None
                return None
            self._offer(color, depth)
            self._ready.extend(self.pairer.pairs(time.perf_counter()))
        return self._ready.popleft()

    def _drain_fast(self, last: dict, wait_ms: int = 0) -> None:
        self._fast_last = getattr(self, "_fast_last", {})
        while True:
            ok, frames = self._syncer.try_wait_for_frames(wait_ms)
            if not ok:
                break
            fs = frames.as_frameset()
            for stream, frame in (("color", fs.get_color_frame()), ("depth", fs.get_depth_frame())):
                if frame:
                    self._fast_last[stream] = frame
            if len(self._fast_last) == 2:
                self._offer(self._fast_last["color"], self._fast_last["depth"])
                self._ready.extend(self.pairer.pairs(time.perf_counter()))

    @property
    def metadata(self) -> bool | None:
        return self.pairer.metadata

    def trial_attrs(self) -> dict[str, object]:
        """What the recorder stores about this camera in every trial."""
        out: dict[str, object] = {"virtual_faults": json.dumps(dataclasses.asdict(self.faults))}
        if self.settings is not None:
            from station.camera.settings import settings_json

            out["camera_settings"] = settings_json({"requested_by": "station", "applied": False,
                                                     "why": "virtual D415: no sensor options"}, self.settings)
        if self.metadata is not None:
            out["frame_metadata"] = bool(self.metadata)
        return out

    def stop(self) -> None:
        self._stop.set()
        self.hold_rendering(False)  # a take still rendering must finish (it is joined below)
        if self._producer is not None:
            self._producer.join(timeout=2)
            self._producer = None
        if self._soft is not None:
            self._soft.stop()
        # librealsense frames still held keep the device (and its rs.recorder) alive: let them go
        while not self._queue.empty():
            self._queue.get_nowait()
        self._fast_last = {}
        self._syncer = None  # it may hold an unmatched frame
        self._recorder = None  # closes the .db3
        self._soft = None
        gc.collect()
        if self.cache is not None:
            self.cache.close()
        for take in (self._pending, self._take):
            if take is not None:
                take.close()
        self._pending = self._take = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __repr__(self) -> str:
        return f"<VirtualD415 {self.description} serial={self.calibration.device['serial']}>"
