"""Reports of ``station evaluate``: markdown + CSV tables shaped like the paper's, PNG plots, one HTML page.

Files written to the report folder::

    results.csv, per_class_recall.csv        every number, long form (one row per label set x
                                             protocol x method x fusion choice)
    table11_fusion.md/.csv                   Table 11: LBP-TOP, 3D, and their fusion (paper a, nested a)
    table6_radii.md/.csv                     Table 6 (``--sweep radii``)
    table7-10_blocks_<set>_<protocol>.md/.csv  Tables 7-10 (``--sweep blocks``)
    table_radius3d.md/.csv                   3D neighbourhood radius (``--sweep radius3d``)
    table12_deep.md/.csv                     Table 12 (``--models``)
    figures/*.png                            confusion matrices, accuracy-vs-a fusion curves
    report.md, report.html                   everything above on one page
"""

from __future__ import annotations

import csv
import html
from pathlib import Path

import numpy as np

from station.evaluate.baseline import MODALITY_2D, EvaluationResult
from station.evaluate.fusion import ALPHAS
from station.vocab.classes import LABEL_SET_TITLES
from station.evaluate.protocols import PROTOCOL_TITLES


def pct(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{100 * value:.2f}"


def num(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.4f}"


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def html_table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_csv(path: Path, headers: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        writer.writerows(rows)


class Report:
    """Collects sections (title, table, figures) and writes them as markdown, CSV and HTML."""

    def __init__(self, out: Path, title: str):
        self.out = Path(out)
        self.figures = self.out / "figures"
        self.figures.mkdir(parents=True, exist_ok=True)
        self.title = title
        self.sections: list[tuple[str, list[str], list[list], list[str], str]] = []
        self.notes: list[str] = []

    def table(self, name: str, title: str, headers: list[str], rows: list[list], figures: list[str] = (),
              text: str = "") -> None:
        if name:
            (self.out / f"{name}.md").write_text(f"# {title}\n\n{text}\n\n" + markdown_table(headers, rows),
                                                 encoding="utf-8")
            write_csv(self.out / f"{name}.csv", headers, rows)
        self.sections.append((title, headers, rows, list(figures), text))

    def write(self) -> Path:
        md = [f"# {self.title}\n"]
        parts = [f"<h1>{html.escape(self.title)}</h1>"]
        for title, headers, rows, figures, text in self.sections:
            md.append(f"## {title}\n\n{text}\n\n" + markdown_table(headers, rows))
            md += [f"![{f}](figures/{f})\n" for f in figures]
            parts.append(f"<h2>{html.escape(title)}</h2><p>{html.escape(text)}</p>" + html_table(headers, rows))
            parts += [f'<img src="figures/{html.escape(f)}" alt="{html.escape(f)}">' for f in figures]
        if self.notes:
            md.append("## Notes\n\n" + "\n".join(f"- {n}" for n in self.notes) + "\n")
            parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in self.notes) + "</ul>")
        (self.out / "report.md").write_text("\n".join(md), encoding="utf-8")
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
                 "margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
                 "img{max-width:48%;margin:4px}")
        page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
                f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
        path = self.out / "report.html"
        path.write_text(page, encoding="utf-8")
        return path


# ---------------------------------------------------------------------------------------------
# plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(path: Path, classes: list[str], cm: np.ndarray, title: str) -> None:
    plt = _pyplot()
    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * len(classes), 1.0 + 0.5 * len(classes)), dpi=100)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{100 * rates[i, j]:.0f}", ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.subplots_adjust(left=0.25, bottom=0.25, right=0.97, top=0.88)  # (tight_layout: 3x slower)
    fig.savefig(path)
    plt.close(fig)


