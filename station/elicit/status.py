"""Live experimenter status in the terminal while the participant watches the window.

The experimenter must see at a glance that the camera is recording and the disk is fine
without touching the participant's screen: a rich Live panel refreshed four times a second
from a snapshot the runner updates (no locks needed: it only reads plain attributes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.live import Live
from rich.table import Table

from station.checks import format_bytes
from station.console import console


@dataclass
class RunState:
    """What the runner is doing now; written by the runner, read by the status panel."""

    participant: str = ""
    session: str = ""
    phase: str = "starting"
    clip: str = ""
    clip_number: int = 0
    clip_count: int = 0
    phase_started: float = field(default_factory=time.perf_counter)
    display_drops: int = 0
    paused: bool = False
    message: str = ""
    face: str = ""  # the last face check, e.g. 'face 0.62 m — seated OK' 

    def enter(self, phase: str, clip: str = "") -> None:
        self.phase, self.clip, self.phase_started = phase, clip, time.perf_counter()


def render(state: RunState, recorder) -> Table:
    """The panel; ``recorder`` may be a callable returning the current one (it can be restarted)."""
    if callable(recorder) and not hasattr(recorder, "status"):
        recorder = recorder()
    table = Table(title=f"station run — participant {state.participant}, session {state.session}",
                  show_header=False, expand=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    phase = state.phase + ("  [yellow](PAUSED)[/]" if state.paused else "")
    table.add_row("phase", phase)
    if state.clip:
        table.add_row("clip", f"{state.clip_number}/{state.clip_count}  {state.clip}")
    table.add_row("elapsed", f"{time.perf_counter() - state.phase_started:6.1f} s")
    if recorder is not None:
        st = recorder.status()
        rec = "[green]● recording[/]" if st.recording else "[dim]○ idle[/]"
        table.add_row("camera", f"{rec}  {st.fps:4.0f} fps  written {st.frames_written}  "
                                f"dropped {st.dropped}  queue {st.queue_depth}/{st.queue_size}")
        table.add_row("disk", f"{format_bytes(st.disk_free)} free" if st.disk_free else "—")
        if st.warning:
            table.add_row("warning", f"[yellow]{st.warning}[/]")
        if st.error:
            table.add_row("error", f"[red]{st.error}[/]")
    face = getattr(recorder, "face", None) if recorder is not None else None
    if face is not None:
        problems = face.seating_problems()
        table.add_row("face", f"[{'yellow' if problems else 'green'}]{face.summary()}[/]")
    table.add_row("display", f"dropped frames this clip: {state.display_drops}")
    if state.message:
        table.add_row("note", state.message)
    return table


def live_status(state: RunState, recorder, enabled: bool = True) -> Live:
    """A started-on-enter Live panel; disabled (prints nothing live) when not on a terminal."""
    return Live(get_renderable=lambda: render(state, recorder), console=console, refresh_per_second=4,
                transient=False, auto_refresh=enabled)
