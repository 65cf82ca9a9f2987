"""Trials in parallel through :func:`station.parallel.parallel_map` (spawn processes or Dask).

A trial is independent of every other (its own file, its own samples), so the unit of work is
one call of :func:`station.process.export.process_trial`; it never raises, so one bad trial
cannot cancel the rest.  Results come back as they finish (``on_done``) so the progress bar is
honest.  Why spawn workers and not joblib's loky: see :mod:`station.parallel`.
"""

from __future__ import annotations

import functools
from typing import Callable

from station.parallel import parallel_map
from station.process.export import ProcessOptions, SampleSpec, TrialOutcome, process_trial

Job = tuple[str, list[SampleSpec]]


def _process_job(job: Job, options: ProcessOptions) -> TrialOutcome:
    path, specs = job
    return process_trial(path, specs, options)


def run_trials(jobs: list[Job], options: ProcessOptions, n_jobs: int = 1, scheduler: str | None = None,
               on_done: Callable[[TrialOutcome], None] | None = None) -> list[TrialOutcome]:
    """Process every (trial path, specs) job; ``scheduler`` is a Dask scheduler address or a Client."""
    outcomes = parallel_map(functools.partial(_process_job, options=options), jobs, jobs=n_jobs,
                            scheduler=scheduler, progress=on_done)
    return sorted(outcomes, key=lambda o: o.trial)
