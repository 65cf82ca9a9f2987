"""Radius neighbourhoods of many query points at once, as padded arrays (no Python loop per query).

Why not ``cKDTree.query_ball_point``: it returns one Python list per query, and building those
lists (a Python int per neighbour) is most of its cost for a 16 mm curvature ball at ~1 mm point
spacing (hundreds of neighbours per query), before the lists are even turned into arrays.  Here
points are binned into a uniform grid of cubic cells and stored cell by cell; the queries of one
cell share a candidate set (the points of every cell whose box comes within ``radius`` of the
query cell's box), and each query keeps the candidates with ``|p - q|^2 <= radius^2`` -- the
test ``query_ball_point`` makes (the boundary included), so the sets are the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Balls:
    """Radius neighbourhoods of Q queries, padded to the largest (M points).

    ``count`` (Q,) points used per query; ``index`` (Q, M) their indices in the original point
    array (``grid.n``, the number of points, where unused); ``offsets`` (3, Q, M) the points
    minus their query, component-major (0 where unused); ``d2max`` (Q,) the largest squared
    distance of a used point.
    """

    count: np.ndarray
    index: np.ndarray | None
    offsets: np.ndarray
    d2max: np.ndarray


class CellGrid:
    """Points binned into cubes of side ``cell`` (mm) and stored cell by cell (index order kept
    within a cell), so a cell's points are one contiguous run."""

    def __init__(self, points: np.ndarray, cell: float):
        points = np.asarray(points, dtype=np.float64)
        if not (cell > 0):
            raise ValueError(f"cell must be > 0 mm, got {cell!r}")
        self.n = len(points)
        self.cell = float(cell)
        self.origin = points.min(axis=0) if self.n else np.zeros(3)
        ijk = np.floor((points - self.origin) / self.cell).astype(np.int64)
        self.dims = ijk.max(axis=0) + 1 if self.n else np.ones(3, np.int64)
        key = self._key(ijk)
        self.order = np.argsort(key, kind="stable")  # sorted position -> original index
        self.cells, self.start, counts = np.unique(key[self.order], return_index=True, return_counts=True)
        self.end = self.start + counts
        self.dense = None  # cell key -> rank in ``cells`` (-1: empty), when the grid is small enough
        if self.n and int(np.prod(self.dims)) <= 4_000_000:
            self.dense = np.full(int(np.prod(self.dims)), -1, np.int64)
            self.dense[self.cells] = np.arange(len(self.cells))
        # component-major coordinates in cell order; column n is never inside any ball
        self.coords = np.hstack([points[self.order].T, np.full((3, 1), np.inf)])
        self.original = np.append(self.order, self.n)

    def _key(self, ijk: np.ndarray) -> np.ndarray:
        return (ijk[..., 0] * self.dims[1] + ijk[..., 1]) * self.dims[2] + ijk[..., 2]

    def cell_of(self, queries: np.ndarray) -> np.ndarray:
        return np.floor((np.asarray(queries, dtype=np.float64) - self.origin) / self.cell).astype(np.int64)

    def candidates(self, block_ijk: np.ndarray, radius: float) -> np.ndarray:
        """(B, C) sorted positions (``n``-padded) of the candidate points of B query cells (B, 3).

        A cell is a candidate when the smallest distance between its box and the query cell's
        box is at most ``radius``: no point within ``radius`` of a query in the cell is missed.
        """
        reach = int(np.ceil(radius / self.cell))
        axis = np.arange(-reach, reach + 1)
        off = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
        gap = np.maximum(np.abs(off) - 1, 0) * self.cell
        off = off[(gap ** 2).sum(1) <= radius * radius]
        nb = block_ijk[:, None, :] + off[None]  # (B, O, 3)
        inside = ((nb >= 0) & (nb < self.dims)).all(axis=-1)
        if len(self.cells) == 0:
            return np.full((len(block_ijk), 1), self.n, np.int64)
        key = np.where(inside, self._key(nb), -1)
        if self.dense is not None:
            pos = np.where(inside, self.dense[np.maximum(key, 0)], -1)
            found = pos >= 0
            pos = np.maximum(pos, 0)
        else:
            pos = np.minimum(np.searchsorted(self.cells, key), len(self.cells) - 1)
            found = inside & (self.cells[pos] == key)
        lens = np.where(found, self.end[pos] - self.start[pos], 0).ravel()
        per_block = lens.reshape(len(block_ijk), -1).sum(axis=1)
        total = int(lens.sum())
        run_start = np.repeat(self.start[pos].ravel(), lens)
        run_first = np.repeat(np.cumsum(lens) - lens, lens)
        block = np.repeat(np.arange(len(block_ijk)), per_block)
        column = np.arange(total) - np.repeat(np.cumsum(per_block) - per_block, per_block)
        out = np.full((len(block_ijk), max(int(per_block.max()), 1)), self.n, np.int64)
        out[block, column] = run_start + np.arange(total) - run_first
        return out


