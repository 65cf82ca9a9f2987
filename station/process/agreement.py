"""Inter-coder reliability (paper eq. 1), the disagreements to arbitrate, and the final coding.

The paper's reliability is ``R = 2 * AU(C1, C2) / AU_all``: AUs both coders scored, over all AUs
the two coders scored, per micro-expression; its 0.84 is the pooled figure over the database.
Two coders agree on an AU when both scored its number (the FACS manual's agreement ratio);
where they differ in laterality (``L12`` / ``R12`` / bilateral ``12``) or intensity (``7B`` /
``7C``) the AU counts as agreed for R and the difference is listed for arbitration, never
resolved silently.  Alongside R: agreement per AU number and Cohen's kappa on AU presence (each
AU number x each movement is one yes/no judgement by each coder).  Blinks and eye rolls are not
coded (section 3.4) and take no part.

To compare AUs the two coders must first be talking about the same movement, so their
annotations of a trial are paired by interval overlap (best temporal IoU first, the MEGC
convention); a trial is its ``trial_id`` (file names repeat across participants and sessions).
A movement only one coder saw contributes its AUs to ``AU_all`` and nothing to agreement, and is
listed for arbitration.

Arbitration is a CSV round trip: ``disagreements.csv`` has empty ``decision`` and ``decided_by``
columns the coders fill in after discussing; ``station agree ... --arbitration`` applies it and
writes ``arbitration.csv``: every decision applied, who made it and when.  Averaged frames are
rounded half up (501.5 -> 502), the convention coders and spreadsheets use.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from station.checks import StationError
from station.process.coding import Annotation
from station.vocab.facs import INTENSITIES, ActionUnit, coded_only, format_aus, parse_aus

DISAGREEMENT_COLUMNS = ("trial_id", "participant", "session", "trial", "pair", "field", "coder1", "coder2",
                        "decision", "decided_by")
ARBITRATION_COLUMNS = DISAGREEMENT_COLUMNS + ("applied",)
BILATERAL = "bilateral"


def trial_key_of(trial_id: str, name: str, participant: str = "", session: str = "") -> str:
    """What makes two rows the same trial: the trial id; for rows without one, the file name with
    participant and session (as much as the row says)."""
    return trial_id or f"name:{name}|{participant}|{session}"


def trial_of(ann: Annotation) -> str:
    return trial_key_of(ann.trial_id, ann.trial, ann.participant, ann.session)


def check_one_trial_per_name(annotations: list[Annotation], where: str) -> None:
    """Refuse rows without a trial id whose trial name repeats a movement number.

    Why: rows of coding files older than trial ids are paired by trial name; every participant's
    first trial has the same name, so rows of several trials can share one.  Within one coder's
    file a movement number (``sample``) repeating under one name proves it: pairing those rows by
    interval would compare different participants' movements and give a reliability that is not
    the coders'.  An error naming the file, the trial and the numbers, instead of a number.
    """
    seen = Counter((trial_of(ann), ann.sample) for ann in annotations if not ann.trial_id)
    repeated = sorted((k, n) for k, n in seen.items() if n > 1)
    if repeated:
        (key, sample), n = repeated[0]
        name = next(a.trial for a in annotations if trial_of(a) == key)
        raise StationError(
            f"{where}: trial {name!r} has movement number {sample} in {n} rows without a trial id "
            f"({len(repeated)} repeated number(s) in all): these rows come from several trials of that name "
            "(participants or sessions), or the file numbers its movements twice; either way they cannot be "
            "paired by name. Open each trial once in `station code` with its coding file to add the trial "
            "ids, or write each trial's rows to a file of its own; if the file holds one trial, number its "
            "movements 1, 2, 3... in the 'sample' column.")


def half_up(a: int, b: int) -> int:
    """Mean of two frame numbers rounded half up (``round`` would round 506.5 to 506)."""
    return math.floor((a + b) / 2 + 0.5)


def interval_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Temporal IoU of two inclusive frame intervals."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0
    return inter / ((a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter)


def pair_annotations(first: list[Annotation], second: list[Annotation], min_iou: float = 0.0
                     ) -> list[tuple[Annotation | None, Annotation | None]]:
    """Greedy one-to-one pairing per trial by descending IoU; unpaired ones come with ``None``."""
    pairs: list[tuple[Annotation | None, Annotation | None]] = []
    for trial in sorted({trial_of(a) for a in first} | {trial_of(b) for b in second}):
        a_list = [a for a in first if trial_of(a) == trial]
        b_list = [b for b in second if trial_of(b) == trial]
        scored = sorted(((interval_iou((a.onset, a.offset), (b.onset, b.offset)), i, j)
                         for i, a in enumerate(a_list) for j, b in enumerate(b_list)), reverse=True)
        used_a: set[int] = set()
        used_b: set[int] = set()
        for iou, i, j in scored:
            if iou <= min_iou or i in used_a or j in used_b:
                continue
            used_a.add(i)
            used_b.add(j)
            pairs.append((a_list[i], b_list[j]))
        pairs += [(a, None) for i, a in enumerate(a_list) if i not in used_a]
        pairs += [(None, b) for j, b in enumerate(b_list) if j not in used_b]
    return sorted(pairs, key=lambda p: (trial_of(p[0] or p[1]), (p[0] or p[1]).onset))


def units_by_number(ann: Annotation | None) -> dict[int, list[ActionUnit]]:
    """A coder's coded AUs (blinks, eye rolls excluded) grouped by AU number."""
    if ann is None:
        return {}
    out: dict[int, list[ActionUnit]] = {}
    where = f"coder {ann.coder}, trial {ann.trial}, movement {ann.sample}"
    for unit in coded_only(parse_aus(ann.aus, where)):
        out.setdefault(unit.number, []).append(unit)
    return out


