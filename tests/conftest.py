"""Shared fixtures.  Everything here is real: librealsense software devices, HDF5 files, subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Room for the suite's files where pytest puts its temporary folders: they peaked at 0.81 GB
#: in a whole run (``du`` of the base folder every 3 s, 2026-12-01), 1.5x that for margin; every
#: recording also refuses to start below the recorder's own minimum, on top of that.
SUITE_PEAK_BYTES = 1_200_000_000


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to start on a disk too full for the suite, with one message instead of a hundred.

    Why: the recorder rightly refuses a trial when the disk is nearly full, so on such a disk
    every recording test fails (and each session test waits for a journal event that never
    comes); a CI run on a machine whose /tmp had filled up ended that way.
    """
    from station.checks import format_bytes, free_bytes
    from station.record.recorder import MIN_FREE_BYTES

    base = Path(session.config.option.basetemp or tempfile.gettempdir())
    where = base if base.exists() else base.parent
    free, need = free_bytes(where), SUITE_PEAK_BYTES + MIN_FREE_BYTES
    if free < need:
        pytest.exit(f"only {format_bytes(free)} free on {where}; the tests need about {format_bytes(need)} "
                    f"({format_bytes(SUITE_PEAK_BYTES)} for their files, and the recorder refuses a trial "
                    f"below {format_bytes(MIN_FREE_BYTES)} free). Free space there, or point --basetemp at a "
                    f"disk with room.", returncode=pytest.ExitCode.USAGE_ERROR)


_EXIT_STATUS = [0]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS[0] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """After everything is reported: if a trial written in this process met a full disk, end
    with the suite's own exit status now, before HDF5 crashes at interpreter shutdown.

    Why: a CI run on a filling disk ended with exit 139 (SIGSEGV) instead of its failures'
    exit 1 -- the crash the CLI already avoids (``station.cli.entry_point``).
    """
    from station.record.writer import hard_exit_if_hdf5_broken

    hard_exit_if_hdf5_broken(_EXIT_STATUS[0])


def run_station(*args: str, timeout: float = 300, cwd: Path | None = None, env: dict | None = None,
                check: bool = False) -> subprocess.CompletedProcess:
    """Run the real ``station`` command in a subprocess and capture its output."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "station.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or ROOT, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"station {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def tmpfs(tmp_path):
    """``mount(size, name="disk")``: a real tmpfs of that size (``mount -o size=...``) under
    ``tmp_path``, unmounted afterwards; the test is skipped where mounting needs root."""
    mounts: list[Path] = []

    def mount(size: str, name: str = "disk") -> Path:
        point = tmp_path / name
        point.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                          capture_output=True).returncode:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def fill_disk(folder: Path, leave: int = 0) -> Path:
    """Fill the file system of ``folder`` with ``folder/filler`` until at most ``leave`` bytes
    are free (what else fills a lab disk); returns the filler's path."""
    import shutil

    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while (free := shutil.disk_usage(folder).free) > leave:
                fh.write(b"x" * max(512, min(free - leave, 1 << 20)))
        except OSError:
            pass
    return filler


@pytest.fixture
def station_cli():
    return run_station


@pytest.fixture(scope="module")
def one_torch_thread():
    """Deep-model tests train on one CPU thread: deterministic, and fair to the other tests."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
