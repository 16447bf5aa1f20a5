"""Simplified likelihood of several signal regions with a background covariance.

SModelS 3 (``statistics/simplifiedLikelihoods.py``; ``docs/statistics.md`` §4), CMS-NOTE-2017-001
and arXiv:1809.05548:

- linear model: lambda_i = mu s_i + b_i + theta_i, theta ~ N(0, Sigma);
- skewed model (third moments m3 given): lambda_i = mu s_i + A_i + theta_i + C_i theta_i^2/B_i^2,
  theta ~ N(0, V), with A, B, C, V from the first three moments.

nll(mu, theta) = sum_i [lambda_i - n_i ln lambda_i + ln Gamma(n_i + 1)] + theta^T V^-1 theta / 2
+ ln det(2 pi V) / 2; theta is profiled inside [-10 n_i, 10 n_i] (SModelS's bounds), mu >= 0.
The fits are fixed-iteration damped Newton steps (jittable, differentiable); the 95 % CL upper
limit on mu uses the asymptotic CLs of arXiv:1007.1727 with the post-fit Asimov data, as SModelS.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln, ndtr

__all__ = [
    "SimplifiedModel",
    "fit",
    "make_model",
    "nll",
    "profile",
    "upper_limit",
]


def __dir__() -> list[str]:
    return __all__


_TINY = 1e-30
_NEWTON = 40


class SimplifiedModel(NamedTuple):
    """Arrays of one simplified likelihood (a JAX pytree).

    Attributes:
        s: signal yields at mu = 1.
        a: background offsets (b for the linear model, A for the skewed one).
        c_over_b2: C / B^2 (zeros for the linear model).
        v_inv: inverse covariance of theta.
        log_det: ln det(2 pi V).
        lower, upper: bounds of theta (-10 n, 10 n for the observed counts).
    """

    s: jax.Array
    a: jax.Array
    c_over_b2: jax.Array
    v_inv: jax.Array
    log_det: jax.Array
    lower: jax.Array
    upper: jax.Array


def make_model(
    s: jax.Array, b: jax.Array, cov: jax.Array, n: jax.Array, third: jax.Array | None = None
) -> SimplifiedModel:
    """Build the model; with third moments (all given, not all ~0) the skewed variant."""
    s, b, cov, n = (jnp.asarray(x, dtype=float) for x in (s, b, cov, n))
    if third is None:
        v = cov
        a = b
        c_over_b2 = jnp.zeros_like(b)
    else:
        m2 = jnp.diag(cov)
        m3 = jnp.where(jnp.asarray(third) == 0, 1e-30, jnp.asarray(third, dtype=float))
        c = (
            -jnp.sign(m3)
            * jnp.sqrt(2 * m2)
            * jnp.cos(4 * jnp.pi / 3 + jnp.arctan(jnp.sqrt(8 * m2**3 / m3**2 - 1)) / 3)
        )
        bb = jnp.sqrt(m2 - 2 * c**2)
        a = b - c
        cc = jnp.outer(c, c)
        bbo = jnp.outer(bb, bb)
        rho = (jnp.sqrt(bbo**2 + 8 * cc * cov) - bbo) / (4 * cc)
        v = bbo * rho
        c_over_b2 = c / bb**2
    sign, logdet = jnp.linalg.slogdet(2 * jnp.pi * v)
    return SimplifiedModel(
        s=s,
        a=a,
        c_over_b2=c_over_b2,
        v_inv=jnp.linalg.inv(v),
        log_det=jnp.where(sign > 0, logdet, jnp.inf),
        lower=-10.0 * n,
        upper=10.0 * n,
    )


def _lam(mu: jax.Array, theta: jax.Array, m: SimplifiedModel) -> jax.Array:
    return mu * m.s + m.a + theta + m.c_over_b2 * theta**2


def nll(mu: jax.Array, theta: jax.Array, n: jax.Array, m: SimplifiedModel) -> jax.Array:
    """-ln L(mu, theta) for observed (or Asimov) counts n."""
    lam = jnp.maximum(_lam(mu, theta, m), _TINY)
    poisson = jnp.sum(lam - n * jnp.log(lam) + gammaln(n + 1.0))
    return poisson + 0.5 * theta @ m.v_inv @ theta + 0.5 * m.log_det


def _derivatives(
    mu: jax.Array, th: jax.Array, n: jax.Array, m: SimplifiedModel
) -> tuple[jax.Array, jax.Array]:
    """Gradient and Hessian of nll in theta (analytic)."""
    lam = jnp.maximum(_lam(mu, th, m), _TINY)
    slope = 1.0 + 2.0 * m.c_over_b2 * th
    g = (1.0 - n / lam) * slope + m.v_inv @ th
    h = jnp.diag(n / lam**2 * slope**2 + (1.0 - n / lam) * 2.0 * m.c_over_b2) + m.v_inv
    return g, h


def _newton_theta(
    mu: jax.Array, n: jax.Array, m: SimplifiedModel, theta: jax.Array, iterations: int = _NEWTON
) -> jax.Array:
    def step(_: int, th: jax.Array) -> jax.Array:
        g, h = _derivatives(mu, th, n, m)
        # variables held at a bound by the gradient are left out of the Newton step
        held = ((th <= m.lower) & (g > 0)) | ((th >= m.upper) & (g < 0)) | (m.upper <= m.lower)
        free = ~held
        h = jnp.where(free[:, None] & free[None, :], h, 0.0) + jnp.diag(held.astype(h.dtype))
        g = jnp.where(free, g, 0.0)
        delta = jnp.linalg.solve(h + 1e-12 * jnp.eye(len(th)), g)
        lam = _lam(mu, th, m)
        slope = 1.0 + 2.0 * m.c_over_b2 * th
        decrease = delta * slope
        room = jnp.where(decrease > 0, 0.9 * lam / jnp.where(decrease > 0, decrease, 1.0), jnp.inf)
        t = jnp.minimum(1.0, jnp.min(room))
        return jnp.clip(th - t * delta, m.lower, m.upper)

    return jax.lax.fori_loop(0, iterations, step, theta)


def profile(mu: jax.Array, n: jax.Array, m: SimplifiedModel) -> jax.Array:
    """theta-hat(mu) for counts n."""
    return _newton_theta(mu, n, m, jnp.zeros_like(m.s))


def profiled_nll(mu: jax.Array, n: jax.Array, m: SimplifiedModel) -> jax.Array:
    """min over theta of nll(mu, theta)."""
    return nll(mu, profile(mu, n, m), n, m)


def fit(n: jax.Array, m: SimplifiedModel, mu_max: float = 1e4) -> tuple[jax.Array, jax.Array]:
    """(mu-hat >= 0, nll at mu-hat): golden-section search of the profiled nll in mu.

    The bracket is [0, hi] with hi from the excess per region (as SModelS bounds its search).
    """
    excess = jnp.max(jnp.where(m.s > 0, (n - m.a) / jnp.where(m.s > 0, m.s, 1.0), 0.0))
    hi = jnp.clip(3.0 * jnp.maximum(excess, 0.0) + 1.0, 1.0, mu_max)
    ratio = 0.5 * (jnp.sqrt(5.0) - 1.0)

    theta0 = profile(jnp.zeros(()), n, m)

    def body(
        _: int, state: tuple[jax.Array, jax.Array, jax.Array]
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        a, b, th = state
        c = b - ratio * (b - a)
        d = a + ratio * (b - a)
        th_c = _newton_theta(c, n, m, th, 6)
        th_d = _newton_theta(d, n, m, th, 6)
        left = nll(c, th_c, n, m) < nll(d, th_d, n, m)
        return jnp.where(left, a, c), jnp.where(left, d, b), jnp.where(left, th_c, th_d)

    a, b, _ = jax.lax.fori_loop(0, 45, body, (jnp.zeros(()), hi, theta0))
    mu = 0.5 * (a + b)
    # the minimum may sit at the boundary mu = 0
    at_zero = profiled_nll(jnp.zeros(()), n, m)
    at_mu = profiled_nll(mu, n, m)
    better = at_zero <= at_mu
    return jnp.where(better, 0.0, mu), jnp.where(better, at_zero, at_mu)


def _cls(q: jax.Array, qa: jax.Array) -> jax.Array:
    sq, sqa = jnp.sqrt(q), jnp.sqrt(jnp.maximum(qa, 1e-300))
    # near mu = 0 both statistics are rounding noise: the first branch (CLs -> 1) holds there,
    # the second would divide by sqrt(qa) ~ 0
    first = (qa >= q) | (qa < 1e-8)
    clsb = jnp.where(first, 1 - ndtr(sq), 1 - ndtr((q + qa) / (2 * sqa)))
    clb = jnp.where(first, ndtr(sqa - sq), 1 - ndtr((q - qa) / (2 * sqa)))
    return jnp.where(clb > 0, clsb / jnp.where(clb > 0, clb, 1.0), 0.0)


def upper_limit(
    n: jax.Array, b: jax.Array, m: SimplifiedModel, *, expected: bool = False
) -> jax.Array:
    """95 % CL upper limit on mu (asymptotic CLs with the post-fit Asimov data, as SModelS).

    Args:
        n: observed counts.
        b: expected backgrounds (the data of the a-priori expected limit).
        m: the model (its theta bounds follow the counts it was built with).
        expected: a priori expected limit (counts replaced by the background).
    """
    data = b if expected else n
    if expected:
        m = m._replace(lower=-10.0 * data, upper=10.0 * data)
    mu_hat, nll0 = fit(data, m)
    theta0 = profile(jnp.zeros(()), data, m)
    asimov = jnp.maximum(_lam(jnp.zeros(()), theta0, m), 0.0)
    m_a = m._replace(lower=-10.0 * asimov, upper=10.0 * asimov)
    _, nll0a = fit(asimov, m_a)

    def cls_minus(mu: jax.Array) -> jax.Array:
        q = jnp.maximum(0.0, 2 * (profiled_nll(mu, data, m) - nll0))
        qa = jnp.maximum(0.0, 2 * (profiled_nll(mu, asimov, m_a) - nll0a))
        return _cls(q, qa) - 0.05

    total = jnp.sum(m.s)
    lo = jnp.maximum(mu_hat, 1e-8)
    hi = jnp.maximum(lo * 2, 10.0 * jnp.sqrt(jnp.sum(data) + 1.0) / jnp.maximum(total, 1e-12))

    def grow(_: int, h: jax.Array) -> jax.Array:
        return jnp.where(cls_minus(h) > 0, h * 4.0, h)

    hi = jax.lax.fori_loop(0, 12, grow, hi)

    def bisect(_: int, bracket: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        a, b = bracket
        mid = jnp.sqrt(a * b)
        above = cls_minus(mid) > 0
        return jnp.where(above, mid, a), jnp.where(above, b, mid)

    a, b = jax.lax.fori_loop(0, 50, bisect, (lo, hi))
    return jnp.sqrt(a * b)
