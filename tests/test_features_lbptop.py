"""LBP-TOP variant "station": the fast vectorised path is bit-identical to a plain, obviously-correct loop version."""

from __future__ import annotations

import math

import numpy as np
import pytest

from station.checks import StationError
from station.features.lbptop import LbpTopParams, lbptop, lbptop_grids, mapping_table


# ------------------------------------------------------------------------------------------------
# reference implementation: one centre, one neighbour, one pixel at a time, straight from the
# definition in station/features/lbptop.py's docstring (and Zhao's LBPTOP.m).


def ref_uniform_table(p: int) -> list[int]:
    table, nxt = [], 0
    for code in range(2 ** p):
        bits = [(code >> i) & 1 for i in range(p)]
        changes = sum(bits[i] != bits[(i + 1) % p] for i in range(p))
        if changes <= 2:
            table.append(nxt)
            nxt += 1
        else:
            table.append(-1)
    return [b if b >= 0 else nxt for b in table]


def ref_value(vol, t, y, x, off):
    """Bilinear grey value at (t, y, x) + off, interpolating in the neighbour's plane."""
    axes = [i for i in range(3) if off[i] != 0.0]
    while len(axes) < 2:
        axes.append([i for i in (2, 1, 0) if i not in axes][0])
    a_ax, b_ax = sorted(axes[:2])
    base = [math.floor(v) for v in off]
    fa, fb = off[a_ax] - base[a_ax], off[b_ax] - base[b_ax]
    centre = [t, y, x]
    g = None
    for da, db, wa, wb in ((0, 0, 1.0 - fa, 1.0 - fb), (0, 1 if fb > 0 else 0, 1.0 - fa, fb),
                           (1 if fa > 0 else 0, 0, fa, 1.0 - fb),
                           (1 if fa > 0 else 0, 1 if fb > 0 else 0, fa, fb)):
        idx = [centre[i] + base[i] for i in range(3)]
        idx[a_ax] += da
        idx[b_ax] += db
        term = (wa * wb) * float(vol[idx[0]][idx[1]][idx[2]])
        g = term if g is None else g + term
    return g


