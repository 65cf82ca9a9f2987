"""Trials in parallel: a process pool on this machine, or a Dask distributed cluster.

A trial is independent of every other (its own file, its own samples), so the unit of work is
one call of :func:`station.process.export.process_trial`; it never raises, so one bad trial
cannot cancel the rest.  Results come back as they finish so the progress bar is honest.

Locally we use the standard library's ``ProcessPoolExecutor`` with *spawn* workers rather than
joblib's loky backend: on the project machine (2 cores, heavy load) a loky worker repeatedly
hung at start-up holding the pool (reproduced 3 times), while spawn workers are plain fresh
interpreters with nothing inherited (no h5py handles, no librealsense or rich threads).
"""

from __future__ import annotations

from typing import Callable, Iterable

from station.process.export import ProcessOptions, SampleSpec, TrialOutcome, process_trial

Job = tuple[str, list[SampleSpec]]


def run_trials(jobs: list[Job], options: ProcessOptions, n_jobs: int = 1, scheduler: str | None = None,
               on_done: Callable[[TrialOutcome], None] | None = None) -> list[TrialOutcome]:
    """Process every (trial path, specs) job; ``scheduler`` is a Dask scheduler address or a Client."""
    if scheduler is not None:
        outcomes = _run_dask(jobs, options, scheduler, on_done)
    elif n_jobs == 1 or len(jobs) <= 1:
        outcomes = []
        for path, specs in jobs:
            outcomes.append(process_trial(path, specs, options))
            if on_done:
                on_done(outcomes[-1])
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        outcomes = []
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(process_trial, path, specs, options) for path, specs in jobs]
            for future in as_completed(futures):
                outcomes.append(future.result())
                if on_done:
                    on_done(outcomes[-1])
    return sorted(outcomes, key=lambda o: o.trial)


def _run_dask(jobs: Iterable[Job], options: ProcessOptions, scheduler, on_done) -> list[TrialOutcome]:
    from dask.distributed import Client, as_completed

    from station.checks import StationError

    own = not hasattr(scheduler, "submit")
    try:
        client = Client(scheduler, timeout="5s") if own else scheduler
    except (OSError, TimeoutError) as err:
        raise StationError(f"cannot reach the Dask scheduler at {scheduler!r}: {err}. Start one with "
                           "`dask scheduler` (and `dask worker ADDRESS` on each machine).") from err
    try:
        futures = [client.submit(process_trial, path, specs, options, pure=False) for path, specs in jobs]
        outcomes = []
        for future in as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)
        return outcomes
    finally:
        if own:
            client.close()
