"""Tiny database folders in the published layouts (CASME II, SAMM, SMIC, CAS(ME)^3), built in tests.

Images are small synthetic faces from :mod:`station.evaluate.synthetic` whose local motion
depends on the class, so a baseline on them learns something; every quirk the loaders must
handle is placed on purpose and listed in the returned ``quirks`` dict.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from openpyxl import Workbook

from station.evaluate.synthetic import face_texture, make_sample

#: synthetic class -> (CASME II emotion, SAMM emotion, SMIC folder, objective class number)
CLASSES = {"I": ("happiness", "Happiness", "positive", 1), "II": ("surprise", "Surprise", "surprise", 2),
           "IV": ("disgust", "Disgust", "negative", 4)}
SMIC_CODES = {"positive": "po", "negative": "ne", "surprise": "sur"}


def sheet(path: Path, header: list[str], rows: list[list], title_rows: list[list] | None = None,
          sheet_name: str | None = None) -> None:
    wb = Workbook()
    ws = wb.active
    if sheet_name:
        ws.title = sheet_name
    for row in title_rows or []:
        ws.append(row)
    ws.append(header)
    for row in rows:
        ws.append(row)
    wb.save(path)


def samples(n_subjects: int, per_class: int, seed: int, size: int = 32, n_frames: int = 10):
    rng = np.random.default_rng(seed)
    for s in range(n_subjects):
        texture = face_texture(rng, size)
        for c, cls in enumerate(CLASSES):
            for k in range(per_class):
                yield s + 1, c * per_class + k, cls, make_sample(rng, f"s{s}", f"x{s}{c}{k}", cls, texture,
                                                                 n_frames=n_frames)


def write_frames(folder: Path, frames: np.ndarray, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for frame, name in zip(frames, names):
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if name.endswith(".jpg") else []
        cv2.imwrite(str(folder / name), frame, params)


def casme2(root: Path, n_subjects: int = 3, per_class: int = 2, seed: int = 0, cropped: bool = True,
           raw: bool = True, objective_file: bool = True) -> dict:
    """CASME2-coding-20140508.xlsx (+ CASME2-ObjectiveClasses.xlsx), CASME2_RAW_selected/, Cropped/."""
    rows, objective, quirks = [], [], {}
    for subject, k, cls, sample in samples(n_subjects, per_class, seed):
        filename = f"EP{k + 2:02d}_0{subject}f"
        first = 40 + 7 * k
        numbers = list(range(first, first + len(sample.gray)))
        if raw:  # raw frames are bigger than the crops (the whole picture)
            big = np.stack([cv2.copyMakeBorder(f, 8, 8, 8, 8, cv2.BORDER_REFLECT) for f in sample.gray])
            write_frames(root / "CASME2_RAW_selected" / f"sub{subject:02d}" / filename, big,
                         [f"img{n}.jpg" for n in numbers])
        if cropped:
            write_frames(root / "Cropped" / f"sub{subject:02d}" / filename, sample.gray,
                         [f"reg_img{n}.jpg" for n in numbers])
        if (subject, k) == (3, 1):  # a frame lost inside onset..offset, in both sets
            for folder, prefix in (("CASME2_RAW_selected", "img"), ("Cropped", "reg_img")):
                (root / folder / f"sub{subject:02d}" / filename / f"{prefix}{first + 3}.jpg").unlink(missing_ok=True)
            quirks["missing frame"] = (f"sub{subject:02d}", filename, first + 3)
        onset, apex, offset = first, first + 4, first + 9
        if (subject, k) == (1, 0):
            apex = "/"
            quirks["apex /"] = (f"sub{subject:02d}", filename, (first + first + 9) // 2)
        if (subject, k) == (1, 1):
            offset = 0
            quirks["offset 0"] = (f"sub{subject:02d}", filename, first + 9)
        if (subject, k) == (2, 2):
            offset = first - 30  # a typo: below the onset
            quirks["offset < onset"] = (f"sub{subject:02d}", filename, first + 9)
        if (subject, k) == (2, 3):
            quirks["AU12"] = (f"sub{subject:02d}", filename, "12")
        aus = "AU12" if (subject, k) == (2, 3) else ("4+L10" if k % 2 else "R12")
        rows.append([subject, filename, "", onset, apex, offset, aus, "", CLASSES[cls][0]])
        objective.append([subject, filename, CLASSES[cls][3]])
    rows.append([n_subjects, "EP99_99", "", 1, 2, 3, "4", "", "disgust"])  # no folder: skipped with a note
    quirks["no folder"] = (f"sub{n_subjects:02d}", "EP99_99")
    sheet(root / "CASME2-coding-20140508.xlsx",
          ["Subject", "Filename", "", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "",
           "Estimated Emotion"], rows)
    if objective_file:
        sheet(root / "CASME2-ObjectiveClasses.xlsx", ["Subject", "Filename", "Objective Class"], objective)
    return quirks


def samm(root: Path, n_subjects: int = 3, per_class: int = 2, seed: int = 1, objective_column: bool = True) -> dict:
    """SAMM_Micro_FACS_Codes_v2.xlsx with title rows and text subject ids; SAMM/ and SAMM_CROP/."""
    rows, quirks = [], {}
    for subject, k, cls, sample in samples(n_subjects, per_class, seed):
        sid = f"{subject + 5:03d}"
        filename = f"{sid}_{k + 1}_{subject}"
        first = 5000 + 100 * k
        numbers = list(range(first, first + len(sample.gray)))
        write_frames(root / "SAMM" / sid / filename, sample.gray, [f"{sid}_{n:05d}.jpg" for n in numbers])
        write_frames(root / "SAMM_CROP" / sid / filename, sample.gray, [f"{sid}_{n:05d}.jpg" for n in numbers])
        aus = "R14A or 17A" if (subject, k) == (1, 0) else "12A"
        row = [sid, filename, f"{subject}_{k}", first, first + 4, first + 9, 10, "Micro - 1/2", aus, "",
               CLASSES[cls][1]]
        if objective_column:
            row.append(CLASSES[cls][3])
        rows.append(row)
    quirks["or AUs"] = ("006", "006_1_1", "R14A or 17A")
    header = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
              "Type", "Action Units", "Notes", "Estimated Emotion"]
    header += ["Objective Classes"] if objective_column else []
    titles = [["SAMM Micro-Movement FACS Codes v2"], ["Notes:"], ["* onset/offset are frame numbers"], [""]]
    sheet(root / "SAMM_Micro_FACS_Codes_v2.xlsx", header, rows, title_rows=titles)
    return quirks


def smic(root: Path, n_subjects: int = 3, per_class: int = 2, seed: int = 2, subsets=("HS",),
         cropped: bool = True) -> None:
    """SMIC_all_raw/HS/s1/micro/negative/s1_ne_01/image*.bmp (+ SMIC_all_cropped, + non_micro)."""
    for subject, k, cls, sample in samples(n_subjects, per_class, seed):
        label = CLASSES[cls][2]
        name = f"s{subject}_{SMIC_CODES[label]}_{k % per_class + 1:02d}"
        first = 20000 + 50 * k
        numbers = list(range(first, first + len(sample.gray)))
        for subset in subsets:
            write_frames(root / "SMIC_all_raw" / subset / f"s{subject}" / "micro" / label / name, sample.gray,
                         [f"image{n:06d}.bmp" for n in numbers])
            if cropped:
                write_frames(root / "SMIC_all_cropped" / subset / f"s{subject}" / "micro" / label / name,
                             sample.gray, [f"reg_image{n:06d}.bmp" for n in numbers])
            (root / "SMIC_all_raw" / subset / f"s{subject}" / "non_micro" / "n1").mkdir(parents=True, exist_ok=True)


#: CAS(ME)^3 synthetic classes: emotion (as the label sheet spells it), objective class, AUs
CASME3_CLASSES = {"happy": ("I", [6, 12]), "surprise": ("II", [1, 2, 5]), "disgust": ("IV", [9, 10])}


def casme3(root: Path, n_subjects: int = 3, per_class: int = 1, seed: int = 3, width: int = 424,
           height: int = 240, n_frames: int = 9, clip_layout_subject: int | None = 2) -> dict:
    """CAS(ME)^3 Part A: label sheet 'label', spNO.<s>/<video>/color/N.jpg + depth/N.png (16-bit mm).

    Frames come from the virtual participant (``station.synth``): a face dlib finds, depth
    registered to colour; ``intrinsics.json`` holds its true intrinsics.  One subject uses the
    ME-clip layout (``Part_A_ME_clip/frame|depth/spNO.2_b_3``) instead.
    """
    from station.synth.events import Event
    from station.synth.participant import SyntheticParticipant

    rows, fx = [], None
    for s in range(1, n_subjects + 1):
        videos = iter("abcdefghijklm")
        for emotion, (cls, aus) in CASME3_CLASSES.items():
            for k in range(per_class):
                video = next(videos)
                onset, apex, offset = 3, 3 + n_frames // 2, 3 + n_frames - 1
                ev = Event("micro", onset - 1, apex, offset + 1, aus, cls, emotion, 1.0, s)
                scene = SyntheticParticipant(s, seed, events=[ev], n_frames=offset + 2, width=width, height=height,
                                             head_motion=False)
                fx = scene.fx
                if s == clip_layout_subject:
                    color_dir = root / "Part_A_ME_clip" / "frame" / f"spNo.{s}_{video}_{onset}"
                    depth_dir = root / "Part_A_ME_clip" / "depth" / f"spNo.{s}_{video}_{onset}"
                else:
                    color_dir = root / "part_A" / "data" / "part_A" / f"spNO.{s}" / video / "color"
                    depth_dir = color_dir.parent / "depth"
                color_dir.mkdir(parents=True, exist_ok=True)
                depth_dir.mkdir(parents=True, exist_ok=True)
                for n in range(onset, offset + 1):
                    color, depth_m = scene.render(n)
                    cv2.imwrite(str(color_dir / f"{n}.jpg"), color[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
                    cv2.imwrite(str(depth_dir / f"{n}.png"), np.round(depth_m * 1000).astype(np.uint16))
                rows.append([f"spNO.{s}", video, onset, apex, offset, "+".join(map(str, aus)), cls, emotion])
    rows[0][3] = "/"  # an apex the sheet does not give
    (root / "annotation").mkdir(exist_ok=True)
    sheet(root / "annotation" / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx",
          ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"], rows,
          sheet_name="label")
    from station.camera.virtual import d415_calibration

    c = d415_calibration(width, height).color_intrinsics  # the view the participant's depth is rendered in
    (root / "intrinsics.json").write_text(
        f'{{"fx": {c.fx}, "fy": {c.fy}, "ppx": {c.ppx}, "ppy": {c.ppy}, "depth_scale": 0.001}}')
    return {"fx": fx, "apex /": ("spNO.1", "a_3")}
