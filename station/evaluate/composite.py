"""The field's multi-database protocols: MEGC 2019 composite and cross-database (hold one out).

MEGC 2019 composite (See et al., FG 2019, "MEGC 2019 - The Second Facial Micro-Expressions Grand
Challenge"): CASME II + SAMM + SMIC-HS merged, three classes, leave-one-subject-out over all 68
subjects, scored by UF1 (unweighted F1: per class ``2TP / (2TP + FP + FN)`` over all folds, then
the class mean) and UAR (the mean per-class recall), for the composite and for each part.  Each
part's labels are mapped to positive / negative / surprise the way the challenge did
(:data:`MEGC_MAPS`); everything else (``others``, CASME II's fear and sadness) is left out and
counted in the report.

Cross-database: for every part, train on all the others and test on it (the "hold-out database"
protocol); C is chosen inside the training parts, grouped by subject.

Any loader's database can be a part, the station's own export included (3 classes from its
objective classes), so a lab compares its DSME-style database with the published ones in one run.
The features are the station's LBP-TOP (its --radii/--blocks/...); MEGC's published LBP-TOP
baseline is shown beside the measured rows when the parts are exactly CASME II, SAMM, SMIC-HS.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from station.checks import StationError
from station.evaluate.loaders import Database, FORMATS, LoadOptions, load_database
from station.evaluate.metrics import confusion, uf1_uar
from station.evaluate.protocols import ProtocolPlan
from station.vocab.classes import THREE_CLASS, THREE_CLASSES, canonical

PROTOCOLS = ("megc2019", "cross-database")
MEGC_CLASSES = THREE_CLASSES

#: Per database: the labels (canonical) that take part in MEGC 2019; unlisted labels are left out.
MEGC_LABELS: dict[str, tuple[str, ...]] = {
    # CASME II: 145 samples in MEGC 2019; fear and sadness are NOT folded into negative
    "casme2": ("happiness", "surprise", "disgust", "repression"),
    # SAMM: 133 samples; all five negative emotions
    "samm": ("happiness", "surprise", "anger", "contempt", "disgust", "fear", "sadness"),
    # SMIC-HS: 164 samples, already three classes
    "smic": ("positive", "negative", "surprise"),
    # CAS(ME)^3 (not part of MEGC 2019; the same emotion grouping)
    "casme3": ("happy", "happiness", "surprise", "disgust", "fear", "anger", "sad", "sadness", "contempt"),
}
#: Per database: label (canonical) -> MEGC 2019 class, through the one 3-class table (vocab/classes.py).
MEGC_MAPS: dict[str, dict[str, str]] = {fmt: {label: THREE_CLASS[label] for label in labels}
                                        for fmt, labels in MEGC_LABELS.items()}

#: MEGC 2019 LBP-TOP baseline (See et al. 2019, Table: composite and per part, UF1 / UAR).
MEGC2019_LBPTOP = {"composite": (0.5882, 0.5785), "SMIC-HS": (0.2000, 0.5280), "CASME II": (0.7026, 0.7429),
                   "SAMM": (0.3954, 0.4102)}
MEGC2019_PARTS = ("SMIC-HS", "CASME II", "SAMM")
MEGC2019_COUNTS = {"SMIC-HS": (16, 164), "CASME II": (24, 145), "SAMM": (28, 133)}


def megc_label(db: Database, record) -> str | None:
    """The MEGC 2019 class of one sample of a part (None: left out)."""
    if db.fmt == "station":
        return THREE_CLASS.get(canonical(record.objective_class))
    return MEGC_MAPS[db.fmt].get(canonical(record.nonobjective_class))


@dataclass
class Part:
    db: Database
    keep: np.ndarray  # positions in db.refs that take part
    labels: np.ndarray  # MEGC class per kept sample
    left_out: dict[str, int]  # original label -> count

    @property
    def title(self) -> str:
        return self.db.title or self.db.fmt

    def subset(self) -> Database:
        return replace(self.db, refs=[self.db.refs[i] for i in self.keep])


def make_part(db: Database) -> Part:
    keep, labels, left = [], [], {}
    for i, rec in enumerate(db.records):
        lab = megc_label(db, rec)
        if lab is None:
            src = rec.objective_class if db.fmt == "station" else rec.nonobjective_class
            left[str(src) or "(none)"] = left.get(str(src) or "(none)", 0) + 1
        else:
            keep.append(i)
            labels.append(lab)
    if not keep:
        raise StationError(f"{db.title or db.fmt} {str(db.root)!r}: no sample maps to positive / negative / surprise.")
    return Part(db, np.array(keep, np.int64), np.array(labels, dtype=object), left)


def parse_roots(values: list[str], fmt: str) -> list[tuple[str, Path]]:
    """``[NAME=]PATH`` arguments -> (format, path); NAME is a --format name (detected when absent)."""
    out = []
    for value in values:
        name, sep, path = value.partition("=")
        if sep and name.lower() in FORMATS:
            out.append((name.lower(), Path(path)))
        else:
            out.append((fmt, Path(value)))
    return out


def load_parts(values: list[str], fmt: str, options: LoadOptions) -> list[Part]:
    parts = [make_part(load_database(path, f, options)) for f, path in parse_roots(values, fmt)]
    titles = [p.title for p in parts]
    if len(set(titles)) != len(titles):
        raise StationError(f"the same database is given twice ({', '.join(titles)}); each part must be distinct.")
    return parts


def is_megc2019(parts: list[Part]) -> bool:
    return sorted(p.title for p in parts) == sorted(MEGC2019_PARTS)


# -- running -------------------------------------------------------------------------------


M2D, M3D = "LBP-TOP", "SI+HK"
FUSED = f"{M2D} + {M3D} (nested a)"


@dataclass
class CompositeResult:
    protocol: str
    parts: list[Part]
    y: np.ndarray  # int codes into MEGC_CLASSES
    part_of: np.ndarray  # part index per sample
    preds: dict[str, np.ndarray]  # method -> predicted codes (LBP-TOP; with 3D: SI+HK and their fusion)
    chosen_c: list[float]
    alphas: list[float] = field(default_factory=list)  # fusion weight chosen per fold (3D only)

    @property
    def pred(self) -> np.ndarray:
        return self.preds[M2D]

    def scores(self, mask: np.ndarray | None = None, method: str = M2D) -> tuple[float, float, np.ndarray]:
        mask = np.ones(len(self.y), bool) if mask is None else mask
        cm = confusion(self.y[mask], self.preds[method][mask], len(MEGC_CLASSES))
        uf1, uar, _ = uf1_uar(cm)
        return uf1, uar, cm

    def part_scores(self, k: int, method: str = M2D) -> tuple[float, float, np.ndarray]:
        return self.scores(self.part_of == k, method)


def _features(parts: list[Part], options, cache, progress, use_3d: bool) -> dict[str, np.ndarray]:
    from station.evaluate.cache import curvature_matrices, lbptop_matrices

    blocks2, blocks3 = [], []
    for part in parts:
        sub = part.subset()
        blocks2.append(next(iter(lbptop_matrices(sub, options.lbptop, cache=cache, n_jobs=options.n_jobs,
                                                 progress=progress).values())))
        if use_3d:
            blocks3.append(curvature_matrices(sub, options.curvature, cache=cache, n_jobs=options.n_jobs,
                                              progress=progress)["sihk"])
    out = {M2D: np.vstack(blocks2)}
    if use_3d:
        out[M3D] = np.vstack(blocks3)
    return out


def _plan(protocol: str, features: dict[str, np.ndarray], y: np.ndarray, subjects: np.ndarray, outer: np.ndarray,
          options, *, nested: bool, description: str) -> ProtocolPlan:
    """The folds of a multi-database protocol, for the shared fold runner (:func:`run_plans`).

    Built here rather than by ``plan_protocol``: the outer groups (subjects for megc2019, whole
    databases for cross-database) need not be the inner ones (always subjects), and the classes
    are MEGC's three in their fixed order, not the labels found.
    """
    from sklearn.model_selection import LeaveOneGroupOut

    specs = [(0, tr, te) for tr, te in LeaveOneGroupOut().split(np.zeros((len(y), 1)), y, outer)]
    fold_options = dict(protocol="loso", n_classes=len(MEGC_CLASSES), kernel=options.kernel, c_grid=options.c_grid,
                        nested=nested, seed=options.seed, search=options.search)  # inner CV grouped by subject
    return ProtocolPlan(protocol, list(MEGC_CLASSES), y, subjects, specs, n_repeats=1, n_splits=len(specs), notes=[],
                        fold_options=fold_options, features=features, description=description)


def run_composite(parts: list[Part], protocol: str, options, cache, progress=None) -> CompositeResult:
    """LOSO over every subject of every part (megc2019) or leave-one-database-out (cross-database).

    When every part has depth (the station's export, CAS(ME)^3) and 3D is on, SI+HK and its late
    fusion with LBP-TOP are scored too, the fusion weight chosen per fold on inner out-of-fold
    predictions of the training part only (nested; never on the test part).
    """
    from station.evaluate.fusion import nested_predictions
    from station.evaluate.protocols import run_plans

    if protocol not in PROTOCOLS:
        raise StationError(f"--protocol must be one of baseline, {', '.join(PROTOCOLS)}, got {protocol!r}.")
    if protocol == "cross-database" and len(parts) < 2:
        raise StationError("--protocol cross-database needs two databases or more.")
    use_3d = options.use_3d and all(p.db.has_3d for p in parts)
    features = _features(parts, options, cache, progress, use_3d)
    labels = np.concatenate([p.labels for p in parts])
    y = np.array([MEGC_CLASSES.index(v) for v in labels], np.int64)
    part_of = np.concatenate([np.full(len(p.keep), k) for k, p in enumerate(parts)])
    subjects = np.array([f"{p.title}/{p.db.refs[i].record.subject}" for p in parts for i in p.keep])
    outer = subjects if protocol == "megc2019" else part_of
    if len(np.unique(outer)) < 2:
        raise StationError("LOSO needs two subjects or more.")
    what = f"MEGC 2019 LOSO ({len(np.unique(subjects))} subjects)" if protocol == "megc2019" else \
        f"cross-database ({len(parts)} held out in turn)"
    plan = _plan(protocol, features, y, subjects, outer, options, nested=use_3d, description=what)
    run = run_plans([plan], n_jobs=options.n_jobs, progress=progress, description=what)[0]
    preds = {m: np.argmax(run.oof(m, 0), axis=1) for m in features}
    alphas: list[float] = []
    if use_3d:
        alphas, fused = nested_predictions(run, M2D, M3D)
        preds[FUSED] = fused[0]
    return CompositeResult(protocol, parts, y, part_of, preds, [f.chosen_c[M2D] for f in run.folds], alphas)


# -- tables --------------------------------------------------------------------------------


def _f(v: float) -> str:
    return f"{v:.4f}"


def results_table(result: CompositeResult) -> tuple[str, list[str], list[list]]:
    """The MEGC table shape: one row per method, UF1 / UAR of the composite then of each part."""
    titles = [p.title for p in result.parts]
    composite = "composite" if result.protocol == "megc2019" else "all held-out"
    headers = ["method", f"{composite} UF1", f"{composite} UAR"]
    for t in titles:
        headers += [f"{t} UF1", f"{t} UAR"]
    rows = []
    for method in result.preds:
        uf1, uar, _ = result.scores(method=method)
        row = [f"{method} (station, measured)", _f(uf1), _f(uar)]
        for k in range(len(titles)):
            puf1, puar, _ = result.part_scores(k, method)
            row += [_f(puf1), _f(puar)]
        rows.append(row)
    if result.protocol == "megc2019" and is_megc2019(result.parts):
        ref = ["LBP-TOP (MEGC 2019, published)", *map(_f, MEGC2019_LBPTOP["composite"])]
        for t in titles:
            ref += list(map(_f, MEGC2019_LBPTOP[t]))
        rows.append(ref)
    if result.protocol == "megc2019":
        title = "MEGC 2019 composite: " + " + ".join(titles) + ", 3 classes, LOSO"
    else:
        title = "Cross-database: train on the other databases, test on each (3 classes)"
    return title, headers, rows


def parts_table(result: CompositeResult) -> tuple[str, list[str], list[list]]:
    headers = ["part", "format", "images", "subjects", "samples", "negative", "positive", "surprise", "left out",
               "published (subjects / samples)"]
    rows = []
    for k, p in enumerate(result.parts):
        y = result.y[result.part_of == k]
        subjects = {p.db.refs[i].record.subject for i in p.keep}
        left = ", ".join(f"{lab} {n}" for lab, n in sorted(p.left_out.items())) or "-"
        pub = MEGC2019_COUNTS.get(p.title)
        rows.append([p.title, p.db.fmt, p.db.images, len(subjects), len(y),
                     *[int((y == c).sum()) for c in range(len(MEGC_CLASSES))], left,
                     f"{pub[0]} / {pub[1]}" if pub else "-"])
    return "Parts: samples per MEGC class", headers, rows


def confusion_table(result: CompositeResult) -> tuple[str, list[str], list[list]]:
    _, _, cm = result.scores()
    headers = ["true \\ predicted", *MEGC_CLASSES]
    return "Confusion matrix (all samples)", headers, [[c, *map(int, cm[i])] for i, c in enumerate(MEGC_CLASSES)]


def console_tables(result: CompositeResult) -> list[tuple[str, list[str], list[list]]]:
    """The results with one row per part and method (the MEGC shape is too wide for a terminal)."""
    title, _, _ = results_table(result)
    published = result.protocol == "megc2019" and is_megc2019(result.parts)
    several = len(result.preds) > 1
    headers = ["part", "subjects", "samples"] + (["method"] if several else []) + ["UF1", "UAR"]
    headers += ["MEGC 2019 UF1", "UAR"] if published else []
    n_subjects = len({f"{p.title}/{p.db.refs[i].record.subject}" for p in result.parts for i in p.keep})
    groups = [("composite" if result.protocol == "megc2019" else "all held-out", n_subjects, len(result.y), None,
               "composite")]
    groups += [(p.title, len({p.db.refs[i].record.subject for i in p.keep}), int((result.part_of == k).sum()), k,
                p.title) for k, p in enumerate(result.parts)]
    rows = []
    for name, n_sub, n, k, key in groups:
        for j, method in enumerate(result.preds):
            uf1, uar, _ = result.scores(method=method) if k is None else result.part_scores(k, method)
            head = [name, n_sub, n] if j == 0 else ["", "", ""]
            row = head + ([method] if several else []) + [_f(uf1), _f(uar)]
            if published:
                row += list(map(_f, MEGC2019_LBPTOP[key])) if method == M2D else ["", ""]
            rows.append(row)
    return [(title, headers, rows)]


def write_sections(report, result: CompositeResult) -> None:
    name = "megc2019" if result.protocol == "megc2019" else "cross_database"
    for suffix, (title, headers, rows) in (("", results_table(result)), ("_parts", parts_table(result)),
                                           ("_confusion", confusion_table(result))):
        text = ""
        if not suffix:
            text = ("UF1 and UAR as MEGC 2019 defines them (TP/FP/FN pooled over all test folds). "
                    f"C chosen inside each training fold (values chosen: {sorted(set(result.chosen_c))}).")
            if result.alphas:
                text += (f" Fusion P = (1-a) p2D + a p3D, a chosen per fold on the training part's inner "
                         f"out-of-fold predictions: mean a = {np.mean(result.alphas):.2f}.")
        report.table(f"{name}{suffix}", title, headers, rows, text=text)
    for p in result.parts:
        report.notes.extend(f"{p.title}: {n}" for n in p.db.notes)


# -- command line (the database options of ``station evaluate``) ---------------------------------

DATABASE_HELP = """\
databases: DB is a station export, or a CASME II, SAMM, SMIC or CAS(ME)^3 folder as shipped
(detected; or --format).  --protocol megc2019 / cross-database take several, each optionally
named by its format: casme2=PATH samm=PATH smic=PATH [station=PATH ...]."""


def add_arguments(p) -> None:
    """``--protocol``, ``--images``, ``--smic-set``, ``--depth-intrinsics``, ``--depth-scale``."""
    g = p.add_argument_group("databases")
    g.add_argument("--protocol", default="baseline", choices=("baseline",) + PROTOCOLS,
                   help="baseline (default: the paper's tables on one DB); megc2019: CASME II + SAMM + SMIC-HS "
                        "composite, 3 classes, LOSO over all subjects, UF1/UAR per part and composite; "
                        "cross-database: train on all but one DB, test on it")
    g.add_argument("--images", choices=("cropped", "raw"),
                   help="image set of CASME II / SAMM / SMIC: cropped (default: the databases' aligned faces, "
                        "what published baselines use) or raw; never mixed, refused if a subject lacks it. "
                        "CAS(ME)^3: raw only (the station aligns and crops)")
    g.add_argument("--smic-set", default="hs", choices=("hs", "vis", "nir"),
                   help="SMIC camera: hs (100 fps, default), vis or nir (25 fps)")
    g.add_argument("--depth-intrinsics", metavar="FX,FY,PPX,PPY",
                   help="CAS(ME)^3 depth/colour intrinsics in pixels (default: ROOT/intrinsics.json, else the "
                        "assumption in docs/evaluate.md)")
    g.add_argument("--depth-scale", type=float, metavar="M_PER_UNIT",
                   help="CAS(ME)^3 metres per depth unit (default 0.001: millimetres)")


def load_options(args) -> LoadOptions:
    intr = None
    if getattr(args, "depth_intrinsics", None):
        try:
            intr = tuple(float(v) for v in args.depth_intrinsics.split(","))
        except ValueError:
            intr = ()
        if len(intr) != 4 or min(intr[:2]) <= 0:
            raise StationError(f"--depth-intrinsics needs FX,FY,PPX,PPY in pixels (fx, fy > 0), got "
                               f"{args.depth_intrinsics!r}.")
    scale = getattr(args, "depth_scale", None)
    if scale is not None and scale <= 0:
        raise StationError(f"--depth-scale must be > 0 metres per unit, got {scale}.")
    return LoadOptions(images=getattr(args, "images", None), smic_set=getattr(args, "smic_set", "hs"),
                       depth_intrinsics=intr, depth_scale=scale)


def run_command(args) -> int:
    """``station evaluate --protocol megc2019|cross-database DB DB ...``."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from station.checks import check_writable_dir
    from station.console import console, print_ok, print_warning
    from station.evaluate.cache import FeatureCache
    from station.evaluate.commands import options_from_args
    from station.evaluate.report import Report

    parts = load_parts(list(args.db), args.format, load_options(args))
    if args.protocol == "megc2019" and not is_megc2019(parts):
        print_warning("the parts are not exactly CASME II + SAMM + SMIC-HS: the MEGC 2019 protocol is run on them, "
                      "but the published figures do not apply")
    options = options_from_args(args, all(p.db.has_3d for p in parts))  # 3D only when every part has depth
    name = "+".join(p.db.fmt for p in parts)
    out = check_writable_dir(Path(args.out) if args.out else Path.cwd() / f"evaluation-{args.protocol}-{name}",
                             "report folder")
    cache = FeatureCache(None if args.no_cache else Path(args.cache) if args.cache else out / "cache")
    for p in parts:
        console.print(f"[bold]{escape(p.title)}[/] {escape(str(p.db.root))!r}: {len(p.keep)} of {len(p.db.refs)} "
                      f"samples in 3 classes, {p.db.images}, {len(p.db.notes)} loading note(s)")
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=True)
    from station.evaluate.commands import parallel_backend

    with parallel_backend(args.scheduler), progress:
        result = run_composite(parts, args.protocol, options, cache, progress)
    report = Report(out, f"station evaluate --protocol {args.protocol}: " + " + ".join(p.title for p in parts))
    write_sections(report, result)
    for title, headers, rows in console_tables(result):  # the same numbers, one row per part (fits a terminal)
        table = Table(title=escape(title))
        for h in headers:
            table.add_column(escape(h))
        for row in rows:
            table.add_row(*[escape(str(c)) for c in row])
        console.print(table)
    page = report.write()
    print_ok(f"report written to {str(page)!r}")
    return 0
