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
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from station.evaluate.baseline import MODALITY_2D, EvaluationResult
from station.evaluate.fusion import ALPHAS
from station.vocab.classes import LABEL_SET_TITLES
from station.evaluate.metrics import DEFINITIONS, chance_levels
from station.evaluate.protocols import PROTOCOL_TITLES

TEMPLATES = Path(__file__).with_name("templates")


def pct(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{100 * value:.2f}"


def num(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.4f}"


def markdown_table(headers: list[str], rows: list[list]) -> str:
    def cell(c) -> str:
        return str(c).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, headers: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        writer.writerows(rows)


@dataclass
class Table:
    headers: list[str]
    rows: list[list]
    caption: str = ""
    row_classes: list[str] = field(default_factory=list)  # CSS class per row ("chance")


@dataclass
class Figure:
    file: str
    caption: str


@dataclass
class Section:
    title: str
    text: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


class Report:
    """Collects sections (tables, figures, text) and writes them as markdown, CSV and HTML.

    The HTML page is rendered from ``templates/report.html.j2`` (Jinja2, autoescaped): run
    parameters, metric definitions, the sections, notes, and the loader's per-sample notes.
    """

    def __init__(self, out: Path, title: str):
        self.out = Path(out)
        self.figures = self.out / "figures"
        self.figures.mkdir(parents=True, exist_ok=True)
        self.title = title
        self.sections: list[Section] = []
        self.notes: list[str] = []
        self.run_info: dict[str, str] = {}
        self.definitions: dict[str, str] = {}
        self.loading_notes: list[tuple[str, str]] = []

    def table(self, name: str, title: str, headers: list[str], rows: list[list], figures: list[str] = (),
              text: str = "") -> None:
        """One section with one table (written to ``name``.md/.csv when ``name`` is given)."""
        if name:
            (self.out / f"{name}.md").write_text(f"# {title}\n\n{text}\n\n" + markdown_table(headers, rows),
                                                 encoding="utf-8")
            write_csv(self.out / f"{name}.csv", headers, rows)
        self.sections.append(Section(title, text, [Table(headers, rows)], [Figure(f, f) for f in figures]))

    def section(self, section: Section) -> None:
        self.sections.append(section)

    def write(self) -> Path:
        import jinja2

        md = [f"# {self.title}\n"]
        if self.run_info:
            md.append("## Run\n\n" + markdown_table(["parameter", "value"], [[k, v] for k, v in self.run_info.items()]))
        if self.definitions:
            md.append("## Definitions\n\n" + "\n".join(f"- **{k}**: {v}" for k, v in self.definitions.items()) + "\n")
        for sec in self.sections:
            md.append(f"## {sec.title}\n\n{sec.text}\n")
            for t in sec.tables:
                md.append((f"### {t.caption}\n\n" if t.caption else "") + markdown_table(t.headers, t.rows))
            md += [f"![{f.caption}](figures/{f.file})\n" for f in sec.figures]
        if self.notes:
            md.append("## Notes\n\n" + "\n".join(f"- {n}" for n in self.notes) + "\n")
        md.append("## Loading notes\n\n" + ("\n".join(f"- {f'{s}: ' if s else ''}{n}" for s, n in self.loading_notes)
                                             + "\n" if self.loading_notes else
                                             "None: every sample loaded as described.\n"))
        (self.out / "report.md").write_text("\n".join(md), encoding="utf-8")
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                 undefined=jinja2.StrictUndefined)
        page = env.get_template("report.html.j2").render(
            title=self.title, run_info=self.run_info, definitions=self.definitions, sections=self.sections,
            notes=self.notes, loading_notes=self.loading_notes)
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
    fig, ax = plt.subplots(figsize=(max(3.6, 1.4 + 0.55 * len(classes)), max(3.2, 1.3 + 0.5 * len(classes))), dpi=100)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{100 * rates[i, j]:.0f}", ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("\n".join(textwrap.wrap(title, 34)), fontsize=8)
    fig.subplots_adjust(left=0.25, bottom=0.25, right=0.97, top=0.84)  # (tight_layout: 3x slower)
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


