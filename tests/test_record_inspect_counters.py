"""``station inspect --check`` 'counters agree': the dropped formula from /frames, and the frames
delivered but not written, which /frames cannot show (real HDF5 files from a real software device
and from librealsense's bag)."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from conftest import ROOT
from station.camera.faults import Faults
from station.camera.realsense import PlaybackSource
from station.camera.scene import MovingSurface
from station.camera.virtual import VirtualD415
from station.record import schema
from station.record.inspect import check, dropped_from_frames
from station.record.recorder import record_trial
from station.record.writer import open_trial, read_counters
from swdev import SMALL

BAG = ROOT / "tests" / "data" / "realsense" / "single_depth_color_640x480.bag"


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    """A trial with drops, frames unpaired before its first row and between rows; and the bag's 0 rows."""
    folder = tmp_path_factory.mktemp("counters")
    cam = VirtualD415(MovingSurface(*SMALL, n_frames=24), realtime=False,
                      faults=Faults(seed=55, drop_color=0.25, drop_depth=0.15), queue_size=64)
    drops = record_trial(cam, folder / "drops.h5")
    bag = record_trial(PlaybackSource(BAG, realtime=False), folder / "bag.h5")
    return {"drops": drops, "bag": bag, "pairer": cam.pairer}


def counters_check(path) -> tuple[bool, str]:
    return next((passed, detail) for name, passed, detail in check(path).results if name == "counters agree")


def tampered(stats, tmp_path, **changes) -> str:
    """A copy of the trial with counters changed in /counters and in the attributes alike, so
    only the cross-checks against /frames and between counters can tell."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / stats.path.name
    shutil.copy(stats.path, path)
    with h5py.File(path, "r+") as f:
        dataset = f[schema.COUNTERS]
        names = json.loads(dataset.attrs["fields"])
        values = dataset[...]
        for key, delta in changes.items():
            values[names.index(key)] += delta
            f.attrs[key] = int(f.attrs[key]) + delta
        dataset[...] = values
    return path


def test_dropped_and_not_written_formulas_hold_on_a_recorded_trial(trials):
    stats = trials["drops"]
    with open_trial(stats.path) as f:
        dropped = dropped_from_frames(schema.frames_table(f))
        counters = read_counters(f)
    assert stats.frames_written == 13 and dropped == {"color": 5, "depth": 5}
    for s in schema.STREAMS:
        assert counters[f"dropped_{s}"] == dropped[s] == sum(counters[f"{c}_{s}"] for c in schema.DROP_CAUSES) \
            + counters["dropped_queue"]
        not_written = counters[f"delivered_{s}"] - counters["frames_written"]
        assert not_written == schema.not_written_per_stream(dropped[s], counters[f"gaps_{s}"],
                                                            counters[f"unpaired_ends_{s}"], counters["lost_at_stop"])
        assert counters[f"delivered_{s}"] == trials["pairer"].delivered[s]  # the pairer's own count
    # the frames unpaired before the first row (colour and depth lost at the start) are counted
    assert counters["unpaired_ends_color"] + counters["unpaired_ends_depth"] > 0
    assert counters_check(stats.path) == (True, "/counters, attributes and /frames agree")


def test_a_wrong_delivered_count_fails_the_check_even_when_attributes_repeat_it(trials, tmp_path):
    passed, detail = counters_check(tampered(trials["drops"], tmp_path, delivered_color=1))
    assert not passed and "color: 17 delivered - 13 written = 4 not written" in detail and "account for 3" in detail


def test_the_checks_of_before_still_catch_what_they_caught(trials, tmp_path):
    passed, detail = counters_check(tampered(trials["drops"], tmp_path, dropped_depth=-1))
    assert not passed and "dropped_depth 4 vs 5 in /frames" in detail
    path = tmp_path / "attr.h5"
    shutil.copy(trials["drops"].path, path)
    with h5py.File(path, "r+") as f:
        f.attrs["unpaired_ends_depth"] = int(f.attrs["unpaired_ends_depth"]) + 2
    passed, detail = counters_check(path)
    assert not passed and "attribute unpaired_ends_depth" in detail


def test_a_trial_with_0_rows_is_cross_checked_too(trials, tmp_path):
    assert counters_check(trials["bag"].path)[0]
    passed, detail = counters_check(tampered(trials["bag"], tmp_path, dropped_color=1, delivered_color=1))
    assert not passed and "dropped_color 1 vs 0 in /frames" in detail
    passed, detail = counters_check(tampered(trials["bag"], tmp_path / "second", unpaired_ends_depth=-1))
    assert not passed and "depth: 1 delivered - 0 written = 1 not written" in detail


def test_files_without_the_end_counters_are_checked_as_before(trials, tmp_path):
    """Schema-2 files recorded before the ends were counted: the /frames check alone, still strict."""
    path = tmp_path / "old.h5"
    shutil.copy(trials["drops"].path, path)
    with h5py.File(path, "r+") as f:
        counters = read_counters(f)
        old = [k for k in schema.COUNTERS_FIELDS if k not in schema.ENDS_FIELDS]
        del f[schema.COUNTERS]
        dataset = f.create_dataset(schema.COUNTERS, data=np.array([counters[k] for k in old], np.int64))
        dataset.attrs["fields"] = json.dumps(old)
        for k in schema.ENDS_FIELDS:
            del f.attrs[k]
    assert counters_check(path) == (True, "/counters, attributes and /frames agree")
    with h5py.File(path, "r+") as f:
        f[schema.COUNTERS][old.index("dropped_color")] += 1
    assert not counters_check(path)[0]
