"""The likelihood curves of many results at once: -ln L_i(mu) at (result, mu) pairs.

The combiner and the critics ask for nll(mu) of tens to hundreds of likelihoods at a few mu
values each, many times per protomodel; one call per likelihood costs far more in dispatch than
in arithmetic. A :class:`CurveSet` groups the likelihoods by kind and answers a whole list of
(row, mu) pairs with one jitted call per kind:

* single signal regions and truncated Gaussians: elementwise functions of gathered parameters;
* simplified likelihoods: stacked per (padded number of regions, linear or skewed), the profile
  fit vmapped over the pairs;
* anything else (pyhf, user likelihoods): the likelihood's own ``nll``, one call per row.

Pair counts and stack sizes are padded to powers of two (few compiled shapes). The numbers are
those of the likelihoods' own ``nll`` (same functions, same x64 precision).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import numpy as np
from numpy.typing import ArrayLike

from protomodels.exceptions import ProtomodelsError
from protomodels.statistics import simplified, single_region, truncated_gaussian
from protomodels.statistics.likelihood import (
    SimplifiedLikelihood,
    SingleRegionLikelihood,
    TruncatedGaussianLikelihood,
)

__all__ = ["CurveSet", "CurveShapeError"]


def __dir__() -> list[str]:
    return __all__


class CurveShapeError(ProtomodelsError, ValueError):
    """A likelihood's ``nll(mu)`` did not return one value per mu."""


#: simplified likelihoods of one size are stacked in at least this many rows (one compiled
#: copy serves any number of them up to it)
_STACK_ROWS = 8
#: fitted profiles kept per simplified likelihood as warm starts
_KEPT = 64


def padded_length(n: int, least: int) -> int:
    """The smallest ``least`` x 4^k >= n: the batch lengths the kernels are compiled for (few
    lengths, so that a long walk meets no new shape)."""
    size = least
    while size < n:
        size *= 4
    return size


#: pair counts the curves are compiled for by :meth:`CurveSet.warm_up` (simplified fits:
#: the first two; single regions and truncated Gaussians: from 16 on)
WARM_LANES = (4, 16, 64, 256)


@jax.jit
def _single_region(
    mu: jax.Array, s: jax.Array, b: jax.Array, sigma: jax.Array, n: jax.Array
) -> jax.Array:
    return single_region.nll(mu, s, b, sigma, n)


@jax.jit
def _truncated_gaussian(mu: jax.Array, mu_hat: jax.Array, sigma: jax.Array) -> jax.Array:
    return -truncated_gaussian.log_likelihood(mu, mu_hat, sigma)


@partial(jax.jit, static_argnames=("skewed",))
def _simplified(
    mu: jax.Array,
    row: jax.Array,
    counts: jax.Array,
    stack: simplified.SimplifiedModel,
    theta: jax.Array,
    warm: jax.Array,
    skewed: bool,
) -> tuple[jax.Array, jax.Array]:
    def one(x: jax.Array, r: jax.Array, th: jax.Array, w: jax.Array) -> tuple:
        model = jax.tree_util.tree_map(lambda a: a[r], stack)
        return simplified.profiled_nll_from(x, counts[r], model, th, w, skewed=skewed)

    return jax.vmap(one)(mu, row, theta, warm)


class _Elementwise:
    """Likelihoods whose nll is an elementwise function of per-row parameters."""

    def __init__(self, rows: list[int], columns: list[np.ndarray]) -> None:
        self.rows = np.asarray(rows, dtype=np.int64)
        self.columns = columns