def plot_fusion_curves(path: Path, curves: dict[str, np.ndarray], title: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=100)
    for name, curve in curves.items():
        ax.plot(ALPHAS, 100 * curve, marker="o", ms=3, label=f"{MODALITY_2D} + {name}")
    ax.set_xlabel("a (0 = 2D only, 1 = 3D only)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.subplots_adjust(left=0.15, bottom=0.15, right=0.97, top=0.9)
    fig.savefig(path)
    plt.close(fig)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_").lower()


# ---------------------------------------------------------------------------------------------
# the baseline


RESULT_COLUMNS = ["label_set", "protocol", "method", "fusion", "a", "n_samples", "n_classes", "accuracy",
                  "accuracy_std", "f1", "uf1", "uar"]


def baseline_sections(report: Report, result: EvaluationResult, *, name_prefix: str = "") -> None:
    """Table 11 (fusion) + a detailed table per label set and protocol, with their figures."""
    write_csv(report.out / f"{name_prefix}results.csv", RESULT_COLUMNS,
              [[r[c] for c in RESULT_COLUMNS] for r in result.rows])
    write_csv(report.out / f"{name_prefix}per_class_recall.csv",
              ["label_set", "protocol", "method", "fusion", "class", "recall"],
              [[r[c] for c in ("label_set", "protocol", "method", "fusion", "class", "recall")]
               for r in result.recalls])
    combos = [(ls, p) for ls in result.label_sets for p in PROTOCOL_TITLES if (ls, p) in result.runs]
    methods = []
    for r in result.rows:
        if r["method"] not in methods:
            methods.append(r["method"])
    # Table 11 shape: methods x (label set, protocol) with Acc / F1, paper a and nested a
    headers = ["method"]
    for ls, p in combos:
        headers += [f"{ls} {PROTOCOL_TITLES[p]} Acc (%)", f"{ls} {PROTOCOL_TITLES[p]} F1", "a"]
    rows = []
    for m in methods:
        for fusion in ("-", "paper", "nested"):
            cells = [m + ("" if fusion == "-" else f" [{fusion} a]")]
            found = False
            for ls, p in combos:
                row = result.get(ls, p, m, fusion)
                found |= row is not None
                cells += ([pct(row["accuracy"]), num(row["f1"]), row["a"] if fusion != "-" else ""] if row
                          else ["", "", ""])
            if found:
                rows.append(cells)
    report.table(f"{name_prefix}table11_fusion", "Table 11: LBP-TOP, 3D features and their fusion", headers, rows,
                 text="P = (1-a) p2D + a p3D. 'paper a': the a with the best accuracy over the whole protocol "
                      "(as the paper reports, optimistic); 'nested a': chosen in each outer fold on inner "
                      "out-of-fold predictions of its training part (mean ± sd over folds).")
    for ls, p in combos:
        run = result.runs[(ls, p)]
        detail = [r for r in result.rows if r["label_set"] == ls and r["protocol"] == p]
        rows = [[r["method"], r["fusion"], r["a"], pct(r["accuracy"]),
                 pct(r["accuracy_std"]) if p == "kfold" else "", num(r["f1"]), num(r["uf1"]), num(r["uar"])]
                for r in detail]
        figures = []
        best_fused = max((r for r in detail if r["fusion"] == "paper"), key=lambda r: r["accuracy"], default=None)
        best_3d = max((r for r in detail if r["fusion"] == "-" and r["method"] != MODALITY_2D),
                      key=lambda r: r["accuracy"], default=None)
        for r in [result.get(ls, p, MODALITY_2D), best_fused or best_3d]:
            if r is None:
                continue
            key = r["method"] + (f" ({r['fusion']} a)" if r["fusion"] != "-" else "")
            classes, cm = result.confusions[(ls, p, key)]
            fname = f"{name_prefix}confusion_{_slug(ls)}_{p}_{_slug(key)}.png"
            plot_confusion(report.figures / fname, classes, cm, f"{ls}, {PROTOCOL_TITLES[p]}: {key}")
            figures.append(fname)
        curves = {m3: c for (l2, p2, m3), c in result.curves.items() if (l2, p2) == (ls, p)}
        if curves:
            fname = f"{name_prefix}fusion_{_slug(ls)}_{p}.png"
            plot_fusion_curves(report.figures / fname, curves, f"{ls}, {PROTOCOL_TITLES[p]}")
            figures.append(fname)
        recall_rows = [f"{r['method']}{'' if r['fusion'] == '-' else ' [' + r['fusion'] + ' a]'}: " +
                       ", ".join(f"{x['class']} {pct(x['recall'])}" for x in result.recalls
                                 if (x["label_set"], x["protocol"], x["method"], x["fusion"]) ==
                                 (ls, p, r["method"], r["fusion"]))
                       for r in detail if r["fusion"] != "nested"]
        text = (f"{LABEL_SET_TITLES.get(ls, ls)}, {PROTOCOL_TITLES[p]}: {len(run.y)} samples, classes "
                f"{', '.join(run.classes)}, {len(run.folds)} folds. Per-class recall (%): " + "; ".join(recall_rows))
        report.table("", f"{ls} / {PROTOCOL_TITLES[p]}",
                     ["method", "fusion", "a", "Acc (%)", "sd over repeats", "F1", "UF1", "UAR"], rows, figures, text)
    report.notes.extend(result.notes)


def console_table(result: EvaluationResult, title: str = "Baseline"):
    """Accuracy (%) of every method per label set and protocol: what ``station evaluate`` prints."""
    from rich.markup import escape
    from rich.table import Table

    combos = [(ls, p) for ls in result.label_sets for p in PROTOCOL_TITLES if (ls, p) in result.runs]
    short = {"objective": "obj", "nonobjective": "non-obj", "3class": "3-class"}
    table = Table(title=title + " — accuracy % (F1)",
                  caption=escape("+X [paper|nested]: LBP-TOP fused with X, a chosen the paper's way or nested"))
    table.add_column("method", no_wrap=True)
    for ls, p in combos:
        table.add_column(f"{short.get(ls, ls)} {PROTOCOL_TITLES[p]}", justify="right")
    seen = []
    for r in result.rows:
        if (r["method"], r["fusion"]) not in seen:
            seen.append((r["method"], r["fusion"]))
    for method, fusion in seen:
        cells = []
        for ls, p in combos:
            row = result.get(ls, p, method, fusion)
            cells.append(f"{pct(row['accuracy'])} ({row['f1']:.2f})" if row else "")
        label = method if fusion == "-" else escape(f"+{method.split(' + ', 1)[1]} [{fusion}]")  # fused with LBP-TOP
        table.add_row(label, *cells, style="dim" if fusion == "nested" else None)
    return table
