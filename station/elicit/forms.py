"""Self-report forms: main emotion felt, its intensity (1-5), free text about facial movements.

Section 3.2 of the paper: participants pick *one* main emotion per film and rate its
intensity from 1 (weakest) to 5 (strongest); after all films they describe the facial
movements they made, which later helps the coders.  Each answered form is written to
session.json at once, so a session that stops half-way keeps every answer given.  Paper
forms can be typed into a CSV and imported (:func:`import_csv`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from station.checks import StationError
from station.elicit.protocol import QUESTIONS
from station.fileio import read_table
from station.vocab.classes import REPORT_EMOTIONS

PROMPTS = {
    "emotion": "Which emotion did you mainly feel during this film? (choose one)",
    "intensity": "How strong was it?  1 = weakest, 5 = strongest",
    "movements": "Describe any facial movements you noticed making, or felt you suppressed (optional):",
}


def validate_answers(answers: dict[str, Any], questions: tuple[str, ...], emotions=REPORT_EMOTIONS,
                     where: str = "self-report") -> dict[str, Any]:
    """Check one form's answers; errors name the form and field."""
    out: dict[str, Any] = {}
    for q in questions:
        if q not in QUESTIONS:
            raise StationError(f"{where}: unknown question {q!r}; allowed: {', '.join(QUESTIONS)}.")
        value = answers.get(q)
        if q == "emotion":
            if value not in emotions:
                raise StationError(f"{where}: emotion must be one of {', '.join(emotions)}, got {value!r}.")
        elif q == "intensity":
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise StationError(f"{where}: intensity must be a whole number 1-5, got {value!r}.") from None
            if not 1 <= value <= 5:
                raise StationError(f"{where}: intensity must be between 1 and 5, got {value}.")
        else:
            value = "" if value is None else str(value).strip()
        out[q] = value
    return out


