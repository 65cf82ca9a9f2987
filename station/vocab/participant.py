"""Participant fields: the pseudonymous id, age, sex (what a session records about a person).

The id becomes a folder name (``sessions/<id>/<NNN>/``) and appears in every trial file, so
it must be a pseudonym that is safe as a path on every system: 1-32 letters, digits, ``-`` or
``_``, starting with a letter or digit.  That also excludes surrounding blanks, control
characters and path separators; the error says which of these was found.
"""

from __future__ import annotations

import re

from station.checks import StationError

#: What a session stores per participant (``session.json`` ``participant``).
PARTICIPANT_FIELDS = ("id", "age", "sex")
SEXES = ("female", "male", "other", "undisclosed")
AGE_RANGE = (10, 120)

PARTICIPANT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_ALLOWED = ("1-32 letters, digits, '-' or '_' starting with a letter or digit "
            "(a pseudonym such as P07, never a name)")


def check_participant_id(pid: object) -> str:
    """Return ``pid`` if it is a valid pseudonymous id; raise a :class:`StationError` otherwise.

    ``fullmatch``: ``$`` would accept a trailing newline ('P01\\n' made a folder with one).
    """
    if isinstance(pid, str) and PARTICIPANT_RE.fullmatch(pid):
        return pid
    why = ""
    if not isinstance(pid, str):
        why = f" (a {type(pid).__name__}, not text)"
    elif pid != pid.strip():
        why = " (blanks around it)"
    elif not pid.isprintable():
        why = " (a control character in it)"
    elif "/" in pid or "\\" in pid:
        why = " (a path separator in it)"
    elif len(pid) > 32:
        why = f" ({len(pid)} characters)"
    raise StationError(f"participant id must be {_ALLOWED}, got {pid!r}{why}.")


def check_sex(sex: str | None) -> str | None:
    """``None`` (not asked) or one of :data:`SEXES`."""
    if sex is not None and sex not in SEXES:
        raise StationError(f"sex must be one of {', '.join(SEXES)}, got {sex!r}.")
    return sex


def check_age(age: int | None) -> int | None:
    """``None`` (not asked) or whole years in :data:`AGE_RANGE`."""
    if age is None:
        return None
    if isinstance(age, bool) or not isinstance(age, int) or not AGE_RANGE[0] <= age <= AGE_RANGE[1]:
        raise StationError(f"age must be a whole number of years between {AGE_RANGE[0]} and {AGE_RANGE[1]}, "
                           f"got {age!r}.")
    return age