def ref_lbptop(vol, radii, neighbours, mapping, rows, cols, overlap):
    vol = np.asarray(vol).tolist()
    t_len, h, w = len(vol), len(vol[0]), len(vol[0][0])
    rx, ry, rt = radii
    mt, my, mx = math.ceil(rt), math.ceil(ry), math.ceil(rx)
    ye = [(i * h) // rows for i in range(rows + 1)]
    xe = [(j * w) // cols for j in range(cols + 1)]
    blocks = [(max(0, ye[i] - overlap), min(h, ye[i + 1] + overlap), max(0, xe[j] - overlap),
               min(w, xe[j + 1] + overlap)) for i in range(rows) for j in range(cols)]
    feature = []
    hists = {}
    for plane, p_count in zip(("XY", "XT", "YT"), neighbours):
        n_bins = 2 ** p_count if mapping == "basic" else p_count * (p_count - 1) + 3
        table = list(range(2 ** p_count)) if mapping == "basic" else ref_uniform_table(p_count)
        offs = []
        for p in range(p_count):
            a = 2 * math.pi * p / p_count
            if plane == "XY":
                o = (0.0, -ry * math.sin(a), rx * math.cos(a))
            elif plane == "XT":
                o = (-rt * math.sin(a), 0.0, rx * math.cos(a))
            else:
                o = (-rt * math.cos(a), -ry * math.sin(a), 0.0)
            offs.append(tuple(round(v, 6) + 0.0 for v in o))
        per_block = [[0] * n_bins for _ in blocks]
        for t in range(mt, t_len - mt):
            for y in range(my, h - my):
                for x in range(mx, w - mx):
                    gc = float(vol[t][y][x])
                    code = 0
                    for p, o in enumerate(offs):
                        if ref_value(vol, t, y, x, o) >= gc:
                            code += 2 ** p
                    for b, (y0, y1, x0, x1) in enumerate(blocks):
                        if y0 <= y < y1 and x0 <= x < x1:
                            per_block[b][table[code]] += 1
        hists[plane] = per_block
    for b in range(len(blocks)):
        for plane in ("XY", "XT", "YT"):
            counts = hists[plane][b]
            total = sum(counts)
            feature.extend([c / total if total else 0.0 for c in counts])
    return np.array(feature)


# ------------------------------------------------------------------------------------------------


def _volume(seed, shape=(9, 14, 16)):
    rng = np.random.default_rng(seed)
    vol = rng.integers(0, 256, size=shape).astype(np.uint8)
    vol[:, 3:6, 4:9] = 128  # flat patches make ties (g_p == g_c), which s() must count as 1
    return vol


@pytest.mark.parametrize("radii,neighbours,mapping,grid", [
    ((1, 1, 2), (8, 8, 8), "u2", (2, 2, 0)),
    ((2, 1, 3), (8, 8, 8), "basic", (3, 2, 2)),
    ((1.5, 2, 2), (4, 8, 6), "u2", (2, 3, 1)),
    ((1, 1, 1), (8, 4, 4), "basic", (1, 1, 0)),
])
def test_fast_lbptop_is_bit_identical_to_reference(radii, neighbours, mapping, grid):
    vol = _volume(sum(neighbours))
    params = LbpTopParams(variant="station", radii=radii, neighbours=neighbours, mapping=mapping, rows=grid[0],
                          cols=grid[1], overlap=grid[2])
    fast = lbptop(vol, params)
    ref = ref_lbptop(vol, radii, neighbours, mapping, *grid)
    assert fast.shape == ref.shape == (params.n_features(),)
    assert np.array_equal(fast, ref)  # bit-identical, not approximately equal
    assert fast.dtype == np.float64


def test_grids_from_one_code_pass_match_single_grid_calls():
    vol = _volume(3, (10, 20, 24))
    params = LbpTopParams(variant="station", radii=(1, 1, 2))
    grids = [(2, 3, 0), (3, 3, 4), (4, 5, 10)]
    many = lbptop_grids(vol, params, grids)
    for (r, c, o), feat in zip(grids, many):
        single = lbptop(vol, LbpTopParams(variant="station", radii=(1, 1, 2), rows=r, cols=c, overlap=o))
        assert np.array_equal(feat, single)


def test_u2_mapping_has_59_bins_for_8_neighbours_and_orders_uniform_codes():
    table = mapping_table(8, "u2")
    assert table.max() == 58 and len(np.unique(table)) == 59
    assert table[0] == 0 and table[1] == 1 and table[255] == 57
    assert table[0b00100100] == 58  # four transitions: non-uniform
    assert list(table) == ref_uniform_table(8)


def test_block_histograms_are_normalised_per_plane():
    vol = _volume(5, (9, 30, 30))
    params = LbpTopParams(variant="station", radii=(1, 1, 2), rows=3, cols=3, overlap=3)
    feat = lbptop(vol, params).reshape(9, 3, 59)
    assert np.allclose(feat.sum(axis=2), 1.0)


def test_constant_sequence_has_all_ones_pattern():
    vol = np.full((7, 12, 12), 77, np.uint8)
    feat = lbptop(vol, LbpTopParams(variant="station", radii=(1, 1, 1), mapping="basic", rows=1, cols=1))
    assert feat.reshape(3, 256)[:, 255].tolist() == [1.0, 1.0, 1.0]


def test_too_short_sequence_is_refused_with_the_sizes():
    with pytest.raises(StationError, match="at least 9 frames"):
        lbptop(np.zeros((5, 20, 20), np.uint8), LbpTopParams(variant="station", radii=(1, 1, 4)))
    with pytest.raises(StationError, match="mapping"):
        lbptop(np.zeros((9, 20, 20), np.uint8), LbpTopParams(variant="station", mapping="riu2"))
