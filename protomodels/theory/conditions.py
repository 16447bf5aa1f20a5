"""Txname conditions: how far a prediction violates the assumptions of its upper limits.

A condition compares sums of sigma x BR (x eff) over some SMS of the txname's constraint, e.g.
``Cgtr(muons, electrons)`` (the muon part should not be smaller) or ``Csim(a, b)`` (the parts
should be similar). SModelS 3.0.3 (``docs/predictions.md`` §11): every SMS of a prediction
adds its weight to each condition SMS it matches; ``cGtr(a, b) = 0`` if a >= b, else
``(b - a) / (a + b)`` (None if a + b = 0); ``cSim`` is the largest ``|w_i - w_j| / |w_i + w_j|``
over pairs with a non-zero sum. The prediction's condition is the largest value (0 if none), and
predictions with ``round(condition / maxcond, 2) > 1`` are dropped (``TheoryPredictionList``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from protomodels.database.constraints import Condition, Constraint

__all__ = ["condition_values", "max_condition", "violates"]


def __dir__() -> list[str]:
    return __all__


def _greater(a: float, b: float) -> float | None:
    if a + b == 0:
        return None
    return (abs(a - b) - (a - b)) / (2.0 * (a + b))


def _similar(values: list[float]) -> float:
    worst = 0.0
    for i, a in enumerate(values):
        for b in values[i + 1 :]:
            if a + b != 0:
                worst = max(worst, abs(a - b) / abs(a + b))
    return worst


def _evaluate(condition: Condition, weights: Mapping[int, float]) -> float | None:
    args = [sum(c * weights.get(i, 0.0) for i, c in arg.terms) for arg in condition.args]
    if condition.kind == "greater":
        return _greater(args[0], args[1])
    return _similar(args)


def condition_values(
    constraint: Constraint, weights: Mapping[int, float]
) -> list[float | None]:
    """The value of each condition of a constraint.

    Args:
        constraint: the txname's parsed constraint and conditions.
        weights: summed weight (fb) per index into ``constraint.sms`` (absent: 0).
    """
    return [_evaluate(c, weights) for c in constraint.conditions]


def max_condition(values: Iterable[float | None]) -> float:
    """SModelS's ``getmaxCondition``: the largest value, 0 without any."""
    return max([0.0, *(v for v in values if v is not None)])


def violates(condition: float, maxcond: float | None) -> bool:
    """Whether a prediction with this condition value is dropped (never with maxcond None/0)."""
    return bool(maxcond) and round(condition / maxcond, 2) > 1.0
