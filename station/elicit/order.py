"""Clip order per participant: fixed, seeded random, or balanced Latin square.

Order effects matter in elicitation (a sad film colours the next one), so labs counterbalance.
Every policy is a pure function of (clips, participant, seed, row): re-running a session for
the same participant gives the same order, and the order used is stored in session.json.
"""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

import numpy as np

from station.checks import StationError, check_choice
from station.elicit.protocol import ORDER_POLICIES


def balanced_latin_square(n: int) -> list[list[int]]:
    """Williams design: each condition follows every other exactly once (n even) across rows.

    For odd ``n`` the mirrored rows are appended (2n rows), the standard construction that keeps
    first-order carry-over balanced.
    """
    if n < 1:
        raise StationError(f"a Latin square needs at least one clip, got {n}.")
    first, lo, hi = [], 0, n - 1
    for i in range(n):  # 0, n-1, 1, n-2, 2, ...
        if i % 2 == 0:
            first.append(lo)
            lo += 1
        else:
            first.append(hi)
            hi -= 1
    rows = [[(c + r) % n for c in first] for r in range(n)]
    if n % 2 == 1:
        rows += [list(reversed(row)) for row in rows]
    return rows


def participant_row(participant: str) -> int:
    """Default Latin-square row: the participant number (P07 -> 6), else a stable hash.

    Labs number participants as they come, so consecutive participants get consecutive rows.
    """
    m = re.search(r"(\d+)$", participant)
    if m:
        return max(0, int(m.group(1)) - 1)
    return int.from_bytes(hashlib.sha256(participant.encode()).digest()[:4], "big")


def participant_seed(participant: str, seed: int) -> int:
    """A seed that differs per participant but is reproducible (not Python's salted hash)."""
    digest = hashlib.sha256(f"{seed}:{participant}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def clip_order(clips: Sequence[str], policy: str, participant: str, seed: int = 0,
               row: int | None = None) -> tuple[list[str], dict]:
    """The order ``participant`` sees ``clips``; also returns how it was chosen (for session.json)."""
    check_choice(policy, ORDER_POLICIES, "order.policy")
    clips = list(clips)
    if policy == "fixed":
        return clips, {"policy": "fixed"}
    if policy == "random":
        s = participant_seed(participant, seed)
        perm = np.random.default_rng(s).permutation(len(clips))
        return [clips[i] for i in perm], {"policy": "random", "seed": seed, "participant_seed": s}
    square = balanced_latin_square(len(clips))
    r = participant_row(participant) if row is None else row
    if r < 0:
        raise StationError(f"Latin-square row must be >= 0, got {r}.")
    chosen = square[r % len(square)]
    return [clips[i] for i in chosen], {"policy": "latin_square", "row": r % len(square), "rows": len(square)}