def side_text(units: list[ActionUnit]) -> str:
    sides = sorted({u.side for u in units if u.side})
    return "+".join(sides) if sides else BILATERAL


def intensity_text(units: list[ActionUnit]) -> str:
    return "/".join(sorted({u.intensity for u in units if u.intensity}))


@dataclass
class PairResult:
    """Reliability of one movement: AUs agreed, AUs scored, and R."""

    trial: str
    pair: int
    first: Annotation | None
    second: Annotation | None
    agreed: int
    total: int

    @property
    def reliability(self) -> float:
        """Eq. 1 for this movement; NaN when neither coder scored an AU (nothing to agree on)."""
        return 2 * self.agreed / self.total if self.total else float("nan")


@dataclass
class AUAgreement:
    """One AU number over all movements: how often both, only coder 1, only coder 2 scored it."""

    number: int
    both: int
    only1: int
    only2: int
    neither: int

    @property
    def agreement(self) -> float:
        scored = 2 * self.both + self.only1 + self.only2
        return 2 * self.both / scored if scored else 1.0

    @property
    def kappa(self) -> float:
        return cohen_kappa(self.both, self.only1, self.only2, self.neither)


def cohen_kappa(both: int, only1: int, only2: int, neither: int) -> float:
    """Cohen's kappa of a 2x2 presence table; NaN when chance agreement is total (undefined)."""
    n = both + only1 + only2 + neither
    if n == 0:
        return float("nan")
    po = (both + neither) / n
    p1, p2 = (both + only1) / n, (both + only2) / n
    pe = p1 * p2 + (1 - p1) * (1 - p2)
    return (po - pe) / (1 - pe) if pe < 1 else float("nan")


@dataclass
class AgreementReport:
    pairs: list[PairResult]
    disagreements: list[dict] = field(default_factory=list)
    per_au: list[AUAgreement] = field(default_factory=list)

    @property
    def overall(self) -> float:
        """Pooled eq. 1 over every movement: 2 * sum AU(C1,C2) / sum AU_all."""
        total = sum(p.total for p in self.pairs)
        return 2 * sum(p.agreed for p in self.pairs) / total if total else float("nan")

    @property
    def mean_per_sample(self) -> float:
        scored = [p.reliability for p in self.pairs if p.total]
        return sum(scored) / len(scored) if scored else float("nan")

    @property
    def kappa(self) -> float:
        """Cohen's kappa on AU presence pooled over every AU number and movement."""
        cells = [sum(getattr(a, k) for a in self.per_au) for k in ("both", "only1", "only2", "neither")]
        return cohen_kappa(*cells)

    def count(self, kind: str) -> int:
        """Disagreements of one kind: movement, onset/apex/offset, presence, side, intensity."""
        return sum(1 for d in self.disagreements if field_kind(d["field"]) == kind)


def field_kind(name: str) -> str:
    if name.endswith(" side"):
        return "side"
    if name.endswith(" intensity"):
        return "intensity"
    if name.startswith("AU"):
        return "presence"
    return name


def _row(ann: Annotation, n: int, name: str, c1, c2) -> dict:
    return dict(trial_id=ann.trial_id, participant=ann.participant, session=ann.session, trial=ann.trial,
                pair=n, field=name, coder1=c1, coder2=c2, decision="", decided_by="")


