"""``station evaluate``: the paper's baseline on a database, written as tables, plots and one HTML page."""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import replace
from pathlib import Path

from station.checks import StationError, check_writable_dir

HELP = "baseline evaluation: LBP-TOP + SI/HK curvature, SVM, LOSO and 10x10-fold, 2D+3D fusion, sweeps"

DESCRIPTION = """\
Evaluate a micro-expression database the way the DSME-3D paper does (section 4.3):
LBP-TOP on the 2D sequence, shape-index (SI) and HK curvature histograms around 23 landmarks on
the onset and apex point clouds, an SVM with probabilities (scaling and C chosen inside the
training folds), leave-one-subject-out and 10-fold cross-validation repeated 10 times, and the
late fusion P = (1-a) p2D + a p3D (a chosen the paper's way and, side by side, nested).

DB is a station database (`station process`), or a CASME II, SAMM or SMIC folder (2D only) or a
CAS(ME)^3 Part A folder (RGB + depth) as the database ships it (docs/evaluate.md).  Results go to --out: report.html, report.md, CSV and markdown tables
shaped like the paper's Tables 6-12, and PNG plots.  Features are cached (--cache) so sweeps
and repeated runs do not recompute them.

examples:
  station evaluate DB --out report/
  station evaluate DB --sweep blocks --sweep-blocks 3x3,5x5,7x10 --sweep-overlaps 0,10,30
  station evaluate CASME2/ --format casme2 --label-sets nonobjective,3class --images cropped
  station evaluate --protocol megc2019 casme2=CASME2/ samm=SAMM/ smic=SMIC/
  station evaluate --protocol cross-database casme2=CASME2/ samm=SAMM/ smic=SMIC/ station=DB/
  station evaluate DB --models ststnet,cnn3d          (needs pip install -e .[deep])
  station evaluate DB --sweep radii --scheduler tcp://HOST:8786
"""


def _numbers(text: str, name: str, kind: type, count: int | None = None) -> tuple:
    """Comma-separated ints or floats from a command-line value, with a message naming the option."""
    try:
        values = tuple(kind(v) for v in text.split(","))
    except ValueError:
        what = "integers" if kind is int else "numbers"
        raise StationError(f"{name} must be comma-separated {what}, got {text!r}.") from None
    if count is not None and len(values) != count:
        raise StationError(f"{name} needs {count} values (e.g. 1,1,4), got {text!r}.")
    return values


def _ints(text: str, name: str, count: int | None = None) -> tuple[int, ...]:
    return _numbers(text, name, int, count)


def _floats(text: str, name: str, count: int | None = None) -> tuple[float, ...]:
    return _numbers(text, name, float, count)


def _grid(text: str, name: str) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise StationError(f"{name} entries are ROWSxCOLS like 5x5, got {text!r}.") from None
    if rows < 1 or cols < 1:
        raise StationError(f"{name} needs at least 1x1 blocks, got {text!r}.")
    return rows, cols


