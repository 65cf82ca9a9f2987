"""The keys of the coding tool and the viewer, in one table for the windows, the help overlay,
``--help`` and key scripts.

No binding depends on Shift: a HighGUI build that reported Shift and a plain ``d`` made the
old tool's ``D`` a one-frame step.  Ten-frame and one-second jumps have keys of their own
(up/down, page up/down), and the only modifier used is Ctrl for undo, which Qt always reports.
Kept free of Qt so ``station --help`` does not load the toolkit.
"""

from __future__ import annotations

#: (keys, action, description).  Key names are Qt's (``Key_<name>``) or single characters.
#: Moving through a trial: the same keys in the coding tool and the viewer.
NAVIGATION_KEYS: list[tuple[tuple[str, ...], str, str]] = [
    (("Right", "d"), "step+1", "next frame"),
    (("Left", "a"), "step-1", "previous frame"),
    (("Up", "w"), "step+10", "10 frames forward"),
    (("Down", "s"), "step-10", "10 frames back"),
    (("PgDown",), "second+1", "1 s forward"),
    (("PgUp",), "second-1", "1 s back"),
    (("Home", "End"), "ends", "first / last frame"),
    (("Space",), "play", "play / pause at the rate shown"),
    (("1", "2", "3", "4", "5"), "rate", "rate x1, x1/2, x1/4, x1/8, x1/16"),
]

CODING_KEYS: list[tuple[tuple[str, ...], str, str]] = NAVIGATION_KEYS + [
    (("o", "k", "f"), "mark", "mark onset / apex / offset at this frame"),
    (("n", "p"), "candidate", "next / previous spotted candidate"),
    (("c",), "take", "take onset/apex/offset from the candidate under the cursor"),
    (("r",), "spot", "run the spotter on this trial now (score curve and candidates)"),
    (("u", "Tab"), "aus", "type the AUs (FACS: 1+2, R12+25, L14, 4+7C); checked as you type"),
    (("t",), "notes", "type a note"),
    (("Return",), "save", "save the movement (or the edit of the selected one)"),
    (("]", "["), "select", "select the next / previous saved movement (to edit it)"),
    (("x", "Delete"), "delete", "delete the selected movement"),
    (("Ctrl+Z",), "undo", "undo the last save, edit or delete"),
    (("Escape",), "cancel", "leave the text field; then clear the marks and the selection"),
    (("z",), "zoom", "zoom on the face (from the landmarks)"),
    (("g",), "diff", "difference image against the onset frame"),
    (("v",), "depth", "show / hide the depth view"),
    (("=", "-"), "zoom-timeline", "zoom the timeline in / out around the cursor (or the mouse wheel)"),
    ((".", ","), "trial", "next / previous trial (station code with several trials or a folder)"),
    (("h", "F1"), "help", "show / hide this help"),
    (("Ctrl+Q",), "quit", "quit (everything is already saved)"),
]

VIEWER_KEYS: list[tuple[tuple[str, ...], str, str]] = NAVIGATION_KEYS + [
    (("m", "b"), "marker", "next / previous marker or dropped frame"),
    (("c",), "cloud", "point cloud of this frame in an open3d window"),
    (("[", "]"), "range", "set the start / end of the export range"),
    (("e",), "export", "export the range to MP4 (beside the trial)"),
    (("v",), "depth", "show / hide the depth view"),
    (("=", "-"), "zoom-timeline", "zoom the timeline in / out around the cursor (or the mouse wheel)"),
    (("h", "F1"), "help", "show / hide this help"),
    (("Ctrl+Q",), "quit", "quit"),
]

RATES = {"1": 1.0, "2": 0.5, "3": 0.25, "4": 0.125, "5": 0.0625}
RATE_TEXT = {1.0: "x1", 0.5: "x1/2", 0.25: "x1/4", 0.125: "x1/8", 0.0625: "x1/16"}


def parse_rate(text: str | float) -> float:
    """``'1/4'`` -> 0.25; only the rates coders pick from (1, 1/2, 1/4, 1/8, 1/16)."""
    from station.checks import StationError

    try:
        value = float(eval(str(text), {"__builtins__": {}})) if "/" in str(text) else float(text)  # noqa: S307
    except Exception as err:  # noqa: BLE001
        raise StationError(f"rate {text!r} is not a number; use 1, 1/2, 1/4, 1/8 or 1/16.") from err
    if value not in RATE_TEXT:
        raise StationError(f"rate {text!r} is not offered; use 1, 1/2, 1/4, 1/8 or 1/16.")
    return value


def key_table(table) -> str:
    """The key table as plain text (``--help``)."""
    return "\n".join(f"  {' / '.join(keys):<22} {text}" for keys, _, text in table)


def key_html(table) -> str:
    """The key table as HTML (the help overlay)."""
    rows = "".join(f"<tr><td><b>{' / '.join(keys)}</b>&nbsp;&nbsp;</td><td>{text}</td></tr>" for keys, _, text in table)
    return f"<table cellspacing=2>{rows}</table>"
