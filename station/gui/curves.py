"""The curve under the timeline when ``station spot`` stored none: computed in the background.

Both run on their own handle of the trial file in a daemon thread, so the window stays
responsive and a closed window never waits for them.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from station.gui.media import TrialMedia

#: Samples of the cheap motion curve drawn when no spotting score is stored (any trial length).
MOTION_SAMPLES = 3000


class MotionCurve(threading.Thread):
    """A frame-difference curve over the whole trial, computed in the background on a second
    handle of the file, for trials ``station spot`` has not scored yet.  Sampled at most
    ``MOTION_SAMPLES`` times, so a long trial costs seconds, not a full decode."""

    def __init__(self, path: Path, n: int):
        super().__init__(daemon=True)
        self.path, self.n = path, n
        step = max(1, n // MOTION_SAMPLES)
        self.index = np.arange(1, n, step, dtype=np.int64) if n > 1 else np.zeros(0, np.int64)
        self.values = np.full(len(self.index), np.nan)
        self.done = 0
        self.stop = False

    def run(self) -> None:
        try:
            with TrialMedia(self.path, cache_frames=4) as media:
                for k, i in enumerate(self.index):
                    if self.stop:
                        return
                    self.values[k] = media.motion(int(i), int(i) - 1)
                    self.done = k + 1
        except Exception:  # noqa: BLE001 - the curve is an aid; a damaged tail just ends it
            return


class SpotThread(threading.Thread):
    """``station spot`` on this trial in the background (key ``r``): the score curve and the
    candidates replace the motion curve when it is done; frames are read block by block, so it
    runs on a trial of any length while the coder keeps coding."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path = path
        self.result = None
        self.error = ""
        self.frames_read = 0

    def run(self) -> None:
        from station.process.spotting import spot_trial

        def progress(k):
            self.frames_read += k

        try:
            self.result = spot_trial(self.path, progress=progress)
        except Exception as err:  # noqa: BLE001 - shown to the coder, the window goes on
            self.error = str(err)
