"""Validators for every bad-input message the station gives.

Modelled on MNE-Python's ``utils/check.py``: each error says *what was given* and *what is
allowed*, and names the file or field it came from, so a lab user can fix it without reading
code.  Every user-facing failure is a :class:`StationError`; the CLI prints it without a
traceback.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterable


class StationError(Exception):
    """A problem the user can fix (bad input, missing device, full disk...)."""


def check_choice(value: Any, allowed: Iterable[Any], name: str) -> Any:
    """Return ``value`` if it is one of ``allowed``, else say which values are allowed."""
    allowed = list(allowed)
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise StationError(f"{name} must be one of {shown}, got {value!r}.")
    return value


def check_positive(value: float, name: str, *, integer: bool = False) -> float:
    """Return ``value`` if it is a positive number (an integer when asked)."""
    kind = "a positive integer" if integer else "a positive number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StationError(f"{name} must be {kind}, got {value!r} ({type(value).__name__}).")
    if integer and int(value) != value or value <= 0:
        raise StationError(f"{name} must be {kind}, got {value!r}.")
    return value


def check_file_exists(path: str | os.PathLike, name: str = "file") -> Path:
    """Return ``path`` as a Path if it is an existing file."""
    p = Path(path)
    if not p.exists():
        raise StationError(f"{name} {str(p)!r} does not exist.")
    if not p.is_file():
        raise StationError(f"{name} {str(p)!r} is not a file.")
    return p


def check_writable_dir(path: str | os.PathLike, name: str = "output folder") -> Path:
    """Create ``path`` if needed and make sure we can write files into it."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StationError(f"{name} {str(p)!r} cannot be created: {err.strerror}.") from err
    if not os.access(p, os.W_OK | os.X_OK):
        raise StationError(f"{name} {str(p)!r} is not writable by this user.")
    return p


def free_bytes(path: str | os.PathLike) -> int:
    """Free bytes on the file system that holds ``path`` (or its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free


#: errno values that mean "the disk (or the user's quota) is full"
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(err: BaseException) -> bool:
    """True for an OSError that says the disk (or quota) is full, HDF5's included."""
    return isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS


def disk_full_message(err: OSError) -> str:
    """One line for a command that a full disk stopped: the file, the free space, what is kept.

    The file comes from the error (``filename``) or from HDF5's own report (``filename = '...'``);
    HDF5 errors from a worker process arrive with only their text.
    """
    found = re.search(r"filename = '([^']+)'", str(err))
    name = err.filename or (found.group(1) if found else None)
    where = f" while writing {str(name)!r}" if name else ""
    free = f" ({format_bytes(free_bytes(name))} free there now)" if name else ""
    return (f"the disk is full{where}{free}: the command stopped. What it wrote before stays on disk "
            f"(a file that was being written keeps its '.writing' or temporary name). Free some space "
            f"and run the command again.")


def format_bytes(n: float) -> str:
    """Human-readable size, e.g. ``'1.5 GB'``."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
