"""The posterior of a protomodel's continuous parameters, sampled with numpyro's NUTS.

The likelihood is the one K is built on: L(theta) = exp(-sum_i nll_i(s_i(theta))) at the
fixed combination, nuisances profiled (:mod:`~protomodels.inference.objective`); the prior is
the K prior's structure held fixed (same particles, channels and multipliers: a constant) times

- masses: flat in [m0 (1 - w), m0 (1 + w)] (``mass_width`` w, default 0.5), every mother
  heavier than its daughters (the grids' range enters through the likelihood: outside a grid a
  topology gives no signal);
- ln ssm: flat in [ln ssm0 - d, ln ssm0 + d] (``log_multiplier_width`` d, default 3);
- branching ratios: flat on each particle's simplex (Dirichlet(1, ..., 1): the free coordinates
  flat in [0, 1] with their sum at most 1).

Only the parameters that the combination constrains are sampled (the others have a flat
likelihood: their posterior is their prior); they stay at their values. The samples, r-hat and
effective sample sizes are returned as a :class:`PosteriorSamples` and can be stored in a SQLite
file (:func:`store_samples`, the run file of a walk).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from protomodels.exceptions import ProtomodelsError
from protomodels.inference.errors import covariance_from_hessian
from protomodels.inference.objective import Objective
from protomodels.inference.parameters import BRANCHING, LOG_MULTIPLIER, MASS

__all__ = ["PosteriorSamples", "PosteriorSettings", "prior_box", "sample_posterior",
           "store_samples"]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True)
class PosteriorSettings:
    """NUTS settings and prior widths (see the module docstring); ``max_tree_depth`` bounds
    the leapfrog steps per draw (2^depth): flat directions of the likelihood (parameters the
    data do not separate) otherwise make every trajectory long."""

    samples: int = 1000
    warmup: int = 500
    chains: int = 2
    seed: int = 0
    mass_width: float = 0.5
    log_multiplier_width: float = 3.0
    target_accept: float = 0.8
    max_tree_depth: int = 8


@dataclass(frozen=True)
class PosteriorSamples:
    """Posterior draws of the sampled parameters.

    Attributes:
        names: the sampled parameters.
        index: their theta indices.
        draws: (chains, samples, parameters).
        r_hat, ess: split-R-hat and effective sample size per parameter.
        fixed: names of the parameters held at their values (unconstrained).
        seconds: wall time of the sampling (compilation included).
        divergences: divergent transitions.
        settings: the settings used.
    """

    names: list[str]
    index: np.ndarray
    draws: np.ndarray
    r_hat: np.ndarray
    ess: np.ndarray
    fixed: list[str]
    seconds: float
    divergences: int
    settings: PosteriorSettings
    lower: np.ndarray = field(default_factory=lambda: np.zeros(0))
    upper: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def flat(self) -> np.ndarray:
        """(chains x samples, parameters)."""
        return self.draws.reshape(-1, self.draws.shape[-1])

    def summary(self) -> list[dict[str, float | str]]:
        """Per parameter: mean, standard deviation, 16/50/84 % quantiles, r-hat, ESS."""
        flat = self.flat
        q = np.quantile(flat, [0.16, 0.5, 0.84], axis=0)
        return [
            {"name": n, "mean": float(flat[:, i].mean()), "std": float(flat[:, i].std(ddof=1)),
             "q16": float(q[0, i]), "median": float(q[1, i]), "q84": float(q[2, i]),
             "r_hat": float(self.r_hat[i]), "ess": float(self.ess[i])}
            for i, n in enumerate(self.names)
        ]


def prior_box(objective: Objective, settings: PosteriorSettings) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of the flat priors of every parameter."""
    theta = objective.theta0
    lo, hi = theta.copy(), theta.copy()
    for i, p in enumerate(objective.space.parameters):
        if p.kind == MASS:
            lo[i] = theta[i] * (1 - settings.mass_width)
            hi[i] = theta[i] * (1 + settings.mass_width)
        elif p.kind == LOG_MULTIPLIER:
            lo[i] = theta[i] - settings.log_multiplier_width
            hi[i] = theta[i] + settings.log_multiplier_width
        elif p.kind == BRANCHING:
            lo[i], hi[i] = 0.0, 1.0
        else:
            lo[i] = theta[i] - settings.mass_width * max(abs(theta[i]), 1.0)
            hi[i] = theta[i] + settings.mass_width * max(abs(theta[i]), 1.0)
    return lo, hi


