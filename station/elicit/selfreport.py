"""`station selfreport SESSION_DIR`: forms for the films a participant saw, or paper forms from a CSV.

Used when a session ran without forms, stopped before them (a crash, Ctrl-C, a fault), or
the forms were filled on paper.  Which films to ask about comes from the session's journal
(:func:`station.elicit.verdict.shown_clips`): exactly the films that reached the screen,
whole or partly (the form says which), never a film that was not shown; a film that already
has an answer is skipped unless ``redo``.  Each answer is journalled as it is given.
"""

from __future__ import annotations

from pathlib import Path

from station.checks import StationError
from station.console import console, print_ok
from station.elicit.forms import FormScreen, import_csv, validate_answers
from station.elicit.protocol import QUESTIONS, REPORT_EMOTIONS
from station.elicit.verdict import PARTLY, restamp, shown_clips
from station.session import load_session


def _session_clips(session) -> list[tuple[str, str]]:
    """(clip, whole|partly) for the films shown; sessions older than the journal: their trials."""
    shown = shown_clips(session.data)
    if shown or session.journal_info:
        return shown
    return [(t["clip"], "whole") for t in session.data.get("trials", [])]


def _answered(session) -> set[str]:
    return {r.get("clip") for r in session.data.get("self_reports", []) if r.get("clip")}


def selfreport(session_dir: str | Path, *, import_csv: str | None = None, simulate: bool = False,
               window_size=(1024, 640), redo: bool = False) -> int:
    """Ask (or import) the forms; returns how many reports were added."""
    session = load_session(session_dir)
    shown = _session_clips(session)
    if not shown:
        raise StationError(f"{session.folder}: no film reached the screen in this session (journal: "
                           f"{session.journal_path.name}); there is nothing to report on.")
    emotions = tuple(session.data.get("protocol", {}).get("as_written", {}).get("self_report", {})
                     .get("emotions", REPORT_EMOTIONS))
    if import_csv:
        reports = _import(import_csv, [c for c, _ in shown], emotions)
        partly = {c for c, how in shown if how == PARTLY}
        for r in reports:
            shown_how = ({"film_shown": "partly" if r["clip"] in partly else "whole"} if r["clip"] else {})
            session.add_self_report({**r, **shown_how})
        print_ok(f"imported {len(reports)} paper form(s) into {session.journal_path}")
        restamp(session)
        session.close()
        return len(reports)
    answered = set() if redo else _answered(session)
    todo = [(c, how) for c, how in shown if c not in answered]
    skipped = [c for c, _ in shown if c in answered]
    if skipped:
        console.print(f"already answered (use --redo to ask again): {', '.join(skipped)}")
    if not todo:
        print_ok("every film shown in this session already has a self-report.")
        return 0
    return _ask(session, todo, emotions, simulate, window_size)


def _import(path, clips, emotions):
    return import_csv(path, clips, emotions)


def _ask(session, clips: list[tuple[str, str]], emotions, simulate, window_size) -> int:
    from station.elicit.display import Display, WindowClosed
    from station.elicit.runner import SimulatedParticipant

    sim = SimulatedParticipant(seed=7) if simulate else None
    display = Display(window_size, fullscreen=False)
    n = 0
    screen = None
    try:
        for i, (clip, how) in enumerate(clips, 1):
            title = f"Film {i} of {len(clips)} you watched" + (" (it was stopped part-way)" if how == PARTLY else "")
            if screen is None:
                screen = FormScreen(display, QUESTIONS, title, emotions)
            else:
                screen.reset(title)
            answers, seconds = screen.run(sim, "")
            answers = validate_answers(answers, QUESTIONS, emotions, where=f"form for {clip}")
            session.add_self_report({"clip": clip, "when": "selfreport", **answers, "seconds": round(seconds, 3),
                                     "film_shown": how,
                                     "source": "simulated participant" if sim else "station selfreport window",
                                     "simulated": sim is not None})
            n += 1
        restamp(session)
    except WindowClosed:
        raise StationError(f"the form window was closed; {n} answered form(s) are saved in {session.folder}.") from None
    finally:
        display.close()
        session.close()
    print_ok(f"{n} form(s) saved in {session.folder}")
    return n
