"""`station selfreport SESSION_DIR`: forms for an existing session, or paper forms from a CSV.

Used when a session ran without forms (or they were filled on paper, as many labs do): the
answers are appended to session.json with their source, each one saved as it is given.
"""

from __future__ import annotations

from pathlib import Path

from station.checks import StationError
from station.console import print_ok
from station.elicit.forms import FormScreen, import_csv, validate_answers
from station.elicit.protocol import QUESTIONS
from station.vocab.classes import REPORT_EMOTIONS
from station.session import load_session


def _session_clips(session) -> list[str]:
    clips = [t["clip"] for t in session.data.get("trials", [])]
    return clips or list(session.data.get("order", []))


def selfreport(session_dir: str | Path, *, import_csv: str | None = None, simulate: bool = False,
               window_size=(1024, 640)) -> int:
    """Ask (or import) the forms; returns how many reports were added."""
    session = load_session(session_dir)
    clips = _session_clips(session)
    if not clips:
        raise StationError(f"{session.json_path} lists no clips (no trials and no order); nothing to report on.")
    emotions = tuple(session.data.get("protocol", {}).get("as_written", {}).get("self_report", {})
                     .get("emotions", REPORT_EMOTIONS))
    if import_csv:
        reports = _import(import_csv, clips, emotions)
        for r in reports:
            session.add_self_report(r)
        print_ok(f"imported {len(reports)} paper form(s) into {session.json_path}")
        return len(reports)
    return _ask(session, clips, emotions, simulate, window_size)


def _import(path, clips, emotions):
    return import_csv(path, clips, emotions)


def _ask(session, clips, emotions, simulate, window_size) -> int:
    from station.elicit.display import Display, WindowClosed
    from station.elicit.runner import SimulatedParticipant

    sim = SimulatedParticipant(seed=7) if simulate else None
    display = Display(window_size, fullscreen=False)
    n = 0
    screen = None
    try:
        for i, clip in enumerate(clips, 1):
            title = f"Film {i} of {len(clips)} you watched"
            if screen is None:
                screen = FormScreen(display, QUESTIONS, title, emotions)
            else:
                screen.reset(title)
            answers, seconds = screen.run(sim, "")
            answers = validate_answers(answers, QUESTIONS, emotions, where=f"form for {clip}")
            session.add_self_report({"clip": clip, "when": "selfreport", **answers, "seconds": round(seconds, 3),
                                     "source": "simulated participant" if sim else "station selfreport window",
                                     "simulated": sim is not None})
            n += 1
    except WindowClosed:
        raise StationError(f"the form window was closed; {n} answered form(s) are saved in {session.json_path}.") from None
    finally:
        display.close()
    print_ok(f"{n} form(s) saved in {session.json_path}")
    return n
