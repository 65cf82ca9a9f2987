"""LBP-TOP: local binary patterns on three orthogonal planes (Zhao & Pietikäinen 2007; paper 4.2.1).

Definition used here (the tests hold a plain loop implementation of exactly this and check
that :func:`lbptop` gives bit-identical histograms):

* The volume is the grey sequence ``V[t, y, x]`` (uint8 or float), read as float64.
* Neighbour ``p`` of centre ``(t, y, x)`` on each plane, angle ``a = 2*pi*p/P`` (as in Zhao's
  ``LBPTOP.m``)::

      XY:  (t,            y - Ry*sin(a), x + Rx*cos(a))
      XT:  (t - Rt*sin(a), y,            x + Rx*cos(a))
      YT:  (t - Rt*cos(a), y - Ry*sin(a), x           )

  Offsets are rounded to 6 decimals so that neighbours on the axes hit pixels exactly.
* Grey values at non-integer positions are bilinear in the plane:
  ``g = w00*V[a0,b0] + w01*V[a0,b1] + w10*V[a1,b0] + w11*V[a1,b1]`` (evaluated in this order,
  float64) with ``a0 = floor(da)``, ``fa = da - a0``, ``wa0 = 1 - fa``, ``wa1 = fa``, and
  ``a1 = a0 + 1`` only when ``fa > 0`` (otherwise ``a1 = a0``, weight 0): a neighbour on a
  pixel reads that pixel exactly, and never reads outside the volume.
* ``s(g_p - g_c) = 1`` when ``g_p >= g_c`` (paper eq. 3); the code is ``sum_p s * 2**p`` (eq. 2).
* Only centres whose every neighbour lies inside the volume count: ``t`` in
  ``[ceil(Rt), T - ceil(Rt))``, likewise ``y`` with ``Ry`` and ``x`` with ``Rx`` (one interior
  for all three planes, so the three histograms count the same centres).
* Mapping ``"basic"``: ``2**P`` bins.  ``"u2"``: uniform patterns (at most two 0/1
  transitions, circularly) get bins in increasing code order, all others share the last bin:
  ``P*(P-1) + 3`` bins (59 for P = 8), the ordering of Ojala's ``getmapping.m``.
* Blocks: row edges ``e_i = floor(i*H/rows)`` (columns likewise); block ``(i, j)`` covers
  rows ``[e_i - overlap, e_{i+1} + overlap)`` clipped to the image, so neighbouring blocks
  share ``2*overlap`` pixel rows.  A centre counts in every block that contains its (y, x),
  for all its frames.
* Feature = for each block in row-major order, for each plane XY, XT, YT, the block's
  histogram divided by its total count (all zeros if the block has no centre).

The fast path is fully vectorised numpy: the codes of all centres per neighbour at once, then
one bincount per block (:func:`lbptop`), or, for sweeps over many block grids
(:func:`lbptop_grids`), an integral histogram over (y, x) so every further grid costs four
look-ups per block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from station.checks import StationError

PLANES = ("XY", "XT", "YT")


@dataclass(frozen=True)
class LbpTopParams:
    """Parameters of LBP-TOP; ``radii`` = (Rx, Ry, Rt), ``neighbours`` = (P_xy, P_xt, P_yt)."""

    radii: tuple[float, float, float] = (1.0, 1.0, 4.0)
    neighbours: tuple[int, int, int] = (8, 8, 8)
    mapping: str = "u2"
    rows: int = 5
    cols: int = 5
    overlap: int = 0

    def key(self) -> dict:
        """Plain-data description (cache keys, reports)."""
        return {"radii": [float(r) for r in self.radii], "neighbours": [int(p) for p in self.neighbours],
                "mapping": self.mapping, "rows": int(self.rows), "cols": int(self.cols),
                "overlap": int(self.overlap)}

    def n_bins(self) -> tuple[int, int, int]:
        return tuple(len_of_mapping(p, self.mapping) for p in self.neighbours)  # type: ignore[return-value]

    def n_features(self) -> int:
        return self.rows * self.cols * sum(self.n_bins())


def check_params(params: LbpTopParams) -> None:
    """Reject parameters LBP-TOP cannot honour, saying which value and what is allowed."""
    if params.mapping not in ("u2", "basic"):
        raise StationError(f"LBP-TOP mapping must be 'u2' or 'basic', got {params.mapping!r}.")
    for name, r in zip(("Rx", "Ry", "Rt"), params.radii):
        if not r > 0:
            raise StationError(f"LBP-TOP radius {name} must be > 0, got {r!r}.")
    for name, p in zip(("P_xy", "P_xt", "P_yt"), params.neighbours):
        if not 1 <= int(p) <= 16:
            raise StationError(f"LBP-TOP neighbours {name} must be between 1 and 16, got {p!r}.")
    if params.rows < 1 or params.cols < 1:
        raise StationError(f"LBP-TOP block grid must be at least 1x1, got {params.rows}x{params.cols}.")
    if params.overlap < 0:
        raise StationError(f"LBP-TOP block overlap must be >= 0 pixels, got {params.overlap}.")


# ---------------------------------------------------------------------------------------------
# mappings


def _transitions(code: int, p: int) -> int:
    """Number of circular 0/1 transitions in the P-bit pattern ``code``."""
    rotated = ((code << 1) | (code >> (p - 1))) & ((1 << p) - 1)
    return bin(code ^ rotated).count("1")


def mapping_table(p: int, mapping: str) -> np.ndarray:
    """Lookup table code -> bin for ``P`` neighbours ("basic" is the identity)."""
    n = 1 << p
    if mapping == "basic":
        return np.arange(n, dtype=np.int64)
    if mapping != "u2":
        raise StationError(f"LBP-TOP mapping must be 'u2' or 'basic', got {mapping!r}.")
    table = np.empty(n, dtype=np.int64)
    n_uniform = p * (p - 1) + 2
    next_bin = 0
    for code in range(n):
        if _transitions(code, p) <= 2:
            table[code] = next_bin
            next_bin += 1
        else:
            table[code] = n_uniform
    assert next_bin == n_uniform
    return table


def len_of_mapping(p: int, mapping: str) -> int:
    return (1 << p) if mapping == "basic" else p * (p - 1) + 3


# ---------------------------------------------------------------------------------------------
# geometry shared by the fast path and the reference


def neighbour_offsets(params: LbpTopParams) -> list[list[tuple[float, float, float]]]:
    """Per plane, the (dt, dy, dx) offset of each neighbour, rounded to 6 decimals."""
    rx, ry, rt = (float(r) for r in params.radii)
    out = []
    for plane, p_count in zip(PLANES, params.neighbours):
        offs = []
        for p in range(int(p_count)):
            a = 2.0 * math.pi * p / int(p_count)
            if plane == "XY":
                off = (0.0, -ry * math.sin(a), rx * math.cos(a))
            elif plane == "XT":
                off = (-rt * math.sin(a), 0.0, rx * math.cos(a))
            else:
                off = (-rt * math.cos(a), -ry * math.sin(a), 0.0)
            offs.append(tuple(round(v, 6) + 0.0 for v in off))
        out.append(offs)
    return out


def margins(params: LbpTopParams) -> tuple[int, int, int]:
    """(mt, my, mx): how many border frames/rows/columns carry no centre."""
    rx, ry, rt = params.radii
    return int(math.ceil(rt)), int(math.ceil(ry)), int(math.ceil(rx))


def bilinear_terms(offset: tuple[float, float, float]) -> list[tuple[float, tuple[int, int, int]]]:
    """The four (weight, integer offset) terms of a neighbour, in evaluation order.

    The neighbour lies in a plane, so at most two of (dt, dy, dx) are fractional; the first two
    axes with a non-zero offset (or the last ones) are interpolated, the third is exact.
    """
    axes = [i for i in range(3) if offset[i] != 0.0]
    while len(axes) < 2:
        axes.append(next(i for i in (2, 1, 0) if i not in axes))
    a_ax, b_ax = sorted(axes[:2])
    base = [int(math.floor(v)) for v in offset]
    fa = offset[a_ax] - base[a_ax]
    fb = offset[b_ax] - base[b_ax]
    step_a = 1 if fa > 0 else 0
    step_b = 1 if fb > 0 else 0
    terms = []
    for da, db, wa, wb in ((0, 0, 1.0 - fa, 1.0 - fb), (0, step_b, 1.0 - fa, fb),
                           (step_a, 0, fa, 1.0 - fb), (step_a, step_b, fa, fb)):
        idx = list(base)
        idx[a_ax] += da
        idx[b_ax] += db
        terms.append((wa * wb, (idx[0], idx[1], idx[2])))
    return terms


def block_edges(size: int, n: int, overlap: int) -> list[tuple[int, int]]:
    """[start, stop) of each of ``n`` blocks along an axis of ``size`` pixels, with overlap."""
    edges = [(i * size) // n for i in range(n + 1)]
    return [(max(0, edges[i] - overlap), min(size, edges[i + 1] + overlap)) for i in range(n)]


# ---------------------------------------------------------------------------------------------
# fast path


def lbptop_codes(volume: np.ndarray, params: LbpTopParams) -> list[np.ndarray]:
    """Mapped LBP codes of every interior centre, one (T', H', W') int array per plane."""
    check_params(params)
    vol = np.asarray(volume, dtype=np.float64)
    if vol.ndim != 3:
        raise StationError(f"LBP-TOP needs a (T, H, W) grey volume, got shape {vol.shape}.")
    mt, my, mx = margins(params)
    t_len, h, w = vol.shape
    if t_len <= 2 * mt or h <= 2 * my or w <= 2 * mx:
        raise StationError(f"LBP-TOP radii {params.radii} need at least {2 * mt + 1} frames and "
                           f"{2 * my + 1}x{2 * mx + 1} pixels, got a {t_len}x{h}x{w} sequence.")
    inner = (slice(mt, t_len - mt), slice(my, h - my), slice(mx, w - mx))
    centre = vol[inner]
    shape = centre.shape
    codes = []
    for offs, p_count in zip(neighbour_offsets(params), params.neighbours):
        code = np.zeros(shape, dtype=np.uint16)  # P <= 16
        for p, off in enumerate(offs):
            g = None
            for weight, (dt, dy, dx) in bilinear_terms(off):
                # a zero-weight term adds exactly +0.0 and a unit weight multiplies exactly, so
                # skipping / not multiplying them keeps the result bit-identical to the full sum
                if weight == 0.0 and g is not None:
                    continue
                window = vol[mt + dt: mt + dt + shape[0], my + dy: my + dy + shape[1], mx + dx: mx + dx + shape[2]]
                part = window if weight == 1.0 else weight * window
                g = part if g is None else g + part
            code |= (g >= centre).astype(np.uint16) << np.uint16(p)
        codes.append(mapping_table(int(p_count), params.mapping).astype(np.uint16)[code])
    return codes


def integral_histograms(codes: list[np.ndarray], params: LbpTopParams) -> list[np.ndarray]:
    """Per plane, the (H'+1, W'+1, bins) integral over (y, x) of the code counts of all frames."""
    out = []
    for code, n_bins in zip(codes, params.n_bins()):
        _, hh, ww = code.shape
        pix = np.arange(hh * ww, dtype=np.int64).reshape(hh, ww)
        counts = np.bincount((pix[None] * n_bins + code.astype(np.int64)).ravel(), minlength=hh * ww * n_bins)
        counts = counts.reshape(hh, ww, n_bins)
        integral = np.zeros((hh + 1, ww + 1, n_bins), dtype=np.int64)
        np.cumsum(np.cumsum(counts, axis=0), axis=1, out=integral[1:, 1:])
        out.append(integral)
    return out


def block_histograms(integrals: list[np.ndarray], shape: tuple[int, int], params: LbpTopParams,
                     rows: int | None = None, cols: int | None = None,
                     overlap: int | None = None) -> np.ndarray:
    """LBP-TOP feature of one block grid from the integral histograms (see module docstring)."""
    rows = params.rows if rows is None else rows
    cols = params.cols if cols is None else cols
    overlap = params.overlap if overlap is None else overlap
    h, w = shape
    _, my, mx = margins(params)
    parts = []
    for y0, y1 in block_edges(h, rows, overlap):
        # block rows in interior coordinates, clipped to the interior
        iy0, iy1 = min(max(y0 - my, 0), h - 2 * my), min(max(y1 - my, 0), h - 2 * my)
        for x0, x1 in block_edges(w, cols, overlap):
            ix0, ix1 = min(max(x0 - mx, 0), w - 2 * mx), min(max(x1 - mx, 0), w - 2 * mx)
            for integral in integrals:
                counts = integral[iy1, ix1] - integral[iy0, ix1] - integral[iy1, ix0] + integral[iy0, ix0]
                total = counts.sum()
                parts.append(counts / total if total > 0 else np.zeros(len(counts)))
    return np.concatenate(parts)


def direct_block_histograms(codes: list[np.ndarray], shape: tuple[int, int], params: LbpTopParams) -> np.ndarray:
    """Same result as ``block_histograms(integral_histograms(...))``, counting each block directly.

    Cheaper for one grid (the baseline); the integral version wins when many grids share codes.
    """
    h, w = shape
    _, my, mx = margins(params)
    parts = []
    for y0, y1 in block_edges(h, params.rows, params.overlap):
        iy0, iy1 = min(max(y0 - my, 0), h - 2 * my), min(max(y1 - my, 0), h - 2 * my)
        for x0, x1 in block_edges(w, params.cols, params.overlap):
            ix0, ix1 = min(max(x0 - mx, 0), w - 2 * mx), min(max(x1 - mx, 0), w - 2 * mx)
            for code, n_bins in zip(codes, params.n_bins()):
                counts = np.bincount(code[:, iy0:iy1, ix0:ix1].ravel(), minlength=n_bins).astype(np.int64)
                total = counts.sum()
                parts.append(counts / total if total > 0 else np.zeros(n_bins))
    return np.concatenate(parts)


def lbptop(volume: np.ndarray, params: LbpTopParams = LbpTopParams()) -> np.ndarray:
    """LBP-TOP feature vector of a (T, H, W) grey sequence (length ``params.n_features()``)."""
    return direct_block_histograms(lbptop_codes(volume, params), volume.shape[1:], params)


def lbptop_grids(volume: np.ndarray, params: LbpTopParams,
                 grids: list[tuple[int, int, int]]) -> list[np.ndarray]:
    """Features for many (rows, cols, overlap) grids from one code computation (block sweeps)."""
    integrals = integral_histograms(lbptop_codes(volume, params), params)
    return [block_histograms(integrals, volume.shape[1:], params, r, c, o) for r, c, o in grids]


def ensure_min_frames(volume: np.ndarray, params: LbpTopParams) -> np.ndarray:
    """Repeat frames (nearest-neighbour in time) so a short sample has ``2*ceil(Rt)+1`` frames.

    Why: micro-expressions filmed at low frame rates can be shorter than LBP-TOP's temporal
    support; stretching them keeps every sample in the evaluation instead of dropping it.
    """
    need = 2 * margins(params)[0] + 1
    if len(volume) >= need:
        return volume
    idx = np.round(np.linspace(0, len(volume) - 1, need)).astype(int)
    return volume[idx]