RESULT_COLUMNS = ["label_set", "protocol", "folds", "method", "fusion", "a", "n_samples", "n_classes", "accuracy",
                  "accuracy_std", "uf1", "uar", "macro_f1", "f1_fold_mean", "chance_majority_accuracy",
                  "chance_uniform_accuracy"]

#: column headers of the detail tables, each defined in metrics.DEFINITIONS
DETAIL_HEADERS = ["method", "fusion", "a", "Acc (%)", "Acc sd over repeats", "UF1", "UAR", "macro-F1", "F1 fold-mean"]


def protocol_title(result: EvaluationResult, ls: str, p: str) -> str:
    """'LOSO', or the k-fold with the number of folds actually used (10-fold unless a class is smaller)."""
    run = result.runs.get((ls, p))
    return f"{run.n_splits}-fold" if p == "kfold" and run is not None and run.n_splits else PROTOCOL_TITLES[p]


def _method_label(r: dict) -> str:
    return r["method"] + ("" if r["fusion"] == "-" else f" [{r['fusion']} a]")


def run_parameters(options, db=None) -> dict[str, str]:
    """What a reader needs to reproduce the run: parameters, software versions, database hash."""
    import platform

    import scipy
    import sklearn

    from station import __version__ as station_version

    info = {}
    if db is not None:
        subjects = len({r.subject for r in db.records})
        info["database"] = f"{db.fmt} {db.root} ({len(db.refs)} samples, {subjects} subjects)"
        info["database hash"] = db.fingerprint() + " (blake2b of every sample file's path, size, mtime)"
    info["LBP-TOP"] = ", ".join(f"{k}={v}" for k, v in options.lbptop.key().items())
    if options.use_3d:
        info["3D curvature"] = ", ".join(f"{k}={v}" for k, v in options.curvature.key().items())
    info["protocols"] = (f"{', '.join(options.protocols)}; k-fold {options.n_splits} folds x {options.n_repeats} "
                         f"repeats (fewer folds where a class is smaller, see each section)")
    info["classifier"] = (f"SVM {options.kernel}, C in {list(options.c_grid)} chosen inside each training fold "
                          f"({options.search} search), min class size {options.min_class_size}")
    info["fusion"] = "P = (1-a) p2D + a p3D, a in 0..1 step 0.1; paper a and " + (
        "nested a" if options.nested else "no nested a (--no-nested)")
    info["seed"] = str(options.seed)
    info["software"] = (f"station {station_version}, Python {platform.python_version()}, numpy {np.__version__}, "
                        f"scipy {scipy.__version__}, scikit-learn {sklearn.__version__}")
    return info


