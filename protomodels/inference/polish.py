"""Polish: a few gradient steps on a protomodel's continuous parameters (the walk's ``--polish``).

After the walk accepts a model, its masses, ln multipliers and branching ratios are moved by a
few Levenberg-Marquardt steps on -ln L of its best combination (gradient and Gauss-Newton
Hessian of :class:`~protomodels.inference.objective.Objective`), each limited to a trust region
(5 % of a mass, 0.3 in ln ssm, 0.1 in a branching ratio) and projected onto valid models (every
mother heavier than its daughters by the minimal mass gap, branching ratios in [0, 1]). The
polished model is then evaluated in full (predictions, best combination, mu-hat, critics): it
replaces the accepted one only if its K is higher and the critics let it pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from protomodels.exceptions import ProtomodelsError
from protomodels.inference.objective import Objective, objective_of
from protomodels.inference.parameters import BRANCHING, LOG_MULTIPLIER, MASS

__all__ = ["PolishSettings", "Polisher", "polish_parameters"]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True)
class PolishSettings:
    """Steps and trust region of the polish (see the module docstring)."""

    steps: int = 3
    mass_step: float = 0.05
    log_step: float = 0.3
    br_step: float = 0.1
    min_gap: float = 1.0


def _limits(objective: Objective, theta: np.ndarray, settings: PolishSettings) -> np.ndarray:
    out = np.empty(len(theta))
    for i, p in enumerate(objective.space.parameters):
        out[i] = {MASS: settings.mass_step * abs(theta[i]), LOG_MULTIPLIER: settings.log_step,
                  BRANCHING: settings.br_step}.get(p.kind, settings.log_step)
    return out


def polish_parameters(
    objective: Objective, settings: PolishSettings | None = None
) -> tuple[np.ndarray, float, float]:
    """(theta, nll before, nll after) after the Levenberg-Marquardt steps (theta0 if none
    improves -ln L)."""
    settings = settings or PolishSettings()
    theta = objective.theta0.copy()
    nll, grad, hess = objective.derivatives(theta)
    start, damping = nll, 1.0
    valid = getattr(objective.space, "valid", None)
    for _ in range(settings.steps):
        free = np.diag(hess) > 1e-12 * max(np.abs(np.diag(hess)).max(), 1e-300)
        if not free.any():
            break
        improved = False
        for _ in range(4):
            h = hess[np.ix_(free, free)]
            step = np.zeros(len(theta))
            try:
                step[free] = -np.linalg.solve(h + damping * np.diag(np.diag(h)), grad[free])
            except np.linalg.LinAlgError:
                damping *= 4
                continue
            ratio = np.max(np.abs(step) / _limits(objective, theta, settings))
            if ratio > 1:
                step /= ratio
            trial = theta + step
            if valid is not None and not bool(valid(trial, settings.min_gap)):
                damping *= 4
                continue
            value, g, hh = objective.derivatives(trial)
            if math.isfinite(value) and value < nll:
                theta, nll, grad, hess = trial, value, g, hh
                damping = max(damping / 3, 1e-3)
                improved = True
                break
            damping *= 4
        if not improved:
            break
    return theta, start, nll


class Polisher:
    """``polisher(evaluation) -> better evaluation or None`` for the walk (see the module
    docstring); ``evaluator`` is the walk's :class:`~protomodels.evaluation.Evaluator`."""

    def __init__(self, evaluator: Any, settings: PolishSettings | None = None) -> None:
        if not hasattr(evaluator, "predictor"):
            raise ProtomodelsError("--polish needs the engine's Evaluator (gradients of its "
                                   "predictions)")
        self.evaluator = evaluator
        self.settings = settings or PolishSettings()
        #: (attempts, improvements) so far
        self.counts = [0, 0]

    def __call__(self, evaluation: Any) -> Any | None:
        if evaluation.k is None or not evaluation.k.combination:
            return None
        self.counts[0] += 1
        try:
            objective = objective_of(self.evaluator, evaluation)
            theta, before, after = polish_parameters(objective, self.settings)
        except (ProtomodelsError, np.linalg.LinAlgError, FloatingPointError, ValueError):
            return None
        if not after < before:
            return None
        try:
            model = objective.space.model_at(theta)
        except ProtomodelsError:
            return None
        polished = self.evaluator(model)
        if not (math.isfinite(polished.K) and polished.K > evaluation.K and polished.passed):
            return None
        self.counts[1] += 1
        return polished
