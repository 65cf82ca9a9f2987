"""Inter-coder reliability (paper eq. 1), the disagreements to arbitrate, and the final coding.

The paper's reliability is ``R = 2 * AU(C1, C2) / AU_all``: AUs both coders scored, over all AUs
the two coders scored, per micro-expression; its 0.84 is the pooled figure over the database.
To compare AUs the two coders must first be talking about the same movement, so their
annotations of a trial are paired by interval overlap (best temporal IoU first, the MEGC
convention); a movement only one coder saw contributes its AUs to ``AU_all`` and nothing to
agreement, and is listed for arbitration.

Arbitration is a CSV round trip: ``disagreements.csv`` has an empty ``decision`` column the
coders fill in after discussing (``keep``/``drop`` for an AU, a frame number for a frame, a
FACS code for a whole AU field); ``station agree ... --arbitration`` applies it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from station.checks import StationError
from station.process.coding import Annotation
from station.vocab.facs import au_keys, format_aus, parse_aus

DISAGREEMENT_COLUMNS = ("trial", "pair", "field", "coder1", "coder2", "decision")


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
    for trial in sorted({a.trial for a in first} | {a.trial for a in second}):
        a_list = [a for a in first if a.trial == trial]
        b_list = [b for b in second if b.trial == trial]
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
    return sorted(pairs, key=lambda p: ((p[0] or p[1]).trial, (p[0] or p[1]).onset))


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
        return 2 * self.agreed / self.total if self.total else 1.0


@dataclass
class AgreementReport:
    pairs: list[PairResult]
    disagreements: list[dict] = field(default_factory=list)

    @property
    def overall(self) -> float:
        """Pooled eq. 1 over every movement: 2 * sum AU(C1,C2) / sum AU_all."""
        total = sum(p.total for p in self.pairs)
        return 2 * sum(p.agreed for p in self.pairs) / total if total else 1.0

    @property
    def mean_per_sample(self) -> float:
        scored = [p.reliability for p in self.pairs if p.total]
        return sum(scored) / len(scored) if scored else 1.0


def _keys(ann: Annotation | None) -> set[tuple[int, str]]:
    return au_keys(ann.aus, f"coder {ann.coder}, trial {ann.trial}, sample {ann.sample}") if ann else set()


def _key_text(key: tuple[int, str]) -> str:
    return f"{key[1]}{key[0]}"


def compare(first: list[Annotation], second: list[Annotation], frame_tolerance: int = 0) -> AgreementReport:
    """Pair the two codings and compute eq. 1 per movement and overall.

    ``frame_tolerance``: onset/apex/offset differing by at most this many frames are not listed
    as disagreements (they are averaged in the final coding).
    """
    results: list[PairResult] = []
    disagreements: list[dict] = []
    for n, (a, b) in enumerate(pair_annotations(first, second), start=1):
        trial = (a or b).trial
        ka, kb = _keys(a), _keys(b)
        results.append(PairResult(trial, n, a, b, len(ka & kb), len(ka) + len(kb)))
        if a is None or b is None:
            only = a or b
            disagreements.append(dict(trial=trial, pair=n, field="movement",
                                      coder1=f"{only.onset}-{only.offset} {only.aus}" if a else "",
                                      coder2=f"{only.onset}-{only.offset} {only.aus}" if b else "", decision=""))
            continue
        for name in ("onset", "apex", "offset"):
            if abs(getattr(a, name) - getattr(b, name)) > frame_tolerance:
                disagreements.append(dict(trial=trial, pair=n, field=name, coder1=getattr(a, name),
                                          coder2=getattr(b, name), decision=""))
        for key in sorted(ka ^ kb):
            disagreements.append(dict(trial=trial, pair=n, field=f"AU{_key_text(key)}",
                                      coder1="yes" if key in ka else "", coder2="yes" if key in kb else "",
                                      decision=""))
    return AgreementReport(results, disagreements)


def read_arbitration(path: str | Path) -> dict[tuple[int, str], str]:
    """Decisions from a filled-in disagreements CSV, keyed by (pair, field)."""
    path = Path(path)
    if not path.exists():
        raise StationError(f"arbitration file {str(path)!r} does not exist.")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not {"pair", "field", "decision"} <= set(reader.fieldnames or []):
            raise StationError(f"arbitration file {str(path)!r} needs the columns pair, field, decision "
                               f"(the disagreements.csv written by `station agree`).")
        return {(int(r["pair"]), r["field"]): (r["decision"] or "").strip() for r in reader}


def _decided_frame(value: str, where: str) -> int:
    try:
        return int(value)
    except ValueError as err:
        raise StationError(f"{where}: decision {value!r} must be a frame number.") from err


def merge(report: AgreementReport, decisions: dict[tuple[int, str], str] | None = None,
          unresolved: str = "drop") -> tuple[list[Annotation], list[dict]]:
    """The final coding, and what is still undecided.

    Agreed AUs are kept; a disputed AU is kept or dropped by its decision, else by ``unresolved``
    (``keep`` = union of the coders, ``drop`` = intersection).  Frames are the decision, else the
    rounded mean of the two coders.  A movement only one coder saw is kept only if decided
    ``keep`` (or ``unresolved == 'keep'``).
    """
    if unresolved not in ("keep", "drop"):
        raise StationError(f"unresolved must be 'keep' or 'drop', got {unresolved!r}.")
    decisions = decisions or {}
    final: list[Annotation] = []
    pending: list[dict] = []
    disputed = {(d["pair"], d["field"]): d for d in report.disagreements}
    for p in report.pairs:
        where = f"arbitration of pair {p.pair} ({p.trial})"
        if p.first is None or p.second is None:
            only = p.first or p.second
            decision = decisions.get((p.pair, "movement"), "")
            if not decision:
                pending.append(disputed[(p.pair, "movement")])
            if (decision or unresolved).lower() not in ("keep", "yes"):
                continue
            final.append(Annotation("final", p.trial, 0, only.onset, only.apex, only.offset, only.aus,
                                    f"only {only.coder}; {only.notes}".strip("; ")))
            continue
        a, b = p.first, p.second
        frames = {}
        for name in ("onset", "apex", "offset"):
            decision = decisions.get((p.pair, name), "")
            if (p.pair, name) in disputed and not decision:
                pending.append(disputed[(p.pair, name)])
            frames[name] = (_decided_frame(decision, where) if decision
                            else int(round((getattr(a, name) + getattr(b, name)) / 2)))
        units = {u.key: u for u in parse_aus(a.aus)} | {u.key: u for u in parse_aus(b.aus)}
        keep = []
        ka, kb = {u.key for u in parse_aus(a.aus)}, {u.key for u in parse_aus(b.aus)}
        for key, unit in units.items():
            if key in ka and key in kb:
                keep.append(unit)
                continue
            field_name = f"AU{_key_text(key)}"
            decision = decisions.get((p.pair, field_name), "")
            if not decision and (p.pair, field_name) in disputed:
                pending.append(disputed[(p.pair, field_name)])
            if (decision or unresolved).lower() in ("keep", "yes"):
                keep.append(unit)
        notes = "; ".join(n for n in (a.notes, b.notes) if n)
        final.append(Annotation("final", p.trial, 0, frames["onset"], frames["apex"], frames["offset"],
                                format_aus(keep), notes))
    for trial in {f.trial for f in final}:  # renumber per trial in time order
        for n, ann in enumerate(sorted((f for f in final if f.trial == trial), key=lambda f: f.onset), start=1):
            ann.sample = n
    return final, pending


def write_disagreements(path: str | Path, rows: list[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=DISAGREEMENT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path
