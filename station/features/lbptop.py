"""LBP-TOP: local binary patterns on three orthogonal planes (Zhao & Pietikäinen 2007; paper 4.2.1).

Two definitions, chosen with ``LbpTopParams(variant=...)``; the tests hold a plain-loop
reference of each and check that the fast path gives bit-identical features.

``variant="zhao"`` (default) — exactly Zhao & Huang's ``LBPTOP.m`` (the MATLAB code behind the
CASME II, SMIC and CAS(ME)^2 baselines), called per block the way the CASME II baseline script
calls it.  Why the default: a lab comparing its numbers with published baselines must compute
the same feature.  With MATLAB's 1-based centre ``(yc, xc, i)`` of a block sub-volume, angle
``a = 2*pi*p/P`` (double precision, ``((2*pi)*p)/P``)::

    XY:  x = xc + Rx*cos(a),  y = yc - Ry*sin(a),  frame i
    XT:  x = xc + Rx*cos(a),  t = i  + Rt*sin(a),  row yc
    YT:  y = yc - Ry*sin(a),  t = i  + Rt*cos(a),  column xc

* ``interpolation="nearest"`` (``bBilinearInterpolation = 0``): the neighbour is the pixel at
  ``floor(coord + 0.5)`` (coordinate evaluated in double as ``(c + d) + 0.5``), compared with the
  centre as is.
* ``interpolation="bilinear"`` (``= 1``): per axis ``x1 = single(c + d)``, ``u = x1 - floor(x1)``
  (single), corners ``floor``/``ceil`` of ``x1``; the value is
  ``floor(V_lt*(1-u)*(1-v) + V_lb*(1-u)*v + V_rt*u*(1-v) + V_rb*u*v)`` evaluated left to right in
  **single precision** (MATLAB: double times single is single), ``u`` along the plane's first
  axis (x for XY and XT, y for YT), ``v`` along the second (y, t, t); ``lt`` = (floor, floor),
  ``lb`` = (floor u-axis, ceil v-axis), ``rt`` = (ceil, floor), ``rb`` = (ceil, ceil).
  Consequences kept on purpose (they are Zhao's): the ``floor`` truncates the interpolated value,
  and single-precision rounding can put it one ulp below the exact value, so in a flat region
  ``floor`` drops it to ``c - 1`` and the diagonal neighbour reads *smaller* than the centre
  (bit 0) where exact arithmetic gives a tie (bit 1).  Because ``single(c + d)`` is rounded at the
  magnitude of ``c``, ``u`` depends on the centre's coordinate inside its block (its binade):
  the fast path computes the weights per coordinate, in block coordinates, like MATLAB.
* ``s = 1`` when ``neighbour >= centre``; code ``sum_p s * 2**p``.
* Centres: frames ``TimeLength+1 .. T-TimeLength``, rows and columns ``BorderLength+1 ..
  size-BorderLength`` of each block (``time_length`` default ``ceil(Rt)``, ``border`` default
  ``ceil(max(Rx, Ry))``: the values ``LBPTOP.m``'s help recommends).  Neighbours never leave the
  block (a border too small for the radii is refused, where MATLAB would stop with an index error).
* Histogram per plane of each block, divided by its own sum (``LBPTOP.m``'s normalisation).
* Blocks (the CASME II script): ``bh = floor(H/rows)``, ``bw = floor(W/cols)``, block ``(i, j)``
  covers rows ``[i*bh, (i+1)*bh)`` and columns ``[j*bw, (j+1)*bw)``; the remainder rows/columns at
  the bottom/right belong to no block.  ``LBPTOP.m`` has no overlap; the station's extension
  widens each block by ``overlap`` pixels on every side, clipped to the image (with overlap 0 it
  is exactly the script).  Blocks in row-major order, planes XY, XT, YT, bins within a plane.
  The script flattens its 3 x (59*blocks) matrix column-major (bins of the three planes
  interleaved); :func:`matlab_order` gives that permutation (it changes no classifier).
* ``u2``: uniform codes get bins in increasing code order, all others the last bin (59 for
  P = 8), as ``UniformLBP8.txt`` / Ojala's ``getmapping(8, 'u2')``.  ``basic``: 2**P bins per
  plane (``LBPTOP.m`` sizes all three as 2**P_yt; identical for equal P).
* Inputs: MATLAB's ``VolData`` is double; grey levels are read as float64 and rounded to single
  where ``LBPTOP.m`` multiplies by single weights.  For integer grey levels (every image) the
  comparison ``floor(g) >= c`` is exact; for non-integer inputs the station compares in double.

``variant="station"`` — the station's own definition (before Zhao's was reproduced; kept so old
results can be recomputed):

* The volume is ``V[t, y, x]`` read as float64.  Neighbour ``p`` of centre ``(t, y, x)``::

      XY:  (t,            y - Ry*sin(a), x + Rx*cos(a))
      XT:  (t - Rt*sin(a), y,            x + Rx*cos(a))
      YT:  (t - Rt*cos(a), y - Ry*sin(a), x           )

  i.e. the time direction is *opposite* to ``LBPTOP.m``.  Offsets are rounded to 6 decimals so
  that neighbours on the axes hit pixels exactly.
* Bilinear in the plane, float64, no truncation:
  ``g = w00*V[a0,b0] + w01*V[a0,b1] + w10*V[a1,b0] + w11*V[a1,b1]`` (in this order) with
  ``a0 = floor(da)``, ``fa = da - a0``, ``wa0 = 1 - fa``, ``wa1 = fa``, and ``a1 = a0 + 1`` only
  when ``fa > 0`` (otherwise ``a1 = a0``, weight 0): a flat region is an exact tie (bit 1).
* Centres: ``t`` in ``[ceil(Rt), T - ceil(Rt))``, likewise ``y`` with ``Ry`` and ``x`` with ``Rx``,
  over the whole image (one interior for all three planes and all blocks).
* Blocks: row edges ``e_i = floor(i*H/rows)`` (columns likewise; no remainder is dropped);
  block ``(i, j)`` covers rows ``[e_i - overlap, e_{i+1} + overlap)`` clipped to the image; a
  centre counts in every block that contains its (y, x), for all its frames.  Each block's
  histogram divided by its total count (all zeros if the block has no centre).

Both fast paths are vectorised numpy: the codes of all centres per neighbour at once (for
``zhao`` in float32 exactly as MATLAB's single arithmetic, with per-coordinate weights), then
one bincount per block.  Block sweeps of the station variant share one code pass through
integral histograms (:func:`lbptop_grids`); Zhao's codes depend on the block layout (block
coordinates), so each of its grids is a pass of its own.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np

from station.checks import StationError

PLANES = ("XY", "XT", "YT")
VARIANTS = ("zhao", "station")
INTERPOLATIONS = ("bilinear", "nearest")
MAPPINGS = ("u2", "basic")


@dataclass(frozen=True)
class LbpTopParams:
    """Parameters of LBP-TOP; ``radii`` = (Rx, Ry, Rt), ``neighbours`` = (P_xy, P_xt, P_yt).

    ``variant`` and ``interpolation`` choose the definition (module docstring); ``border`` and
    ``time_length`` are ``LBPTOP.m``'s BorderLength / TimeLength (``zhao`` only; None = the
    recommended ``ceil(max(Rx, Ry))`` / ``ceil(Rt)``).
    """

    radii: tuple[float, float, float] = (1.0, 1.0, 4.0)
    neighbours: tuple[int, int, int] = (8, 8, 8)
    mapping: str = "u2"
    rows: int = 5
    cols: int = 5
    overlap: int = 0
    variant: str = "zhao"
    interpolation: str = "bilinear"
    border: int | None = None
    time_length: int | None = None

    def key(self) -> dict:
        """Plain-data description (cache keys, reports)."""
        out = {"variant": self.variant, "interpolation": self.interpolation,
               "radii": [float(r) for r in self.radii], "neighbours": [int(p) for p in self.neighbours],
               "mapping": self.mapping, "rows": int(self.rows), "cols": int(self.cols),
               "overlap": int(self.overlap)}
        if self.variant == "zhao":
            mt, my, _ = margins(self)
            out.update(border=my, time_length=mt)
        return out

    def n_bins(self) -> tuple[int, int, int]:
        return tuple(len_of_mapping(p, self.mapping) for p in self.neighbours)  # type: ignore[return-value]

    def n_features(self) -> int:
        return self.rows * self.cols * sum(self.n_bins())


def check_params(params: LbpTopParams) -> None:
    """Reject parameters LBP-TOP cannot honour, saying which value and what is allowed."""
    if params.variant not in VARIANTS:
        raise StationError(f"LBP-TOP variant must be one of {', '.join(VARIANTS)}, got {params.variant!r}.")
    if params.interpolation not in INTERPOLATIONS:
        raise StationError(f"LBP-TOP interpolation must be one of {', '.join(INTERPOLATIONS)}, "
                           f"got {params.interpolation!r}.")
    if params.variant == "station" and params.interpolation != "bilinear":
        raise StationError("LBP-TOP variant 'station' is defined with bilinear interpolation only; "
                           f"got interpolation {params.interpolation!r} (use variant 'zhao' for nearest).")
    if params.mapping not in MAPPINGS:
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
    for name, v in (("border", params.border), ("time_length", params.time_length)):
        if v is not None and (params.variant != "zhao" or int(v) != v or v < 0):
            raise StationError(f"LBP-TOP {name} is a whole number of pixels >= 0 for variant 'zhao' only, "
                               f"got {v!r} with variant {params.variant!r}.")


# ---------------------------------------------------------------------------------------------
# mappings


def _transitions(code: int, p: int) -> int:
    """Number of circular 0/1 transitions in the P-bit pattern ``code``."""
    rotated = ((code << 1) | (code >> (p - 1))) & ((1 << p) - 1)
    return bin(code ^ rotated).count("1")


def mapping_table(p: int, mapping: str) -> np.ndarray:
    """Lookup table code -> bin for ``P`` neighbours ("basic" is the identity)."""
    return _mapping_table(int(p), mapping).copy()


@functools.lru_cache(maxsize=None)
def _mapping_table(p: int, mapping: str) -> np.ndarray:
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
    """(mt, my, mx): how many border frames/rows/columns (of the image, or for ``zhao`` of each
    block) carry no centre."""
    rx, ry, rt = params.radii
    if params.variant == "zhao":
        border = int(math.ceil(max(rx, ry))) if params.border is None else int(params.border)
        time_length = int(math.ceil(rt)) if params.time_length is None else int(params.time_length)
        return time_length, border, border
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


# ---------------------------------------------------------------------------------------------
# variant "zhao": LBPTOP.m, per block, vectorised


def zhao_blocks(h: int, w: int, params: LbpTopParams) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of every block, row-major: the CASME II script's layout (+ overlap)."""
    bh, bw = h // params.rows, w // params.cols
    if bh < 1 or bw < 1:
        raise StationError(f"LBP-TOP block grid {params.rows}x{params.cols} does not fit a {h}x{w} image.")
    ov = params.overlap
    return [(max(0, i * bh - ov), min(h, (i + 1) * bh + ov), max(0, j * bw - ov), min(w, (j + 1) * bw + ov))
            for i in range(params.rows) for j in range(params.cols)]


