"""LBP-TOP ``variant="zhao"``: bit-identical to a line-by-line transcription of Zhao's LBPTOP.m.

``ref_LBPTOP`` below transcribes ``LBPTOP.m`` (G. Zhao & M. Pietikäinen, MATLAB version by
X. Huang; public copies e.g. in iwawiwi/dip-advanced-final-project) statement by statement:
1-based indices, ``VolData(y, x, t)``, double coordinates, ``single(...)`` where the MATLAB code
has it, MATLAB's single arithmetic (double * single -> single) with numpy float32 scalars.
``ref_casme2_blocks`` transcribes the CASME II baseline script's 5x5 block loop around it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from station.checks import StationError
from station.features.lbptop import LbpTopParams, lbptop, lbptop_grids, mapping_table, matlab_order

F32 = np.float32


def ref_code_table(p: int) -> list[list[int]]:
    """``UniformLBP8.txt``'s ``Code`` (256 x 2: code, uniform bin), for any P."""
    rows, nxt = [], 0
    for code in range(2 ** p):
        changes = sum(((code >> i) & 1) != ((code >> ((i + 1) % p)) & 1) for i in range(p))
        if changes <= 2:
            rows.append([code, nxt])
            nxt += 1
        else:
            rows.append([code, None])
    return [[c, b if b is not None else nxt] for c, b in rows]


def ref_LBPTOP(VolData, FxRadius, FyRadius, TInterval, NeighborPoints, TimeLength, BorderLength,
               bBilinearInterpolation, Bincount, Code):  # noqa: N802, N803 (MATLAB names)
    """LBPTOP.m; ``VolData`` is a [height][width][Length] nested list (MATLAB's layout)."""
    height, width, Length = len(VolData), len(VolData[0]), len(VolData[0][0])

    def V(y, x, t):  # MATLAB 1-based VolData(y, x, t)
        return VolData[y - 1][x - 1][t - 1]

    XYNeighborPoints, XTNeighborPoints, YTNeighborPoints = NeighborPoints
    nDim = 2 ** YTNeighborPoints if Bincount == 0 else Bincount
    Histogram = [[0.0] * nDim for _ in range(3)]

    def add(plane, BasicLBP):
        k = BasicLBP if Bincount == 0 else Code[BasicLBP][1]
        Histogram[plane][k] += 1

    def interp(vlt, vlb, vrt, vrb, u, v):
        # floor(VolData(lt)*(1-u)*(1-v) + VolData(lb)*(1-u)*v + VolData(rt)*u*(1-v) + VolData(rb)*u*v)
        one = F32(1)
        s = F32(vlt) * (one - u) * (one - v)
        s = s + F32(vlb) * (one - u) * v
        s = s + F32(vrt) * u * (one - v)
        s = s + F32(vrb) * u * v
        return np.floor(s)

    for i in range(TimeLength + 1, Length - TimeLength + 1):
        for yc in range(BorderLength + 1, height - BorderLength + 1):
            for xc in range(BorderLength + 1, width - BorderLength + 1):
                CenterVal = V(yc, xc, i)
                # XY plane
                BasicLBP = 0
                for p in range(XYNeighborPoints):
                    if bBilinearInterpolation == 0:
                        X = math.floor(xc + FxRadius * math.cos((2 * math.pi * p) / XYNeighborPoints) + 0.5)
                        Y = math.floor(yc - FyRadius * math.sin((2 * math.pi * p) / XYNeighborPoints) + 0.5)
                        CurrentVal = V(Y, X, i)
                    else:
                        x1 = F32(xc + FxRadius * math.cos((2 * math.pi * p) / XYNeighborPoints))
                        y1 = F32(yc - FyRadius * math.sin((2 * math.pi * p) / XYNeighborPoints))
                        u, v = x1 - np.floor(x1), y1 - np.floor(y1)
                        fx, cx, fy, cy = int(np.floor(x1)), int(np.ceil(x1)), int(np.floor(y1)), int(np.ceil(y1))
                        CurrentVal = interp(V(fy, fx, i), V(cy, fx, i), V(fy, cx, i), V(cy, cx, i), u, v)
                    if float(CurrentVal) >= float(CenterVal):
                        BasicLBP += 2 ** p
                add(0, BasicLBP)
                # XT plane
                BasicLBP = 0
                for p in range(XTNeighborPoints):
                    if bBilinearInterpolation == 0:
                        X = math.floor(xc + FxRadius * math.cos((2 * math.pi * p) / XTNeighborPoints) + 0.5)
                        Z = math.floor(i + TInterval * math.sin((2 * math.pi * p) / XTNeighborPoints) + 0.5)
                        CurrentVal = V(yc, X, Z)
                    else:
                        x1 = F32(xc + FxRadius * math.cos((2 * math.pi * p) / XTNeighborPoints))
                        z1 = F32(i + TInterval * math.sin((2 * math.pi * p) / XTNeighborPoints))
                        u, v = x1 - np.floor(x1), z1 - np.floor(z1)
                        fx, cx, fz, cz = int(np.floor(x1)), int(np.ceil(x1)), int(np.floor(z1)), int(np.ceil(z1))
                        CurrentVal = interp(V(yc, fx, fz), V(yc, fx, cz), V(yc, cx, fz), V(yc, cx, cz), u, v)
                    if float(CurrentVal) >= float(CenterVal):
                        BasicLBP += 2 ** p
                add(1, BasicLBP)
                # YT plane
                BasicLBP = 0
                for p in range(YTNeighborPoints):
                    if bBilinearInterpolation == 0:
                        Y = math.floor(yc - FyRadius * math.sin((2 * math.pi * p) / YTNeighborPoints) + 0.5)
                        Z = math.floor(i + TInterval * math.cos((2 * math.pi * p) / YTNeighborPoints) + 0.5)
                        CurrentVal = V(Y, xc, Z)
                    else:
                        y1 = F32(yc - FyRadius * math.sin((2 * math.pi * p) / YTNeighborPoints))
                        z1 = F32(i + TInterval * math.cos((2 * math.pi * p) / YTNeighborPoints))
                        u, v = y1 - np.floor(y1), z1 - np.floor(z1)
                        fy, cy, fz, cz = int(np.floor(y1)), int(np.ceil(y1)), int(np.floor(z1)), int(np.ceil(z1))
                        CurrentVal = interp(V(fy, xc, fz), V(fy, xc, cz), V(cy, xc, fz), V(cy, xc, cz), u, v)
                    if float(CurrentVal) >= float(CenterVal):
                        BasicLBP += 2 ** p
                add(2, BasicLBP)
    # normalization (0/0 would be NaN in MATLAB; the station refuses such blocks instead)
    return [[c / sum(row) for c in row] for row in Histogram]


