"""Shared fixtures.  Everything here is real: librealsense software devices, HDF5 files, subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
