"""The triangulations of all grids in use, stacked for batched lookups.

:class:`GridIndex` keeps, for every triangulated point set in use, the SModelS rotation
(:class:`~protomodels.theory.interpolation.Triangulation`), its simplices with their barycentric
transforms and neighbours, and a bucket grid over the rotated space that lists, per cell, the
simplices whose bounding box touches it (the candidates that can hold a point of the cell).
The point sets of one dimension are stacked into one
:class:`~protomodels.theory.lookup.SimplexStack` of flat arrays, padded to power-of-two
capacities so that jitted code recompiles only when a capacity doubles. Lookups run in
:func:`protomodels.theory.lookup.interpolate`; the few queries it flags as ambiguous (a point on a
face where the value jumps) are answered by SciPy as SModelS does
(:meth:`Triangulation.interpolate`), so :meth:`GridIndex.lookup` reproduces SModelS's values.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from protomodels.shapes import padded_length, padded_lengths
from protomodels.theory.interpolation import Triangulation, rescale_width
from protomodels.theory.lookup import MAX_CANDIDATES, NEAR, SimplexStack, interpolate

__all__ = ["GridIndex", "Query", "Request", "barycentric_transforms"]


def __dir__() -> list[str]:
    return __all__


_MAX_CELLS = 4_000_000
#: cells per side of the blocks that :func:`_cell_lists` tests first
_BLOCK = 4
_CHUNK = {1: 8, 2: 16, 3: 32}  # simplices per chunk by dimension (else MAX_CANDIDATES)

Request = tuple[np.ndarray, tuple[int, ...], np.ndarray, np.ndarray]


#: the jitted lookup, shared by every index (compiled executables are large: XLA's CPU code
#: of one shape takes hundreds of memory mappings, so shapes are not compiled twice)
_INTERPOLATE = jax.jit(interpolate)


def _capacity(n: int, minimum: int = 16) -> int:
    return max(minimum, 1 << max(0, int(n) - 1).bit_length())


_RCOND_LIMIT = 1000 * np.finfo(float).eps


def barycentric_transforms(points: np.ndarray, simplices: np.ndarray) -> np.ndarray:
    """SciPy's ``Delaunay.transform``, vectorised: (S, d+1, d), NaN for degenerate simplices.

    SciPy factorises, per simplex, the transpose of the matrix of vertex differences (its C
    array read by LAPACK as Fortran) and solves for the identity; NumPy's batched inverse of
    that transpose runs the same LAPACK steps, so the numbers are bit-equal (checked in the
    tests), about a thousand times faster. Degenerate simplices (reciprocal condition number
    below 1000 eps, SciPy's limit) get NaN.
    """
    d = points.shape[1]
    last = points[simplices[:, d]]
    diffs = points[simplices[:, :d]] - last[:, None, :]  # (S, d, d): row j = vertex j - last
    # SciPy's C array T[i, j] = coordinate i of vertex j (minus the last), read as Fortran:
    # LAPACK sees T^T = diffs
    lapack = np.ascontiguousarray(diffs)
    singular = np.linalg.det(lapack) == 0
    lapack[singular] = np.eye(d)
    inverse = np.linalg.inv(lapack).transpose(0, 2, 1)
    with np.errstate(all="ignore"):
        rcond = 1.0 / (np.abs(lapack).sum(1).max(1) * np.abs(inverse).sum(2).max(1))
    bad = singular | ~(rcond >= _RCOND_LIMIT)
    transform = np.ascontiguousarray(np.concatenate([inverse, last[:, None, :]], axis=1))
    transform[bad] = np.nan
    return transform  # C-contiguous: SciPy reads its memory directly


def _segments(tri: Triangulation) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A one-dimensional point set as 'simplices' (intervals between sorted points)."""
    order = tri._order
    assert order is not None
    x = tri._sorted
    m = max(len(x) - 1, 1)
    a = np.arange(m)
    left, right = np.minimum(a, len(x) - 1), np.minimum(a + 1, len(x) - 1)
    simplices = np.stack([order[left], order[right]], 1)
    span = x[left] - x[right]
    transform = np.zeros((m, 2, 1))
    with np.errstate(divide="ignore"):
        transform[:, 0, 0] = np.where(span != 0, 1.0 / np.where(span != 0, span, 1.0), np.nan)
    transform[:, 1, 0] = x[right]
    neighbors = np.stack([np.where(a + 1 < m, a + 1, -1), np.where(a > 0, a - 1, -1)], 1)
    return tri._rotated[:, :1], simplices, transform, neighbors


def _faces_clear(
    transform: np.ndarray, owners: np.ndarray, centre: np.ndarray, half: np.ndarray
) -> np.ndarray:
    """Whether the cell (centre, half widths) of each (simplex, cell) pair lies, with a margin
    of 2 NEAR, beyond one face of the simplex: barycentric coordinates are affine, so their
    largest value over a box is that at its centre plus the sum of |gradient| x half width; a
    coordinate whose largest value is below -2 NEAR means no point of the cell is (nearly)
    inside."""
    tr = transform[owners]  # (n, d+1, d): rows 0..d-1 = T, row d = the last vertex
    grad = np.concatenate([tr[:, :-1], -tr[:, :-1].sum(1, keepdims=True)], 1)  # (n, d+1, d)
    rel = centre - tr[:, -1]
    at_centre = np.einsum("nij,nj->ni", grad, rel)
    at_centre[:, -1] += 1.0
    highest = at_centre + np.einsum("nij,j->ni", np.abs(grad), half)
    return (highest < -2 * NEAR).any(1)  # (NaN transforms: False, kept)


def _boxes(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every integer point of the boxes [lo_i, hi_i] (inclusive, (n, d)): (row i of each,
    (N, d) points), row by row."""
    boxes = np.maximum(hi - lo + 1, 0)
    n_each = boxes.prod(1)
    rows = np.repeat(np.arange(len(lo)), n_each)
    local = np.arange(n_each.sum()) - np.repeat(np.cumsum(n_each) - n_each, n_each)
    points = np.empty((len(rows), lo.shape[1]), np.int64)
    for k in range(lo.shape[1]):
        points[:, k] = lo[rows, k] + local % boxes[rows, k]
        local = local // boxes[rows, k]
    return rows, points


def _not_clear(
    transform: np.ndarray, owners: np.ndarray, index: np.ndarray, lower: np.ndarray,
    size: np.ndarray,
) -> np.ndarray:
    """~:func:`_faces_clear` of (simplex, box) pairs, boxes of width ``size`` at integer
    ``index`` (in chunks: bounded memory)."""
    keep = np.ones(len(owners), bool)
    for start in range(0, len(owners), 1 << 20):
        part = slice(start, start + (1 << 20))
        centre = lower + (index[part] + 0.5) * size
        keep[part] = ~_faces_clear(transform, owners[part], centre, size / 2)
    return keep


def _cell_lists(
    points: np.ndarray,
    simplices: np.ndarray,
    transform: np.ndarray | None = None,
    block: int = _BLOCK,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bucket grid: cells sized like a typical simplex, each listing the simplices whose
    bounding box (widened) touches it -- and, given the barycentric ``transform``, that do not
    lie wholly beyond one of their faces. Returns (lower, size, shape, cell_start, members)
    (CSR lists).

    With a transform the pairs are found coarse to fine: (simplex, block of ``block``^d cells)
    pairs first, where a block wholly beyond a face clears all its cells at once (the test is
    monotone in the box), then the cells of the blocks left; the same lists as testing every
    cell of the bounding box (``block=1``), without enumerating the many cells of the boxes
    of thin simplices."""
    d = points.shape[1]
    lower = points.min(0) - 1e-9
    upper = points.max(0) + 1e-9
    span = np.maximum(upper - lower, 1e-9)
    corners = points[simplices]  # (T, d+1, d)
    extent = corners.max(1) - corners.min(1)
    size = np.maximum(np.median(extent, axis=0), span / 4096)
    shape = np.maximum(1, np.ceil(span / size)).astype(np.int64)
    while np.prod(shape.astype(float)) > _MAX_CELLS:
        shape = np.maximum(1, shape // 2)
    size = span / shape
    # boxes widened so that a cell lists every simplex holding its points within NEAR (in
    # barycentric terms: a distance below NEAR x the simplex's diameter)
    pad = 2 * NEAR * np.sqrt(d) * extent.max(1, keepdims=True)
    lo = np.clip(np.floor((corners.min(1) - pad - lower) / size).astype(np.int64), 0, shape - 1)
    hi = np.clip(np.floor((corners.max(1) + pad - lower) / size).astype(np.int64), 0, shape - 1)
    if transform is not None and d >= 2:  # thin simplices have boxes much larger than they
        pairs, blocks = _boxes(lo // block, hi // block)
        keep = _not_clear(transform, pairs, blocks, lower, size * block)
        pairs, blocks = pairs[keep], blocks[keep]
        inner, index = _boxes(
            np.maximum(blocks * block, lo[pairs]), np.minimum(blocks * block + block - 1, hi[pairs])
        )
        owners = pairs[inner]
        keep = _not_clear(transform, owners, index, lower, size)
        owners, index = owners[keep], index[keep]
    else:
        owners, index = _boxes(lo, hi)
    strides = np.cumprod(np.concatenate([[1], shape[:-1]]))
    cells = (index * strides).sum(1)
    order = np.lexsort((owners, cells))
    counts = np.bincount(cells, minlength=int(np.prod(shape)))
    cell_start = np.concatenate([[0], np.cumsum(counts)])
    return lower, size, shape, cell_start, owners[order]


#: version of the cached bucket-cell lists (bump when _cell_lists or its constants change)
_CELLS_VERSION = 3
_CELL_KEYS = ("lower", "size", "shape", "cell_start", "members")


def _read(file: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(file) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError):
        return None  # absent or unreadable: triangulate again


def _write(file: Path, arrays: dict[str, np.ndarray]) -> None:
    """Save atomically (a partial file is never read); a read-only cache is skipped."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        part = file.with_suffix(f".{os.getpid()}.part")
        with open(part, "wb") as handle:
            np.savez(handle, **arrays)
        part.replace(file)
    except OSError:
        pass


def _cache_file(cache: Path | None, coordinates: np.ndarray) -> Path | None:
    if cache is None:
        return None
    digest = hashlib.blake2b(coordinates.tobytes(), digest_size=20)
    digest.update(repr(coordinates.shape).encode())
    return cache / f"{digest.hexdigest()}.npz"


def _coordinates(points: np.ndarray, widths: tuple[int, ...]) -> np.ndarray:
    """Grid coordinates as triangulated: width columns rescaled."""
    coordinates = np.array(points, dtype=float)
    if widths:
        coordinates[:, widths] = rescale_width(coordinates[:, widths])
    return coordinates


def _current(saved: dict[str, np.ndarray] | None) -> bool:
    """Do saved arrays hold this version's transforms and cell lists?"""
    return saved is not None and int(saved.get("cells_version", -1)) == _CELLS_VERSION


def _current_file(file: Path) -> bool:
    """Is the cached file there and of this version (reads only its version entry)?"""
    try:
        with np.load(file) as data:
            return "cells_version" in data.files and int(data["cells_version"]) == _CELLS_VERSION
    except (OSError, ValueError, KeyError):
        return False


def _triangulated(coordinates: np.ndarray, saved: dict[str, np.ndarray] | None) -> tuple:
    """(triangulation, arrays to save or None, lookup arrays or ()) of a point set; from the
    saved arrays when they hold it all (Qhull's simplices of an older file are reused), else
    Qhull and the bucket cells computed here. Point sets of every dimension are saved, so a
    cache that holds them all needs no triangulation at all."""
    current = _current(saved)
    if saved is not None:
        tri = Triangulation.from_arrays(
            saved["shift"], saved["rotation"], saved["rotated"], len(coordinates)
        )
        simplices = saved["simplices"].astype(np.int64) if "simplices" in saved else None
        neighbors = saved["neighbors"].astype(np.int64) if "neighbors" in saved else None
    else:
        tri = Triangulation(coordinates)
        simplices = neighbors = None
        if tri.dim >= 2:
            assert tri._tri is not None
            simplices, neighbors = tri._tri.simplices, tri._tri.neighbors
    fresh = None
    if not current:
        fresh = {
            "shift": tri.shift, "rotation": tri.rotation, "rotated": tri._rotated,
            "cells_version": np.asarray(_CELLS_VERSION),
        }
    if tri.dim == 0:
        return tri, fresh, ()
    if tri.dim == 1:
        rotated, simplices, transform, neighbors = _segments(tri)
    else:
        assert simplices is not None and neighbors is not None
        rotated = tri._rotated
        transform = saved["transform"] if current else barycentric_transforms(rotated, simplices)
        tri._transform = transform
        if tri._tri is not None:
            tri._tri._transform = transform  # SciPy's find_simplex uses it as its own
    if current:
        cells = tuple(saved[k] for k in _CELL_KEYS)
    else:
        cells = _cell_lists(rotated, simplices, transform)
        fresh.update(
            {k: (v.astype(np.int32) if k == "members" else v)
             for k, v in zip(_CELL_KEYS, cells, strict=True)}
        )
        if tri.dim >= 2:
            fresh.update(
                simplices=simplices.astype(np.int32), neighbors=neighbors.astype(np.int32),
                transform=transform,
            )
    lower, size, shape, start, members = cells
    members = members.astype(np.int64)
    return tri, fresh, (lower, size, shape, start, members, transform, simplices, neighbors)


def _triangulate_file(coordinates: np.ndarray, file: str) -> None:
    """Worker of :meth:`GridIndex.reserve`: triangulate one point set into the cache."""
    _, fresh, _ = _triangulated(coordinates, _read(Path(file)))
    if fresh is not None:
        _write(Path(file), fresh)


@dataclass
class _Entry:
    """One triangulated point set and its place in the stack of its dimension."""

    tri: Triangulation
    stack_index: int = -1
    arrays: tuple[np.ndarray, ...] = ()


@dataclass
class _Stack:
    """Host copy of the stacked triangulations of one dimension (grown entry by entry)."""

    dim: int
    entries: list[_Entry] = field(default_factory=list)
    device: SimplexStack | None = None


@dataclass(frozen=True)
class Query:
    """Lookups of one dimension as arrays for :func:`~protomodels.theory.lookup.interpolate`."""

    dim: int
    rows: np.ndarray  # positions in the request list
    k: np.ndarray
    x: np.ndarray
    offsets: np.ndarray


class GridIndex:
    """Triangulations of the point sets in use, and batched lookups over them.

    Args:
        values: every grid-values array that requests may name (concatenated once).
        cache: folder where triangulations (Qhull's simplices and neighbours) are kept between
            processes, keyed by a hash of the points (None: no cache). Reading one back gives the
            same triangulation; SciPy's object is rebuilt only if a lookup needs it.
    """

    def __init__(
        self, values: Iterable[np.ndarray], *, cache: str | os.PathLike[str] | None = None
    ) -> None:
        self.cache = Path(cache) if cache is not None else None
        arrays: list[np.ndarray] = []
        self._offsets: dict[int, int] = {}
        position = 0
        for a in values:
            if id(a) not in self._offsets:
                self._offsets[id(a)] = position
                position += len(a)
                arrays.append(a)
        flat = np.concatenate(arrays) if arrays else np.zeros(0)
        self.flat_values = flat
        self._arrays = arrays  # keep the ids valid
        self.entries: dict[tuple[int, tuple[int, ...]], _Entry] = {}
        self._stacks: dict[int, _Stack] = {}
        self._device_values: jax.Array | None = None
        self._width = max((1,), default=1)
        self._kernel = _INTERPOLATE

    def offset(self, values: np.ndarray) -> int:
        """Start of a grid's values in :attr:`flat_values`."""
        return self._offsets[id(values)]

    @property
    def values(self) -> jax.Array:
        """All grid values on the device (float64)."""
        if self._device_values is None:
            with jax.enable_x64(True):
                self._device_values = jnp.asarray(self.flat_values, dtype=jnp.float64)
        return self._device_values

    def entry(self, points: np.ndarray, widths: tuple[int, ...]) -> _Entry:
        """The (cached) triangulation of a point set, width coordinates rescaled."""
        key = (id(points), widths)
        found = self.entries.get(key)
        if found is None:
            found = self._build(np.asarray(points, dtype=float), widths)
            if found.tri.dim >= 1:
                stack = self._stacks.setdefault(found.tri.dim, _Stack(found.tri.dim))
                found.stack_index = len(stack.entries)
                stack.entries.append(found)
                stack.device = None
            self.entries[key] = found
        return found

    def _build(self, points: np.ndarray, widths: tuple[int, ...]) -> _Entry:
        """Triangulate a point set (or read it from the cache) and make its lookup arrays."""
        coordinates = _coordinates(points, widths)
        file = _cache_file(self.cache, coordinates)
        saved = _read(file) if file is not None else None
        tri, fresh, arrays = _triangulated(coordinates, saved)
        if fresh is not None and file is not None:
            _write(file, fresh)
        return _Entry(tri, arrays=arrays)

    def all_cached(self, point_sets: Iterable[tuple[np.ndarray, tuple[int, ...]]]) -> bool:
        """Whether the cache holds a current triangulation of every point set (then loading
        them all up front costs seconds, and stacks that never grow recompile nothing)."""
        return self.cache is not None and next(self._uncached(point_sets), None) is None

    def _uncached(
        self, point_sets: Iterable[tuple[np.ndarray, tuple[int, ...]]]
    ) -> Iterator[tuple[np.ndarray, Path]]:
        """(coordinates, cache file) of every point set without a current cached
        triangulation (none without a cache folder)."""
        if self.cache is None:
            return
        for points, widths in point_sets:
            coordinates = _coordinates(np.asarray(points, dtype=float), widths)
            file = _cache_file(self.cache, coordinates)
            if not _current_file(file):
                yield coordinates, file

    def fill_cache(self, point_sets: Iterable[tuple[np.ndarray, tuple[int, ...]]]) -> int:
        """Triangulate, into the cache only, every point set not cached yet (one by one, in
        this process: the background filler of a lazy start); returns how many were made."""
        made = 0
        for coordinates, file in self._uncached(point_sets):
            _triangulate_file(coordinates, str(file))
            made += 1
        return made

    def reserve(
        self,
        point_sets: Iterable[tuple[np.ndarray, tuple[int, ...]]],
        *,
        workers: int = 1,
        progress: Callable[[int, int], None] | None = None,
        stack: bool = True,
    ) -> None:
        """Triangulate every point set that lookups may name, once, and stack them: later
        lookups then never rebuild a stack, so the jitted kernels keep their shapes.

        Args:
            point_sets: (points, width columns) pairs (repeats are skipped).
            workers: processes that triangulate the point sets missing from the cache (the
                Qhull step of a large grid takes seconds); 1: all in this process.
            progress: called with (done, total) after each point set.
            stack: also load them here and stack them (False: only fill the cache, which
                needs ``workers`` > 1 and a cache folder).
        """
        todo: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
        for points, widths in point_sets:
            key = (id(points), widths)
            if key not in self.entries and key not in todo:
                todo[key] = points
        total = len(todo)
        missing = []
        if workers > 1:
            sets = [(points, widths) for (_, widths), points in todo.items()]
            missing = [(c, str(f)) for c, f in self._uncached(sets)]
        done = 0
        if missing:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                futures = [pool.submit(_triangulate_file, c, f) for c, f in missing]
                for future in futures:
                    future.result()
                    done += 1
                    if progress is not None:
                        progress(done, total + len(missing))
        if not stack and self.cache is not None and workers > 1:
            return
        for k, ((_, widths), points) in enumerate(todo.items()):
            self.entry(points, widths)
            if progress is not None:
                progress(done + k + 1, total + len(missing))
        for dim in self._stacks:
            self.stack(dim)

    def warm_up(self, max_points: int = 4096) -> int:
        """Compile the lookup of every stacked dimension for every padded number of query
        points up to ``max_points`` (:func:`~protomodels.shapes.padded_length`: 16, 64, ...,
        4096; queries outside every grid: cheap), so that a long run does not compile when a
        model asks for more points than before (larger queries, rare, compile on first use:
        each compiled shape costs hundreds of the process's memory mappings, whose number the
        kernel limits). Returns the number of shapes."""
        count = 0
        for dim in sorted(self._stacks):
            width = self.stack(dim).shift.shape[1]
            for n in padded_lengths(16, max_points):
                zeros = np.zeros(n, np.int64)
                self.interpolate(Query(dim, zeros, zeros, np.full((n, width), np.nan), zeros))
                count += 1
        return count

    @property
    def dims(self) -> list[int]:
        """The dimensions of the triangulations stacked so far."""
        return sorted(self._stacks)

    def stack(self, dim: int) -> SimplexStack:
        """The stacked triangulations of dimension ``dim`` on the device (rebuilt when new
        point sets were added; arrays padded to power-of-two capacities)."""
        host = self._stacks[dim]
        if host.device is not None:
            return host.device
        entries = host.entries
        d = dim
        width = max(len(e.tri.shift) for e in entries)
        # capacities from large minimums, in steps of 4 (of 2 for the simplices, whose arrays
        # are the largest): a stack that grows while a walk meets new grids changes shape, and
        # recompiles its lookups, a few times only
        n_k = padded_length(len(entries), 64)
        n_c = padded_length(sum(len(e.arrays[3]) - 1 for e in entries) + 1, 1 << 16)
        n_m = padded_length(sum(len(e.arrays[4]) for e in entries), 1 << 20)
        n_s = _capacity(sum(len(e.arrays[5]) for e in entries), 1 << 18)
        shift = np.zeros((n_k, width))
        rotation = np.zeros((n_k, width, width))
        lower = np.zeros((n_k, d))
        cell = np.ones((n_k, d))
        shape = np.ones((n_k, d), np.int64)
        cell_base = np.zeros(n_k, np.int64)
        cell_start = np.zeros(n_c, np.int32)
        members = np.zeros(n_m, np.int32)
        transform = np.zeros((n_s, d + 1, d))
        simplices = np.zeros((n_s, d + 1), np.int32)
        neighbors = np.full((n_s, d + 1), -1, np.int32)
        c0 = s0 = m0 = 0
        for i, e in enumerate(entries):
            lo, size, shp, start, mem, tr, sx, nb = e.arrays
            n = len(e.tri.shift)
            shift[i, :n] = e.tri.shift
            rotation[i, :n, :n] = e.tri.rotation
            lower[i], cell[i], shape[i] = lo, size, shp
            cell_base[i] = c0
            cell_start[c0 : c0 + len(start) - 1] = start[:-1] + m0
            members[m0 : m0 + len(mem)] = mem + s0
            transform[s0 : s0 + len(tr)] = tr
            simplices[s0 : s0 + len(sx)] = sx
            neighbors[s0 : s0 + len(nb)] = np.where(nb >= 0, nb + s0, -1)
            c0 += len(start) - 1
            s0 += len(tr)
            m0 += len(mem)
        cell_start[c0:] = m0
        strides = np.cumprod(np.concatenate([np.ones((n_k, 1), np.int64), shape[:, :-1]], 1), 1)
        # simplices tested per chunk: fixed per dimension (a size that grew with the stack
        # would recompile the kernels); about the 99th percentile of the database's cells
        slots = np.arange(_CHUNK.get(d, MAX_CANDIDATES))
        with jax.enable_x64(True):
            host.device = SimplexStack(
                *(
                    jnp.asarray(a)
                    for a in (
                        shift, rotation, lower, cell, shape, strides, cell_base, cell_start,
                        members, transform, simplices, neighbors, slots,
                    )
                )
            )
        return host.device

    def queries(self, requests: Sequence[Request]) -> tuple[list[Query], list[int]]:
        """Group (points, width columns, values, query point) requests by dimension.

        Returns:
            The per-dimension query arrays, and the requests on zero-dimensional point sets
            (answered on the host).
        """
        by_dim: dict[int, list[int]] = {}
        entry_of: list[_Entry] = []
        for i, (points, widths, _, _) in enumerate(requests):
            e = self.entry(points, widths)
            entry_of.append(e)
            by_dim.setdefault(e.tri.dim, []).append(i)
        out = []
        for dim, rows in sorted(by_dim.items()):
            if dim == 0:
                continue
            width = max(len(e.tri.shift) for e in self._stacks[dim].entries)
            n = padded_length(len(rows), 16)
            k = np.zeros(n, np.int64)
            x = np.zeros((n, width))
            offsets = np.zeros(n, np.int64)
            for j, i in enumerate(rows):
                v = requests[i][3]
                k[j] = entry_of[i].stack_index
                x[j, : len(v)] = v
                offsets[j] = self.offset(requests[i][2])
            out.append(Query(dim, np.asarray(rows), k, x, offsets))
        return out, by_dim.get(0, [])

    def interpolate(self, query: Query) -> tuple[np.ndarray, np.ndarray]:
        """Run the jitted lookup of one dimension; (values, ambiguity flags) per row."""
        with jax.enable_x64(True):
            f, flag = self._kernel(
                self.stack(query.dim), self.values, query.k, query.x, query.offsets
            )
            n = len(query.rows)
            return np.asarray(f)[:n], np.asarray(flag)[:n]

    def lookup(self, requests: Sequence[Request]) -> np.ndarray:
        """Interpolate many (points, width columns, values, query point) requests.

        Returns:
            One value per request; NaN where SModelS gives none.
        """
        out = np.full(len(requests), np.nan)
        queries, flat = self.queries(requests)
        for query in queries:
            f, flag = self.interpolate(query)
            out[query.rows] = f
            for j in np.flatnonzero(flag):
                out[query.rows[j]] = self._scipy(requests[query.rows[j]])
        for i in flat:
            out[i] = self._scipy(requests[i])
        return out

    def scipy_lookup(self, requests: Sequence[Request]) -> np.ndarray:
        """SModelS's own answers (SciPy's walk, point by point): for flagged or 0-d lookups."""
        return np.asarray([self._scipy(r) for r in requests], dtype=float)

    def _scipy(self, request: Request) -> float:
        """SModelS's own answer for one request (SciPy's walk, one point)."""
        points, widths, values, point = request
        tri = self.entry(points, widths).tri
        return float(tri.interpolate(values, np.asarray(point, dtype=float)[None, :])[0])