def ref_casme2_blocks(vol_thw, rows, cols, overlap, radii, neighbours, time_length, border, bilinear, mapping):
    """The CASME II script: ``x = floor(height/5)`` ... ``LBPTOP(VolData(rows, cols, :), ...)`` per block.

    ``overlap`` > 0 is the station's extension (blocks widened and clipped to the image).
    """
    vol = np.transpose(np.asarray(vol_thw), (1, 2, 0))  # (T, H, W) -> MATLAB's [height][width][Length]
    height, width = vol.shape[:2]
    x, y = height // rows, width // cols
    p = neighbours[0]
    bincount = 0 if mapping == "basic" else p * (p - 1) + 3
    code = ref_code_table(p)
    feature = []
    for ii in range(1, rows + 1):
        for jj in range(1, cols + 1):
            r0, r1 = max(1, ii * x + 1 - x - overlap), min(height, ii * x + overlap)
            c0, c1 = max(1, jj * y + 1 - y - overlap), min(width, jj * y + overlap)
            block = vol[r0 - 1:r1, c0 - 1:c1, :].astype(np.float64).tolist()
            hist = ref_LBPTOP(block, radii[0], radii[1], radii[2], neighbours, time_length, border,
                              1 if bilinear else 0, bincount, code)
            for plane in hist:  # station order: block, plane, bin
                feature.extend(plane)
    return np.array(feature)