def _names(text: str, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise StationError(f"{name} must be a comma-separated subset of {', '.join(allowed)}, got {text!r}.")
    return values


def register(subparsers) -> None:
    from station.evaluate.loaders import FORMATS
    from station.features.curvature import SCALE_Z, SMALL_FIT_RADIUS
    from station.evaluate.sweeps import SWEEPS

    p = subparsers.add_parser("evaluate", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("db", metavar="DB", nargs="+",
                   help="database folder (station export, CASME II, SAMM, SMIC, CAS(ME)^3); several, as "
                        "[FORMAT=]PATH, with --protocol megc2019 or cross-database")
    p.add_argument("--out", metavar="REPORT_DIR", help="report folder (default: ./evaluation-<DB name>)")
    p.add_argument("--format", default="auto", choices=("auto", *FORMATS),
                   help="database layout (default: detected from the folder)")
    g = p.add_argument_group("protocol")
    g.add_argument("--label-sets", default="objective,nonobjective,3class",
                   help="objective, nonobjective (without sadness, as the paper), 3class (positive/negative/"
                        "surprise, Others discarded); default: all three")
    g.add_argument("--protocols", default="loso,kfold", help="loso and/or kfold (default: both)")
    g.add_argument("--repeats", type=int, default=10, help="repetitions of the k-fold CV (default 10)")
    g.add_argument("--folds", type=int, default=10, help="k of the k-fold CV (default 10)")
    g.add_argument("--min-class-size", type=int, default=3,
                   help="drop classes with fewer samples from a label set (default 3)")
    g.add_argument("--kernel", default="linear", choices=("linear", "rbf"), help="SVM kernel (default linear)")
    g.add_argument("--C", dest="c_grid", default="0.01,0.1,1",
                   help="SVM C values searched inside each training fold (default 0.01,0.1,1)")
    g.add_argument("--no-nested", action="store_true",
                   help="skip the nested choice of the fusion weight (faster; the paper's choice stays)")
    g.add_argument("--seed", type=int, default=0, help="random seed of the k-fold splits and the SVM")
    g.add_argument("--search", default="lean", choices=("lean", "sklearn"),
                   help="how C is searched: lean (default, one kernel matrix per inner split) or sklearn "
                        "(Pipeline + GridSearchCV; same choice, slower: for checking)")
    f = p.add_argument_group("features")
    f.add_argument("--radii", default="1,1,4", help="LBP-TOP radii Rx,Ry,Rt (default 1,1,4: the paper's LOSO best)")
    f.add_argument("--neighbours", default="8,8,8", help="LBP-TOP neighbours on XY,XT,YT (default 8,8,8)")
    f.add_argument("--mapping", default="u2", choices=("u2", "basic"),
                   help="LBP code mapping: u2 (uniform, 59 bins for P=8) or basic (2^P bins)")
    f.add_argument("--lbp-variant", default="zhao", choices=("zhao", "station"),
                   help="LBP-TOP definition: zhao (default; exactly Zhao's LBPTOP.m, as the CASME II / SMIC "
                        "baselines) or station (the station's earlier definition); see docs/evaluate.md")
    f.add_argument("--lbp-interpolation", default="bilinear", choices=("bilinear", "nearest"),
                   help="zhao's two sampling modes: bilinear (default, as the CASME II baseline script) or "
                        "nearest (floor(x+0.5))")
    f.add_argument("--blocks", default="5x5", help="LBP-TOP block grid ROWSxCOLS (default 5x5)")
    f.add_argument("--overlap", type=int, default=0, help="block overlap in pixels (default 0)")
    f.add_argument("--radius3d", type=float, default=10.0,
                   help="3D spherical neighbourhood radius around each landmark, mm (default 10)")
    f.add_argument("--fit-radius", type=float, default=16.0,
                   help="curvature fit neighbourhood radius in mm (default 16: holds at D415 noise, see "
                        "docs/benchmarks.md); 0 = the earlier 24-nearest-points fit with fixed HK thresholds")
    f.add_argument("--small-fit-radius", type=float, default=SMALL_FIT_RADIUS,
                   help="fit-scale selection: each vertex is also fitted within this radius (mm) and takes that "
                        f"fit where the two disagree by more than {SCALE_Z:g} of its standard deviations, i.e. where "
                        f"the surface changes within --fit-radius (default {SMALL_FIT_RADIUS:g}; 0 = off; smaller "
                        "than --fit-radius)")
    f.add_argument("--no-3d", action="store_true", help="2D only (automatic for CASME II / SAMM)")
    s = p.add_argument_group("sweeps")
    s.add_argument("--sweep", choices=SWEEPS,
                   help="instead of the baseline: radii (Table 6), blocks x overlaps (Tables 7-10) or radius3d")
    s.add_argument("--sweep-radii", help="radii to sweep, 'Rx,Ry,Rt;Rx,Ry,Rt;...' (default: the paper's 48)")
    s.add_argument("--sweep-blocks", help="grids to sweep, e.g. 3x3,5x5,7x10 (default: the paper's 33, 3x3..8x10)")
    s.add_argument("--sweep-overlaps", help="overlaps to sweep, e.g. 0,10,30 (default 0,5,...,30)")
    s.add_argument("--sweep-radius3d", help="3D radii to sweep in mm, e.g. 5,10,15 (default 5,10,15,20)")
    r = p.add_argument_group("running")
    r.add_argument("--jobs", type=int, default=-1, help="parallel workers (default: all cores)")
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="run folds and features on a Dask distributed cluster (e.g. tcp://host:8786)")
    r.add_argument("--cache", metavar="DIR", help="feature cache folder (default: REPORT_DIR/cache)")
    r.add_argument("--no-cache", action="store_true", help="compute features without reading or writing the cache")
    d = p.add_argument_group("deep models (Table 12)")
    d.add_argument("--models", help="deep 2D models to fuse with 3D, e.g. ststnet,cnn3d (pip install -e .[deep])")
    d.add_argument("--deep-work-dir", help="checkpoints of the deep models (default: REPORT_DIR/deep)")
    from station.evaluate.composite import add_arguments as add_database_arguments

    add_database_arguments(p)  # --protocol, --images, --smic-set, --depth-intrinsics (databases)
    p.set_defaults(func=run)


def options_from_args(args, has_3d: bool):
    from station.evaluate.baseline import EvalOptions
    from station.vocab.classes import LABEL_SETS
    from station.evaluate.protocols import PROTOCOLS
    from station.features.landmarks23 import CurvatureParams
    from station.features.lbptop import LbpTopParams, check_params

    rows, cols = _grid(args.blocks, "--blocks")
    lbp = LbpTopParams(radii=_floats(args.radii, "--radii", 3), neighbours=_ints(args.neighbours, "--neighbours", 3),
                       mapping=args.mapping, rows=rows, cols=cols, overlap=args.overlap,
                       variant=args.lbp_variant, interpolation=args.lbp_interpolation)
    check_params(lbp)
    if args.radius3d <= 0:
        raise StationError(f"--radius3d must be > 0 mm, got {args.radius3d}.")
    if args.repeats < 1 or args.folds < 2:
        raise StationError(f"--repeats must be >= 1 and --folds >= 2, got {args.repeats} and {args.folds}.")
    if args.fit_radius < 0:
        raise StationError(f"--fit-radius must be >= 0 mm (0 = 24 nearest points), got {args.fit_radius}.")
    if args.small_fit_radius < 0 or (args.fit_radius and args.small_fit_radius >= args.fit_radius):
        raise StationError(f"--small-fit-radius must be >= 0 mm and smaller than --fit-radius ({args.fit_radius:g} mm); "
                           f"0 turns the scale selection off; got {args.small_fit_radius:g}.")
    curvature = CurvatureParams(radius=args.radius3d, fit_radius=args.fit_radius or None,
                                small_fit_radius=args.small_fit_radius or None)
    return EvalOptions(lbptop=lbp, curvature=curvature,
                       label_sets=_names(args.label_sets, LABEL_SETS, "--label-sets"),
                       protocols=_names(args.protocols, PROTOCOLS, "--protocols"), n_repeats=args.repeats,
                       n_splits=args.folds, kernel=args.kernel, c_grid=_floats(args.c_grid, "--C"),
                       use_3d=has_3d and not args.no_3d, nested=not args.no_nested,
                       min_class_size=args.min_class_size, seed=args.seed, n_jobs=args.jobs, search=args.search)


@contextlib.contextmanager
def parallel_backend(scheduler: str | None):
    """Local processes (``--jobs``), or every parallel map inside on the given Dask scheduler."""
    from station.parallel import use_scheduler

    with use_scheduler(scheduler or None) as client:
        yield client


def _report_folder(args) -> Path:
    """--out, or ./evaluation-<DB name>; checked writable before any work starts."""
    out = Path(args.out) if args.out else Path.cwd() / f"evaluation-{Path(args.db).resolve().name}"
    return check_writable_dir(out, "report folder")


def _deep_models(args) -> list[str]:
    """The --models names, checked against the deep extra before hours of work start."""
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else []
    if models:
        from station.evaluate.deep_fusion import import_deep

        deep = import_deep()  # fail early if the extra is missing or a name is wrong
        unknown = [m for m in models if m not in deep.MODELS]
        if unknown:
            raise StationError(f"--models: unknown model(s) {', '.join(unknown)}; available: "
                               f"{', '.join(deep.MODELS)}.")
    return models


def _announce_database(db, options) -> None:
    """One line about the database and its first loading notes."""
    from rich.markup import escape

    from station.console import console, print_warning

    console.print(f"[bold]{db.fmt}[/] database {str(db.root)!r}: {len(db.refs)} samples, "
                  f"{len({r.subject for r in db.records})} subjects, {'2D + 3D' if options.use_3d else '2D only'}")
    for note in db.notes[:5]:
        print_warning(escape(str(note)))
    if len(db.notes) > 5:
        print_warning(f"... {len(db.notes) - 5} more loading note(s) in the report")


def _run_sweep(args, db, options, cache, report, progress) -> None:
    """``--sweep radii|blocks|radius3d``: the paper's Tables 6-10 instead of the baseline."""
    from station.evaluate import sweeps

    if args.sweep == "radii":
        radii = None
        if args.sweep_radii:
            radii = [_floats(t, "--sweep-radii", 3) for t in args.sweep_radii.split(";") if t.strip()]
        sweeps.sweep_radii(db, options, cache, report, radii, progress)
    elif args.sweep == "blocks":
        blocks = [_grid(t, "--sweep-blocks") for t in args.sweep_blocks.split(",")] if args.sweep_blocks else None
        overlaps = _ints(args.sweep_overlaps, "--sweep-overlaps") if args.sweep_overlaps else None
        sweeps.sweep_blocks(db, options, cache, report, blocks, overlaps, progress)
    elif args.sweep == "radius3d":
        if not options.use_3d:
            raise StationError("--sweep radius3d needs 3D data: a station database without --no-3d.")
        radii3d = _floats(args.sweep_radius3d, "--sweep-radius3d") if args.sweep_radius3d else None
        sweeps.sweep_radius3d(db, options, cache, report, radii3d, progress)


def _run_baseline(args, db, options, cache, report, models, out: Path, progress) -> None:
    """Table 11 (and Table 12 with --models): the baseline, its report sections and console table."""
    from station.console import console
    from station.evaluate.baseline import run_baseline
    from station.evaluate.report import baseline_sections, console_table

    if models:  # the deep models are compared on 3 classes under LOSO, as in the paper
        options = replace(options, label_sets=tuple(dict.fromkeys(options.label_sets + ("3class",))),
                          protocols=tuple(dict.fromkeys(options.protocols + ("loso",))))
    result = run_baseline(db, options, cache, progress)
    baseline_sections(report, result, options=options, db=db)
    console.print(console_table(result, f"Baseline: {db.root.name}"))
    from rich.markup import escape

    from station.console import print_warning

    shown = [n for n in result.notes if "skipped" in n or "-fold" in n]  # what changed the protocol
    for note in shown[:10]:
        print_warning(escape(note))
    if len(shown) > 10:
        print_warning(f"... and {len(shown) - 10} more in the report's notes")
    if models:
        from station.evaluate.deep_fusion import deep_table

        deep_table(db, result, models, report,
                   work_dir=Path(args.deep_work_dir) if args.deep_work_dir else out / "deep",
                   seed=options.seed, progress=progress)


def _print_paper_tables(report) -> None:
    """The paper-shaped tables (other than Table 11, printed by the baseline) on the console."""
    from rich.markup import escape
    from rich.table import Table

    from station.console import console

    for section in report.sections:
        if section.title.startswith("Table") and not section.title.startswith("Table 11"):
            for t in section.tables:
                table = Table(title=escape(section.title + (f" — {t.caption}" if t.caption else "")))
                for h in t.headers:
                    table.add_column(escape(str(h)))
                for row in t.rows:
                    table.add_row(*[escape(str(c)) for c in row])
                console.print(table)


def run(args) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from station.console import console, print_ok
    from station.evaluate.cache import FeatureCache
    from station.evaluate.loaders import load_database
    from station.evaluate.metrics import DEFINITIONS
    from station.evaluate.report import Report, run_parameters

    started = time.perf_counter()
    if getattr(args, "protocol", "baseline") != "baseline":
        from station.evaluate.composite import run_command

        return run_command(args)
    if not isinstance(args.db, str):
        if len(args.db) != 1:
            raise StationError(f"{len(args.db)} databases given: several need --protocol megc2019 or "
                               "cross-database; the baseline reads one.")
        args.db = args.db[0]
    from station.evaluate.composite import load_options

    db = load_database(args.db, args.format, load_options(args))
    options = options_from_args(args, db.has_3d)
    out = _report_folder(args)
    cache = FeatureCache(None if args.no_cache else Path(args.cache) if args.cache else out / "cache")
    if args.scheduler:
        options = replace(options, n_jobs=-1)
    models = _deep_models(args)
    _announce_database(db, options)
    report = Report(out, f"station evaluate: {db.root.name}" + (f" (sweep {args.sweep})" if args.sweep else ""))
    report.run_info.update(run_parameters(options, db))
    report.definitions.update(DEFINITIONS)
    if args.sweep:  # the baseline adds them with the samples it skipped
        report.loading_notes.extend((getattr(n, "sample", ""), getattr(n, "text", str(n))) for n in db.notes)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=True)
    with parallel_backend(args.scheduler), progress:
        if args.sweep:
            _run_sweep(args, db, options, cache, report, progress)
        else:
            _run_baseline(args, db, options, cache, report, models, out, progress)
    _print_paper_tables(report)
    page = report.write()
    print_ok(f"report written to {str(page)!r} ({time.perf_counter() - started:.0f} s; feature cache: "
             f"{cache.hits} hit(s), {cache.misses} miss(es))")
    return 0
