"""/frames rows are kept in memory between flushes and written in one go at each flush.

What a reader can rely on is unchanged: after every flush (and after close) /frames, /color
and /depth hold the same number of rows, each row the clocks of its frameset exactly.
"""

import math
import subprocess
import sys
import textwrap

import h5py
import numpy as np

from station.camera.base import Frameset, StreamTimes
from station.camera.virtual import d415_calibration
from station.record import schema
from station.record.writer import Storage, TrialWriter, frame_row


def _frameset(cal, i: int) -> Frameset:
    h, w = cal.color_intrinsics.height, cal.color_intrinsics.width
    color = np.full((h, w, 3), i % 256, np.uint8)
    depth = np.full((h, w), 500 + i, np.uint16)
    c = StreamTimes(i + 1, 1000 * i / 60, "hardware_clock", 16.0 * i, 17.0 * i, math.nan)
    d = StreamTimes(i + 2, 1000 * i / 60 - 0.5, "global_time" if i % 2 else "no-such-domain", math.nan, 3.0, 4.0 * i)
    return Frameset(color, depth, c, d, 100.0 + i)


def _swmr_rows(path) -> tuple[int, int, int, bytes]:
    """(frames, color, depth rows, /frames bytes) as another process sees the file being written."""
    code = textwrap.dedent(f"""
        import sys, h5py, hdf5plugin
        with h5py.File({str(path)!r}, "r", libver="latest", swmr=True) as f:
            print(f["frames"].shape[0], f["color"].shape[0], f["depth"].shape[0])
            sys.stdout.flush()
            sys.stdout.buffer.write(f["frames"][...].tobytes())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    head, _, body = out.stdout.partition(b"\n")
    n_frames, n_color, n_depth = map(int, head.split())
    return n_frames, n_color, n_depth, body


def test_rows_appear_at_each_flush_and_match_their_framesets(tmp_path):
    for compression in ("lz4", "none"):
        cal = d415_calibration(424, 240, 60)
        frames = [_frameset(cal, i) for i in range(150)]  # more than the row buffer's first 64
        writer = TrialWriter(tmp_path / f"{compression}.h5", cal, Storage(compression))
        try:
            for fs in frames[:100]:
                writer.append(fs)
            writer.flush()
            n_frames, n_color, n_depth, body = _swmr_rows(writer.partial_path)
            assert n_frames == n_color == n_depth == 100
            assert body == b"".join(frame_row(fs).tobytes() for fs in frames[:100])
            for fs in frames[100:]:
                writer.append(fs)
        finally:
            path = writer.close()
        with h5py.File(path, "r") as f:
            assert schema.readable_frames(f) == len(frames)
            table = schema.frames_table(f)
            expected = np.array([frame_row(fs) for fs in frames], schema.FRAME_DTYPE)
            assert table.tobytes() == expected.tobytes()
            assert table["depth_domain"][0] == -1 and table["depth_domain"][1] == schema.DOMAINS.index("global_time")
            assert np.isnan(table["color_arrival_ms"]).all() and table["color_number"][-1] == 150


def test_frame_row_fills_every_field_by_name():
    cal = d415_calibration(424, 240, 60)
    fs = _frameset(cal, 7)
    row = frame_row(fs)
    for prefix, times in (("color", fs.color_times), ("depth", fs.depth_times)):
        for name in ("number", "timestamp_ms", "sensor_us", "frame_us", "arrival_ms"):
            np.testing.assert_equal(row[f"{prefix}_{name}"], getattr(times, name))
    assert row["color_domain"] == schema.DOMAINS.index("hardware_clock")
    assert row["skew_ms"] == fs.color_times.timestamp_ms - fs.depth_times.timestamp_ms
    assert row["host_time"] == 107.0