@dataclass
class _Axis:
    """Centre positions along one axis of a code pass, in global 0-based coordinates.

    ``lo:hi`` is the computed range; ``local`` the 1-based coordinate of each position inside
    its block (what ``LBPTOP.m`` sees), ``start``/``stop`` that block's extent, ``centre`` which
    positions are centres, ``segments`` the [s, e) centre range of each block in pass coordinates.
    """

    lo: int
    hi: int
    local: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    centre: np.ndarray
    segments: list[tuple[int, int]]


def _axis_of_blocks(extents: list[tuple[int, int]], margin: int, what: str) -> _Axis:
    """One pass over blocks that do not overlap (or over a single block)."""
    for s, e in extents:
        if e - s <= 2 * margin:
            raise StationError(f"LBP-TOP: a block of {e - s} {what} has no centre with a border of {margin} "
                               f"(needs at least {2 * margin + 1}); use fewer blocks or smaller radii.")
    lo, hi = extents[0][0] + margin, extents[-1][1] - margin
    pos = np.arange(lo, hi)
    start = np.empty(len(pos), np.int64)
    stop = np.empty(len(pos), np.int64)
    centre = np.zeros(len(pos), bool)
    for k, (s, e) in enumerate(extents):  # later blocks win the gaps: only centres matter
        inside = pos >= (s if k else lo)
        start[inside], stop[inside] = s, e
        centre[(pos >= s + margin) & (pos < e - margin)] = True
    return _Axis(lo, hi, (pos - start + 1).astype(np.float64), start, stop, centre,
                 [(s + margin - lo, e - margin - lo) for s, e in extents])


