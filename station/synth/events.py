"""Expression time lines of a synthetic participant and their ground truth.

Ground-truth event dict (stored as JSON in the trial's ``/ground_truth/events``)::

    {"kind": "micro" | "macro" | "blink",
     "onset": int, "apex": int, "offset": int,   # device frame numbers (== rendered index)
     "aus": [int, ...],                           # FACS action units, e.g. [6, 12]
     "objective_class": "I".."VII" | None,        # Davison et al. 2017 objective class (None for blinks)
     "emotion": str,                              # the class's linked emotion (station.vocab.classes:
                                                  # happiness .. fear, contempt for VII); "blink" for blinks
     "intensity": float,                          # apex displacement scale (1.0 ~ 0.05 IOD ~ 3 px)
     "subject": int}

Timing: intensity is 0 at ``onset``, rises smoothly (raised cosine) to 1 at ``apex`` and
falls back to 0 at ``offset``.  Micro-expressions last 150-500 ms in total with an onset
phase (onset -> apex) under 260 ms, as in the micro-expression literature; macro-expressions
last more than 500 ms and are the negatives a spotter must reject; blinks (AU43, 100-300 ms)
are distractors.  Events never overlap and are separated by neutral gaps.

:data:`CLASS_COMBOS` lists which AU combinations the generator draws per class; their class
labels come from the processing area's rule table, the one coders' samples go through.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from station.vocab.classes import CLASS_EMOTION, OBJECTIVE_CLASSES

#: AU combinations the generator draws per objective class (their classes come from the rule table).
GENERATED_AUS: dict[str, tuple[tuple[int, ...], ...]] = {
    "I": ((6, 12), (12,), (6, 12, 25)),
    "II": ((1, 2), (5,), (1, 2, 5), (1, 2, 25, 26)),
    "III": ((4,), (4, 7), (23,), (4, 7, 23), (17, 24)),
    "IV": ((9,), (10,), (4, 9), (9, 10)),
    "V": ((1,), (15,), (1, 15), (15, 17)),
    "VI": ((1, 2, 4), (20,), (1, 2, 4, 20)),
    "VII": ((14,), (24,), (7,)),  # 14 is in VII's row; 24 and 7 fit no class I-VI, hence VII
}
#: Objective class -> (linked emotion, AU combinations we generate); emotions from station.vocab.classes.
CLASS_COMBOS: dict[str, tuple[str, tuple[tuple[int, ...], ...]]] = {
    cls: (CLASS_EMOTION[cls], GENERATED_AUS[cls]) for cls in OBJECTIVE_CLASSES}

KINDS = ("micro", "macro", "blink")
EVENT_KEYS = ("kind", "onset", "apex", "offset", "aus", "objective_class", "emotion", "intensity", "subject")


def objective_class(aus) -> str:
    """Objective class of an AU combination: the same rule table coders' samples go through.

    One table (``station/process/rules.yaml``, Davison et al. 2017) labels both the synthetic
    ground truth and coded samples, so the two can only disagree where the AUs differ.
    """
    from station.process.selection import objective_class as rule_class

    return rule_class("+".join(str(a) for a in sorted(aus)), _default_rules())


@functools.lru_cache(maxsize=1)
def _default_rules():
    from station.process.selection import load_rules

    return load_rules()


@dataclass
class Event:
    kind: str
    onset: int
    apex: int
    offset: int
    aus: list[int]
    objective_class: str | None
    emotion: str
    intensity: float
    subject: int

    def as_dict(self) -> dict:
        return asdict(self)

    def profile(self, index: int) -> float:
        """Relative intensity (0..1) at frame ``index``: raised-cosine rise and fall."""
        if index <= self.onset or index >= self.offset:
            return 0.0
        if index <= self.apex:
            return 0.5 - 0.5 * math.cos(math.pi * (index - self.onset) / (self.apex - self.onset))
        return 0.5 + 0.5 * math.cos(math.pi * (index - self.apex) / (self.offset - self.apex))


@dataclass
class TimingRules:
    """Frame counts for each kind at a given fps (defaults from the literature, see module doc)."""

    fps: int = 60
    micro_ms: tuple[float, float] = (150.0, 500.0)
    micro_onset_max_ms: float = 260.0
    macro_ms: tuple[float, float] = (600.0, 1300.0)
    blink_ms: tuple[float, float] = (100.0, 300.0)
    gap_ms: tuple[float, float] = (170.0, 400.0)

    def frames(self, ms: float) -> int:
        return int(round(ms * self.fps / 1000.0))


def _micro_timing(rng: np.random.Generator, rules: TimingRules) -> tuple[int, int]:
    """(total frames, onset->apex frames) of one micro-expression, inside the rules."""
    lo = max(3, math.ceil(rules.micro_ms[0] * rules.fps / 1000.0) + 1)
    hi = math.floor(rules.micro_ms[1] * rules.fps / 1000.0)
    total = int(rng.integers(lo, hi + 1))
    onset_max = min(total - 2, math.ceil(rules.micro_onset_max_ms * rules.fps / 1000.0) - 1)
    rise = int(rng.integers(max(2, total // 4), max(3, min(onset_max, total // 2 + 1)) + 1))
    return total, min(rise, onset_max)


def make_event(kind: str, start: int, subject: int, gain: float, rng: np.random.Generator,
               rules: TimingRules = TimingRules()) -> Event:
    """One event of ``kind`` whose onset is frame ``start``."""
    if kind == "blink":
        total = int(rng.integers(rules.frames(rules.blink_ms[0]), rules.frames(rules.blink_ms[1]) + 1))
        rise = max(2, int(round(total * rng.uniform(0.3, 0.45))))
        return Event("blink", start, start + rise, start + total, [43], None, "blink",
                     round(float(rng.uniform(0.85, 1.0)), 3), subject)
    cls = str(rng.choice(list(CLASS_COMBOS)))
    emotion, combos = CLASS_COMBOS[cls]
    aus = list(combos[int(rng.integers(len(combos)))])
    if kind == "micro":
        total, rise = _micro_timing(rng, rules)
        intensity = gain * rng.uniform(0.6, 1.0)
    elif kind == "macro":
        total = int(rng.integers(rules.frames(rules.macro_ms[0]), rules.frames(rules.macro_ms[1]) + 1))
        rise = int(round(total * rng.uniform(0.25, 0.4)))
        intensity = gain * rng.uniform(1.8, 2.8)
    else:
        raise ValueError(f"event kind must be one of {KINDS}, got {kind!r}")
    return Event(kind, start, start + rise, start + total, aus, objective_class(aus), emotion,
                 round(float(intensity), 3), subject)


def plan_timeline(kinds: list[str], subject: int, gain: float, rng: np.random.Generator, *, start: int = 8,
                  tail: int = 8, rules: TimingRules = TimingRules()) -> tuple[list[Event], int]:
    """Events of the given kinds, in that order, separated by neutral gaps; returns (events, n_frames)."""
    events, t = [], start
    for i, kind in enumerate(kinds):
        if i:
            t += int(rng.integers(rules.frames(rules.gap_ms[0]), rules.frames(rules.gap_ms[1]) + 1))
        ev = make_event(kind, t, subject, gain, rng, rules)
        events.append(ev)
        t = ev.offset
    return events, t + tail


@dataclass
class Timeline:
    """Events of one scene and the per-frame AU weights they imply."""

    events: list[Event]
    n_frames: int | None
    block: int = 0  # for endless scenes: events were planned in blocks of this many frames
    _cache: dict = field(default_factory=dict, repr=False)

    def active(self, index: int) -> list[Event]:
        return [e for e in self.events if e.onset < index < e.offset]

    def au_weights(self, index: int) -> dict[int, float]:
        """AU -> displacement weight (event intensity x profile) at frame ``index``."""
        weights: dict[int, float] = {}
        for ev in self.active(index):
            p = ev.profile(index) * ev.intensity
            for au in ev.aus:
                weights[au] = weights.get(au, 0.0) + p
        return weights


def endless_block(subject: int, seed: int, gain: float, block_index: int, block_frames: int,
                  rules: TimingRules = TimingRules()) -> list[Event]:
    """Events of one block of an endless scene (the live virtual camera): reproducible per block."""
    rng = np.random.default_rng([seed, subject, block_index, 303])
    kinds = list(rng.choice(["micro", "micro", "micro", "blink", "blink", "macro"], size=6, replace=False))
    events, n = plan_timeline(kinds, subject, gain, rng, start=block_index * block_frames + 20, rules=rules)
    return [e for e in events if e.offset < (block_index + 1) * block_frames - 4]
