"""Refuse truncated HDF5 files before the HDF5 library touches them.

A trial cut short by a copy that did not finish (or a full disk during transfer) is shorter
than the end-of-file address its superblock records.  Opening such a file, HDF5 can spin
forever inside an attribute lookup (seen with h5py 3 on a 200 kB head of a 44 MB trial),
which would hang a whole worker pool; reading 60 bytes of superblock first turns that into a
clear message naming the file and how much of it is missing.
"""

from __future__ import annotations

import struct
from pathlib import Path

from station.checks import StationError

SIGNATURE = b"\x89HDF\r\n\x1a\n"


def superblock_eof(head: bytes) -> int | None:
    """End-of-file address recorded in an HDF5 superblock at offset 0 (None if unknown layout)."""
    if not head.startswith(SIGNATURE) or len(head) < 16:
        return None
    version = head[8]
    if version in (0, 1):
        size_offsets = head[13]
        pos = 24 + (4 if version == 1 else 0)  # after group K values and consistency flags
        pos += size_offsets * 2  # base address, free-space info address
    elif version in (2, 3):
        size_offsets = head[9]
        pos = 12 + size_offsets * 2  # after flags: base address, superblock extension address
    else:
        return None
    fmt = {4: "<I", 8: "<Q"}.get(size_offsets)
    if fmt is None or len(head) < pos + size_offsets:
        return None
    return struct.unpack_from(fmt, head, pos)[0]


def check_trial_file(path: str | Path) -> Path:
    """Raise a StationError if ``path`` is not an HDF5 file or is shorter than it says it is."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(96)
    except OSError as err:
        raise StationError(f"trial file {str(path)!r} cannot be read: {err.strerror}.") from err
    if not head.startswith(SIGNATURE):
        raise StationError(f"trial file {str(path)!r} is not an HDF5 file (no HDF5 signature; "
                           f"{size} bytes) - corrupt or not a trial.")
    eof = superblock_eof(head)
    if eof is not None and size < eof:
        raise StationError(f"trial file {str(path)!r} is truncated: {size} of {eof} bytes "
                           f"({100 * size / eof:.1f} %); copy it again from the recording machine.")
    return path
