"""What is in a trial file, and is it intact?  (``station inspect``)

Both functions read only the small tables (frames, markers, counters, attributes) plus the
dataset shapes, so they are quick even on a multi-GB trial and work on a ``.writing`` file
left by a crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from station.record import schema
from station.record.writer import open_trial, read_calibration, read_counters, read_ground_truth, read_markers


@dataclass
class TrialSummary:
    """The facts a lab checks after a recording."""

    path: Path
    complete: bool
    frames: int
    duration_s: float
    effective_fps: float
    nominal_fps: int
    counters: dict[str, int]
    markers: list[dict[str, Any]]
    attrs: dict[str, Any]
    ground_truth_events: int
    stop_reason: str = ""

    @property
    def dropped(self) -> int:
        c = self.counters
        return c.get("dropped_queue", 0) + c.get("dropped_gaps_color", 0) + c.get("unpaired", 0)


@dataclass
class CheckReport:
    """Integrity checks: each has a name, a pass flag and a sentence saying what was found."""

    path: Path
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(passed for _, passed, _ in self.results)

    def add(self, name: str, passed: bool, detail: str) -> None:
        self.results.append((name, bool(passed), detail))


def _attr(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return value


def _frames_table(f: h5py.File) -> np.ndarray:
    """Rows of /frames that have a matching image (a crash can leave the table one flush ahead)."""
    return schema.frames_table(f)


def summarize(path: str | Path) -> TrialSummary:
    """Frames, duration, effective fps, drops, markers and attributes of one trial file."""
    with open_trial(path) as f:
        frames = _frames_table(f)
        ts = frames["color_timestamp_ms"] if len(frames) else np.zeros(0)
        duration = float(ts[-1] - ts[0]) / 1000.0 if len(ts) > 1 else 0.0
        attrs = {k: _attr(v) for k, v in f.attrs.items()}
        return TrialSummary(
            path=Path(path),
            complete=bool(attrs.get("complete", False)),
            frames=len(frames),
            duration_s=duration,
            effective_fps=(len(frames) - 1) / duration if duration > 0 else 0.0,
            nominal_fps=int(attrs.get("fps", 0)),
            counters=read_counters(f),
            markers=read_markers(f),
            attrs=attrs,
            ground_truth_events=len(read_ground_truth(f)) if schema.GROUND_TRUTH in f else 0,
            stop_reason=str(attrs.get("stop_reason", "")),
        )


def check(path: str | Path) -> CheckReport:
    """Verify what later stages rely on: clocks, pairing, calibration, shapes, completion."""
    report = CheckReport(Path(path))
    with open_trial(path) as f:
        missing = [name for name in (schema.COLOR, schema.DEPTH, schema.FRAMES, schema.MARKERS, schema.COUNTERS)
                   if name not in f]
        report.add("layout", not missing, "all datasets present" if not missing else f"missing: {', '.join(missing)}")
        if missing:
            return report
        n_color, n_depth, n_rows = f[schema.COLOR].shape[0], f[schema.DEPTH].shape[0], f[schema.FRAMES].shape[0]
        report.add("frame count", n_color == n_depth == n_rows,
                   f"color {n_color}, depth {n_depth}, frame table {n_rows}")
        frames = _frames_table(f)
        for stream in ("color", "depth"):
            numbers = frames[f"{stream}_number"]
            ts = frames[f"{stream}_timestamp_ms"]
            report.add(f"{stream} frame numbers increase", bool(np.all(np.diff(numbers) > 0)),
                       f"{int(np.sum(np.diff(numbers) <= 0))} non-increasing step(s) in {len(numbers)} frames")
            report.add(f"{stream} timestamps increase", bool(np.all(np.diff(ts) > 0)),
                       f"{int(np.sum(np.diff(ts) <= 0))} non-increasing step(s)")
        host = frames["host_time"]
        report.add("host clock increases", bool(np.all(np.diff(host) >= 0)),
                   f"{int(np.sum(np.diff(host) < 0))} backward step(s)")
        fps = float(f.attrs.get("fps", 0)) or 60.0
        skew = np.abs(frames["color_timestamp_ms"] - frames["depth_timestamp_ms"])
        worst = float(skew.max()) if len(skew) else 0.0
        report.add("color/depth pairing", worst <= 1000.0 / fps / 2,
                   f"largest color-depth timestamp difference {worst:.2f} ms (limit half a frame, "
                   f"{1000.0 / fps / 2:.2f} ms)")
        try:
            cal = read_calibration(f)
            shape_ok = (f[schema.COLOR].shape[1:3] == (cal.color_intrinsics.height, cal.color_intrinsics.width)
                        and f[schema.DEPTH].shape[1:3] == (cal.depth_intrinsics.height, cal.depth_intrinsics.width))
            report.add("calibration", cal.depth_scale > 0 and shape_ok,
                       f"depth scale {cal.depth_scale:g} m/unit; intrinsics match image sizes: {shape_ok}")
        except Exception as err:  # noqa: BLE001 - any failure here is what the check reports
            report.add("calibration", False, str(err))
        versions = f.attrs.get("schema_version", None)
        report.add("schema version", versions == schema.SCHEMA_VERSION,
                   f"file {versions}, this station {schema.SCHEMA_VERSION}")
        complete = bool(f.attrs.get("complete", False))
        report.add("closed cleanly", complete,
                   "finalised by the recorder" if complete else
                   "not finalised (crash or still being written); frames up to the last flush are readable")
    return report


def device_summary(attrs: dict[str, Any]) -> str:
    try:
        device = json.loads(attrs.get("device", "{}"))
    except (TypeError, json.JSONDecodeError):
        device = {}
    return f"{device.get('name', '?')} serial {device.get('serial', '?')} firmware {device.get('firmware', '?')}"