def _sample_axis(axis: _Axis, d: float, minus: bool, nearest: bool, label: str):
    """Where ``LBPTOP.m`` reads along one axis for offset ``d``: ``[(index, weight), ...]``.

    ``index`` is an int (a constant shift, so a slice) or an array of global indices; ``weight``
    a float32 array over the pass positions, or None for an exact 1 (the term is skipped when
    the other weight is an exact 0 everywhere).
    """
    c = axis.local
    pos = np.arange(axis.lo, axis.hi)
    if nearest:
        coords = [np.floor(((c - d) if minus else (c + d)) + 0.5)]
    else:
        x1 = ((c - d) if minus else (c + d)).astype(np.float32)
        fl = np.floor(x1)
        coords = [fl, np.ceil(x1)]
        u = x1 - fl
    out = []
    for k, coord in enumerate(coords):
        idx = axis.start + coord.astype(np.int64) - 1
        cidx = idx[axis.centre]
        if (cidx < axis.start[axis.centre]).any() or (cidx >= axis.stop[axis.centre]).any():
            raise StationError(f"LBP-TOP: the {label} radius reaches outside the block with this border/time "
                               "length (LBPTOP.m would stop with an index error); increase border/time_length.")
        shift = idx - pos
        cshift = shift[axis.centre]
        index = int(cshift[0]) if (cshift == cshift[0]).all() else np.clip(idx, axis.start, axis.stop - 1)
        if nearest:
            out.append((index, None))
        elif k == 0:
            out.append((index, None if not u.any() else (np.float32(1) - u)))
        elif u.any():
            out.append((index, u))
    return out


