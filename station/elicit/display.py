"""The participant's PsychoPy window: flips stamped on the recorder's clock, every interval logged.

Why a wrapper: every marker must carry the time the display actually changed (the flip), on
``time.perf_counter`` (the camera frames' clock), and every frame interval must be logged so
that dropped display frames can be counted per clip.  Markers queued with :meth:`on_flip`
are emitted right after the next flip with its timestamp — the ``win.callOnFlip`` pattern,
converted to the recorder's clock.

Under Xvfb there is no vertical blank, so flips return at once; the wrapper then paces flips
to a 60 Hz grid (``paced_hz``), which makes frame intervals and drop counts meaningful in
tests and benchmarks.  With a real display and vsync, pacing is off and the hardware paces.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from station.checks import StationError
from station.signals import check_interrupted


class WindowClosed(Exception):
    """The participant window was closed (window manager close button, Alt-F4...)."""


@dataclass
class FrameLog:
    """Display flip times (perf_counter) with the phase and clip each belongs to."""

    times: list[float] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    clips: list[str] = field(default_factory=list)


#: An interval longer than this many periods means frames were missed.
LATE_PERIODS = 1.5


def missed_frames(interval: float, period: float) -> int:
    """Frames (display refreshes, or a film's frames) one interval skipped: none up to
    :data:`LATE_PERIODS` periods, else ``round(interval / period) - 1`` (50 ms at 60 Hz missed 2).

    The one formula for the flip log, the live panel and the film's skipped frames.
    """
    return max(0, round(interval / period) - 1) if interval > LATE_PERIODS * period else 0


def frame_stats(intervals: list[float], period: float) -> dict:
    """Dropped display frames of a flip log (:func:`missed_frames` per interval)."""
    if not intervals:
        return {"flips": 0, "dropped": 0}
    threshold = LATE_PERIODS * period
    missed = sum(missed_frames(dt, period) for dt in intervals)
    s = sorted(intervals)
    return {"flips": len(intervals) + 1, "dropped": missed, "late_intervals": sum(dt > threshold for dt in intervals),
            "mean_ms": 1000 * sum(s) / len(s), "p99_ms": 1000 * s[min(len(s) - 1, int(0.99 * len(s)))],
            "max_ms": 1000 * s[-1], "period_ms": 1000 * period}


class Display:
    """One PsychoPy window, its flip clock and its frame log."""

    def __init__(self, size=(1280, 720), fullscreen: bool = False, screen: int = 0, background: str = "black",
                 markers=None, pace_hz: float | None = None, log_file=None):
        try:
            from psychopy import visual
        except ImportError as err:  # pragma: no cover - psychopy is a dependency
            raise StationError(f"PsychoPy cannot be imported ({err}); reinstall the station.") from err
        from psychopy import logging as pplog

        from station.elicit.markers import psychopy_to_perf

        pplog.console.setLevel(pplog.ERROR)  # frame-drop / font chatter goes to psychopy.log instead
        if log_file is not None:
            pplog.LogFile(str(log_file), level=pplog.WARNING, filemode="a")

        try:
            self.win = visual.Window(size=list(size), fullscr=fullscreen, screen=screen, winType="pyglet",
                                     units="height", color=background, allowGUI=not fullscreen,
                                     waitBlanking=True, checkTiming=False)
        except Exception as err:  # no X display, bad screen index, no OpenGL
            raise StationError(f"cannot open the participant window (size {size}, screen {screen}, "
                               f"fullscreen {fullscreen}): {err}. Is a display connected (DISPLAY set)? "
                               "For a headless run use `xvfb-run -a station run ...`.") from err
        self.to_perf = psychopy_to_perf()
        self.markers = markers
        self.closed = False
        self.win.winHandle.on_close = self._on_close  # instead of pyglet closing the GL context under us
        self.pending: list[tuple[str, str, str]] = []
        self.log = FrameLog()
        self.phase, self.clip = "", ""
        self.last_flip: float | None = None  # time of the last flip (perf_counter)
        self._grid: float | None = None  # software pacing grid when there is no vsync
        self.late_in_phase = 0  # display frames missed since the phase / clip began (live panel)
        self.win.recordFrameIntervals = True
        self.refresh_hz, self.vsync = self._measure_refresh()
        self.paced_hz = pace_hz if pace_hz else (None if self.vsync else 60.0)
        self.period = 1.0 / (self.paced_hz or self.refresh_hz)

    # -- clock ---------------------------------------------------------------------------------
    def _measure_refresh(self) -> tuple[float, bool]:
        """Median flip interval over a few flips; < 4 ms means no vsync (Xvfb, vsync off)."""
        times = []
        for _ in range(12):
            self.win.flip()
            times.append(time.perf_counter())
        dt = statistics.median(b - a for a, b in zip(times[2:], times[3:]))
        if dt < 0.004 or self.software_renderer():
            return 60.0, False
        return 1.0 / dt, True

    @staticmethod
    def software_renderer() -> bool:
        """Mesa's llvmpipe / softpipe (Xvfb, VMs) never wait for a vertical blank."""
        try:
            from pyglet.gl import gl_info

            renderer = gl_info.get_renderer().lower()
        except Exception:
            return False
        return any(name in renderer for name in ("llvmpipe", "softpipe", "swrast"))

    def _on_close(self) -> None:
        self.closed = True

    def on_flip(self, event: str, clip: str = "", detail: str = "") -> None:
        """Emit a marker stamped with the next flip's time."""
        self.pending.append((event, clip, detail))

    def flip(self) -> float:
        """Flip; returns the flip time on perf_counter; raises WindowClosed if it was closed.

        Every loop of the session flips, so this is where a terminal signal whose exception a
        library swallowed is raised again (:func:`station.signals.check_interrupted`).
        """
        check_interrupted()
        if self.paced_hz and self._grid is not None:
            target = self._grid + self.period
            while True:
                rest = target - time.perf_counter()
                if rest <= 0:
                    break
                time.sleep(rest if rest < 0.002 else rest - 0.001)
        raw = self.win.flip()
        t = self.to_perf(raw) if raw is not None else time.perf_counter()
        if self.paced_hz and self._grid is not None:
            # keep the grid: a late flip does not shift later deadlines (like a real vblank)
            n = max(1, round((t - self._grid) / self.period))
            t_grid = self._grid + n * self.period
            self._grid = t_grid if abs(t_grid - t) < self.period / 2 else t
        else:
            self._grid = t
        # markers queued with on_flip and markers stamped with last_flip carry the same time,
        # so 'form_end' (last_flip) can never come before 'form_start' (its first flip)
        self.last_flip = t
        if self.log.times and (self.log.phases[-1], self.log.clips[-1]) == (self.phase, self.clip):
            self.late_in_phase += missed_frames(t - self.log.times[-1], self.period)
        else:
            self.late_in_phase = 0
        self.log.times.append(t)
        self.log.phases.append(self.phase)
        self.log.clips.append(self.clip)
        pending, self.pending = self.pending, []
        if self.markers is not None:
            for event, clip, detail in pending:
                self.markers.emit(event, clip, detail, t=t)
        if self.closed:
            raise WindowClosed()
        return t

    # -- input ---------------------------------------------------------------------------------
    def keys(self) -> list[tuple[str, float]]:
        """Keys pressed since the last call, with press times on perf_counter."""
        from psychopy import event

        return [(name, self.to_perf(t)) for name, t in event.getKeys(timeStamped=True)]

    def clear_keys(self) -> None:
        from psychopy import event

        event.clearEvents("keyboard")

    def press(self, key: str) -> None:
        """Inject a real pyglet key event (simulated participant): same path as a keyboard."""
        from station.elicit.keys import pyglet_symbol

        self.win.winHandle.dispatch_event("on_key_press", pyglet_symbol(key), 0)

    def request_close(self) -> None:
        """Ask the window manager path to close the window (simulated window close)."""
        self.win.winHandle.dispatch_event("on_close")

    # -- frame statistics ----------------------------------------------------------------------
    def intervals(self, clip: str | None = None, phases: tuple[str, ...] | None = None) -> list[float]:
        """Intervals (s) between consecutive flips that both belong to the selection."""
        out = []
        log = self.log
        for i in range(1, len(log.times)):
            if clip is not None and (log.clips[i] != clip or log.clips[i - 1] != clip):
                continue
            if phases is not None and (log.phases[i] not in phases or log.phases[i - 1] not in phases):
                continue
            out.append(log.times[i] - log.times[i - 1])
        return out

    def summary(self, intervals: list[float]) -> dict:
        return frame_stats(intervals, self.period)

    def info(self) -> dict:
        try:
            from pyglet.gl import gl_info

            renderer = gl_info.get_renderer()
        except Exception:
            renderer = ""
        return {"size": list(self.win.size), "fullscreen": bool(self.win._isFullScr), "refresh_hz": self.refresh_hz,
                "gl_renderer": renderer,
                "vsync": self.vsync, "paced_hz": self.paced_hz, "winType": self.win.winType}

    def close(self) -> None:
        try:
            self.win.close()
        except Exception:  # the window may already be gone
            pass
