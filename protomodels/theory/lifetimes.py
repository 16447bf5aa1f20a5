"""Lifetime reweighting of topologies with long-lived particles (SModelS 3).

SModelS (``experiment/reweighting.py``, applied in ``TxName.getEfficiencyFor`` / ``getULFor``)
multiplies a txname's efficiency by, and divides its upper limit by, the probability that the
topology looks as the txname assumes:

    xi = prod over BSM states that decay in the topology of F_prompt(Gamma)
         x prod over BSM final states of F_long(Gamma),
    F_prompt = 1 - exp(-Gamma L_inner / hbar c),   F_long = exp(-Gamma L_outer / hbar c),

with the boost folded into effective detector sizes (defaults L_inner = 1 mm / 1.3,
L_outer = 10 m / 1.43; a result, data set or txname may set ``Leff_inner`` / ``Leff_outer``).
States whose width is a coordinate of the txname's grid are left out (the grid already depends
on it), and xi below 1e-10 is 0. A prompt particle (width above 1e-11 GeV) has F_prompt = 1 to
machine precision and a stable one (width 0) F_long = 1, so prompt spectra are not affected.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

__all__ = [
    "HBAR_C",
    "LEFF_INNER",
    "LEFF_OUTER",
    "effective_lengths",
    "long_fraction",
    "prompt_fraction",
    "reweighting",
]


def __dir__() -> list[str]:
    return __all__


#: GeV m
HBAR_C = 1.973269804e-16
#: m, SModelS's defaults (1 mm / 1.3 and 10 m / 1.43)
LEFF_INNER, LEFF_OUTER = 0.000769, 7.0
_MIN_FACTOR = 1e-10


def prompt_fraction(width: float, inner: float = LEFF_INNER) -> float:
    """Probability of a decay within ``inner`` metres (1 - exp(-Gamma L / hbar c))."""
    return -math.expm1(-width * inner / HBAR_C) if width > 0 else 0.0


def long_fraction(width: float, outer: float = LEFF_OUTER) -> float:
    """Probability of no decay within ``outer`` metres (exp(-Gamma L / hbar c))."""
    return math.exp(-width * outer / HBAR_C) if width > 0 else 1.0


def effective_lengths(*levels: Mapping[str, float]) -> tuple[float, float]:
    """(L_inner, L_outer) from the ``Leff_inner`` / ``Leff_outer`` settings of the result, the
    data set and the txname (later levels win), else the defaults."""
    inner, outer = LEFF_INNER, LEFF_OUTER
    for level in levels:
        inner = float(level.get("Leff_inner", inner))
        outer = float(level.get("Leff_outer", outer))
    return inner, outer


def reweighting(
    decaying: Iterable[float], final: Iterable[float], inner: float, outer: float
) -> float:
    """xi of a topology from the widths (GeV) of its decaying and final BSM states (those on
    the txname's width axes left out)."""
    xi = 1.0
    for width in decaying:
        xi *= prompt_fraction(width, inner)
    for width in final:
        xi *= long_fraction(width, outer)
    return xi if xi >= _MIN_FACTOR else 0.0
