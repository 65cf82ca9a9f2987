"""The synthetic participant: a :class:`~station.camera.scene.Scene` for the virtual D415.

Per frame: blinks close the eyelids (:class:`~station.synth.aus.Eyelids`); the active events'
AU weights times the AU fields (precomputed for the subject over the head box), plus a small
head motion (~1 px drift, < 1 deg roll, slow sinusoids, fading out at the box edge), form one
forward displacement (dx, dy px; dz mm); it is inverted to a backward map (one fixed-point
step, well under 0.1 px error for these smooth fields) and applied with one ``cv2.remap`` to
the color image and one to the depth of the head box; lips parting darkens the mouth gap;
finally :class:`~station.synth.depthface.D415Noise` adds the sensor's errors.  The true 68 landmark positions follow the same forward motions and are
available from :meth:`SyntheticParticipant.landmarks`.

Everything is a pure function of ``(subject, seed, index)``, so a real-time producer that
skips frames and a dataset writer that renders every frame see the same participant.
"""

from __future__ import annotations

import cv2
import numpy as np

from station.camera.base import HEIGHT, WIDTH
from station.synth.appearance import SubjectLook, build_look, face_centre
from station.synth.aus import AU_LIBRARY, BLINK_AU, Eyelids, au_field, sample_field
from station.synth.depthface import D415Noise, face_depth
from station.synth.events import Event, Timeline, endless_block

ENDLESS_BLOCK = 600  # frames per planning block of an endless scene (10 s at 60 fps)
_FX_848 = 611.4  # color fx of the virtual D415 at 848 px wide (station.camera.virtual)

#: Landmark groups whose shape varies between pseudo-subjects, and how (IOD units, std).
_MORPHS = (((36, 39), 0.025, 0.0, 0.18), ((42, 45), -0.025, 0.0, 0.18),  # eye spacing (mirrored sign)
           ((30, 33), 0.0, 0.03, 0.15),  # nose length
           ((48,), 0.03, 0.0, 0.15), ((54,), -0.03, 0.0, 0.15),  # mouth width
           ((4, 5), 0.035, 0.0, 0.3), ((11, 12), -0.035, 0.0, 0.3),  # jaw width
           ((8,), 0.0, 0.04, 0.3))  # chin length


