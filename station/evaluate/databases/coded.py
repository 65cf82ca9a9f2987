"""CASME II and SAMM as they are shipped: a FACS coding sheet + image folders (raw and cropped).

CASME II (Yan et al. 2014, 200 fps)::

    ROOT/CASME2-coding-20140508.xlsx      Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame,
                                          Action Units, Estimated Emotion (+ unnamed empty columns)
    ROOT/CASME2-ObjectiveClasses.xlsx     Subject, Filename, Objective Class (1-7; Davison et al. 2018)
    ROOT/CASME2_RAW_selected/sub01/EP02_01f/img46.jpg        raw frames
    ROOT/Cropped/sub01/EP02_01f/reg_img46.jpg                cropped, aligned faces

SAMM (Davison et al. 2018, 200 fps)::

    ROOT/SAMM_Micro_FACS_Codes_v2.xlsx    a block of title/notes rows, then Subject ('006', text),
                                          Filename, Inducement Code, Onset Frame, Apex Frame,
                                          Offset Frame, Duration, Type, Action Units, Notes,
                                          Estimated Emotion, Objective Classes
    ROOT/SAMM/006/006_1_2/006_05562.jpg    raw frames (N = number after the last underscore)
    ROOT/SAMM_CROP/006/006_1_2/...         cropped faces (when the lab has them)

The coding sheet is the one table with Filename + onset/apex/offset columns (never "the first
sorted .xlsx"); an objective-classes table (Filename + Objective Class, no onset column) is read
when present, in its own file or as a column of the coding sheet.  One image set is read,
``images="cropped"`` (default) or ``"raw"``, for every subject: a subject without it is refused.

Fallbacks, each applied only in the case named and listed per sample in ``Database.notes``:

* apex ``/`` (or blank, or outside onset..offset): the middle frame ``(onset + offset) // 2``;
* offset ``0``, negative or blank (not coded), and offset < onset (a typo): the sample folder's last frame (the
  databases ship each sample cut to its movement, so the folder ends at the offset);
* onset blank: the folder's first frame;
* frames missing inside onset..offset: the frames present are used and the gap is listed;
* a sheet row without a folder, or with fewer than 2 frames: skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from station.checks import StationError
from station.dataset import SampleRecord
from station.evaluate.databases.base import Database, Note, SampleRef, numbered_images
from station.evaluate.databases.sheets import Table, cell_int, cell_text, find_table
from station.vocab.classes import OBJECTIVE_CLASSES, OTHERS, canonical
from station.vocab.facs import format_aus, parse_aus

IMAGE_SETS = ("cropped", "raw")


@dataclass(frozen=True)
class CodedSpec:
    fmt: str
    title: str
    fps: float
    raw_sets: tuple[str, ...]
    cropped_sets: tuple[str, ...]
    subject_dir: str  # regex of a subject folder name, group 1 = the number


#: (the station's own export, ``2d/uncropped`` + ``2d/cropped``, is CASME II-shaped: a CASME II
#: script reads it, and so does this loader -- a check that the export keeps that promise)
CASME2 = CodedSpec("casme2", "CASME II", 200.0, ("CASME2_RAW_selected", "CASME2_RAW", "CASME2-RAW", "uncropped"),
                   ("Cropped", "CASME2_Cropped", "Cropped_original"), r"sub(\d+)")
SAMM = CodedSpec("samm", "SAMM", 200.0, ("SAMM",), ("SAMM_CROP", "SAMM_cropped", "SAMM_Cropped"), r"(\d+)")

COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename", "File name"),
    "onset": ("OnsetFrame", "Onset Frame", "Onset"),
    "apex": ("ApexFrame", "Apex Frame", "Apex", "ApexF1"),
    "offset": ("OffsetFrame", "Offset Frame", "Offset"),
    "aus": ("Action Units", "AU", "AUs"),
    "emotion": ("Estimated Emotion", "Emotion"),
    "objective": ("Objective Classes", "Objective Class", "Objective class"),
}
CODING_REQUIRED = [COLUMNS["filename"], COLUMNS["onset"], COLUMNS["apex"], COLUMNS["offset"]]
OBJECTIVE_REQUIRED = [COLUMNS["filename"], COLUMNS["objective"]]


# -- AU notation and objective classes -----------------------------------------------------------


def database_aus(value, sample: str, notes: list[Note]) -> str:
    """AU cell -> the station's FACS notation (``'AU12'`` -> ``'12'``, ``'4+L10'``, ``'12A'``).

    What is not FACS notation (SAMM's ``'R14A or 17A'``) is kept as written, with a note.
    """
    text = cell_text(value)
    if not text:
        return ""
    try:
        return format_aus(parse_aus(text, f"AU of {sample}"))
    except StationError:
        notes.append(Note(sample, f"action units {text!r} are not FACS notation; kept as written"))
        return text


def objective_label(value) -> str:
    """Objective class cell (``1``, ``'I'``, ``'7.0'``) -> roman numeral; ``Others`` for other text."""
    text = canonical(value)
    if text.isdigit() and 1 <= int(text) <= len(OBJECTIVE_CLASSES):
        return OBJECTIVE_CLASSES[int(text) - 1]
    for cls in OBJECTIVE_CLASSES:
        if text == cls.lower():
            return cls
    return OTHERS if text else ""


# -- folders -------------------------------------------------------------------------------


def find_image_set(root: Path, names: tuple[str, ...]) -> Path | None:
    """The first of ``names`` (case-insensitive) in ROOT or one folder below it."""
    wanted = [n.lower() for n in names]
    if root.name.lower() in wanted:  # the image set itself was given
        return root
    candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir())
    for name in wanted:
        for parent in candidates:
            for child in sorted(parent.iterdir()):
                if child.is_dir() and child.name.lower() == name:
                    return child
    return None


def subject_folders(image_set: Path, pattern: str) -> dict[int, Path]:
    """Subject number -> subject folder directly under an image set (``sub01`` / ``006``)."""
    rx = re.compile(rf"^{pattern}$", re.IGNORECASE)
    out = {}
    for child in sorted(image_set.iterdir()):
        m = rx.match(child.name)
        if child.is_dir() and m:
            out.setdefault(int(m.group(1)), child)
    return out


def _subject_number(text: str) -> int | None:
    m = re.fullmatch(r"(?:sub)?0*(\d+)", text.strip(), re.IGNORECASE)
    return int(m.group(1)) if m else None


# -- the loader ----------------------------------------------------------------------------


def choose_image_set(root: Path, spec: CodedSpec, images: str | None) -> tuple[str, Path]:
    images = images or "cropped"
    if images not in IMAGE_SETS:
        raise StationError(f"--images must be one of {', '.join(IMAGE_SETS)}, got {images!r}.")
    names = spec.cropped_sets if images == "cropped" else spec.raw_sets
    found = find_image_set(root, names)
    if found is None:
        other = "raw" if images == "cropped" else "cropped"
        has_other = find_image_set(root, spec.raw_sets if other == "raw" else spec.cropped_sets)
        hint = f"; it has the {other} set {has_other.name!r}: pass --images {other}" if has_other else ""
        raise StationError(f"{spec.title} database {str(root)!r} has no {images} image set (a folder named "
                           f"{' or '.join(names)}){hint}.")
    return images, found


def _objective_table(root: Path, coding: Table) -> tuple[dict[tuple[int | str, str], str], str]:
    """(subject, filename) -> objective class, and where they come from ('' when there are none)."""
    col = coding.column(*COLUMNS["objective"])
    table, source = (coding, f"column {coding.header[col]!r} of {coding.path.name}") if col is not None else (None, "")
    if table is None:
        table = find_table(root, OBJECTIVE_REQUIRED, "objective-classes", exclude=coding.path)
        if table is None:
            return {}, ""
        col = table.column(*COLUMNS["objective"])
        source = table.path.name
    sub_col, file_col = table.column(*COLUMNS["subject"]), table.column(*COLUMNS["filename"])
    out = {}
    for row in table.rows:
        if len(row) <= max(col, file_col):
            continue
        filename = cell_text(row[file_col])
        if not filename:
            continue
        subject = cell_text(row[sub_col]) if sub_col is not None and sub_col < len(row) else ""
        key = _subject_number(subject) if _subject_number(subject) is not None else subject
        out[(key, filename)] = objective_label(row[col])
    return out, source


def load_coded(root: Path, spec: CodedSpec, images: str | None = None) -> Database:
    coding = find_table(root, CODING_REQUIRED, "coding-sheet")
    if coding is None:
        raise StationError(f"{spec.title} database {str(root)!r} needs its coding sheet: an .xlsx with the "
                           f"columns Filename, {COLUMNS['onset'][0]}, {COLUMNS['apex'][0]}, "
                           f"{COLUMNS['offset'][0]} (any case, spaces, title rows above).")
    col = {k: coding.column(*names) for k, names in COLUMNS.items()}
    for key in ("subject", "emotion"):
        if col[key] is None:
            raise StationError(f"coding sheet {str(coding.path)!r} lacks a {' / '.join(COLUMNS[key])} column; "
                               f"it has {', '.join(h for h in coding.header if h)}.")
    image_set, set_dir = choose_image_set(root, spec, images)
    subjects = subject_folders(set_dir, spec.subject_dir)
    by_name = {c.name: c for c in set_dir.iterdir() if c.is_dir()}  # ids spelled like the folder (s01)

    def folder_of(text: str) -> Path | None:
        return by_name.get(text) or subjects.get(_subject_number(text))
    objective, objective_source = _objective_table(root, coding)
    rows = [(i, row) for i, row in enumerate(coding.rows)
            if len(row) > col["filename"] and cell_text(row[col["filename"]])]
    # refuse a set missing a whole subject: never mix raw and cropped, never drop a subject silently
    missing = sorted({cell_text(row[col["subject"]]) for _, row in rows
                      if folder_of(cell_text(row[col["subject"]])) is None})
    if missing:
        raise StationError(f"{spec.title} database {str(root)!r}: the {image_set} image set {set_dir.name!r} has no "
                           f"folder for subject(s) {', '.join(missing)} of {coding.path.name}; the station does not "
                           "mix image sets or drop subjects: complete the set or choose the other with --images.")
    refs: list[SampleRef] = []
    notes: list[Note] = []
    for i, row in rows:
        row = list(row) + [""] * (len(coding.header) - len(row))
        number = _subject_number(cell_text(row[col["subject"]]))
        folder = folder_of(cell_text(row[col["subject"]]))
        subject = folder.name  # as the database spells it: sub01, 006
        filename = cell_text(row[col["filename"]])
        name = f"{subject}/{filename}"
        sample_dir = folder / filename
        if not sample_dir.is_dir():
            notes.append(Note(name, f"{coding.where(i)}: no folder {str(sample_dir)!r}; skipped"))
            continue
        frames = numbered_images(sample_dir)
        if len(frames) < 2:
            notes.append(Note(name, f"folder {str(sample_dir)!r} has {len(frames)} image(s); skipped"))
            continue
        record_notes: list[Note] = []
        span = key_frames(row, col, list(frames), name, record_notes)
        if span is None:
            notes.extend(record_notes)
            continue
        onset, apex, offset = span
        chosen = [n for n in frames if onset <= n <= offset]
        absent = [n for n in range(onset, offset + 1) if n not in frames]
        if absent:
            record_notes.append(Note(name, f"{len(absent)} frame(s) missing in {onset}..{offset} "
                                           f"({_ranges(absent)}); the {len(chosen)} present are used"))
        if len(chosen) < 2:
            record_notes.append(Note(name, f"fewer than 2 frames in {onset}..{offset}; skipped"))
            notes.extend(record_notes)
            continue
        emotion = cell_text(row[col["emotion"]])
        obj = objective.get((number, filename), objective.get((subject, filename), ""))
        if objective and not obj:
            record_notes.append(Note(name, "no objective class in " + objective_source))
        aus = database_aus(row[col["aus"]], name, record_notes) if col["aus"] is not None else ""
        record = SampleRecord(subject=subject, sample=filename, onset=onset, apex=apex, offset=offset, aus=aus,
                              objective_class=obj, nonobjective_class=emotion)
        refs.append(SampleRef(spec.fmt, str(root), record, tuple(str(frames[n]) for n in chosen), fps=spec.fps))
        notes.extend(record_notes)
    if not refs:
        raise StationError(f"{spec.title} database {str(root)!r}: none of the sheet's samples was found on disk "
                           f"({len(notes)} note(s); first: {notes[0] if notes else 'no rows'}).")
    sources = {"nonobjective": f"estimated emotion ({coding.path.name})",
               "3class": "positive / negative / surprise from the estimated emotion"}
    if (root / "micro-expression.csv").exists():
        notes.insert(0, Note("", "a station export read as CASME II (2D only, frame times at CASME II's 200 fps); "
                                 "--format station reads its recorded times and 3D"))
    if objective:
        sources["objective"] = f"objective class I-VII ({objective_source})"
    else:
        notes.insert(0, Note("", f"no objective classes (no {' / '.join(COLUMNS['objective'])} column or file): "
                                 "the objective label set is not available"))
    return Database(spec.fmt, root, refs, has_3d=False, three_class_field="nonobjective_class", notes=notes,
                    label_sources=sources, images=f"{image_set} ({set_dir.name})", fps=spec.fps, title=spec.title)


def key_frames(row: list, col: dict, numbers: list[int], name: str, notes: list[Note]) -> tuple[int, int, int] | None:
    """(onset, apex, offset) of a sheet row, with the documented fallbacks (noted)."""
    first, last = numbers[0], numbers[-1]
    onset_cell, apex_cell, offset_cell = (cell_text(row[col[k]]) for k in ("onset", "apex", "offset"))
    onset, apex, offset = cell_int(onset_cell), cell_int(apex_cell), cell_int(offset_cell)
    if onset is None or onset <= 0:
        notes.append(Note(name, f"onset {onset_cell!r} is not a frame number: the folder's first frame {first} used"))
        onset = first
    if offset is None or offset <= 0:
        notes.append(Note(name, f"offset {offset_cell!r} (not coded): the folder's last frame {last} used"))
        offset = last
    elif offset < onset:
        if last <= onset:
            notes.append(Note(name, f"offset {offset} < onset {onset} and the folder ends at {last}; skipped"))
            return None
        notes.append(Note(name, f"offset {offset} < onset {onset} (a typo in the sheet): the folder's last "
                                f"frame {last} used"))
        offset = last
    if apex is None:
        mid = (onset + offset) // 2
        notes.append(Note(name, f"apex {apex_cell!r} (not coded): the middle frame {mid} used"))
        apex = mid
    elif not onset <= apex <= offset:
        mid = (onset + offset) // 2
        notes.append(Note(name, f"apex {apex} outside onset..offset {onset}..{offset}: the middle frame {mid} used"))
        apex = mid
    return onset, apex, offset


def _ranges(numbers: list[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``'3-5, 9'`` (at most 6 runs shown)."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    shown = [f"{a}-{b}" if a != b else f"{a}" for a, b in runs[:6]]
    return ", ".join(shown) + (", ..." if len(runs) > 6 else "")


__all__ = ["CASME2", "SAMM", "IMAGE_SETS", "load_coded", "key_frames", "database_aus", "objective_label"]
