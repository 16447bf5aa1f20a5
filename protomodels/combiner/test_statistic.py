"""The test statistic of a protomodel: K = T_L + 2 ln pi.

T_L is the summed weight 2 [ln L(mu) - ln L(0)] of the best combination of results, maximised
over the combination and over mu >= 0 (:mod:`protomodels.combiner.mu_search`); pi is the prior
(:mod:`protomodels.combiner.prior`) computed, as the reference builder does, on the model whose
signal is rescaled by mu-hat (every multiplier and cross section times mu-hat). When no
combination has a positive weight (T_L = 0, mu-hat undefined), the prior is computed on the model
as given and the flag ``no_combination`` is set.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from protomodels.combiner.candidates import select_candidates
from protomodels.combiner.graph import CombinabilityGraph, load_combinability
from protomodels.combiner.mu_search import (
    CombinationFit,
    MuSearchSettings,
    best_combination_in_mu,
)
from protomodels.combiner.named import (
    fit_named_combination,
    name_combination,
    parse_combination,
)
from protomodels.combiner.prior import Prior, PriorSettings, compute_prior, model_multipliers
from protomodels.theory.predictions import TheoryPrediction
from protomodels.theory.protomodel import Protomodel
from protomodels.theory.xsec import XsecTables

__all__ = ["CombinationMember", "KResult", "KSettings", "compute_k"]


def __dir__() -> list[str]:
    return __all__


Pair = tuple[int, int]


@dataclass(frozen=True)
class KSettings:
    """Settings of K.

    Attributes:
        combinability: ``"yaml"`` (default), ``"handcrafted"``, a JSON path or a loaded
            :class:`~protomodels.combiner.graph.CombinabilityGraph`.
        shared: the shared data folder (default: found by :func:`protomodels.paths.shared_dir`).
        data_types: data types that may enter the combination (reference: no upper limits).
        drop_regions_of_combined: drop single regions of a result with a combined prediction.
        regions: which regions of an analysis become candidates (see
            :func:`~protomodels.combiner.candidates.select_candidates`).
        prior: prior name and penalty switches.
        search: settings of the search in mu.
        combination: score this combination instead of searching for the best one: labels
            ``"analysis:dataset"`` (see :mod:`~protomodels.combiner.named`); None: the best.
        force_combination: score a named combination whose members may not be combined
            (flagged), instead of refusing it.
    """

    combinability: str | os.PathLike[str] | CombinabilityGraph = "yaml"
    shared: str | os.PathLike[str] | None = None
    data_types: tuple[str, ...] = ("efficiencyMap", "combined")
    drop_regions_of_combined: bool = True
    regions: str = "all"
    prior: PriorSettings = field(default_factory=PriorSettings)
    search: MuSearchSettings = field(default_factory=MuSearchSettings)
    combination: tuple[str, ...] | None = None
    force_combination: bool = False

    def graph(self) -> CombinabilityGraph:
        """The combinability graph."""
        if isinstance(self.combinability, CombinabilityGraph):
            return self.combinability
        return load_combinability(self.combinability, shared=self.shared)


@dataclass(frozen=True)
class CombinationMember:
    """One result in the best combination and its weight w_i(mu)."""

    analysis: str
    dataset: str | None
    data_type: str
    contribution: float

    def to_json(self) -> dict[str, Any]:
        return {
            "analysis": self.analysis,
            "dataset": self.dataset,
            "dataType": self.data_type,
            "contribution": self.contribution,
        }


@dataclass(frozen=True)
class KResult:
    """K of a protomodel and how it came about.

    Attributes:
        K: T_L + 2 ln(prior).
        T_L: best summed weight over combinations and mu >= 0.
        T_L_mu1: best summed weight at mu = 1.
        muhat: the mu of T_L (0 when no combination).
        prior: the prior (on the model rescaled by muhat) and its parts.
        combination: members of the best combination, with w_i(muhat).
        combination_mu1: members of the best combination at mu = 1, with w_i(1).
        certified, gap: see :class:`~protomodels.combiner.mu_search.CombinationFit`.
        flags: remarks (``no_combination``, ``multipliers_from_xsecs``,
            ``not_certified: ...``, and the prior's flags).
    """

    K: float
    T_L: float
    T_L_mu1: float
    muhat: float
    prior: Prior
    combination: tuple[CombinationMember, ...]
    combination_mu1: tuple[CombinationMember, ...]
    certified: bool
    gap: float
    flags: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record (names as in the builder_K reference files where they exist)."""
        c = self.prior.complexity
        return {
            "K": self.K,
            "T_L": self.T_L,
            "T_L_mu1": self.T_L_mu1,
            "muhat": self.muhat,
            "prior": self.prior.value,
            "prior_parts": {
                "n_particles": c.n_particles,
                "n_branchings": c.n_branchings,
                "n_multipliers": c.n_multipliers,
                "prior_before_penalties": self.prior.before_penalties,
                "penalties": {
                    "missingExperiment": self.prior.missing_experiment,
                    "extremeSSMs": self.prior.extreme_multipliers,
                    "undemocraticFlavors": self.prior.undemocratic_flavours,
                },
            },
            "best_combination": [m.to_json() for m in self.combination],
            "best_combination_mu1": [m.to_json() for m in self.combination_mu1],
            "certified": self.certified,
            "gap": self.gap,
            "flags": list(self.flags),
        }


def _named_fit(
    settings: KSettings, candidates: list, adjacency: Any, flags: list[str]
) -> CombinationFit:
    """The fit of the combination the settings name, as a :class:`CombinationFit` over the
    candidates (:mod:`~protomodels.combiner.named`); its remarks go to ``flags``."""
    named = name_combination(
        parse_combination(settings.combination or ()), candidates, adjacency,
        force=settings.force_combination,
    )
    fit, at_hat, at_one = fit_named_combination(named, settings.search)
    position = {id(c): i for i, c in enumerate(candidates)}
    indices = tuple(position[id(c)] for c in named.members)
    labels = ", ".join(f"{c.analysis}:{c.dataset}" for c in named.members)
    flags.append(f"named combination: {labels}")
    flags.extend(f"forced: {a} and {b} may not be combined" for a, b in named.not_combinable)
    positive = bool(fit.indices)
    if not positive:
        flags.append("named combination: its summed weight is nowhere positive for mu > 0")
    return dataclasses.replace(
        fit,
        indices=indices if positive else (),
        contributions=at_hat if positive else (),
        indices_mu1=indices,
        T_L_mu1=float(sum(at_one)),
        contributions_mu1=at_one,
    )


def compute_k(
    model: Protomodel,
    predictions: Iterable[TheoryPrediction],
    xsecs: Mapping[Pair, Mapping[float, float]],
    settings: KSettings | None = None,
    *,
    multipliers: Mapping[Pair, float] | None = None,
    tables: XsecTables | None = None,
) -> KResult:
    """K = T_L + 2 ln pi of a protomodel.

    Args:
        model: the protomodel.
        predictions: its theory predictions, each with its ``statistics``.
        xsecs: its cross sections per production channel, {pair: {sqrts: fb}}
            (``Predictor.cross_sections(model)``).
        settings: combinability, candidate selection, prior and search settings.
        multipliers: signal-strength multiplier per channel; default the model's own
            (:func:`~protomodels.combiner.prior.model_multipliers`: for explicit cross sections
            they are derived from the reference tables).
        tables: reference cross-section tables (for derived multipliers).
    """
    settings = settings or KSettings()
    predictions = list(predictions)
    entering = [p for p in predictions if p.data_type in settings.data_types]
    candidates = select_candidates(
        entering,
        data_types=settings.data_types,
        drop_regions_of_combined=settings.drop_regions_of_combined,
        regions=settings.regions,
    )
    graph = settings.graph()
    flags = []
    if settings.combination:
        fit = _named_fit(settings, candidates, graph.matrix(candidates), flags)
    else:
        fit = best_combination_in_mu(
            [c.likelihood for c in candidates],
            graph.matrix(candidates),
            [c.analysis for c in candidates],
            settings=settings.search,
        )
    if multipliers is None:
        multipliers, derived = model_multipliers(model, xsecs, tables=tables)
        if derived:
            flags.append("multipliers_from_xsecs")
    scale = fit.mu_hat
    if not fit.indices:
        flags.append("no_combination")
        scale = 1.0
    if not fit.certified:
        flags.append(f"not_certified: T_L may be up to {fit.gap:.3g} larger")
    prior = compute_prior(
        model,
        multipliers,
        xsecs,
        [p.analysis for p in entering],
        settings=settings.prior,
        scale=scale,
    )
    flags.extend(prior.flags)

    def members(indices: tuple[int, ...], values: tuple[float, ...]) -> tuple:
        return tuple(
            CombinationMember(
                candidates[i].analysis, candidates[i].dataset, candidates[i].data_type, v
            )
            for i, v in zip(indices, values, strict=True)
        )

    return KResult(
        K=fit.T_L + 2.0 * math.log(prior.value),
        T_L=fit.T_L,
        T_L_mu1=fit.T_L_mu1,
        muhat=fit.mu_hat,
        prior=prior,
        combination=members(fit.indices, fit.contributions),
        combination_mu1=members(fit.indices_mu1, fit.contributions_mu1),
        certified=fit.certified,
        gap=fit.gap,
        flags=tuple(flags),
    )
