"""Likelihood of one efficiency-map signal region.

SModelS 3 (``statistics/simplifiedLikelihoods.py``; ``docs/statistics.md`` §3):
L(mu, theta) = Poisson(n | mu s + b + theta) x N(theta; 0, sigma_b), with theta profiled (not
marginalised) inside the bounds [-10 n, 10 n] (so theta = 0 for n = 0). No signal
uncertainty enters. The profile is analytic here: the stationary theta solves a quadratic, and
the objective is convex in theta, so the bounded optimum is the clipped root.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

__all__ = ["mu_hat", "nll", "theta_hat"]


def __dir__() -> list[str]:
    return __all__


_TINY = 1e-30


def theta_hat(
    mu: jax.Array, s: jax.Array, b: jax.Array, sigma: jax.Array, n: jax.Array
) -> jax.Array:
    """Profiled background shift at signal strength mu."""
    a = mu * s + b
    v = sigma**2
    disc = (a + v) ** 2 - 4.0 * v * (a - n)
    theta = 0.5 * (-(a + v) + jnp.sqrt(jnp.maximum(disc, 0.0)))
    return jnp.clip(theta, -10.0 * n, 10.0 * n)


def nll(mu: jax.Array, s: jax.Array, b: jax.Array, sigma: jax.Array, n: jax.Array) -> jax.Array:
    """-ln L(mu), profiled, with all constants (an absolute probability density)."""
    theta = theta_hat(mu, s, b, sigma, n)
    lam = jnp.maximum(mu * s + b + theta, _TINY)
    poisson = lam - n * jnp.log(lam) + gammaln(n + 1.0)
    gauss = 0.5 * (theta / sigma) ** 2 + jnp.log(sigma) + 0.5 * jnp.log(2 * jnp.pi)
    return poisson + gauss


def mu_hat(s: jax.Array, b: jax.Array, n: jax.Array) -> jax.Array:
    """Best-fit signal strength (>= 0): (n - b)/s, or n - b for a vanishing signal (SModelS)."""
    raw = jnp.where(s > 1e-100, (n - b) / jnp.where(s > 1e-100, s, 1.0), n - b)
    return jnp.maximum(raw, 0.0)
