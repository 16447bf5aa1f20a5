"""Which predictions each critic looks at.

Reference: SModelS/protomodels ``develop``, ``tester/critic.py`` (``merge_preds``,
``runSModelS``). The upper-limit critic uses the upper-limit predictions plus, for
efficiency-map results without an upper-limit sibling, the best signal region (never the
combination of regions); the likelihood critic uses efficiency-map predictions, combined
where the result has combination material.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from protomodels.critics.verdict import CriticInputError
from protomodels.database.records import Result
from protomodels.theory.predictions import TheoryPrediction

__all__ = ["SIBLING_SUFFIXES", "best_region", "sibling_key", "upper_limit_candidates"]


def __dir__() -> list[str]:
    return __all__


#: Suffixes that distinguish an efficiency-map variant from its upper-limit sibling (the list
#: of ``merge_preds`` in the reference's ``tester/critic.py``).
SIBLING_SUFFIXES = (
    "agg",
    "ma5",
    "ewk",
    "strong",
    "hino",
    "multibin",
    "exclusive",
    "incl",
    "adl",
    "eff",
)
_SUFFIX = re.compile("-(?:" + "|".join(SIBLING_SUFFIXES) + ")(?=-|$)")


def sibling_key(analysis: str) -> str:
    """The analysis id without variant suffixes: ``CMS-SUS-19-006-agg`` -> ``CMS-SUS-19-006``."""
    return _SUFFIX.sub("", analysis)


def best_region(prediction: TheoryPrediction, result: Result) -> TheoryPrediction | None:
    """The best signal region of a combined prediction, as a single-region prediction.

    Best = largest signal / expected UL among the signal regions (type ``SR``) with an
    expected limit, ties to the larger signal (SModelS's ``_getBestResult``). The per-region
    signals are normalised to the prediction's ``xsec_fb``, so a prediction whose cross section
    was rescaled keeps that rescaling. None if no region qualifies.
    """
    signals = prediction.signals_fb
    if signals is None or len(signals) != len(result.datasets):
        msg = (
            f"prediction {prediction.analysis}:{prediction.dataset} has signals_fb of length "
            f"{None if signals is None else len(signals)}, but result {result.result_id} has "
            f"{len(result.datasets)} data sets; pass predictions made from this database"
        )
        raise CriticInputError(msg)
    signals = np.asarray(signals, dtype=float)
    total = float(signals.sum())
    if total <= 0:
        return None
    scale = prediction.xsec_fb / total
    candidates = [
        i
        for i, ds in enumerate(result.datasets)
        if signals[i] > 0 and ds.region_type == "SR" and ds.expected_upper_limit_fb
    ]
    if not candidates:
        return None
    best = max(
        candidates,
        key=lambda i: (signals[i] / result.datasets[i].expected_upper_limit_fb, signals[i]),
    )
    ds = result.datasets[best]
    return replace(
        prediction,
        dataset=ds.data_id or ds.dataset_id,
        data_type="efficiencyMap",
        xsec_fb=float(signals[best]) * scale,
        upper_limit_fb=ds.upper_limit_fb,
        expected_upper_limit_fb=ds.expected_upper_limit_fb,
        statistics=None,
    )


def upper_limit_candidates(
    predictions: Sequence[TheoryPrediction], results: Mapping[str, Result] | None
) -> list[TheoryPrediction]:
    """Upper-limit predictions, plus the best region of each efficiency-map result whose
    analysis (without variant suffix) has no upper-limit prediction.

    Args:
        predictions: the model's predictions.
        results: results by ``result_id``; needed only to find the best region of combined
            predictions.
    """
    chosen = [p for p in predictions if p.data_type == "upperLimit"]
    with_ul = {sibling_key(p.analysis) for p in chosen}
    for p in predictions:
        if p.data_type not in ("efficiencyMap", "combined"):
            continue
        if sibling_key(p.analysis) in with_ul:
            continue
        if p.data_type == "efficiencyMap":
            chosen.append(p)
            continue
        if results is None:
            msg = (
                f"combined prediction {p.analysis}: the upper-limit critic needs its best signal "
                "region; pass CriticContext(database=...) or predictions made with "
                "PredictionSettings(combine=False)"
            )
            raise CriticInputError(msg)
        if p.result_id not in results:
            msg = f"result {p.result_id} of a combined prediction is not in the database given"
            raise CriticInputError(msg)
        region = best_region(p, results[p.result_id])
        if region is not None:
            chosen.append(region)
    return chosen
