"""The heaviest combination of results: an exact maximum-weight clique search.

A combination is a set of pairwise combinable candidates with at most one candidate per
analysis; its weight is the sum of the candidates' weights. Only candidates of positive weight
can raise a sum, so :func:`best_combination` solves the maximum-weight clique problem on them:

1. the graph is split into the components of its complement (two candidates in different
   components are always combinable, so the best clique is the union of the best clique of each
   component; ATLAS vs CMS and 8 vs 13 TeV make real graphs split this way);
2. each component is solved by branch and bound in the order of Östergård's weighted Cliquer
   (P. R. J. Östergård, Nordic J. Computing 8 (2001) 424): c(i), the best clique among the
   vertices from the i-th on, bounds every later branch, next to the sum of the remaining
   candidates' weights.

:func:`pathfinder_combination` reproduces what the reference builder computes instead
(SModelS/protomodels ``ptools/bamCreator.get_best_set``, PathFinder's ``WHDFS``): it adds
``|min weight| + 1`` to every weight when one is negative, so it returns the heaviest
combination of the *shifted* weights (a maximal clique, negative-weight candidates included), and
it only starts paths from the 50 heaviest candidates. With non-negative weights and at most 50
candidates both functions agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from protomodels.combiner.graph import CombinabilityError, analysis_base

__all__ = ["best_combination", "pathfinder_combination"]


def __dir__() -> list[str]:
    return __all__


# -- validation -----------------------------------------------------------------------------
def _as_inputs(
    weights: Sequence[float], combinable: np.ndarray, analyses: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1:
        msg = f"weights must be a 1-d sequence, got shape {w.shape}"
        raise CombinabilityError(msg)
    n = len(w)
    adj = np.asarray(combinable)
    if adj.shape != (n, n):
        msg = f"combinable must be a ({n}, {n}) bool matrix for {n} weights, got {adj.shape}"
        raise CombinabilityError(msg)
    if adj.dtype != bool:
        if not ((adj == 0) | (adj == 1)).all():
            msg = "combinable must hold booleans (or 0/1); convert it with matrix.astype(bool)"
            raise CombinabilityError(msg)
        adj = adj.astype(bool)
    if not np.array_equal(adj, adj.T):
        i, j = np.argwhere(adj != adj.T)[0]
        msg = f"combinable is not symmetric (entry [{i}, {j}] != [{j}, {i}]); symmetrise it"
        raise CombinabilityError(msg)
    adj = adj.copy()
    np.fill_diagonal(adj, False)
    if analyses is not None:
        if len(analyses) != n:
            msg = f"analyses has {len(analyses)} entries for {n} weights"
            raise CombinabilityError(msg)
        codes: dict[str, int] = {}
        ids = np.fromiter(
            (codes.setdefault(analysis_base(str(a)), len(codes)) for a in analyses), int, n
        )
        adj &= ids[:, None] != ids[None, :]
    return w, adj


def _bitmasks(adj: np.ndarray) -> list[int]:
    """Row i as an int whose bit j is adj[i, j]."""
    if adj.shape[0] == 0:
        return []
    packed = np.packbits(adj, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


# -- the core -------------------------------------------------------------------------------
def _co_components(nodes: int, nbr: list[int]) -> list[int]:
    """Components of the complement graph on ``nodes`` (bit masks)."""
    components = []
    remaining = nodes
    while remaining:
        low = remaining & -remaining
        remaining ^= low
        component = frontier = low
        while frontier:
            top = frontier & -frontier
            frontier ^= top
            strangers = remaining & ~nbr[top.bit_length() - 1]
            if strangers:
                remaining ^= strangers
                component |= strangers
                frontier |= strangers
        components.append(component)
    return components


def _cliquer(w: list[float], nbr: list[int], component: int) -> tuple[float, int]:
    """Heaviest clique inside ``component`` (weights > 0); vertices are taken in index order."""
    order = _bits(component)
    if len(order) == 1:
        return w[order[0]], component
    c: dict[int, float] = {}
    best = 0.0
    best_mask = 0
    stop = math.inf

    def expand(cand: int, weight: float, mask: int) -> bool:
        nonlocal best, best_mask
        if weight > best:
            best, best_mask = weight, mask
            if best >= stop:
                return True
        if not cand:
            return False
        total = 0.0
        rest = cand
        while rest:
            low = rest & -rest
            total += w[low.bit_length() - 1]
            rest ^= low
        while cand:
            if weight + total <= best:
                return False
            low = cand & -cand
            j = low.bit_length() - 1
            if weight + c[j] <= best:
                return False
            cand ^= low
            total -= w[j]
            if expand(cand & nbr[j], weight + w[j], mask | low):
                return True
        return False

    later = 0
    for v in reversed(order):
        stop = best + w[v]  # c(v) <= c(v + 1) + w(v): reaching it ends this level
        expand(nbr[v] & later, w[v], 1 << v)
        c[v] = best
        later |= 1 << v
    return best, best_mask


def _max_weight_clique(w: list[float], nbr: list[int], nodes: int) -> tuple[float, int]:
    total, mask = 0.0, 0
    for component in _co_components(nodes, nbr):
        weight, chosen = _cliquer(w, nbr, component)
        total += weight
        mask |= chosen
    return total, mask


class _CliqueSolver:
    """Bit masks of a fixed graph, for many heaviest-clique searches with different weights.

    Vertices are searched in index order; give them heaviest first (measured: the best order for
    the c(i) bound).
    """

    def __init__(self, adj: np.ndarray) -> None:
        self.nbr = _bitmasks(adj)

    def heaviest(self, weights: list[float]) -> tuple[float, int]:
        """(weight, bit mask) of the heaviest clique among the positive-weight vertices."""
        nodes = 0
        for i, x in enumerate(weights):
            if x > 0:
                nodes |= 1 << i
        if not nodes:
            return 0.0, 0
        return _max_weight_clique(weights, self.nbr, nodes)


def _positive_subproblem(
    w: np.ndarray, adj: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, list[float], list[int]]:
    """Local problem on the kept nodes, heaviest first (measured: the best order for c(i))."""
    index = np.flatnonzero(keep)
    index = index[np.argsort(-w[index], kind="stable")]
    sub = adj[np.ix_(index, index)]
    return index, [float(x) for x in w[index]], _bitmasks(sub)


# -- public ---------------------------------------------------------------------------------
def best_combination(
    weights: Sequence[float], combinable: np.ndarray, analyses: Sequence[str]
) -> tuple[tuple[int, ...], float]:
    """The heaviest set of pairwise combinable candidates, at most one per analysis (exact).

    Args:
        weights: one weight per candidate (e.g. 2 [ln L(mu) - ln L(0)]); only positive ones
            can enter (NaN counts as not positive).
        combinable: (n, n) symmetric bool matrix; the diagonal is ignored.
        analyses: analysis id of each candidate; ids equal after :func:`analysis_base` are one
            analysis and never combined.

    Returns:
        (sorted candidate indices, total weight); ``((), 0.0)`` when no weight is positive.

    Raises:
        CombinabilityError: inconsistent shapes, a non-boolean or asymmetric matrix.

    >>> best_combination([3.0, 2.0, 2.0], [[0, 0, 0], [0, 0, 1], [0, 1, 0]], ["A", "B", "C"])
    ((1, 2), 4.0)
    """
    w, adj = _as_inputs(weights, combinable, analyses)
    keep = w > 0
    if not keep.any():
        return (), 0.0
    index, local_w, nbr = _positive_subproblem(w, adj, keep)
    _, mask = _max_weight_clique(local_w, nbr, (1 << len(index)) - 1)
    chosen = tuple(sorted(int(index[i]) for i in _bits(mask)))
    return chosen, math.fsum(float(w[i]) for i in chosen)


def pathfinder_combination(
    weights: Sequence[float],
    combinable: np.ndarray,
    analyses: Sequence[str] | None = None,
    *,
    runs: int = 50,
) -> tuple[tuple[int, ...], float]:
    """The combination the reference builder's PathFinder search returns (see module docs).

    Weights are shifted by ``|min| + 1`` when one is negative; the heaviest combination of the
    shifted weights whose heaviest member is among the ``runs`` heaviest candidates is chosen;
    the returned total is the sum of the unshifted weights. Candidates with NaN weight are left
    out; with no negative weight, zero-weight candidates are never added (PathFinder only keeps
    strictly heavier paths). Ties may be broken differently from PathFinder.

    Returns:
        (sorted candidate indices, total unshifted weight).
    """
    w, adj = _as_inputs(weights, combinable, analyses)
    finite = np.isfinite(w)
    if not finite.any():
        return (), 0.0
    low = float(w[finite].min())
    offset = abs(low) + 1.0 if low < 0 else 0.0
    shifted = np.where(finite, w + offset, 0.0)
    keep = shifted > 0
    if not keep.any():
        return (), 0.0
    index, local_w, nbr = _positive_subproblem(shifted, adj, keep)
    m = len(index)
    everything = (1 << m) - 1
    if m <= runs:
        _, mask = _max_weight_clique(local_w, nbr, everything)
    else:
        rank = np.argsort(-np.asarray(local_w), kind="stable")  # PathFinder's run order
        best, mask, before = -math.inf, 0, 0
        for source in (int(s) for s in rank[:runs]):
            allowed = nbr[source] & everything & ~before
            weight, chosen = _max_weight_clique(local_w, nbr, allowed) if allowed else (0.0, 0)
            weight += local_w[source]
            if weight > best:
                best, mask = weight, chosen | (1 << source)
            before |= 1 << source
    chosen = tuple(sorted(int(index[i]) for i in _bits(mask)))
    return chosen, math.fsum(float(w[i]) for i in chosen)