def baseline_sections(report: Report, result: EvaluationResult, *, name_prefix: str = "", options=None,
                      db=None) -> None:
    """Table 11 per label set + one section per label set and protocol, with counts, chance and recall."""
    combos = [(ls, p) for ls in result.label_sets for p in PROTOCOL_TITLES if (ls, p) in result.runs]
    chance = {}
    for ls, p in combos:
        run = result.runs[(ls, p)]
        chance[(ls, p)] = chance_levels(run.y, len(run.classes))
    rows_out = []
    for r in result.rows:
        run = result.runs[(r["label_set"], r["protocol"])]
        ch = chance[(r["label_set"], r["protocol"])]
        rows_out.append({**r, "folds": run.n_splits, "chance_majority_accuracy": ch["majority_accuracy"],
                         "chance_uniform_accuracy": ch["uniform_accuracy"]})
    write_csv(report.out / f"{name_prefix}results.csv", RESULT_COLUMNS,
              [[r[c] for c in RESULT_COLUMNS] for r in rows_out])
    write_csv(report.out / f"{name_prefix}per_class_recall.csv",
              ["label_set", "protocol", "method", "fusion", "class", "n", "recall"],
              [[r["label_set"], r["protocol"], r["method"], r["fusion"], r["class"],
                _class_count(result, r["label_set"], r["protocol"], r["class"]), r["recall"]] for r in result.recalls])
    if options is not None:
        report.run_info.update(run_parameters(options, db))
    report.definitions.update(DEFINITIONS)
    report.definitions["paper a / nested a"] = (
        "paper a: the fusion weight with the best accuracy over the whole protocol (as the paper reports; "
        "optimistic). nested a: chosen in each outer fold on inner out-of-fold predictions of its training "
        "part (mean ± sd over folds)")
    methods = list(dict.fromkeys(r["method"] for r in result.rows))
    # Table 11, one table per label set: methods x protocols (Acc, UF1, a)
    t11 = Section("Table 11: LBP-TOP, 3D features and their fusion",
                  "P = (1-a) p2D + a p3D. Acc = accuracy (%), UF1 as MEGC 2019; chance = majority class / "
                  "uniform. One table per label set.")
    csv_rows = []
    for ls in result.label_sets:
        protos = [p for p in PROTOCOL_TITLES if (ls, p) in result.runs]
        if not protos:
            continue
        headers = ["method"]
        for p in protos:
            t = protocol_title(result, ls, p)
            headers += [f"{t} Acc (%)", f"{t} UF1", f"{t} a"]
        rows, classes = [], []
        for m in methods:
            for fusion in ("-", "paper", "nested"):
                cells, found = [m + ("" if fusion == "-" else f" [{fusion} a]")], False
                for p in protos:
                    row = result.get(ls, p, m, fusion)
                    found |= row is not None
                    cells += ([pct(row["accuracy"]), num(row["uf1"]), row["a"] if fusion != "-" else ""] if row
                              else ["", "", ""])
                if found:
                    rows.append(cells)
                    classes.append("")
                    fixed = [cells[0]]  # the CSV has fixed LOSO and 10-fold columns
                    for p in PROTOCOL_TITLES:
                        k = protos.index(p) if p in protos else None
                        fixed += cells[1 + 3 * k: 4 + 3 * k] if k is not None else ["", "", ""]
                    csv_rows.append([ls] + fixed)
        for kind in ("majority", "uniform"):
            cells = [f"chance ({kind})"]
            for p in protos:
                ch = chance[(ls, p)]
                cells += [pct(ch[f"{kind}_accuracy"]), num(ch[f"{kind}_uf1"]), ""]
            rows.append(cells)
            classes.append("chance")
        t11.tables.append(Table(headers, rows, f"{LABEL_SET_TITLES.get(ls, ls)} ({ls})", classes))
    if t11.tables:
        report.section(t11)
        write_csv(report.out / f"{name_prefix}table11_fusion.csv",
                  ["label set", "method", "LOSO Acc (%)", "LOSO UF1", "LOSO a", "10-fold Acc (%)", "10-fold UF1",
                   "10-fold a"], csv_rows)
        (report.out / f"{name_prefix}table11_fusion.md").write_text(
            f"# {t11.title}\n\n{t11.text}\n\n" + "\n".join(f"## {t.caption}\n\n" + markdown_table(t.headers, t.rows)
                                                            for t in t11.tables), encoding="utf-8")
    for ls, p in combos:
        report.section(_detail_section(result, ls, p, chance[(ls, p)], name_prefix, report.figures))
    for ls, p, why in result.skipped:
        report.notes.append(f"{ls} / {p}: not evaluated: {why}")
    report.notes.extend(result.notes)
    report.loading_notes.extend(result.loading_notes)


def _class_count(result: EvaluationResult, ls: str, p: str, cls: str) -> int:
    run = result.runs[(ls, p)]
    return int(np.sum(run.y == run.classes.index(cls)))


