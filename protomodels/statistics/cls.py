"""Asymptotic CLs and the 95 % CL upper limit on the signal strength (jittable).

The test statistic is the one SModelS 3 uses (``statistics/basicStats.py:CLsfromNLL``;
``docs/statistics.md`` §5): q = max(0, 2 [nll(mu) - nll(mu-hat)]) on the data and qA the same on
the post-fit Asimov data, with the asymptotic q~_mu formulas of arXiv:1007.1727 (eqs. 65-66):

- qA >= q: CLs+b = 1 - Phi(sqrt q), CLb = Phi(sqrt qA - sqrt q);
- otherwise: CLs+b = 1 - Phi((q + qA)/(2 sqrt qA)), CLb = 1 - Phi((q - qA)/(2 sqrt qA)).

The limit is the root of ln CLs(mu) - ln 0.05, found by a safeguarded Newton search: the
derivative of a profiled nll in mu is its partial derivative at the profiled nuisances (the
envelope theorem), so every step costs two warm-started profiles (data and Asimov data).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr, ndtri

__all__ = [
    "ProfileFn",
    "first_guess",
    "gaussian_limit",
    "log_cls",
    "log_cls_and_slope",
    "search_step",
    "upper_limit",
]


def __dir__() -> list[str]:
    return __all__


#: (mu, nuisances of the data and of the Asimov data to start from, stacked on axis 0) ->
#: (profiled nll [2], d nll / d mu [2], profiled nuisances [2, ...]), data first
ProfileFn = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array, jax.Array]]

_ALPHA = 0.05
_FLOOR = 1e-300


def log_cls(q: jax.Array, qa: jax.Array) -> jax.Array:
    """ln CLs from the test statistics on the data (q) and on the Asimov data (qa)."""
    u = jnp.sqrt(jnp.maximum(q, _FLOOR))
    v = jnp.sqrt(jnp.maximum(qa, _FLOOR))
    # qa ~ 0: both branches tend to CLs = 1 (SModelS sets CLs+b = CLb = 1 at qA = 0); the
    # first one has no 1/sqrt(qa)
    first = (qa >= q) | (qa < 1e-8)
    v2 = jnp.where(first, 1.0, v)
    log_first = log_ndtr(-u) - log_ndtr(v - u)
    log_second = log_ndtr(-(q + qa) / (2 * v2)) - log_ndtr(-(q - qa) / (2 * v2))
    return jnp.minimum(jnp.where(first, log_first, log_second), 0.0)


def gaussian_limit(mu_hat: jax.Array, sigma: jax.Array, alpha: float = _ALPHA) -> jax.Array:
    """The CLs limit when q and qA are parabolas of width sigma (the search's first guess):
    mu_hat + sigma Phi^-1(1 - alpha Phi(mu_hat/sigma))."""
    return mu_hat + sigma * ndtri(1.0 - alpha * jnp.exp(log_ndtr(mu_hat / sigma)))


def search_step(
    mu: jax.Array,
    lo: jax.Array,
    hi: jax.Array,
    g: jax.Array,
    slope: jax.Array,
    sigma: jax.Array,
    rtol: float,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """One step of the safeguarded Newton search of g(mu) = ln CLs(mu) - ln alpha = 0.

    [lo, hi] brackets the root (hi = inf until a point below alpha is seen): a Newton step
    that stays inside is taken, else the bracket is halved (or mu doubled while hi = inf).
    Returns (next mu, lo, hi, done).
    """
    above = g > 0
    lo = jnp.where(above, mu, lo)
    hi = jnp.where(above, hi, mu)
    newton = mu - g / jnp.where(slope < 0, slope, -1.0)
    ok = (slope < 0) & jnp.isfinite(newton) & (newton > lo) & (newton < hi)
    fallback = jnp.where(jnp.isfinite(hi), 0.5 * (lo + hi), 2.0 * jnp.maximum(mu, sigma))
    nxt = jnp.where(ok, newton, fallback)
    exact = jnp.abs(g) < 1e-10
    done = exact | (jnp.isfinite(hi) & (hi - lo <= rtol * hi))
    done = done | (ok & (jnp.abs(nxt - mu) <= rtol * jnp.abs(mu)))
    return jnp.where(exact, mu, nxt), lo, hi, done


def first_guess(mu_hat: jax.Array, sigma: jax.Array, alpha: float = _ALPHA) -> jax.Array:
    """Where the search starts: :func:`gaussian_limit`, or mu_hat + 2 sigma if that fails."""
    sigma = jnp.where(jnp.isfinite(sigma) & (sigma > 0), sigma, jnp.maximum(mu_hat, 1.0))
    start = gaussian_limit(mu_hat, sigma, alpha)
    return jnp.where(jnp.isfinite(start) & (start > mu_hat), start, mu_hat + 2 * sigma)


def upper_limit(
    profiles: ProfileFn,
    *,
    mu_hat: jax.Array,
    nll_min: jax.Array,
    theta: jax.Array,
    sigma: jax.Array,
    alpha: float = _ALPHA,
    rtol: float = 1e-6,
    max_iterations: int = 60,
) -> jax.Array:
    """The mu where CLs = alpha (NaN if the search does not converge).

    Args:
        profiles: profiled nll of the data and of the Asimov data at one mu (one call, so
            that both profiles can run as one vectorised fit).
        mu_hat: best fit on the data (>= 0); CLs(mu_hat) >= 0.5, the left end of the bracket.
        nll_min: nll at the best fits of the data and of the Asimov data, shape [2].
        theta: nuisances of the data and of the Asimov data to start the profiles from.
        sigma: rough width of the likelihood in mu (for the first guess and the doubling).
        alpha: 1 - confidence level.
        rtol: relative tolerance on the limit.
        max_iterations: Newton, bisection or doubling steps.
    """
    dtype = jnp.result_type(mu_hat, float)
    mu_hat = jnp.asarray(mu_hat, dtype)
    sigma = jnp.where(jnp.isfinite(sigma) & (sigma > 0), sigma, jnp.maximum(mu_hat, 1.0))

    def cond(state: tuple) -> jax.Array:
        i, _, _, _, _, done = state
        return (i < max_iterations) & ~done

    def body(state: tuple) -> tuple:
        i, mu, lo, hi, th, _ = state
        nll, dnll, th = profiles(mu, th)
        g, slope = log_cls_and_slope(nll, dnll, nll_min, alpha)
        mu, lo, hi, done = search_step(mu, lo, hi, g, slope, sigma, rtol)
        return i + 1, mu, lo, hi, th, done

    inf = jnp.asarray(jnp.inf, dtype)
    start = first_guess(mu_hat, sigma, alpha)
    state = (0, start, mu_hat, inf, theta, jnp.asarray(False))
    _, mu, _, _, _, done = jax.lax.while_loop(cond, body, state)
    return jnp.where(done, mu, jnp.nan)


def log_cls_and_slope(
    nll: jax.Array, dnll: jax.Array, nll_min: jax.Array, alpha: float = _ALPHA
) -> tuple[jax.Array, jax.Array]:
    """ln CLs - ln alpha and its derivative in mu, from the profiled nll of the data and of
    the Asimov data (axis 0), their derivatives in mu and their minima."""
    raw = 2 * (nll - nll_min)
    q = jnp.maximum(raw, 0.0)
    dq = jnp.where(raw > 0, 2 * dnll, 0.0)
    value, slope = jax.jvp(log_cls, (q[0], q[1]), (dq[0], dq[1]))
    return value - jnp.log(alpha), slope
