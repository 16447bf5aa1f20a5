"""Combiner stage: the best combination of results, the prior and the test statistic K.

- :mod:`~protomodels.combiner.graph`: which results may be combined (combinability graph);
- :mod:`~protomodels.combiner.candidates`: per analysis and data type, the most significant
  prediction;
- :mod:`~protomodels.combiner.search`: the heaviest combination for fixed weights (exact), and
  the reference builder's PathFinder choice;
- :mod:`~protomodels.combiner.mu_search`: the heaviest combination over combinations and mu;
- :mod:`~protomodels.combiner.prior`: the prior and its penalties;
- :mod:`~protomodels.combiner.test_statistic`: K = T_L + 2 ln(prior) of a protomodel.
"""

from __future__ import annotations

from protomodels.combiner.candidates import Candidate, Likelihood, select_candidates
from protomodels.combiner.graph import CombinabilityGraph, analysis_base, load_combinability
from protomodels.combiner.mu_search import CombinationFit, MuSearchSettings, best_combination_in_mu
from protomodels.combiner.prior import Prior, PriorSettings, compute_prior
from protomodels.combiner.search import best_combination, pathfinder_combination
from protomodels.combiner.test_statistic import KResult, KSettings, compute_k

__all__ = [
    "Candidate",
    "CombinabilityGraph",
    "CombinationFit",
    "KResult",
    "KSettings",
    "Likelihood",
    "MuSearchSettings",
    "Prior",
    "PriorSettings",
    "analysis_base",
    "best_combination",
    "best_combination_in_mu",
    "compute_k",
    "compute_prior",
    "load_combinability",
    "pathfinder_combination",
    "select_candidates",
]


def __dir__() -> list[str]:
    return __all__