def _volume(seed, shape):
    rng = np.random.default_rng(seed)
    vol = rng.integers(0, 256, size=shape).astype(np.uint8)
    vol[:, 2:7, 3:10] = 131  # a flat patch: Zhao's single-precision ties show up here
    vol[:, -4:, :5] = 255
    return vol


CASES = [  # radii, neighbours, mapping, (rows, cols, overlap), shape
    ((1, 1, 2), (8, 8, 8), "u2", (2, 2, 0), (8, 14, 17)),
    ((1, 1, 4), (8, 8, 8), "u2", (1, 1, 0), (11, 13, 12)),    # one block: LBPTOP.m on the whole volume
    ((2, 2, 3), (8, 8, 8), "basic", (2, 3, 0), (9, 19, 23)),
    ((1, 2, 2), (4, 8, 4), "u2", (2, 2, 2), (7, 16, 15)),     # overlap (station extension), unequal P
    ((1.5, 1, 2), (8, 8, 8), "u2", (1, 2, 0), (7, 11, 16)),   # non-integer radius
]


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("radii,neighbours,mapping,grid,shape", CASES)
def test_zhao_is_bit_identical_to_the_LBPTOP_m_transcription(radii, neighbours, mapping, grid, shape, interpolation):
    if mapping == "basic" and len(set(neighbours)) > 1:
        pytest.skip("LBPTOP.m sizes basic histograms by P_yt")
    vol = _volume(sum(shape), shape)
    params = LbpTopParams(radii=radii, neighbours=neighbours, mapping=mapping, rows=grid[0], cols=grid[1],
                          overlap=grid[2], variant="zhao", interpolation=interpolation)
    border, time_length = math.ceil(max(radii[:2])), math.ceil(radii[2])
    if neighbours != (8, 8, 8) and mapping == "u2":  # the reference takes one Code table: use P per plane
        ref = _ref_unequal(vol, params, border, time_length)
    else:
        ref = ref_casme2_blocks(vol, *grid, radii, neighbours, time_length, border,
                                interpolation == "bilinear", mapping)
    fast = lbptop(vol, params)
    assert fast.shape == ref.shape == (params.n_features(),)
    assert np.array_equal(fast, ref)  # bit-identical


def test_pass_split_into_frame_chunks_changes_nothing(monkeypatch):
    import station.features.lbptop as module

    vol = _volume(4, (12, 15, 18))
    for interpolation in ("bilinear", "nearest"):
        params = LbpTopParams(radii=(1, 1, 3), rows=2, cols=2, interpolation=interpolation)
        whole = lbptop(vol, params)
        monkeypatch.setattr(module, "_CHUNK", 40)  # one frame per chunk
        assert np.array_equal(lbptop(vol, params), whole)
        monkeypatch.setattr(module, "_CHUNK", 1 << 17)
    ref = ref_casme2_blocks(vol, 2, 2, 0, (1, 1, 3), (8, 8, 8), 3, 1, False, "u2")
    assert np.array_equal(whole, ref)


def _ref_unequal(vol, params, border, time_length):
    """Per plane with its own P (LBPTOP.m is called with one Code table, so plane by plane here)."""
    per_plane = []
    for k, p in enumerate(params.neighbours):
        # the plane k histogram only depends on P_k: call with all three set to P_k
        f = ref_casme2_blocks(vol, params.rows, params.cols, params.overlap, params.radii, (p, p, p),
                              time_length, border, params.interpolation == "bilinear", params.mapping)
        per_plane.append(f.reshape(params.rows * params.cols, 3, -1)[:, k, :])
    return np.concatenate([np.concatenate([pp[b] for pp in per_plane]) for b in range(params.rows * params.cols)])