class SyntheticParticipant:
    """A pseudo-subject performing a time line of micro-expressions, macro-expressions and blinks.

    ``events=None`` gives an endless scene (events planned in blocks, for the live virtual
    camera); otherwise the given events and ``n_frames``.
    """

    def __init__(self, subject: int = 1, seed: int = 0, *, events: list[Event] | None = None,
                 n_frames: int | None = None, width: int = WIDTH, height: int = HEIGHT,
                 noise: bool = True, head_motion: bool = True):
        self.subject, self.seed = subject, seed
        self.width, self.height = width, height
        self.fx = _FX_848 * width / 848.0
        self.look: SubjectLook = build_look(subject, seed, width, height, self.fx)
        self.name = f"synthetic participant {subject} ({self.look.photo}, seed {seed})"
        self.endless = events is None
        self.timeline = Timeline(list(events or []), n_frames, ENDLESS_BLOCK if self.endless else 0)
        self.n_frames = None if self.endless else n_frames
        self._planned_blocks: set[int] = set()
        self.noise = D415Noise((height, width), self.fx, seed * 1000 + subject) if noise else None
        self.head_motion = head_motion
        #: Per-frame results reused within a frame (see :meth:`_memo`).
        self._recent: dict[tuple, object] = {}
        self._prepare()

    def __getstate__(self) -> dict:
        """Pickled for render worker processes: without the per-frame memo (megabytes of fields)."""
        state = self.__dict__.copy()
        state["_recent"] = {}
        return state

    def with_timeline(self, timeline: Timeline) -> "SyntheticParticipant":
        """The same participant performing another (finite) time line, without preparing it again.

        Appearance, morph, head pose, depth surface and AU fields are shared (read-only); the
        sensor noise keeps its seeded pool but recomputes its static part, as a new scene would.
        """
        import copy

        twin = copy.copy(self)
        twin.timeline, twin.n_frames, twin.endless = timeline, timeline.n_frames, False
        twin._planned_blocks, twin._recent = set(), {}
        if self.noise is not None:
            twin.noise = copy.copy(self.noise)
            twin.noise.__dict__.pop("_static", None)
        return twin

    # -- per-subject precomputation --------------------------------------------------------
    def _prepare(self) -> None:
        look = self.look
        iod = look.iod_px
        lm = look.landmarks
        # The head box: everything that moves (expressions and head motion), hair included.
        x0, y0 = np.floor(lm.min(axis=0) - (1.1 * iod, 1.6 * iod)).astype(int)
        x1, y1 = np.ceil(lm.max(axis=0) + (1.1 * iod, 0.9 * iod)).astype(int)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(self.width, x1), min(self.height, y1)
        self.box = (int(x0), int(y0), int(x1 - x0), int(y1 - y0))
        bx, by, bw, bh = self.box
        gy, gx = np.mgrid[by:by + bh, bx:bx + bw].astype(np.float32)
        self._grid = (gx, gy)
        # Head motion fades out towards the box edge (neck and hair stretch, the wall stays).
        edge = np.minimum(np.minimum(gx - bx, bx + bw - 1 - gx), np.minimum(gy - by, by + bh - 1 - gy))
        ramp = np.clip(edge / (0.6 * iod), 0, 1)
        self._head_weight = (ramp * ramp * (3 - 2 * ramp)).astype(np.float32)
        color, lm = self._morph(look.color, lm, iod)
        depth = face_depth(lm, (self.height, self.width), look.distance_m, self.fx)
        self.color0, self.depth0, self.landmarks0 = self._turn_head(color, depth, lm)
        lm = self.landmarks0
        self.fields = {au: au_field(au, lm, iod, bx, by, bw, bh) for au in AU_LIBRARY}
        self.centre = face_centre(lm)
        self.eyelids = Eyelids(lm, iod, (self.height, self.width))
        rng = np.random.default_rng([self.seed, self.subject, 505])
        # Head motion: a few slow sinusoids per axis (periods 1.5-8 s), amplitudes in px / deg.
        self._motion = [(rng.uniform(0.3, 1.0, 3) * amp, rng.uniform(1.5, 8.0, 3), rng.uniform(0, 2 * np.pi, 3))
                        for amp in (1.2, 0.8, 0.5)]  # x px, y px, roll deg

    def _turn_head(self, color: np.ndarray, depth: np.ndarray, lm: np.ndarray):
        """Seeded small head pose out of the image plane (yaw +-6 deg, pitch +-4 deg).

        A photo cannot turn, but for small angles the image motion of a surface point is its
        depth in front of the rotation centre times the angle (parallax): the nose moves more
        than the cheeks, and the depth tilts.  Applied once per subject, as a forward field.
        """
        rng = np.random.default_rng([self.seed, self.subject, 707])
        yaw, pitch = np.radians(rng.uniform(-6, 6)), np.radians(rng.uniform(-4, 4))
        bx, by, bw, bh = self.box
        gx, gy = self._grid
        z = depth[by:by + bh, bx:bx + bw]
        mm_px = self.look.mm_per_px
        pivot = self.look.distance_m + 0.09  # rotation centre ~9 cm behind the cheeks (neck axis)
        lever = np.clip(pivot - z, 0, None) * 1000.0 / mm_px  # px in front of the pivot
        w = self._head_weight
        centre = face_centre(lm)
        field = np.stack([w * yaw * lever, w * pitch * lever,
                          w * (-yaw * (gx - centre[0]) - pitch * (gy - centre[1])) * mm_px]).astype(np.float32)
        self.pose_deg = (float(np.degrees(yaw)), float(np.degrees(pitch)), self.look.roll_deg)
        mx, my = self._backward_maps(field[:2])
        color, depth = color.copy(), depth.copy()
        color[by:by + bh, bx:bx + bw] = cv2.remap(color, mx, my,
                                                  cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        moved = cv2.remap(depth, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        head = moved < self.look.distance_m + 0.2
        depth[by:by + bh, bx:bx + bw] = np.where(head, moved + field[2] * np.float32(0.001), moved)
        return color, depth, lm + sample_field(field[:2], bx, by, lm)

    def _morph(self, color: np.ndarray, lm: np.ndarray, iod: float) -> tuple[np.ndarray, np.ndarray]:
        """Seeded shape morph of the neutral face (same field machinery as the AUs)."""
        rng = np.random.default_rng([self.seed, self.subject, 202])
        bx, by, bw, bh = self.box
        gx, gy = self._grid
        field = np.zeros((2, bh, bw), np.float32)
        k = 0.0
        for lms, dx, dy, reach in _MORPHS:
            # The second of each left/right pair reuses the first's draw: symmetric morphs.
            k = rng.normal(0, 1) if lms not in ((42, 45), (54,), (11, 12)) else k
            c = lm[list(lms)].mean(axis=0)
            g = np.exp(-0.5 * ((gx - c[0]) ** 2 + (gy - c[1]) ** 2) / (reach * iod) ** 2)
            field[0] += g * dx * iod * k
            field[1] += g * dy * iod * k
        moved = self._warp_box(color, field, cv2.INTER_CUBIC)
        return moved, lm + sample_field(field, bx, by, lm)

    # -- per-frame ---------------------------------------------------------------------
    def _backward_maps(self, field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Maps for cv2.remap that realise the forward displacement ``field`` (dx, dy)."""
        gx, gy = self._grid
        # First guess p - D(p), then one fixed-point step: source = p - D(p - D(p)).
        both = cv2.merge([field[0], field[1]])
        back = cv2.remap(both, gx - field[0] - self.box[0], gy - field[1] - self.box[1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return gx - back[..., 0], gy - back[..., 1]

    def _warp_box(self, image: np.ndarray, field: np.ndarray, interp: int = cv2.INTER_LINEAR) -> np.ndarray:
        bx, by, bw, bh = self.box
        mx, my = self._backward_maps(field)
        out = image.copy()
        out[by:by + bh, bx:bx + bw] = cv2.remap(image, mx, my, interp, borderMode=cv2.BORDER_REPLICATE)
        return out

    def _ensure_planned(self, index: int) -> None:
        if not self.endless:
            return
        block = index // ENDLESS_BLOCK
        for b in (block - 1, block, block + 1):
            if b >= 0 and b not in self._planned_blocks:
                self._planned_blocks.add(b)
                self.timeline.events.extend(endless_block(self.subject, self.seed, self.look.gain, b, ENDLESS_BLOCK))
                self.timeline.events.sort(key=lambda e: e.onset)
        if len(self._planned_blocks) > 8:  # forget old blocks: the live camera runs for hours
            keep = {block - 1, block, block + 1}
            self._planned_blocks &= keep
            self.timeline.events = [e for e in self.timeline.events if e.offset >= (block - 1) * ENDLESS_BLOCK]

    def events(self) -> list[Event]:
        """Ground-truth events of a finite scene."""
        return list(self.timeline.events)

    def blink(self, index: int) -> float:
        """Eyelid closure 0..1 at frame ``index``."""
        self._ensure_planned(index)
        return min(1.0, self.timeline.au_weights(index).get(BLINK_AU, 0.0))

    def displacement(self, index: int) -> np.ndarray | None:
        """Forward (dx px, dy px, dz mm) over the face box at frame ``index``, None when neutral."""
        self._ensure_planned(index)
        weights = self.timeline.au_weights(index)
        total = None
        for au, w in weights.items():
            if w and au != BLINK_AU:
                total = self.fields[au] * w if total is None else total + self.fields[au] * w
        return total

    def head_affine(self, index: int) -> np.ndarray:
        """2x3 matrix of the small head motion at frame ``index`` (identity without motion)."""
        if not self.head_motion:
            return np.array([[1, 0, 0], [0, 1, 0]], np.float64)
        t = index / 60.0
        x, y, roll = (float(np.sum(a * np.sin(2 * np.pi * t / p + ph))) for a, p, ph in self._motion)
        m = cv2.getRotationMatrix2D((float(self.centre[0]), float(self.centre[1])), roll, 1.0)
        m[:, 2] += (x, y)
        return m

    def _memo(self, what: str, index: int, compute):
        """``compute(index)``, reused for the same frame: rendering a frame needs its motion
        field for the warp, for the landmarks of the mouth gap and for the ground-truth
        landmarks the dataset writer stores, and each costs a pass over the head box.

        Keyed by the time line's events too (a caller may replace them), only the last few
        frames are kept; results are shared, so callers must not modify them in place.
        """
        events = self.timeline.events
        key = (what, index, id(self.timeline), tuple(map(id, events)), self.head_motion)
        if key in self._recent:
            return self._recent[key]
        value = compute(index)
        if len(self._recent) >= 12:
            del self._recent[next(iter(self._recent))]  # oldest first (dicts keep insertion order)
        self._recent[key] = value
        return value

    def motion(self, index: int) -> np.ndarray | None:
        """Forward (dx px, dy px, dz mm) over the head box: expressions plus head motion.

        The array is shared with later calls for the same frame: do not modify it.
        """
        return self._memo("motion", index, self._compute_motion)

    def _compute_motion(self, index: int) -> np.ndarray | None:
        field = self.displacement(index)
        if not self.head_motion:
            return field
        m = self.head_affine(index)
        out = np.empty((3, *self._head_weight.shape), np.float32)
        for axis, (a, b, c) in enumerate(((m[0, 0] - 1, m[0, 1], m[0, 2]), (m[1, 0], m[1, 1] - 1, m[1, 2]))):
            head = self._head_field(a, b, c)
            if field is None:
                out[axis] = head
            else:
                np.add(field[axis], head, out=out[axis])
        if field is None:
            out[2] = 0
        else:
            out[2] = field[2]
        return out

    def _head_field(self, a: np.float64, b: np.float64, c: np.float64) -> np.ndarray:
        """``w * (a * gx + b * gy + c)`` over the head box, in float64, bit for bit as written.

        The grid's x only varies along rows and its y down columns, so ``a * gx`` and
        ``b * gy`` are computed once per column and per row and added by broadcasting: the
        same operations on the same numbers, two full-box passes fewer.
        """
        gx, gy = self._grid
        ax = a * gx[0].astype(np.float64)
        by = b * gy[:, 0].astype(np.float64)
        head = np.add(ax[None, :], by[:, None])
        head += c
        head *= self._head_weight
        return head

    def landmarks(self, index: int) -> np.ndarray:
        """True (68, 2) float32 landmark positions in color pixels at frame ``index``."""
        return self._memo("landmarks", index, self._compute_landmarks).copy()

    def _compute_landmarks(self, index: int) -> np.ndarray:
        lm = self.landmarks0
        closure = self.blink(index)
        if closure:
            lm = self.eyelids.move_landmarks(lm, closure)
        field = self.motion(index)
        if field is not None:
            lm = lm + sample_field(field[:2], self.box[0], self.box[1], lm)
        return lm.astype(np.float32)

    def _open_mouth(self, color: np.ndarray, index: int) -> np.ndarray:
        """Darken the gap that lips parting (AU25) or the jaw dropping (AU26) opens.

        A warp only stretches the lips; the dark mouth cavity appears where the inner-lip
        polygon grows beyond where it would be without those two AUs.
        """
        weights = self.timeline.au_weights(index)
        gap_weights = {au: w for au, w in weights.items() if au in (25, 26) and w}
        if not gap_weights:
            return color
        inner = list(range(60, 68))
        moved = {au: w * self._lm_shift(au)[inner] for au, w in gap_weights.items()}
        now = self.landmarks(index)[inner]
        closed = now - sum(moved.values())
        bx, by, bw, bh = self.box
        mask = np.zeros((bh, bw), np.uint8)
        cv2.fillPoly(mask, [np.round(now - (bx, by)).astype(np.int32)], 255)
        cv2.fillPoly(mask, [np.round(closed - (bx, by)).astype(np.int32)], 0)
        soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.8)[..., None]
        out = color.copy()
        roi = out[by:by + bh, bx:bx + bw].astype(np.float32)
        out[by:by + bh, bx:bx + bw] = (roi * (1 - 0.8 * soft) + 12 * soft).astype(np.uint8)
        return out

    def _lm_shift(self, au: int) -> np.ndarray:
        """(68, 2) landmark displacement of one AU at weight 1 (cached)."""
        cache = self.__dict__.setdefault("_lm_shift_cache", {})
        if au not in cache:
            cache[au] = sample_field(self.fields[au][:2], self.box[0], self.box[1], self.landmarks0)
        return cache[au]

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(color RGB uint8, depth metres float32, 0 = no data) of frame ``index``."""
        color, depth = self.color0, self.depth0
        closure = self.blink(index)
        if closure:  # the lids close in the face's own frame, then the face moves
            color = self.eyelids.apply(color, closure)
            depth = self.eyelids.apply(depth, closure, cv2.INTER_NEAREST)
        field = self.motion(index)
        if field is not None:
            bx, by, bw, bh = self.box
            mx, my = self._backward_maps(field[:2])
            warped_color = color.copy()
            warped_color[by:by + bh, bx:bx + bw] = cv2.remap(color, mx, my, cv2.INTER_LINEAR,
                                                             borderMode=cv2.BORDER_REPLICATE)
            warped_depth = depth.copy()
            face = cv2.remap(depth, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
            warped_depth[by:by + bh, bx:bx + bw] = face + field[2] * np.float32(0.001) * (face > 0)
            color, depth = warped_color, warped_depth
            color = self._open_mouth(color, index)
        if self.noise is not None:
            depth = self.noise(depth, index, self.box)
        return color, depth


def sample_timeline_scene(subject: int, seed: int, kinds: list[str], **kwargs) -> SyntheticParticipant:
    """A finite participant scene performing events of the given kinds in order (tests, preview)."""
    from station.synth.events import plan_timeline

    probe = build_look(subject, seed, kwargs.get("width", WIDTH), kwargs.get("height", HEIGHT),
                       _FX_848 * kwargs.get("width", WIDTH) / 848.0)
    rng = np.random.default_rng([seed, subject, 404])
    events, n = plan_timeline(kinds, subject, probe.gain, rng)
    return SyntheticParticipant(subject, seed, events=events, n_frames=n, **kwargs)


__all__ = ["SyntheticParticipant", "sample_timeline_scene", "ENDLESS_BLOCK"]