class FormScreen:
    """One PsychoPy form in the window: radio slider, rating slider, text box, Done button."""

    def __init__(self, display, questions: tuple[str, ...], title: str, emotions=REPORT_EMOTIONS):
        from psychopy import event, visual

        win = display.win
        self.display, self.questions, self.emotions = display, questions, emotions
        wide = min(1.2, 0.9 * win.size[0] / win.size[1])  # widget width that fits a 4:3 window too
        self.mouse = event.Mouse(win=win)
        self.title = visual.TextStim(win, text=title, pos=(0, 0.42), height=0.035, wrapWidth=wide + 0.1, units="height")
        self.stims: list = [self.title]
        self.emotion = self.intensity = self.text = None
        y = 0.30
        if "emotion" in questions:
            self.stims.append(visual.TextStim(win, PROMPTS["emotion"], pos=(0, y), height=0.028, wrapWidth=wide + 0.1, units="height"))
            self.emotion = visual.Slider(win, ticks=list(range(1, len(emotions) + 1)), labels=list(emotions),
                                         granularity=1, style="radio", size=(wide, 0.03), pos=(0, y - 0.08),
                                         labelHeight=0.022, units="height")
            self.stims.append(self.emotion)
            y -= 0.2
        if "intensity" in questions:
            self.stims.append(visual.TextStim(win, PROMPTS["intensity"], pos=(0, y), height=0.028, wrapWidth=wide + 0.1, units="height"))
            self.intensity = visual.Slider(win, ticks=[1, 2, 3, 4, 5], labels=["1", "2", "3", "4", "5"],
                                           granularity=1, style="rating", size=(0.7, 0.03), pos=(0, y - 0.08),
                                           labelHeight=0.024, units="height")
            self.stims.append(self.intensity)
            y -= 0.2
        if "movements" in questions:
            self.stims.append(visual.TextStim(win, PROMPTS["movements"], pos=(0, y), height=0.026, wrapWidth=wide + 0.1, units="height"))
            self.text = visual.TextBox2(win, text="", editable=True, size=(wide, 0.14), pos=(0, y - 0.1),
                                        letterHeight=0.024, color="white", fillColor=(-0.7, -0.7, -0.7),
                                        borderColor="white", units="height")
            self.stims.append(self.text)
        self.done = visual.ButtonStim(win, text="Done", pos=(0, -0.44), size=(0.18, 0.06), letterHeight=0.03,
                                      units="height", fillColor="darkgreen")
        self.hint = visual.TextStim(win, "", pos=(0.45, -0.44), height=0.02, color="orange", units="height")

    def reset(self, title: str) -> None:
        """Clear the answers for the next form (building widgets takes ~1 s, so they are reused)."""
        self.title.text = title
        self.hint.text = ""
        for slider in (self.emotion, self.intensity):
            if slider is not None:
                slider.reset()
        if self.text is not None:
            self.text.text = ""

    def answers(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.emotion is not None:
            r = self.emotion.getRating()
            # a categorical Slider reports the label itself
            out["emotion"] = None if r is None else (self.emotions[int(r)] if isinstance(r, (int, float)) else str(r))
        if self.intensity is not None:
            r = self.intensity.getRating()
            out["intensity"] = None if r is None else int(r)
        if self.text is not None:
            out["movements"] = self.text.text
        return out

    def complete(self) -> bool:
        a = self.answers()
        return a.get("emotion", "") is not None and a.get("intensity", 0) is not None

    def set_answers(self, answers: dict[str, Any]) -> None:
        """Fill the widgets (simulated participant) so the same read-back path is used."""
        if self.emotion is not None and "emotion" in answers:
            self.emotion.rating = self.emotions.index(answers["emotion"])  # categorical: 0-based index
        if self.intensity is not None and "intensity" in answers:
            self.intensity.rating = int(answers["intensity"])
        if self.text is not None and "movements" in answers:
            self.text.text = answers["movements"]

    def run(self, simulated=None, clip_target: str = "") -> tuple[dict[str, Any], float]:
        """Show the form until Done is clicked with every required answer; returns (answers, seconds)."""
        t0 = time.perf_counter()
        self.mouse.clickReset()
        filled = False
        while True:
            for stim in self.stims:
                stim.draw()
            self.done.draw()
            self.hint.draw()
            self.display.flip()
            if simulated is not None and not filled and time.perf_counter() - t0 > simulated.form_delay:
                self.set_answers(simulated.answer_form(self.questions, self.emotions, clip_target))
                filled = True
            clicked = self.mouse.isPressedIn(self.done) if simulated is None else filled
            if clicked:
                if self.complete():
                    break
                self.hint.text = "Please answer every question."
        return self.answers(), time.perf_counter() - t0


CSV_COLUMNS = ("clip", "emotion", "intensity", "movements")


def import_csv(path: str | Path, clips: list[str], emotions=REPORT_EMOTIONS) -> list[dict[str, Any]]:
    """Read paper forms typed into a CSV: header ``clip,emotion,intensity,movements``.

    ``clip`` is a clip id of the session, or ``end`` for the end-of-session form.  Errors name
    the file, line and column.  Blank emotion/intensity cells are allowed (question not asked).
    """
    path = Path(path)
    if not path.exists():
        raise StationError(f"self-report CSV {str(path)!r} does not exist.")
    # any encoding / separator a spreadsheet saves; unknown columns refused (typos must not vanish)
    table = read_table(path, required=("clip",), optional=CSV_COLUMNS[1:] + ("when",), what="self-report CSV")
    reports = []
    for row in table:
        clip = row.get("clip", "")
        if clip != "end" and clip not in clips:
            raise StationError(f"{path}:{row.line}: column clip: {clip!r} is not a clip of this session "
                               f"({', '.join(clips)}) nor 'end'.")
        questions = tuple(q for q in QUESTIONS if row.get(q, ""))
        answers = validate_answers({q: row.get(q, "") for q in questions}, questions, emotions,
                                   where=f"{path}:{row.line}")
        reports.append({"clip": "" if clip == "end" else clip, "when": "end" if clip == "end" else "after_clip",
                        **answers, "source": f"paper form via {path.name}", "simulated": False})
    if not reports:
        raise StationError(f"{path}: no rows after the header.")
    return reports
