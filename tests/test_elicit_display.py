"""Display frame statistics: how dropped display frames are counted."""

from __future__ import annotations


def test_dropped_display_frames_are_counted_in_missed_refreshes():
    from station.elicit.display import frame_stats

    p = 1 / 60
    s = frame_stats([p, p, 3 * p, p, 1.4 * p, 2 * p], p)
    assert s["dropped"] == 3 and s["late_intervals"] == 2 and s["flips"] == 7
    assert abs(s["max_ms"] - 50.0) < 1e-9
    assert frame_stats([], p) == {"flips": 0, "dropped": 0}


def test_reflow_keeps_paragraphs_and_joins_hard_wrapped_lines():
    from station.elicit.runner import reflow

    assert reflow("Keep a neutral\n  face.\n\nPress SPACE.\n") == "Keep a neutral face.\n\nPress SPACE."
    assert reflow("") == ""


def test_psychopy_never_draws_a_films_last_frame_and_the_count_says_so(tmp_path):
    """docs/elicit.md: ffpyplayer (PsychoPy's decoder) hands over the first frame twice and never
    the last (matham/ffpyplayer#167).  The station counts distinct frames drawn, so a 30-frame
    film shows 29, and the last image on screen is the file's frame 28.  If this fails, the
    decoder changed: update the docs' paragraph on the last frame."""
    import cv2
    import numpy as np
    from psychopy import visual

    from station.elicit.democlips import DemoSpec, write_demo_clip
    from station.elicit.display import missed_frames

    clip = write_demo_clip(DemoSpec("t", "anger", 1.0), tmp_path / "t.mp4")
    cap, frames = cv2.VideoCapture(str(clip)), []
    while (ok_frame := cap.read())[0]:
        frames.append(cv2.cvtColor(ok_frame[1], cv2.COLOR_BGR2RGB).astype(np.int16))
    assert len(frames) == 30
    win = visual.Window((320, 240), fullscr=False, units="height")
    try:
        movie = visual.MovieStim(win, str(clip), noAudio=True, autoStart=False)
        movie.play()
        seen, last, after, skipped = set(), None, 0, 0
        while after < 10:  # keep drawing after the end: the last frame would show up now
            movie.draw()
            if movie.pts is not None and movie.pts != last:
                if last is not None:  # a loaded machine may skip frames: counted as the runner does
                    skipped += missed_frames(movie.pts - last, 1 / 30)
                seen.add(round(movie.pts, 4))
                last = movie.pts
            win.flip()
            after += movie.isFinished
        w, h = movie.frameSize
        drawn = np.asarray(movie._recentFrame)[: w * h * 3].reshape(h, w, 3).astype(np.int16)
        expected = int(round(movie.duration * movie.frameRate))
        movie.unload()
    finally:
        win.close()
    errors = [float(np.abs(drawn - f).mean()) for f in frames]
    assert expected == 30 and len(seen) + skipped == 29  # frames in the film vs distinct frames drawn
    assert int(np.argmin(errors)) == 28 and errors[28] == 0.0