def _detail_section(result: EvaluationResult, ls: str, p: str, ch: dict, name_prefix: str,
                    figures: Path) -> Section:
    run = result.runs[(ls, p)]
    detail = [r for r in result.rows if r["label_set"] == ls and r["protocol"] == p]
    counts = np.bincount(run.y, minlength=len(run.classes))
    folds = (f"{run.n_splits} folds (one per subject)" if p == "loso" else
             f"{run.n_splits}-fold stratified x {run.n_repeats} repeats")
    sec = Section(f"{LABEL_SET_TITLES.get(ls, ls)} / {protocol_title(result, ls, p)}",
                  f"{len(run.y)} samples of {len(np.unique(run.groups))} subjects, {len(run.classes)} classes; "
                  f"{folds}." + (" " + " ".join(run.notes) if run.notes else ""))
    sec.tables.append(Table(["class"] + list(run.classes) + ["total"],
                            [["samples"] + [int(c) for c in counts] + [int(counts.sum())]], "class counts"))
    rows = [[r["method"], r["fusion"], r["a"], pct(r["accuracy"]), pct(r["accuracy_std"]) if p == "kfold" else "",
             num(r["uf1"]), num(r["uar"]), num(r["macro_f1"]), num(r["f1_fold_mean"])] for r in detail]
    classes = [""] * len(rows)
    for kind in ("majority", "uniform"):
        rows.append([f"chance ({kind})", "", "", pct(ch[f"{kind}_accuracy"]), "", num(ch[f"{kind}_uf1"]),
                     num(ch[f"{kind}_uar"]), num(ch[f"{kind}_uf1"]), ""])
        classes.append("chance")
    sec.tables.append(Table(DETAIL_HEADERS, rows, "scores (metrics defined above)", classes))
    recall_rows = []
    for r in detail:
        if r["fusion"] == "nested":
            continue
        rec = {x["class"]: x["recall"] for x in result.recalls
               if (x["label_set"], x["protocol"], x["method"], x["fusion"]) == (ls, p, r["method"], r["fusion"])}
        recall_rows.append([_method_label(r)] + [pct(rec.get(c)) for c in run.classes])
    sec.tables.append(Table(["method"] + [f"{c} (n={int(n)})" for c, n in zip(run.classes, counts)], recall_rows,
                            "per-class recall (%)"))
    best_fused = max((r for r in detail if r["fusion"] == "paper"), key=lambda r: r["accuracy"], default=None)
    best_3d = max((r for r in detail if r["fusion"] == "-" and r["method"] != MODALITY_2D),
                  key=lambda r: r["accuracy"], default=None)
    for r in [result.get(ls, p, MODALITY_2D), best_fused or best_3d]:
        if r is None:
            continue
        key = r["method"] + (f" ({r['fusion']} a)" if r["fusion"] != "-" else "")
        classes_, cm = result.confusions[(ls, p, key)]
        fname = f"{name_prefix}confusion_{_slug(ls)}_{p}_{_slug(key)}.png"
        caption = f"{ls}, {PROTOCOL_TITLES[p]}: {key}"
        plot_confusion(figures / fname, classes_, cm, caption)
        sec.figures.append(Figure(fname, f"Confusion matrix (row %), {caption}"))
    curves = {m3: c for (l2, p2, m3), c in result.curves.items() if (l2, p2) == (ls, p)}
    if curves:
        fname = f"{name_prefix}fusion_{_slug(ls)}_{p}.png"
        plot_fusion_curves(figures / fname, curves, f"{ls}, {PROTOCOL_TITLES[p]}")
        sec.figures.append(Figure(fname, f"Accuracy vs fusion weight a, {ls}, {PROTOCOL_TITLES[p]}"))
    return sec


def console_table(result: EvaluationResult, title: str = "Baseline"):
    """Accuracy (%) of every method per label set and protocol: what ``station evaluate`` prints."""
    from rich.markup import escape
    from rich.table import Table

    combos = [(ls, p) for ls in result.label_sets for p in PROTOCOL_TITLES if (ls, p) in result.runs]
    short = {"objective": "obj", "nonobjective": "non-obj", "3class": "3-class"}
    table = Table(title=title + " — accuracy % (UF1)",
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
            cells.append(f"{pct(row['accuracy'])} ({row['uf1']:.2f})" if row else "")
        label = method if fusion == "-" else escape(f"+{method.split(' + ', 1)[1]} [{fusion}]")  # fused with LBP-TOP
        table.add_row(label, *cells, style="dim" if fusion == "nested" else None)
    return table