def _take(vol: np.ndarray, axes: list[_Axis], index: list) -> np.ndarray:
    """The volume at pass positions shifted by ``index`` (per axis: int shift or index array)."""
    out = vol
    for ax, (axis, idx) in enumerate(zip(axes, index)):
        if isinstance(idx, int):
            sl = [slice(None)] * 3
            sl[ax] = slice(axis.lo + idx, axis.hi + idx)
            out = out[tuple(sl)]
        else:
            out = np.take(out, idx, axis=ax)
    return out


_PLANE_AXES = {  # (u axis, radius index, trig, minus), (v axis, ...): LBPTOP.m's formulas
    "XY": ((2, 0, math.cos, False), (1, 1, math.sin, True)),
    "XT": ((2, 0, math.cos, False), (0, 2, math.sin, False)),
    "YT": ((1, 1, math.sin, True), (0, 2, math.cos, False)),
}


def _zhao_plan(axes: list[_Axis], params: LbpTopParams) -> list[list[tuple]]:
    """Per plane, per neighbour: (u axis, v axis, u samples, v samples) over the whole pass."""
    nearest = params.interpolation == "nearest"
    plan = []
    for plane, p_count in zip(PLANES, params.neighbours):
        (ua, ur, utrig, uminus), (va, vr, vtrig, vminus) = _PLANE_AXES[plane]
        rows = []
        for p in range(int(p_count)):
            a = 2 * math.pi * p / int(p_count)
            us = _sample_axis(axes[ua], float(params.radii[ur]) * utrig(a), uminus, nearest, plane)
            vs = _sample_axis(axes[va], float(params.radii[vr]) * vtrig(a), vminus, nearest, plane)
            rows.append((ua, va, us, vs))
        plan.append(rows)
    return plan


def _chunk_samples(samples: list, ax: int, k0: int, k1: int) -> list:
    """Samples restricted to pass positions k0:k1 along the time axis (chunks of frames)."""
    if ax != 0:
        return samples
    return [(idx if isinstance(idx, int) else idx[k0:k1], None if w is None else w[k0:k1]) for idx, w in samples]


