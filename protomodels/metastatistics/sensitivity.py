"""The small-excess view: results sensitive to a model that did not exclude it, and Bayes factors.

A search whose expected CLs at the model is at most 0.05 but whose observed CLs is above it was
expected to exclude the model and did not, because of an excess (seed 002's "small excess"
criterion). CLs falls with the signal strength and the 95 % CL limit is where it crosses 0.05,
so the criterion is r_exp >= 1 > r_obs with r = sigma / UL, the r of the predictions (the
likelihood of each result as the evaluation uses it: pyhf, simplified likelihood, single region,
truncated Gaussian). The Bayes factor is approximated as seed 000 does,
B10 = L(mu = 1) / L(mu = 0) with the nuisances profiled, so ln B10 = nll(0) - nll(1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SensitiveResult",
    "combination_log_bayes_factor",
    "log_bayes_factor",
    "sensitive_unexcluded",
]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True)
class SensitiveResult:
    """A prediction that was expected to exclude the model and did not.

    Attributes:
        result_id, analysis_id: the result.
        dataset: the data set (``"(combined)"`` for a combination, None for upper limits).
        topologies: the txnames that contribute.
        r_obs, r_exp: sigma / observed and expected upper limits.
        log_b10: ln B10 = nll(mu = 0) - nll(mu = 1) (None without a likelihood).
        mu_hat: the best-fit signal strength (None without a likelihood).
    """

    result_id: str
    analysis_id: str
    dataset: str | None
    topologies: tuple[str, ...]
    r_obs: float
    r_exp: float
    log_b10: float | None
    mu_hat: float | None

    @property
    def b10(self) -> float | None:
        """B10 = exp(ln B10)."""
        if self.log_b10 is None:
            return None
        return math.exp(min(self.log_b10, 700.0))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "result": self.result_id, "analysis": self.analysis_id, "dataset": self.dataset,
            "topologies": list(self.topologies), "r_obs": self.r_obs, "r_exp": self.r_exp,
            "ln_B10": self.log_b10, "B10": self.b10, "mu_hat": self.mu_hat,
        }


def log_bayes_factor(prediction: Any) -> float | None:
    """ln B10 = nll(0) - nll(1) of a prediction with statistics, None without a likelihood."""
    s = getattr(prediction, "statistics", None)
    if s is None or not s.has_likelihood:
        return None
    return float(s.nll_sm - s.nll1)


def sensitive_unexcluded(
    predictions: Iterable[Any], *, threshold: float = 1.0
) -> list[SensitiveResult]:
    """Predictions with r_exp >= threshold > r_obs (expected CLs <= 0.05 < observed CLs),
    sorted by r_exp / r_obs (the largest gap between expectation and observation first)."""
    rows: list[SensitiveResult] = []
    for p in predictions:
        r_obs, r_exp = p.r_obs, p.r_exp
        if r_obs is None or r_exp is None or not (r_exp >= threshold > r_obs):
            continue
        s = p.statistics
        rows.append(SensitiveResult(
            result_id=p.result_id, analysis_id=p.analysis, dataset=p.dataset,
            topologies=tuple(p.txnames), r_obs=float(r_obs), r_exp=float(r_exp),
            log_b10=log_bayes_factor(p),
            mu_hat=float(s.mu_hat) if s is not None and s.has_likelihood else None,
        ))
    rows.sort(key=lambda r: -(r.r_exp / max(r.r_obs, 1e-300)))
    return rows


def combination_log_bayes_factor(members: Sequence[Any]) -> float | None:
    """ln B10 of a combination of independent predictions: the sum of the members'."""
    values = [log_bayes_factor(p) for p in members]
    if not values or any(v is None for v in values):
        return None
    return float(sum(values))
