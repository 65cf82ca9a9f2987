"""What a session really holds: per planned clip, was it recorded whole and answered?

A ``complete`` status is a promise to the lab that the participant's data are whole, so it
is computed here, in one place, from the session's journal (``station.session``) and used
by ``station run`` (its status and exit code), ``station inspect SESSION_DIR`` and
``station selfreport``.  A clip is *complete* only when

* one attempt's trial file was finalised with no early stop (disk, camera, recorder),
* its film showed at least :data:`FILM_SHOWN_MIN` of the film's frames,
* its trial file passes the recorder's verdict (:func:`station.record.inspect.trial_verdict`,
  the same rule as ``station record`` and ``station inspect --check``: frames missing beyond
  ``schema.MAX_MISSING_FRACTION``, effective fps, repeated rows, clock changes, stalls, an
  early stop, a file not closed cleanly), stored with the trial as ``recorder_verdict``,
* and every form the protocol asks about it was answered.

Everything else is ``incomplete`` with the reasons, or ``not shown``.  A film counts as
*shown* (and so is offered by ``station selfreport``) as soon as its first frame was on the
screen; ``partly`` when it was cut off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from station.record import schema
from station.vocab.markers import Marker

#: A film that showed fewer of its frames than this is not a whole stimulus.
FILM_SHOWN_MIN = 0.98
#: Where a trial's recorder verdict is stored in the session's trial entry (journal and session.json).
RECORDER_VERDICT = "recorder_verdict"

COMPLETE, INCOMPLETE, NOT_SHOWN = "complete", "incomplete", "not shown"
WHOLE, PARTLY, NO = "whole", "partly", "no"
#: Self-report sources that answer every question of a film (a later `station selfreport`).
ANSWERS_ALL = ("selfreport",)


@dataclass
class ClipVerdict:
    """The truth about one planned clip."""

    clip: str
    outcome: str  # complete | incomplete | not shown
    shown: str  # whole | partly | no
    reasons: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    forms_missing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"clip": self.clip, "outcome": self.outcome, "shown": self.shown, "reasons": self.reasons,
                "files": self.files, "forms_missing": self.forms_missing}


def film_fraction(trial: dict[str, Any]) -> float | None:
    """Share of the film's frames that were on screen, None when not measured."""
    movie = trial.get("movie") or {}
    expected = movie.get("frames_expected") or 0
    return (movie.get("frames_shown", 0) / expected) if expected else None


def attempt_problems(trial: dict[str, Any]) -> list[str]:
    """Why one recorded attempt is not a whole trial ([] when it is)."""
    problems = []
    if trial.get("outcome") != "complete":
        problems.append(f"{trial.get('outcome')}: {trial.get('stop_reason') or 'stopped'}")
    cam = trial.get("camera") or {}
    if trial.get("file") is None:
        problems.append("no trial file")
    elif not trial.get("complete_file"):
        problems.append(f"trial file {trial['file']} not finalised")
    if cam.get("stop_reason") and cam["stop_reason"] not in (trial.get("stop_reason") or ""):
        problems.append(f"recording stopped early: {cam['stop_reason']}")
    problems += recorder_problems(trial)
    frac = film_fraction(trial)
    movie = trial.get("movie") or {}
    if frac is None:
        if trial.get("outcome") == "complete":
            problems.append("film frames not measured")
    elif frac < FILM_SHOWN_MIN:
        problems.append(f"film showed {movie.get('frames_shown', 0)} of {movie.get('frames_expected')} frames "
                        f"({100 * frac:.1f} % < {100 * FILM_SHOWN_MIN:g} %)")
    return problems


def recorder_problems(trial: dict[str, Any]) -> list[str]:
    """The recorder's own verdict on the trial file (one rule for record, run and inspect).

    Before the verdict is stamped (a journal from an older station, a session killed before
    its end) the journal's counters are judged by the same threshold,
    ``schema.MAX_MISSING_FRACTION``, so no second rule exists.
    """
    verdict = trial.get(RECORDER_VERDICT)
    if verdict is not None:
        return [] if verdict.get("ok") else [f"trial file: {r}" for r in verdict.get("reasons", [])] or \
            ["trial file: the recorder's verdict failed"]
    if trial.get("file") is None:
        return []
    cam = trial.get("camera") or {}
    written, dropped = cam.get("frames_written", 0), cam.get("dropped", 0)
    if written + dropped and dropped / (written + dropped) > schema.MAX_MISSING_FRACTION:
        return [f"camera missed {dropped} of {written + dropped} frames "
                f"(more than {100 * schema.MAX_MISSING_FRACTION:g} %; recorder verdict not yet read from the file)"]
    return []


def file_verdict(folder: str | Path, name: str, read_chunks: bool = False) -> dict[str, Any]:
    """The recorder's verdict on ``folder/name`` as stored with the trial: ok, reasons, warnings.

    ``read_chunks=False`` by default: reading the small tables takes milliseconds, while
    decompressing every frame costs about 0.1 s per recorded second at 848x480@60
    (``station inspect --check`` does that, docs/elicit.md).
    """
    from station.record.inspect import trial_verdict

    path = Path(folder) / name
    if not path.exists():
        return {"ok": False, "reasons": [f"{name} is not in {folder}"], "warnings": [], "read_chunks": read_chunks}
    v = trial_verdict(path, read_chunks=read_chunks)
    return {"ok": v.ok, "reasons": list(v.reasons), "warnings": list(v.warnings), "read_chunks": read_chunks}


