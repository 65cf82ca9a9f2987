"""Each shared vocabulary and helper body has one home (issue #10): a new copy fails here.

Reads the station's sources as text; a pattern listed here may occur only in its home(s).
"""

import re
from pathlib import Path

import pytest

import station

ROOT = Path(station.__file__).parent

HOMES = [
    (r"^\s*SEXES\s*=", {"vocab/participant.py"}),
    (r"^\s*PARTICIPANT_RE\s*=", {"vocab/participant.py"}),
    (r"^\s*(THREE_CLASS|THREE_CLASSES|CLASS_EMOTION|EMOTION_SYNONYMS|LABEL_SETS|TARGET_EMOTIONS|REPORT_EMOTIONS)\s*=",
     {"vocab/classes.py"}),
    (r"\"VII\":\s*\(?\"[a-z]", {"vocab/classes.py"}),  # a class -> emotion table
    (r"range\(17, 68\)|^\s*LANDMARKS49_FROM_68\s*=|^\s*(RIGID|STABILISE)_\d+\s*=\s*[\(\[]\d", {"vocab/landmarks.py"}),
    (r"^\s*LANDMARKS_23\s*=", {"vocab/landmarks.py"}),
    (r"^class Marker\b", {"vocab/markers.py"}),
    (r"^class ActionUnit\b|^def parse_aus\b", {"vocab/facs.py"}),
    (r"os\.replace\(|\.replace\((path|out)\)", {"fileio.py", "record/writer.py"}),  # writer: the trial's .writing rename
    (r"csv\.(DictReader|reader)\(", {"fileio.py"}),
    (r"ProcessPoolExecutor\(", {"parallel.py", "camera/framecache.py"}),  # framecache: its long-lived render pool
    (r"from dask\.distributed import Client|^\s*(import|from) joblib", {"parallel.py"}),
    (r"round\([^/\n]*/ *(self\.)?(frame_)?period\)? *- *1", {"elicit/display.py"}),  # missed frames
]


def _sources():
    for path in sorted(ROOT.rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")


@pytest.mark.parametrize("pattern,homes", HOMES, ids=[p for p, _ in HOMES])
def test_one_home(pattern, homes):
    rx = re.compile(pattern, re.MULTILINE)
    found = {}
    for name, text in _sources():
        lines = [text[: m.start()].count("\n") + 1 for m in rx.finditer(text)
                 if not text[text.rfind("\n", 0, m.start()) + 1: m.start()].lstrip().startswith("#")]
        if lines and name not in homes:
            found[name] = lines
    assert not found, f"{pattern!r} belongs in {sorted(homes)} only; also found in {found}"
    assert any(rx.search(text) for name, text in _sources() if name in homes), f"home of {pattern!r} lost it"
