"""Which coded movements become samples, and which classes they get (paper 3.3-3.4).

Rules live in a YAML file (``station/process/rules.yaml`` by default) so a lab can read, cite
and change them without touching code; this module only loads, validates and applies them.
Durations come from the device timestamps of the frames, not from frame counts, so a dropped
frame does not make a movement look shorter than it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from station.checks import StationError, check_choice
from station.vocab.classes import EMOTION_SYNONYMS, OTHERS
from station.vocab.facs import ActionUnit, coded_only, parse_aus

DEFAULT_RULES = Path(__file__).with_name("rules.yaml")


@dataclass(frozen=True)
class Combination:
    """One AU combination of a rule table (sides matter only where the rule names one)."""

    units: tuple[ActionUnit, ...]

    def matched_by(self, sample: tuple[ActionUnit, ...]) -> bool:
        """Every AU of the combination is in the sample."""
        return all(any(s.number == u.number and (not u.side or s.side == u.side) for s in sample) for u in self.units)

    def equals(self, sample: tuple[ActionUnit, ...]) -> bool:
        return self.matched_by(sample) and len({s.number for s in sample}) == len({u.number for u in self.units})


@dataclass
class Rules:
    max_total_ms: float
    max_onset_ms: float
    mode: str
    macro_min_ms: float
    objective: dict[str, list[Combination]]
    nonobjective: dict[str, list[Combination]]
    evidence: list[str]
    aus_alone_if_unique: bool
    synonyms: dict[str, str]
    others: str = OTHERS
    objective_fallback: str = OTHERS


def _combos(table: Any, where: str) -> dict[str, list[Combination]]:
    if not isinstance(table, dict) or not table:
        raise StationError(f"{where} must map class names to lists of AU combinations.")
    out = {}
    for name, combos in table.items():
        if not isinstance(combos, list):
            raise StationError(f"{where}.{name} must be a list of AU combinations like [\"1+2\", \"5\"], got {combos!r}.")
        out[str(name)] = [Combination(parse_aus(str(c), f"{where}.{name}")) for c in combos]
    return out


def load_rules(path: str | Path | None = None) -> Rules:
    """Load and validate a rules file; every error names the file and the key."""
    path = Path(path) if path else DEFAULT_RULES
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise StationError(f"rules file {str(path)!r} cannot be read: {err.strerror}.") from err
    except yaml.YAMLError as err:
        raise StationError(f"rules file {str(path)!r} is not valid YAML: {err}") from err
    where = str(path)
    try:
        sel, nonobj = raw["selection"], raw["nonobjective_classes"]
        rules = Rules(
            max_total_ms=float(sel["max_total_ms"]), max_onset_ms=float(sel["max_onset_ms"]),
            mode=check_choice(sel.get("mode", "any"), ("any", "all"), f"{where}: selection.mode"),
            macro_min_ms=float(sel.get("macro_min_ms", 500)),
            objective=_combos(raw["objective_classes"], f"{where}: objective_classes"),
            nonobjective=_combos(nonobj["aus"], f"{where}: nonobjective_classes.aus"),
            evidence=list(nonobj.get("evidence", ["self_report", "clip_emotion"])),
            aus_alone_if_unique=bool(nonobj.get("aus_alone_if_unique", True)),
            synonyms={**EMOTION_SYNONYMS,  # the station's words, then the rules file's own
                      **{str(k).lower(): str(v) for k, v in (nonobj.get("synonyms") or {}).items()}},
            others=str(raw.get("others", OTHERS)),
            objective_fallback=str(raw.get("objective_fallback", raw.get("others", OTHERS))),
        )
    except (KeyError, TypeError) as err:
        raise StationError(f"rules file {where!r} lacks {err}; see {DEFAULT_RULES} for the expected layout.") from err
    for item in rules.evidence:
        check_choice(item, ("self_report", "clip_emotion"), f"{where}: nonobjective_classes.evidence item")
    return rules


# -- selection ------------------------------------------------------------------------------
def durations_ms(timestamps_ms: np.ndarray, frame_numbers: np.ndarray, onset: int, apex: int, offset: int
                 ) -> tuple[float, float]:
    """(total, onset) durations from the device timestamps of the onset/apex/offset frames.

    Frame numbers are looked up in the trial's /frames table; a number outside it raises.
    """
    lookup = {int(n): i for i, n in enumerate(frame_numbers)}
    missing = [name for name, n in (("onset", onset), ("apex", apex), ("offset", offset)) if int(n) not in lookup]
    if missing:
        inside = all(int(frame_numbers[0]) <= n <= int(frame_numbers[-1]) for n in (onset, apex, offset))
        detail = ("within the trial's range but not stored (dropped during recording); pick a neighbouring frame"
                  if inside else "not in the trial")
        raise StationError(f"{', '.join(missing)} frame(s) {[onset, apex, offset]} are {detail} "
                           f"(frames {int(frame_numbers[0])}..{int(frame_numbers[-1])}, {len(frame_numbers)} stored).")
    t = lambda n: float(timestamps_ms[lookup[int(n)]])  # noqa: E731
    return t(offset) - t(onset), t(apex) - t(onset)


def is_micro(total_ms: float, onset_ms: float, rules: Rules) -> bool:
    """Paper 3.3: total < 500 ms or onset < 260 ms (``mode: all`` asks for both)."""
    short, quick = total_ms < rules.max_total_ms, onset_ms < rules.max_onset_ms
    return (short or quick) if rules.mode == "any" else (short and quick)


# -- labels ---------------------------------------------------------------------------------
def _best(table: dict[str, list[Combination]], units: tuple[ActionUnit, ...]) -> list[str]:
    """Classes in order of match quality: exact equality first, then the largest subset."""
    # a combination naming a side (R12) is more specific than one that does not (12)
    specificity = {name: max((sum(bool(u.side) for u in c.units) for c in combos if c.equals(units)), default=-1)
                   for name, combos in table.items()}
    top = max(specificity.values(), default=-1)
    if top >= 0:
        return [name for name, value in specificity.items() if value == top]
    sizes = {name: max((len(c.units) for c in combos if c.matched_by(units)), default=0) for name, combos in table.items()}
    best = max(sizes.values(), default=0)
    return [name for name, size in sizes.items() if size == best] if best else []


def objective_class(aus: str, rules: Rules) -> str:
    """Class I-VII from the AUs alone (Davison et al. 2017); the fallback class when no
    combination applies, ``Others`` when no AU is coded."""
    units = coded_only(parse_aus(aus))
    if not units:
        return rules.others
    matches = _best(rules.objective, units)
    return matches[0] if matches else rules.objective_fallback


def _canonical(emotion: str, rules: Rules) -> str:
    text = (emotion or "").strip().lower()
    return rules.synonyms.get(text, text)


def nonobjective_class(aus: str, rules: Rules, clip_emotion: str = "", self_report: str = "") -> str:
    """Emotion from AUs + self-report + clip content; ``Others`` when it cannot be determined."""
    units = coded_only(parse_aus(aus))
    allowed = _best(rules.nonobjective, units) if units else []
    # every emotion whose table the AUs match at all, for the evidence to choose from
    possible = [name for name, combos in rules.nonobjective.items() if any(c.matched_by(units) for c in combos)]
    evidence = {"self_report": _canonical(self_report, rules), "clip_emotion": _canonical(clip_emotion, rules)}
    for source in rules.evidence:
        if evidence[source] and evidence[source] in possible:
            return evidence[source]
    if rules.aus_alone_if_unique and len(allowed) == 1:
        return allowed[0]
    return rules.others


def strip_uncoded(aus: str) -> str:
    """The AU text without blinks and eye rolls (they are not coded, paper 3.4)."""
    from station.vocab.facs import format_aus

    return format_aus(coded_only(parse_aus(aus)))
