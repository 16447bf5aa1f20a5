"""Names shared by :mod:`~protomodels.statistics.evaluate` and
:mod:`~protomodels.statistics.full_likelihood` (which import this module, not each other):
the fallback label of a pyhf combination without its full likelihood, the test for SModelS's
pyhf backend and the helper that stores L1, L_SM, L_max and mu-hat in a prediction."""

from __future__ import annotations

import math

from protomodels.database.records import Result
from protomodels.theory.predictions import TheoryPrediction

__all__ = [
    "LIKELIHOOD_KEYS",
    "NO_FULL_LIKELIHOOD",
    "PYHF_MAX_ITERATIONS",
    "PYHF_MAX_PARAMETERS",
    "fall_back",
    "likelihood_value",
    "pyhf_backend",
    "store_likelihoods",
]


def __dir__() -> list[str]:
    return __all__


#: ``extra["fallback"]`` of a pyhf combination left without its full likelihood
NO_FULL_LIKELIHOOD = "full likelihoods off: no likelihood for the pyhf combination"


def likelihood_value(nll: float) -> float:
    """exp(-nll) for the stored L1, L_SM, L_max: 0 where it underflows (nll >= 745), inf where
    it overflows (nll <= -709: a likelihood density, e.g. a very narrow truncated Gaussian of a
    strongly excluded model), NaN where nll is NaN (a failed fit is not a likelihood of zero).
    The nll values are stored too: use those."""
    if math.isnan(nll):
        return math.nan
    if nll >= 745:
        return 0.0
    return math.exp(-nll) if nll > -709 else math.inf


def store_likelihoods(
    p: TheoryPrediction, nll1: float, nll_sm: float, nll_max: float, muhat: float
) -> None:
    """Store L1, L_SM, L_max (:func:`likelihood_value`), muhat, nll1, nll_SM and nll_max in
    ``p.extra``: every backend (kinds 1-3 in :mod:`~protomodels.statistics.evaluate`, pyhf in
    :mod:`~protomodels.statistics.full_likelihood`) writes them through this function."""
    p.extra.update(
        L1=likelihood_value(nll1),
        L_SM=likelihood_value(nll_sm),
        L_max=likelihood_value(nll_max),
        muhat=muhat,
        nll1=nll1,
        nll_SM=nll_sm,
        nll_max=nll_max,
    )


#: default Newton budget of each pyhf fit of a protomodel (warm-started fits take 3-8 steps)
PYHF_MAX_ITERATIONS = 60

#: default cap on the parameters of a pyhf workspace fitted in an evaluation: of v3.0.0's eight
#: results, ATLAS-SUSY-2018-04 (115) and -2018-16 (~200) are above it (their fixed-budget Newton
#: fits take seconds per model and their compilation many GB); everything else has 3-5
PYHF_MAX_PARAMETERS = 100

#: the keys :func:`store_likelihoods` writes, and the likelihood object
LIKELIHOOD_KEYS = ("L1", "L_SM", "L_max", "muhat", "nll1", "nll_SM", "nll_max", "likelihood")


def fall_back(p: TheoryPrediction, reason: str) -> None:
    """Leave a combined prediction without a likelihood, for a stated reason: its likelihood
    values, likelihood object and limits are removed and ``extra["fallback"]`` says why (the
    combiner then lets the result's best signal region stand in)."""
    for key in LIKELIHOOD_KEYS:
        p.extra.pop(key, None)
    p.upper_limit_fb = p.expected_upper_limit_fb = None
    p.extra["fallback"] = reason


def pyhf_backend(result: Result) -> bool:
    """Whether SModelS computes the combination of this result with pyhf: ``jsonFiles`` but no
    covariance (``TheoryPrediction.setStatsComputer`` prefers the covariance)."""
    return getattr(result, "covariance", None) is None and any(
        not w.full for w in getattr(result, "pyhf", ())
    )
