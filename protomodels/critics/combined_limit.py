"""95 % CL upper limit on a common signal strength of several uncorrelated likelihoods.

SModelS 3 ``TheoryPredictionsCombiner`` (``statistics/analysesCombinations.py``;
``docs/critics.md`` §2): the combined likelihood is the product of the analyses'
likelihoods, mu >= 0, and the limit is the asymptotic CLs of arXiv:1007.1727 (q-tilde
formulas, ``docs/statistics.md`` §5) with the Asimov terms taken from the expected likelihoods. The
combination's r is then 1 / mu_UL. Works on any objects with a vectorised
``nll(mu, expected=False)``.

The searches use the slopes of the summed nll (:meth:`CurveSet.nll_and_slope`: exact for the
batched kinds, central differences otherwise), so that each step is one batched evaluation of
all members, for the data and the expected data at once:

1. mu-hat: 0 where the summed nll rises at 0, else the root of its slope (a safeguarded Newton
   search on a bracket: the members' own mu-hat, or doubled from 1);
2. the limit: the safeguarded Newton search of ln CLs(mu) = ln 0.05 of
   :func:`protomodels.statistics.cls.search_step`, started from the Gaussian limit with the
   width read off the expected curve at mu = 0 and 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from protomodels.statistics import cls as asymptotic
from protomodels.statistics.curves import CurveSet

__all__ = ["NllFunction", "combined_upper_limit", "fit_mu", "warm_up"]


def __dir__() -> list[str]:
    return __all__


_MU_CEILING = 1e9
_RTOL = 1e-8
_MAX_STEPS = 80
_ALPHA = 0.05
#: relative step of the finite difference of slopes (the curvature of Newton's step)
_CURVATURE_STEP = 1e-6
#: tolerance of mu-hat, relative to the bracket's upper end (or 1)
_ROOT_XTOL = 1e-8


class NllFunction(Protocol):
    """A likelihood in the signal strength: ``nll(mu, expected)`` = -ln L, vectorised in mu."""

    def nll(self, mu: ArrayLike, expected: bool = False) -> np.ndarray: ...


def _curves(likelihoods: Sequence[NllFunction] | CurveSet) -> CurveSet:
    return likelihoods if isinstance(likelihoods, CurveSet) else CurveSet(likelihoods)


class _Sum:
    """The summed nll of all members and its slope at a few (mu, expected) points per call."""

    def __init__(self, curves: CurveSet) -> None:
        self.curves = curves
        self.calls = 0

    def __call__(self, mu: ArrayLike, expected: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """(sum of nll, sum of slopes) at each point."""
        mu = np.atleast_1d(np.asarray(mu, dtype=float))
        flags = np.broadcast_to(np.asarray(expected, dtype=bool), mu.shape)
        n = len(self.curves)
        self.calls += 1
        values, slopes = self.curves.nll_and_slope(
            np.tile(np.arange(n), len(mu)), np.repeat(mu, n), np.repeat(flags, n)
        )
        return values.reshape(len(mu), n).sum(axis=1), slopes.reshape(len(mu), n).sum(axis=1)


def _minimum(
    total: _Sum,
    expected: bool,
    at_zero: tuple[float, float],
    bracket: tuple[float, float] | None,
) -> tuple[float, float]:
    """(mu-hat >= 0, nll there) of a summed nll with (value, slope) ``at_zero``: 0 where the
    nll rises at 0, else the root of the slope (bracketed by the bracket's upper end, or
    doubled from 1 until the slope is >= 0; then :func:`_root_of_slope`). A slope that stays
    negative up to the ceiling gives inf."""
    value0, slope0 = at_zero
    if not slope0 < 0:
        return 0.0, value0
    lo, s_lo = 0.0, slope0
    hi = bracket[1] if bracket is not None and bracket[1] > 0 else 1.0
    while True:
        values, slopes = total(hi, expected)
        v_hi, s_hi = float(values[0]), float(slopes[0])
        if s_hi >= 0:
            break
        if not np.isfinite(s_hi) or hi > _MU_CEILING:
            return np.inf, -np.inf
        lo, s_lo, hi = hi, s_hi, 2.0 * hi
    if s_hi == 0:
        return hi, v_hi
    return _root_of_slope(total, expected, (lo, s_lo), (hi, s_hi))


def _root_of_slope(
    total: _Sum, expected: bool, low: tuple[float, float], high: tuple[float, float]
) -> tuple[float, float]:
    """(mu, nll) at the root of the summed slope in [low, high] ((mu, slope) pairs with
    slopes < 0 and > 0), to 1e-8 of the bracket's scale (finer is below the noise of profiled
    slopes, ~1e-8; the nll at mu-hat is then exact to ~1e-15).

    Safeguarded Newton: each call evaluates the slope at mu and at mu + h (the second lane
    costs next to nothing in a batched evaluation); their difference gives the curvature, the
    signs shrink the bracket, and a step leaving the bracket is replaced by bisection. Three
    to five calls in a walk, where Brent's method on the slope alone took about ten.
    """
    (lo, s_lo), (hi, s_hi) = low, high
    xtol = _ROOT_XTOL * max(1.0, hi)
    mu = lo - s_lo * (hi - lo) / (s_hi - s_lo)  # the secant's root
    for _ in range(_MAX_STEPS):
        h = _CURVATURE_STEP * max(1.0, mu)
        values, slopes = total([mu, mu + h], [expected, expected])
        slope = float(slopes[0])
        if slope == 0:
            return mu, float(values[0])
        if slope < 0:
            lo = mu
            if slopes[1] > 0:
                hi = min(hi, mu + h)
        elif slope > 0:
            hi = mu
        curvature = (float(slopes[1]) - slope) / h
        nxt = mu - slope / curvature if curvature > 0 else np.nan
        small = abs(nxt - mu) <= xtol
        if small or hi - lo <= xtol:
            return mu, float(values[0])
        mu = nxt if lo < nxt < hi else 0.5 * (lo + hi)
    return mu, float(total(mu, expected)[0][0])


def fit_mu(
    likelihoods: Sequence[NllFunction] | CurveSet,
    *,
    expected: bool = False,
    bracket: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """(mu-hat >= 0, nll at mu-hat) of the summed nll: 0 where it rises at mu = 0, else the
    root of its slope, bracketed by ``bracket`` (e.g. the members' own mu-hat: the maximum
    of a sum of unimodal curves lies between theirs) or by doubling from 1."""
    total = _Sum(_curves(likelihoods))
    values, slopes = total(0.0, expected)
    return _minimum(total, expected, (float(values[0]), float(slopes[0])), bracket)


@partial(jax.jit, static_argnames=("rtol", "alpha"))
def _newton(
    nll: jax.Array,
    dnll: jax.Array,
    nll_min: jax.Array,
    mu: jax.Array,
    lo: jax.Array,
    hi: jax.Array,
    sigma: jax.Array,
    rtol: float,
    alpha: float,
) -> tuple[jax.Array, ...]:
    g, slope = asymptotic.log_cls_and_slope(nll, dnll, nll_min, alpha)
    return (*asymptotic.search_step(mu, lo, hi, g, slope, sigma, rtol), g)


@partial(jax.jit, static_argnames=("alpha",))
def _first_guess(mu_hat: jax.Array, sigma: jax.Array, alpha: float) -> jax.Array:
    return asymptotic.first_guess(mu_hat, sigma, alpha)


def warm_up() -> None:
    """Compile the search's two small kernels (scalars: one shape each)."""
    with jax.enable_x64(True):
        x = jnp.ones(2)
        one = jnp.ones(())
        _newton(x, -x, 0 * x, one, 0 * one, jnp.inf * one, one, _RTOL, _ALPHA)
        _first_guess(one, one, _ALPHA)


