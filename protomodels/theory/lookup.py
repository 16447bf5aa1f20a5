"""Grid interpolation as pure ``jax.numpy`` functions (jittable, batched, differentiable in the
query point inside a simplex).

The triangulations of all grids of one dimension ``d`` are stacked into one
:class:`SimplexStack` (built on the host by :class:`~protomodels.theory.locator.GridIndex`).
A query -- (stack row, point, offset of the grid's values) -- is rotated onto the grid's
principal axes and tested against the simplices listed in the bucket cell that holds it (every
simplex whose bounding box, widened by the tolerance, touches the cell; in chunks of M): one that
contains it within SModelS's tolerance (``find_simplex(tol=1e-6)``) gives the value, none means
outside the convex hull (no value, NaN). Points off the grid's plane get SModelS's 5 % gradient test
(``docs/predictions.md`` §7). Values are rounded to 6 significant digits as in SModelS.

Where several simplices hold a point with different values (flat simplices, or a point within
1e-3 of a face where the gradient jumps), SModelS's answer is whichever simplex SciPy's walk
reaches; such queries (and the rare ones in cells too crowded to scan) are *flagged* so that a
host-side caller can ask SciPy for them (the kernel itself stays free of host round-trips).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["MAX_CANDIDATES", "NEAR", "SimplexStack", "interpolate", "round_significant"]


def __dir__() -> list[str]:
    return __all__


ZERO = 1e-4  # |rotated coordinate| below this is "in the plane"
TOLERANCE = 1e-6  # barycentric tolerance of find_simplex
NEAR = 1e-3  # simplices holding a point within this are checked for another value
OFFPLANE_TOLERANCE = 0.05
MAX_CANDIDATES = 64  # most simplices of a cell tested at once (the chunk size M)
MAX_CHUNKS = 64  # chunks scanned at most; fuller cells flag their points
BLOCK = 32  # points per step of the scan beyond the first chunk


class SimplexStack(NamedTuple):
    """All triangulations of one dimension d, as flat arrays (a JAX pytree).

    Attributes:
        shift: (K, W) mean of each point set (W = widest original dimension, zero padded).
        rotation: (K, W, W) principal axes (zero padded).
        lower, cell: (K, d) origin and size of the bucket cells in rotated space.
        shape, strides: (K, d) cells per direction and flat-index strides.
        cell_base: (K,) first flat cell of each triangulation.
        cell_start: (C + 1,) start of each cell's list in ``members`` (CSR).
        members: global indices of the simplices whose bounding box touches each cell.
        transform: (S, d+1, d) barycentric transforms (SciPy's ``Delaunay.transform``).
        simplices: (S, d+1) vertex indices into the point set (hence into the grid's values).
        neighbors: (S, d+1) global index of the simplex opposite each vertex, -1 at the hull.
        slots: (M,) ``arange(M)``: its length is the number of a cell's simplices tested
            directly (static); points in fuller cells are walked.
    """

    shift: jax.Array
    rotation: jax.Array
    lower: jax.Array
    cell: jax.Array
    shape: jax.Array
    strides: jax.Array
    cell_base: jax.Array
    cell_start: jax.Array
    members: jax.Array
    transform: jax.Array
    simplices: jax.Array
    neighbors: jax.Array
    slots: jax.Array


# exact powers of ten, as NumPy's pow gives them
_POWERS = tuple(10.0**e for e in range(-330, 309)) + (float("inf"),) * 22


@jax.custom_jvp
def round_significant(values: jax.Array, digits: int = 6) -> jax.Array:
    """Round to ``digits`` significant digits (NaN and 0 kept), bit-equal to NumPy's
    ``round(v * 10**e) / 10**e`` (the powers of ten come from a table, not from ``pow``).
    Derivatives pass through as if unrounded."""
    ok = jnp.isfinite(values) & (values != 0)
    safe = jnp.where(ok, jnp.abs(values), 1.0)
    exponent = (digits - 1 - jnp.floor(jnp.log10(safe))).astype(int)
    scale = jnp.asarray(_POWERS, dtype=values.dtype)[jnp.clip(exponent + 330, 0, 660)]
    return jnp.where(ok, jnp.round(values * scale) / scale, values)


@round_significant.defjvp
def _round_significant_jvp(
    primals: tuple[jax.Array, int], tangents: tuple[jax.Array, ...]
) -> tuple[jax.Array, jax.Array]:
    values, digits = primals
    return round_significant(values, digits), tangents[0]


def _barycentric(transform: jax.Array, p: jax.Array) -> jax.Array:
    """(Q, d+1) barycentric coordinates of points p (Q, d) in simplices with ``transform``,
    summed in SciPy's order (unrolled over the few coordinates: XLA's CPU code for many tiny
    matrix products is several times slower)."""
    d = p.shape[1]
    diff = [p[:, j] - transform[:, d, j] for j in range(d)]
    head = [transform[:, i, 0] * diff[0] for i in range(d)]
    for i in range(d):
        for j in range(1, d):
            head[i] = head[i] + transform[:, i, j] * diff[j]
    last = 1.0 - head[0]
    for i in range(1, d):
        last = last - head[i]
    return jnp.stack([*head, last], axis=1)


def _rotate(centred: jax.Array, rotation: jax.Array) -> jax.Array:
    """(Q, W) points times their (Q, W, W) rotation, summed in a fixed order (a batched dot's
    order depends on the batch size, and a last-bit change can flip the 6-digit rounding of a
    value that falls on a tie)."""
    out = centred[:, :1] * rotation[:, 0, :]
    for i in range(1, centred.shape[1]):
        out = out + centred[:, i : i + 1] * rotation[:, i, :]
    return out


def _dot_rows(a: jax.Array, b: jax.Array) -> jax.Array:
    """Row-wise dot product of (Q, n) arrays, summed left to right (an XLA reduction's order,
    hence its last bit, depends on the array shape)."""
    out = a[:, 0] * b[:, 0]
    for i in range(1, a.shape[1]):
        out = out + a[:, i] * b[:, i]
    return out


def _cell_of(stack: SimplexStack, k: jax.Array, p: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Flat bucket cell of each point and whether the point is outside the bucket grid."""
    finite = jnp.isfinite(p).all(1)
    p = jnp.where(finite[:, None], p, 0.0)
    cell = jnp.floor((p - stack.lower[k]) / stack.cell[k]).astype(stack.shape.dtype)
    outside = ((cell < 0) | (cell >= stack.shape[k])).any(1) | ~finite
    cell = jnp.clip(cell, 0, stack.shape[k] - 1)
    return (cell * stack.strides[k]).sum(1) + stack.cell_base[k], outside


def _chunk(
    stack: SimplexStack, p: jax.Array, first: jax.Array, last: jax.Array, j: jax.Array | int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Chunk ``j`` (a number, or one per point; M = ``len(stack.slots)`` entries) of each
    point's cell list.

    Returns:
        (around, listed, coordinates): (Q, M) simplex indices, whether each slot holds a
        listed simplex, (Q, M, d+1) barycentric coordinates of the point in them (-inf for NaN).
    """
    m = stack.slots.shape[0]
    slot = first[:, None] + jnp.reshape(j, (-1, 1)) * m + stack.slots[None, :]
    listed = slot < last[:, None]
    around = stack.members[jnp.minimum(slot, stack.members.shape[0] - 1)]
    coordinates = _barycentric(
        stack.transform[around].reshape(-1, *stack.transform.shape[1:]), jnp.repeat(p, m, axis=0)
    ).reshape(p.shape[0], m, -1)
    return around, listed, jnp.where(jnp.isnan(coordinates), -jnp.inf, coordinates)


def _cell_range(
    stack: SimplexStack, k: jax.Array, p: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(first, last, chunks): each point's range in ``members`` (empty outside the bucket grid)
    and the number of chunks it spans, at most MAX_CHUNKS."""
    flat, outside = _cell_of(stack, k, p)
    first = stack.cell_start[flat]
    last = jnp.where(outside, first, stack.cell_start[flat + 1])
    m = stack.slots.shape[0]
    return first, last, jnp.minimum((last - first + m - 1) // m, MAX_CHUNKS)


def _scan_rest(
    pending: Callable[[jax.Array, Any], jax.Array],
    visit: Callable[[jax.Array, jax.Array, Any], Any],
    n: int,
    carry: Any,
) -> Any:
    """Visit the chunks after the first of the points that still need them, BLOCK points at a
    time (compacted, so that a few crowded cells do not make every point scan).

    ``pending(next_chunk, carry)`` says which points need their next chunk; ``visit(rows,
    chunk, carry)`` processes chunk ``chunk`` of points ``rows`` (index n = no point) and returns
    the new carry."""
    block = min(n, max(BLOCK, n // 16))  # (a batch of many models: more per step)

    def more(state: tuple[jax.Array, Any]) -> jax.Array:
        return pending(*state).any()

    def step(state: tuple[jax.Array, Any]) -> tuple[jax.Array, Any]:
        nxt, carry = state
        rows = jnp.nonzero(pending(nxt, carry), size=block, fill_value=n)[0]
        carry = visit(rows, nxt[jnp.minimum(rows, n - 1)], carry)
        return nxt.at[rows].add(1, mode="drop"), carry

    return jax.lax.while_loop(more, step, (jnp.ones(n, int), carry))[1]


def _best_of(around: jax.Array, listed: jax.Array, cn: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The listed simplex whose smallest barycentric coordinate is largest, and that value."""
    worst = jnp.where(listed, cn.min(2), -jnp.inf)
    best = worst.argmax(1)
    return (
        jnp.take_along_axis(around, best[:, None], 1)[:, 0],
        jnp.take_along_axis(worst, best[:, None], 1)[:, 0],
    )


def _locate(stack: SimplexStack, k: jax.Array, p: jax.Array) -> tuple[jax.Array, ...]:
    """(simplex, status, first chunk) per point: status 1 = inside ``simplex``, 2 = outside the
    hull, 0 = undecided (a cell listing more than MAX_CHUNKS x M simplices: flagged).

    Every simplex that can hold a point (within the tolerance) is listed in the point's bucket
    cell, so scanning the cell's list decides; most cells fit in the first chunk."""
    p = jax.lax.stop_gradient(p)  # (piecewise constant)
    first, last, chunks = _cell_range(stack, k, p)  # (empty for non-finite points)
    p = jnp.where(jnp.isfinite(p), p, 0.0)
    n = p.shape[0]
    around, listed, cn = _chunk(stack, p, first, last, 0)
    simplex, inside = _best_of(around, listed, cn)

    def pending(nxt: jax.Array, carry: tuple[jax.Array, jax.Array]) -> jax.Array:
        return (carry[1] < -TOLERANCE) & (nxt < chunks)

    def visit(rows: jax.Array, j: jax.Array, carry: tuple[jax.Array, jax.Array]) -> tuple:
        simplex, inside = carry
        r = jnp.minimum(rows, n - 1)
        s, w = _best_of(*_chunk(stack, p[r], first[r], last[r], j))
        better = w > inside[r]
        return (
            simplex.at[rows].set(jnp.where(better, s, simplex[r]), mode="drop"),
            inside.at[rows].set(jnp.where(better, w, inside[r]), mode="drop"),
        )

    simplex, inside = _scan_rest(pending, visit, n, (simplex, inside))
    found = inside >= -TOLERANCE
    unscanned = (last - first) > chunks * stack.slots.shape[0]
    status = jnp.where(found, 1, jnp.where(unscanned, 0, 2))
    return simplex, status, (around, listed, cn, first, last, chunks)


def _ambiguous(
    stack: SimplexStack,
    values: jax.Array,
    p: jax.Array,
    offsets: jax.Array,
    linear: jax.Array,
    active: jax.Array,
    located: tuple[jax.Array, ...],
) -> jax.Array:
    """Whether another simplex of the point's cell holds it within NEAR and gives another
    value there (flat simplices make SciPy's answer depend on its walk); ``active`` points only.
    """
    around, listed, cn, first, last, chunks = located
    n = p.shape[0]
    scale = 1e-9 * jnp.maximum(jnp.abs(linear), 1e-300)

    def other(rows: jax.Array, around: jax.Array, listed: jax.Array, cn: jax.Array) -> jax.Array:
        fn = (cn * values[offsets[rows][:, None, None] + stack.simplices[around]]).sum(2)
        near = listed & (cn >= -NEAR).all(2)
        differ = ~(jnp.abs(fn - linear[rows][:, None]) <= scale[rows][:, None])
        return (near & differ).any(1)

    jump = active & other(jnp.arange(n), around, listed, cn)

    def pending(nxt: jax.Array, jump: jax.Array) -> jax.Array:
        return active & ~jump & (nxt < chunks)

    def visit(rows: jax.Array, j: jax.Array, jump: jax.Array) -> jax.Array:
        r = jnp.minimum(rows, n - 1)
        found = other(r, *_chunk(stack, p[r], first[r], last[r], j))
        return jump.at[rows].set(jump[r] | found, mode="drop")

    return _scan_rest(pending, visit, n, jump)


def _project(
    stack: SimplexStack,
    values: jax.Array,
    k: jax.Array,
    p: jax.Array,
    offsets: jax.Array,
    check: bool = True,
) -> tuple[jax.Array, jax.Array]:
    """Interpolated value (NaN outside) and ambiguity flag of in-plane points p (Q, d);
    ``check=False`` skips the search for other simplices holding the point (only points whose
    cell was too crowded to scan are flagged)."""
    simplex, status, located = _locate(stack, k, p)
    p = jnp.where(jnp.isfinite(p), p, 0.0)
    # flat simplices have NaN transforms; no point is located in one, and zeros there keep a
    # reverse-mode derivative of the unlocated points (0 x NaN) from turning NaN
    transform = stack.transform[simplex]
    c = _barycentric(jnp.where(jnp.isfinite(transform), transform, 0.0), p)
    corner = values[offsets[:, None] + stack.simplices[simplex]]
    linear = _dot_rows(c, corner)
    f = jnp.where(status == 1, jnp.maximum(linear, corner.min(1)), jnp.nan)
    if not check:
        return f, status == 0
    jump = _ambiguous(stack, values, p, offsets, linear, status == 1, located)
    return f, jump | (status == 0)


def _offplane(
    stack: SimplexStack,
    values: jax.Array,
    k: jax.Array,
    base: jax.Array,
    rest: jax.Array,
    f: jax.Array,
    offsets: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """SModelS's off-plane acceptance of points with in-plane part ``base``, off-plane part
    ``rest`` and projected value ``f``: a gradient estimate must say that the projection changes
    the value by less than 5 % (the 5 % test itself decides; the shifted lookups are not checked
    for ambiguous simplices). Returns (accepted, flag)."""
    n, d = base.shape
    alpha = jnp.linalg.norm(rest, axis=1)
    alpha_safe = jnp.where(alpha > 0, alpha, 1.0)
    shifted = base[:, None, :] + alpha_safe[:, None, None] * jnp.eye(d)[None]
    fs, flag_s = _project(
        stack, values, jnp.repeat(k, d), shifted.reshape(-1, d), jnp.repeat(offsets, d),
        check=False,
    )
    fs, flag_s = fs.reshape(n, d), flag_s.reshape(n, d).any(1)
    grad = (fs - f[:, None]) / alpha_safe[:, None]
    norm = jnp.linalg.norm(grad, axis=1)
    step = (alpha_safe[:, None] * grad / jnp.where(norm > 0, norm, 1.0)[:, None]).sum(1)
    unit = jnp.zeros(d).at[d - 1].set(1.0)
    both, flag_b = _project(
        stack,
        values,
        jnp.concatenate([k, k]),
        jnp.concatenate([base + step[:, None] * unit, base - step[:, None] * unit]),
        jnp.concatenate([offsets, offsets]),
        check=False,
    )
    f_plus, f_minus = both[:n], both[n:]

    def rel(shifted_value: jax.Array) -> jax.Array:
        safe = jnp.where(f == 0, 1.0, f)
        return jnp.where(
            f == 0, jnp.where(shifted_value == 0, 0.0, 1.0), jnp.abs(shifted_value - f) / safe
        )

    error = jnp.where(jnp.isnan(f_minus), rel(f_plus), jnp.maximum(rel(f_plus), rel(f_minus)))
    accept = (error < OFFPLANE_TOLERANCE) & ~jnp.isnan(f_plus) & ~jnp.isnan(fs).any(1)
    return accept | (norm == 0), flag_s | flag_b[:n] | flag_b[n:]


def interpolate(
    stack: SimplexStack,
    values: jax.Array,
    k: jax.Array,
    x: jax.Array,
    offsets: jax.Array,
    *,
    rounded: bool = True,
) -> tuple[jax.Array, jax.Array]:
    """Grid values at query points, as SModelS interpolates them.

    Args:
        stack: the stacked triangulations of dimension d (``stack.lower.shape[1]``).
        values: all grid values, concatenated.
        k: (Q,) stack row (triangulation) of each query.
        x: (Q, W) query points in grid coordinates (masses, rescaled widths), zero padded.
        offsets: (Q,) start of each query's grid in ``values``.
        rounded: round to 6 significant digits as SModelS (static); False keeps the exact
            linear interpolation (the gradients' objective: no steps of 1e-6 in the values).

    Returns:
        (values, flags): NaN where SModelS gives no value; flags mark queries whose simplex
        choice is ambiguous (see the module docstring).
    """
    d = stack.lower.shape[1]
    rotated = _rotate(x - stack.shift[k], stack.rotation[k])
    base = rotated[:, :d]
    f, flag = _project(stack, values, k, base, offsets)
    off = ((jnp.abs(rotated) > ZERO).sum(1) > d) & jnp.isfinite(f)

    # off-plane points, a block at a time (a few per batch: the others do not pay for them);
    # the test only decides (its loop carries no derivative)
    n = x.shape[0]
    block = min(n, max(16, n // 8))
    held = jax.lax.stop_gradient((base, rotated[:, d:], f))

    def more(state: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
        return state[0].any()

    def step(state: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, ...]:
        remaining, reject, flag = state
        rows = jnp.nonzero(remaining, size=block, fill_value=n)[0]
        r = jnp.minimum(rows, n - 1)
        accept, flag_r = _offplane(stack, values, k[r], *(a[r] for a in held), offsets[r])
        return (
            remaining.at[rows].set(False, mode="drop"),
            reject.at[rows].set(~accept, mode="drop"),
            flag.at[rows].set(flag[r] | flag_r, mode="drop"),
        )

    _, reject, flag = jax.lax.while_loop(more, step, (off, jnp.zeros_like(off), flag))
    f = jnp.where(reject, jnp.nan, f)
    f = jnp.where(jnp.abs(f) < 100 * jnp.finfo(f.dtype).eps, 0.0, f)
    return (round_significant(f) if rounded else f), flag
