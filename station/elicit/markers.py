"""One call, every sink: a protocol event goes to the trial file, session.json and LSL.

All times are ``time.perf_counter()`` seconds, the clock of every camera frame's
``host_time``; PsychoPy's clocks are converted with :func:`psychopy_to_perf`.  The Lab
Streaming Layer outlet (optional extra ``lsl``) publishes the same markers for other
recording software (EEG, eye trackers), stamped on LSL's clock.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from station.console import print_warning

LSL_MISSING = ("pylsl is not installed, so no Lab Streaming Layer markers are published "
               "(install the station with the 'lsl' extra: pip install 'station[lsl]').")


def psychopy_to_perf() -> Callable[[float], float]:
    """Converter from PsychoPy's clocks to ``time.perf_counter``.

    PsychoPy hands out times on two clocks: ``core.getTime()`` (absolute; with psychtoolbox
    installed on Linux this is wall-clock time, not the monotonic source of ``perf_counter``)
    and ``core.monotonicClock`` (seconds since its reset; what ``win.flip()`` returns).  Which
    one a value is on is told by which "now" it is close to; the offset to ``perf_counter``
    is measured at each conversion, so events from the last seconds convert to well under a
    millisecond.
    """
    from psychopy import core

    def to_perf(t: float) -> float:
        before = time.perf_counter()
        absolute, relative = core.getTime(), core.monotonicClock.getTime()
        perf = (before + time.perf_counter()) / 2
        now = absolute if abs(t - absolute) < abs(t - relative) else relative
        return t + (perf - now)

    return to_perf


class LSLOutlet:
    """A string marker stream 'station-markers' (JSON per sample); absent when pylsl is missing."""

    def __init__(self, name: str = "station-markers", source_id: str = "station"):
        import pylsl

        info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, source_id)
        self._pylsl = pylsl
        self.outlet = pylsl.StreamOutlet(info)
        # LSL's local_clock and perf_counter are both monotonic; keep their offset
        self.offset = pylsl.local_clock() - time.perf_counter()

    def push(self, event: str, clip: str, detail: str, t: float) -> None:
        sample = json.dumps({"event": event, "clip": clip, "detail": detail})
        self.outlet.push_sample([sample], t + self.offset)


def open_lsl(enabled: bool, warn: Callable[[str], None] = print_warning) -> LSLOutlet | None:
    """The LSL outlet if asked for and possible; a clear message otherwise, never a crash."""
    if not enabled:
        return None
    try:
        return LSLOutlet()
    except ImportError:
        warn(LSL_MISSING)
    except Exception as err:  # liblsl missing or network stack refused: keep recording anyway
        warn(f"Lab Streaming Layer outlet could not be opened ({err}); continuing without LSL markers.")
    return None


class Markers:
    """Fan-out of protocol events to the recorder, the session log and LSL."""

    def __init__(self, recorder=None, session=None, lsl: LSLOutlet | None = None, simulated: bool = False):
        self.recorder, self.session, self.lsl = recorder, session, lsl
        self.simulated = simulated
        self.last: tuple[str, str, float] | None = None

    def emit(self, event: str, clip: str = "", detail: str = "", t: float | None = None, **extra: Any) -> float:
        """Record ``event`` at ``t`` (perf_counter seconds; now if omitted); returns ``t``."""
        t = time.perf_counter() if t is None else t
        if self.recorder is not None:
            self.recorder.mark(event, clip=clip, detail=detail, t=t)
        if self.session is not None:
            self.session.log_event(event, t, clip=clip, detail=detail, **extra)
        if self.lsl is not None:
            try:
                self.lsl.push(event, clip, detail, t)
            except Exception as err:  # pragma: no cover - LSL failure must not stop a session
                print_warning(f"LSL marker not sent ({err}); LSL disabled for this session.")
                self.lsl = None
        self.last = (event, clip, t)
        return t
