"""Attach likelihood quantities to theory predictions, batched per kind of result.

For every prediction: nll(mu) at mu = 1 and 0, mu-hat and nll(mu-hat), stored in
``prediction.extra`` as ``L1``, ``L_SM``, ``L_max`` (likelihoods, as in the SModelS reference
files), ``muhat`` and the corresponding ``nll_*`` values (use those: exp(-nll) underflows).
Upper-limit predictions without an expected limit get no likelihood (r only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from protomodels.database.database import Database
from protomodels.statistics import simplified, single_region, truncated_gaussian
from protomodels.theory.predictions import TheoryPrediction

__all__ = ["attach_statistics", "em_statistics", "ul_statistics"]


def __dir__() -> list[str]:
    return __all__


@jax.jit
def ul_statistics(u: jax.Array, e: jax.Array) -> tuple[jax.Array, ...]:
    """(nll(1), nll(0), nll(mu-hat), mu-hat) of upper-limit predictions; u, e: limits on mu."""
    sigma = truncated_gaussian.width(u, e)
    m = truncated_gaussian.mu_hat(u, sigma)

    def nll(mu: float | jax.Array) -> jax.Array:
        return -truncated_gaussian.log_likelihood(jnp.asarray(mu, u.dtype), m, sigma)

    return nll(1.0), nll(0.0), nll(m), m


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
def combined_statistics(
    s: jax.Array, b: jax.Array, cov: jax.Array, n: jax.Array, third: jax.Array
) -> tuple[jax.Array, ...]:
    """(nll(1), nll(0), nll(mu-hat), mu-hat, mu_UL obs, mu_UL exp) of a simplified likelihood;
    ``third`` all zero means the linear model."""
    linear = simplified.make_model(s, b, cov, n)
    skewed = simplified.make_model(s, b, cov, n, third)
    use_skew = jnp.sum(jnp.abs(third)) >= 1e-10
    m = jax.tree_util.tree_map(lambda x, y: jnp.where(use_skew, y, x), linear, skewed)
    nll1 = simplified.profiled_nll(jnp.ones(()), n, m)
    nll0 = simplified.profiled_nll(jnp.zeros(()), n, m)
    mu_hat, nll_max = simplified.fit(n, m)
    return (
        nll1,
        nll0,
        nll_max,
        mu_hat,
        simplified.upper_limit(n, b, m),
        simplified.upper_limit(n, b, m, expected=True),
    )


def _limit_or_none(mu_ul: float, xsec_per_mu: float) -> float | None:
    """The UL on sigma x eff, or None when the CLs search ended on its floor (it failed)."""
    if not math.isfinite(mu_ul) or mu_ul <= 1e-6:
        return None
    return mu_ul * xsec_per_mu


def _store(p: TheoryPrediction, nll1: float, nll0: float, nllmax: float, muhat: float) -> None:
    def likelihood(nll: float) -> float:
        return math.exp(-nll) if nll < 745 else 0.0

    p.extra.update(
        L1=likelihood(nll1),
        L_SM=likelihood(nll0),
        L_max=likelihood(nllmax),
        muhat=muhat,
        nll1=nll1,
        nll_SM=nll0,
        nll_max=nllmax,
    )


def attach_statistics(predictions: Sequence[TheoryPrediction], database: Database) -> None:
    """Compute and store the likelihood quantities of every prediction (in place)."""
    by_id = {r.result_id: r for r in database.results}
    ul = [
        p
        for p in predictions
        if p.data_type == "upperLimit" and p.upper_limit_fb and p.expected_upper_limit_fb
    ]
    em = [p for p in predictions if p.data_type == "efficiencyMap"]
    with jax.enable_x64(True):
        if ul:
            x = np.asarray([p.xsec_fb for p in ul])
            u = np.asarray([p.upper_limit_fb for p in ul]) / x
            e = np.asarray([p.expected_upper_limit_fb for p in ul]) / x
            values = [np.asarray(v) for v in ul_statistics(jnp.asarray(u), jnp.asarray(e))]
            for i, p in enumerate(ul):
                _store(p, *(float(v[i]) for v in values))
        for p in predictions:
            if p.data_type != "combined":
                continue
            result = by_id[p.result_id]
            if result.covariance is None:
                continue
            datasets = result.datasets
            s = np.asarray(p.signals_fb) * p.lumi_ifb
            b = np.asarray([d.expected_bg for d in datasets], dtype=float)
            n = np.asarray([d.observed_n for d in datasets], dtype=float)
            moments = [d.third_moment for d in datasets]
            third = np.asarray(
                [m if m is not None else 0.0 for m in moments]
                if all(m is not None for m in moments)
                else [0.0] * len(datasets),
                dtype=float,
            )
            values = [
                float(v)
                for v in combined_statistics(
                    jnp.asarray(s),
                    jnp.asarray(b),
                    jnp.asarray(result.covariance),
                    jnp.asarray(n),
                    jnp.asarray(third),
                )
            ]
            _store(p, *values[:4])
            total = float(s.sum()) / p.lumi_ifb
            limits = [_limit_or_none(mu, total) for mu in values[4:]]
            p.upper_limit_fb, p.expected_upper_limit_fb = limits
            if None in limits:
                p.extra["limit_failed"] = True
        if em:
            rows = []
            for p in em:
                result = by_id[p.result_id]
                ds = next(d for d in result.datasets if (d.data_id or d.dataset_id) == p.dataset)
                rows.append((p.xsec_fb * p.lumi_ifb, ds.expected_bg, ds.bg_error, ds.observed_n))
            s, b, sigma, n = (
                jnp.asarray(np.asarray(c, dtype=float)) for c in zip(*rows, strict=True)
            )
            values = [np.asarray(v) for v in em_statistics(s, b, sigma, n)]
            for i, p in enumerate(em):
                _store(p, *(float(v[i]) for v in values))
