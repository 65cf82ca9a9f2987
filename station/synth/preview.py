"""A contact sheet of one synthetic micro-expression, to see what the generator makes.

Rows: color (face box, 2x) and the z16 depth the virtual D415 delivers (same box, colour
mapped over 150 mm).  Columns: onset, apex, offset, the difference apex - onset (color:
absolute difference x8; depth: the true surface change in mm, since a 1-2 mm change is under
the sensor noise), and the apex with the true 68 landmarks.  Head motion is switched off for
the sheet so the difference shows only the action units.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from station.camera.base import EndOfStream
from station.camera.virtual import VirtualD415
from station.synth.events import Event, objective_class
from station.synth.participant import SyntheticParticipant
from station.vocab.classes import CLASS_EMOTION



def preview_scene(subject: int, seed: int, aus: list[int], intensity: float = 1.0) -> SyntheticParticipant:
    """A 40-frame scene with one micro-expression (onset 8, apex 15, offset 28: 333 ms)."""
    cls = objective_class(aus)
    event = Event("micro", 8, 15, 28, list(aus), cls, CLASS_EMOTION[cls], intensity, subject)
    return SyntheticParticipant(subject, seed, events=[event], n_frames=40, head_motion=False)


def _film(scene: SyntheticParticipant, wanted: set[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Color and z16 depth of the wanted frames, through the virtual D415 (fast mode)."""
    cam = VirtualD415(scene, realtime=False)
    cam.start()
    got = {}
    try:
        while len(got) < len(wanted):
            try:
                fs = cam.read(2.0)
            except EndOfStream:
                break
            if fs is not None and fs.color_times.number in wanted:
                got[fs.color_times.number] = (fs.color.copy(), fs.depth.copy())
    finally:
        cam.stop()
    return got


def _label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(out, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def contact_sheet(subject: int = 1, seed: int = 0, aus: list[int] | None = None, intensity: float = 1.0,
                  zoom: int = 2) -> np.ndarray:
    """The RGB contact sheet (see module docstring)."""
    aus = aus or [6, 12]
    scene = preview_scene(subject, seed, aus, intensity)
    ev = scene.events()[0]
    frames = _film(scene, {ev.onset, ev.apex, ev.offset})
    bx, by, bw, bh = scene.box
    def crop(a):
        return cv2.resize(a[by:by + bh, bx:bx + bw], (bw * zoom, bh * zoom), interpolation=cv2.INTER_NEAREST)

    def depth_rgb(z16):
        """Colour by distance (150 mm range) times a hill-shade of the (display-smoothed) surface."""
        valid = z16[z16 > 0]
        near = float(np.percentile(valid, 1)) if valid.size else 0.0
        scaled = np.clip((z16.astype(np.float32) - near) * 255 / 150.0, 0, 255).astype(np.uint8)
        rgb = cv2.applyColorMap(255 - scaled, cv2.COLORMAP_TURBO)[:, :, ::-1].astype(np.float32)
        smooth = cv2.medianBlur(z16, 5).astype(np.float32)
        gy, gx = np.gradient(cv2.GaussianBlur(smooth, (0, 0), 1.5))
        shade = np.clip((-0.6 * gx - 0.6 * gy + 1.0) / np.sqrt(1 + gx * gx + gy * gy), 0.25, 1.2)
        rgb = np.clip(rgb * shade[..., None], 0, 255).astype(np.uint8)
        rgb[z16 == 0] = 0
        return rgb

    names = {ev.onset: "onset", ev.apex: "apex", ev.offset: "offset"}
    color_row, depth_row = [], []
    for n in (ev.onset, ev.apex, ev.offset):
        color, depth = frames[n]
        color_row.append(_label(crop(color), f"{names[n]} (frame {n})"))
        depth_row.append(_label(crop(depth_rgb(depth)), f"z16 depth {names[n]} (shaded)"))
    c0, c1 = frames[ev.onset][0].astype(np.int16), frames[ev.apex][0].astype(np.int16)
    diff = np.clip(np.abs(c1 - c0).max(axis=2) * 8, 0, 255).astype(np.uint8)
    color_row.append(_label(crop(np.dstack([diff] * 3)), "|apex - onset| x8"))
    clean = SyntheticParticipant(subject, seed, events=scene.events(), n_frames=40, head_motion=False, noise=False)
    dz = (clean.render(ev.apex)[1] - clean.render(ev.onset)[1]) * 1000.0  # mm, + = away from camera
    dz_img = np.clip(128 + dz * 40, 0, 255).astype(np.uint8)
    depth_row.append(_label(crop(cv2.applyColorMap(dz_img, cv2.COLORMAP_COOL)[:, :, ::-1]),
                            "true depth change (+-3 mm)"))
    apex = frames[ev.apex][0].copy()
    for x, y in scene.landmarks(ev.apex):
        cv2.circle(apex, (int(round(x)), int(round(y))), 1, (0, 255, 0), -1)
    color_row.append(_label(crop(apex), "apex + true landmarks"))
    title = (f"subject {subject} ({scene.look.photo}), seed {seed}: micro-expression AU"
             f"{'+'.join(map(str, aus))} (class {ev.objective_class}, {ev.emotion}), "
             f"onset {ev.onset} / apex {ev.apex} / offset {ev.offset} at 60 fps")
    sheet = np.vstack([np.hstack(color_row), np.hstack(depth_row[:4] + [_legend(depth_row[0].shape, ev)])])
    bar = np.zeros((30, sheet.shape[1], 3), np.uint8)
    cv2.putText(bar, title, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([bar, sheet])


def _legend(shape: tuple[int, ...], ev: Event) -> np.ndarray:
    """Text panel with the event's ground truth."""
    panel = np.full(shape, 24, np.uint8)
    lines = ["ground truth (/ground_truth/events):"] + [f"  {k}: {v}" for k, v in ev.as_dict().items()]
    lines += ["", "depth: z16 from the virtual D415", "(noise, holes, 1/32 px disparity", " quantisation, invalid band)"]
    for i, line in enumerate(lines):
        cv2.putText(panel, line, (8, 24 + 20 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (230, 230, 230), 1, cv2.LINE_AA)
    return panel


def write_preview(out: str | Path, **kwargs) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(**kwargs)
    from station.fileio import write_image

    return write_image(out, sheet, "preview image")