def test_single_precision_ties_in_flat_regions_are_zhaos_not_exact_arithmetic():
    """A flat block: exact bilinear gives the tie (every bit 1); LBPTOP.m's single precision
    truncates some diagonal neighbours to c - 1, and the station variant does not."""
    vol = np.full((9, 20, 20), 9, np.uint8)  # e.g. 9*(1-u)*(1-v) + ... = 8.999999 at xc = 5, p = 3
    zhao = lbptop(vol, LbpTopParams(radii=(1, 1, 2), mapping="basic", rows=1, cols=1, variant="zhao"))
    ref = ref_casme2_blocks(vol, 1, 1, 0, (1, 1, 2), (8, 8, 8), 2, 1, True, "basic")
    assert np.array_equal(zhao, ref)
    station = lbptop(vol, LbpTopParams(radii=(1, 1, 2), mapping="basic", rows=1, cols=1, variant="station"))
    assert station.reshape(3, 256)[:, 255].tolist() == [1.0, 1.0, 1.0]
    assert zhao.reshape(3, 256)[:, 255].min() < 1.0  # not all-ones: Zhao's float32 + floor
    nearest = lbptop(vol, LbpTopParams(radii=(1, 1, 2), mapping="basic", rows=1, cols=1, interpolation="nearest"))
    assert nearest.reshape(3, 256)[:, 255].tolist() == [1.0, 1.0, 1.0]  # no arithmetic, no tie issue


def test_time_direction_is_plus_sin_on_XT_and_plus_cos_on_YT():
    """A ramp increasing in time: neighbour p = 2 on XT (a = pi/2) lies at t + Rt (later, brighter)."""
    t = np.arange(11, dtype=np.uint8)[:, None, None] * 10
    vol = np.broadcast_to(t, (11, 9, 9)).copy()
    p = LbpTopParams(radii=(1, 1, 2), mapping="basic", rows=1, cols=1, interpolation="nearest")
    xy, xt, yt = lbptop(vol, p).reshape(3, 256).argmax(axis=1)
    # XT: bits p with sin(a) >= 0 (p = 0..4, later or same frame) are 1; p = 5..7 earlier -> 0
    assert xt == 0b00011111
    # YT: cos(a) >= 0 is p = 0, 1, 2 (cos(pi/2) ~ 6e-17 >= 0) and 6, 7
    assert yt == 0b11000111
    assert xy == 255


def test_block_layout_drops_the_remainder_like_the_casme2_script():
    vol = _volume(1, (7, 23, 22))
    params = LbpTopParams(radii=(1, 1, 2), rows=5, cols=5)  # blocks 4x4, 3 rows and 2 columns unused
    changed = vol.copy()
    changed[:, 20:, :] = 0
    changed[:, :, 20:] = 0
    assert np.array_equal(lbptop(vol, params), lbptop(changed, params))
    changed[:, 19, 10] ^= 0xFF  # a pixel of the last block's last row: only read, never a centre
    assert not np.array_equal(lbptop(vol, params), lbptop(changed, params))


def test_matlab_feature_order_interleaves_planes_per_bin():
    params = LbpTopParams(rows=2, cols=3)
    perm = matlab_order(params)
    feat = np.arange(params.n_features())
    m = feat[perm]
    # Histogram_block is 3 x (59 * 6); (:) runs down the columns: plane 0..2 of bin 0 of block 0 first
    assert m[:4].tolist() == [0, 59, 118, 1]
    assert sorted(m.tolist()) == feat.tolist()


def test_grids_and_border_errors():
    vol = _volume(2, (9, 24, 24))
    params = LbpTopParams(radii=(1, 1, 2))
    many = lbptop_grids(vol, params, [(2, 2, 0), (3, 3, 2)])
    assert np.array_equal(many[1], lbptop(vol, LbpTopParams(radii=(1, 1, 2), rows=3, cols=3, overlap=2)))
    with pytest.raises(StationError, match="index error"):
        lbptop(vol, LbpTopParams(radii=(2, 2, 2), border=1))
    with pytest.raises(StationError, match="no centre"):
        lbptop(vol, LbpTopParams(radii=(1, 1, 2), rows=12, cols=12))
    with pytest.raises(StationError, match="variant"):
        lbptop(vol, LbpTopParams(variant="meb"))
    with pytest.raises(StationError, match="bilinear"):
        lbptop(vol, LbpTopParams(variant="station", interpolation="nearest"))
    assert mapping_table(8, "u2")[255] == 57
