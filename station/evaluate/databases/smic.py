"""SMIC (Li et al. 2013) as shipped: labels are folder names, there is no coding sheet.

Layout::

    ROOT/SMIC_all_raw/HS/s1/micro/negative/s1_ne_01/image069188.bmp        raw frames
    ROOT/SMIC_all_cropped/HS/s1/micro/negative/s1_ne_01/reg_image069188.bmp cropped faces
    (VIS and NIR next to HS: s1..s8; every subject also has non_micro/, which is not read)

* HS: 100 fps high-speed camera, 164 micro-expressions of 16 subjects; VIS and NIR: 25 fps,
  71 micro-expressions of 8 subjects each (``subset="hs" | "vis" | "nir"``).
* Labels: the emotion folder, ``positive`` / ``negative`` / ``surprise`` (the three classes of
  the MEGC 2019 composite); the sample folder's code (``po`` / ``ne`` / ``sur``) is checked
  against it and a disagreement is noted.
* SMIC codes no onset, apex, offset or AUs: a sample is its whole folder (each is cut to its
  movement), and the apex is the middle frame -- the fallback MEGC 2019 and the public loaders
  use; it is noted per sample.
"""

from __future__ import annotations

import re
from pathlib import Path

from station.checks import StationError
from station.dataset import SampleRecord
from station.evaluate.databases.base import Database, Note, SampleRef, numbered_images
from station.evaluate.databases.coded import IMAGE_SETS, find_image_set

SUBSETS = {"hs": ("HS", 100.0), "vis": ("VIS", 25.0), "nir": ("NIR", 25.0)}
LABELS = ("positive", "negative", "surprise")
CODES = {"po": "positive", "ne": "negative", "sur": "surprise"}
RAW_SETS, CROPPED_SETS = ("SMIC_all_raw", "SMIC_raw"), ("SMIC_all_cropped", "SMIC_cropped")


def _subset_dir(root: Path, images: str, subset: str, notes: list[Note]) -> Path:
    folder, _ = SUBSETS[subset]
    names = CROPPED_SETS if images == "cropped" else RAW_SETS
    image_set = find_image_set(root, names)
    bare = [p for p in (root, *(c for c in root.iterdir() if c.is_dir())) if p.name.upper() in ("HS", "VIS", "NIR")]
    if image_set is None and not find_image_set(root, RAW_SETS + CROPPED_SETS) and bare:
        # HS/ (or VIS/, NIR/) without an SMIC_all_raw / SMIC_all_cropped parent: one set, of unnamed kind
        notes.append(Note("", f"{str(bare[0])!r} has no SMIC_all_raw / SMIC_all_cropped parent: raw or cropped "
                              "is unknown; that one image set is read, as given"))
        image_set = bare[0].parent if bare[0] != root else root.parent
    if image_set is None:
        other = "raw" if images == "cropped" else "cropped"
        has_other = find_image_set(root, RAW_SETS if other == "raw" else CROPPED_SETS)
        hint = f"; it has {has_other.name!r}: pass --images {other}" if has_other else ""
        raise StationError(f"SMIC database {str(root)!r} has no {images} image set (a folder named "
                           f"{' or '.join(names)}){hint}.")
    sub = next((p for p in image_set.iterdir() if p.is_dir() and p.name.lower() == folder.lower()), None)
    if sub is None:
        have = ", ".join(sorted(p.name for p in image_set.iterdir() if p.is_dir())) or "nothing"
        raise StationError(f"SMIC image set {str(image_set)!r} has no {folder} folder (it has {have}); "
                           f"--smic-set must name one it has.")
    return sub


def load_smic(root: Path, images: str | None = None, subset: str = "hs") -> Database:
    images = images or "cropped"
    if images not in IMAGE_SETS:
        raise StationError(f"--images must be one of {', '.join(IMAGE_SETS)}, got {images!r}.")
    if subset not in SUBSETS:
        raise StationError(f"--smic-set must be one of {', '.join(SUBSETS)}, got {subset!r}.")
    folder, fps = SUBSETS[subset]
    refs: list[SampleRef] = []
    notes: list[Note] = []
    base = _subset_dir(root, images, subset, notes)
    subjects = sorted((p for p in base.iterdir() if p.is_dir() and re.fullmatch(r"s\d+", p.name, re.I)),
                      key=lambda p: int(p.name[1:]))
    for subject_dir in subjects:
        micro = subject_dir / "micro"
        if not micro.is_dir():
            continue  # subjects without micro-expressions have only non_micro/
        for label_dir in sorted(p for p in micro.iterdir() if p.is_dir()):
            label = label_dir.name.lower()
            if label not in LABELS:
                notes.append(Note(f"{subject_dir.name}/{label_dir.name}",
                                  f"emotion folder {label_dir.name!r} is not one of {', '.join(LABELS)}; skipped"))
                continue
            for sample_dir in sorted(p for p in label_dir.iterdir() if p.is_dir()):
                name = f"{subject_dir.name}/{sample_dir.name}"
                m = re.fullmatch(rf"{re.escape(subject_dir.name)}_([a-z]+)_?\d*", sample_dir.name, re.I)
                code = CODES.get(m.group(1).lower()) if m else None
                if code is not None and code != label:
                    notes.append(Note(name, f"folder name says {code}, its parent folder {label}; {label} used"))
                frames = numbered_images(sample_dir)
                if len(frames) < 2:
                    notes.append(Note(name, f"{len(frames)} image(s); skipped"))
                    continue
                numbers = list(frames)
                onset, offset = numbers[0], numbers[-1]
                apex = numbers[len(numbers) // 2]
                notes.append(Note(name, f"SMIC codes no apex: the middle frame {apex} used"))
                gaps = offset - onset + 1 - len(numbers)
                if gaps:
                    notes.append(Note(name, f"{gaps} frame number(s) missing in {onset}..{offset}; "
                                            f"the {len(numbers)} present are used"))
                record = SampleRecord(subject=subject_dir.name, sample=sample_dir.name, onset=onset, apex=apex,
                                      offset=offset, aus="", objective_class="", nonobjective_class=label)
                refs.append(SampleRef("smic", str(root), record, tuple(str(p) for p in frames.values()), fps=fps))
    known = {n.lower() for n in RAW_SETS + CROPPED_SETS}
    kind = images if base.parent.name.lower() in known else "image set as given"
    if not refs:
        raise StationError(f"SMIC {folder} folder {str(base)!r} has no samples (expected "
                           f"s<N>/micro/<{'|'.join(LABELS)}>/<sample>/ image folders).")
    return Database("smic", root, refs, has_3d=False, three_class_field="nonobjective_class", notes=notes,
                    label_sources={"nonobjective": f"SMIC-{folder} emotion folder (positive / negative / surprise)",
                                   "3class": f"SMIC-{folder} emotion folder (positive / negative / surprise)"},
                    images=f"{kind} ({base.parent.name}/{base.name})", fps=fps, title=f"SMIC-{folder}")
