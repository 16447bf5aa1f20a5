"""A combination the user names: its T_L, mu-hat and members, to compare K with another
builder's choice.

A combination is named by labels ``"analysis:dataset"`` (``"analysis"`` alone: the analysis'
combined prediction, or its only candidate). The members must be candidates of the model (see
:func:`~protomodels.combiner.candidates.select_candidates`) and pairwise combinable in the
combinability graph; ``force=True`` scores a combination that is not, with a flag that names
the pairs. T_L = max over 0 <= mu <= mu_max of the summed weight sum_i 2 [ln L_i(mu) -
ln L_i(0)], found by the same certified search in mu as the best combination
(:func:`~protomodels.combiner.mu_search.best_combination_in_mu`) on the summed likelihood; 0,
with mu-hat 0, when the sum is nowhere positive (as for the best combination).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar

from protomodels.combiner.candidates import Candidate
from protomodels.combiner.graph import CombinabilityError
from protomodels.combiner.mu_search import CombinationFit, MuSearchSettings, best_combination_in_mu

__all__ = [
    "NamedCombination",
    "SummedLikelihood",
    "fit_named_combination",
    "name_combination",
    "parse_combination",
]


def __dir__() -> list[str]:
    return __all__


def parse_combination(text: str | Sequence[str]) -> tuple[str, ...]:
    """Labels of a combination from ``"A:ds,B:ds"`` (or a sequence of labels), stripped, in
    order, without repeats.

    >>> parse_combination("ATLAS-SUSY-2018-41:SR-2B2Q-Vh, CMS-SUS-21-002")
    ('ATLAS-SUSY-2018-41:SR-2B2Q-Vh', 'CMS-SUS-21-002')
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    labels = tuple(dict.fromkeys(s.strip() for s in items if s.strip()))
    if not labels:
        msg = "combination: no result named (give 'analysis:dataset,analysis:dataset,...')"
        raise CombinabilityError(msg)
    return labels


@dataclass(frozen=True, eq=False)
class SummedLikelihood:
    """The product of independent likelihoods: nll(mu) = sum of the members' nll(mu)."""

    members: tuple

    def nll(self, mu: ArrayLike, expected: bool = False) -> np.ndarray:
        values = [np.asarray(m.nll(mu, expected=expected), dtype=float) for m in self.members]
        return np.sum(values, axis=0)

    @functools.cached_property
    def _maximum(self) -> tuple[float, float]:
        """(mu-hat, nll at mu-hat): for log-concave members the maximum of the product lies
        between the smallest and the largest of their mu-hat (a bounded 1-d search there)."""
        hats = [float(m.mu_hat) for m in self.members]
        lo, hi = min(hats), max(hats)
        if hi - lo <= 1e-12 * max(1.0, abs(hi)):
            return lo, float(self.nll(np.asarray([lo]))[0])
        found = minimize_scalar(
            lambda x: float(self.nll(np.asarray([x]))[0]), bounds=(lo, hi), method="bounded",
            options={"xatol": 1e-10 * max(1.0, hi - lo)},
        )
        return float(found.x), float(found.fun)

    @property
    def mu_hat(self) -> float:
        """The maximum-likelihood mu of the product."""
        return self._maximum[0]

    @property
    def nll_max(self) -> float:
        return self._maximum[1]


@dataclass(frozen=True)
class NamedCombination:
    """The members a user named, matched to candidates, and what the check found.

    Attributes:
        members: the candidates, in the order named.
        not_combinable: label pairs the combinability graph does not allow (forced only).
    """

    members: tuple[Candidate, ...]
    not_combinable: tuple[tuple[str, str], ...]


def _label(c: Candidate) -> str:
    return f"{c.analysis}:{c.dataset}"


def _match(label: str, candidates: Sequence[Candidate]) -> Candidate:
    analysis, _, dataset = label.partition(":")
    same = [c for c in candidates if c.analysis == analysis]
    if dataset:
        hit = [c for c in same if str(c.dataset) == dataset]
    else:
        hit = [c for c in same if c.data_type == "combined"] or (same if len(same) == 1 else [])
    if len(hit) == 1:
        return hit[0]
    if not same:
        msg = (
            f"combination: {label!r} is not a candidate of this model (no prediction of "
            f"{analysis} with a likelihood that may enter a combination; `protomodel "
            "evaluate` lists the candidates)"
        )
    else:
        shown = ", ".join(sorted(_label(c) for c in same)[:6])
        msg = (
            f"combination: {label!r} is ambiguous or unknown; the candidates of {analysis} "
            f"are {shown}"
        )
    raise CombinabilityError(msg)


def name_combination(
    labels: Sequence[str],
    candidates: Sequence[Candidate],
    adjacency: np.ndarray,
    *,
    force: bool = False,
) -> NamedCombination:
    """Match ``labels`` to ``candidates`` and check them against the combinability matrix
    ``adjacency`` (of the candidates).

    Raises:
        CombinabilityError: a label matches no candidate (or several), or two members may not
            be combined and ``force`` is off.
    """
    index = {id(c): i for i, c in enumerate(candidates)}
    members = tuple(_match(label, candidates) for label in labels)
    if len({id(c) for c in members}) != len(members):
        msg = f"combination: {', '.join(labels)} names one candidate twice"
        raise CombinabilityError(msg)
    bad = tuple(
        (_label(a), _label(b))
        for k, a in enumerate(members)
        for b in members[k + 1:]
        if not adjacency[index[id(a)], index[id(b)]]
    )
    if bad and not force:
        pairs = "; ".join(f"{a} and {b}" for a, b in bad[:5])
        msg = (
            f"combination: {pairs} may not be combined (combinability graph); force it with "
            "--force-combination (force=True) to score it anyway"
        )
        raise CombinabilityError(msg)
    return NamedCombination(members, bad)


def fit_named_combination(
    named: NamedCombination, settings: MuSearchSettings
) -> tuple[CombinationFit, tuple[float, ...], tuple[float, ...]]:
    """The search in mu on the members' summed likelihood: (fit of the sum, each member's
    weight at mu-hat, at mu = 1)."""
    summed = SummedLikelihood(tuple(c.likelihood for c in named.members))
    fit = best_combination_in_mu(
        [summed], np.ones((1, 1), dtype=bool), ["named"], settings=settings
    )

    def weights(mu: float) -> tuple[float, ...]:
        return tuple(
            2.0 * (c.nll0 - float(np.asarray(c.likelihood.nll(np.asarray([mu]))).reshape(-1)[0]))
            for c in named.members
        )

    at_hat = weights(fit.mu_hat) if fit.indices else tuple(0.0 for _ in named.members)
    at_one = weights(1.0)
    if not all(map(math.isfinite, at_one)):
        msg = "combination: a member's likelihood is not finite at mu = 1"
        raise CombinabilityError(msg)
    return fit, at_hat, at_one
