"""-ln L of one result as a pure function of its signal yields, nuisances profiled, with exact
first and second derivatives in the yields.

Every kind of likelihood the combination can hold gets a :class:`YieldLikelihood`: ``nll(s)``
at signal strength 1 for the yields ``s`` (events per region, or per pyhf bin), jittable and
differentiable twice (``jax.grad``, ``jax.hessian``):

- single region: the analytic profile of :mod:`~protomodels.statistics.single_region`;
- simplified likelihood (covariance, optionally skewed) and pyhf workspaces: the nuisances are
  fitted numerically (a while loop, outside the derivative: its inputs are held constant),
  then one Newton step from the fit, ``theta* = theta_hat - H^-1 g``, is taken inside the
  derivative. At the fit g = 0, so the value is the profiled one, its gradient is the partial
  derivative in s (envelope theorem), and its Hessian is the profiled curvature
  ``H_ss - H_s theta H_theta theta^-1 H_theta s`` (the implicit derivative of theta-hat enters
  through the step). Parameters that the fit leaves at a bound or that the workspace fixes do
  not move.

Upper-limit results (a truncated Gaussian in sigma x BR / UL) are not differentiated here: the
combination of K holds efficiency maps and combined results only (the reference builder's rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from protomodels.exceptions import ProtomodelsError
from protomodels.statistics import simplified, single_region
from protomodels.statistics.likelihood import SimplifiedLikelihood, SingleRegionLikelihood

__all__ = ["YieldLikelihood", "newton_profiled", "yield_likelihood"]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True, eq=False)
class YieldLikelihood:
    """-ln L(s) of one result at mu = 1 for signal yields s (nuisances profiled).

    Attributes:
        label: ``analysis:dataset``.
        kind: ``single_region``, ``simplified`` or ``pyhf``.
        size: the length of s.
        nll: the pure function s -> -ln L (all constants kept, as the evaluation's).
        nll_sm: -ln L at s = 0 (the SM; a constant).
        yields: the yields of the evaluated model (events), for checks.
    """

    label: str
    kind: str
    size: int
    nll: Callable[[jax.Array], jax.Array]
    nll_sm: float
    yields: np.ndarray


def newton_profiled(
    nll: Callable[[jax.Array, jax.Array], jax.Array],
    x_hat: jax.Array,
    s: jax.Array,
    moves: jax.Array,
) -> jax.Array:
    """nll(x*, s) with x* one Newton step from the (held) fit ``x_hat`` in the parameters that
    ``moves``; see the module docstring for why this gives exact derivatives in s."""
    x0 = jax.lax.stop_gradient(x_hat)
    g = jax.grad(nll, 0)(x0, s)
    h = jax.hessian(nll, 0)(x0, s)
    both = moves[:, None] & moves[None, :]
    h = jnp.where(both, h, jnp.eye(h.shape[0], dtype=h.dtype))
    g = jnp.where(moves, g, 0.0)
    return nll(x0 - jnp.linalg.solve(h, g), s)


def _inside(x: jax.Array, lo: jax.Array, hi: jax.Array) -> jax.Array:
    """Parameters strictly inside their bounds (a fit at a bound stays there)."""
    return (x > lo + 1e-9 * (1 + jnp.abs(lo))) & (x < hi - 1e-9 * (1 + jnp.abs(hi)))


def _single_region(like: SingleRegionLikelihood) -> Callable[[jax.Array], jax.Array]:
    b, sigma, n = like.background, like.background_error, like.observed

    def nll(s: jax.Array) -> jax.Array:
        return single_region.nll(jnp.ones((), s.dtype), s[0], b, sigma, n)

    return nll


def _simplified(like: SimplifiedLikelihood) -> Callable[[jax.Array], jax.Array]:
    # NumPy constants (float64; made jax arrays when traced, in x64)
    model = jax.tree_util.tree_map(np.asarray, like.model)
    n = np.asarray(like.observed, dtype=float)
    skewed = like.skewed
    mask = np.asarray(model.mask)

    def at(theta: jax.Array, s: jax.Array) -> jax.Array:
        return simplified.nll(jnp.ones((), s.dtype), theta, n, model._replace(s=s))

    lower, upper = np.where(mask, -10.0 * n, 0.0), np.where(mask, 10.0 * n, 0.0)  # SModelS's

    def nll(s: jax.Array) -> jax.Array:
        held = jax.lax.stop_gradient(model._replace(s=s))
        theta_hat = jax.lax.stop_gradient(simplified.profile(jnp.ones(()), n, held, skewed=skewed))
        inside = _inside(theta_hat, jnp.asarray(lower), jnp.asarray(upper))
        return newton_profiled(at, theta_hat, s, jnp.asarray(mask) & inside)

    return nll


def _pyhf(like: Any) -> tuple[Callable[[jax.Array], jax.Array], int]:
    from protomodels.statistics import pyhf_fits
    from protomodels.statistics.full_likelihood import MAX_ITERATIONS

    work = like.workspace
    if work is None:
        raise ProtomodelsError(f"{like.result.result_id}: no pyhf workspace was chosen")
    bg = work.background
    n, aux, x0 = (np.asarray(a, dtype=float)[0] for a in (bg.n, bg.aux, bg.x0))
    poi = work.poi_index
    objective = work._objective
    free = np.asarray(~work.fixed).copy()
    free[poi] = False
    lo, hi = np.asarray(work.bounds[:, 0], float), np.asarray(work.bounds[:, 1], float)

    def at(x: jax.Array, s_bins: jax.Array) -> jax.Array:
        return work._nll(x, n, aux, s_bins)

    def nll(s_bins: jax.Array) -> jax.Array:
        held = jax.lax.stop_gradient(s_bins)
        fit = pyhf_fits.profile(objective, work._problem, poi, jnp.asarray(x0), jnp.ones(()),
                                jnp.asarray(n), jnp.asarray(aux), held, MAX_ITERATIONS)
        x_hat = jax.lax.stop_gradient(fit.x)
        moves = jnp.asarray(free) & _inside(x_hat, jnp.asarray(lo), jnp.asarray(hi))
        return newton_profiled(at, x_hat, s_bins, moves)

    return nll, len(work.signal_index)


def yield_likelihood(prediction: Any, label: str) -> YieldLikelihood:
    """The :class:`YieldLikelihood` of a prediction with statistics (from an evaluation).

    Raises:
        ProtomodelsError: the prediction has no likelihood, or one of a kind not
            differentiated here (upper limits).
    """
    stats = prediction.statistics
    like = None if stats is None else stats.likelihood
    if like is None:
        raise ProtomodelsError(f"{label}: the prediction has no likelihood to differentiate")
    kind = stats.kind
    if kind == "single_region":
        fn, yields = _single_region(like), np.asarray([like.signal])
    elif kind == "simplified":
        fn, yields = _simplified(like), np.asarray(like.model.s, dtype=float)
    elif kind == "pyhf":
        fn, _ = _pyhf(like)
        yields = np.asarray(like.workspace.signal_bins(like.signals), dtype=float)
    else:
        msg = (f"{label}: a {kind} likelihood is not differentiated (the combination of K holds "
               "efficiency maps and combined results)")
        raise ProtomodelsError(msg)
    return YieldLikelihood(label, kind, len(yields), fn, float(stats.nll_sm), yields)
