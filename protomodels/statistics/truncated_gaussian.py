"""Likelihood of an upper-limit result from its observed and expected limits.

SModelS 3 (``statistics/truncatedGaussians.py``; shared ``docs/statistics.md`` §2): in units of
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
_ITERATIONS = 200


def width(u: jax.Array, e: jax.Array, correction: float = CORRECTION) -> jax.Array:
    """sigma_mu from the observed (u) and expected (e) limits on mu."""
    corrected = jnp.where(u > e, e / (1.0 - correction * (u - e) / (u + e)), e)
    return corrected / 1.96


def mu_hat(u: jax.Array, sigma: jax.Array) -> jax.Array:
    """The mean whose truncated Gaussian has its 95 % quantile at u (bisection, jittable).

    Solves log Phi((m - u)/sigma) - log Phi(m/sigma) = log(1 - 0.95), whose left side grows
    with m; the bracket [u - 400 sigma, u] holds the root for u/sigma > 0.0075.
    """
    target = jnp.log(1.0 - _CL)

    def g(m: jax.Array) -> jax.Array:
        return log_ndtr((m - u) / sigma) - log_ndtr(m / sigma) - target

    lo = u - 400.0 * sigma
    hi = u

    def body(_: int, bracket: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        above = g(mid) > 0
        return jnp.where(above, lo, mid), jnp.where(above, mid, hi)

    lo, hi = jax.lax.fori_loop(0, _ITERATIONS, body, (lo, hi))
    return 0.5 * (lo + hi)


def log_likelihood(mu: jax.Array, mu_hat: jax.Array, sigma: jax.Array) -> jax.Array:
    """ln L(mu) of the truncated Gaussian (a density in mu)."""
    z = (mu - mu_hat) / sigma
    return -0.5 * z**2 - 0.5 * jnp.log(2 * jnp.pi) - jnp.log(sigma) - log_ndtr(mu_hat / sigma)
