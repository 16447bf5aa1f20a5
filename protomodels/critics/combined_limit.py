"""95 % CL upper limit on a common signal strength of several uncorrelated likelihoods.

SModelS 3 ``TheoryPredictionsCombiner`` (``statistics/analysesCombinations.py``;
``docs/critics.md`` §2): the combined likelihood is the product of the analyses'
likelihoods, mu >= 0, and the limit is the asymptotic CLs of arXiv:1007.1727 (q-tilde
formulas, ``docs/statistics.md`` §5) with the Asimov terms taken from the expected likelihoods. The
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

from protomodels.statistics.curves import CurveSet

__all__ = ["NllFunction", "cls", "combined_nll", "combined_upper_limit", "fit_mu"]


def __dir__() -> list[str]:
    return __all__


_MU_CEILING = 1e9
_GRID = 17


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


def fit_mu(
    likelihoods: Sequence[NllFunction] | CurveSet,
    *,
    expected: bool = False,
    bracket: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """(mu-hat >= 0, nll at mu-hat) of the summed nll: a bracket (given, or doubled from
    [0, 1] until the nll rises), a coarse grid on it, then SciPy's bounded Brent search
    around the grid's best point (scalar evaluations: a profile fit costs per mu value, so
    few values beat large vectorised grids)."""
    curves = _curves(likelihoods)

    def f(mu: np.ndarray) -> np.ndarray:
        return combined_nll(curves, mu, expected=expected)

    if bracket is None:
        hi = 1.0
        while hi < _MU_CEILING:
            half, full = f(np.array([0.5 * hi, hi]))
            if not full < half:
                break
            hi *= 2.0
        lo = 0.0
    else:
        lo, hi = max(0.0, bracket[0]), max(bracket[1], bracket[0], 1e-9)
    grid = np.linspace(lo, hi, _GRID)
    values = f(grid)
    i = int(np.argmin(values))
    lo_b, hi_b = grid[max(i - 1, 0)], grid[min(i + 1, _GRID - 1)]
    best_mu, best_nll = float(grid[i]), float(values[i])
    refined = minimize_scalar(
        lambda m: float(f(np.array([m]))[0]),
        bounds=(lo_b, hi_b),
        method="bounded",
        options={"xatol": 1e-8 * max(1.0, hi_b)},
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
    bracket = None if expected else _members_bracket(curves)
    mu_hat, nll_hat = fit_mu(curves, expected=expected, bracket=bracket)
    mu_hat_a, nll_hat_a = fit_mu(curves, expected=True)
    alpha = 1.0 - cl

    def excess(mu: float) -> float:
        q = 2.0 * (combined_nll(curves, np.array([mu]), expected=expected)[0] - nll_hat)
        qa = 2.0 * (combined_nll(curves, np.array([mu]), expected=True)[0] - nll_hat_a)
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
    return float(brentq(excess, lo, hi, xtol=1e-9, rtol=1e-7))


def _members_bracket(curves: CurveSet) -> tuple[float, float] | None:
    """[min, max] of the members' own observed mu-hat (clipped at 0): the maximum of a sum of
    unimodal curves lies between their maxima. None when a member's mu-hat is unknown."""
    values = [getattr(like, "mu_hat", None) for like in curves.likelihoods]
    if not values or any(v is None or not np.isfinite(v) for v in values):
        return None
    clipped = [max(float(v), 0.0) for v in values]
    return min(clipped), max(clipped)
