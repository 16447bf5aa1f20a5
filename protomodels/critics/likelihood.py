"""The likelihood critic: the most sensitive combination of results must not exclude the model.

Reference: SModelS/protomodels ``develop``, ``tester/critic.py`` (``llhd_critic``) with
``tester/combiner.py`` (``getMostSensitiveCombination``) and ``ptools/bamCreator.py``
(``bamAndWeights(expected=True, excl_mode=True)``):

- candidates: efficiency-map predictions (the combination of a result's regions where it has
  one, else its best region) with r_exp >= 0.1;
- weights: the expected exclusion power w = 2 [ln L_exp(0) - ln L_exp(1)]
  = 2 [nll_exp(1) - nll_exp(0)] (large for a result that expects to exclude mu = 1);
- the heaviest set of pairwise combinable candidates (one per analysis) is the most sensitive
  combination; its observed r (1 / mu_UL of the product of its likelihoods, or the single
  prediction's r_obs) must be below 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from protomodels.critics.combined_limit import combined_upper_limit
from protomodels.critics.context import CriticContext
from protomodels.critics.verdict import CriticEntry, CriticInputError, Verdict, mu_cap
from protomodels.statistics.curves import CurveSet
from protomodels.statistics.record import likelihood_of
from protomodels.theory.predictions import TheoryPrediction

__all__ = ["LikelihoodCritic", "exclusion_weight"]


def __dir__() -> list[str]:
    return __all__



def exclusion_weight(likelihood: Any) -> float:
    """2 [nll_exp(1) - nll_exp(0)] of a likelihood object (NaN if it cannot be evaluated)."""
    try:
        values = np.asarray(likelihood.nll(np.array([1.0, 0.0]), expected=True), dtype=float)
        return 2.0 * float(values.reshape(-1)[0] - values.reshape(-1)[1])
    except (TypeError, ValueError, ArithmeticError, IndexError):
        return math.nan


def _exclusion_weights(predictions: Sequence[TheoryPrediction]) -> list[float]:
    """:func:`exclusion_weight` of every prediction's likelihood, in one batched evaluation
    (NaN where one cannot be evaluated)."""
    if not predictions:
        return []
    try:
        curves = CurveSet([likelihood_of(p) for p in predictions])
        values = curves.grid(np.arange(len(curves)), [1.0, 0.0], expected=True)
    except (TypeError, ValueError, ArithmeticError, IndexError):
        return [exclusion_weight(likelihood_of(p)) for p in predictions]
    return (2.0 * (values[:, 0] - values[:, 1])).tolist()


def _label(p: TheoryPrediction) -> str:
    return f"{p.analysis}:{p.dataset}"


@dataclass(frozen=True)
class LikelihoodCritic:
    """Tests the observed r of the most sensitive combination of efficiency-map results.

    Attributes:
        min_r_exp: predictions with r_exp below this are left out (reference 0.1).
        r_threshold: the combination's r must stay below this (reference 1).
        cap_threshold: threshold of mu_max = 0.999 x cap_threshold / r (default: r_threshold,
            so that a model scaled to mu_max passes this critic).
        name: the critic's name in verdicts.
    """

    min_r_exp: float = 0.1
    r_threshold: float = 1.0
    cap_threshold: float | None = None
    name: str = "likelihood"

    def __call__(self, predictions: Sequence[TheoryPrediction], context: CriticContext) -> Verdict:
        """Judge the predictions (upper-limit predictions are ignored)."""
        notes: list[str] = []
        candidates: list[TheoryPrediction] = []
        weights: list[float] = []
        below_cut = 0
        sensitive: list[TheoryPrediction] = []
        for p in predictions:
            if p.data_type not in ("efficiencyMap", "combined"):
                continue
            if p.r_exp is None:
                notes.append(f"{_label(p)}: no expected r, left out")
                continue
            if p.r_exp < self.min_r_exp:
                below_cut += 1
                continue
            if likelihood_of(p) is None:
                notes.append(f"{_label(p)}: no likelihood, left out")
                continue
            sensitive.append(p)
        for p, weight in zip(sensitive, _exclusion_weights(sensitive), strict=True):
            if not math.isfinite(weight):
                notes.append(f"{_label(p)}: expected likelihood not finite, left out")
                continue
            candidates.append(p)
            weights.append(weight)
        if below_cut:
            notes.append(f"{below_cut} efficiency-map predictions below r_exp {self.min_r_exp}")
        if not candidates:
            return Verdict(
                critic=self.name,
                passed=True,
                constructive=context.constructive,
                notes=(*notes, "no sensitive efficiency-map prediction"),
            )
        chosen = self._combination(candidates, weights, context)
        members = [candidates[i] for i in chosen]
        r = self._r_value(members)
        if r is None:  # the reference excludes the model then; mu_max = 0 says the same
            notes.append("no upper limit for the combination: treated as excluded (reference)")
        entries = [
            CriticEntry(
                analysis=p.analysis,
                result_id=p.result_id,
                dataset=p.dataset,
                data_type=p.data_type,
                r_obs=p.r_obs,
                r_exp=p.r_exp,
                sensitive=True,
                weight=w,
                combined=i in chosen,
            )
            for i, (p, w) in enumerate(zip(candidates, weights, strict=True))
        ]
        entries.sort(key=lambda e: -(e.r_obs or 0.0))
        threshold = self.cap_threshold if self.cap_threshold is not None else self.r_threshold
        veto_passed = r is not None and r < self.r_threshold
        return Verdict(
            critic=self.name,
            passed=context.constructive or veto_passed,
            constructive=context.constructive,
            mu_max=mu_cap(r, threshold) if r is not None else 0.0,
            r_max=r,
            entries=tuple(entries),
            combination=tuple(_label(p) for p in members),
            r_combined=r,
            notes=tuple(notes),
        )

    @staticmethod
    def _combination(
        candidates: Sequence[TheoryPrediction], weights: Sequence[float], context: CriticContext
    ) -> tuple[int, ...]:
        """Indices of the most sensitive combination (the heaviest combinable set); the
        heaviest single candidate when the search finds no set of positive weight."""
        heaviest = (max(range(len(candidates)), key=lambda i: weights[i]),)
        if len(candidates) == 1:
            return heaviest
        matrix = context.combinability(candidates)
        search = context.search_function()
        indices, _ = search(weights, matrix, [p.analysis for p in candidates])
        chosen = tuple(sorted(int(i) for i in indices))
        if not chosen:
            return heaviest
        if chosen[-1] >= len(candidates) or chosen[0] < 0:
            msg = f"the combination search returned indices {indices} for {len(candidates)} "
            msg += "candidates; they must lie in range(n)"
            raise CriticInputError(msg)
        return chosen

    @staticmethod
    def _r_value(members: Sequence[TheoryPrediction]) -> float | None:
        """Observed r of the combination: the prediction's own r for one member (SModelS's
        combiner returns the prediction itself), else 1 / mu_UL of the summed nll."""
        if len(members) == 1:
            return members[0].r_obs
        mu_ul = combined_upper_limit([likelihood_of(p) for p in members])
        if mu_ul is None or not mu_ul > 0:
            return None
        return 1.0 / mu_ul
