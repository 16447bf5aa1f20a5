"""Candidates of the combination: the predictions with a likelihood, per analysis and data type.

Follows the reference builder (SModelS/protomodels ``develop``):

- ``tester/predictor.py`` (``runSModelS`` with ``ULpreds=False``): only efficiency-map and
  combined predictions enter the combination, and the single regions of a result that has a
  combined prediction are dropped;
- ``tester/combiner.py`` (``sortPredictions``): predictions without a likelihood, or whose
  L(1)/L(0) is 1 within 1e-5, are dropped;
- ``ptools/bamCreator.py`` (``selectMostSignificantSRs``): per analysis and data type the regions
  within 5 % of the largest 2 [ln L(1) - ln L(0)] (at least two) are kept and the path search
  picks among them. Regions of one analysis are never combined, so at mu = 1 the search takes the
  most significant one (where they share the analysis' combinability). Once the reference
  rescales the signal by mu-hat and predicts again, another region may become the most
  significant one; keeping every region (``regions="all"``, the default) lets the search over
  mu find that combination directly; ``"most_significant"`` keeps one per analysis and data
  type, ``"reference"`` the reference's selection at mu = 1.

The likelihood of a prediction is the object in ``prediction.statistics.likelihood`` (see
:class:`Likelihood` and :class:`~protomodels.statistics.record.PredictionStatistics`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from protomodels.combiner.graph import analysis_base
from protomodels.exceptions import ProtomodelsError
from protomodels.statistics.curves import CurveSet, CurveShapeError
from protomodels.statistics.record import likelihood_of
from protomodels.theory.predictions import TheoryPrediction

__all__ = [
    "BOUND_PERCENT",
    "FLAT_TOLERANCE",
    "REGIONS",
    "Candidate",
    "Likelihood",
    "eligible_predictions",
    "likelihood_of",
    "select_candidates",
    "stand_in_regions",
]


def __dir__() -> list[str]:
    return __all__


#: predictions with |L(1)/L(0) - 1| below this carry no information (reference: 1e-5)
FLAT_TOLERANCE = 1e-5
#: reference selectMostSignificantSRs: regions within this percentage of the best one
BOUND_PERCENT = 5.0


@runtime_checkable
class Likelihood(Protocol):
    """The likelihood of one prediction as a function of the signal strength mu."""

    def nll(self, mu: ArrayLike, expected: bool = False) -> np.ndarray:
        """-ln L(mu), nuisances profiled; vectorised over mu."""
        ...

    @property
    def mu_hat(self) -> float:
        """The maximum-likelihood mu (may be negative)."""
        ...

    @property
    def nll_max(self) -> float:
        """-ln L(mu_hat), the smallest nll."""
        ...


@dataclass(frozen=True, eq=False)
class Candidate:
    """One prediction that may enter the combination.

    Attributes:
        prediction: the theory prediction.
        likelihood: its likelihood.
        nll0, nll1: -ln L at mu = 0 and mu = 1.
    """

    prediction: TheoryPrediction
    likelihood: Likelihood
    nll0: float
    nll1: float

    @property
    def analysis(self) -> str:
        """The analysis id as in the database (``globalInfo`` id)."""
        return self.prediction.analysis

    @property
    def dataset(self) -> str | None:
        return self.prediction.dataset

    @property
    def sqrts_tev(self) -> float:
        return self.prediction.sqrts_tev

    @property
    def data_type(self) -> str:
        return self.prediction.data_type

    @property
    def weight1(self) -> float:
        """2 [ln L(1) - ln L(0)], the weight at mu = 1."""
        return 2.0 * (self.nll0 - self.nll1)


def _evaluate(predictions: Sequence[TheoryPrediction]) -> list[Candidate | None]:
    """The candidate of each prediction (None: no likelihood, no finite L(0), L(1), or a flat
    one), with nll(0) and nll(1) from one batched evaluation."""
    likelihoods = [likelihood_of(p) for p in predictions]
    rows = [i for i, lik in enumerate(likelihoods) if lik is not None]
    out: list[Candidate | None] = [None] * len(predictions)
    if not rows:
        return out
    try:
        values = CurveSet([likelihoods[i] for i in rows]).grid(np.arange(len(rows)), [0.0, 1.0])
    except CurveShapeError as err:
        raise ProtomodelsError(str(err)) from err
    for i, (nll0, nll1) in zip(rows, values.tolist(), strict=True):
        if not (math.isfinite(nll0) and math.isfinite(nll1)):
            continue
        if abs(math.expm1(min(nll0 - nll1, 700.0))) < FLAT_TOLERANCE:
            continue
        out[i] = Candidate(predictions[i], likelihoods[i], nll0, nll1)
    return out


def _has_likelihood(p: TheoryPrediction) -> bool:
    """A likelihood object, and finite -ln L at mu = 0 and 1."""
    return p.statistics is not None and p.statistics.has_likelihood


def stand_in_regions(predictions: Iterable[TheoryPrediction]) -> dict[str, TheoryPrediction]:
    """For every combined prediction left without a likelihood (full likelihoods off, a pyhf fit
    out of budget: see its ``statistics.fallback``), the signal region of the same result that
    stands in for it: the one with the largest expected r (SModelS's best signal region), ties
    to the larger signal. Keyed by ``result_id``; results without such a region are absent."""
    predictions = list(predictions)
    missing = {
        p.result_id for p in predictions if p.data_type == "combined" and not _has_likelihood(p)
    }
    best: dict[str, TheoryPrediction] = {}
    for p in predictions:
        if p.data_type != "efficiencyMap" or p.result_id not in missing or p.r_exp is None:
            continue
        held = best.get(p.result_id)
        if held is None or (p.r_exp, p.xsec_fb) > (held.r_exp or 0.0, held.xsec_fb):
            best[p.result_id] = p
    return best


def eligible_predictions(
    predictions: Iterable[TheoryPrediction],
    *,
    data_types: Sequence[str] = ("efficiencyMap", "combined"),
    drop_regions_of_combined: bool = True,
) -> list[TheoryPrediction]:
    """The predictions of the allowed data types, without the single regions of results that
    have a combined prediction (unless a region stands in for a combination without
    likelihood, :func:`stand_in_regions`): those :func:`select_candidates` evaluates."""
    chosen = [p for p in predictions if p.data_type in data_types]
    if not drop_regions_of_combined:
        return chosen
    combined = {p.result_id for p in chosen if p.data_type == "combined"}
    stand_ins = {id(p) for p in stand_in_regions(chosen).values()}
    return [
        p
        for p in chosen
        if p.data_type == "combined" or p.result_id not in combined or id(p) in stand_ins
    ]


#: how many regions of one analysis and data type become candidates
REGIONS = ("all", "reference", "most_significant")


def select_candidates(
    predictions: Iterable[TheoryPrediction],
    *,
    data_types: Sequence[str] = ("efficiencyMap", "combined"),
    drop_regions_of_combined: bool = True,
    regions: str = "all",
) -> list[Candidate]:
    """The predictions that may enter the combination.

    Args:
        predictions: all predictions of a model.
        data_types: the data types that may enter (reference: no upper-limit results; add
            ``"upperLimit"`` to let them in: an upper-limit result and its ``-eff``/``-agg``
            sibling then compete as one analysis in the search).
        drop_regions_of_combined: drop single regions of a result that has a combined
            prediction (reference predictor); where the combination has no likelihood, its
            best signal region stays (:func:`stand_in_regions`).
        regions: per analysis and data type, ``"most_significant"``: the prediction with the
            largest weight at mu = 1; ``"reference"``: those within 5 % of it, at least two
            (``selectMostSignificantSRs``); ``"all"``: every one. The search takes at most one
            per analysis, so all three give the same best combination at mu = 1; with mu free,
            another region may be the best one at mu-hat (the reference, which predicts again
            after rescaling, then switches to it): ``"all"`` finds that combination.

    Returns:
        candidates in the order of first appearance of their (analysis, data type).
    """
    if regions not in REGIONS:
        msg = f"regions must be one of {', '.join(REGIONS)}, got {regions!r}"
        raise ProtomodelsError(msg)
    chosen = eligible_predictions(
        predictions, data_types=data_types, drop_regions_of_combined=drop_regions_of_combined
    )
    groups: dict[tuple[str, str], list[Candidate]] = {}
    for prediction, candidate in zip(chosen, _evaluate(chosen), strict=True):
        if candidate is not None:
            key = (analysis_base(prediction.analysis), prediction.data_type)
            groups.setdefault(key, []).append(candidate)
    out = []
    for group in groups.values():
        if regions == "all" or len(group) == 1:
            out.extend(group)
            continue
        ranked = sorted(group, key=lambda c: -c.weight1)
        if regions == "most_significant":
            out.append(ranked[0])
            continue
        top = ranked[0].weight1
        kept = [c for c in ranked if top > 0 and c.weight1 / top >= BOUND_PERCENT / 100.0]
        out.extend(kept if len(kept) >= 2 else ranked[:2])
    return out
