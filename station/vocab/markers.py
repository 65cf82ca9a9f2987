"""Marker event names: what the protocol, the recorder and the camera stamp on the time line.

A marker goes to the trial file (``/markers``), to ``session.json`` (``events``) and to the
LSL outlet (see :mod:`station.elicit.markers` and docs/elicit.md).  Its *name* is one of
:class:`Marker`; a ``str`` enum, so ``Marker.CLIP_END == "clip_end"`` and files written before
the enum existed read the same.  Add a new event here (and to the table in docs/elicit.md).
"""

from __future__ import annotations

from enum import StrEnum


class Marker(StrEnum):
    """Every marker event name the station writes."""

    # session boundaries
    SESSION_START = "session_start"
    SESSION_END = "session_end"
    SESSION_STOPPED = "session_stopped"
    SESSION_PROCESS_DIED = "session_process_died"  # the recorder child saw its parent die
    # screens and films
    INSTRUCTIONS_START = "instructions_start"
    INSTRUCTIONS_END = "instructions_end"
    BASELINE_START = "baseline_start"
    BASELINE_END = "baseline_end"
    CLIP_FIRST_FRAME = "clip_first_frame"
    CLIP_LAST_FRAME = "clip_last_frame"
    CLIP_ABORT = "clip_abort"
    CLIP_END = "clip_end"
    PAUSE = "pause"
    RESUME = "resume"
    REST_START = "rest_start"
    REST_END = "rest_end"
    FORM_START = "form_start"
    FORM_END = "form_end"
    END_SCREEN = "end_screen"  # the thank-you screen
    KEY = "key"
    QUESTION = "question"
    ANSWER = "answer"
    ABORT = "abort"  # the participant asked to stop (abort key); clip_abort stamps the flip after it
    # recording
    RECORDING_START = "recording_start"
    RECORDING_END = "recording_end"
    SOURCE_ENDED = "source_ended"  # a finite camera source (recording, pre-rendered clip) has no more frames
    # faults and their recovery
    CAMERA_STALLED = "camera_stalled"  # no frame for longer than the stall limit
    CAMERA_RESUMED = "camera_resumed"  # frames arrive again after a stall
    CAMERA_LOST = "camera_lost"  # the device is gone; the trial is closed and kept
    FACE_LOST = "face_lost"  # the experimenter view / checks no longer find a face
    FACE_MOVED = "face_moved"  # the face left the framing it had at the baseline
    FACE_FOUND = "face_found"  # the face is back in the frame after face_lost
    DISK_LOW = "disk_low"  # free space under the recorder's limit
    RECORDER_DIED = "recorder_died"  # the recorder process exited unexpectedly
    RECORDING_STOPPED = "recording_stopped"  # the recorder ended the trial by itself (disk almost full, write failed)
    WINDOW_CLOSED = "window_closed"
    INTERRUPTED = "interrupted"  # Ctrl-C / SIGTERM


#: Every marker name, as plain strings.
MARKER_NAMES = frozenset(m.value for m in Marker)
#: Markers that report a fault (a verdict must mention them).
FAULT_MARKERS = frozenset({Marker.CAMERA_STALLED, Marker.CAMERA_LOST, Marker.RECORDING_STOPPED, Marker.FACE_LOST, Marker.FACE_MOVED,
                           Marker.DISK_LOW, Marker.RECORDER_DIED, Marker.WINDOW_CLOSED, Marker.INTERRUPTED,
                           Marker.SESSION_PROCESS_DIED})


def check_marker(name: str) -> Marker:
    """The :class:`Marker` of ``name``; an unknown name raises, listing the allowed ones."""
    try:
        return Marker(name)
    except ValueError:
        from station.checks import StationError

        raise StationError(f"marker event must be one of {', '.join(sorted(MARKER_NAMES))}, got {name!r}.") from None