def combined_upper_limit(
    likelihoods: Sequence[NllFunction] | CurveSet, *, expected: bool = False, cl: float = 0.95
) -> float | None:
    """Upper limit on mu of the product of the likelihoods (None if no limit is found).

    Args:
        likelihoods: objects with ``nll(mu, expected)`` (or their
            :class:`~protomodels.statistics.curves.CurveSet`).
        expected: a-priori expected limit (the expected likelihoods play the data).
        cl: confidence level.
    """
    if not len(likelihoods):
        msg = "combined_upper_limit needs at least one likelihood"
        raise ValueError(msg)
    alpha = round(1.0 - cl, 12)
    total = _Sum(_curves(likelihoods))
    # data and expected data at mu = 0 and 1: both minima's starts and the expected width
    values, slopes = total([0.0, 0.0, 1.0], [expected, True, True])
    bracket = None if expected else _members_bracket(total.curves)
    mu_hat, nll_hat = _minimum(total, expected, (values[0], slopes[0]), bracket)
    mu_hat_a, nll_hat_a = _minimum(total, True, (values[1], slopes[1]), None)
    if not (np.isfinite(mu_hat) and np.isfinite(mu_hat_a)):
        return None
    rise = 2.0 * (values[2] - nll_hat_a)
    sigma = max(abs(1.0 - mu_hat_a), 1e-3) / np.sqrt(rise) if rise > 0 else max(mu_hat, 1.0)
    nll_min = np.array([nll_hat, nll_hat_a])
    with jax.enable_x64(True):
        mu = float(_first_guess(mu_hat, sigma, alpha))
        lo, hi = mu_hat, np.inf
        for _ in range(_MAX_STEPS):
            nll, dnll = total([mu, mu], [expected, True])
            step = _newton(nll, dnll, nll_min, mu, lo, hi, sigma, _RTOL, alpha)
            nxt, lo, hi, done, g = (float(x) for x in step)
            if not np.isfinite(g):
                return None
            if done:
                return nxt
            if lo > _MU_CEILING:
                return None
            mu = nxt
    return None


def _members_bracket(curves: CurveSet) -> tuple[float, float] | None:
    """[min, max] of the members' own observed mu-hat (clipped at 0): the maximum of a sum of
    unimodal curves lies between their maxima. None when a member's mu-hat is unknown."""
    values = [getattr(like, "mu_hat", None) for like in curves.likelihoods]
    if not values or any(v is None or not np.isfinite(v) for v in values):
        return None
    clipped = [max(float(v), 0.0) for v in values]
    return min(clipped), max(clipped)
