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
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from protomodels.exceptions import ProtomodelsError
from protomodels.shapes import padded_length
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
#: relative step of the central differences of likelihoods without a derivative
_STEP = 1e-5


#: pair counts the curves are compiled for by :meth:`CurveSet.warm_up` (simplified fits:
#: the first two; single regions and truncated Gaussians: from 16 on); larger batches are
#: evaluated in chunks of the largest, so that no other shape is ever compiled
WARM_LANES = (4, 16, 64, 256, 1024)
_MOST_FIT_LANES = 16
_MOST_LANES = 1024


@jax.jit
def _single_region(
    mu: jax.Array, s: jax.Array, b: jax.Array, sigma: jax.Array, n: jax.Array
) -> tuple[jax.Array, jax.Array]:
    return jax.jvp(lambda x: single_region.nll(x, s, b, sigma, n), (mu,), (jnp.ones_like(mu),))


@jax.jit
def _truncated_gaussian(
    mu: jax.Array, mu_hat: jax.Array, sigma: jax.Array
) -> tuple[jax.Array, jax.Array]:
    return jax.jvp(
        lambda x: -truncated_gaussian.log_likelihood(x, mu_hat, sigma), (mu,), (jnp.ones_like(mu),)
    )


@partial(jax.jit, static_argnames=("skewed",))
def _simplified(
    mu: jax.Array,
    row: jax.Array,
    expected: jax.Array,
    observed: jax.Array,
    background: jax.Array,
    stack: simplified.SimplifiedModel,
    theta: jax.Array,
    warm: jax.Array,
    skewed: bool,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    def one(x: jax.Array, r: jax.Array, e: jax.Array, th: jax.Array, w: jax.Array) -> tuple:
        model = jax.tree_util.tree_map(lambda a: a[r], stack)
        counts = jnp.where(e, background[r], observed[r])
        return simplified.profiled_nll_from(x, counts, model, th, w, skewed=skewed)

    return jax.vmap(one)(mu, row, expected, theta, warm)


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

    def starts(self, local: np.ndarray, mu: np.ndarray, expected: np.ndarray) -> tuple:
        """(theta, warm) per pair: the profile fitted at the nearest mu of the same row and
        data (observed or expected)."""
        width = self.observed.shape[1]
        theta = np.zeros((len(mu), width))
        warm = np.zeros(len(mu), dtype=bool)
        for e, r in sorted(set(zip(expected.tolist(), local.tolist(), strict=True))):
            known = self.profiles.get((e, r))
            if known is None:
                continue
            at = np.flatnonzero((local == r) & (expected == e))
            xs = np.asarray(known[0])
            nearest = np.abs(xs[None, :] - mu[at, None]).argmin(axis=1)
            theta[at] = np.stack(known[1])[nearest]
            warm[at] = True
        return theta, warm

    def remember(
        self,
        local: np.ndarray,
        mu: np.ndarray,
        theta: np.ndarray,
        ok: np.ndarray,
        expected: np.ndarray,
    ) -> None:
        """Keep the fitted profiles (at most _KEPT per row and data: the mu grid of a
        search)."""
        for k in np.flatnonzero(ok).tolist():
            xs, ths = self.profiles.setdefault((bool(expected[k]), int(local[k])), ([], []))
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

    def nll(self, rows: ArrayLike, mu: ArrayLike, expected: bool | ArrayLike = False) -> np.ndarray:
        """-ln L_rows[k](mu[k]) for every pair k (NaN where a likelihood gives none).

        Args:
            rows: (P,) indices into the likelihoods.
            mu: (P,) signal strengths.
            expected: the a priori expected likelihoods (counts replaced by backgrounds,
                truncated Gaussians centred at 0), as the backends' ``expected=True``; one flag
                for all pairs or one per pair.
        """
        return self.nll_and_slope(rows, mu, expected, slopes=False)[0]

    def nll_and_slope(
        self,
        rows: ArrayLike,
        mu: ArrayLike,
        expected: bool | ArrayLike = False,
        *,
        slopes: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(nll, d nll / d mu) at every pair, as :meth:`nll`.

        The batched kinds give the exact derivative (of the closed forms; of a profiled
        simplified likelihood the partial derivative at the profiled nuisances, by the envelope
        theorem); other likelihoods a central finite difference of their own ``nll``
        (``slopes=False`` skips it, the slopes are then NaN there).
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        mu = np.asarray(mu, dtype=float).reshape(-1)
        flags = np.broadcast_to(np.asarray(expected, dtype=bool), rows.shape)
        out = np.full(len(rows), np.nan)
        slope = np.full(len(rows), np.nan)
        if not len(rows):
            return out, slope
        kinds = self._kind[rows]
        with jax.enable_x64(True):
            for kind in np.unique(kinds).tolist():
                where = np.flatnonzero(kinds == kind)
                if kind >= 0:
                    out[where], slope[where] = self._evaluate(
                        kind, self._local[rows[where]], mu[where], flags[where]
                    )
                    continue
                pairs = zip(rows[where].tolist(), flags[where].tolist(), strict=True)
                for i, e in sorted(set(pairs)):
                    at = where[(rows[where] == i) & (flags[where] == e)]
                    out[at], slope[at] = self._own(i, mu[at], e, slopes)
        return out, slope

    def _own(
        self, i: int, mu: np.ndarray, expected: bool, slopes: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Likelihood i's own nll (mu padded to a power of two: jitted backends see few
        shapes), with central differences at mu -+ h as slopes (one-sided at mu = 0)."""
        p = len(mu)
        if slopes:
            h = _STEP * np.maximum(1.0, np.abs(mu))
            lower = np.maximum(mu - h, 0.0)
            mu = np.concatenate([mu, lower, mu + h])
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
        if not slopes:
            return values[:p], np.full(p, np.nan)
        down, up = values[p : 2 * p], values[2 * p : 3 * p]
        return values[:p], (up - down) / (mu[2 * p : 3 * p] - mu[p : 2 * p])

    def warm_up(self, lanes: Sequence[int] = WARM_LANES) -> int:
        """Compile every group's kernel for the pair counts in ``lanes`` (simplified fits up
        to 16 pairs) by evaluating them at mu = 1; returns the number of calls. Used when an
        evaluation is prepared, so that a walk rarely compiles on the way."""
        calls = 0
        with jax.enable_x64(True):
            for kind, group in enumerate(self._groups):
                fits = isinstance(group, _Stacked)
                for p in lanes:
                    if (fits and p > _MOST_FIT_LANES) or (not fits and p < 16):
                        continue
                    self._evaluate(
                        kind, np.zeros(p, dtype=np.int64), np.ones(p), np.zeros(p, dtype=bool)
                    )
                    calls += 1
        return calls

    def grid(self, rows: ArrayLike, mu: ArrayLike, expected: bool = False) -> np.ndarray:
        """(len(rows), len(mu)): every row at every mu."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        mu = np.asarray(mu, dtype=float).reshape(-1)
        values = self.nll(np.repeat(rows, len(mu)), np.tile(mu, len(rows)), expected)
        return values.reshape(len(rows), len(mu))

    def _evaluate(
        self, kind: int, local: np.ndarray, mu: np.ndarray, expected: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(nll, slope) of the pairs of one group, in chunks of at most the largest warmed
        length."""
        most = _MOST_FIT_LANES if isinstance(self._groups[kind], _Stacked) else _MOST_LANES
        if len(mu) <= most:
            return self._chunk(kind, local, mu, expected)
        parts = [
            self._chunk(kind, local[k : k + most], mu[k : k + most], expected[k : k + most])
            for k in range(0, len(mu), most)
        ]
        return np.concatenate([v for v, _ in parts]), np.concatenate([d for _, d in parts])

    def _chunk(
        self, kind: int, local: np.ndarray, mu: np.ndarray, expected: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        group = self._groups[kind]
        p = len(mu)
        # a profile fit costs per lane: its pairs are padded to a power of four (>= 4), not to
        # 16; few lengths, so that a long walk meets no new shape
        size = padded_length(p, 4 if isinstance(group, _Stacked) else 16)
        # padding lanes repeat the first pair: a vmapped fit iterates until its slowest lane
        # has converged, and a copy converges with its original (a cold fit in the padding
        # took twice the time of the warm-started pairs); the real lanes are unchanged
        fill = np.zeros(size - p, dtype=np.int64)
        mu_p = np.concatenate([mu, mu[fill]])
        local_p = np.concatenate([local, local[fill]])
        flags = np.concatenate([expected, expected[fill]])
        if isinstance(group, _Stacked):
            theta, warm = group.starts(local_p, mu_p, flags)
            values, slopes, fitted = _simplified(
                mu_p,
                local_p,
                flags,
                group.observed,
                group.background,
                group.stack,
                theta,
                warm,
                group.skewed,
            )
            values = np.asarray(values)
            group.remember(local, mu, np.asarray(fitted)[:p], np.isfinite(values[:p]), expected)
        elif kind == self._tg:
            mu_hat, sigma = (c[local_p] for c in group.columns)
            values, slopes = _truncated_gaussian(mu_p, np.where(flags, 0.0, mu_hat), sigma)
        else:
            s, b, sigma, n = (c[local_p] for c in group.columns)
            values, slopes = _single_region(mu_p, s, b, sigma, np.where(flags, b, n))
        return np.asarray(values)[:p], np.asarray(slopes)[:p]
