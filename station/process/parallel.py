"""Trials in parallel through :func:`station.parallel.parallel_map` (spawn processes or Dask).

A trial is independent of every other (its own file, its own samples), so the unit of work is
one call of :func:`station.process.export.process_trial`; it never raises, so one bad trial
cannot cancel the rest.  Results come back as they finish (``on_done``) so the progress bar is
honest.  Why spawn workers and not joblib's loky: see :mod:`station.parallel`.

Two things decide the wall time of ``station process --jobs N`` besides the work itself:

* **One thread per worker.**  ``--jobs`` already puts one trial on each core; the libraries'
  own thread pools (OpenBLAS, twice: numpy's and OpenCV's copy, OpenCV's parallel_for,
  OpenMP) then only make the workers fight for the same cores: 34.6 vs 19.3 CPU s for the same
  two trials (docs/benchmarks.md, "station process (item 4)").  Each job runs under
  ``station.parallel.one_thread`` (restored afterwards: a kept pool may serve ``station evaluate`` next).
* **Longest first.**  Trials are handed out by decreasing work (frames of their coded
  movements), so the last trial to finish is a short one and no core waits idle at the end.
"""

from __future__ import annotations

import functools
from typing import Callable

from station.parallel import one_thread, parallel_map
from station.process.export import ProcessOptions, SampleSpec, TrialOutcome, process_trial

Job = tuple[str, list[SampleSpec]]


def _process_job(job: Job, options: ProcessOptions) -> TrialOutcome:
    path, specs = job
    with one_thread():
        return process_trial(path, specs, options)


def job_frames(job: Job, warmup: int = 0) -> int:
    """The work in a job, in frames: every coded movement's onset..offset plus its warm-up."""
    return sum(max(0, int(s.annotation.offset) - int(s.annotation.onset) + 1) + warmup for s in job[1])


def longest_first(jobs: list[Job], warmup: int = 0) -> list[Job]:
    """Jobs by decreasing :func:`job_frames` (ties keep their order)."""
    return sorted(jobs, key=lambda job: -job_frames(job, warmup))


def run_trials(jobs: list[Job], options: ProcessOptions, n_jobs: int = 1, scheduler: str | None = None,
               on_done: Callable[[TrialOutcome], None] | None = None) -> list[TrialOutcome]:
    """Process every (trial path, specs) job; ``scheduler`` is a Dask scheduler address or a Client.

    Outcomes are returned sorted by trial key, whatever order they ran in.
    """
    outcomes = parallel_map(functools.partial(_process_job, options=options), longest_first(jobs, options.warmup),
                            jobs=n_jobs, scheduler=scheduler, progress=on_done)
    return sorted(outcomes, key=lambda o: o.trial)
