"""The upper-limit critic: how many sensitive results exclude the model, against a binomial.

Reference: SModelS/protomodels ``develop``, ``tester/critic.py`` (``UL_critic``): over the
upper-limit predictions and the best regions of efficiency-map results without an upper-limit
sibling, a result is *sensitive* if r_exp >= 0.7 (r_obs where there is no expected limit) and
*excluding* if it is sensitive and r_obs > 1.38. With 5 % false exclusions per sensitive result,
the number of excluding results may be at most the smallest k with
P(Binomial(n_sensitive, 0.05) <= k) > 0.66.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from scipy.stats import binom

from protomodels.critics.context import CriticContext
from protomodels.critics.selection import upper_limit_candidates
from protomodels.critics.verdict import CriticEntry, Verdict, mu_cap
from protomodels.theory.predictions import TheoryPrediction

__all__ = ["UpperLimitCritic", "allowed_exclusions"]


def __dir__() -> list[str]:
    return __all__


@lru_cache(maxsize=4096)
def allowed_exclusions(n_sensitive: int, p_exclusion: float = 0.05, quantile: float = 0.66) -> int:
    """Smallest k with P(Binomial(n_sensitive, p_exclusion) <= k) > quantile (remembered: the
    walk asks for the same few counts at every step)."""
    if n_sensitive < 0:
        msg = f"n_sensitive must be >= 0, got {n_sensitive}"
        raise ValueError(msg)
    k = 0
    while binom.cdf(k, n_sensitive, p_exclusion) <= quantile:
        k += 1
    return k


@dataclass(frozen=True)
class UpperLimitCritic:
    """Counts sensitive and excluding results and compares them with a binomial quantile.

    Attributes:
        r_threshold: r_obs above this excludes (reference 1.38); also sets mu_max.
        sensitivity: r_exp at or above this is sensitive (reference 0.7).
        p_exclusion: chance that a sensitive result excludes a true model (0.05).
        quantile: the binomial quantile (0.66).
        name: the critic's name in verdicts.
    """

    r_threshold: float = 1.38
    sensitivity: float = 0.7
    p_exclusion: float = 0.05
    quantile: float = 0.66
    name: str = "upper_limit"

    def __call__(self, predictions: Sequence[TheoryPrediction], context: CriticContext) -> Verdict:
        """Judge the predictions; mu_max = 0.999 x r_threshold / (largest r_obs)."""
        results = None
        if context.database is not None:
            results = {r.result_id: r for r in context.database.results}
        candidates = upper_limit_candidates(predictions, results)
        entries, notes = [], []
        for p in candidates:
            r_obs, r_exp = p.r_obs, p.r_exp
            if r_obs is None:
                notes.append(f"{p.analysis}:{p.dataset}: no observed upper limit, left out")
                continue
            reference = r_exp if r_exp is not None else r_obs
            sensitive = reference >= self.sensitivity
            entries.append(
                CriticEntry(
                    analysis=p.analysis,
                    result_id=p.result_id,
                    dataset=p.dataset,
                    data_type=p.data_type,
                    r_obs=r_obs,
                    r_exp=r_exp,
                    sensitive=sensitive,
                    excluding=sensitive and r_obs > self.r_threshold,
                )
            )
        entries.sort(key=lambda e: -(e.r_obs or 0.0))
        n_sensitive = sum(e.sensitive for e in entries)
        n_excluding = sum(e.excluding for e in entries)
        allowed = allowed_exclusions(n_sensitive, self.p_exclusion, self.quantile)
        r_max = entries[0].r_obs if entries else None
        return Verdict(
            critic=self.name,
            passed=context.constructive or n_excluding <= allowed,
            constructive=context.constructive,
            mu_max=mu_cap(r_max, self.r_threshold),
            r_max=r_max,
            entries=tuple(entries),
            n_sensitive=n_sensitive,
            n_excluding=n_excluding,
            allowed=allowed,
            notes=tuple(notes),
        )