class _Stacked:
    """Simplified likelihoods of one padded size and kind, stacked (padding rows repeat 0)."""

    def __init__(self, rows: list[int], likelihoods: list[SimplifiedLikelihood]) -> None:
        self.rows = np.asarray(rows, dtype=np.int64)
        self.skewed = likelihoods[0].skewed
        size = max(_STACK_ROWS, 1 << max(len(likelihoods) - 1, 0).bit_length())
        chosen = likelihoods + [likelihoods[0]] * (size - len(likelihoods))
        fields = simplified.SimplifiedModel._fields
        self.stack = simplified.SimplifiedModel(
            *(np.stack([np.asarray(getattr(x.model, f)) for x in chosen]) for f in fields)
        )
        self.observed = np.stack([x.observed for x in chosen])
        self.background = np.stack([x.background for x in chosen])
        #: fitted profiles per (expected, local row): mu values and theta-hat, the starts of
        #: later fits at nearby mu (a warm start takes a few Newton steps instead of many)
        self.profiles: dict[tuple[bool, int], tuple[list[float], list[np.ndarray]]] = {}

    def starts(self, local: np.ndarray, mu: np.ndarray, expected: bool) -> tuple:
        """(theta, warm) per pair: the profile fitted at the nearest mu of the same row."""
        width = self.observed.shape[1]
        theta = np.zeros((len(mu), width))
        warm = np.zeros(len(mu), dtype=bool)
        for r in np.unique(local).tolist():
            known = self.profiles.get((expected, r))
            if known is None:
                continue
            at = np.flatnonzero(local == r)
            xs = np.asarray(known[0])
            nearest = np.abs(xs[None, :] - mu[at, None]).argmin(axis=1)
            theta[at] = np.stack(known[1])[nearest]
            warm[at] = True
        return theta, warm

    def remember(self, local: np.ndarray, mu: np.ndarray, theta: np.ndarray, ok: np.ndarray,
                 expected: bool) -> None:
        """Keep the fitted profiles (at most _KEPT per row: the mu grid of a search)."""
        for k in np.flatnonzero(ok).tolist():
            xs, ths = self.profiles.setdefault((expected, int(local[k])), ([], []))
            if len(xs) < _KEPT:
                xs.append(float(mu[k]))
                ths.append(theta[k])