def compare(first: list[Annotation], second: list[Annotation], frame_tolerance: int = 0) -> AgreementReport:
    """Pair the two codings, compute eq. 1 per movement and overall, and list every disagreement.

    ``frame_tolerance``: onset/apex/offset differing by at most this many frames are not listed
    as disagreements (they are averaged, half up, in the final coding).
    """
    results: list[PairResult] = []
    disagreements: list[dict] = []
    presence: list[tuple[set[int], set[int]]] = []
    for n, (a, b) in enumerate(pair_annotations(first, second), start=1):
        ref = a or b
        ua, ub = units_by_number(a), units_by_number(b)
        results.append(PairResult(ref.trial, n, a, b, len(ua.keys() & ub.keys()), len(ua) + len(ub)))
        presence.append((set(ua), set(ub)))
        if a is None or b is None:
            text = f"{ref.onset}/{ref.apex}/{ref.offset} {ref.aus}".strip()
            disagreements.append(_row(ref, n, "movement", text if a else "", text if b else ""))
            continue
        for name in ("onset", "apex", "offset"):
            if abs(getattr(a, name) - getattr(b, name)) > frame_tolerance:
                disagreements.append(_row(ref, n, name, getattr(a, name), getattr(b, name)))
        for number in sorted(ua.keys() | ub.keys()):
            if number not in ua or number not in ub:
                disagreements.append(_row(ref, n, f"AU{number}", "yes" if number in ua else "",
                                          "yes" if number in ub else ""))
                continue
            s1, s2 = side_text(ua[number]), side_text(ub[number])
            if s1 != s2:
                disagreements.append(_row(ref, n, f"AU{number} side", s1, s2))
            i1, i2 = intensity_text(ua[number]), intensity_text(ub[number])
            if i1 != i2:
                disagreements.append(_row(ref, n, f"AU{number} intensity", i1 or "-", i2 or "-"))
    numbers = sorted({x for p in presence for s in p for x in s})
    per_au = []
    for number in numbers:
        cells = [0, 0, 0, 0]  # both, only coder 1, only coder 2, neither
        for s1, s2 in presence:
            cells[{(True, True): 0, (True, False): 1, (False, True): 2, (False, False): 3}[(number in s1, number in s2)]] += 1
        per_au.append(AUAgreement(number, *cells))
    return AgreementReport(results, disagreements, per_au)


def read_arbitration(path: str | Path, arbiter: str | None = None) -> dict[tuple[str, int, str], dict]:
    """Filled-in decisions of a disagreements CSV, keyed by (trial, pair, field).

    Every decision must say who made it (``decided_by``, or ``arbiter`` for rows that leave it
    empty); a decision without a name is refused, naming the row.
    """
    from station.process.coding import read_rows

    path = Path(path)
    if not path.exists():
        raise StationError(f"arbitration file {str(path)!r} does not exist.")
    out: dict[tuple[str, int, str], dict] = {}
    for line, row in read_rows(path, ("pair", "field", "decision"), "arbitration file"):
        decision = row["decision"].strip()
        if not decision:
            continue
        who = row.get("decided_by", "").strip() or (arbiter or "")
        if not who:
            raise StationError(f"{path}:{line}, field decided_by: decision {decision!r} on {row['field']} "
                               "says nobody made it; write the arbiter's name in decided_by (or pass --arbiter).")
        try:
            pair = int(row["pair"])
        except ValueError as err:
            raise StationError(f"{path}:{line}, field pair: {row['pair']!r} is not a pair number.") from err
        key = (trial_key_of(row.get("trial_id", "").strip(), row.get("trial", "").strip(),
                            row.get("participant", "").strip(), row.get("session", "").strip()), pair, row["field"].strip())
        out[key] = {**row, "decision": decision, "decided_by": who}
    return out


def _decided_frame(value: str, where: str) -> int:
    try:
        return int(value)
    except ValueError as err:
        raise StationError(f"{where}: decision {value!r} must be a frame number.") from err


def _decided_side(value: str, where: str) -> str:
    v = value.strip().upper()
    if v in ("L", "R"):
        return v
    if v in ("B", "BILATERAL", "BOTH", "L+R", "NONE", "-"):
        return ""
    raise StationError(f"{where}: side decision {value!r} must be L, R or bilateral.")


def _decided_intensity(value: str, where: str) -> str:
    v = value.strip().upper()
    if v in INTENSITIES:
        return v
    if v in ("-", "NONE", ""):
        return ""
    raise StationError(f"{where}: intensity decision {value!r} must be one of A-E (or - for none).")


