"""FACS action-unit notation: parse what a coder types, format it one canonical way.

Coders write AU combinations the way the FACS manual and CASME II do: ``1+2``, ``R12+25``,
``L14``, ``4+L10``, ``4+7C`` / ``12A`` (intensity A-E), optionally with an ``AU`` prefix
(``AU12``, ``AU1+AU2``); databases also store plain numbers (``12``, ``12.0`` from a
spreadsheet) and the synthetic generator lists of ints.  One parser for the coding tool, the
reliability check, the class rules and the database loaders means a typo is caught where it
is typed, not three steps later as an ``Others`` label.

Side and intensity are kept as data (:attr:`ActionUnit.side`, :attr:`ActionUnit.intensity`,
:attr:`ActionUnit.level`), never as parts of a string to be re-parsed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from station.checks import StationError

#: AU numbers the FACS manual (2002) defines: action units, head and eye positions, visibility codes.
KNOWN_AUS = frozenset(
    [1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
     29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46,
     51, 52, 53, 54, 55, 56, 57, 58, 61, 62, 63, 64, 65, 66, 69, 70, 71, 72, 73, 74]
)

#: AUs the paper does not code (section 3.4): blinks (43 eyes closed, 45 blink) and eye rolls
#: (61-64 eyes turn left/right/up/down).  Only their coding is dropped; the sample is kept.
UNCODED_AUS = frozenset([43, 45, 61, 62, 63, 64])

#: Laterality letters kept as a side; ``B`` (bilateral) and ``U`` (unspecified) mean no side.
SIDES = ("L", "R")
#: FACS intensity letters, trace (A) to maximum (E).
INTENSITIES = ("A", "B", "C", "D", "E")

_TOKEN = re.compile(r"^(?:AU)?([LRBU]?)(?:AU)?(\d{1,2})([A-E]?)$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class ActionUnit:
    """One action unit as coded: number, side (``''``, ``'L'``, ``'R'``) and intensity (``''``, A-E)."""

    number: int
    side: str = ""
    intensity: str = ""

    @property
    def key(self) -> tuple[int, str]:
        """What two coders must both write to agree on this AU (intensity is not compared)."""
        return (self.number, self.side)

    @property
    def level(self) -> int | None:
        """Intensity as a number, A=1 .. E=5 (``None`` when not coded)."""
        return INTENSITIES.index(self.intensity) + 1 if self.intensity else None

    def __str__(self) -> str:
        return f"{self.side}{self.number}{self.intensity}"


def parse_aus(text: str | int | Iterable[int] | None, where: str = "AU field") -> tuple[ActionUnit, ...]:
    """Parse ``'1+2+R12B'`` into action units; raise a :class:`StationError` naming ``where``.

    An empty text (or ``-``) means "no AU coded".  ``B`` before the number (bilateral) and ``U``
    (unspecified side) count as no side.  A plain number (``12``, ``12.0``) or a list of numbers
    (``[6, 12]``) is accepted too.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        text = str(int(text)) if float(text).is_integer() else str(text)
    elif text is not None and not isinstance(text, str):
        text = "+".join(str(int(a)) for a in text)
    text = (text or "").strip()
    if re.fullmatch(r"\d{1,2}\.0", text):  # a spreadsheet number
        text = text[:-2]
    if text in ("", "-", "none", "None"):
        return ()
    units: list[ActionUnit] = []
    for raw in re.split(r"\s*[+,;]\s*", text):
        match = _TOKEN.match(raw.strip())
        if not match:
            raise StationError(f"{where}: {raw!r} in {text!r} is not FACS notation; write AUs joined by '+', "
                               "e.g. '1+2', 'R12+25', 'L14', '4+7C' (side L/R before, intensity A-E after).")
        side, number, intensity = match.group(1).upper(), int(match.group(2)), match.group(3).upper()
        if number not in KNOWN_AUS:
            raise StationError(f"{where}: AU {number} in {text!r} is not a FACS action unit "
                               "(FACS codes are 1-2, 4-46, 51-58, 61-66, 69-74).")
        units.append(ActionUnit(number, side if side in ("L", "R") else "", intensity))
    return tuple(sorted(set(units), key=lambda u: (u.number, u.side)))


def format_aus(units) -> str:
    """Canonical text: sorted by AU number, joined by ``+`` (``''`` for none)."""
    return "+".join(str(u) for u in sorted(units, key=lambda u: (u.number, u.side)))


def normalise(text: str, where: str = "AU field") -> str:
    """Parse and re-format, so equal codings compare equal as text."""
    return format_aus(parse_aus(text, where))


def coded_only(units) -> tuple[ActionUnit, ...]:
    """Drop the AUs the paper does not code (blinks, eye rolls)."""
    return tuple(u for u in units if u.number not in UNCODED_AUS)


def au_keys(text: str, where: str = "AU field") -> set[tuple[int, str]]:
    """The set of (number, side) a coder scored, blinks and eye rolls excluded."""
    return {u.key for u in coded_only(parse_aus(text, where))}
