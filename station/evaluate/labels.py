"""Label sets of the baseline (paper 4.3): objective, non-objective and 3-class.

* ``objective``: the objective class (I-VII, Others) as coded.
* ``nonobjective``: the emotion class, without ``sadness`` (the paper drops it: too few samples).
* ``3class``: positive / negative / surprise (paper 4.3.3, MEGC 2019 composite), derived from
  the objective classes' linked emotions (I happiness -> positive, II surprise -> surprise,
  III-VII anger, disgust, sadness, fear, contempt -> negative) or, for databases labelled by
  emotion names (CASME II, SAMM), from the emotion; ``Others`` and unknown labels are dropped.
  The table is :data:`station.vocab.classes.THREE_CLASS` (class VII is decided there).

Classes with fewer than ``min_class_size`` samples are dropped from a label set (with a note),
because a class must be able to appear in both a training and a test fold.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from station.vocab.classes import OTHER_WORDS, OTHERS, THREE_CLASS, canonical


@dataclass
class LabelSet:
    """Which samples take part in a label set, and their labels."""

    name: str
    index: np.ndarray  # positions in the database's sample list
    y: np.ndarray  # string labels, same length as index
    dropped: dict[str, int]  # reason -> count, for the report

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.y.tolist()))


def make_label_set(name: str, objective: list[str], nonobjective: list[str], three_source: list[str],
                   min_class_size: int = 3) -> LabelSet:
    """Labels of one label set from per-sample objective / non-objective / 3-class source labels."""
    raw: list[str | None] = []
    dropped: Counter = Counter()
    for obj, nonobj, src in zip(objective, nonobjective, three_source):
        if name == "objective":
            lab = canonical(obj)
            raw.append(lab if lab else None)
        elif name == "nonobjective":
            lab = canonical(nonobj)
            if lab == "sadness":
                dropped["sadness (dropped as in the paper)"] += 1
                raw.append(None)
            else:
                raw.append(lab if lab else None)
        else:
            lab = canonical(src)
            mapped = THREE_CLASS.get(lab)
            if mapped is None:
                dropped[OTHERS if lab in OTHER_WORDS else f"no 3-class mapping for {lab!r}"] += 1
            raw.append(mapped)
    if name != "3class":  # show labels as the database spells them ("Others", "I"), compare canonically
        shown: dict[str, str] = {}
        for original in (objective if name == "objective" else nonobjective):
            shown.setdefault(canonical(original), str(original).strip())
        raw = [shown[lab] if lab is not None else None for lab in raw]
    counts = Counter(lab for lab in raw if lab is not None)
    for lab, n in counts.items():
        if n < min_class_size:
            dropped[f"class {lab!r}: {n} < {min_class_size} samples"] += n
    keep = [i for i, lab in enumerate(raw) if lab is not None and counts[lab] >= min_class_size]
    y = np.array([raw[i] for i in keep], dtype=object)
    return LabelSet(name=name, index=np.array(keep, dtype=np.int64), y=y, dropped=dict(dropped))