def _zhao_pass(vol: np.ndarray, data: np.ndarray, axes: list[_Axis], plan: list, params: LbpTopParams,
               k0: int, k1: int) -> list[np.ndarray]:
    """Codes (unmapped) of one pass chunk: time positions ``k0:k1`` of ``axes[0]``, one array per plane.

    ``vol`` is the volume as compared (integer or float64), ``data`` what is interpolated
    (float32 for bilinear, as MATLAB's single arithmetic; ``vol`` itself for nearest).
    """
    t_axis = axes[0]
    axes = [_Axis(t_axis.lo + k0, t_axis.lo + k1, t_axis.local[k0:k1], t_axis.start[k0:k1],
                  t_axis.stop[k0:k1], t_axis.centre[k0:k1], [(0, k1 - k0)]), axes[1], axes[2]]
    shape = tuple(a.hi - a.lo for a in axes)
    centre = vol[axes[0].lo:axes[0].hi, axes[1].lo:axes[1].hi, axes[2].lo:axes[2].hi]
    if params.interpolation == "nearest":
        thresh = centre
    else:
        # floor(g) >= c  <=>  g >= ceil(c); compared in float32 when that is exact (integer grey)
        thresh = np.ceil(centre) if centre.dtype == np.float64 else centre
        t32 = thresh.astype(np.float32)
        if np.array_equal(t32, thresh):
            thresh = t32
    g = np.empty(shape, np.float32)
    tmp = np.empty(shape, np.float32)
    bits = np.empty(shape, np.uint8)
    codes = []
    for rows, p_count in zip(plan, params.neighbours):
        code = np.zeros(shape, np.uint8 if int(p_count) <= 8 else np.uint16)
        for p, (ua, va, us, vs) in enumerate(rows):
            us, vs = _chunk_samples(us, ua, k0, k1), _chunk_samples(vs, va, k0, k1)
            ushape, vshape = [1, 1, 1], [1, 1, 1]
            ushape[ua], vshape[va] = -1, -1
            if len(us) == 1 and len(vs) == 1 and us[0][1] is None and vs[0][1] is None:
                index = [0, 0, 0]
                index[ua], index[va] = us[0][0], vs[0][0]
                value = _take(data, axes, index)  # on a pixel (or nearest): the value itself
            else:
                first = True
                for ui, uw in us:          # lt, lb, rt, rb: u-floor before u-ceil, v-floor before v-ceil
                    for vi, vw in vs:
                        index = [0, 0, 0]
                        index[ua], index[va] = ui, vi
                        corner = _take(data, axes, index)
                        target = g if first else tmp
                        if uw is None:
                            np.copyto(target, corner)
                        else:
                            np.multiply(corner, uw.reshape(ushape), out=target)
                        if vw is not None:
                            np.multiply(target, vw.reshape(vshape), out=target)
                        if not first:
                            np.add(g, tmp, out=g)
                        first = False
                value = g
            if p == 0:
                np.greater_equal(value, thresh, out=code)
            else:
                np.greater_equal(value, thresh, out=bits)
                if code.dtype != np.uint8:
                    code |= bits.astype(code.dtype) << p
                else:
                    np.left_shift(bits, p, out=bits)
                    np.bitwise_or(code, bits, out=code)
        codes.append(code)
    return codes


_CHUNK = 1 << 17  # positions per pass chunk (a few frames): the float32 work arrays stay in cache


