"""Batched interpolation over many grids at once.

:class:`GridIndex` keeps, for every triangulated point set in use, the SModelS rotation
(:class:`~protomodels.theory.interpolation.Triangulation`), the simplices with their barycentric
transforms, and a bucket grid over the rotated space that lists the simplices overlapping each
cell (compressed rows). A batch of queries -- (point set, grid values, point) triples from any
number of grids -- is then located and interpolated with a fixed number of array operations:
rotate, find the cell, test the cell's candidate simplices, take the first that holds the point,
gather the vertex values. The values agree with :meth:`Triangulation.interpolate` (the same
triangulation, the same tolerances; on a face shared by two simplices linear interpolation is
continuous, so the choice between them does not matter).

The arrays are laid out flat so that the same code can run under ``jax.numpy``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from protomodels.theory.interpolation import (
    _SIMPLEX_TOLERANCE,
    _ZERO,
    Triangulation,
    rescale_width,
    round_significant,
)

__all__ = ["GridIndex"]


def __dir__() -> list[str]:
    return __all__


_MAX_CELLS = 4_000_000


@dataclass
class _Buckets:
    """Bucket grid of one triangulation (d >= 2)."""

    lower: np.ndarray  # (d,)
    size: np.ndarray  # (d,)
    shape: np.ndarray  # (d,) cells per dimension
    cell_start: np.ndarray  # (n_cells + 1,) CSR offsets into `members`
    members: np.ndarray  # simplex indices


def _buckets(tri: Triangulation) -> _Buckets:
    """Cells sized like a typical simplex in each direction; each simplex is listed in every
    cell its bounding box touches."""
    points = tri._rotated
    simplices = tri._tri.simplices  # type: ignore[union-attr]
    d = tri.dim
    lower = points.min(0) - 1e-9
    upper = points.max(0) + 1e-9
    span = np.maximum(upper - lower, 1e-9)
    corners = points[simplices]  # (T, d+1, d)
    extent = corners.max(1) - corners.min(1)
    size = np.maximum(np.median(extent, axis=0), span / 4096)
    shape = np.maximum(1, np.ceil(span / size)).astype(int)
    while np.prod(shape.astype(float)) > _MAX_CELLS:
        shape = np.maximum(1, shape // 2)
    size = span / shape
    lo = np.clip(np.floor((corners.min(1) - lower) / size).astype(int), 0, shape - 1)
    hi = np.clip(np.floor((corners.max(1) - lower) / size).astype(int), 0, shape - 1)
    boxes = hi - lo + 1  # (T, d) cells per direction
    n_cells_each = boxes.prod(1)
    owners = np.repeat(np.arange(len(simplices)), n_cells_each)
    local = np.arange(n_cells_each.sum()) - np.repeat(
        np.cumsum(n_cells_each) - n_cells_each, n_cells_each
    )
    strides = np.cumprod(np.concatenate([[1], shape[:-1]]))
    cells = np.zeros(len(owners), int)
    radix = np.ones(len(owners), int)
    for k in range(d):
        size_k = boxes[owners, k]
        digit = (local // radix) % size_k
        radix = radix * size_k
        cells += (lo[owners, k] + digit) * strides[k]
    order = np.lexsort((owners, cells))
    cells, owners = cells[order], owners[order]
    n_cells = int(np.prod(shape))
    counts = np.bincount(cells, minlength=n_cells)
    cell_start = np.concatenate([[0], np.cumsum(counts)])
    return _Buckets(lower, size, shape, cell_start, owners)


@dataclass
class _Entry:
    tri: Triangulation
    buckets: _Buckets | None
    transform: np.ndarray | None = None
    simplices: np.ndarray | None = None


class GridIndex:
    """Triangulations of the point sets in use, and batched lookups over them.

    Args:
        values: every grid-values array that requests may name (concatenated once).
    """

    def __init__(self, values: Iterable[np.ndarray]) -> None:
        arrays = list(values)
        self.entries: dict[tuple[int, tuple[int, ...]], _Entry] = {}
        self._offsets: dict[int, int] = {}
        position = 0
        for a in arrays:
            if id(a) not in self._offsets:
                self._offsets[id(a)] = position
                position += len(a)
        self.flat_values = np.concatenate(arrays) if arrays else np.zeros(0)
        self._arrays = arrays  # keep the ids valid

    def offset(self, values: np.ndarray) -> int:
        """Start of a grid's values in :attr:`flat_values`."""
        return self._offsets[id(values)]

    def entry(self, points: np.ndarray, widths: tuple[int, ...]) -> _Entry:
        """The (cached) triangulation of a point set, width coordinates rescaled."""
        key = (id(points), widths)
        found = self.entries.get(key)
        if found is None:
            coordinates = np.array(points, dtype=float)
            if widths:
                coordinates[:, widths] = rescale_width(coordinates[:, widths])
            tri = Triangulation(coordinates)
            buckets = transform = simplices = None
            if tri.dim >= 2:
                buckets = _buckets(tri)
                transform = tri._tri.transform  # type: ignore[union-attr]
                simplices = tri._tri.simplices  # type: ignore[union-attr]
            found = _Entry(tri, buckets, transform, simplices)
            self.entries[key] = found
        return found

    def lookup(
        self,
        requests: Sequence[tuple[np.ndarray, tuple[int, ...], np.ndarray, np.ndarray]],
    ) -> np.ndarray:
        """Interpolate many (points, width columns, values, query point) requests.

        Returns:
            One value per request; NaN where SModelS gives none.
        """
        out = np.full(len(requests), np.nan)
        by_entry: dict[int, list[int]] = {}
        entries: dict[int, _Entry] = {}
        for i, (points, widths, _, _) in enumerate(requests):
            e = self.entry(points, widths)
            by_entry.setdefault(id(e), []).append(i)
            entries[id(e)] = e
        # group the requests by dimension of their triangulation
        groups: dict[int, list[tuple[_Entry, list[int]]]] = {}
        for eid, idx in by_entry.items():
            e = entries[eid]
            groups.setdefault(e.tri.dim if e.tri.dim < 2 else 2 + e.tri.dim, []).append((e, idx))
        for key, members in groups.items():
            if key < 2:  # d = 0 or 1: few such grids; one call per grid
                for e, idx in members:
                    per_grid: dict[int, list[int]] = {}
                    for i in idx:
                        per_grid.setdefault(id(requests[i][2]), []).append(i)
                    for rows in per_grid.values():
                        q = np.asarray([requests[i][3] for i in rows], dtype=float)
                        out[rows] = e.tri.interpolate(requests[rows[0]][2], q)
                continue
            self._lookup_simplicial(members, requests, out)
        return out

    def _lookup_simplicial(
        self,
        members: list[tuple[_Entry, list[int]]],
        requests: Sequence[tuple[np.ndarray, tuple[int, ...], np.ndarray, np.ndarray]],
        out: np.ndarray,
    ) -> None:
        d = members[0][0].tri.dim
        # rotate every query with its triangulation (one small product per triangulation)
        rotated_parts, cells_parts, index_parts, entry_parts = [], [], [], []
        for k, (e, idx) in enumerate(members):
            q = np.asarray([requests[i][3] for i in idx], dtype=float)
            rot = (q - e.tri.shift) @ e.tri.rotation
            b = e.buckets
            assert b is not None
            cell = np.floor((rot[:, :d] - b.lower) / b.size).astype(int)
            outside = ((cell < 0) | (cell >= b.shape)).any(1)
            cell = np.clip(cell, 0, b.shape - 1)
            strides = np.cumprod(np.concatenate([[1], b.shape[:-1]]))
            flat = (cell * strides).sum(1)
            flat = np.where(outside, -1, flat)
            rotated_parts.append(rot)
            cells_parts.append(flat)
            index_parts.append(np.asarray(idx))
            entry_parts.append(np.full(len(idx), k))
        request_index = np.concatenate(index_parts)
        entry_of = np.concatenate(entry_parts)
        cells = np.concatenate(cells_parts)
        # candidate simplices of every query, flattened
        starts = np.zeros(len(cells), int)
        counts = np.zeros(len(cells), int)
        for k, (e, _) in enumerate(members):
            mine = (entry_of == k) & (cells >= 0)
            b = e.buckets
            assert b is not None
            starts[mine] = b.cell_start[cells[mine]]
            counts[mine] = b.cell_start[cells[mine] + 1] - starts[mine]
        owner = np.repeat(np.arange(len(cells)), counts)
        position = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        simplex = np.empty(len(owner), int)
        transform = np.empty((len(owner), d + 1, d))
        vertices = np.empty((len(owner), d + 1), int)
        for k, (e, _) in enumerate(members):
            mine = entry_of[owner] == k
            b = e.buckets
            assert b is not None and e.transform is not None and e.simplices is not None
            s = b.members[starts[owner[mine]] + position[mine]]
            simplex[mine] = s
            transform[mine] = e.transform[s]
            vertices[mine] = e.simplices[s]
        width = max(r.shape[1] for r in rotated_parts)
        rotated_all = np.concatenate(
            [np.pad(r, ((0, 0), (0, width - r.shape[1]))) for r in rotated_parts]
        )
        x = rotated_all[owner, :d]
        bary = np.einsum("cij,cj->ci", transform[:, :d], x - transform[:, d])
        weights = np.concatenate([bary, 1 - bary.sum(1, keepdims=True)], 1)
        valid = (weights >= -_SIMPLEX_TOLERANCE).all(1)
        hits = np.flatnonzero(valid)
        first_owner, first = np.unique(owner[hits], return_index=True)
        chosen = hits[first]
        found = np.zeros(len(cells), bool)
        found[first_owner] = True
        chosen_of = np.full(len(cells), -1)
        chosen_of[first_owner] = chosen
        # values: one gather from the flat array of all grid values
        hit = np.flatnonzero(found)
        c = chosen_of[hit]
        offsets = np.asarray([self.offset(requests[i][2]) for i in request_index[hit]], int)
        corner = self.flat_values[offsets[:, None] + vertices[c]]
        f = (weights[c] * corner).sum(1)
        out[request_index[hit]] = np.maximum(f, corner.min(1))
        offplane = (np.abs(rotated_all) > _ZERO).sum(1) > d
        for q in np.flatnonzero(found & offplane):
            e = members[entry_of[q]][0]
            i = request_index[q]
            out[i] = e.tri._offplane(requests[i][2], rotated_all[q], out[i])
        sel = request_index[found]
        v = out[sel]
        v = np.where(np.abs(v) < 100 * np.finfo(float).eps, 0.0, v)
        out[sel] = round_significant(v)
