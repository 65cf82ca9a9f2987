"""Time lines of the synthetic participant: timing rules, objective classes, ground-truth keys."""

from __future__ import annotations

import json

import numpy as np
import pytest

from station.checks import StationError
from station.synth.dataset import DATASET_TIMING, plan_dataset
from station.synth.events import (CLASS_COMBOS, EVENT_KEYS, TimingRules, endless_block, make_event,
                                  objective_class, plan_timeline)

FPS = 60


def _ms(frames: int) -> float:
    return frames * 1000.0 / FPS


@pytest.mark.parametrize("rules", [TimingRules(), DATASET_TIMING], ids=["default", "dataset"])
def test_every_kind_keeps_its_timing_rules(rules):
    rng = np.random.default_rng(1)
    for _ in range(300):
        micro = make_event("micro", 10, 1, 1.0, rng, rules)
        assert 150 < _ms(micro.offset - micro.onset) <= 500
        assert 0 < _ms(micro.apex - micro.onset) < 260
        assert micro.onset < micro.apex < micro.offset
        macro = make_event("macro", 10, 1, 1.0, rng, rules)
        assert _ms(macro.offset - macro.onset) > 500
        assert macro.onset < macro.apex < macro.offset
        blink = make_event("blink", 10, 1, 1.0, rng, rules)
        assert 100 <= _ms(blink.offset - blink.onset) <= 300 and blink.aus == [43] and blink.kind == "blink"


def test_micro_expressions_are_weaker_than_macro_expressions():
    rng = np.random.default_rng(2)
    micro = [make_event("micro", 0, 1, 1.0, rng).intensity for _ in range(100)]
    macro = [make_event("macro", 0, 1, 1.0, rng).intensity for _ in range(100)]
    assert max(micro) < min(macro)


def test_generated_combinations_get_their_own_objective_class():
    for cls, (emotion, combos) in CLASS_COMBOS.items():
        for aus in combos:
            assert objective_class(aus) == cls, (aus, cls)


@pytest.mark.parametrize("aus,cls", [((6, 12), "I"), ((1, 2, 25, 26), "II"), ((4, 7, 23), "III"), ((9,), "IV"),
                                     ((15, 17), "V"), ((1, 2, 4, 20), "VI"), ((14,), "VII")])
def test_objective_class_rules(aus, cls):
    assert objective_class(aus) == cls


def test_timeline_events_are_disjoint_with_neutral_gaps_and_documented_keys():
    rng = np.random.default_rng(3)
    events, n = plan_timeline(["micro", "blink", "macro", "micro"], 7, 1.1, rng)
    for a, b in zip(events, events[1:]):
        assert b.onset - a.offset >= TimingRules().frames(170)
    assert events[-1].offset < n
    for ev in events:
        d = ev.as_dict()
        assert tuple(d) == EVENT_KEYS and d["subject"] == 7
        json.dumps(d)  # the ground truth is stored as JSON
        if ev.kind != "blink":
            assert d["emotion"] == CLASS_COMBOS[d["objective_class"]][0]


def test_profile_is_zero_at_onset_and_offset_and_peaks_at_apex():
    ev = make_event("micro", 100, 1, 1.0, np.random.default_rng(4))
    values = [ev.profile(i) for i in range(ev.onset, ev.offset + 1)]
    assert values[0] == 0 and values[-1] == 0
    assert ev.profile(ev.apex) == pytest.approx(1.0)
    rise = values[: ev.apex - ev.onset + 1]
    assert all(b > a for a, b in zip(rise, rise[1:]))


def test_endless_blocks_are_reproducible_and_stay_inside_their_block():
    a = endless_block(2, 5, 1.0, 3, 600)
    b = endless_block(2, 5, 1.0, 3, 600)
    assert [e.as_dict() for e in a] == [e.as_dict() for e in b] and a
    assert all(1800 <= e.onset and e.offset < 2400 for e in a)


def test_dataset_plan_spreads_the_samples_over_the_subjects():
    plans = plan_dataset(33, 373, 0)
    micro = {}
    for p in plans:
        micro[p.subject] = micro.get(p.subject, 0) + p.kinds.count("micro")
        assert "macro" in p.kinds and "blink" in p.kinds
    assert sum(micro.values()) == 373 and sorted(micro) == list(range(1, 34))
    assert max(micro.values()) - min(micro.values()) <= 1
    assert len({p.relpath for p in plans}) == len(plans)
    with pytest.raises(StationError, match="--samples"):
        plan_dataset(5, 3, 0)
