"""One way to fan work out over joblib (local processes or a Dask cluster) with a progress bar.

Feature extraction and cross-validation folds both use it, so both run on whatever joblib
backend is active (``--jobs``, or ``--scheduler`` through joblib's dask backend).
"""

from __future__ import annotations

from typing import Any, Callable

from joblib import Parallel, delayed


def parallel_map(fn: Callable, items: list, *args: Any, n_jobs: int = 1, progress=None,
                 description: str = "") -> list:
    """``[fn(item, *args) for item in items]`` on joblib's current backend, with a progress bar.

    Results come back in order; the bar advances as they arrive (``return_as="generator"``).
    """
    task = progress.add_task(description, total=len(items)) if progress is not None else None
    out = []
    results = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(fn)(item, *args) for item in items)
    for result in results:
        out.append(result)
        if progress is not None:
            progress.advance(task)
    if progress is not None:
        progress.remove_task(task)
    return out
