"""The statistics of one theory prediction, as a typed record.

The statistics stage (:mod:`~protomodels.statistics.attach`, and the pyhf stage
:mod:`~protomodels.statistics.full_likelihood`) gives every prediction one
:class:`PredictionStatistics`: the kind of likelihood, -ln L at mu = 1, at mu = 0 (the
Standard Model) and at its maximum, mu-hat, the likelihood object the combiner and the critics
evaluate, and where there is none, the fallback that applies and why. The combiner and the
critics read these fields by name.

Example:
    >>> s = PredictionStatistics("single_region", nll1=2.0, nll_sm=1.5, nll_max=1.5, mu_hat=0.0)
    >>> s.has_likelihood, round(s.L_SM, 4)
    (False, 0.2231)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

__all__ = ["KINDS", "Kind", "PredictionStatistics", "likelihood_of", "likelihood_value"]


def __dir__() -> list[str]:
    return __all__


#: the kinds of likelihood a prediction can have ("none": no likelihood, r only)
Kind = Literal["upper_limit", "single_region", "simplified", "pyhf", "none"]
KINDS: tuple[str, ...] = ("upper_limit", "single_region", "simplified", "pyhf", "none")


def likelihood_value(nll: float) -> float:
    """exp(-nll) for L1, L_SM, L_max: 0 where it underflows (nll >= 745), inf where it
    overflows (nll <= -709: a likelihood density, e.g. a very narrow truncated Gaussian of a
    strongly excluded model), NaN where nll is NaN (a failed fit is not a likelihood of zero).
    Use the nll values where precision matters."""
    if math.isnan(nll):
        return math.nan
    if nll >= 745:
        return 0.0
    return math.exp(-nll) if nll > -709 else math.inf


@dataclass(frozen=True)
class PredictionStatistics:
    """Likelihood quantities of one prediction.

    Attributes:
        kind: the kind of likelihood (:data:`KINDS`; ``"none"``: no likelihood).
        nll1, nll_sm, nll_max: -ln L at mu = 1, at mu = 0 and at mu-hat (NaN without).
        mu_hat: the maximum-likelihood signal strength (may be negative; NaN without).
        likelihood: the likelihood object (``nll(mu, expected=False)``, ``mu_hat``,
            ``nll_max``) the combiner and the critics evaluate, or None.
        fallback: why the prediction has no likelihood of its own or what stands in for it
            (a pyhf fit that failed, full likelihoods off, a missing JSON file), else None.
        error: the message of a failed likelihood computation, else None.
        converged: for pyhf fits, whether every fit converged within its budget.
        workspace: for pyhf likelihoods, the JSON file whose workspace was used.
        limit_failed: a CLs upper-limit search of a combined prediction failed (its limits
            are then None).
    """

    kind: str = "none"
    nll1: float = math.nan
    nll_sm: float = math.nan
    nll_max: float = math.nan
    mu_hat: float = math.nan
    likelihood: Any = None
    fallback: str | None = None
    error: str | None = None
    converged: bool | None = None
    workspace: str | None = None
    limit_failed: bool = False

    @classmethod
    def without_likelihood(
        cls, fallback: str | None, *, error: str | None = None, converged: bool | None = None
    ) -> PredictionStatistics:
        """No likelihood, for a stated reason."""
        return cls(fallback=fallback, error=error, converged=converged)

    @classmethod
    def from_likelihood(
        cls, likelihood: Any, *, kind: str | None = None, **notes: Any
    ) -> PredictionStatistics:
        """The statistics of any object with ``nll(mu)`` (vectorised) and ``mu_hat`` (and
        optionally ``nll_max``, else ``nll(mu_hat)``), e.g. a likelihood of one's own;
        ``kind``: default the object's ``kind`` attribute, else ``"user"``."""
        nll1, nll_sm = (float(v) for v in np.asarray(likelihood.nll([1.0, 0.0])).reshape(-1))
        mu_hat = float(likelihood.mu_hat)
        nll_max = getattr(likelihood, "nll_max", None)
        if nll_max is None:
            nll_max = np.asarray(likelihood.nll([mu_hat])).reshape(-1)[0]
        return cls(
            kind or getattr(likelihood, "kind", "user"), nll1, nll_sm, float(nll_max), mu_hat,
            likelihood, **notes,
        )

    @property
    def has_likelihood(self) -> bool:
        """A likelihood object with finite -ln L at mu = 0 and 1."""
        return (
            self.likelihood is not None
            and math.isfinite(self.nll1)
            and math.isfinite(self.nll_sm)
        )

    @property
    def L1(self) -> float:  # noqa: N802 - the SModelS name
        """L(mu = 1) (:func:`likelihood_value`)."""
        return likelihood_value(self.nll1)

    @property
    def L_SM(self) -> float:  # noqa: N802 - the SModelS name
        """L(mu = 0)."""
        return likelihood_value(self.nll_sm)

    @property
    def L_max(self) -> float:  # noqa: N802 - the SModelS name
        """L(mu-hat)."""
        return likelihood_value(self.nll_max)

    def with_fallback(self, fallback: str | None) -> PredictionStatistics:
        """The same statistics with another fallback note."""
        return replace(self, fallback=fallback)

    def to_json(self) -> dict[str, Any]:
        """The keys of the SModelS reference files (``L1``, ``L_SM``, ``L_max``, ``muhat``,
        ``nll1``, ``nll_SM``, ``nll_max``) where there are values, and ``fallback``,
        ``likelihood_error``, ``pyhf_converged``, ``pyhf_workspace``, ``limit_failed`` where
        they apply."""
        record: dict[str, Any] = {}
        if self.likelihood is not None:
            record.update(
                L1=self.L1, L_SM=self.L_SM, L_max=self.L_max, muhat=self.mu_hat,
                nll1=self.nll1, nll_SM=self.nll_sm, nll_max=self.nll_max,
            )
        optional = {
            "fallback": self.fallback,
            "likelihood_error": self.error,
            "pyhf_converged": self.converged,
            "pyhf_workspace": self.workspace,
            "limit_failed": self.limit_failed or None,
        }
        record.update({k: v for k, v in optional.items() if v is not None})
        return record


def likelihood_of(prediction: Any) -> Any:
    """The likelihood object of a theory prediction, or None when it has none (no statistics
    yet, or none for a stated reason)."""
    statistics = getattr(prediction, "statistics", None)
    return None if statistics is None else statistics.likelihood
