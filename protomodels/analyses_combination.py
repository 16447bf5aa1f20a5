"""Several analyses combined into one likelihood: SModelS's ``combineAnas``.

SModelS 3 (``matching/theoryPrediction.py:TheoryPredictionsCombiner.selectResultsFrom`` and
``statistics/analysesCombinations.py``) keeps, per requested analysis id, the one prediction
with a likelihood that ranks highest by (combined > efficiency map > upper limit, an expected r
given, the largest expected r). It then multiplies their likelihoods with a common signal
strength mu >= 0 and reports mu-hat, -ln L at mu = 1, 0 and mu-hat, and r = 1 / mu_UL, with the
95 % CL CLs limit on mu from the data and from the expected data; the Asimov terms of the CLs
come from the a-priori expected likelihoods. That is what SModelS's "posteriori" choice amounts
to for efficiency-map, simplified-likelihood and upper-limit members
(``../shared/docs/statistics.md`` §7); for pyhf members SModelS 3.0.3 takes the observed
likelihood there instead (a quirk not copied: its r of a combination with a pyhf member can
differ by a few per cent). One analysis alone is that analysis' own prediction (mu-hat, r), as
in SModelS. SModelS trusts the user that the analyses are uncorrelated; here the combinability
matrix of the combiner is checked first, and ``force`` combines anyway, with a warning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from protomodels.critics.combined_limit import combined_upper_limit, fit_mu
from protomodels.exceptions import ProtomodelsError
from protomodels.statistics.record import likelihood_of
from protomodels.theory.predictions import TheoryPrediction

__all__ = ["AnalysesCombination", "CombinationError", "combine_analyses", "select_predictions"]


def __dir__() -> list[str]:
    return __all__


class CombinationError(ProtomodelsError):
    """The requested analyses cannot be combined (unknown, no likelihood, not combinable)."""


_PRIORITY = {"combined": 2, "efficiencyMap": 1, "upperLimit": 0}


@dataclass(frozen=True)
class AnalysesCombination:
    """The combined likelihood of several analyses.

    Attributes:
        members: the prediction of each analysis that enters, in the order asked.
        mu_hat: the best-fit common signal strength (>= 0).
        nll1, nll_sm, nll_max: summed -ln L at mu = 1, 0 and mu-hat.
        r_obs, r_exp: 1 / mu_UL from the data and from the expected data (None without a limit).
        forced: pairs of analyses combined although the combinability matrix does not allow it.
    """

    members: tuple[TheoryPrediction, ...]
    mu_hat: float
    nll1: float
    nll_sm: float
    nll_max: float
    r_obs: float | None
    r_exp: float | None
    forced: tuple[tuple[str, str], ...] = ()

    @property
    def analysis_id(self) -> str:
        """The member ids joined by commas, sorted (SModelS's ``AnalysisID``)."""
        return ",".join(sorted(p.analysis for p in self.members))

    def to_json(self) -> dict[str, Any]:
        """The keys of SModelS's ``CombinedRes`` entry, and the members."""
        return {
            "AnalysisID": self.analysis_id, "r": self.r_obs, "r_expected": self.r_exp,
            "nll": self.nll1, "nll_min": self.nll_max, "nll_SM": self.nll_sm,
            "muhat": self.mu_hat,
            "members": [{"analysis": p.analysis, "result": p.result_id, "dataset": p.dataset,
                         "dataType": p.data_type} for p in self.members],
            "forced": [list(pair) for pair in self.forced],
        }


def select_predictions(
    predictions: Sequence[TheoryPrediction], analyses: Sequence[str]
) -> list[TheoryPrediction]:
    """One prediction with a likelihood per requested analysis id (or result folder name), as
    SModelS's ``selectResultsFrom`` chooses it.

    Raises:
        CombinationError: an id has no prediction with a likelihood.
    """
    chosen = []
    for wanted in analyses:
        candidates = [
            p for p in predictions
            if wanted in (p.analysis, p.result_id) and likelihood_of(p) is not None
            and p.statistics.has_likelihood
        ]
        if not candidates:
            known = sorted({p.analysis for p in predictions})
            have = [p for p in predictions if wanted in (p.analysis, p.result_id)]
            why = ("its predictions have no likelihood" if have
                   else "the model gives it no prediction")
            msg = (f"cannot combine {wanted}: {why}"
                   + (f"; analyses with predictions: {', '.join(known[:12])}" if known else ""))
            raise CombinationError(msg)
        chosen.append(max(candidates, key=lambda p: (
            _PRIORITY.get(p.data_type, 0), p.r_exp is not None, p.r_exp or 0.0)))
    seen: dict[str, str] = {}
    for p, wanted in zip(chosen, analyses, strict=True):
        if p.analysis in seen:
            msg = f"{wanted} and {seen[p.analysis]} are the same analysis ({p.analysis})"
            raise CombinationError(msg)
        seen[p.analysis] = wanted
    return chosen


def combine_analyses(
    predictions: Sequence[TheoryPrediction],
    analyses: Sequence[str],
    *,
    combinable: Callable[[TheoryPrediction, TheoryPrediction], bool] | None = None,
    force: bool = False,
) -> AnalysesCombination:
    """The combined likelihood, mu-hat and r of the requested analyses.

    Args:
        predictions: theory predictions with statistics attached.
        analyses: analysis ids (or result folder names), at least one.
        combinable: the combiner's rule for a pair (e.g.
            :meth:`~protomodels.combiner.graph.CombinabilityGraph.combinable`); None: no check.
        force: combine pairs the rule forbids (each is warned about).

    Raises:
        CombinationError: unknown ids, no likelihood, or pairs that may not be combined.
    """
    if not analyses:
        msg = "name at least one analysis to combine"
        raise CombinationError(msg)
    members = select_predictions(predictions, analyses)
    forced = []
    if combinable is not None:
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                if not combinable(a, b):
                    forced.append((a.analysis, b.analysis))
    if forced and not force:
        pairs = "; ".join(f"{a} and {b}" for a, b in forced)
        msg = (f"not combinable according to the combinability matrix: {pairs}; drop one of each "
               "pair, or force the combination (--force-combination) if you know they are "
               "uncorrelated")
        raise CombinationError(msg)
    for a, b in forced:
        warnings.warn(f"combining {a} and {b}, which the combinability matrix does not allow "
                      "(forced)", stacklevel=2)
    if len(members) == 1:  # SModelS's combiner of one prediction is that prediction
        (p,) = members
        s = p.statistics
        return AnalysesCombination(
            members=(p,), mu_hat=max(float(s.mu_hat), 0.0), nll1=float(s.nll1),
            nll_sm=float(s.nll_sm), nll_max=float(s.nll_max), r_obs=p.r_obs, r_exp=p.r_exp,
        )
    likelihoods = [likelihood_of(p) for p in members]
    mu_hat, nll_max = fit_mu(likelihoods)

    def total(mu: float) -> float:
        return math.fsum(float(np.asarray(like.nll([mu])).reshape(-1)[0]) for like in likelihoods)

    limit = combined_upper_limit(likelihoods)
    expected = combined_upper_limit(likelihoods, expected=True)
    return AnalysesCombination(
        members=tuple(members), mu_hat=float(mu_hat), nll1=total(1.0), nll_sm=total(0.0),
        nll_max=float(nll_max),
        r_obs=1.0 / limit if limit else None, r_exp=1.0 / expected if expected else None,
        forced=tuple(forced),
    )
