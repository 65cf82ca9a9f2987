"""One entry point for every database ``station evaluate`` reads: detection and loading.

The layouts and their quirks live in :mod:`station.evaluate.databases` (one module per
database); this module picks the loader (``--format``, or detected from the folder) and keeps
the names other modules import (:class:`Database`, :class:`SampleRef`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from station.checks import StationError
from station.dataset import INDEX_NAME, read_index
from station.evaluate.databases.base import Camera, Database, Note, SampleRef
from station.evaluate.databases.sheets import spreadsheets

FORMATS = ("station", "casme2", "samm", "smic", "casme3")
FORMAT_TITLES = {"station": "station (DSME-style export)", "casme2": "CASME II", "samm": "SAMM", "smic": "SMIC",
                 "casme3": "CAS(ME)^3 Part A"}


@dataclass(frozen=True)
class LoadOptions:
    """Database options of the command line (``--images``, ``--smic-set``, ``--depth-intrinsics``)."""

    images: str | None = None  # "raw" | "cropped"; None: the format's default (cropped; raw for casme3)
    smic_set: str = "hs"
    depth_intrinsics: tuple[float, float, float, float] | None = None
    depth_scale: float | None = None


def _names_below(root: Path, depth: int = 2) -> set[str]:
    names: set[str] = set()
    level = [root]
    for _ in range(depth):
        nxt = []
        for folder in level:
            try:
                kids = [p for p in folder.iterdir() if p.is_dir()]
            except OSError:
                continue
            names.update(p.name.lower() for p in kids)
            nxt.extend(kids)
        level = nxt
    return names


def detect_format(path: str | Path) -> str:
    """The database layout of a folder, from the files and folders it is shipped with."""
    root = Path(path)
    if not root.is_dir():
        raise StationError(f"database {str(root)!r} is not a folder.")
    if (root / f"{INDEX_NAME}.csv").exists():
        return "station"
    names = _names_below(root)
    sheets = [p.name.lower() for p in spreadsheets(root)]
    if any(n.startswith("smic_all") for n in names):
        return "smic"
    if any(n.startswith("cas(me)3") or n.startswith("cas(me)^3") for n in sheets) or \
            any(re.fullmatch(r"spno\.\d+.*", n) for n in names) or "part_a_me_clip" in names:
        return "casme3"
    if any(n.startswith("casme2") for n in sheets) or names & {"casme2_raw_selected", "casme2_raw"}:
        return "casme2"
    if any(n.startswith("samm") for n in sheets) or names & {"samm", "samm_crop"}:
        return "samm"
    raise StationError(f"cannot tell what database {str(root)!r} is: no {INDEX_NAME}.csv (station), no CASME2-*.xlsx "
                       "or CASME2_RAW_selected/ (casme2), no SAMM_*.xlsx or SAMM/ (samm), no SMIC_all_raw/ or "
                       "SMIC_all_cropped/ (smic), no cas(me)3_*.xlsx or spNO.* folders (casme3); "
                       f"pass --format {'|'.join(FORMATS)}.")


def load_station(root: Path) -> Database:
    if not root.is_dir():
        raise StationError(f"database {str(root)!r} is not a folder.")
    records = read_index(root)
    if not records:
        raise StationError(f"database {str(root)!r} has no samples in {INDEX_NAME}.csv.")
    refs = [SampleRef("station", str(root), r) for r in records]
    return Database("station", root, refs, has_3d=True, label_sources={
        "objective": "objective class I-VII (coded AUs, station rules)",
        "nonobjective": "non-objective class (AUs + film + self-report, station rules)",
        "3class": "positive / negative / surprise from the objective class"}, images="cropped (station export)",
        title=f"station ({root.name})")


def load_database(path: str | Path, fmt: str = "auto", options: LoadOptions | None = None) -> Database:
    """Load a database folder in its published layout (``fmt="auto"``: detected)."""
    from station.evaluate.databases import casme3, coded, smic

    options = options or LoadOptions()
    root = Path(path)
    fmt = detect_format(root) if fmt == "auto" else fmt
    if fmt != "station" and not root.is_dir():
        raise StationError(f"database {str(root)!r} is not a folder.")
    if fmt == "station":
        if options.images == "raw":
            raise StationError("a station database is evaluated on its cropped, aligned faces; --images raw "
                               "does not apply to it.")
        return load_station(root)
    if fmt == "casme2":
        return coded.load_coded(root, coded.CASME2, options.images)
    if fmt == "samm":
        return coded.load_coded(root, coded.SAMM, options.images)
    if fmt == "smic":
        return smic.load_smic(root, options.images, options.smic_set)
    if fmt == "casme3":
        return casme3.load_casme3(root, options.images, options.depth_intrinsics, options.depth_scale)
    raise StationError(f"--format must be one of auto, {', '.join(FORMATS)}, got {fmt!r}.")


__all__ = ["Camera", "Database", "FORMATS", "LoadOptions", "Note", "SampleRef", "detect_format", "load_database"]
