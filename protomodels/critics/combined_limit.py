"""95 % CL upper limit on a common signal strength of several uncorrelated likelihoods.

SModelS 3 ``TheoryPredictionsCombiner`` (``statistics/analysesCombinations.py``;
``docs/statistics.md`` §7): the combined likelihood is the product of the analyses'
likelihoods, mu >= 0, and the limit is the asymptotic CLs of arXiv:1007.1727 (q-tilde
formulas, as in §4 step 5) with the Asimov terms taken from the expected likelihoods. The
combination's r is then 1 / mu_UL. Works on any objects with a vectorised
``nll(mu, expected=False)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq, minimize_scalar
from scipy.special import ndtr

__all__ = ["NllFunction", "cls", "combined_nll", "combined_upper_limit", "fit_mu"]


def __dir__() -> list[str]:
    return __all__


_MU_CEILING = 1e9
_GRID = 129


class NllFunction(Protocol):
    """A likelihood in the signal strength: ``nll(mu, expected)`` = -ln L, vectorised in mu."""

    def nll(self, mu: ArrayLike, expected: bool = False) -> np.ndarray: ...


def combined_nll(
    likelihoods: Sequence[NllFunction], mu: ArrayLike, *, expected: bool = False
) -> np.ndarray:
    """Sum of the nll's at mu (observed, or a-priori expected data)."""
    mu = np.asarray(mu, dtype=float)
    total = np.zeros_like(mu)
    for likelihood in likelihoods:
        value = np.asarray(likelihood.nll(mu, expected=expected), dtype=float)
        total = total + value.reshape(mu.shape)
    return total


def fit_mu(likelihoods: Sequence[NllFunction], *, expected: bool = False) -> tuple[float, float]:
    """(mu-hat >= 0, nll at mu-hat) of the summed nll: bracket, grid, then a bounded refinement."""

    def f(mu: ArrayLike) -> np.ndarray:
        return combined_nll(likelihoods, mu, expected=expected)

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
    best_mu, best_nll = float(grid[i]), float(values[i])
    refined = minimize_scalar(
        lambda m: float(f(m)), bounds=(lo_b, hi_b), method="bounded", options={"xatol": 1e-10}
    )
    if refined.success and float(refined.fun) < best_nll:
        best_mu, best_nll = float(refined.x), float(refined.fun)
    return best_mu, best_nll


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


def combined_upper_limit(
    likelihoods: Sequence[NllFunction], *, expected: bool = False, cl: float = 0.95
) -> float | None:
    """Upper limit on mu of the product of the likelihoods (None if no limit is found).

    Args:
        likelihoods: objects with ``nll(mu, expected)``.
        expected: a-priori expected limit (the expected likelihoods play the data).
        cl: confidence level.
    """
    if not likelihoods:
        msg = "combined_upper_limit needs at least one likelihood"
        raise ValueError(msg)
    mu_hat, nll_hat = fit_mu(likelihoods, expected=expected)
    mu_hat_a, nll_hat_a = fit_mu(likelihoods, expected=True)
    alpha = 1.0 - cl

    def excess(mu: float) -> float:
        q = 2.0 * (combined_nll(likelihoods, mu, expected=expected) - nll_hat)
        qa = 2.0 * (combined_nll(likelihoods, mu, expected=True) - nll_hat_a)
        return float(cls(q, qa)) - alpha

    lo = mu_hat
    if excess(lo) <= 0:
        return None
    step = max(mu_hat, mu_hat_a, 1.0)
    hi = lo + step
    while excess(hi) > 0:
        step *= 2.0
        hi = lo + step
        if hi > _MU_CEILING:
            return None
    return float(brentq(excess, lo, hi, xtol=1e-10, rtol=1e-7))
