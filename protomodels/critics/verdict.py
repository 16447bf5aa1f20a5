"""Records of what a critic saw and decided, and the cap on the signal strength.

A :class:`Verdict` names the results a critic examined (one :class:`CriticEntry` each, with its
r-values), its counts (upper-limit critic), the combination it tested (likelihood critic), whether
the model passed, and ``mu_max``, the largest signal strength (relative to the predictions it
was given) that keeps the critic's largest r below its threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from protomodels.exceptions import ProtomodelsError

__all__ = ["CriticEntry", "CriticInputError", "Verdict", "mu_cap"]


def __dir__() -> list[str]:
    return __all__


#: mu_max sits this fraction below the threshold, so that a model scaled to mu_max passes
#: (``getMaxAllowedMu`` of the reference builder, branches main / paper2020).
CAP_SAFETY = 0.999


class CriticInputError(ProtomodelsError):
    """A critic received input it cannot judge (missing context, malformed matrix, ...)."""


@dataclass(frozen=True)
class CriticEntry:
    """One prediction as a critic saw it.

    Attributes:
        analysis: analysis id.
        result_id: the result's folder name.
        dataset: data-set id, ``"(combined)"``, or None (upper-limit result).
        data_type: ``upperLimit``, ``efficiencyMap`` or ``combined``.
        r_obs: sigma / observed UL (None if there is no observed limit).
        r_exp: sigma / expected UL (None if there is no expected limit).
        sensitive: counted as sensitive (upper-limit critic) or passed the r_exp cut
            (likelihood critic).
        excluding: counted as excluding (upper-limit critic only).
        weight: the expected exclusion weight 2[nll_exp(1) - nll_exp(0)] (likelihood critic).
        combined: part of the combination the likelihood critic tested.
    """

    analysis: str
    result_id: str
    dataset: str | None
    data_type: str
    r_obs: float | None
    r_exp: float | None
    sensitive: bool = False
    excluding: bool = False
    weight: float | None = None
    combined: bool = False

    @property
    def label(self) -> str:
        """``analysis:dataset`` (``analysis:UL`` for upper-limit results)."""
        return f"{self.analysis}:{self.dataset if self.dataset is not None else 'UL'}"


@dataclass(frozen=True)
class Verdict:
    """What a critic (or a set of critics) decided about one model.

    Attributes:
        critic: the critic's name (``"all"`` for the combined verdict of :func:`run_critics`).
        passed: the model survives (always True in constructive mode).
        constructive: mu_max caps the signal strength instead of a veto.
        mu_max: largest allowed signal strength relative to the predictions judged
            (``inf`` when nothing constrains it).
        r_max: the r that sets mu_max (largest r_obs, or the combination's r).
        entries: the predictions examined, largest r_obs first.
        n_sensitive, n_excluding, allowed: counts of the upper-limit critic (allowed = the
            largest number of excluding results the binomial rule tolerates).
        combination: labels of the combination the likelihood critic tested.
        r_combined: that combination's observed r.
        notes: predictions left out and why, and other remarks.
        parts: the verdicts of the single critics (combined verdict only).
    """

    critic: str
    passed: bool
    constructive: bool = False
    mu_max: float = math.inf
    r_max: float | None = None
    entries: tuple[CriticEntry, ...] = ()
    n_sensitive: int | None = None
    n_excluding: int | None = None
    allowed: int | None = None
    combination: tuple[str, ...] = ()
    r_combined: float | None = None
    notes: tuple[str, ...] = ()
    parts: tuple[Verdict, ...] = ()

    def summary(self) -> str:
        """One line for logs, e.g. ``upper_limit: passed (n_sensitive=3, ...)``."""
        if self.parts:
            return "; ".join(part.summary() for part in self.parts) or f"{self.critic}: no critic"
        status = "passed" if self.passed else "failed"
        details = []
        if self.n_sensitive is not None:
            details.append(
                f"n_sensitive={self.n_sensitive}, n_excluding={self.n_excluding}, "
                f"allowed={self.allowed}"
            )
        if self.combination:
            r = "None" if self.r_combined is None else f"{self.r_combined:.3g}"
            details.append(f"combination={'+'.join(self.combination)}, r={r}")
        if self.r_max is not None:
            details.append(f"r_max={self.r_max:.3g}")
        details.append(f"mu_max={self.mu_max:.3g}")
        return f"{self.critic}: {status} ({', '.join(details)})"


def mu_cap(r_max: float | None, threshold: float, safety: float = CAP_SAFETY) -> float:
    """Largest mu with mu x r_max below the threshold: safety x threshold / r_max.

    r scales linearly with the signal strength (the signal enters as mu x s), so a model scaled
    by mu_max has its largest r at ``safety x threshold``. None or r_max <= 0 give ``inf``.
    """
    if r_max is None or not r_max > 0:
        return math.inf
    return safety * threshold / r_max