def merge(report: AgreementReport, decisions: dict[tuple[str, int, str], dict] | None = None,
          unresolved: str = "drop") -> tuple[list[Annotation], list[dict], list[dict]]:
    """The final coding, what is still undecided, and the decisions applied.

    An AU both coders scored is kept; its side and intensity are the decision where they differ,
    else (undecided, and listed as pending) no side and no intensity rather than one coder's
    value.  A disputed AU is kept or dropped by its decision, else by ``unresolved`` (``keep`` =
    union of the coders, ``drop`` = intersection).  Frames are the decision, else the mean of
    the two coders rounded half up.  A movement only one coder saw is kept only if decided
    ``keep`` (or ``unresolved == 'keep'``).
    """
    if unresolved not in ("keep", "drop"):
        raise StationError(f"unresolved must be 'keep' or 'drop', got {unresolved!r}.")
    decisions = decisions or {}
    final: list[Annotation] = []
    pending: list[dict] = []
    applied: list[dict] = []
    disputed = {(d["pair"], d["field"]): d for d in report.disagreements}
    now = dt.datetime.now().astimezone().isoformat(timespec="seconds")

    def decide(p: PairResult, name: str) -> str:
        """The decision on a field that is disputed now; a decision taken on other values is refused."""
        ref = p.first or p.second
        if (p.pair, name) not in disputed:
            return ""
        dispute = disputed[(p.pair, name)]
        found = decisions.get((trial_of(ref), p.pair, name))
        if not found:
            pending.append(dispute)
            return ""
        then = (str(found.get("coder1", dispute["coder1"])), str(found.get("coder2", dispute["coder2"])))
        if then != (str(dispute["coder1"]), str(dispute["coder2"])):
            raise StationError(
                f"arbitration of {ref.participant or '?'} {ref.trial} pair {p.pair}, field {name}: decided when coder 1 "
                f"said {then[0]!r} and coder 2 {then[1]!r}, but now they say {dispute['coder1']!r} and "
                f"{dispute['coder2']!r}; the codings changed since disagreements.csv was written. Run `station "
                "agree` without --arbitration and decide on the new disagreements.csv.")
        applied.append({**dispute, "decision": found["decision"], "decided_by": found["decided_by"], "applied": now})
        return found["decision"]

    for p in report.pairs:
        where = f"arbitration of pair {p.pair} ({p.trial})"
        ref = p.first or p.second
        if p.first is None or p.second is None:
            decision = decide(p, "movement")
            if (decision or unresolved).lower() not in ("keep", "yes"):
                continue
            final.append(Annotation("final", ref.trial, 0, ref.onset, ref.apex, ref.offset, ref.aus,
                                    f"only {ref.coder}; {ref.notes}".strip("; "), trial_id=ref.trial_id,
                                    participant=ref.participant, session=ref.session))
            continue
        a, b = p.first, p.second
        frames = {}
        for name in ("onset", "apex", "offset"):
            decision = decide(p, name)
            frames[name] = (_decided_frame(decision, where) if decision
                            else half_up(getattr(a, name), getattr(b, name)))
        ua, ub = units_by_number(a), units_by_number(b)
        keep: list[ActionUnit] = []
        for number in sorted(ua.keys() | ub.keys()):
            if number in ua and number in ub:
                side_d = decide(p, f"AU{number} side")
                int_d = decide(p, f"AU{number} intensity")
                sides = ([_decided_side(side_d, where)] if side_d else
                         sorted({u.side for u in ua[number]}) if side_text(ua[number]) == side_text(ub[number])
                         else [""])
                intensity = (_decided_intensity(int_d, where) if int_d else
                             (ua[number][0].intensity
                              if intensity_text(ua[number]) == intensity_text(ub[number]) else ""))
                keep += [ActionUnit(number, s, intensity) for s in sides]
                continue
            decision = decide(p, f"AU{number}")
            if (decision or unresolved).lower() in ("keep", "yes"):
                keep += (ua.get(number) or ub.get(number))
        uncoded = sorted({u for u in parse_aus(a.aus) + parse_aus(b.aus) if not coded_only([u])})  # blinks: kept, not compared
        notes = "; ".join(n for n in (a.notes, b.notes) if n)
        final.append(Annotation("final", a.trial, 0, frames["onset"], frames["apex"], frames["offset"],
                                format_aus(keep + uncoded), notes, trial_id=a.trial_id, participant=a.participant,
                                session=a.session))
    for trial in {trial_of(f) for f in final}:  # renumber per trial in time order
        for n, ann in enumerate(sorted((f for f in final if trial_of(f) == trial), key=lambda f: f.onset), start=1):
            ann.sample = n
    return final, pending, applied


def write_rows(path: str | Path, rows: list[dict], columns: tuple[str, ...]) -> Path:
    """A CSV written atomically (a half-written arbitration file would lose decisions)."""
    import io

    from station.fileio import atomic_write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, buf.getvalue())
    return path


def write_disagreements(path: str | Path, rows: list[dict]) -> Path:
    return write_rows(path, rows, DISAGREEMENT_COLUMNS)
