"""Two-coder reliability (paper eq. 1), per-AU agreement and kappa, disagreements, arbitration."""

import csv

import pytest

from station.checks import StationError
from station.process import agreement, coding


def _ann(coder, onset, apex, offset, aus, trial="t.h5", trial_id="id-1", participant="sub01"):
    return coding.Annotation(coder, trial, 0, onset, apex, offset, aus, trial_id=trial_id, participant=participant,
                             session="1")


def test_reliability_follows_equation_1_and_lists_side_and_intensity_disagreements():
    c1 = [_ann("a", 10, 14, 20, "1+2+5"), _ann("a", 100, 104, 110, "L12"), _ann("a", 300, 302, 305, "4"),
          _ann("a", 500, 503, 506, "4+7C")]
    c2 = [_ann("b", 11, 14, 20, "1+2"), _ann("b", 100, 104, 110, "R12"), _ann("b", 501, 504, 507, "4+7B")]
    report = agreement.compare(c1, c2)
    per = {(p.first or p.second).onset: p for p in report.pairs}
    assert per[10].reliability == pytest.approx(2 * 2 / 5)
    assert per[100].reliability == 1.0  # both scored AU 12; the side is a separate disagreement
    assert per[300].reliability == 0.0  # only coder 1 saw it
    assert report.overall == pytest.approx(2 * (2 + 1 + 0 + 2) / (5 + 2 + 1 + 4))
    fields = {(d["pair"], d["field"]): d for d in report.disagreements}
    assert fields[(per[100].pair, "AU12 side")]["coder1"] == "L" and fields[(per[100].pair, "AU12 side")]["coder2"] == "R"
    assert fields[(per[500].pair, "AU7 intensity")]["coder1"] == "C"
    assert (per[10].pair, "AU5") in fields and (per[300].pair, "movement") in fields
    assert report.count("side") == 1 and report.count("intensity") == 1
    final, pending, applied = agreement.merge(report, unresolved="drop")
    by_onset = {f.onset: f for f in final}
    assert by_onset[100].aus == "12"  # kept, side left unspecified (and pending), not dropped
    assert by_onset[501].aus == "4+7"  # intensity pending: neither coder's letter silently taken
    assert (by_onset[501].apex, by_onset[501].offset) == (504, 507)  # 503.5 and 506.5 rounded half up
    assert {p["field"] for p in pending} >= {"AU12 side", "AU7 intensity", "movement", "AU5"}
    assert applied == []


def test_per_au_agreement_and_cohen_kappa_on_presence():
    c1 = [_ann("a", 10 * i, 10 * i + 2, 10 * i + 5, aus) for i, aus in enumerate(["1+2", "1", "12", "12", "4"])]
    c2 = [_ann("b", 10 * i, 10 * i + 2, 10 * i + 5, aus) for i, aus in enumerate(["1+2", "1+2", "12", "", "4"])]
    report = agreement.compare(c1, c2)
    au = {a.number: a for a in report.per_au}
    assert (au[2].both, au[2].only1, au[2].only2, au[2].neither) == (1, 0, 1, 3)
    # kappa of AU 2: po = 4/5, pe = (1/5)(2/5) + (4/5)(3/5) = 14/25 -> (20/25 - 14/25) / (11/25)
    assert au[2].kappa == pytest.approx(6 / 11)
    assert au[2].agreement == pytest.approx(2 / 3)
    assert agreement.cohen_kappa(3, 0, 0, 0) != agreement.cohen_kappa(3, 0, 0, 0)  # NaN: undefined, not 1


def test_trials_with_the_same_file_name_are_not_paired_across_participants():
    c1 = [_ann("a", 10, 14, 20, "1", trial_id="A", participant="sub01")]
    c2 = [_ann("b", 10, 14, 20, "1", trial_id="B", participant="sub02")]
    report = agreement.compare(c1, c2)
    assert [d["field"] for d in report.disagreements] == ["movement", "movement"]


def test_rows_of_several_trials_under_one_name_without_ids_are_refused_not_paired(tmp_path, capsys):
    """Coding files older than trial ids: two participants' trial-01.h5 in one file repeat movement
    numbers; pairing them by interval gave R = 0.840 for coders who agree 0.891 (the bench's first
    run).  `station agree` names the file and the number and exits 2; one trial per name still works."""
    from station.cli import main

    def old_row(coder, sample, onset, aus):
        return coding.Annotation(coder, "trial-01.h5", sample, onset, onset + 4, onset + 9, aus)

    c1, c2 = tmp_path / "c1.csv", tmp_path / "c2.csv"
    coding.write_coding(c1, [old_row("a", 1, 100, "4+9"), old_row("a", 2, 400, "15"),  # participant 1
                             old_row("a", 1, 102, "15"), old_row("a", 2, 700, "4+9+25")])  # participant 2
    coding.write_coding(c2, [old_row("b", 1, 101, "4+9"), old_row("b", 2, 401, "15")])
    assert main(["agree", str(c1), str(c2), "--out", str(tmp_path / "out")]) == 2
    err = " ".join(capsys.readouterr().err.split())  # (rich wraps long lines)
    assert "c1.csv" in err and "movement number 1" in err and "2 repeated number(s)" in err
    assert not (tmp_path / "out" / "reliability.csv").exists()
    coding.write_coding(c1, [old_row("a", 1, 100, "4+9"), old_row("a", 2, 400, "15")])
    assert main(["agree", str(c1), str(c2), "--out", str(tmp_path / "out")]) == 0  # one trial: warned, paired
    assert list(csv.DictReader(open(tmp_path / "out" / "reliability.csv")))[-1]["R"] == "1.000"


