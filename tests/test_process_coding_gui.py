"""The Qt coding tool under Xvfb, driven through its real widgets with QTest mouse and key events.

Trials are real files (virtual D415 -> TrialWriter, tests/codingtrials.py); the coding CSV is
read back from disk after every scripted gesture.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display: run under xvfb-run -a")

from codingtrials import coding_trial  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def qt():
    from station.gui.app import app

    return app()


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    return coding_trial(tmp_path_factory.mktemp("gui") / "sub01" / "trial-01-funny.h5", "sub01")


def open_window(trial, coder, out, **kw):
    from PyQt6.QtTest import QTest

    from station.gui.coding_window import CodingWindow

    window = CodingWindow(trial, coder, out, **kw)
    window.show()
    QTest.qWaitForWindowExposed(window)
    if window.curve_thread is not None:
        window.curve_thread.join(10)
    return window


def identity_of(path):
    import h5py

    from station.gui.media import trial_identity

    with h5py.File(path, "r") as f:
        return trial_identity(f, path)


def test_coder_marks_edits_deletes_and_undoes_with_mouse_and_keys(qt, trial, tmp_path):
    from station.gui.script import play
    from station.process.coding import read_coding

    out = tmp_path / "bob.csv"
    w = open_window(trial, "bob", out)
    rows = lambda: [(a.sample, a.onset, a.apex, a.offset, a.aus, a.notes) for a in read_coding(out)]  # noqa: E731
    # keys only: seek by mouse click, onset, 4 single steps, apex, a 10-frame jump (no Shift), offset
    play(w, ["click:10", "o", "d", "d", "d", "d", "k", "up", "f", "u", "text:1+3"])
    assert "not a FACS action unit" in w.aus_feedback.text() and "e33" in w.aus_edit.styleSheet()
    play(w, ["enter"])
    assert not out.exists()  # refused where the coder types, nothing saved
    play(w, ["backspace", "text:2", "enter"])
    assert rows() == [(1, 10, 14, 24, "1+2", "")]
    # mouse: drag onset..offset in the movement lane, click to the apex, note and AUs, Enter
    play(w, ["drag:30-40", "click:34", "k", "t", "text:smile", "esc", "u", "text:12", "enter"])
    assert rows() == [(1, 10, 14, 24, "1+2", ""), (2, 30, 34, 40, "12", "smile")]
    # edit movement 1: pick it on the timeline, drag its offset line, add an AU
    play(w, ["pick:12", "move:offset:22", "u", "text:+5", "enter"])
    assert rows()[0] == (1, 10, 14, 22, "1+2+5", "")
    # select with ] and delete, then undo the delete and the edit
    play(w, ["]", "]", "x"])
    assert rows() == [(1, 10, 14, 22, "1+2+5", "")]
    play(w, ["ctrl+z"])
    assert len(rows()) == 2
    play(w, ["ctrl+z"])
    assert rows() == [(1, 10, 14, 24, "1+2", ""), (2, 30, 34, 40, "12", "smile")]
    assert w.movement_list.count() == 2
    # rate keys, playback, help overlay
    play(w, ["4"])
    assert "x1/8" in w.status.text()
    start, t0 = w.index, time.perf_counter()
    play(w, ["space", "wait:600"])
    w._tick()  # the frame due now (the timer's own ticks may be late on a loaded machine)
    played = (time.perf_counter() - t0) * 60 / 8  # frames that the wall clock says x1/8 shows
    play(w, ["space"])
    assert played - 1.5 <= w.index - start <= played + 0.5, (w.index - start, played)  # the rate shown is played
    play(w, ["h"])
    assert w.help.isVisible()
    play(w, ["esc", "click:20"])
    assert not w.help.isVisible()
    width = w.timeline.view[1] - w.timeline.view[0]
    play(w, ["="])
    assert w.timeline.view[1] - w.timeline.view[0] < width and w.timeline.view[0] <= w.index <= w.timeline.view[1]
    play(w, ["-"])
    w.close()
    # the next session opens where the coder left, with the same movements
    again = open_window(trial, "bob", out)
    assert again.media.number(again.index) == 20 and again.movement_list.count() == 2
    again.close()
    assert {a.trial_id for a in read_coding(out)} == {identity_of(trial)["trial_id"]}


@pytest.mark.slow
def test_two_participants_and_two_sessions_with_the_same_file_names_never_mix(qt, tmp_path):
    """One coder file for three trials all named trial-01-funny.h5; export puts each sample on its own trial."""
    from station.gui.script import play
    from station.process.coding import read_coding

    trials = {("sub01", 1): coding_trial(tmp_path / "sub01" / "session-1" / "trial-01-funny.h5", "sub01", 1),
              ("sub02", 1): coding_trial(tmp_path / "sub02" / "session-1" / "trial-01-funny.h5", "sub02", 1),
              ("sub01", 2): coding_trial(tmp_path / "sub01" / "session-2" / "trial-01-funny.h5", "sub01", 2)}
    out = tmp_path / "codings" / "alice.csv"
    plan = {("sub01", 1): (12, 16, 24, "1+2"), ("sub02", 1): (14, 18, 26, "12"), ("sub01", 2): (13, 17, 25, "1+2+5")}
    for key, path in trials.items():
        w = open_window(path, "alice", out)
        assert w.movement_list.count() == 0  # nothing of the other trials shows
        onset, apex, offset, aus = plan[key]
        play(w, [f"drag:{onset}-{offset}", f"click:{apex}", "k", "u", f"text:{aus}", "enter"])
        w.close()
    rows = read_coding(out)
    assert len(rows) == 3
    for key, path in trials.items():
        ident = identity_of(path)
        (row,) = [r for r in rows if r.trial_id == ident["trial_id"]]
        assert (row.participant, row.session) == (key[0], str(key[1]))
        assert (row.onset, row.apex, row.offset, row.aus) == plan[key]
    # the export: every sample on its own participant and session, none duplicated
    db = tmp_path / "db"
    proc = subprocess.run([sys.executable, "-m", "station.cli", "process", str(tmp_path / "sub01"),
                           str(tmp_path / "sub02"), "--coding", str(out), "--out", str(db), "--no-png", "--no-ply"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    import csv

    index = list(csv.DictReader(open(db / "micro-expression.csv", encoding="utf-8-sig")))
    assert len(index) == 3, proc.stdout + proc.stderr
    got = sorted((r["Participant"], r["Session"], int(r["OnsetFrame"]), r["Trial ID"]) for r in index)
    assert got == sorted((k[0], str(k[1]), v[0], identity_of(trials[k])["trial_id"]) for k, v in plan.items())
    names = [r["Filename"] for r in index]
    assert len(set(names)) == 3  # unique sample names across sessions


def test_legacy_rows_of_another_folder_are_not_shown(qt, trial, tmp_path):
    from station.process.coding import Annotation, write_coding

    out = tmp_path / "elsewhere.csv"
    write_coding(out, [Annotation("carol", trial.name, 1, 5, 6, 9, "1")])  # no trial id: whose trial?
    w = open_window(trial, "carol", out)
    assert w.movement_list.count() == 0 and "not shown" in w.message_label.text()
    w.close()


@pytest.mark.slow
def test_cli_code_creates_the_codings_folder_takes_candidates_and_goes_through_a_folder(tmp_path):
    """`station code FOLDER --coder me` as in the README: codings/ inside the folder, trial after trial."""
    from station.process.coding import read_coding

    folder = tmp_path / "sub01" / "001"
    first = coding_trial(folder / "trial-01-funny.h5", "sub01", 1, 1)
    second = coding_trial(folder / "trial-02-funny.h5", "sub01", 1, 2)
    (folder / "candidates.csv").write_text("trial,onset,apex,offset,kind,score,duration_ms,regions,path\n"
                                           f"{first.name},14,18,24,micro,9.5,166.7,brow_r,{first}\n")
    script = tmp_path / "keys.txt"
    script.write_text("# trial 1: jump to the candidate, take its marks, type AUs, save; then the next trial\n"
                      "n c u text:1+2 enter .\n"
                      "# trial 2: mark by keys\nclick:30 o click:33 k click:36 f u text:R12 enter\n")
    shot = tmp_path / "window.png"
    proc = subprocess.run([sys.executable, "-m", "station.cli", "code", str(folder), "--coder", "me",
                           "--script", str(script), "--snapshot", str(shot)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = read_coding(folder / "codings" / "me.csv")
    got = sorted((r.trial, r.onset, r.apex, r.offset, r.aus, r.trial_id) for r in rows)
    assert got == [(first.name, 14, 18, 24, "1+2", identity_of(first)["trial_id"]),
                   (second.name, 30, 33, 36, "R12", identity_of(second)["trial_id"])]
    import cv2

    image = cv2.imread(str(shot))
    assert image is not None and image.shape[1] > 1000 and image.std() > 20


@pytest.mark.slow
def test_screens_timeline_zoom_difference_and_depth(qt, trial, tmp_path):
    """Grab the real widgets; with STATION_SCREENSHOTS=docs the images go to docs/ (docs/process.md)."""
    from station.gui.script import play

    target = Path(os.environ.get("STATION_SCREENSHOTS", tmp_path))
    out = tmp_path / "shots.csv"
    candidates = tmp_path / "candidates.csv"
    candidates.write_text("trial,onset,apex,offset,kind,score,path\n"
                          f"{trial.name},14,18,24,micro,9.5,{trial}\n{trial.name},36,38,41,blink,5.0,{trial}\n")
    w = open_window(trial, "ann", out, candidates=candidates)
    w.resize(1500, 860)
    play(w, ["r"])  # the spotter in the background: its score curve replaces the motion curve
    w.spot_thread.join(120)
    play(w, ["wait:700"])
    assert "spotting score" in w.model.curve_label, w.message_label.text()
    from station.process.agreement import interval_iou

    assert [interval_iou(c[::2][:2], (14, 24)) >= 0.5 for c in w.candidates] == [True]  # the brow raise (MEGC hit)
    w.candidates.append((36, 38, 41, "blink", 5.0))  # and a blink from the candidates file, for the picture
    w.model.candidates.append((35, 37, 40, "blink"))
    play(w, ["n", "c", "u", "text:1+2", "enter", "click:30", "o", "click:33", "k", "u", "text:R12"])
    full = w.color_view.grab().toImage()
    w.grab().save(str(target / "coding-tool.png"))
    play(w, ["esc", "esc", "click:14", "o", "click:19", "z"])
    zoom = w.color_view.grab().toImage()
    play(w, ["g"])
    diff = w.color_view.grab().toImage()
    w.centralWidget().grab().save(str(target / "coding-zoom-difference.png"))
    play(w, ["g", "z"])

    def array(img):
        ptr = img.convertToFormat(img.Format.Format_RGB888)
        buf = np.frombuffer(ptr.constBits().asstring(ptr.sizeInBytes()), np.uint8)
        return buf[: ptr.height() * ptr.bytesPerLine()].reshape(ptr.height(), ptr.bytesPerLine())[:, : ptr.width() * 3]

    a_full, a_zoom, a_diff = array(full), array(zoom), array(diff)
    assert a_full.std() > 20 and np.abs(a_full.astype(int) - a_zoom).mean() > 10  # the zoom shows another view
    assert a_diff.mean() < a_zoom.mean() * 0.6  # the difference image is dark where nothing moved
    assert w.depth_view.isVisible() and array(w.depth_view.grab().toImage()).std() > 10
    assert np.isfinite(w.model.curve).sum() > 10
    w.close()


@pytest.mark.slow
def test_the_score_curve_station_spot_stored_is_drawn_without_recomputing(qt, tmp_path):
    """`station spot` writes candidates.csv + candidates.scores.h5; the window draws that curve
    for its own trial (found by trial id, though another participant's trial has the same name)."""
    trials = [coding_trial(tmp_path / p / "trial-01-funny.h5", p) for p in ("sub01", "sub02")]
    candidates = tmp_path / "candidates.csv"
    proc = subprocess.run([sys.executable, "-m", "station.cli", "spot", str(tmp_path), "--out", str(candidates)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    from station.process.spotting import read_score_curve

    w = open_window(trials[1], "dan", tmp_path / "dan.csv", candidates=candidates)
    stored = read_score_curve(candidates, identity_of(trials[1])["trial_id"])
    assert w.curve_thread is None and w.model.curve_label.startswith("spotting score")
    assert np.array_equal(w.model.curve, stored["score"].astype(np.float64))
    assert len(w.candidates) == 1  # sub02's candidate only, not sub01's with the same file name
    w.close()
