"""Likelihood of an upper-limit result from its observed and expected limits.

SModelS 3 (``statistics/truncatedGaussians.py``; ``docs/statistics.md`` §2): in units of
the predicted signal, with u = UL_obs / sigma and e = UL_exp / sigma, the expected limit is
corrected when u > e, e' = e / (1 - 0.6 (u - e)/(u + e)); the width is sigma_mu = e' / 1.96; mu-hat
is the mean for which u is the 95 % quantile of N(mu-hat, sigma_mu) truncated to mu >= 0, and

    L(mu) = phi((mu - mu_hat) / sigma_mu) / (sigma_mu * Phi(mu_hat / sigma_mu)),

a density normalised on mu >= 0 (mu-hat may be negative for under-fluctuations).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr

__all__ = ["CORRECTION", "log_likelihood", "mu_hat", "width"]


def __dir__() -> list[str]:
    return __all__


#: SModelS's correction factor for observed > expected limits
CORRECTION = 0.6
_CL = 0.95
_ITERATIONS = 30


def width(u: jax.Array, e: jax.Array, correction: float = CORRECTION) -> jax.Array:
    """sigma_mu from the observed (u) and expected (e) limits on mu."""
    corrected = jnp.where(u > e, e / (1.0 - correction * (u - e) / (u + e)), e)
    return corrected / 1.96


def mu_hat(u: jax.Array, sigma: jax.Array) -> jax.Array:
    """The mean whose truncated Gaussian has its 95 % quantile at u (jittable).

    Solves g(m) = log Phi((m - u)/sigma) - log Phi(m/sigma) - log(1 - 0.95) = 0; g grows with
    m and the bracket [u - 400 sigma, u] holds the root for u/sigma > 0.0075. Newton steps from
    u - 1.645 sigma (the root for u >> sigma), halving the bracket whenever a step leaves it;
    converges to rounding level well within the fixed number of steps.
    """
    target = jnp.log(1.0 - _CL)

    def g_and_slope(m: jax.Array) -> tuple[jax.Array, jax.Array]:
        z1, z0 = (m - u) / sigma, m / sigma
        l1, l0 = log_ndtr(z1), log_ndtr(z0)
        # d/dz log Phi(z) = phi(z) / Phi(z), from logs (no underflow in the far tail)
        mills1 = jnp.exp(-0.5 * z1**2 - 0.5 * jnp.log(2 * jnp.pi) - l1)
        mills0 = jnp.exp(-0.5 * z0**2 - 0.5 * jnp.log(2 * jnp.pi) - l0)
        return l1 - l0 - target, (mills1 - mills0) / sigma

    def body(_: int, state: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
        m, lo, hi = state
        g, slope = g_and_slope(m)
        lo = jnp.where(g < 0, m, lo)
        hi = jnp.where(g < 0, hi, m)
        newton = m - g / jnp.where(slope > 0, slope, 1.0)
        inside = (slope > 0) & (newton > lo) & (newton < hi)
        return jnp.where(inside, newton, 0.5 * (lo + hi)), lo, hi

    lo, hi = u - 400.0 * sigma, u
    start = jnp.clip(u - 1.6448536269514722 * sigma, lo, hi)
    m, _, _ = jax.lax.fori_loop(0, _ITERATIONS, body, (start, lo, hi))
    return m


def log_likelihood(mu: jax.Array, mu_hat: jax.Array, sigma: jax.Array) -> jax.Array:
    """ln L(mu) of the truncated Gaussian (a density in mu)."""
    z = (mu - mu_hat) / sigma
    return -0.5 * z**2 - 0.5 * jnp.log(2 * jnp.pi) - jnp.log(sigma) - log_ndtr(mu_hat / sigma)