def _zhao_codes(vol: np.ndarray, axes: list[_Axis], params: LbpTopParams) -> list[np.ndarray]:
    """Mapped codes of a pass, computed a few frames at a time and joined along time."""
    data = vol if params.interpolation == "nearest" else vol.astype(np.float32)
    plan = _zhao_plan(axes, params)
    n_t = axes[0].hi - axes[0].lo
    per_frame = (axes[1].hi - axes[1].lo) * (axes[2].hi - axes[2].lo)
    step = max(1, _CHUNK // max(per_frame, 1))
    chunks = [_zhao_pass(vol, data, axes, plan, params, k0, min(n_t, k0 + step)) for k0 in range(0, n_t, step)]
    out = []
    for k, p_count in enumerate(params.neighbours):
        code = np.concatenate([c[k] for c in chunks]) if len(chunks) > 1 else chunks[0][k]
        out.append(np.take(_mapping_table(int(p_count), params.mapping).astype(code.dtype), code))
    return out


def _zhao_counts(codes: list[np.ndarray], axes: list[_Axis], params: LbpTopParams) -> list[np.ndarray]:
    """Per block of the pass (row-major), per plane, the normalised histogram."""
    parts = []
    for ys, ye in axes[1].segments:
        for xs, xe in axes[2].segments:
            for code, n_bins in zip(codes, params.n_bins()):
                counts = np.bincount(code[:, ys:ye, xs:xe].ravel(), minlength=n_bins)
                parts.append(counts / counts.sum())
    return parts


def zhao_lbptop(volume: np.ndarray, params: LbpTopParams) -> np.ndarray:
    """``LBPTOP.m`` on every block of the CASME II layout, concatenated (module docstring)."""
    check_params(params)
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise StationError(f"LBP-TOP needs a (T, H, W) grey volume, got shape {vol.shape}.")
    if not np.issubdtype(vol.dtype, np.integer):
        vol = vol.astype(np.float64)
    t_len, h, w = vol.shape
    mt, border, _ = margins(params)
    if t_len <= 2 * mt:
        raise StationError(f"LBP-TOP time length {mt} (radius Rt = {params.radii[2]}) needs at least "
                           f"{2 * mt + 1} frames, got a {t_len}x{h}x{w} sequence.")
    blocks = zhao_blocks(h, w, params)
    t_axis = _axis_of_blocks([(0, t_len)], mt, "frames")
    if params.overlap == 0:  # blocks tile: one pass, weights in each position's block coordinates
        ys = [(b[0], b[1]) for b in blocks[::params.cols]]
        xs = [(b[2], b[3]) for b in blocks[:params.cols]]
        axes = [t_axis, _axis_of_blocks(ys, border, "rows"), _axis_of_blocks(xs, border, "columns")]
        return np.concatenate(_zhao_counts(_zhao_codes(vol, axes, params), axes, params))
    parts = []
    for y0, y1, x0, x1 in blocks:  # overlapping blocks: a pixel has one block coordinate per block
        axes = [t_axis, _axis_of_blocks([(y0, y1)], border, "rows"), _axis_of_blocks([(x0, x1)], border, "columns")]
        parts += _zhao_counts(_zhao_codes(vol, axes, params), axes, params)
    return np.concatenate(parts)


def matlab_order(params: LbpTopParams) -> np.ndarray:
    """Permutation ``perm`` with ``feature[perm]`` = the CASME II script's ``Histogram_block(:)``.

    The script concatenates each block's 3 x bins matrix side by side and flattens column-major,
    so the three planes' values of one bin are adjacent.  Needs equal bin counts on the planes.
    """
    nb = set(params.n_bins())
    if len(nb) != 1:
        raise StationError(f"the MATLAB feature order needs the same number of bins on the three planes, "
                           f"got {params.n_bins()}.")
    n = nb.pop()
    blocks = params.rows * params.cols
    b, k, plane = np.meshgrid(np.arange(blocks), np.arange(n), np.arange(3), indexing="ij")
    return (b * 3 * n + plane * n + k).ravel()


# ---------------------------------------------------------------------------------------------
# entry points


def lbptop(volume: np.ndarray, params: LbpTopParams = LbpTopParams()) -> np.ndarray:
    """LBP-TOP feature vector of a (T, H, W) grey sequence (length ``params.n_features()``)."""
    check_params(params)
    if params.variant == "zhao":
        return zhao_lbptop(volume, params)
    return direct_block_histograms(lbptop_codes(volume, params), volume.shape[1:], params)


def lbptop_grids(volume: np.ndarray, params: LbpTopParams,
                 grids: list[tuple[int, int, int]]) -> list[np.ndarray]:
    """Features for many (rows, cols, overlap) grids (block sweeps).

    ``station``: one code pass and integral histograms.  ``zhao``: codes are computed in block
    coordinates (the single-precision weights depend on them), so one pass per grid.
    """
    check_params(params)
    if params.variant == "zhao":
        return [zhao_lbptop(volume, replace(params, rows=r, cols=c, overlap=o)) for r, c, o in grids]
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
