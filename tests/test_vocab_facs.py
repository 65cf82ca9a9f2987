"""FACS notation: side and intensity kept as data; every spelling a database uses."""

import pytest

from station.checks import StationError
from station.vocab.facs import ActionUnit, format_aus, parse_aus


@pytest.mark.parametrize("text,units", [
    ("AU12", (ActionUnit(12),)),
    ("R12", (ActionUnit(12, "R"),)),
    ("4+L10", (ActionUnit(4), ActionUnit(10, "L"))),
    ("12A", (ActionUnit(12, "", "A"),)),
    ("12", (ActionUnit(12),)),
    (12, (ActionUnit(12),)),
    ("12.0", (ActionUnit(12),)),
    ([12, 6], (ActionUnit(6), ActionUnit(12))),
    ("AU1 + AU2", (ActionUnit(1), ActionUnit(2))),
])
def test_spellings_parse_to_the_same_units(text, units):
    assert parse_aus(text) == units


def test_side_and_intensity_are_data():
    (unit,) = parse_aus("r12c")
    assert (unit.number, unit.side, unit.intensity, unit.level) == (12, "R", "C", 3)
    assert unit.key == (12, "R") and format_aus([unit]) == "R12C"


def test_bad_notation_names_the_field():
    with pytest.raises(StationError, match="sample 3.*'12X'"):
        parse_aus("1+12X", "sample 3")
    with pytest.raises(StationError, match="AU 3 "):
        parse_aus("3")
