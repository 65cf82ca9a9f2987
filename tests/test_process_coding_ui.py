"""The coding window under Xvfb with scripted keys: real HighGUI window, real trial file, real CSV."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from station.checks import StationError
from station.process.coding import read_coding
from station.process.coding_ui import CodingSession, script_keys
from station.process.demo import write_demo_trial

pytestmark = pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display: run under xvfb-run -a")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    path = tmp_path_factory.mktemp("coding") / "trial-01-demo.h5"
    return write_demo_trial(path, n_frames=40, events=[{"onset": 10, "apex": 14, "offset": 20, "aus": "1+2",
                                                        "kind": "micro"}])


def test_scripted_session_codes_refuses_bad_aus_and_resumes(trial, tmp_path):
    out = tmp_path / "alice.csv"
    keys = script_keys("D o d d d d k d d d d d d f u text:1+3 enter backspace text:2 enter t text:brows enter "
                       "enter d d q".split())
    result = CodingSession(trial, "alice", out).run(keys)
    assert result["window_visible"] and result["rendered"] > 10
    rows = read_coding(out)
    assert [(r.onset, r.apex, r.offset, r.aus, r.notes) for r in rows] == [(11, 15, 21, "1+2", "brows")]
    # the next session opens where the coder left (frame index 22) and appends
    again = CodingSession(trial, "alice", out)
    assert again.index == 22
    again.run(script_keys("o d k d f u text:R12 enter enter x u text:L14 enter o k f enter q".split()))
    rows = read_coding(out)
    assert [(r.onset, r.aus) for r in rows] == [(11, "1+2"), (25, "L14")]  # x deleted the R12 movement


def test_unknown_script_token_is_refused():
    with pytest.raises(StationError, match="not a key"):
        list(script_keys(["jump"]))


def test_cli_code_runs_a_key_script_in_a_subprocess(trial, tmp_path):
    script = tmp_path / "keys.txt"
    script.write_text("# mark a movement and save it\nn d o d d k d d f u text:4+7 enter enter q\n")
    snapshot = tmp_path / "window.png"
    out = tmp_path / "bob.csv"
    proc = subprocess.run([sys.executable, "-m", "station.cli", "code", str(trial), "--coder", "bob", "--out", str(out),
                           "--script", str(script), "--snapshot", str(snapshot)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = read_coding(out)
    assert [(r.onset, r.apex, r.offset, r.aus) for r in rows] == [(2, 4, 6, "4+7")]
    import cv2

    image = cv2.imread(str(snapshot))
    assert image is not None and image.shape[0] > 480  # frame + status panel were drawn


def test_jump_to_spotted_candidates_and_take_their_marks(trial, tmp_path):
    import numpy as np

    from station.process.spotting import Candidate, SpotResult, write_candidates

    candidates = write_candidates(tmp_path / "candidates.csv", [SpotResult(
        "trial-01-demo.h5", str(trial), [Candidate(9, 14, 21, 7.5, "micro"), Candidate(30, 32, 35, 9.0, "blink")],
        np.zeros(0), np.zeros(0))])
    out = tmp_path / "carol.csv"
    session = CodingSession(trial, "carol", out, candidates=candidates)
    result = session.run(script_keys("n c u text:1+2 enter enter n n p q".split()))
    assert result["window_visible"]
    assert [(r.onset, r.apex, r.offset, r.aus) for r in read_coding(out)] == [(9, 14, 21, "1+2")]
    assert session.number() == 9  # n -> blink at 30, n -> no more, p -> back to 9
