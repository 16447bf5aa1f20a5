"""95 % CL upper limit on a common signal strength of several uncorrelated likelihoods.

SModelS 3 ``TheoryPredictionsCombiner`` (``statistics/analysesCombinations.py``;
``docs/statistics.md`` §7): the combined likelihood is the product of the analyses'
likelihoods, mu >= 0, and the limit is the asymptotic CLs of arXiv:1007.1727 (q-tilde
formulas, as in §4 step 5) with the Asimov terms taken from the expected likelihoods. The
combination's r is then 1 / mu_UL. Works on any objects with a vectorised
``nll(mu, expected=False)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

from protomodels.statistics.curves import CurveSet

__all__ = ["NllFunction", "cls", "combined_nll", "combined_upper_limit", "fit_mu"]


def __dir__() -> list[str]:
    return __all__


_MU_CEILING = 1e9
_GRID = 129
_ZOOM_POINTS = 16
_ZOOM_ROUNDS = 10


class NllFunction(Protocol):
    """A likelihood in the signal strength: ``nll(mu, expected)`` = -ln L, vectorised in mu."""

    def nll(self, mu: ArrayLike, expected: bool = False) -> np.ndarray: ...


def _curves(likelihoods: Sequence[NllFunction] | CurveSet) -> CurveSet:
    return likelihoods if isinstance(likelihoods, CurveSet) else CurveSet(likelihoods)


def combined_nll(
    likelihoods: Sequence[NllFunction] | CurveSet, mu: ArrayLike, *, expected: bool = False
) -> np.ndarray:
    """Sum of the nll's at mu (observed, or a-priori expected data), one batched evaluation
    (:class:`~protomodels.statistics.curves.CurveSet`)."""
    curves = _curves(likelihoods)
    mu = np.asarray(mu, dtype=float)
    rows = np.arange(len(curves))
    return curves.grid(rows, mu.reshape(-1), expected=expected).sum(axis=0).reshape(mu.shape)


def _zoom(
    f: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, best: tuple[float, float]
) -> tuple[float, float]:
    """Minimise f on [lo, hi] by vectorised grids, each round zooming on the best point
    (starting from ``best`` = (mu, f(mu)))."""
    best_mu, best_f = best
    for _ in range(_ZOOM_ROUNDS):
        if hi - lo <= 1e-12 * max(1.0, abs(best_mu)):
            break
        mu = np.linspace(lo, hi, _ZOOM_POINTS)
        values = f(mu)
        k = int(np.argmin(values))
        if values[k] < best_f:
            best_mu, best_f = float(mu[k]), float(values[k])
        step = (hi - lo) / (_ZOOM_POINTS - 1)
        lo, hi = max(lo, best_mu - step), min(hi, best_mu + step)
    return best_mu, best_f


def fit_mu(
    likelihoods: Sequence[NllFunction] | CurveSet, *, expected: bool = False
) -> tuple[float, float]:
    """(mu-hat >= 0, nll at mu-hat) of the summed nll: bracket, grid, then zoom."""
    curves = _curves(likelihoods)

    def f(mu: np.ndarray) -> np.ndarray:
        return combined_nll(curves, mu, expected=expected)

    hi = 1.0
    while hi < _MU_CEILING:
        half, full = f(np.array([0.5 * hi, hi]))
        if not full < half:
            break
        hi *= 2.0
    grid = np.linspace(0.0, hi, _GRID)
    values = f(grid)
    i = int(np.argmin(values))
    lo_b, hi_b = grid[max(i - 1, 0)], grid[min(i + 1, _GRID - 1)]
    return _zoom(f, float(lo_b), float(hi_b), (float(grid[i]), float(values[i])))


def cls(q: ArrayLike, q_asimov: ArrayLike) -> np.ndarray:
    """CLs from the observed and Asimov q-tilde (arXiv:1007.1727, eqs. 65-66)."""
    q = np.maximum(np.asarray(q, dtype=float), 0.0)
    qa = np.maximum(np.asarray(q_asimov, dtype=float), 0.0)
    sq, sqa = np.sqrt(q), np.sqrt(np.maximum(qa, 1e-300))
    # where qa ~ 0 both statistics are rounding noise and the first branch (CLs -> 1) holds
    first = (qa >= q) | (qa < 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        clsb = np.where(first, 1 - ndtr(sq), 1 - ndtr((q + qa) / (2 * sqa)))
        clb = np.where(first, ndtr(sqa - sq), 1 - ndtr((q - qa) / (2 * sqa)))
        return np.where(clb > 0, clsb / np.where(clb > 0, clb, 1.0), 0.0)


def _root(
    f: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, *, rtol: float = 1e-9
) -> float:
    """A root of f (f(lo) > 0 >= f(hi)) by vectorised grids: each round keeps the first
    interval where f changes sign (as a bisection would, with 15 points per round)."""
    while hi - lo > rtol * max(1.0, abs(hi)):
        mu = np.linspace(lo, hi, _ZOOM_POINTS)
        values = f(mu)
        below = np.flatnonzero(values <= 0)
        k = int(below[0]) if len(below) else _ZOOM_POINTS - 1
        if k == 0:
            return float(mu[0])
        lo, hi = float(mu[k - 1]), float(mu[k])
    return 0.5 * (lo + hi)


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
    curves = _curves(likelihoods)
    mu_hat, nll_hat = fit_mu(curves, expected=expected)
    mu_hat_a, nll_hat_a = fit_mu(curves, expected=True)
    alpha = 1.0 - cl

    def excess(mu: np.ndarray) -> np.ndarray:
        q = 2.0 * (combined_nll(curves, mu, expected=expected) - nll_hat)
        qa = 2.0 * (combined_nll(curves, mu, expected=True) - nll_hat_a)
        return cls(q, qa) - alpha

    lo = mu_hat
    if float(excess(np.array([lo]))[0]) <= 0:
        return None
    step = max(mu_hat, mu_hat_a, 1.0)
    hi = lo + step
    while float(excess(np.array([hi]))[0]) > 0:
        step *= 2.0
        hi = lo + step
        if hi > _MU_CEILING:
            return None
    return _root(excess, lo, hi)
