"""Spotted candidates of one trial, from ``station spot``'s CSV, matched by trial identity."""

from __future__ import annotations

from pathlib import Path

from station.checks import StationError
from station.gui.media import TrialMedia, file_name
from station.process.coding import read_rows


def candidates_file(path: str | Path | None, media: TrialMedia) -> Path | None:
    """``--candidates``, else ``candidates.csv`` in the trial's folder if there is one."""
    if path is not None:
        return Path(path)
    default = media.path.parent / "candidates.csv"
    return default if default.exists() else None


def _same_file(text: str, trial: Path, base: Path) -> bool:
    """Whether a path written in a CSV (absolute, or relative to the cwd or to the CSV) is ``trial``."""
    if not text:
        return False
    here = trial.resolve()
    for candidate in (Path(text), base / text):
        try:
            if candidate.exists() and candidate.resolve() == here:
                return True
        except OSError:
            pass
    return False


def load_candidates(path: str | Path | None, media: TrialMedia) -> list[tuple[int, int, int, str, float]]:
    """Spotted candidates of this trial: (onset, apex, offset, kind, score) in device frame numbers.

    Rows are matched by ``trial_id`` when the file has one, else by the trial's path, else by
    file name only when the candidates file sits in the trial's own folder (unambiguous there).
    """
    path = candidates_file(path, media)
    if path is None:
        return []
    own_folder = path.resolve().parent == media.path.resolve().parent
    out = []
    for line, row in read_rows(path, ("onset", "apex", "offset"), "candidates file"):
        if row.get("trial_id"):
            if row["trial_id"] != media.identity["trial_id"]:
                continue
        elif not (_same_file(row.get("path", ""), media.path, path.parent)
                  or (own_folder and file_name(row.get("trial", "")) == media.name)):
            continue
        try:
            out.append((int(row["onset"]), int(row["apex"]), int(row["offset"]), row.get("kind", "") or "micro",
                        float(row.get("score") or 0)))
        except ValueError as err:
            raise StationError(f"{path}:{line}: candidate frames must be whole numbers ({err}).") from err
    return sorted(out)
