"""Likelihood of one efficiency-map signal region (jittable).

SModelS 3 (``statistics/simplifiedLikelihoods.py``; ``docs/statistics.md`` §3):
L(mu, theta) = Poisson(n | mu s + b + theta) x N(theta; 0, sigma_b), with theta profiled (not
marginalised) inside the bounds [-10 n, 10 n] (so theta = 0 for n = 0). No signal
uncertainty enters. The profile is analytic here: the stationary theta solves a quadratic, and
the objective is convex in theta, so the bounded optimum is the clipped root. sigma_b = 0 is
allowed and means no background uncertainty (theta = 0, no Gaussian factor).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from protomodels.statistics import cls

__all__ = ["mu_hat", "nll", "theta_hat", "upper_limit"]


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
    theta = jnp.where(v > 0, theta, 0.0)
    return jnp.clip(theta, -10.0 * n, 10.0 * n)


def _nll_at(
    mu: jax.Array, theta: jax.Array, s: jax.Array, b: jax.Array, sigma: jax.Array, n: jax.Array
) -> jax.Array:
    lam = jnp.maximum(mu * s + b + theta, _TINY)
    poisson = lam - n * jnp.log(lam) + gammaln(n + 1.0)
    safe = jnp.where(sigma > 0, sigma, 1.0)
    gauss = 0.5 * (theta / safe) ** 2 + jnp.log(safe) + 0.5 * jnp.log(2 * jnp.pi)
    return poisson + jnp.where(sigma > 0, gauss, 0.0)


def nll(mu: jax.Array, s: jax.Array, b: jax.Array, sigma: jax.Array, n: jax.Array) -> jax.Array:
    """-ln L(mu), profiled, with all constants (an absolute probability density)."""
    return _nll_at(mu, theta_hat(mu, s, b, sigma, n), s, b, sigma, n)


def mu_hat(s: jax.Array, b: jax.Array, n: jax.Array) -> jax.Array:
    """Best-fit signal strength (>= 0): (n - b)/s, or n - b for a vanishing signal (SModelS).

    For s > 0 this is the exact maximum: at mu = (n - b)/s, theta = 0 makes lambda = n."""
    raw = jnp.where(s > 1e-100, (n - b) / jnp.where(s > 1e-100, s, 1.0), n - b)
    return jnp.maximum(raw, 0.0)


def upper_limit(
    s: jax.Array, b: jax.Array, sigma: jax.Array, n: jax.Array, *, expected: bool = False
) -> jax.Array:
    """95 % CL upper limit on mu: asymptotic CLs with the post-fit Asimov data (SModelS's
    method for combinations, ``docs/statistics.md`` §5, on one region).

    SModelS reports the database limits for single regions; this is the limit of the likelihood
    itself. ``expected``: a priori (counts replaced by b). NaN for s = 0.
    """
    s, b, sigma, n = (jnp.asarray(x, dtype=float) for x in (s, b, sigma, n))
    data = b if expected else n
    theta0 = theta_hat(0.0, s, b, sigma, data)
    asimov = jnp.maximum(b + theta0, 0.0)
    m_data = mu_hat(s, b, data)
    m_asimov = mu_hat(s, b, asimov)

    counts = jnp.stack([data, asimov])

    def profiles(mu: jax.Array, _: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        theta = theta_hat(mu, s, b, sigma, counts)
        lam = jnp.maximum(mu * s + b + theta, _TINY)
        return _nll_at(mu, theta, s, b, sigma, counts), s * (1.0 - counts / lam), theta

    width = jnp.sqrt(asimov + sigma**2 + 1.0) / jnp.where(s > 0, s, 1.0)
    limit = cls.upper_limit(
        profiles,
        mu_hat=m_data,
        nll_min=jnp.stack([nll(m_data, s, b, sigma, data), nll(m_asimov, s, b, sigma, asimov)]),
        theta=jnp.stack([theta0, theta0]),
        sigma=width,
    )
    return jnp.where(s > 0, limit, jnp.nan)