def sample_posterior(
    objective: Objective,
    settings: PosteriorSettings | None = None,
    *,
    sampled: np.ndarray | None = None,
    progress: bool = False,
) -> PosteriorSamples:
    """NUTS samples of the posterior (see the module docstring). ``sampled``: theta indices to
    sample (default: the parameters the combination constrains)."""
    import numpyro
    import numpyro.distributions as dist
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
    from numpyro.infer import MCMC, NUTS, init_to_value

    settings = settings or PosteriorSettings()
    theta0 = objective.theta0
    if sampled is None:
        _, constrained, _ = covariance_from_hessian(objective.hessian())
        sampled = np.flatnonzero(constrained)
    sampled = np.asarray(sampled, dtype=int)
    if not len(sampled):
        raise ProtomodelsError("no parameter is constrained by the combination: nothing to sample")
    lo, hi = prior_box(objective, settings)
    space = objective.space
    names = [space.names[i] for i in sampled]
    fixed = [n for i, n in enumerate(space.names) if i not in set(sampled.tolist())]
    start = np.clip(theta0[sampled], lo[sampled] + 1e-9 * (hi - lo)[sampled],
                    hi[sampled] - 1e-9 * (hi - lo)[sampled])
    valid = getattr(space, "valid", None)

    def model(arrays: Any) -> None:
        z = numpyro.sample("theta", dist.Uniform(jnp.asarray(lo[sampled]),
                                                 jnp.asarray(hi[sampled])))
        theta = jnp.asarray(theta0).at[jnp.asarray(sampled)].set(z)
        nll = objective.total_nll(theta, arrays)
        ok = jnp.isfinite(nll)
        if valid is not None:
            ok = ok & valid(theta)
        numpyro.factor("likelihood", jnp.where(ok, -jnp.where(ok, nll, 0.0), -jnp.inf))

    kernel = NUTS(model, init_strategy=init_to_value(values={"theta": jnp.asarray(start)}),
                  target_accept_prob=settings.target_accept,
                  max_tree_depth=settings.max_tree_depth)
    mcmc = MCMC(kernel, num_warmup=settings.warmup, num_samples=settings.samples,
                num_chains=settings.chains, chain_method="sequential", progress_bar=progress,
                jit_model_args=True)
    t0 = time.perf_counter()
    with objective._context():
        mcmc.run(jax.random.PRNGKey(settings.seed), objective.pure.arrays,
                 extra_fields=("diverging",))
        draws = np.asarray(mcmc.get_samples(group_by_chain=True)["theta"])
        diverging = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    seconds = time.perf_counter() - t0
    draws = draws.reshape(settings.chains, settings.samples, len(sampled))
    r_hat = np.asarray(split_gelman_rubin(draws)) if settings.chains > 1 and \
        settings.samples >= 4 else np.full(len(sampled), np.nan)
    ess = np.asarray(effective_sample_size(draws))
    return PosteriorSamples(names, sampled, draws, r_hat, ess, fixed, seconds, diverging,
                            settings, lo[sampled], hi[sampled])


_SCHEMA = """
CREATE TABLE IF NOT EXISTS posterior_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL, model TEXT, label TEXT,
    settings TEXT, summary TEXT, fisher TEXT
);
CREATE TABLE IF NOT EXISTS posterior_samples (
    run INTEGER, chain INTEGER, draw INTEGER, parameter TEXT, value REAL
);
"""


def store_samples(
    path: str | Path, samples: PosteriorSamples, *, label: str, model: dict[str, Any] | None = None,
    fisher: dict[str, Any] | None = None,
) -> int:
    """Append the samples to the SQLite file ``path`` (tables ``posterior_runs`` and
    ``posterior_samples``; other tables, e.g. a walk's, are left alone); returns the run id."""
    con = sqlite3.connect(str(path), timeout=60)
    try:
        with con:
            con.executescript(_SCHEMA)
            cur = con.execute(
                "INSERT INTO posterior_runs (created, model, label, settings, summary, fisher) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), json.dumps(model, default=str), label,
                 json.dumps(samples.settings.__dict__),
                 json.dumps({"parameters": samples.summary(), "fixed": samples.fixed,
                             "divergences": samples.divergences, "seconds": samples.seconds}),
                 json.dumps(fisher, default=str)),
            )
            run = int(cur.lastrowid)
            chains, draws, n = samples.draws.shape
            rows = (
                (run, c, d, samples.names[i], float(samples.draws[c, d, i]))
                for c in range(chains) for d in range(draws) for i in range(n)
            )
            con.executemany("INSERT INTO posterior_samples VALUES (?, ?, ?, ?, ?)", rows)
    finally:
        con.close()
    return run


def read_samples(path: str | Path, run: int | None = None) -> tuple[dict[str, Any], np.ndarray,
                                                                    list[str]]:
    """(run record, draws (chains, samples, parameters), names) of a stored posterior run
    (default the last)."""
    con = sqlite3.connect(str(path))
    try:
        row = con.execute(
            "SELECT id, label, settings, summary FROM posterior_runs "
            + ("WHERE id = ?" if run is not None else "ORDER BY id DESC LIMIT 1"),
            (run,) if run is not None else (),
        ).fetchone()
        if row is None:
            raise ProtomodelsError(f"{path}: no posterior run stored")
        values = con.execute(
            "SELECT chain, draw, parameter, value FROM posterior_samples WHERE run = ?",
            (row[0],),
        ).fetchall()
    finally:
        con.close()
    summary = json.loads(row[3])
    names = [p["name"] for p in summary["parameters"]]
    chains = 1 + max(v[0] for v in values)
    draws = 1 + max(v[1] for v in values)
    out = np.full((chains, draws, len(names)), np.nan)
    where = {n: i for i, n in enumerate(names)}
    for c, d, name, value in values:
        out[c, d, where[name]] = value
    record = {"id": row[0], "label": row[1], "settings": json.loads(row[2]), "summary": summary}
    return record, out, names
