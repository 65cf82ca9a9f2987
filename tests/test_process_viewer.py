"""``station view``: colour + depth, timestamps, markers, drops on the timeline, point cloud, MP4 export."""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from codingtrials import coding_trial

REPO = Path(__file__).resolve().parents[1]
needs_display = pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display: run under xvfb-run -a")


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    # frames 30, 31, 32 of the camera never reach the file: a 3-frame drop
    return coding_trial(tmp_path_factory.mktemp("view") / "trial-02-funny.h5", "sub03", 2, 2, drop=(30, 31, 32))


def count_frames(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def test_media_reads_frames_on_demand_and_finds_markers_and_drops(trial):
    from station.gui.media import TrialMedia, frame_cloud

    with TrialMedia(trial, cache_frames=3) as media:
        assert media.drops() == [(30, 3)]
        assert media.number(30) - media.number(29) == 4
        spans, ticks = media.spans_and_events()
        assert [s.kind for s in spans] == ["baseline", "clip"] and spans[1].label == "funny"
        for i in range(6):
            media.color(i)
        assert len(media._colors.data) == 3  # a small cache, never the trial
        cloud = frame_cloud(media, 10)
        assert len(cloud.points) > 10000 and len(cloud.colors) == len(cloud.points)
        assert 0.5 < np.median(np.asarray(cloud.points)[:, 2]) < 1.3  # the face at ~0.6 m, the wall at 1.2 m


@pytest.mark.slow
def test_cli_export_writes_the_range_side_by_side_and_never_overwrites(trial, tmp_path):
    out = tmp_path / "clip.mp4"
    cmd = [sys.executable, "-m", "station.cli", "view", str(trial), "--export", str(out), "--start", "20", "--end", "40"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "18 frame(s) 20..40" in proc.stdout + proc.stderr  # frames 31-33 were dropped at recording: not invented
    assert count_frames(out) == 18
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 2 * 848 and cap.get(cv2.CAP_PROP_FPS) == 60
    from station.checks import StationError
    from station.gui.export import export_mp4

    before = out.read_bytes()
    with pytest.raises(StationError, match="already exists"):
        export_mp4(trial, out, 20, 40)
    assert out.read_bytes() == before


@needs_display
def test_viewer_window_shows_drops_markers_and_exports_a_range(trial, tmp_path):
    from PyQt6.QtTest import QTest

    from station.gui.app import app
    from station.gui.script import play
    from station.gui.viewer import ViewerWindow

    app()
    w = ViewerWindow(trial)
    w.show()
    QTest.qWaitForWindowExposed(w)
    assert w.model.drops == [(30, 3)]
    drops = [w.event_list.item(k).text() for k in range(w.event_list.count()) if "DROP" in w.event_list.item(k).text()]
    assert len(drops) == 1 and "3 frame(s)" in drops[0]
    play(w, ["m", "m", "m"])  # from baseline_start (frame 0): baseline_end, clip_start, the drop
    assert w.index == 30 and "dropped before this one" in w.status.text()
    assert "device" in w.color_view.caption and "device" in w.depth_view.caption
    target = Path(os.environ.get("STATION_SCREENSHOTS", tmp_path))
    play(w, ["click:10", "[", "click:25", "]"])
    w.grab().save(str(target / "viewer.png"))
    play(w, ["e"])
    assert w.last_export is not None and w.last_export["frames"] == 16
    assert count_frames(w.last_export["path"]) == 16
    os.unlink(w.last_export["path"])
    w.close()


@needs_display
@pytest.mark.slow
def test_point_cloud_window_renders_the_frame(trial, tmp_path):
    """The open3d window the viewer opens on `c` (its own process), rendered once to a PNG."""
    png = Path(os.environ.get("STATION_SCREENSHOTS", tmp_path)) / "viewer-cloud.png"
    proc = subprocess.run([sys.executable, "-m", "station.gui.cloud", str(trial), "10", str(png)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    image = cv2.imread(str(png))
    assert image is not None and (image < 250).any(axis=2).mean() > 0.1  # the cloud covers part of the view
    # and `c` in the viewer opens that window in its own process, which stays up until closed
    from PyQt6.QtTest import QTest

    from station.gui.app import app
    from station.gui.script import play
    from station.gui.viewer import ViewerWindow

    app()
    w = ViewerWindow(trial)
    w.show()
    play(w, ["click:11", "c"])
    try:
        QTest.qWait(4000)
        assert w.cloud_process is not None and w.cloud_process.poll() is None, w.cloud_process.poll()
    finally:
        w.cloud_process.terminate()
        w.cloud_process.wait(10)
        w.close()


@pytest.mark.slow
def test_a_real_d435_recording_with_no_pair_is_refused_clearly(tmp_path, capsys):
    """librealsense's own recording (tests/data/realsense, NOTICE.md) gives a trial with 0 frames:
    the viewer, the export and the coding tool say so instead of failing somewhere inside."""
    from station.camera.realsense import PlaybackSource
    from station.record.recorder import record_trial

    bag = REPO / "tests" / "data" / "realsense" / "single_depth_color_640x480.bag"
    path = record_trial(PlaybackSource(bag, realtime=False), tmp_path / "trial-01-bag.h5").path
    from station.cli import main

    for verb in (["view", str(path), "--export", str(tmp_path / "x.mp4")], ["code", str(path), "--coder", "me"]):
        assert main(verb) != 0
        err = capsys.readouterr().err
        assert "holds no frames" in " ".join(err.split()) and "Traceback" not in err, err
    assert not (tmp_path / "x.mp4").exists()
