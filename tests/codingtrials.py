"""Small real trial files for the coding tool and viewer tests.

A real face (scikit-image's astronaut, :mod:`station.process.demo`) filmed by the virtual D415
(librealsense ``software_device``) through the real :class:`~station.record.writer.TrialWriter`,
with protocol markers (baseline, film) and frames left out to make drops, as a session writes.
"""

from __future__ import annotations

from pathlib import Path

from station.camera.base import EndOfStream
from station.camera.virtual import VirtualD415
from station.process.demo import AstronautScene
from station.record.writer import TrialWriter, marker_row


def coding_trial(path: Path, participant: str, session: int = 1, trial: int = 1, n_frames: int = 48,
                 events: list[dict] | None = None, drop: tuple[int, ...] = (), clip: str = "funny") -> Path:
    """A complete trial: baseline over the first quarter, the film after it; ``drop`` = indices left out."""
    events = events if events is not None else [{"onset": 14, "apex": 18, "offset": 24, "aus": "1+2", "kind": "micro"}]
    camera = VirtualD415(AstronautScene(events, n_frames, amplitude_px=6.0), realtime=False)
    calibration = camera.start()
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = TrialWriter(path, calibration, attrs={"participant": participant, "session": session, "trial": trial,
                                                   "clip": clip, "clip_emotion": "happiness"}, ground_truth=events)
    hosts = []
    try:
        k = 0
        while True:
            try:
                fs = camera.read(2.0)
            except EndOfStream:
                break
            if fs is None:
                continue
            if k not in drop:
                writer.append(fs)
                hosts.append(fs.host_time)
            k += 1
        q = len(hosts) // 4
        writer.add_markers([marker_row(hosts[0], "baseline_start"), marker_row(hosts[q], "baseline_end"),
                            marker_row(hosts[q + 1], "clip_start", clip), marker_row(hosts[-2], "clip_end", clip)])
        return writer.close()
    finally:
        camera.stop()
