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
_NEAR_TOLERANCE = 1e-3


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
    stack_index: int = -1


@dataclass
class _Stack:
    """The triangulations of one dimension, stacked (see :meth:`GridIndex._stacked`)."""

    size: int
    width: int
    shift: np.ndarray
    rotation: np.ndarray
    lower: np.ndarray
    cell: np.ndarray
    shape: np.ndarray
    strides: np.ndarray
    cell_base: np.ndarray
    cell_start: np.ndarray
    owners: np.ndarray
    transform: np.ndarray
    simplices: np.ndarray


class GridIndex:
    """Triangulations of the point sets in use, and batched lookups over them.

    Args:
        values: every grid-values array that requests may name (concatenated once).
    """

    def __init__(self, values: Iterable[np.ndarray]) -> None:
        arrays: list[np.ndarray] = []
        self.entries: dict[tuple[int, tuple[int, ...]], _Entry] = {}
        self._stacks: dict[int, _Stack] = {}
        self._stack_entries: dict[int, list[_Entry]] = {}
        self._offsets: dict[int, int] = {}
        position = 0
        for a in values:
            if id(a) not in self._offsets:
                self._offsets[id(a)] = position
                position += len(a)
                arrays.append(a)
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

    def _stacked(self, dim: int) -> _Stack:
        """All triangulations of dimension ``dim`` as one set of flat arrays (cached)."""
        members = [e for e in self.entries.values() if e.tri.dim == dim]
        stack = self._stacks.get(dim)
        if stack is not None and stack.size == len(members):
            return stack
        width = max(len(e.tri.shift) for e in members)
        shift = np.zeros((len(members), width))
        rotation = np.zeros((len(members), width, width))
        lower = np.zeros((len(members), dim))
        size = np.ones((len(members), dim))
        shape = np.ones((len(members), dim), int)
        cell_base = np.zeros(len(members), int)
        simplex_base = np.zeros(len(members), int)
        starts, owners, transforms, simplices = [], [], [], []
        n_cells = n_simplices = 0
        for k, e in enumerate(members):
            e.stack_index = k
            n = len(e.tri.shift)
            shift[k, :n] = e.tri.shift
            rotation[k, :n, :n] = e.tri.rotation
            b = e.buckets
            assert b is not None and e.transform is not None and e.simplices is not None
            lower[k], size[k], shape[k] = b.lower, b.size, b.shape
            cell_base[k] = n_cells
            simplex_base[k] = n_simplices
            starts.append(b.cell_start[:-1] + (sum(len(o) for o in owners)))
            owners.append(b.members + n_simplices)
            transforms.append(e.transform)
            simplices.append(e.simplices)
            n_cells += len(b.cell_start) - 1
            n_simplices += len(e.simplices)
        total = sum(len(o) for o in owners)
        cell_start = np.concatenate([*starts, [total]])
        strides = np.cumprod(np.concatenate([np.ones((len(members), 1), int), shape[:, :-1]], 1), 1)
        stack = _Stack(
            size=len(members),
            width=width,
            shift=shift,
            rotation=rotation,
            lower=lower,
            cell=size,
            shape=shape,
            strides=strides,
            cell_base=cell_base,
            cell_start=cell_start,
            owners=np.concatenate(owners),
            transform=np.concatenate(transforms),
            simplices=np.concatenate(simplices),
        )
        self._stacks[dim] = stack
        self._stack_entries[dim] = members
        return stack

    def lookup(
        self,
        requests: Sequence[tuple[np.ndarray, tuple[int, ...], np.ndarray, np.ndarray]],
    ) -> np.ndarray:
        """Interpolate many (points, width columns, values, query point) requests.

        Returns:
            One value per request; NaN where SModelS gives none.
        """
        out = np.full(len(requests), np.nan)
        by_dim: dict[int, list[int]] = {}
        entry_of: list[_Entry] = []
        for i, (points, widths, _, _) in enumerate(requests):
            e = self.entry(points, widths)
            entry_of.append(e)
            by_dim.setdefault(e.tri.dim, []).append(i)
        for dim, idx in by_dim.items():
            if dim < 2:  # d = 0 or 1: few such grids; one call per grid
                per_grid: dict[int, list[int]] = {}
                for i in idx:
                    per_grid.setdefault(id(requests[i][2]), []).append(i)
                for rows in per_grid.values():
                    q = np.asarray([requests[i][3] for i in rows], dtype=float)
                    out[rows] = entry_of[rows[0]].tri.interpolate(requests[rows[0]][2], q)
                continue
            self._lookup_simplicial(dim, idx, entry_of, requests, out)
        return out

    def _lookup_simplicial(
        self,
        d: int,
        idx: list[int],
        entry_of: list[_Entry],
        requests: Sequence[tuple[np.ndarray, tuple[int, ...], np.ndarray, np.ndarray]],
        out: np.ndarray,
    ) -> None:
        stack = self._stacked(d)
        request_index = np.asarray(idx)
        k = np.asarray([entry_of[i].stack_index for i in idx])
        x = np.zeros((len(idx), stack.width))
        for row, i in enumerate(idx):
            v = requests[i][3]
            x[row, : len(v)] = v
        rotated = np.einsum("qi,qij->qj", x - stack.shift[k], stack.rotation[k])
        offsets = np.asarray([self.offset(requests[i][2]) for i in idx], dtype=int)
        f = self._interpolate(stack, d, k, rotated[:, :d], offsets)
        offplane = ((np.abs(rotated) > _ZERO).sum(1) > d) & np.isfinite(f)
        if offplane.any():
            rows = np.flatnonzero(offplane)
            f[rows] = self._offplane(stack, d, k[rows], rotated[rows], offsets[rows], f[rows])
        f = np.where(np.abs(f) < 100 * np.finfo(float).eps, 0.0, f)
        out[request_index] = round_significant(f)

    def _interpolate(
        self, stack: _Stack, d: int, k: np.ndarray, points: np.ndarray, offsets: np.ndarray
    ) -> np.ndarray:
        """Barycentric interpolation at in-plane rotated ``points`` (NaN outside the hull)."""
        f = np.full(len(points), np.nan)
        finite = np.isfinite(points).all(1)
        points = np.where(finite[:, None], points, 0.0)
        cell = np.floor((points - stack.lower[k]) / stack.cell[k]).astype(int)
        outside = ((cell < 0) | (cell >= stack.shape[k])).any(1) | ~finite
        cell = np.clip(cell, 0, stack.shape[k] - 1)
        flat = (cell * stack.strides[k]).sum(1) + stack.cell_base[k]
        starts = np.where(outside, 0, stack.cell_start[flat])
        counts = np.where(outside, 0, stack.cell_start[flat + 1] - stack.cell_start[flat])
        owner = np.repeat(np.arange(len(points)), counts)
        position = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        simplex = stack.owners[starts[owner] + position]
        transform = stack.transform[simplex]
        bary = np.einsum("cij,cj->ci", transform[:, :d], points[owner] - transform[:, d])
        weights = np.concatenate([bary, 1 - bary.sum(1, keepdims=True)], 1)
        hits = np.flatnonzero((weights >= -_SIMPLEX_TOLERANCE).all(1))
        corner = self.flat_values[offsets[owner[hits], None] + stack.simplices[simplex[hits]]]
        value = np.maximum((weights[hits] * corner).sum(1), corner.min(1))
        first_owner, first = np.unique(owner[hits], return_index=True)
        f[first_owner] = value[first]
        # several containing simplices with different values (flat simplices): SModelS's
        # answer is SciPy's walk for this one point, so ask SciPy
        # (candidates within a looser tolerance count too: next to flat simplices SciPy's
        # walk can stop in one whose weights are slightly below -1e-6)
        near = np.flatnonzero((weights >= -_NEAR_TOLERANCE).all(1))
        corner_near = self.flat_values[offsets[owner[near], None] + stack.simplices[simplex[near]]]
        value_near = (weights[near] * corner_near).sum(1)
        low = np.full(len(points), np.inf)
        high = np.full(len(points), -np.inf)
        np.minimum.at(low, owner[near], value_near)
        np.maximum.at(high, owner[near], value_near)
        spread = high - low > 1e-9 * np.maximum(np.abs(high), 1e-300)
        ambiguous = np.flatnonzero(spread & np.isfinite(high))
        entries = self._stack_entries[d]
        for q in ambiguous:
            e = entries[k[q]]
            values = self.flat_values[offsets[q] : offsets[q] + e.tri.n_points]
            f[q] = e.tri._project_values(values, points[q][None, :])[0]
        return f

    def _offplane(
        self, stack: _Stack, d: int, k: np.ndarray, rotated: np.ndarray, offsets: np.ndarray,
        f: np.ndarray,
    ) -> np.ndarray:
        """SModelS's acceptance of points off the grid plane (predictions.md §4.5), batched:
        a gradient estimate must say the projection changes the value by less than 5 %."""
        n = len(f)
        base = rotated[:, :d]
        alpha = np.linalg.norm(rotated[:, d:], axis=1)
        shifted = np.repeat(base[:, None, :], d, 1) + alpha[:, None, None] * np.eye(d)[None]
        fs = self._interpolate(
            stack, d, np.repeat(k, d), shifted.reshape(-1, d), np.repeat(offsets, d)
        ).reshape(n, d)
        grad = (fs - f[:, None]) / alpha[:, None]
        norm = np.linalg.norm(grad, axis=1)
        safe = np.where(norm > 0, norm, 1.0)
        step = (alpha[:, None] * grad / safe[:, None]).sum(1)
        plus, minus = base.copy(), base.copy()
        plus[:, d - 1] += step
        minus[:, d - 1] -= step
        both = self._interpolate(
            stack, d, np.concatenate([k, k]), np.concatenate([plus, minus]),
            np.concatenate([offsets, offsets]),
        )
        f_plus, f_minus = both[:n], both[n:]

        def rel(shifted_value: np.ndarray) -> np.ndarray:
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.abs(shifted_value - f) / f
            return np.where(f == 0, np.where(shifted_value == 0, 0.0, 1.0), r)

        error = rel(f_plus)
        error = np.where(np.isnan(f_minus), error, np.maximum(error, rel(f_minus)))
        accept = (error < 0.05) & ~np.isnan(f_plus)
        accept = np.where(np.isnan(fs).any(1), False, accept)
        accept = np.where(norm == 0, True, accept)
        return np.where(accept, f, np.nan)
