"""One parallel map for the whole station: in this process, local *spawn* processes, or Dask.

``station process``, ``station spot`` and ``station evaluate`` each fan independent work out
(trials, samples, cross-validation folds); they all call :func:`parallel_map`, so ``--jobs``
and ``--scheduler`` mean the same everywhere.

* ``jobs == 1`` (or one item): a plain loop in this process -- tracebacks stay simple.
* ``jobs > 1`` (``-1``: every core): the standard library's ``ProcessPoolExecutor`` with
  *spawn* workers.  Not joblib's loky backend: on the project machine (2 cores, heavy load) a
  loky worker repeatedly hung at start-up holding the pool (reproduced 3 times), while spawn
  workers are plain fresh interpreters with nothing inherited (no h5py handles, no
  librealsense or rich threads).  ``fn`` and the items must be picklable (module-level
  functions, ``functools.partial`` of them).  The pool is kept for the next call.
* ``scheduler`` (a Dask scheduler address such as ``tcp://10.0.0.5:8786``, or a
  ``dask.distributed.Client``): the work is submitted to that cluster.  :func:`use_scheduler`
  makes an address the default for the calls inside a ``with`` block.

Results come back **in the order of ``items``**; ``progress`` hears about each one as soon as
it finishes, so a progress bar is honest.  When items are batches of the unit a user counts (a
task of four cross-validation folds), ``weights`` says how many units each item is, and a bar
advances by that many: it counts folds, not tasks.
"""

from __future__ import annotations

import contextlib
import functools
import numbers
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from station.checks import StationError

_DEFAULT_SCHEDULER: list[Any] = []


def n_workers(jobs: int) -> int:
    """``jobs`` as a worker count: ``-1`` (or any value < 1) means every core of this machine."""
    return int(jobs) if jobs and jobs > 0 else (os.cpu_count() or 1)


@contextlib.contextmanager
def use_scheduler(scheduler: Any) -> Iterator[Any]:
    """Within the block, :func:`parallel_map` calls without ``scheduler`` use this one.

    An address is connected to once (the client is closed at the end); ``None`` changes nothing.
    """
    if scheduler is None:
        yield None
        return
    client, own = connect(scheduler)
    _DEFAULT_SCHEDULER.append(client)
    try:
        yield client
    finally:
        _DEFAULT_SCHEDULER.pop()
        if own:
            client.close()


def connect(scheduler: Any) -> tuple[Any, bool]:
    """(client, whether we opened it) for a Dask address or an existing client."""
    if hasattr(scheduler, "submit"):
        return scheduler, False
    try:
        from dask.distributed import Client
    except ModuleNotFoundError as err:
        raise StationError("--scheduler needs dask.distributed: pip install 'dask[distributed]'.") from err
    try:
        return Client(scheduler, timeout="5s"), True
    except (OSError, TimeoutError) as err:
        raise StationError(f"cannot reach the Dask scheduler at {scheduler!r}: {err}. Start one with "
                           "`dask scheduler` (and `dask worker ADDRESS` on each machine).") from err


class _Progress:
    """Adapter: ``progress`` may be a callable (called with each result) or a rich ``Progress``,
    whose task advances by each finished item's weight (1 each unless :func:`parallel_map` was
    given ``weights``)."""

    def __init__(self, progress: Any, weights: list[float], description: str):
        self.progress, self.task, self.weights = progress, None, weights
        if progress is not None and hasattr(progress, "add_task"):
            self.task = progress.add_task(description, total=sum(weights))

    def done(self, index: int, result: Any) -> None:
        """Item ``index`` finished with ``result``."""
        if self.task is not None:
            self.progress.advance(self.task, self.weights[index])
        elif self.progress is not None:
            self.progress(result)

    def close(self) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)


def _checked_weights(weights: Sequence[float] | None, n_items: int) -> list[float]:
    """One non-negative progress weight per item (1 each when ``weights`` is None)."""
    if weights is None:
        return [1] * n_items
    weights = list(weights)
    if len(weights) != n_items:
        raise ValueError(f"parallel_map: weights has {len(weights)} value(s) for {n_items} item(s); one weight per "
                         "item is allowed")
    bad = [w for w in weights if not isinstance(w, numbers.Real) or isinstance(w, bool) or not w >= 0]
    if bad:
        raise ValueError(f"parallel_map: weights must be numbers >= 0, got {bad[0]!r}")
    return weights


