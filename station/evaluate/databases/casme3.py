"""CAS(ME)^3 Part A (Li et al., TPAMI 2022): RGB + depth per frame, with the ME label sheet.

Layouts read (both are in use; public loaders read one or the other)::

    ROOT/.../cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx   sheet 'label': Subject (spNO.1), Filename (a),
                                                         Onset, Apex, Offset, AU, Objective class, emotion
    ROOT/.../spNO.1/a/color/355.jpg                       whole videos, frame N as color/N.jpg ...
    ROOT/.../spNO.1/a/depth/355.png                       ... and its 16-bit depth as depth/N.png
  or
    ROOT/.../frame/spNO.1_a_355/355.jpg                   ME clips (Part_A_ME_clip), named
    ROOT/.../depth/spNO.1_a_355/355.png                   subject_filename_onset

* 30 fps; one video (Filename) holds several MEs, so a sample is named ``<Filename>_<Onset>``.
* Subject ids are kept as spelled in the sheet (``spNO.1``); folders are matched without case
  (the clips write ``spNo.1``).
* Labels: ``emotion`` (happy, disgust, fear, anger, sad, surprise, others) is the estimated
  emotion, ``Objective class`` the objective class I-VII.
* The database ships no cropped faces: the station aligns and crops the RGB frames itself
  (49 landmarks, eye corners), and turns depth into clouds (:mod:`.rgbd`), so only
  ``--images raw`` applies.
* Depth intrinsics: the label sheet and the public loaders give none.  The station reads
  ``ROOT/intrinsics.json`` (``{"fx":, "fy":, "ppx":, "ppy":, "depth_scale":}``) or
  ``--depth-intrinsics``; otherwise it ASSUMES depth registered to colour, principal point at the
  image centre, fx = fy for a 69.4 deg horizontal field of view (Intel RealSense D4xx colour
  camera), and depth in millimetres.  The assumption is written in the database's notes.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from station.checks import StationError
from station.dataset import SampleRecord
from station.evaluate.databases.base import Camera, Database, Note, SampleRef, numbered_images
from station.evaluate.databases.coded import database_aus, objective_label
from station.evaluate.databases.sheets import cell_int, cell_text, find_table

FPS = 30.0
ASSUMED_HFOV_DEG = 69.4
ASSUMED_DEPTH_SCALE = 0.001
COLUMNS = {
    "subject": ("Subject", "sub"),
    "filename": ("Filename", "seq"),
    "onset": ("Onset", "Onset Frame"),
    "apex": ("Apex", "Apex Frame"),
    "offset": ("Offset", "Offset Frame"),
    "aus": ("AU", "Action Units", "AUs"),
    "objective": ("Objective class", "Objective classes"),
    "emotion": ("emotion", "Estimated Emotion"),
}
REQUIRED = [COLUMNS["subject"], COLUMNS["filename"], COLUMNS["onset"], COLUMNS["apex"], COLUMNS["offset"],
            COLUMNS["emotion"]]


def camera_for(root: Path, size: tuple[int, int], intrinsics: tuple[float, ...] | None = None,
               depth_scale: float | None = None) -> Camera:
    """The RGB-D intrinsics: --depth-intrinsics, ROOT/intrinsics.json, or the stated assumption."""
    w, h = size
    if intrinsics is not None:
        fx, fy, ppx, ppy = intrinsics
        return Camera(fx, fy, ppx, ppy, depth_scale or ASSUMED_DEPTH_SCALE, "--depth-intrinsics")
    path = root / "intrinsics.json"
    if path.exists():
        try:
            data = json.loads(path.read_text())
            return Camera(float(data["fx"]), float(data["fy"]), float(data["ppx"]), float(data["ppy"]),
                          float(data.get("depth_scale", depth_scale or ASSUMED_DEPTH_SCALE)), str(path))
        except (ValueError, KeyError, TypeError) as err:
            raise StationError(f"{str(path)!r} must hold fx, fy, ppx, ppy (and depth_scale, metres per unit): "
                               f"{err}") from err
    f = (w / 2) / math.tan(math.radians(ASSUMED_HFOV_DEG / 2))
    return Camera(f, f, (w - 1) / 2, (h - 1) / 2, depth_scale or ASSUMED_DEPTH_SCALE,
                  f"assumed: depth registered to colour, centre principal point, {ASSUMED_HFOV_DEG} deg horizontal "
                  f"field of view (fx = fy = {f:.1f} px at {w} px wide), depth in "
                  + ("mm" if not depth_scale else f"units of {depth_scale} m"))


def _index_dirs(root: Path, max_depth: int = 6) -> tuple[dict[str, Path], dict[str, Path], dict[str, Path]]:
    """(video folders 'spno.1/a' -> path, clip RGB folders, clip depth folders), keys lower-case."""
    videos, clips, clip_depth = {}, {}, {}
    base_depth = len(root.parts)
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if len(here.parts) - base_depth >= max_depth:
            dirnames[:] = []
        names = {d.lower(): d for d in dirnames}
        if "color" in names:
            videos[f"{here.parent.name}/{here.name}".lower()] = here
            dirnames[:] = []  # do not walk thousands of frames
            continue
        if here.name.lower() in ("frame", "depth"):
            target = clips if here.name.lower() == "frame" else clip_depth
            for d in dirnames:
                target[d.lower()] = here / d
            dirnames[:] = []
    return videos, clips, clip_depth


def load_casme3(root: Path, images: str | None = None, intrinsics: tuple[float, ...] | None = None,
                depth_scale: float | None = None) -> Database:
    if images not in (None, "raw"):
        raise StationError("CAS(ME)^3 Part A ships no cropped face set: the station aligns and crops the RGB "
                           "frames itself; use --images raw (the default for casme3).")
    table = find_table(root, REQUIRED, "CAS(ME)^3 label")
    if table is None:
        raise StationError(f"CAS(ME)^3 database {str(root)!r} needs its label sheet (e.g. "
                           "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx, an .xlsx with Subject, Filename, Onset, Apex, "
                           "Offset, emotion columns; the .xls v1 must be saved as .xlsx first).")
    col = {k: table.column(*names) for k, names in COLUMNS.items()}
    videos, clips, clip_depth = _index_dirs(root)
    refs: list[SampleRef] = []
    notes: list[Note] = []
    camera = None
    for i, row in enumerate(table.rows):
        row = list(row) + [""] * (len(table.header) - len(row))
        subject, filename = cell_text(row[col["subject"]]), cell_text(row[col["filename"]])
        if not subject or not filename:
            continue
        onset, apex, offset = (cell_int(row[col[k]]) for k in ("onset", "apex", "offset"))
        name = f"{subject}/{filename}_{cell_text(row[col['onset']])}"
        if onset is None or offset is None:
            notes.append(Note(name, f"{table.where(i)}: onset/offset not frame numbers; skipped"))
            continue
        rgb_dir, depth_dir = _sample_dirs(videos, clips, clip_depth, subject, filename, onset)
        if rgb_dir is None:
            notes.append(Note(name, f"{table.where(i)}: no color folder (spNO/<video>/color or frame/"
                                    f"{subject}_{filename}_{onset}); skipped"))
            continue
        if depth_dir is None:
            notes.append(Note(name, "no depth folder next to its color frames; skipped (3D needs depth)"))
            continue
        rgb, depth = numbered_images(rgb_dir, (".jpg", ".jpeg", ".png")), numbered_images(depth_dir, (".png",))
        if offset < onset:
            notes.append(Note(name, f"offset {offset} < onset {onset}; skipped"))
            continue
        if apex is None or not onset <= apex <= offset:
            mid = (onset + offset) // 2
            why = "(not coded)" if apex is None else f"outside onset..offset {onset}..{offset}"
            notes.append(Note(name, f"apex {cell_text(row[col['apex']])!r} {why}: the middle frame {mid} used"))
            apex = mid
        chosen = [n for n in range(onset, offset + 1) if n in rgb and n in depth]
        absent = offset - onset + 1 - len(chosen)
        if absent:
            notes.append(Note(name, f"{absent} frame(s) of {onset}..{offset} lack color or depth; "
                                    f"the {len(chosen)} with both are used"))
        if len(chosen) < 2 or onset not in chosen or apex not in chosen:
            if len(chosen) >= 2:
                onset, apex = chosen[0], min(chosen, key=lambda n: abs(n - apex))
                notes.append(Note(name, f"onset/apex frame missing: nearest present {onset}/{apex} used"))
            else:
                notes.append(Note(name, "fewer than 2 frames with color and depth; skipped"))
                continue
        if camera is None:
            import cv2

            probe = cv2.imread(str(rgb[chosen[0]]), cv2.IMREAD_COLOR)
            if probe is None:
                raise StationError(f"image {str(rgb[chosen[0]])!r} cannot be read.")
            camera = camera_for(root, (probe.shape[1], probe.shape[0]), intrinsics, depth_scale)
        sample = f"{filename}_{onset}"
        record = SampleRecord(subject=subject, sample=sample, onset=onset, apex=apex, offset=chosen[-1],
                              aus=database_aus(row[col["aus"]], name, notes) if col["aus"] is not None else "",
                              objective_class=objective_label(row[col["objective"]]) if col["objective"] is not None
                              else "", nonobjective_class=cell_text(row[col["emotion"]]))
        refs.append(SampleRef("casme3", str(root), record, tuple(str(rgb[n]) for n in chosen), fps=FPS,
                              depth=tuple(str(depth[n]) for n in chosen), camera=camera))
    if not refs:
        raise StationError(f"CAS(ME)^3 database {str(root)!r}: none of the label sheet's samples was found with "
                           f"color and depth frames ({len(notes)} note(s); first: {notes[0] if notes else 'no rows'}).")
    notes.insert(0, Note("", f"depth intrinsics: {camera.source}"))
    sources = {"nonobjective": f"estimated emotion ('emotion' of {table.path.name})",
               "3class": "positive / negative / surprise from the estimated emotion"}
    if col["objective"] is not None:
        sources["objective"] = f"objective class I-VII ('{table.header[col['objective']]}' of {table.path.name})"
    return Database("casme3", root, refs, has_3d=True, three_class_field="nonobjective_class", notes=notes,
                    label_sources=sources, images="raw RGB (aligned and cropped by the station)", fps=FPS,
                    title="CAS(ME)^3 Part A")


def _sample_dirs(videos, clips, clip_depth, subject: str, filename: str, onset: int):
    video = videos.get(f"{subject}/{filename}".lower())
    if video is not None:
        kids = {p.name.lower(): p for p in video.iterdir() if p.is_dir()}
        return kids.get("color"), kids.get("depth")
    key = f"{subject}_{filename}_{onset}".lower()
    return clips.get(key), clip_depth.get(key)


__all__ = ["load_casme3", "camera_for", "FPS"]
