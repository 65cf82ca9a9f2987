"""Display frame statistics: how dropped display frames are counted."""

from __future__ import annotations


def test_dropped_display_frames_are_counted_in_missed_refreshes():
    from station.elicit.display import frame_stats

    p = 1 / 60
    s = frame_stats([p, p, 3 * p, p, 1.4 * p, 2 * p], p)
    assert s["dropped"] == 3 and s["late_intervals"] == 2 and s["flips"] == 7
    assert abs(s["max_ms"] - 50.0) < 1e-9
    assert frame_stats([], p) == {"flips": 0, "dropped": 0}


def test_reflow_keeps_paragraphs_and_joins_hard_wrapped_lines():
    from station.elicit.runner import reflow

    assert reflow("Keep a neutral\n  face.\n\nPress SPACE.\n") == "Keep a neutral face.\n\nPress SPACE."
    assert reflow("") == ""
