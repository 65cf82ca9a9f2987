"""Parameter sweeps of the paper: LBP-TOP radii (Table 6), blocks x overlaps (Tables 7-10), 3D radius.

Every setting's features come from the feature cache (cache.py), so re-running a sweep, or a
baseline with a setting a sweep already saw, recomputes nothing.  Block grids share one LBP code
pass per sample (integral histograms), computed in chunks to bound memory.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from station.evaluate.baseline import (MODALITIES_3D, MODALITY_2D, EvalOptions, EvaluationResult,
                                       evaluate_features)
from station.evaluate.cache import FeatureCache, curvature_matrices, lbptop_matrices
from station.evaluate.loaders import Database
from station.evaluate.protocols import PROTOCOL_TITLES
from station.evaluate.report import Report, pct

SWEEPS = ("radii", "blocks", "radius3d")
#: Table 6: Rx, Ry in 1..4, Rt in 2..4
PAPER_RADII = [(rx, ry, rt) for rx in (1, 2, 3, 4) for ry in (1, 2, 3, 4) for rt in (2, 3, 4)]
#: Tables 7-10: the 33 grids from 3x3 to 8x10 (rows <= cols) and 7 overlaps
PAPER_BLOCKS = [(r, c) for r in range(3, 9) for c in range(r, 11)]
PAPER_OVERLAPS = (0, 5, 10, 15, 20, 25, 30)
PAPER_RADII_3D = (5.0, 10.0, 15.0, 20.0)
GRID_CHUNK = 32


def _accuracy(result: EvaluationResult, label_set: str, protocol: str, method: str, fusion: str = "-") -> float:
    row = result.get(label_set, protocol, method, fusion)
    return row["accuracy"] if row else float("nan")


def _combos(options: EvalOptions) -> list[tuple[str, str]]:
    return [(ls, p) for ls in options.label_sets for p in options.protocols]


def sweep_radii(db: Database, options: EvalOptions, cache: FeatureCache, report: Report, radii=None,
                progress=None) -> list[list]:
    radii = radii or PAPER_RADII
    combos = _combos(options)
    rows = []
    for r in radii:
        params = replace(options.lbptop, radii=tuple(float(v) for v in r))
        X = next(iter(lbptop_matrices(db, params, cache=cache, n_jobs=options.n_jobs, progress=progress).values()))
        res = evaluate_features(db, {MODALITY_2D: X}, replace(options, nested=False), progress, fuse=False)
        rows.append([f"{r[0]:g} {r[1]:g} {r[2]:g}"] + [pct(_accuracy(res, ls, p, MODALITY_2D)) for ls, p in combos])
    headers = ["Rx Ry Rt"] + [f"{ls} {PROTOCOL_TITLES[p]} Acc (%)" for ls, p in combos]
    p = options.lbptop
    report.table("table6_radii", "Table 6: LBP-TOP accuracy at different radii", headers, rows,
                 text=f"{p.rows}x{p.cols} blocks, overlap {p.overlap} px, neighbours {list(p.neighbours)}, "
                      f"mapping {p.mapping}.")
    return rows


def sweep_blocks(db: Database, options: EvalOptions, cache: FeatureCache, report: Report, blocks=None,
                 overlaps=None, progress=None) -> dict[tuple[str, str], list[list]]:
    blocks = blocks or PAPER_BLOCKS
    overlaps = tuple(overlaps or PAPER_OVERLAPS)
    grids = [(r, c, o) for r, c in blocks for o in overlaps]
    combos = _combos(options)
    acc: dict[tuple[int, int, int], dict[tuple[str, str], float]] = {}
    for start in range(0, len(grids), GRID_CHUNK):
        chunk = grids[start:start + GRID_CHUNK]
        mats = lbptop_matrices(db, options.lbptop, chunk, cache=cache, n_jobs=options.n_jobs, progress=progress)
        for grid in chunk:
            res = evaluate_features(db, {MODALITY_2D: mats[grid]}, replace(options, nested=False), progress, fuse=False)
            acc[grid] = {combo: _accuracy(res, *combo, MODALITY_2D) for combo in combos}
    tables = {}
    for n, (ls, p) in enumerate(combos):
        rows = [[f"{r}x{c}"] + [pct(acc[(r, c, o)][(ls, p)]) for o in overlaps] for r, c in blocks]
        headers = ["blocks"] + [f"overlap {o}" for o in overlaps]
        best = max(acc, key=lambda g: np.nan_to_num(acc[g][(ls, p)], nan=-1))
        report.table(f"table7-10_blocks_{ls}_{p}",
                     f"Tables 7-10: LBP-TOP accuracy (%), {PROTOCOL_TITLES[p]}, {ls}", headers, rows,
                     text=f"radii {list(options.lbptop.radii)}; best {best[0]}x{best[1]} overlap {best[2]}: "
                          f"{pct(acc[best][(ls, p)])}%.")
        tables[(ls, p)] = rows
    return tables


def sweep_radius3d(db: Database, options: EvalOptions, cache: FeatureCache, report: Report, radii=None,
                   progress=None) -> list[list]:
    radii = radii or PAPER_RADII_3D
    combos = _combos(options)
    X2d = next(iter(lbptop_matrices(db, options.lbptop, cache=cache, n_jobs=options.n_jobs,
                                    progress=progress).values()))
    rows = []
    for radius in radii:
        cur = curvature_matrices(db, replace(options.curvature, radius=float(radius)), cache=cache,
                                 n_jobs=options.n_jobs, progress=progress)
        feats = {MODALITY_2D: X2d, **{MODALITIES_3D[k]: cur[k] for k in ("si", "hk", "sihk")}}
        res = evaluate_features(db, feats, options, progress)
        for ls, p in combos:
            rows.append([f"{radius:g}", ls, PROTOCOL_TITLES[p]]
                        + [pct(_accuracy(res, ls, p, m)) for m in MODALITIES_3D.values()]
                        + [pct(_accuracy(res, ls, p, f"{MODALITY_2D} + {m}", f))
                           for m in MODALITIES_3D.values() for f in ("paper", "nested")])
    headers = (["radius (mm)", "label set", "protocol"] + [f"{m} Acc (%)" for m in MODALITIES_3D.values()]
               + [f"LBP-TOP + {m} [{f} a] Acc (%)" for m in MODALITIES_3D.values() for f in ("paper", "nested")])
    report.table("table_radius3d", "3D neighbourhood radius: 3D features alone and fused with LBP-TOP", headers,
                 rows, text="Spherical neighbourhood of the 23 landmarks, onset and apex frames.")
    return rows
