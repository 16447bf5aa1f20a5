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

import weakref
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
        compiled: (s -> (nll, gradient, Hessian in s)) from code compiled once per kind and
            size (per workspace for pyhf), shared by every model; None: derived from ``nll``.
    """

    label: str
    kind: str
    size: int
    nll: Callable[[jax.Array], jax.Array]
    nll_sm: float
    yields: np.ndarray
    compiled: Callable[[np.ndarray], tuple] | None = None

    def derivatives(self, s: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """(-ln L, its gradient and Hessian in the yields) at s (host arrays)."""
        with jax.enable_x64(True):
            if self.compiled is not None:
                value, grad, hess = self.compiled(np.asarray(s, dtype=float))
            else:
                own = self.__dict__.get("_own")
                if own is None:
                    own = jax.jit(_value_grad_hess(self.nll))
                    object.__setattr__(self, "_own", own)
                value, grad, hess = own(jnp.asarray(s, dtype=float))
        return float(value), np.asarray(grad), np.asarray(hess)


def _value_grad_hess(fn: Callable[..., jax.Array]) -> Callable[..., tuple]:
    """fn(s, *args) -> (value, d/ds, d2/ds2)."""

    def run(s: jax.Array, *args: Any) -> tuple:
        value, grad = jax.value_and_grad(fn)(s, *args)
        return value, grad, jax.hessian(fn)(s, *args)

    return run


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


def _sr_nll(s: jax.Array, b: jax.Array, sigma: jax.Array, n: jax.Array) -> jax.Array:
    return single_region.nll(jnp.ones((), s.dtype), s[0], b, sigma, n)


_sr_compiled = jax.jit(_value_grad_hess(_sr_nll))


def _single_region(like: SingleRegionLikelihood) -> tuple[Callable, Callable]:
    b, sigma, n = like.background, like.background_error, like.observed

    def nll(s: jax.Array) -> jax.Array:
        return _sr_nll(s, b, sigma, n)

    def compiled(s: np.ndarray) -> tuple:
        return _sr_compiled(s, b, sigma, n)

    return nll, compiled


def _sl_nll(s: jax.Array, model: simplified.SimplifiedModel, n: jax.Array, skewed: bool
            ) -> jax.Array:
    """The profiled simplified nll at mu = 1 (model arrays as arguments)."""
    mask = jnp.asarray(model.mask)
    lower, upper = jnp.where(mask, -10.0 * n, 0.0), jnp.where(mask, 10.0 * n, 0.0)  # SModelS's

    def at(theta: jax.Array, signal: jax.Array) -> jax.Array:
        return simplified.nll(jnp.ones((), signal.dtype), theta, n, model._replace(s=signal))

    held = jax.lax.stop_gradient(model._replace(s=s))
    theta_hat = jax.lax.stop_gradient(simplified.profile(jnp.ones(()), n, held, skewed=skewed))
    return newton_profiled(at, theta_hat, s, mask & _inside(theta_hat, lower, upper))


_sl_compiled = jax.jit(_value_grad_hess(_sl_nll), static_argnums=(3,))


def _simplified(like: SimplifiedLikelihood) -> tuple[Callable, Callable]:
    # NumPy constants (float64; made jax arrays when traced, in x64)
    model = jax.tree_util.tree_map(np.asarray, like.model)
    n = np.asarray(like.observed, dtype=float)
    skewed = like.skewed

    def nll(s: jax.Array) -> jax.Array:
        return _sl_nll(s, jax.tree_util.tree_map(jnp.asarray, model), jnp.asarray(n), skewed)

    def compiled(s: np.ndarray) -> tuple:
        return _sl_compiled(s, model, n, skewed)

    return nll, compiled


#: compiled (s_bins -> nll, gradient, Hessian) per pyhf workspace (kept while it lives)
_PYHF_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _pyhf(like: Any) -> tuple[Callable, Callable]:
    from protomodels.statistics import pyhf_fits
    from protomodels.statistics.full_likelihood import MAX_ITERATIONS
    from protomodels.statistics.runtime import pyhf_jax

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
        return work._nll(x, jnp.asarray(n), jnp.asarray(aux), s_bins)

    def nll(s_bins: jax.Array) -> jax.Array:
        held = jax.lax.stop_gradient(s_bins)
        fit = pyhf_fits.profile(objective, work._problem, poi, jnp.asarray(x0), jnp.ones(()),
                                jnp.asarray(n), jnp.asarray(aux), held, MAX_ITERATIONS)
        x_hat = jax.lax.stop_gradient(fit.x)
        moves = jnp.asarray(free) & _inside(x_hat, jnp.asarray(lo), jnp.asarray(hi))
        return newton_profiled(at, x_hat, s_bins, moves)

    def compiled(s_bins: np.ndarray) -> tuple:
        fn = _PYHF_COMPILED.get(work)
        if fn is None:
            fn = _PYHF_COMPILED[work] = jax.jit(_value_grad_hess(nll))
        with pyhf_jax():
            return fn(s_bins)

    return nll, compiled


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
        (fn, compiled), yields = _single_region(like), np.asarray([like.signal])
    elif kind == "simplified":
        (fn, compiled), yields = _simplified(like), np.asarray(like.model.s, dtype=float)
    elif kind == "pyhf":
        fn, compiled = _pyhf(like)
        yields = np.asarray(like.workspace.signal_bins(like.signals), dtype=float)
    else:
        msg = (f"{label}: a {kind} likelihood is not differentiated (the combination of K holds "
               "efficiency maps and combined results)")
        raise ProtomodelsError(msg)
    return YieldLikelihood(label, kind, len(yields), fn, float(stats.nll_sm), yields, compiled)