class CurveSet:
    """nll of a fixed list of likelihoods at (row, mu) pairs, one call per kind.

    Args:
        likelihoods: objects with ``nll(mu, expected=False)`` (vectorised in mu); the known
            backends are batched, others are called row by row.
    """

    def __init__(self, likelihoods: Sequence[Any]) -> None:
        self.likelihoods = list(likelihoods)
        n = len(self.likelihoods)
        self._kind = np.full(n, -1, dtype=np.int64)  # -1: called row by row
        self._local = np.zeros(n, dtype=np.int64)
        sr: list[int] = []
        tg: list[int] = []
        sl: dict[tuple[int, bool], list[int]] = {}
        for i, like in enumerate(self.likelihoods):
            if type(like) is SingleRegionLikelihood:
                sr.append(i)
            elif type(like) is TruncatedGaussianLikelihood:
                tg.append(i)
            elif type(like) is SimplifiedLikelihood:
                sl.setdefault((int(like.observed.shape[0]), like.skewed), []).append(i)
        self._groups: list[_Elementwise | _Stacked] = []
        if sr:
            values = [self.likelihoods[i] for i in sr]
            self._add(
                _Elementwise(
                    sr,
                    [
                        np.array([getattr(x, f) for x in values], dtype=float)
                        for f in ("signal", "background", "background_error", "observed")
                    ],
                )
            )
        if tg:
            values = [self.likelihoods[i] for i in tg]
            self._add(
                _Elementwise(
                    tg,
                    [
                        np.array([x.mu_hat for x in values], dtype=float),
                        np.array([x.sigma_mu for x in values], dtype=float),
                    ],
                )
            )
        self._tg = len(self._groups) - 1 if tg else -2
        for rows in sl.values():
            self._add(_Stacked(rows, [self.likelihoods[i] for i in rows]))

    def _add(self, group: _Elementwise | _Stacked) -> None:
        self._kind[group.rows] = len(self._groups)
        self._local[group.rows] = np.arange(len(group.rows))
        self._groups.append(group)

    def __len__(self) -> int:
        return len(self.likelihoods)

    def nll(self, rows: ArrayLike, mu: ArrayLike, expected: bool = False) -> np.ndarray:
        """-ln L_rows[k](mu[k]) for every pair k (NaN where a likelihood gives none).

        Args:
            rows: (P,) indices into the likelihoods.
            mu: (P,) signal strengths.
            expected: the a priori expected likelihoods (counts replaced by backgrounds,
                truncated Gaussians centred at 0), as the backends' ``expected=True``.
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        mu = np.asarray(mu, dtype=float).reshape(-1)
        out = np.full(len(rows), np.nan)
        if not len(rows):
            return out
        kinds = self._kind[rows]
        with jax.enable_x64(True):
            for kind in np.unique(kinds).tolist():
                where = np.flatnonzero(kinds == kind)
                if kind < 0:
                    for i in np.unique(rows[where]).tolist():
                        at = where[rows[where] == i]
                        out[at] = self._own(i, mu[at], expected)
                    continue
                out[where] = self._evaluate(kind, self._local[rows[where]], mu[where], expected)
        return out

    def _own(self, i: int, mu: np.ndarray, expected: bool) -> np.ndarray:
        """Likelihood i's own nll (mu padded to a power of two: jitted backends see few
        shapes)."""
        size = 1 << max(len(mu) - 1, 0).bit_length()
        padded = np.concatenate([mu, np.full(size - len(mu), mu[-1])])
        values = np.asarray(self.likelihoods[i].nll(padded, expected=expected), dtype=float)
        values = values.reshape(-1)
        if values.shape != padded.shape:
            msg = (
                f"likelihood {i}: nll returned {values.shape[0]} values for {padded.shape[0]} "
                "mu values; nll(mu) must be vectorised over mu"
            )
            raise CurveShapeError(msg)
        return values[: len(mu)]

    def warm_up(self, lanes: Sequence[int] = WARM_LANES) -> int:
        """Compile every group's kernel for the pair counts in ``lanes`` (simplified fits up
        to 16 pairs) by evaluating them at mu = 1; returns the number of calls. Used when an
        evaluation is prepared, so that a walk rarely compiles on the way."""
        calls = 0
        with jax.enable_x64(True):
            for kind, group in enumerate(self._groups):
                fits = isinstance(group, _Stacked)
                for p in lanes:
                    if (fits and p > 16) or (not fits and p < 16):
                        continue
                    self._evaluate(kind, np.zeros(p, dtype=np.int64), np.ones(p), False)
                    calls += 1
        return calls

    def grid(self, rows: ArrayLike, mu: ArrayLike, expected: bool = False) -> np.ndarray:
        """(len(rows), len(mu)): every row at every mu."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        mu = np.asarray(mu, dtype=float).reshape(-1)
        values = self.nll(np.repeat(rows, len(mu)), np.tile(mu, len(rows)), expected)
        return values.reshape(len(rows), len(mu))

    def _evaluate(
        self, kind: int, local: np.ndarray, mu: np.ndarray, expected: bool
    ) -> np.ndarray:
        group = self._groups[kind]
        p = len(mu)
        # a profile fit costs per lane: its pairs are padded to a power of four (>= 4), not to
        # 16; few lengths, so that a long walk meets no new shape
        size = padded_length(p, 4 if isinstance(group, _Stacked) else 16)
        mu_p = np.concatenate([mu, np.zeros(size - p)])
        local_p = np.concatenate([local, np.zeros(size - p, dtype=np.int64)])
        if isinstance(group, _Stacked):
            counts = group.background if expected else group.observed
            theta, warm = group.starts(local_p, mu_p, expected)
            warm[p:] = False
            values, fitted = _simplified(
                mu_p, local_p, counts, group.stack, theta, warm, group.skewed
            )
            values = np.asarray(values)
            group.remember(local, mu, np.asarray(fitted)[:p], np.isfinite(values[:p]), expected)
        elif kind == self._tg:
            mu_hat, sigma = (c[local_p] for c in group.columns)
            if expected:
                mu_hat = np.zeros_like(mu_hat)
            values = _truncated_gaussian(mu_p, mu_hat, sigma)
        else:
            s, b, sigma, n = (c[local_p] for c in group.columns)
            values = _single_region(mu_p, s, b, sigma, b if expected else n)
        return np.asarray(values)[:p]
