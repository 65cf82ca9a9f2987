"""LZ4 frames compressed off the GIL and written as direct chunks read back bit-identical with h5py + hdf5plugin."""

import subprocess
import sys
import textwrap

import h5py
import hdf5plugin
import numpy as np
import pytest

from station.camera.base import Frameset, StreamTimes
from station.camera.virtual import d415_calibration
from station.record import schema
from station.record.writer import LZ4Chunks, Storage, TrialWriter

pytestmark = pytest.mark.skipif(not LZ4Chunks.available(), reason="python lz4 not installed")


def _frames(cal, n=7):
    rng = np.random.default_rng(0)
    h, w = cal.color_intrinsics.height, cal.color_intrinsics.width
    out = []
    for i in range(n):
        if i == 0:  # incompressible: LZ4 cannot shrink it, the block is stored raw
            color = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            depth = rng.integers(0, 65536, (h, w), dtype=np.uint16)
        elif i == 1:  # all zeros
            color, depth = np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint16)
        else:  # smooth image with noise, like a face
            yy, xx = np.mgrid[0:h, 0:w]
            color = np.stack([(xx + i) % 256, (yy * 2) % 256, (xx + yy) % 256], -1).astype(np.uint8)
            depth = (600 + 40 * np.sin(xx / 30.0) + rng.normal(0, 2, (h, w))).astype(np.uint16)
        t = StreamTimes(i + 1, 1000 * i / 60, "hardware_clock")
        out.append(Frameset(color, depth, t, t, float(i)))
    return out


def test_direct_chunks_read_back_bit_identical_through_the_lz4_filter(tmp_path):
    cal = d415_calibration(424, 240, 60)
    frames = _frames(cal)
    writer = TrialWriter(tmp_path / "t.h5", cal, Storage("lz4"))
    for i, fs in enumerate(frames):
        writer.append(fs)
        if i == 3:
            writer.flush()
    path = writer.close()
    with h5py.File(path, "r") as f:  # a plain h5py reader with hdf5plugin's LZ4 filter
        color, depth = f[schema.COLOR], f[schema.DEPTH]
        assert str(hdf5plugin.LZ4_ID) in color._filters and str(hdf5plugin.LZ4_ID) in depth._filters
        assert color.shape[0] == depth.shape[0] == len(frames) == len(f[schema.FRAMES])
        for i, fs in enumerate(frames):
            np.testing.assert_array_equal(color[i], fs.color)
            np.testing.assert_array_equal(depth[i], fs.depth)
        # the noise frame was stored raw after the 16-byte header; the others compressed
        assert color.id.get_chunk_info(0).size == frames[0].color.nbytes + 16
        assert color.id.get_chunk_info(1).size < 2000 and color.id.get_chunk_info(2).size < frames[2].color.nbytes


def test_a_reader_sees_every_frame_flushed_while_the_writer_is_still_open(tmp_path):
    cal = d415_calibration(424, 240, 60)
    frames = _frames(cal, 5)
    writer = TrialWriter(tmp_path / "t.h5", cal, Storage("lz4"))
    for fs in frames:
        writer.append(fs)
    writer.flush()
    try:  # a separate process reads the .writing file in SWMR mode, as `station inspect` would
        code = textwrap.dedent(f"""
            import h5py, hdf5plugin, numpy as np
            with h5py.File({str(writer.partial_path)!r}, "r", libver="latest", swmr=True) as f:
                print(f["color"].shape[0], int(f["color"][4].sum()), int(f["depth"][4].sum()))
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["5", str(int(frames[4].color.sum())), str(int(frames[4].depth.sum()))]
    finally:
        writer.close()