def stamp_recorder_verdicts(session, read_chunks: bool = False) -> int:
    """Give every trial entry with a file and no verdict yet its recorder verdict; how many were stamped.

    The trial files are closed by then (end of trial, end of session, or after a crash).
    """
    stamped = 0
    for trial in session.data.get("trials", []):
        if trial.get("file") and RECORDER_VERDICT not in trial:
            trial[RECORDER_VERDICT] = file_verdict(session.folder, trial["file"], read_chunks)
            stamped += 1
    return stamped


def required_forms(data: dict[str, Any]) -> list[str]:
    """Which forms the protocol asks per film: 'after_clip' and/or 'end'."""
    sr = (data.get("protocol") or {}).get("as_written", {}).get("self_report", {}) or {}
    after = sr.get("after_each_clip", ["emotion", "intensity", "movements"])
    return (["after_clip"] if after else []) + (["end"] if sr.get("at_end") else [])


def answered_forms(data: dict[str, Any], clip: str) -> set[str]:
    whens = {r.get("when") for r in data.get("self_reports", []) if r.get("clip") == clip}
    if whens & set(ANSWERS_ALL):
        whens |= {"after_clip", "end"}
    return whens


def clip_shown(data: dict[str, Any], clip: str) -> str:
    """whole / partly / no, from the trials and, after a crash, from the journal's events."""
    trials = [t for t in data.get("trials", []) if t.get("clip") == clip]
    if any((film_fraction(t) or 0) >= FILM_SHOWN_MIN for t in trials):
        return WHOLE
    events = [e for e in data.get("events", []) if e.get("clip") == clip]
    if any(e["event"] == Marker.CLIP_FIRST_FRAME for e in events) or any(
            (t.get("movie") or {}).get("frames_shown") for t in trials):
        return PARTLY
    return NO


def clip_verdict(data: dict[str, Any], clip: str) -> ClipVerdict:
    trials = [t for t in data.get("trials", []) if t.get("clip") == clip]
    shown = clip_shown(data, clip)
    files = [t["file"] for t in trials if t.get("file")]
    missing = [f for f in required_forms(data) if f not in answered_forms(data, clip)]
    if not trials:
        started = [e for e in data.get("events", []) if e.get("clip") == clip and e["event"] == Marker.RECORDING_START]
        if shown == NO and not started:
            return ClipVerdict(clip, NOT_SHOWN, NO, ["not reached"], files, missing)
        reasons = ["session ended during this clip; no trial summary was written (hard stop)"]
        files += [e.get("detail", "") for e in started if e.get("detail")]
        return ClipVerdict(clip, INCOMPLETE, shown, reasons, files, missing)
    problems = [attempt_problems(t) for t in trials]
    reasons = [] if any(not p for p in problems) else problems[-1]
    if missing:
        reasons = reasons + [f"form not answered: {', '.join(missing)}"]
    return ClipVerdict(clip, INCOMPLETE if reasons else COMPLETE, shown, reasons, files, missing)


def session_verdict(data: dict[str, Any]) -> tuple[str, list[ClipVerdict]]:
    """('complete' | 'incomplete', one verdict per planned clip in the participant's order)."""
    order = list(data.get("order") or dict.fromkeys(t.get("clip") for t in data.get("trials", [])))
    verdicts = [clip_verdict(data, c) for c in order]
    whole = bool(verdicts) and all(v.outcome == COMPLETE for v in verdicts)
    return (COMPLETE if whole else INCOMPLETE), verdicts


def shown_clips(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(clip, whole|partly) for every film that reached the screen, in the order shown."""
    order = list(data.get("order") or [])
    seen = [e["clip"] for e in data.get("events", []) if e.get("event") == Marker.CLIP_FIRST_FRAME]
    seen += [t.get("clip") for t in data.get("trials", []) if (t.get("movie") or {}).get("frames_shown")]
    ordered = list(dict.fromkeys(seen))
    ordered.sort(key=lambda c: order.index(c) if c in order else len(order))
    return [(c, clip_shown(data, c)) for c in ordered]


#: Statuses a session has while it runs; found in a journal, they mean the process died.
RUNNING_STATUSES = ("created", "starting", "running")


def restamp(session) -> tuple[str, list[ClipVerdict]]:
    """Recompute the verdict from the journal and store it (after a crash or new self-reports).

    A session whose journal still says it was running ended by a hard stop (SIGKILL, power
    cut): its stop reason says so.
    """
    stamp_recorder_verdicts(session)
    status, verdicts = session_verdict(session.data)
    fields: dict[str, Any] = {"status": status, "trials": session.data["trials"], "clips": [v.as_dict() for v in verdicts]}
    if session.data.get("status") in RUNNING_STATUSES:
        fields["stop_reason"] = ("hard stop: the session process ended without finalising "
                                 f"(journal status was {session.data.get('status')!r})")
    session.update(**fields)
    return status, verdicts