def _call(fn: Callable, args: tuple, item: Any) -> Any:
    return fn(item, *args)


def parallel_map(fn: Callable[..., Any], items: Sequence[Any], jobs: int = 1, scheduler: Any = None,
                 progress: Any = None, description: str = "", args: tuple = (),
                 weights: Sequence[float] | None = None) -> list[Any]:
    """``[fn(item, *args) for item in items]``, in parallel; see the module docstring for the modes.

    ``progress``: ``None``, a callable receiving each result as it finishes, or a
    ``rich.progress.Progress`` (a task titled ``description`` is added and removed).
    ``weights``: one number >= 0 per item, what a rich task counts (total = their sum, each
    finished item advances it by its own); default 1 each.  A callable still gets each result.
    An exception in ``fn`` propagates (after the other workers are stopped); make ``fn``
    return an error value instead where one bad item must not cancel the rest.
    """
    items = list(items)
    if args:
        fn = functools.partial(_call, fn, tuple(args))
    if scheduler is None and _DEFAULT_SCHEDULER:
        scheduler = _DEFAULT_SCHEDULER[-1]
    bar = _Progress(progress, _checked_weights(weights, len(items)), description)
    try:
        if scheduler is not None:
            return _dask_map(fn, items, scheduler, bar)
        workers = min(n_workers(jobs), len(items))
        if workers <= 1:
            out = []
            for i, item in enumerate(items):
                out.append(fn(item))
                bar.done(i, out[-1])
            return out
        return _pool_map(fn, items, workers, bar)
    finally:
        bar.close()


_POOLS: dict[int, Any] = {}


def _pool(workers: int):
    """A spawn pool of ``workers`` processes, kept for the next call (spawning costs ~1 s each).

    Pools are shut down when the interpreter exits, or at once after an error.
    """
    pool = _POOLS.get(workers)
    if pool is None:
        import atexit
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if not _POOLS:
            atexit.register(shutdown_pools)
        pool = _POOLS[workers] = ProcessPoolExecutor(max_workers=workers,
                                                     mp_context=multiprocessing.get_context("spawn"),
                                                     initializer=exit_with_parent, initargs=(os.getpid(),))
    return pool


def exit_with_parent(parent: int) -> None:
    """Worker start-up: leave as soon as the parent is gone (SIGKILL, ``os._exit``), so a kept
    pool never outlives the command that made it (a spawn worker otherwise waits forever).
    Any ``ProcessPoolExecutor`` initializer of the station should call it (camera/framecache.py does)."""
    import atexit
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="station-parent-watch", daemon=True).start()
    atexit.register(_exit_before_hdf5_crashes)


def _exit_before_hdf5_crashes() -> None:
    """A worker whose trial write hit a full disk would crash in HDF5 at shutdown (its error has
    already gone to the parent): end it quietly instead."""
    writer = sys.modules.get("station.record.writer")
    if writer is not None:
        writer.hard_exit_if_hdf5_broken(0)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Within the block, numerical libraries use one thread (threadpoolctl; OpenCV's own pool).

    For work in a worker process when the workers already fill the cores; the previous
    settings come back afterwards (a kept pool may serve another verb next).
    """
    import cv2
    from threadpoolctl import threadpool_limits

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        cv2.setNumThreads(before)


def shutdown_pools() -> None:
    """Stop every kept worker process (also done at exit)."""
    while _POOLS:
        _, pool = _POOLS.popitem()
        pool.shutdown(wait=True, cancel_futures=True)


def _pool_map(fn, items, workers: int, bar: _Progress) -> list[Any]:
    from concurrent.futures import as_completed

    results: list[Any] = [None] * len(items)
    pool = _pool(workers)
    futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
    try:
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            bar.done(i, results[i])
    except BaseException:
        # a failed item, a dead worker or Ctrl-C: stop the rest and do not reuse this pool
        _POOLS.pop(workers, None)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    return results


def _dask_map(fn, items, scheduler, bar: _Progress) -> list[Any]:
    from dask.distributed import as_completed

    client, own = connect(scheduler)
    try:
        futures = [client.submit(fn, item, pure=False) for item in items]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(items)
        for future in as_completed(futures):
            i = index[future.key]
            results[i] = future.result()
            bar.done(i, results[i])
        return results
    finally:
        if own:
            client.close()
