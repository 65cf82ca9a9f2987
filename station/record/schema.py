"""The one definition of the trial HDF5 layout; writers and readers both import it.

Layout (schema version 1)::

    /color       (N, H, W, 3) uint8   RGB, one chunk per frame, compressed
    /depth       (N, H, W)    uint16  z16 in the depth camera's own view (see calibration)
    /vertices    (N, H, W, 3) float32 optional: point cloud per depth pixel, metres
    /frames      (N,) table           clocks of each frame (see FRAME_DTYPE)
    /markers     (M,) table           events on the host clock (see MARKER_DTYPE)
    /counters    (len(COUNTERS),) int64  running totals, rewritten at every flush
    /ground_truth/events  JSON text   only for synthetic participants; never coder data
    attrs        calibration (JSON), device, versions, fps, resolution, completion

Point clouds need not be stored: ``depth`` + ``calibration`` rebuild them exactly with
``rs2_deproject_pixel_to_point`` semantics (:mod:`station.record.pointcloud`).
A file being written is named ``*.h5.writing`` and has ``attrs['complete'] == False``.
"""

from __future__ import annotations

import numpy as np

SCHEMA_VERSION = 1
WRITING_SUFFIX = ".writing"

COLOR, DEPTH, VERTICES, FRAMES, MARKERS, COUNTERS = "color", "depth", "vertices", "frames", "markers", "counters"
GROUND_TRUTH = "ground_truth"

#: Timestamp domains as librealsense names them, stored as small integers in /frames.
DOMAINS = ("hardware_clock", "system_time", "global_time")

_STREAM_FIELDS = [
    ("number", "<i8"),
    ("timestamp_ms", "<f8"),
    ("sensor_us", "<f8"),
    ("frame_us", "<f8"),
    ("arrival_ms", "<f8"),
]
FRAME_DTYPE = np.dtype(
    [(f"color_{n}", t) for n, t in _STREAM_FIELDS]
    + [(f"depth_{n}", t) for n, t in _STREAM_FIELDS]
    + [("domain", "<i1"), ("host_time", "<f8")]
)

MARKER_DTYPE = np.dtype([("host_time", "<f8"), ("event", "S32"), ("clip", "S64"), ("detail", "S256")])

#: Running totals kept in /counters, in this order.
COUNTERS_FIELDS = ("frames_written", "dropped_queue", "dropped_gaps_color", "dropped_gaps_depth", "unpaired")
