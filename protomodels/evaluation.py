"""Evaluation of a protomodel: predictions, likelihoods, the best combination, K, the critics.

The inner loop of the walk (``docs/combiner.md`` §8; issue 7). Defaults follow the reference builder
(SModelS/protomodels ``develop``): sigmacut 0.02 fb, minmassgap 10 GeV, combined signal regions.
The model's multipliers are rescaled by the mu-hat of its best combination (the fixed point the
reference reaches by iterating), and the critics judge the rescaled model.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from protomodels.combiner.candidates import (
    FLAT_TOLERANCE,
    eligible_predictions,
    stand_in_regions,
)
from protomodels.combiner.named import parse_combination
from protomodels.combiner.test_statistic import KResult, KSettings, compute_k
from protomodels.critics import CriticContext, Verdict, combined_limit, run_critics
from protomodels.database.database import Database
from protomodels.database.records import Result
from protomodels.exceptions import ProtomodelsError
from protomodels.kernel_budget import KernelBudget
from protomodels.statistics.attach import LikelihoodBuilder, attach_statistics
from protomodels.statistics.common import (
    PYHF_MAX_ITERATIONS,
    PYHF_MAX_PARAMETERS,
    pyhf_backend,
)
from protomodels.theory.predictions import PredictionSettings, Predictor, TheoryPrediction
from protomodels.theory.protomodel import Protomodel
from protomodels.theory.xsec import XsecTables

__all__ = ["BatchEvaluation", "Evaluation", "EvaluationSettings", "Evaluator", "evaluate"]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True)
class EvaluationSettings:
    """Settings of an evaluation.

    Attributes:
        predictions: decomposition settings (reference builder: sigmacut 0.02 fb,
            minmassgap 10 GeV, combined signal regions on, every signal region a candidate).
        k: combinability, candidate selection, prior and penalties, search in mu.
        constructive: the critics cap mu-hat (mu_max) instead of vetoing the model.
        full_likelihoods: the pyhf full likelihoods (jitted JAX fits) for the results with
            pyhf workspaces, as the reference builder (default); off, their combinations get
            no likelihood (a recorded fallback) and their signal regions stand in.
        pyhf_iterations: the Newton budget of each pyhf fit (warm-started fits take 3-8); a
            fit out of budget is a recorded fallback (the best signal region stands in).
        pyhf_max_parameters: workspaces with more parameters are not fitted (a recorded
            fallback, the best signal region stands in): ATLAS-SUSY-2018-04 (115) and -2018-16
            (~200) at the default 100, whose fits cost seconds and their compilation many GB;
            None fits every workspace.
    """

    predictions: PredictionSettings = field(
        default_factory=lambda: PredictionSettings(
            sigmacut=0.02, minmassgap=10.0, best_dataset=False
        )
    )
    k: KSettings = field(default_factory=KSettings)
    constructive: bool = False
    full_likelihoods: bool = True
    pyhf_iterations: int = PYHF_MAX_ITERATIONS
    pyhf_max_parameters: int | None = PYHF_MAX_PARAMETERS


@dataclass
class Evaluation:
    """The evaluation of one protomodel (what ``protomodel evaluate`` prints).

    Attributes:
        K, T_L: the test statistic and the likelihood ratio at mu-hat (T_L_mu1 at mu = 1).
        muhat: signal strength of the best combination; ``model`` is the input rescaled by it.
        k: the combiner's full result (prior parts, penalties, combination, flags).
        critics: the critics' verdict on the rescaled model.
        passed: whether the critics let the model pass.
        reason: why not (or why it could not be evaluated).
        predictions: the predictions of the rescaled model (with likelihoods).
        combination_particles: particles in the topologies of the best combination.
        seconds: time per stage.
        data_types, drop_regions_of_combined: the combiner's rules for candidates (see
            :func:`~protomodels.combiner.candidates.select_candidates`), for :attr:`candidates`.
    """

    K: float
    T_L: float
    T_L_mu1: float
    muhat: float
    model: Protomodel
    k: KResult | None
    critics: Verdict | None
    passed: bool
    reason: str | None
    predictions: list[TheoryPrediction] = field(default_factory=list)
    combination_particles: frozenset[int] = frozenset()
    seconds: dict[str, float] = field(default_factory=dict)
    data_types: tuple[str, ...] = ("efficiencyMap", "combined")
    drop_regions_of_combined: bool = True

    @property
    def candidates(self) -> list[dict[str, Any]]:
        """Every result the evaluation considered (the predictions of the rescaled model): its
        ``analysis``, ``dataset``, ``data_type``, ``kind`` of likelihood (upper_limit,
        single_region, simplified, pyhf or none), ``r_obs``, ``r_exp``, ``nll0`` and ``nll1``
        (-ln L at mu = 0 and 1), whether it could enter the combination (``candidate``) and
        entered the best one (``combined``), ``fallback`` where one applies and ``why`` it has
        no likelihood or is no candidate."""
        return candidate_rows(
            self.predictions,
            {(m.analysis, m.dataset) for m in (self.k.combination if self.k else ())},
            data_types=self.data_types,
            drop_regions_of_combined=self.drop_regions_of_combined,
        )

    @property
    def combination(self) -> list[dict[str, Any]]:
        """The best combination: analysis, data set, contribution to T_L."""
        if self.k is None:
            return []
        return [m.to_json() for m in self.k.combination]

    def as_json(self) -> dict[str, Any]:
        """JSON with the keys ``K``, ``T_L``, ``muhat``, ``prior``, ``combination``,
        ``critics`` (and details)."""
        k = self.k.to_json() if self.k is not None else {}
        critics: dict[str, Any] = {"passed": self.passed, "reason": self.reason}
        if self.critics is not None:
            critics.update(
                summary=self.critics.summary(),
                mu_max=_finite(self.critics.mu_max),
                verdicts=[
                    {
                        "critic": v.critic,
                        "passed": v.passed,
                        "n_sensitive": v.n_sensitive,
                        "n_excluding": v.n_excluding,
                        "allowed": v.allowed,
                        "r_max": v.r_max,
                        "mu_max": _finite(v.mu_max),
                        "combination": list(v.combination),
                        "r_combined": v.r_combined,
                        "results": [
                            {"label": e.label, "r_obs": e.r_obs, "r_exp": e.r_exp}
                            for e in v.entries[:10]
                        ],
                    }
                    for v in (self.critics.parts or (self.critics,))
                ],
            )
        return {
            "K": _finite(self.K),
            "T_L": _finite(self.T_L),
            "T_L_mu1": _finite(self.T_L_mu1),
            "muhat": _finite(self.muhat),
            "prior": k.get("prior"),
            "prior_parts": k.get("prior_parts"),
            "combination": [
                {"analysis": m["analysis"], "dataset": m["dataset"], "contribution":
                 m["contribution"]}
                for m in k.get("best_combination", [])
            ],
            "combination_mu1": k.get("best_combination_mu1", []),
            "flags": k.get("flags", []),
            "critics": critics,
            "combination_particles": sorted(self.combination_particles),
            "candidates": self.candidates,
            "seconds": self.seconds,
        }


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _no_likelihood_reason(p: TheoryPrediction) -> str:
    """Why a prediction has no likelihood object."""
    s = p.statistics
    for text in (s.fallback, s.error) if s is not None else ():
        if text:
            return text
    if p.data_type == "upperLimit" and not p.expected_upper_limit_fb:
        return "upper-limit result without an expected limit: r only"
    return "no likelihood"


def candidate_rows(
    predictions: Sequence[TheoryPrediction],
    combination: set[tuple[str, str | None]],
    *,
    data_types: Sequence[str] = ("efficiencyMap", "combined"),
    drop_regions_of_combined: bool = True,
) -> list[dict[str, Any]]:
    """One row per prediction: what entered the evaluation (see
    :attr:`Evaluation.candidates`); ``combination``: (analysis, data set) of the best one."""
    eligible = {
        id(p)
        for p in eligible_predictions(
            predictions, data_types=data_types,
            drop_regions_of_combined=drop_regions_of_combined,
        )
    }
    stand_ins = stand_in_regions(predictions)
    combined_results = {p.result_id for p in predictions if p.data_type == "combined"}
    rows = []
    for p in predictions:
        s = p.statistics
        has = s is not None and s.has_likelihood
        nll0, nll1 = (_finite(s.nll_sm), _finite(s.nll1)) if has else (None, None)
        kind = s.kind if has else "none"
        why = None
        fallback = s.fallback if s is not None else None
        if not has:
            why = _no_likelihood_reason(p)
        if p.data_type == "combined" and p.result_id in stand_ins and kind == "none":
            region = stand_ins[p.result_id].dataset
            fallback = f"{fallback or why}; signal region {region} stands in"
        candidate = id(p) in eligible and kind != "none"
        if candidate and abs(math.expm1(min(nll0 - nll1, 700.0))) < FLAT_TOLERANCE:
            candidate, why = False, "flat likelihood: L(1) = L(0)"
        elif why is None and id(p) not in eligible:
            if p.data_type not in data_types:
                why = f"{p.data_type} results do not enter the combination"
            elif p.result_id in combined_results:
                why = "signal region of a combined result: the combination stands for it"
        rows.append({
            "analysis": p.analysis,
            "dataset": p.dataset,
            "data_type": p.data_type,
            "kind": kind,
            "r_obs": _finite(p.r_obs),
            "r_exp": _finite(p.r_exp),
            "nll0": nll0,
            "nll1": nll1,
            "candidate": candidate,
            "combined": (p.analysis, p.dataset) in combination,
            "fallback": fallback,
            "why": why,
        })
    return rows


class Evaluator:
    """Evaluates protomodels against one database (build once, call many times).

    ``results``: only these results of the database are predicted (default: all of them).
    """

    def __init__(
        self,
        database: Database,
        settings: EvaluationSettings | None = None,
        *,
        tables: XsecTables | None = None,
        results: Iterable[Result] | None = None,
    ) -> None:
        self.database = database
        self.settings = settings or EvaluationSettings()
        if self.settings.full_likelihoods:
            _check_workspaces(database)
        self.predictor = Predictor(
            database, settings=self.settings.predictions, tables=tables, results=results
        )
        self.likelihoods = LikelihoodBuilder(database)
        self.graph = self.settings.k.graph()
        # every field of the user's settings, with the graph loaded once (a field-by-field
        # copy dropped ``regions``)
        self.k_settings = dataclasses.replace(self.settings.k, combinability=self.graph)
        self.context = CriticContext(
            combinable=self._combinable,
            database=database,
            constructive=self.settings.constructive,
        )
        #: releases compiled kernels before the process runs out of memory mappings
        self.kernel_budget = KernelBudget()

    def prepare(
        self, *, workers: int = 1, progress: Callable[[int, int], None] | None = None
    ) -> None:
        """Triangulate and stack every grid now (:meth:`Predictor.prepare_grids`), compile the
        grid lookups and the statistics kernels for every padded shape
        (:meth:`Predictor.warm_up`, :meth:`LikelihoodBuilder.warm_up`, the critic's limit
        search :func:`~protomodels.critics.combined_limit.warm_up`) and, with full
        likelihoods, build every pyhf workspace and compile its fits
        (:meth:`prepare_full_likelihoods`), so that a long run meets no new grid and compiles
        no kernel on the way."""
        self.predictor.prepare_grids(workers=workers, progress=progress)
        self.predictor.warm_up()
        self.likelihoods.warm_up()
        combined_limit.warm_up()
        if self.settings.full_likelihoods:
            self.prepare_full_likelihoods()

    def prepare_full_likelihoods(
        self, progress: Callable[[int, int], None] | None = None
    ) -> dict[str, str]:
        """Build and compile the pyhf workspaces the evaluation fits (see
        :func:`~protomodels.statistics.full_likelihood.prepare_full_likelihoods`); returns why
        a result could not be prepared (it is then a recorded fallback, as in every evaluation).
        Nothing to do without full likelihoods."""
        if not self.settings.full_likelihoods:
            return {}
        from protomodels.statistics.full_likelihood import prepare_full_likelihoods

        return prepare_full_likelihoods(
            self.database, max_iterations=self.settings.pyhf_iterations,
            max_parameters=self.settings.pyhf_max_parameters, progress=progress,
        )

    def _combinable(self, predictions: list[TheoryPrediction]) -> Any:
        return self.graph.matrix(predictions)

    def predictions(self, model: Protomodel) -> list[TheoryPrediction]:
        """Predictions with their likelihoods."""
        return self._attach(self.predictor.predict(model))

    def _attach(self, predictions: list[TheoryPrediction]) -> list[TheoryPrediction]:
        attach_statistics(
            predictions, self.database, builder=self.likelihoods,
            full_likelihoods=self.settings.full_likelihoods,
            max_iterations=self.settings.pyhf_iterations,
            max_parameters=self.settings.pyhf_max_parameters,
        )
        return predictions

    def rescaled_predictions(
        self, model: Protomodel, predictions: list[TheoryPrediction], factor: float
    ) -> list[TheoryPrediction]:
        """Predictions (with likelihoods) of ``model.scaled(factor)``: the given ones scaled
        where that is exact (:meth:`Predictor.rescale`), else a new prediction pass."""
        scaled = self.predictor.rescale(model, predictions, factor)
        if scaled is None:
            return self._attach(self.predictor.predict(model.scaled(factor)))
        self.likelihoods.rescale(
            predictions, scaled, factor,
            full_likelihoods=self.settings.full_likelihoods,
            max_iterations=self.settings.pyhf_iterations,
            max_parameters=self.settings.pyhf_max_parameters,
        )
        return scaled

    def _capped(
        self,
        model: Protomodel,
        predictions: list[TheoryPrediction],
        xsecs: dict,
        muhat: float,
        k: KResult,
        verdict: Verdict,
        k_settings: KSettings,
    ) -> tuple[KResult, float, list[TheoryPrediction], Verdict]:
        """Constructive critics (the older reference's ``getMaxAllowedMu``): the signal
        strength is capped at mu-hat x mu_max, where the rescaled model's largest r reaches the
        critics' threshold; T_L, the combination and K are those of the best mu up to the cap.
        A cap of 0 (no limit could be computed) cannot be applied: the model is rejected."""
        cap = muhat * verdict.mu_max
        if not cap > 0:
            raise ProtomodelsError(f"critics: mu_max = {verdict.mu_max:.3g}, no allowed signal")
        search = dataclasses.replace(k_settings.search, mu_max=cap)
        settings = dataclasses.replace(k_settings, search=search)
        capped = compute_k(model, predictions, xsecs, settings, tables=self.predictor.tables)
        flag = f"capped by the critics: mu <= {cap:.4g} (mu_max {verdict.mu_max:.3g})"
        capped = dataclasses.replace(capped, flags=(*capped.flags, flag))
        mu = capped.muhat if capped.combination else cap
        final = self.rescaled_predictions(model, predictions, mu)
        return capped, mu, final, run_critics(final, self.context)

    def __call__(
        self,
        model: Protomodel,
        *,
        combination: str | Sequence[str] | None = None,
        force_combination: bool = False,
    ) -> Evaluation:
        """Evaluate one model (errors of the engine become a NaN K with the reason).

        ``combination``: score this combination (``"A:dataset,B:dataset"`` or a list of such
        labels) instead of the best one: T_L, mu-hat and K are then those of the named
        combination (:mod:`~protomodels.combiner.named`); one that the combinability graph
        does not allow is refused unless ``force_combination`` (then flagged).
        """
        return self._evaluate(model, None, self._k_settings(combination, force_combination))

    def _k_settings(
        self, combination: str | Sequence[str] | None, force_combination: bool
    ) -> KSettings:
        if combination is None:
            return self.k_settings
        return dataclasses.replace(
            self.k_settings, combination=parse_combination(combination),
            force_combination=force_combination,
        )

    def evaluate_many(
        self,
        models: Iterable[Protomodel],
        *,
        chunk: int = 256,
        combination: str | Sequence[str] | None = None,
        force_combination: bool = False,
    ) -> list[Evaluation]:
        """Evaluate many models: the predictions of ``chunk`` models at a time in one batched
        kernel call (:meth:`Predictor.predict_batch`), then each model's statistics,
        combination and critics; the same evaluations as one by one. A chunk whose batched
        predictions fail is predicted model by model, so an error is that model's reason."""
        k_settings = self._k_settings(combination, force_combination)
        models = list(models)
        out: list[Evaluation] = []
        for start in range(0, len(models), max(1, chunk)):
            part = models[start:start + max(1, chunk)]
            t0 = time.perf_counter()
            try:
                batch: list[list[TheoryPrediction] | None] = list(
                    self.predictor.predict_batch(part)
                )
            except Exception:  # noqa: BLE001 - then each model on its own, with its own error
                batch = [None] * len(part)
            share = (time.perf_counter() - t0) / len(part)
            for model, predictions in zip(part, batch, strict=True):
                out.append(self._evaluate(model, predictions, k_settings, share))
        return out

    def batch(
        self,
        models: Iterable[Protomodel],
        *,
        chunk: int = 256,
        combination: str | Sequence[str] | None = None,
        force_combination: bool = False,
    ) -> BatchEvaluation:
        """:meth:`evaluate_many` as arrays (:class:`BatchEvaluation`)."""
        return BatchEvaluation.of(
            self.evaluate_many(
                models, chunk=chunk, combination=combination,
                force_combination=force_combination,
            )
        )

    def _evaluate(
        self,
        model: Protomodel,
        raw: list[TheoryPrediction] | None,
        k_settings: KSettings,
        predicted_in: float = 0.0,
    ) -> Evaluation:
        """One evaluation; ``raw``: the model's predictions without statistics, if made."""
        self.kernel_budget.check()
        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        try:
            if raw is None:
                predictions = self.predictions(model)
            else:
                predictions = self._attach(raw)
            seconds["predictions"] = time.perf_counter() - t0 + predicted_in
            t1 = time.perf_counter()
            xsecs = self.predictor.cross_sections(model)
            k = compute_k(model, predictions, xsecs, k_settings, tables=self.predictor.tables)
            seconds["combination"] = time.perf_counter() - t1
            muhat = k.muhat if k.combination else 1.0
            rescaled = model.scaled(muhat) if muhat != 1.0 else model
            t2 = time.perf_counter()
            final = (
                self.rescaled_predictions(model, predictions, muhat)
                if rescaled is not model
                else predictions
            )
            seconds["rescaled_predictions"] = time.perf_counter() - t2
            t3 = time.perf_counter()
            verdict = run_critics(final, self.context)
            seconds["critics"] = time.perf_counter() - t3
            if self.settings.constructive and verdict.mu_max < 1.0:
                k, muhat, final, verdict = self._capped(
                    model, predictions, xsecs, muhat, k, verdict, k_settings
                )
                rescaled = model.scaled(muhat)
        except ProtomodelsError as err:
            return Evaluation(
                math.nan, math.nan, math.nan, math.nan, model, None, None, False,
                f"{type(err).__name__}: {err}", seconds=seconds,
            )
        except Exception as err:  # noqa: BLE001 - a walk must not die on one model
            # not an input problem the engine names: an internal failure on this model; the
            # walk records it as the reason of a rejected proposal and goes on
            return Evaluation(
                math.nan, math.nan, math.nan, math.nan, model, None, None, False,
                f"internal error ({type(err).__name__}: {err}); please report this model",
                seconds=seconds,
            )
        if not all(map(math.isfinite, (k.K, k.T_L, muhat))):
            return Evaluation(
                math.nan, math.nan, math.nan, math.nan, model, None, None, False,
                _not_finite_reason(k.K, k.T_L, muhat, predictions), seconds=seconds,
            )
        members = {(m.analysis, m.dataset) for m in k.combination}
        particles = frozenset().union(
            *(p.particles for p in final if (p.analysis, p.dataset) in members)
        )
        reason = None if verdict.passed else verdict.summary()
        return Evaluation(
            K=k.K,
            T_L=k.T_L,
            T_L_mu1=k.T_L_mu1,
            muhat=muhat,
            model=rescaled,
            k=k,
            critics=verdict,
            passed=verdict.passed,
            reason=reason,
            predictions=final,
            combination_particles=particles,
            seconds=seconds,
            data_types=tuple(self.k_settings.data_types),
            drop_regions_of_combined=self.k_settings.drop_regions_of_combined,
        )


@dataclass(frozen=True)
class BatchEvaluation:
    """The evaluations of many protomodels as arrays (one entry per model, in order).

    Attributes:
        K, T_L, T_L_mu1, muhat: float arrays, NaN where a model could not be evaluated.
        passed: whether the critics let each model pass (False where not evaluated).
        reason: why a model failed the critics or could not be evaluated (None: passed).
        evaluations: the full :class:`Evaluation` of each model.
    """

    K: np.ndarray
    T_L: np.ndarray
    T_L_mu1: np.ndarray
    muhat: np.ndarray
    passed: np.ndarray
    reason: tuple[str | None, ...]
    evaluations: tuple[Evaluation, ...]

    @classmethod
    def of(cls, evaluations: Sequence[Evaluation]) -> BatchEvaluation:
        """Arrays of a list of evaluations."""

        def column(name: str) -> np.ndarray:
            return np.asarray([getattr(e, name) for e in evaluations], dtype=float)

        return cls(
            K=column("K"), T_L=column("T_L"), T_L_mu1=column("T_L_mu1"), muhat=column("muhat"),
            passed=np.asarray([e.passed for e in evaluations], dtype=bool),
            reason=tuple(e.reason for e in evaluations),
            evaluations=tuple(evaluations),
        )

    def __len__(self) -> int:
        return len(self.evaluations)

    @property
    def evaluated(self) -> np.ndarray:
        """Models with a K (the others have a reason why not)."""
        return np.isfinite(self.K)

    def to_pandas(self) -> Any:
        """A DataFrame with one row per model (K, T_L, T_L_mu1, muhat, passed, reason and
        the best combination as ``A:dataset+B:dataset``)."""
        import pandas as pd

        return pd.DataFrame({
            "K": self.K, "T_L": self.T_L, "T_L_mu1": self.T_L_mu1, "muhat": self.muhat,
            "passed": self.passed, "reason": list(self.reason),
            "combination": [
                "+".join(f"{m['analysis']}:{m['dataset']}" for m in e.combination)
                for e in self.evaluations
            ],
        })


def _check_workspaces(database: Database) -> None:
    """Full likelihoods need the pyhf workspaces in memory: refuse a database opened without
    them before the first model (else every pyhf combination would fail one by one)."""
    unloaded = [
        r.result_id
        for r in database.results
        if pyhf_backend(r)
        and all(w.workspace is None for w in r.pyhf if not w.full and not w.missing)
        and any(not w.full and not w.missing for w in r.pyhf)
    ]
    if unloaded:
        msg = (
            f"full likelihoods are on, but the database {database.path} was opened without its "
            f"pyhf workspaces ({', '.join(unloaded[:3])}{', ...' if len(unloaded) > 3 else ''});"
            " open it with protomodels.open_database(workspaces=True), or evaluate with "
            "full_likelihoods=False (--no-full-likelihoods)"
        )
        raise ProtomodelsError(msg)


def _not_finite_reason(
    K: float, T_L: float, muhat: float, predictions: Sequence[TheoryPrediction]
) -> str:
    """Why an evaluation has no number: which figure is not finite, and the predictions whose
    likelihood values are not (so a NaN is never printed as a K)."""
    bad = sorted(
        {
            f"{p.analysis}:{p.dataset}"
            for p in predictions
            if p.statistics is not None and p.statistics.likelihood is not None
            and any(
                map(math.isnan, (p.statistics.nll1, p.statistics.nll_sm, p.statistics.nll_max,
                                 p.statistics.mu_hat))
            )
        }
    )
    where = f"; non-finite likelihoods of {', '.join(bad[:5])}" if bad else ""
    return (
        f"not evaluable: K = {K:g}, T_L = {T_L:g}, mu-hat = {muhat:g}{where}; check those "
        "results in the database (protomodel db show ID)"
    )


def evaluate(
    model: Protomodel,
    database: Database,
    settings: EvaluationSettings | None = None,
) -> Evaluation:
    """Evaluate one protomodel (builds an :class:`Evaluator`; reuse one in loops)."""
    return Evaluator(database, settings)(model)
