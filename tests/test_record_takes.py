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


@pytest.mark.slow
def test_a_take_replaced_while_rendering_stops_instead_of_rendering_to_its_end():
    """prepare_take replaces a pending take on the camera's command loop: the old take's render
    thread stops after the batch in flight (FrameCache.cancel) rather than holding the loop
    until all of it is rendered; the new take renders and streams as usual."""
    cam = open_camera("virtual", width=424, height=240, fps=60, takes=True)
    cam.start()
    try:
        cam.prepare_take(20.0)  # 1,200 frames: many batches queued on the render workers
        old = cam._pending
        cam.prepare_take(0.5)  # replaces it at once
        assert not old.thread.is_alive()
        assert old.cache.rendered < old.cache.n_frames  # it did not render to its end
        info = cam.start_take()
        assert info["frames"] == 30 and info["scene_offset"] == 60 + 1200
        first = None
        for _ in range(200):
            fs = cam.read(1.0)
            if fs is not None and cam._take.first is not None:
                first = cam._take.first
                k = fs.color_times.number - first
                if 0 <= k < 30:
                    color, _ = cam._renderer(60 + 1200 + k)
                    assert np.array_equal(fs.color, color)
                    break
        assert first is not None
        cam.end_take()
    finally:
        cam.stop()
