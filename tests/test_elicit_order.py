"""Clip order policies: every clip once, reproducible per participant, counterbalanced."""

from __future__ import annotations

from collections import Counter

import pytest

from station.checks import StationError
from station.elicit.order import balanced_latin_square, clip_order, participant_row

CLIPS = [f"c{i}" for i in range(14)]


@pytest.mark.parametrize("n", [2, 3, 4, 5, 14])
def test_balanced_latin_square(n):
    rows = balanced_latin_square(n)
    assert len(rows) == (n if n % 2 == 0 else 2 * n)
    for row in rows:
        assert sorted(row) == list(range(n))
    for pos in range(n):  # each clip in each position equally often
        assert Counter(r[pos] for r in rows) == Counter({c: len(rows) // n for c in range(n)})
    pairs = Counter((r[i], r[i + 1]) for r in rows for i in range(n - 1))
    assert len(set(pairs.values())) == 1 and len(pairs) == n * (n - 1)  # first-order carry-over balanced


def test_fixed_random_and_latin_square_orders():
    fixed, info = clip_order(CLIPS, "fixed", "P01")
    assert fixed == CLIPS and info == {"policy": "fixed"}
    a, _ = clip_order(CLIPS, "random", "P01", seed=3)
    assert a == clip_order(CLIPS, "random", "P01", seed=3)[0]  # reproducible
    assert a != clip_order(CLIPS, "random", "P02", seed=3)[0]  # differs per participant
    assert a != clip_order(CLIPS, "random", "P01", seed=4)[0]
    assert sorted(a) == sorted(CLIPS)
    first = [clip_order(CLIPS, "latin_square", f"P{i:02d}")[0][0] for i in range(1, 15)]
    assert sorted(first) == sorted(CLIPS)  # 14 consecutive participants open with 14 different films
    order, info = clip_order(CLIPS, "latin_square", "anon", row=20)
    assert info["row"] == 20 % 14 and sorted(order) == sorted(CLIPS)


def test_participant_row_and_bad_input():
    assert participant_row("P07") == 6 and participant_row("demo01") == 0
    assert participant_row("alpha") == participant_row("alpha")
    with pytest.raises(StationError, match="order.policy must be one of"):
        clip_order(CLIPS, "shuffle", "P01")
    with pytest.raises(StationError, match="row must be >= 0"):
        clip_order(CLIPS, "latin_square", "P01", row=-1)
