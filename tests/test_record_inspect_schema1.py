"""``station inspect --check`` on schema-1 trial files (one timestamp domain per row, in ``domain``):
every check reads the same clocks as on schema 2 (real HDF5 files from a real software device,
rewritten to the older /frames layout)."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from station.camera.scene import MovingSurface
from station.camera.virtual import VirtualD415
from station.record import schema
from station.record.inspect import check
from station.record.recorder import record_trial
from swdev import SMALL


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    folder = tmp_path_factory.mktemp("schema1")
    return record_trial(VirtualD415(MovingSurface(*SMALL, n_frames=20), realtime=False), folder / "t.h5").path


def as_schema1(path, out, domain=None):
    """A copy of a schema-2 trial with /frames in the schema-1 layout: the colour domain as the
    row's ``domain``, no per-stream domains; ``domain`` replaces it when given."""
    shutil.copy(path, out)
    with h5py.File(out, "r+") as f:
        rows = f[schema.FRAMES][...]
        keep = [n for n in rows.dtype.names if n not in ("color_domain", "depth_domain")]
        old = np.zeros(len(rows), np.dtype([(n, rows.dtype[n]) for n in keep] + [("domain", "<i1")]))
        for n in keep:
            old[n] = rows[n]
        old["domain"] = rows["color_domain"] if domain is None else domain
        del f[schema.FRAMES]
        f.create_dataset(schema.FRAMES, data=old, maxshape=(None,))
        f.attrs["schema_version"] = 1
    return out


def details(path) -> dict[str, tuple[bool, str]]:
    return {name: (passed, detail) for name, passed, detail in check(path).results}


def test_a_schema1_file_is_checked_like_its_schema2_original(trial, tmp_path):
    new, old = details(trial), details(as_schema1(trial, tmp_path / "old.h5"))
    assert old["schema version"][0] is False  # file 1, this station 2: said, not hidden
    for name in ("color timestamp domain", "depth timestamp domain", "effective fps", "color timestamps increase"):
        assert old[name] == new[name], name


def test_a_domain_change_in_a_schema1_file_fails_both_streams_and_fps_uses_the_host_clock(trial, tmp_path):
    with h5py.File(trial, "r") as f:
        rows = schema.frames_table(f)
    domain = np.zeros(len(rows), np.int8)
    domain[8:] = schema.DOMAINS.index("system_time")
    got = details(as_schema1(trial, tmp_path / "switch.h5", domain))
    for stream in schema.STREAMS:
        passed, detail = got[f"{stream} timestamp domain"]
        assert not passed and "from hardware_clock to system_time at row 8" in detail
    host = rows["host_time"]
    host_fps = (len(rows) - 1) / (host[-1] - host[0])
    ts = rows["color_timestamp_ms"]
    device_fps = (len(rows) - 1) / ((ts[-1] - ts[0]) / 1000.0)
    assert f"{host_fps:.2f} fps against" in got["effective fps"][1]  # not across the two clocks
    assert f"{host_fps:.2f}" != f"{device_fps:.2f}"  # so the test can tell them apart
