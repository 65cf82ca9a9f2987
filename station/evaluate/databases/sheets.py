"""Label spreadsheets of the published databases, found by their columns, never by file order.

A database folder often holds several ``.xlsx`` (CASME II: the coding sheet next to
``CASME2-ObjectiveClasses.xlsx``); a sheet's header may sit below title rows (SAMM v2 has a
block of notes above it) and the table may be on any worksheet (CAS(ME)^3's is named
``label``).  Column names are compared without case, spaces or punctuation, so
``OnsetFrame``, ``Onset Frame`` and ``onset_frame`` are one column.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from station.checks import StationError

#: how many rows from the top are searched for the header (SAMM v2: 13 title rows)
HEADER_SEARCH_ROWS = 40
#: how many folder levels below a database root are searched for its spreadsheets
SHEET_SEARCH_DEPTH = 2


def norm(name) -> str:
    """Column-name key: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


@dataclass
class Table:
    """One header + rows table of a spreadsheet; ``where(i)`` names a row for messages."""

    path: Path
    sheet: str
    header: list[str]  # as written
    rows: list[list]  # data rows (values; "" for empty)
    first_row: int  # 1-based spreadsheet row of rows[0]

    def column(self, *names: str) -> int | None:
        """Index of the first header that matches one of ``names`` (normalised), else None."""
        keys = [norm(h) for h in self.header]
        for name in names:
            if norm(name) in keys:
                return keys.index(norm(name))
        return None

    def where(self, i: int) -> str:
        return f"{self.path.name} (sheet {self.sheet!r}) row {self.first_row + i}"


def _worksheets(path: Path):
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many kinds for broken or foreign files
        raise StationError(f"spreadsheet {str(path)!r} cannot be read: {err}") from err
    try:
        for ws in wb.worksheets:
            yield ws.title, [["" if c is None else c for c in row] for row in ws.iter_rows(values_only=True)]
    finally:
        wb.close()


def find_tables(path: Path, required: list[tuple[str, ...]]) -> list[Table]:
    """Tables of a workbook whose header row has one name of every ``required`` alternative."""
    out = []
    for title, rows in _worksheets(path):
        for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
            keys = {norm(c) for c in row if str(c).strip()}
            if all(any(norm(n) in keys for n in alt) for alt in required):
                data = rows[i + 1:]
                out.append(Table(path, title, [str(c).strip() for c in row], data, i + 2))
                break
    return out


def spreadsheets(folder: Path, max_depth: int = SHEET_SEARCH_DEPTH) -> list[Path]:
    """``.xlsx`` files in ``folder`` and up to ``max_depth`` folders below (never the frame folders:
    CAS(ME)^3 alone has millions of frames), sorted; Office lock files (``~$``) left out."""
    out, level = [], [folder]
    for depth in range(max_depth + 1):
        nxt = []
        for d in level:
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            out += [Path(e.path) for e in entries if e.is_file() and e.name.lower().endswith(".xlsx")
                    and not e.name.startswith("~$")]
            nxt += [Path(e.path) for e in entries if e.is_dir()]
        level = nxt if depth < max_depth else []
    return sorted(out)


def find_table(folder: Path, required: list[tuple[str, ...]], what: str, exclude: Path | None = None,
               recursive: bool = True) -> Table | None:
    """The one table under ``folder`` with the required columns; an error if several qualify."""
    files = spreadsheets(folder) if recursive else sorted(folder.glob("*.xlsx"))
    files = [f for f in files if not f.name.startswith("~$") and f != exclude]
    found = [t for f in files for t in find_tables(f, required)]
    if len(found) > 1:
        names = ", ".join(f"{t.path.name} ({t.sheet})" for t in found)
        raise StationError(f"{str(folder)!r} has {len(found)} {what} tables ({names}); keep one, or move the "
                           "others out of the database folder.")
    return found[0] if found else None


def cell_text(value) -> str:
    """A cell as text: numbers without a spurious ``.0`` (Excel stores 12 as 12.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def cell_int(value) -> int | None:
    """A frame-number cell as an int; None for ``/``, blanks and text."""
    text = cell_text(value)
    return int(text) if re.fullmatch(r"-?\d+", text) else None
