"""The virtual D415 in `station run` streams takes rendered before each trial (issue #16 item 1)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from station.camera import open_camera


@pytest.mark.slow
def test_a_take_is_rendered_before_it_streams_and_frames_are_the_participants():
    cam = open_camera("virtual", width=424, height=240, fps=60, takes=True)
    cam.start()
    try:
        cam.prepare_take(0.5)  # 30 frames, rendered by the workers while the camera loops its idle second
        info = cam.start_take()
        assert info["frames"] == 30 and info["scene_offset"] == 60 and not info["compressed"]
        got, t = [], time.perf_counter()
        while time.perf_counter() - t < 1.0:
            fs = cam.read(1.0)
            if fs is not None:
                got.append(fs)
        first = cam._take.first
        log = cam.end_take()
        assert log["overrun_frames"] > 0  # the trial outlasted its take: counted, the idle loop streamed
        in_take = [fs for fs in got if 0 <= fs.color_times.number - first < 30]
        assert len(in_take) >= 20
        for fs in in_take[::7]:  # each frame is the participant's frame at the take's offset
            color, depth = cam._renderer(60 + fs.color_times.number - first)
            assert np.array_equal(fs.color, color) and np.array_equal(fs.depth, depth)
        after = [fs for fs in got if fs.color_times.number - first >= 30]
        assert after and all(np.array_equal(fs.color, cam._renderer(_idle(fs.color_times.number))[0])
                             for fs in after[::9])
        assert cam.frames_skipped == 0 and cam.start_take() is None  # nothing prepared: the idle loop goes on
    finally:
        cam.stop()


def _idle(index: int, frames: int = 60) -> int:
    j = index % (2 * frames - 2)
    return j if j < frames else 2 * frames - 2 - j
