"""Frames of the virtual D415 rendered ahead of streaming, so streaming costs what a real D415 costs.

Rendering a synthetic participant takes ~13 ms of CPU per 848x480 frame; a real D415 costs the
host nothing of the kind.  :class:`FrameCache` renders a scene's frames *before* the clip
streams (in worker processes, all cores), keeps them in memory raw when they fit the memory
budget, else LZ4-compressed (blosc2, ~0.7 MB a frame, ~1.5 ms to unpack), and for endless
scenes keeps one worker process rendering ahead of the stream.  The streaming thread then only
copies frames into librealsense.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import threading
from typing import Callable

import numpy as np

from station.parallel import exit_with_parent

Render = Callable[[int], tuple[np.ndarray, np.ndarray]]  # must pickle (sent to worker processes)

#: Raw frames are kept while they fit this many bytes (~24 s at 848x480, as a take); beyond,
#: frames are stored compressed, and unpacking them costs the streaming process ~1 ms of CPU
#: a frame pair (0.06 core at 60 fps: a cost a real D415 does not have).
MEMORY_BUDGET = 3_000_000_000
#: Compressed frames are kept while they fit this many bytes (LZ4 keeps ~45 % of a synthetic
#: participant's frame); a longer clip is rendered ahead while it streams.
COMPRESSED_BUDGET = 4_000_000_000
COMPRESSED_RATIO = 0.45
BATCH = 30

_RENDER: Render | None = None  # the worker process's renderer (sent once, at its start)


def _init_worker(render: Render, parent: int) -> None:
    global _RENDER
    _RENDER = render
    exit_with_parent(parent)  # a SIGKILLed recording must not leave its render workers behind


def _compress(a: np.ndarray) -> tuple[bytes, tuple, str]:
    import blosc2

    return blosc2.compress2(np.ascontiguousarray(a), codec=blosc2.Codec.LZ4, clevel=1, typesize=a.itemsize,
                            filters=[blosc2.Filter.NOFILTER]), a.shape, a.dtype.str


def _decompress(item) -> np.ndarray:
    import blosc2

    data, shape, dtype = item
    return np.frombuffer(blosc2.decompress2(data), dtype=dtype).reshape(shape)


def _render_batch(indices: list[int], compress: bool) -> list:
    import cv2

    cv2.setNumThreads(1)
    out = []
    for i in indices:
        color, depth = _RENDER(i)
        out.append((_compress(color), _compress(depth)) if compress else (np.ascontiguousarray(color),
                                                                            np.ascontiguousarray(depth)))
    return out


def render_pool(render: Render, jobs: int) -> cf.ProcessPoolExecutor:
    """Worker processes holding ``render``: one pool can serve many caches (a session's takes)."""
    # spawn, not fork: the parent runs librealsense and recorder threads, whose locks a fork copies
    return cf.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_init_worker, initargs=(render, os.getpid()))


class FrameCache:
    """Rendered (colour, depth) frames by index; see the module docstring.

    ``offset`` shifts the scene: entry ``i`` holds scene frame ``offset + i`` (a take of an
    endless participant).  ``pool`` is a :func:`render_pool` shared with other caches (kept
    open by :meth:`close`).
    """

    def __init__(self, render: Render, n_frames: int | None, frame_bytes: int, *, jobs: int | None = None,
                 memory_budget: int = MEMORY_BUDGET, compressed_budget: int = COMPRESSED_BUDGET,
                 ahead_s: float = 3.0, fps: int = 60, offset: int = 0,
                 pool: cf.ProcessPoolExecutor | None = None):
        self.render, self.n_frames, self.offset = render, n_frames, offset
        self.compress = n_frames is None or n_frames * frame_bytes > memory_budget
        #: Too long to hold even compressed (or endless): render ahead while streaming, forget behind.
        self.streaming = n_frames is None or n_frames * frame_bytes * COMPRESSED_RATIO > compressed_budget
        self.jobs = jobs or max(1, os.cpu_count() or 1)
        self.ahead = max(BATCH, int(ahead_s * fps))
        self._frames: dict[int, tuple] = {}
        self._futures: dict[int, cf.Future] = {}  # batch start -> future
        self._pool: cf.ProcessPoolExecutor | None = pool
        self._shared_pool = pool is not None
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self.rendered = 0

    def _executor(self, workers: int) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = render_pool(self.render, workers)
        return self._pool

    def _submit(self, start: int, workers: int) -> None:
        if start in self._futures or start in self._frames:
            return
        stop = start + BATCH if self.n_frames is None else min(start + BATCH, self.n_frames)
        if stop <= start:
            return
        self._futures[start] = self._executor(workers).submit(
            _render_batch, list(range(start + self.offset, stop + self.offset)), self.compress)

    def _collect(self, start: int) -> None:
        future = self._futures.pop(start)
        for offset, item in enumerate(future.result()):
            self._frames[start + offset] = item
        self.rendered += BATCH

    def prepare(self, upto: int | None = None) -> None:
        """Render frames [0, upto) now, on every core (default: the whole finite scene)."""
        if upto is None:
            upto = self.ahead if self.streaming else self.n_frames  # a head start, or everything
        upto = upto if self.n_frames is None else min(upto, self.n_frames)
        if not upto or self._cancelled.is_set():
            return
        for start in range(0, upto, BATCH):
            self._submit(start, self.jobs)
        for start in range(0, upto, BATCH):
            if self._cancelled.is_set():  # cancel() from another thread: stop after this batch
                return
            if start in self._futures:
                self._collect(start)

    def cancel(self) -> None:
        """Make a :meth:`prepare` running in another thread return after the batch it is waiting
        for, instead of rendering the rest (a take replaced before its trial: its render thread
        must not hold up the camera's command loop).  :meth:`close` then drops the batches still
        queued.  Frames already rendered stay readable."""
        self._cancelled.set()

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``index``; while streaming an endless or very long scene, renders ahead (one worker)."""
        with self._lock:
            start = index - index % BATCH
            if index not in self._frames:
                self._submit(start, 1)
                self._collect(start)
            for ahead in range(start + BATCH, start + self.ahead, BATCH):
                self._submit(ahead, 1)
            for done in [s for s, f in self._futures.items() if f.done()]:
                self._collect(done)
            item = self._frames[index]
            if self.streaming:  # endless or very long: forget what has been streamed
                for old in [k for k in self._frames if k < index - BATCH]:
                    del self._frames[old]
        color, depth = item
        return (_decompress(color), _decompress(depth)) if self.compress else (color, depth)

    def close(self) -> None:
        if self._shared_pool:  # others use the workers: only forget what this cache asked for
            for future in self._futures.values():
                future.cancel()
            self._futures.clear()
            self._frames.clear()
        elif self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None
