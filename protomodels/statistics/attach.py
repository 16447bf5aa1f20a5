"""Attach likelihood quantities to theory predictions, batched per kind of result.

For every prediction: nll(mu) at mu = 1 and 0, mu-hat and nll(mu-hat), and the likelihood
itself (a :class:`~protomodels.statistics.likelihood.Likelihood`), as its
``prediction.statistics`` (:class:`~protomodels.statistics.record.PredictionStatistics`).
Combined predictions with a covariance also get their observed and expected upper limits
(CLs); when a limit search fails, the limit is None and ``limit_failed`` is set.
Upper-limit predictions without an expected limit get no likelihood (r only).

Combined predictions of results with pyhf workspaces and no covariance (SModelS's pyhf backend,
:func:`pyhf_backend`) get the pyhf full likelihood
(:mod:`~protomodels.statistics.full_likelihood`) when ``full_likelihoods=True``: a stage run
after the others (jitted JAX fits; the evaluation and the walk have it on by default). Without
it they get no likelihood and their ``statistics.fallback`` says so (the combiner then takes the
result's best signal region). Predictions of a result whose pyhf JSON is
missing (the predictor then gives its best signal region, or the covariance's combination) carry
the result's fallback in ``statistics.fallback``.

Upper-limit and single-region predictions are evaluated in one vectorised call each (lengths
padded to a power of two); each combined prediction in one call compiled per padded number of
regions. Inputs are checked first (:mod:`~protomodels.statistics.checks`).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from protomodels.database.database import Database
from protomodels.database.records import Result
from protomodels.shapes import padded_length
from protomodels.statistics import single_region, truncated_gaussian
from protomodels.statistics.checks import (
    StatisticsInputError,
    check_counts,
    check_signals,
    check_upper_limits,
)
from protomodels.statistics.common import (
    NO_FULL_LIKELIHOOD,
    PYHF_MAX_ITERATIONS,
    likelihood_value,
    note_fallback,
    pyhf_backend,
    store_likelihoods,
)
from protomodels.statistics.compilation_cache import enable_compilation_cache
from protomodels.statistics.curves import CurveSet
from protomodels.statistics.likelihood import (
    SimplifiedLikelihood,
    SingleRegionLikelihood,
    TruncatedGaussianLikelihood,
)
from protomodels.statistics.record import PredictionStatistics
from protomodels.theory.predictions import TheoryPrediction

__all__ = [
    "NO_FULL_LIKELIHOOD",
    "LikelihoodBuilder",
    "attach_statistics",
    "em_statistics",
    "likelihood_value",
    "pyhf_backend",
    "store_likelihoods",
    "ul_statistics",
]

def __dir__() -> list[str]:
    return __all__


#: summaries of simplified likelihoods a :class:`LikelihoodBuilder` keeps (least recently
#: used dropped first)
SUMMARIES_KEPT = 4096


@jax.jit
def ul_statistics(u: jax.Array, e: jax.Array) -> tuple[jax.Array, ...]:
    """(nll(1), nll(0), nll(mu-hat), mu-hat, sigma_mu) of upper-limit predictions; u, e: limits
    on mu."""
    sigma = truncated_gaussian.width(u, e)
    m = truncated_gaussian.mu_hat(u, sigma)

    def nll(mu: float | jax.Array) -> jax.Array:
        return -truncated_gaussian.log_likelihood(jnp.asarray(mu, u.dtype), m, sigma)

    return nll(1.0), nll(0.0), nll(m), m, sigma


@jax.jit
def em_statistics(
    s: jax.Array, b: jax.Array, sigma: jax.Array, n: jax.Array
) -> tuple[jax.Array, ...]:
    """(nll(1), nll(0), nll(mu-hat), mu-hat) of single signal regions (s = signal yield)."""
    m = single_region.mu_hat(s, b, n)
    return (
        single_region.nll(1.0, s, b, sigma, n),
        single_region.nll(0.0, s, b, sigma, n),
        single_region.nll(m, s, b, sigma, n),
        m,
    )


@jax.jit
def _ul_rows(u: jax.Array, e: jax.Array) -> jax.Array:
    return jnp.stack(ul_statistics(u, e))


@jax.jit
def _em_rows(s: jax.Array, b: jax.Array, sigma: jax.Array, n: jax.Array) -> jax.Array:
    return jnp.stack(em_statistics(s, b, sigma, n))


#: batch lengths :meth:`LikelihoodBuilder.warm_up` compiles
WARM_LANES = (16, 64, 256, 1024)


def _padded(columns: list[np.ndarray], fill: float) -> list[np.ndarray]:
    """Columns padded to a power of four >= 16 (:func:`~protomodels.shapes.padded_length`;
    NumPy: the jitted call converts them in x64)."""
    size = padded_length(len(columns[0]), 16)
    return [np.concatenate([c, np.full(size - len(c), fill)]) for c in columns]


def _json_missing(result: Result) -> bool:
    """Some ``jsonFiles`` workspace of the result is missing (its fallback then applies)."""
    return bool(getattr(result, "fallback", None)) and any(
        w.missing and not w.full for w in getattr(result, "pyhf", ())
    )


def _limit_or_none(mu_ul: float, xsec_per_mu: float) -> float | None:
    """The UL on sigma x eff, or None when the CLs search failed."""
    if not math.isfinite(mu_ul) or mu_ul <= 0:
        return None
    return mu_ul * xsec_per_mu


def _first_bad(predictions: Sequence[TheoryPrediction], ok: np.ndarray) -> TheoryPrediction:
    return predictions[int(np.flatnonzero(~ok)[0])]


class LikelihoodBuilder:
    """The likelihoods of theory predictions for one database: build once, then
    :meth:`attach`.

    Keeps the checked counts of every data set and the prepared simplified likelihood of every
    result with a covariance (zero signal; each prediction puts its own in), and those
    likelihoods with the last :data:`SUMMARIES_KEPT` signals, with their summaries (fits and
    limits): a walk meets the same signal of a result again whenever a move leaves it unchanged
    (about 45 % of the fits of a long walk), and a summary is a function of the signal alone.
    The compiled pyhf workspaces of full likelihoods are kept per database object by
    :mod:`~protomodels.statistics.full_likelihood`.

    Args:
        database: the database the predictions were made with (opened with its pyhf
            workspaces for ``full_likelihoods=True``).
        compilation_cache: turn on JAX's persistent compilation cache
            (:func:`~protomodels.statistics.compilation_cache.enable_compilation_cache`).
    """

    def __init__(self, database: Database, *, compilation_cache: bool = True) -> None:
        self._database = database
        self._results: dict[str, Result] = {r.result_id: r for r in database.results}
        self._regions: dict[tuple[str, str | None], tuple[float, float, float]] = {}
        self._combined: dict[str, SimplifiedLikelihood] = {}
        self._kept: OrderedDict[tuple[str, bytes], SimplifiedLikelihood] = OrderedDict()
        self._pyhf = {rid for rid, r in self._results.items() if pyhf_backend(r)}
        self._fallbacks = {
            rid: r.fallback for rid, r in self._results.items() if _json_missing(r)
        }
        if compilation_cache:
            enable_compilation_cache()

    def _region(self, result_id: str, dataset: str | None) -> tuple[float, float, float]:
        """(b, sigma_b, n) of one data set, checked."""
        key = (result_id, dataset)
        if key not in self._regions:
            result = self._results[result_id]
            ds = next(d for d in result.datasets if (d.data_id or d.dataset_id) == dataset)
            n, b, sigma = check_counts(
                result_id, [ds.observed_n], [ds.expected_bg], [ds.bg_error], labels=[dataset]
            )
            self._regions[key] = (float(b[0]), float(sigma[0]), float(n[0]))
        return self._regions[key]

    def combined(self, result_id: str) -> SimplifiedLikelihood:
        """The simplified likelihood of a result with a covariance (signal 0), checked."""
        if result_id not in self._combined:
            result = self._results[result_id]
            datasets = result.datasets
            labels = [d.data_id or d.dataset_id for d in datasets]
            moments = [d.third_moment for d in datasets]
            third = None
            if all(m is not None for m in moments):
                third = np.asarray(moments, dtype=float)
            n, b = check_counts(
                result_id,
                [d.observed_n for d in datasets],
                [d.expected_bg for d in datasets],
                labels=labels,
            )
            self._combined[result_id] = SimplifiedLikelihood.from_covariance(
                np.zeros(len(datasets)), b, result.covariance, n, third, label=result_id
            )
        return self._combined[result_id]

    def warm_up(self) -> int:
        """Compile the statistics kernels for the shapes an evaluation can meet, so that a
        long walk compiles nothing on the way: the upper-limit and single-region batches for
        every length of :data:`WARM_LANES`, and for each size of simplified likelihood of the
        database its summary and its curves (:meth:`CurveSet.warm_up`). Returns the number of
        compiled shapes it went through."""
        count = 0
        with jax.enable_x64(True):
            for lanes in WARM_LANES:
                ones = np.ones(lanes)
                _ul_rows(ones, 2.0 * ones)
                _em_rows(ones, ones, ones, ones)
                count += 2
            sizes: dict[tuple[int, bool], SimplifiedLikelihood] = {}
            for rid, result in self._results.items():
                if result.covariance is None:
                    continue
                try:
                    like = self.combined(rid)
                except StatisticsInputError:
                    continue  # the evaluation meets the same error and says so
                sizes.setdefault((like.observed.shape[0], like.skewed), like)
            for like in sizes.values():
                backend = like.with_signal(np.where(np.asarray(like.model.mask), 0.1, 0.0))
                backend.summary  # noqa: B018 - compiles the summary of this size
                count += 1 + CurveSet([backend]).warm_up()
        return count

    def attach(
        self,
        predictions: Sequence[TheoryPrediction],
        *,
        full_likelihoods: bool = False,
        max_iterations: int | None = None,
        max_parameters: int | None = None,
    ) -> None:
        """Compute and store the likelihood quantities of every prediction (in place).

        With ``full_likelihoods``, combined predictions of results with pyhf workspaces (no
        covariance) get the pyhf full likelihood in a last stage
        (:func:`~protomodels.statistics.full_likelihood.attach_full_likelihoods`); without, they
        get no likelihood and the fallback :data:`NO_FULL_LIKELIHOOD`.
        ``max_iterations``: the Newton budget of each pyhf fit (default
        :data:`~protomodels.statistics.common.PYHF_MAX_ITERATIONS`); ``max_parameters``:
        workspaces with more parameters are not fitted (a recorded fallback; None: all are).

        Raises:
            ProtomodelsError: ``full_likelihoods`` on a database opened without its pyhf
                workspaces.
        """
        ul = [
            p
            for p in predictions
            if p.data_type == "upperLimit" and p.upper_limit_fb and p.expected_upper_limit_fb
        ]
        em = [p for p in predictions if p.data_type == "efficiencyMap"]
        combined = [
            p
            for p in predictions
            if p.data_type == "combined" and self._results[p.result_id].covariance is not None
        ]
        with jax.enable_x64(True):
            if ul:
                self._attach_ul(ul)
            if em:
                self._attach_em(em)
            for p in combined:
                self._attach_combined(p)
        if self._fallbacks:
            for p in predictions:
                fallback = self._fallbacks.get(p.result_id)
                if fallback is not None and p.data_type != "upperLimit":
                    note_fallback(p, fallback)
        pyhf = [p for p in predictions if p.data_type == "combined" and p.result_id in self._pyhf]
        if not pyhf:
            return
        if full_likelihoods:
            self._attach_pyhf(pyhf, max_iterations, max_parameters)
            return
        for p in pyhf:
            fallback = self._fallbacks.get(p.result_id)
            p.statistics = PredictionStatistics.without_likelihood(
                NO_FULL_LIKELIHOOD if fallback is None else f"{NO_FULL_LIKELIHOOD} ({fallback})"
            )

    def rescale(
        self,
        before: Sequence[TheoryPrediction],
        after: Sequence[TheoryPrediction],
        factor: float,
        **options: object,
    ) -> None:
        """Statistics of ``after``, the predictions ``before`` with every signal times
        ``factor`` (in the same order, as :meth:`~protomodels.theory.predictions.Predictor.
        rescale` gives them). A simplified likelihood is not fitted again: with the signal
        k s, nll(mu) is the old nll(k mu), so nll(0) and nll(mu-hat) stay, mu-hat and the
        limits on mu are divided by k (the limits in fb stay) and only nll(1) = old nll(k) is
        evaluated (one batched call for all of them). The other kinds are attached as by
        :meth:`attach` (``options``)."""
        if len(before) != len(after):
            msg = f"rescale: {len(before)} predictions before, {len(after)} after"
            raise ValueError(msg)
        derived = [
            (old, new)
            for old, new in zip(before, after, strict=True)
            if new.data_type == "combined"
            and old.statistics is not None
            and type(old.statistics.likelihood) is SimplifiedLikelihood
            and math.isfinite(factor)
            and factor > 0
        ]
        done = {id(new) for _, new in derived}
        self.attach([p for p in after if id(p) not in done], **options)  # type: ignore[arg-type]
        if not derived:
            return
        with jax.enable_x64(True):
            curves = CurveSet([old.statistics.likelihood for old, _ in derived])
            nll1 = curves.nll(np.arange(len(derived)), np.full(len(derived), float(factor)))
        for (old, new), value in zip(derived, nll1.tolist(), strict=True):
            s, like = old.statistics, old.statistics.likelihood
            summary = like.summary
            backend = like.with_signal(np.asarray(new.signals_fb, dtype=float) * new.lumi_ifb)
            backend.__dict__["summary"] = summary._replace(
                nll1=value, mu_hat=summary.mu_hat / factor, limit=summary.limit / factor,
                expected_limit=summary.expected_limit / factor,
            )
            new.upper_limit_fb, new.expected_upper_limit_fb = (
                old.upper_limit_fb, old.expected_upper_limit_fb,
            )
            store_likelihoods(
                new, "simplified", value, s.nll_sm, s.nll_max, summary.mu_hat / factor,
                backend, limit_failed=s.limit_failed, fallback=s.fallback,
            )

    def _attach_pyhf(
        self,
        pyhf: list[TheoryPrediction],
        max_iterations: int | None,
        max_parameters: int | None,
    ) -> None:
        """The pyhf stage (pyhf is imported here: a run without it never loads it)."""
        from protomodels.statistics.full_likelihood import attach_full_likelihoods

        # compiled workspaces: full_likelihood keeps one set per database object
        attach_full_likelihoods(
            pyhf, self._database, max_iterations=max_iterations or PYHF_MAX_ITERATIONS,
            max_parameters=max_parameters,
        )

    def _attach_ul(self, ul: list[TheoryPrediction]) -> None:
        x = np.asarray([p.xsec_fb for p in ul], dtype=float)
        uf = np.asarray([p.upper_limit_fb for p in ul], dtype=float)
        ef = np.asarray([p.expected_upper_limit_fb for p in ul], dtype=float)
        ok = np.isfinite(x) & (x > 0)
        if not ok.all():
            bad = _first_bad(ul, ok)
            check_signals(bad.result_id, [bad.xsec_fb], field="xsec_fb")
            raise StatisticsInputError(bad.result_id, "xsec_fb", "zero cross section")
        ok = np.isfinite(uf) & (uf > 0) & np.isfinite(ef) & (ef > 0)
        if not ok.all():
            bad = _first_bad(ul, ok)
            check_upper_limits(bad.result_id, bad.upper_limit_fb, bad.expected_upper_limit_fb,
                               field="upper_limit_fb")
        u, e = uf / x, ef / x
        rows = np.asarray(_ul_rows(*_padded([u, e], 1.0)))[:, : len(ul)].T.tolist()
        for p, (nll1, nll0, nllmax, muhat, sigma), ui, ei in zip(
            ul, rows, u.tolist(), e.tolist(), strict=True
        ):
            likelihood = TruncatedGaussianLikelihood._fitted(
                ui, ei, p.result_id, sigma, muhat, nllmax
            )
            store_likelihoods(p, "upper_limit", nll1, nll0, nllmax, muhat, likelihood)

    def _attach_em(self, em: list[TheoryPrediction]) -> None:
        s = np.asarray([p.xsec_fb * p.lumi_ifb for p in em], dtype=float)
        ok = np.isfinite(s) & (s >= 0)
        if not ok.all():
            bad = _first_bad(em, ok)
            check_signals(bad.result_id, [bad.xsec_fb * bad.lumi_ifb], field="xsec_fb x lumi")
        regions = [self._region(p.result_id, p.dataset) for p in em]
        b, sigma, n = (np.asarray(c, dtype=float) for c in zip(*regions, strict=True))
        rows = np.asarray(_em_rows(*_padded([s, b, sigma, n], 1.0)))[:, : len(em)].T.tolist()
        inputs = zip(s.tolist(), b.tolist(), sigma.tolist(), n.tolist(), strict=True)
        for p, (nll1, nll0, nllmax, muhat), row in zip(em, rows, inputs, strict=True):
            likelihood = SingleRegionLikelihood._fitted(*row, p.result_id, nllmax)
            store_likelihoods(p, "single_region", nll1, nll0, nllmax, muhat, likelihood)

    def _attach_combined(self, p: TheoryPrediction) -> None:
        signal = np.asarray(p.signals_fb, dtype=float) * p.lumi_ifb
        backend = self._with_signal(p.result_id, signal)
        summary = backend.summary
        total = float(signal.sum()) / p.lumi_ifb
        limits = [_limit_or_none(mu, total) for mu in (summary.limit, summary.expected_limit)]
        p.upper_limit_fb, p.expected_upper_limit_fb = limits
        store_likelihoods(
            p, "simplified", summary.nll1, summary.nll_sm, summary.nll_max, summary.mu_hat,
            backend, limit_failed=None in limits,
        )

    def _with_signal(self, result_id: str, signal: np.ndarray) -> SimplifiedLikelihood:
        """The result's simplified likelihood with this signal: the kept one (with its summary,
        once computed) when the result had this signal among the last :data:`SUMMARIES_KEPT`
        (exactly: the key is the signal's bytes), else a new one."""
        key = (result_id, signal.tobytes())
        known = self._kept.get(key)
        if known is not None:
            self._kept.move_to_end(key)
            return known
        backend = self.combined(result_id).with_signal(signal)
        self._kept[key] = backend
        while len(self._kept) > SUMMARIES_KEPT:
            self._kept.popitem(last=False)
        return backend


def attach_statistics(
    predictions: Sequence[TheoryPrediction],
    database: Database,
    *,
    builder: LikelihoodBuilder | None = None,
    full_likelihoods: bool = False,
    max_iterations: int | None = None,
    max_parameters: int | None = None,
) -> None:
    """Compute and store the likelihood quantities of every prediction (in place).

    Pass a :class:`LikelihoodBuilder` built once for the database when calling this in a
    loop.
    ``full_likelihoods``: the pyhf full likelihood for the combined predictions of results with
    pyhf workspaces (see :meth:`LikelihoodBuilder.attach`, also for ``max_iterations`` and
    ``max_parameters``); off, they get no likelihood.
    """
    (builder or LikelihoodBuilder(database)).attach(
        predictions, full_likelihoods=full_likelihoods, max_iterations=max_iterations,
        max_parameters=max_parameters,
    )