def radius_balls(grid: CellGrid, queries: np.ndarray, radius: float, cap: int | None = None,
                 with_index: bool = True) -> Balls:
    """Every point of ``grid`` within ``radius`` of each query (distance <= radius).

    With ``cap``, a ball of n > cap points keeps every ``ceil(n / cap)``-th of its points in index
    order (an even subsample, the same as ``sorted(ball)[::step]``).  ``with_index=False`` skips
    the original indices (``index`` is then None), which the curvature fit does not need.
    """
    return nested_balls(grid, queries, (radius,), cap, with_index)[0]


def nested_balls(grid: CellGrid, queries: np.ndarray, radii: tuple[float, ...], cap: int | None = None,
                 with_index: bool = True) -> list[Balls]:
    """:func:`radius_balls` for several radii at once, one :class:`Balls` per radius.

    Why: the fit-scale selection fits every vertex at two radii; the candidates and distances of
    the largest ball serve every smaller one (each ball is exactly what :func:`radius_balls` on
    the same grid returns, members in the same order).
    """
    queries = np.asarray(queries, dtype=np.float64)
    blocks, block_of = np.unique(grid.cell_of(queries), axis=0, return_inverse=True)
    block_of = block_of.reshape(-1)
    cand = grid.candidates(blocks, max(radii))  # (B, C) sorted positions, shared by a cell's queries
    diff = [np.take(grid.coords[c], cand)[block_of] - queries[:, c:c + 1] for c in range(3)]
    d2 = diff[0] * diff[0] + diff[1] * diff[1] + diff[2] * diff[2]
    return [_ball(grid, cand[block_of], diff, d2, d2 <= radius * radius, cap, with_index) for radius in radii]


def _ball(grid: CellGrid, cand: np.ndarray, diff: list[np.ndarray], d2: np.ndarray, inside: np.ndarray,
          cap: int | None, with_index: bool) -> Balls:
    """Compact the candidates ``inside`` a ball into padded arrays (``cand`` per query)."""
    q_n, n = len(d2), grid.n
    count = inside.sum(axis=1)
    if cap is not None and q_n and count.max() > cap:
        for j in np.flatnonzero(count > cap):  # rare: a ball denser than ``cap`` points
            members = np.flatnonzero(inside[j])
            members = members[np.argsort(grid.original[cand[j, members]], kind="stable")]
            inside[j] = False
            inside[j, members[::-(-len(members) // cap)]] = True
        count = inside.sum(axis=1)
    width = max(int(count.max()) if q_n else 0, 1)
    d2max = np.where(inside, d2, 0.0).max(axis=1) if q_n else np.zeros(0)
    flat = np.repeat(np.arange(q_n) * width, count) + (np.cumsum(inside, axis=1) - 1)[inside]
    offsets = np.zeros((3, q_n * width))
    for c in range(3):
        offsets[c, flat] = diff[c][inside]
    index = None
    if with_index:
        index = np.full(q_n * width, n, np.int64)
        index[flat] = grid.original[cand[inside]]
        index = index.reshape(q_n, width)
    return Balls(count, index, offsets.reshape(3, q_n, width), d2max)
