"""One colour frame + one depth frame, each used once: what ``rs.pipeline`` does not promise.

librealsense's pipeline hands out a frameset whenever *any* stream has a new frame, filled
with the *last* frame of the other streams (its aggregator keeps one frame per stream), so
framesets repeat frames: at start-up, around every dropped frame, whenever colour and depth
drift more than half a frame apart (librealsense #1686, #5886, #6202: "count only the unique
frame numbers").  Writing every frameset writes stale images as new rows.

:class:`FramePairer` sits between librealsense and the recorder.  It takes each stream's
frames by device frame number, keeps every frame it has not seen before (copying only those),
and pairs colour with depth by timestamp, within half a frame period, oldest first.  Whatever
cannot become a row is counted, per stream:

``repeated``  a frame number already seen (a stale copy; not a loss)
``late``      a frame older than one already seen (arrived out of order; lost)
``gaps``      frame numbers never seen at all (lost before the host: USB, firmware, SDK)
``unpaired``  seen, but no partner within half a frame (lost in pairing), or still waiting
              for one when the source (or the trial) ended: :meth:`FramePairer.finish`

Counts since the previous pair ride on the next pair (:attr:`Frameset.events`), so the
recorder can attribute them to a trial exactly.  Counts after the last pair ride on no pair:
:meth:`FramePairer.finish` hands them over (with every frame still pending counted as
unpaired) when the source ends, and :meth:`FramePairer.start_window` hands over (to be
discarded) what accumulated before a trial began; see ``schema.DELIVERED`` for the counters
the recorder makes of frames at a trial's ends.  :attr:`FramePairer.delivered` counts every
distinct frame taken in, per stream, independently of these events.  The 32-bit microsecond hardware clock wraps
every 71.6 minutes of camera uptime; such wraps are unwrapped here (and counted) so stored
timestamps always increase.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Callable

import numpy as np

from station.camera.base import Frameset, StreamTimes

STREAMS = ("color", "depth")
#: The D4xx hardware clock is a 32-bit microsecond counter.
WRAP_MS = 2 ** 32 / 1000.0


@dataclasses.dataclass
class _Pending:
    times: StreamTimes
    pixels: np.ndarray
    arrival: int  # order of arrival on the host, across streams


class FramePairer:
    """Distinct frames in, one-to-one colour/depth pairs out; see the module docstring."""

    def __init__(self, fps: float, max_pending_s: float = 1.0):
        self.fps = float(fps)
        self.half_period_ms = 500.0 / self.fps
        self.max_pending = max(2, int(round(max_pending_s * self.fps)))
        self.metadata: bool | None = None  # False once a frame without firmware metadata is seen
        self._last: dict[str, int | None] = {s: None for s in STREAMS}
        self._last_raw_ts: dict[str, float | None] = {s: None for s in STREAMS}
        self._last_domain: dict[str, str | None] = {s: None for s in STREAMS}
        self._wrap_offset: dict[str, float] = {s: 0.0 for s in STREAMS}
        self._pending: dict[str, collections.deque[_Pending]] = {s: collections.deque() for s in STREAMS}
        self._arrivals = 0
        self._missing_numbers: dict[str, set[int]] = {s: set() for s in STREAMS}
        self.events: collections.Counter[str] = collections.Counter()
        #: Distinct frames offered since the pairer was made, per stream (new and late ones;
        #: stale repeats excluded): what librealsense delivered, whatever became of it.
        self.delivered: collections.Counter[str] = collections.Counter()

    # -- frames in ----------------------------------------------------------------------------
    def offer(self, stream: str, number: int, take: Callable[[], tuple[StreamTimes, np.ndarray]],
              metadata: bool = True) -> bool:
        """A frame of ``stream`` with device frame ``number``; ``take`` copies it if it is new.

        Returns True when the frame was new (and kept).
        """
        last = self._last[stream]
        if last is not None and number <= last:
            if number == last:
                self.events[f"repeated_{stream}"] += 1
            elif number in self._missing_numbers[stream]:  # counted as a gap when the newer came
                self._missing_numbers[stream].discard(number)
                self.events[f"gaps_{stream}"] -= 1
                self.events[f"late_{stream}"] += 1
                self.delivered[stream] += 1
            else:
                self.events[f"repeated_{stream}"] += 1
            return False
        if last is not None and number > last + 1:
            self.events[f"gaps_{stream}"] += number - last - 1
            missing = self._missing_numbers[stream]
            if number - last - 1 <= 4 * self.max_pending:  # remember recent holes, for late frames
                missing.update(range(last + 1, number))
            if len(missing) > 4 * self.max_pending:
                for old in sorted(missing)[: len(missing) - 4 * self.max_pending]:
                    missing.discard(old)
        self._last[stream] = number
        if not metadata:
            self.metadata = False
        elif self.metadata is None:
            self.metadata = True
        times, pixels = take()
        times = self._unwrap(stream, times)
        self.delivered[stream] += 1
        self._arrivals += 1
        self._pending[stream].append(_Pending(times, pixels, self._arrivals))
        return True

    def _unwrap(self, stream: str, times: StreamTimes) -> StreamTimes:
        raw, domain = times.timestamp_ms, times.domain
        if domain != self._last_domain[stream]:
            self._wrap_offset[stream] = 0.0  # a new clock: nothing to unwrap against
        elif domain == "hardware_clock" and self._last_raw_ts[stream] is not None \
                and raw < self._last_raw_ts[stream] - WRAP_MS / 2:
            self._wrap_offset[stream] += WRAP_MS
            if stream == "color":
                self.events["clock_wraps"] += 1
        self._last_raw_ts[stream], self._last_domain[stream] = raw, domain
        if self._wrap_offset[stream]:
            times = dataclasses.replace(times, timestamp_ms=raw + self._wrap_offset[stream])
        return times

    # -- pairs out ----------------------------------------------------------------------------
    def pairs(self, host_time: float) -> list[Frameset]:
        """Every pair that can be made now, oldest first; unmatched old frames are counted."""
        out: list[Frameset] = []
        color, depth = self._pending["color"], self._pending["depth"]
        while color and depth:
            c, d = color[0], depth[0]
            if c.times.domain == d.times.domain:
                skew = c.times.timestamp_ms - d.times.timestamp_ms
                if abs(skew) <= self.half_period_ms:
                    color.popleft(), depth.popleft()
                    out.append(Frameset(c.pixels, d.pixels, c.times, d.times, host_time,
                                        events=dict(self.events)))
                    self.events.clear()
                    continue
                older = "color" if skew < 0 else "depth"
            else:  # the streams are on different clocks (a domain switch): drop the earlier arrival
                older = "color" if c.arrival < d.arrival else "depth"
            self._pending[older].popleft()
            self.events[f"unpaired_{older}"] += 1
        for stream in STREAMS:
            queue = self._pending[stream]
            while len(queue) > self.max_pending:  # the other stream is silent: give up on the oldest
                queue.popleft()
                self.events[f"unpaired_{stream}"] += 1
        return out

    def pending(self) -> dict[str, int]:
        return {s: len(q) for s, q in self._pending.items()}

    # -- the ends of a source and of a trial --------------------------------------------------
    def finish(self) -> dict[str, int]:
        """No more frames will come (the source ended, or the trial did): every frame still
        waiting for a partner is counted ``unpaired_<stream>`` and let go.  Returns (and
        forgets) the counts no pair carried: those since the last pair, these included.

        Without this, frames after the last pair -- or all of them when no pair was ever made
        (librealsense's D435 bag) -- would be counted nowhere.
        """
        for stream in STREAMS:
            queue = self._pending[stream]
            if queue:
                self.events[f"unpaired_{stream}"] += len(queue)
                queue.clear()
        return self.start_window()

    def start_window(self) -> dict[str, int]:
        """Start counting afresh (a trial begins): returns and forgets the counts since the last
        pair, which belong to the time before.  Frames still pending stay: whatever becomes of
        them (a pair, or unpaired) is counted in the new window."""
        out = {k: v for k, v in self.events.items() if v}
        self.events.clear()
        return out


def merge_events(into: dict[str, int], events: dict[str, int]) -> None:
    """Add one frameset's event counts to a running tally."""
    for key, value in events.items():
        into[key] = into.get(key, 0) + value