def test_agree_cli_lists_disagreements_and_records_who_arbitrated(tmp_path):
    from station.cli import main

    c1, c2 = tmp_path / "c1.csv", tmp_path / "c2.csv"
    coding.write_coding(c1, [_ann("a", 10, 14, 20, "1+2+5+L12"), _ann("a", 500, 503, 506, "4+7C")])
    coding.write_coding(c2, [_ann("b", 10, 15, 20, "1+2+R12"), _ann("b", 501, 504, 507, "4+7B")])
    out = tmp_path / "agree"
    assert main(["agree", str(c1), str(c2), "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "reliability.csv")))
    assert rows[-1]["R"] == f"{2 * 5 / 11:.3f}"
    per_au = {r["au"]: r for r in csv.DictReader(open(out / "au_agreement.csv"))}
    assert per_au["5"]["only_coder1"] == "1" and per_au["12"]["both"] == "1"
    disputes = list(csv.DictReader(open(out / "disagreements.csv")))
    assert sorted(d["field"] for d in disputes) == ["AU12 side", "AU5", "AU7 intensity"]  # apex within tolerance
    assert {d["participant"] for d in disputes} == {"sub01"}
    decided = {"AU5": ("keep", "carol"), "AU12 side": ("R", "carol"), "AU7 intensity": ("C", "")}
    for d in disputes:
        d["decision"], d["decided_by"] = decided[d["field"]]
    with open(out / "decided.csv", "w", newline="", encoding="utf-16") as fh:  # Excel "Unicode text"
        writer = csv.DictWriter(fh, fieldnames=list(disputes[0]))
        writer.writeheader()
        writer.writerows(disputes)
    with pytest.raises(StationError, match="decided_by"):  # a decision nobody made is refused
        agreement.read_arbitration(out / "decided.csv")
    assert main(["agree", str(c1), str(c2), "--out", str(out), "--arbitration", str(out / "decided.csv")]) != 0
    assert main(["agree", str(c1), str(c2), "--out", str(out), "--arbitration", str(out / "decided.csv"),
                 "--arbiter", "dave"]) == 0
    final = coding.read_coding(out / "final.csv")
    assert [(r.apex, r.aus) for r in final] == [(15, "1+2+5+R12"), (504, "4+7C")]  # 14.5 -> 15, half up
    log = {r["field"]: r for r in csv.DictReader(open(out / "arbitration.csv"))}
    assert (log["AU5"]["decided_by"], log["AU7 intensity"]["decided_by"]) == ("carol", "dave")
    assert all(r["applied"] for r in log.values())
    # arbitrating straight from out/disagreements.csv: the decisions survive the rewrite of that file
    (out / "decided.csv").replace(out / "disagreements.csv")
    assert main(["agree", str(c1), str(c2), "--out", str(out), "--arbitration", str(out / "disagreements.csv"),
                 "--arbiter", "dave"]) == 0
    again = {d["field"]: (d["decision"], d["decided_by"]) for d in csv.DictReader(open(out / "disagreements.csv"))}
    assert again == {"AU5": ("keep", "carol"), "AU12 side": ("R", "carol"), "AU7 intensity": ("C", "dave")}
    assert len(list(out.glob("disagreements-*.csv"))) == 1  # and the file as the arbiters left it


def test_a_decision_taken_on_other_codings_is_refused(tmp_path):
    c1 = [_ann("a", 10, 14, 20, "1+2+5")]
    c2 = [_ann("b", 10, 14, 20, "1+2")]
    report = agreement.compare(c1, c2)
    agreement.write_disagreements(tmp_path / "d.csv", [{**d, "decision": "keep", "decided_by": "carol"}
                                                        for d in report.disagreements])
    decisions = agreement.read_arbitration(tmp_path / "d.csv")
    assert agreement.merge(report, decisions)[0][0].aus == "1+2+5"
    changed = agreement.compare(c1, [_ann("b", 10, 14, 20, "1+2+5+6")])  # coder 2 edited: AU5 agreed, AU6 disputed
    assert agreement.merge(changed, decisions)[0][0].aus == "1+2+5"  # the old AU5 decision no longer applies
    agreement.write_disagreements(tmp_path / "e.csv", [{**d, "field": "AU5", "coder1": "", "decision": "keep",
                                                        "decided_by": "carol"} for d in report.disagreements])
    with pytest.raises(StationError, match="codings changed"):
        agreement.merge(report, agreement.read_arbitration(tmp_path / "e.csv"))


def test_no_au_scored_means_r_is_undefined_not_perfect():
    import math

    report = agreement.compare([_ann("a", 10, 12, 14, "")], [_ann("b", 10, 12, 14, "")])
    assert math.isnan(report.overall) and math.isnan(report.pairs[0].reliability)
    assert report.disagreements == []


def test_kappa_matches_scikit_learn_on_random_codings():
    import numpy as np
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(3)
    numbers = [1, 2, 4, 6, 12]
    c1, c2, table = [], [], {n: ([], []) for n in numbers}
    for i in range(40):
        a = [n for n in numbers if rng.random() < 0.4]
        b = [n for n in numbers if (n in a) != (rng.random() < 0.25)]
        c1.append(_ann("a", 20 * i, 20 * i + 2, 20 * i + 5, "+".join(map(str, a))))
        c2.append(_ann("b", 20 * i, 20 * i + 2, 20 * i + 5, "+".join(map(str, b))))
        for n in numbers:
            table[n][0].append(n in a)
            table[n][1].append(n in b)
    report = agreement.compare(c1, c2)
    for au in report.per_au:
        assert au.kappa == pytest.approx(cohen_kappa_score(*table[au.number]))
    pooled = [sum((table[n][k] for n in numbers if n in {a.number for a in report.per_au}), []) for k in (0, 1)]
    assert report.kappa == pytest.approx(cohen_kappa_score(*pooled))
