"""Names shared by :mod:`~protomodels.statistics.attach` and
:mod:`~protomodels.statistics.full_likelihood` (which import this module, not each other):
the fallback label of a pyhf combination without its full likelihood, the test for SModelS's
pyhf backend and the helpers that give a prediction its statistics record."""

from __future__ import annotations

from typing import Any

from protomodels.database.records import Result
from protomodels.statistics.record import PredictionStatistics, likelihood_value
from protomodels.theory.predictions import TheoryPrediction

__all__ = [
    "NO_FULL_LIKELIHOOD",
    "PYHF_MAX_ITERATIONS",
    "PYHF_MAX_PARAMETERS",
    "fall_back",
    "likelihood_value",
    "note_fallback",
    "pyhf_backend",
    "store_likelihoods",
]


def __dir__() -> list[str]:
    return __all__


#: the ``fallback`` of a pyhf combination left without its full likelihood
NO_FULL_LIKELIHOOD = "full likelihoods off: no likelihood for the pyhf combination"


def store_likelihoods(
    p: TheoryPrediction,
    kind: str,
    nll1: float,
    nll_sm: float,
    nll_max: float,
    muhat: float,
    likelihood: Any,
    **notes: Any,
) -> None:
    """Give ``p`` its :class:`~protomodels.statistics.record.PredictionStatistics`: every
    backend (kinds 1-3 in :mod:`~protomodels.statistics.attach`, pyhf in
    :mod:`~protomodels.statistics.full_likelihood`) writes them through this function;
    ``notes``: further fields of the record (fallback, error, workspace, ...)."""
    p.statistics = PredictionStatistics(
        kind, nll1, nll_sm, nll_max, muhat, likelihood, **notes
    )


#: default Newton budget of each pyhf fit of a protomodel (warm-started fits take 3-8 steps)
PYHF_MAX_ITERATIONS = 60

#: default cap on the parameters of a pyhf workspace fitted in an evaluation: of v3.0.0's eight
#: results, ATLAS-SUSY-2018-04 (115) and -2018-16 (~200) are above it (their fixed-budget Newton
#: fits take seconds per model and their compilation many GB); everything else has 3-5
PYHF_MAX_PARAMETERS = 100

def fall_back(p: TheoryPrediction, reason: str, **notes: Any) -> None:
    """Leave a combined prediction without a likelihood, for a stated reason: its statistics
    say why (``fallback``; ``notes``: error, converged) and its limits are removed (the
    combiner then lets the result's best signal region stand in)."""
    p.upper_limit_fb = p.expected_upper_limit_fb = None
    p.statistics = PredictionStatistics.without_likelihood(reason, **notes)


def note_fallback(p: TheoryPrediction, note: str) -> None:
    """Record a fallback note in ``p.statistics``, keeping its likelihood if it has one."""
    p.statistics = (
        PredictionStatistics.without_likelihood(note)
        if p.statistics is None
        else p.statistics.with_fallback(note)
    )


def pyhf_backend(result: Result) -> bool:
    """Whether SModelS computes the combination of this result with pyhf: ``jsonFiles`` but no
    covariance (``TheoryPrediction.setStatsComputer`` prefers the covariance)."""
    return getattr(result, "covariance", None) is None and any(
        not w.full for w in getattr(result, "pyhf", ())
    )
