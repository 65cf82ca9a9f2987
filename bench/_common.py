"""What the benches that compare this tree with a reference checkout share.

Each bench is run as a script (`python bench/NAME.py`), so this module is imported as a
sibling (`from _common import ...`), not as part of the `station` package.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: The environment variables that size the numerical libraries' thread pools (OpenMP, OpenBLAS,
#: MKL, numexpr, OpenCV).
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "OPENCV_FOR_THREADS_NUM")


def ref_data_parser(doc: str | None, repeats: int) -> argparse.ArgumentParser:
    """The command line of a same-run comparison: a reference worktree, a dataset, repeats.

    Why one home: every speed claim is a ratio against a reference checkout measured in the
    same run (docs/benchmarks.md), so these options mean the same in every bench.
    """
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    parser.add_argument("--ref", required=True, type=Path, help="reference checkout (git worktree)")
    parser.add_argument("--data", required=True, type=Path, help="synthetic dataset folder")
    parser.add_argument("--repeats", type=int, default=repeats, help="interleaved repeats (medians reported)")
    return parser


def children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's finished, waited-for children so far: the
    difference around a ``subprocess.run`` is that command's CPU, its worker processes' included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def scratch(prefix: str, keep: Path | None = None) -> Iterator[Path]:
    """A scratch folder for one bench run, removed when the run ends, even by an error.

    Why: benches write whole sessions (gigabytes); folders left in /tmp filled the disk that
    the next CI run then shared.  ``keep`` (a bench's ``--keep`` / ``--work``) is made if
    needed and never removed.
    """
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
