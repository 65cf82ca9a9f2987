"""The recorder role: what a session needs from whatever records the camera.

Two implementations play it: :class:`station.record.recorder.Recorder` (threads in this
process) and :class:`station.record.procrecorder.ProcessRecorder` (the same recorder in a
child process, the default of ``station run``).  The session depends on this declared
role, not on either class; a recorder that can open its camera in the background (while the
participant window opens) also plays :class:`OpensInBackground`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class RecorderRole(Protocol):
    """Records one trial file per clip; markers from any thread land on the frames' clock."""

    calibration: Any
    source: Any
    ended: threading.Event  # set when the camera or the recorder is gone
    error: str  # why it ended
    session_markers: list[dict[str, Any]]  # markers that fell between trials

    def open(self) -> None: ...

    def begin_trial(self, path: str | Path, attrs: dict[str, Any] | None = None,
                    ground_truth: list[dict] | None = None) -> Path: ...

    def end_trial(self, reason: str = "") -> Any: ...  # TrialStats

    def mark(self, event: str, clip: str = "", detail: str = "", t: float | None = None) -> None: ...

    def status(self) -> Any: ...  # RecorderStatus

    def close(self) -> None: ...


@runtime_checkable
class OpensInBackground(Protocol):
    """A recorder whose camera opens while the caller does other work: ``start`` then ``wait_ready``."""

    def start(self) -> None: ...

    def wait_ready(self) -> None: ...
