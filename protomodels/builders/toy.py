"""A toy evaluation: try the walker without the database (tests, demonstrations).

K rewards a stop near 800 GeV and a chargino near 350 GeV, each produced with a multiplier near
one, and a light LSP; every particle costs 0.6 (a stand-in for the prior). A gluino below 1 TeV
fails the "critics"; a stau below 150 GeV gives K = NaN and a multiplier above 1000 makes the
evaluation raise, so that walks meet every kind of rejection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from protomodels.builders.records import model_to_json
from protomodels.exceptions import ProtomodelsError
from protomodels.theory.particles import LSP
from protomodels.theory.protomodel import Protomodel

__all__ = ["ToyEvaluation", "toy_evaluator"]


def __dir__() -> list[str]:
    return __all__


#: pdg -> (mass in GeV, height in K) of the toy signals
TARGETS: dict[int, tuple[float, float]] = {1000006: (800.0, 4.0), 1000024: (350.0, 2.5)}
WIDTH = 150.0
PENALTY = 0.6


@dataclass(frozen=True)
class ToyEvaluation:
    """Result of :func:`toy_evaluator` (fulfils the walker's ``Evaluation`` protocol)."""

    K: float
    T_L: float
    muhat: float
    model: Protomodel
    passed: bool
    reason: str | None
    combination: list[str] = field(default_factory=list)
    combination_particles: tuple[int, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The evaluation as JSON."""
        return {
            "K": self.K,
            "T_L": self.T_L,
            "muhat": self.muhat,
            "passed": self.passed,
            "reason": self.reason,
            "combination": list(self.combination),
            "combination_particles": list(self.combination_particles),
            "model": model_to_json(self.model),
        }


def toy_evaluator(model: Protomodel) -> ToyEvaluation:
    """Evaluate a protomodel with the toy K (see the module docstring).

    Raises:
        ProtomodelsError: a multiplier above 1000.
    """
    if any(v > 1000.0 for v in model.ssm.values()):
        msg = "toy evaluation: a multiplier above 1000 cannot be evaluated"
        raise ProtomodelsError(msg)
    stau = model.masses.get(1000015)
    if stau is not None and stau < 150.0:
        return ToyEvaluation(math.nan, math.nan, 1.0, model, False, "toy: light stau", [], ())
    t_l = 1.0 * math.exp(-0.5 * ((model.masses.get(LSP, 0.0) - 150.0) / 100.0) ** 2)
    used = [LSP]
    for pdg, (mass, height) in TARGETS.items():
        if pdg not in model.masses:
            continue
        strength = model.ssm.get((-pdg, pdg), 1.0)
        term = height * math.exp(-0.5 * ((model.masses[pdg] - mass) / WIDTH) ** 2)
        term *= strength * math.exp(1.0 - strength)
        t_l += term
        if term > 0.05:
            used.append(pdg)
    k = t_l - PENALTY * (len(model.masses) - 1)
    gluino = model.masses.get(1000021)
    passed = gluino is None or gluino >= 1000.0
    reason = None if passed else "toy critic: a gluino below 1 TeV is excluded"
    names = [f"toy:{p}" for p in sorted(used)]
    return ToyEvaluation(k, t_l, 1.0, model, passed, reason, names, tuple(sorted(used)))
