"""Simplified likelihood of several signal regions with a background covariance (jittable).

SModelS 3 (``statistics/simplifiedLikelihoods.py``; ``docs/statistics.md`` §4), CMS-NOTE-2017-001
and arXiv:1809.05548:

- linear model: lambda_i = mu s_i + b_i + theta_i, theta ~ N(0, Sigma);
- skewed model (third moments m3 given): lambda_i = mu s_i + A_i + theta_i + C_i theta_i^2/B_i^2,
  theta ~ N(0, V), with A, B, C, V from the first three moments.

nll(mu, theta) = sum_i [lambda_i - n_i ln lambda_i + ln Gamma(n_i + 1)] + theta^T V^-1 theta / 2
+ ln det(2 pi V) / 2; theta is profiled inside [-10 n_i, 10 n_i] (SModelS's bounds), mu >= 0.

Numerics: every fit (the profile of theta at fixed mu, and the best fit in (mu, theta)) is one
projected Newton iteration on the bounded box with analytic derivatives, a step that keeps all
lambda > 0 and a short line search that never lets the nll grow; it stops when the step is at
rounding level. The 95 % CL upper limit is the asymptotic CLs of :mod:`~protomodels.statistics.cls`
with the post-fit Asimov data, as SModelS.

Padding: a model can be padded to a fixed number of regions (:func:`pad_model`, :func:`pad`,
NumPy functions for the preparation step);
padded regions have no Poisson term, theta = 0 and a unit covariance block, so every number is
unchanged and one compiled function serves all results of up to that size.
"""

from __future__ import annotations

from types import ModuleType
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln
from numpy.typing import ArrayLike

from protomodels.statistics import cls

__all__ = [
    "SimplifiedModel",
    "Summary",
    "asimov_counts",
    "fit",
    "make_model",
    "nll",
    "pad",
    "pad_model",
    "profile",
    "profiled_nll",
    "summary",
    "upper_limit",
]


def __dir__() -> list[str]:
    return __all__


_TINY = 1e-30
_STEPS = (1.0, 0.5, 0.25, 0.1, 0.01, 0.0)
_COLD, _WARM = 100, 4
_XTOL, _FTOL, _DECREMENT = 1e-10, 1e-14, 1e-10


class SimplifiedModel(NamedTuple):
    """Arrays of one simplified likelihood (a JAX pytree; the counts are passed separately).

    Attributes:
        s: signal yields at mu = 1.
        a: background offsets (b for the linear model, A for the skewed one).
        c_over_b2: C / B^2 (zeros for the linear model).
        v_inv: inverse covariance of theta.
        log_det: ln det(2 pi V) of the real regions.
        mask: True for real regions, False for padding.
    """

    s: jax.Array
    a: jax.Array
    c_over_b2: jax.Array
    v_inv: jax.Array
    log_det: jax.Array
    mask: jax.Array


class Summary(NamedTuple):
    """Everything the theory predictions need from one simplified likelihood.

    Attributes:
        nll1, nll_sm, nll_max: nll at mu = 1, at mu = 0 and at mu-hat (observed counts).
        mu_hat: best fit (>= 0).
        limit, expected_limit: 95 % CL upper limits on mu, observed and a priori expected
            (NaN if the search failed or there is no signal).
    """

    nll1: jax.Array
    nll_sm: jax.Array
    nll_max: jax.Array
    mu_hat: jax.Array
    limit: jax.Array
    expected_limit: jax.Array


def make_model(
    s: ArrayLike,
    b: ArrayLike,
    cov: ArrayLike,
    third: ArrayLike | None = None,
    *,
    xp: ModuleType = jnp,
) -> SimplifiedModel:
    """Build the model: linear, or skewed when third moments are given (pass None, not zeros,
    for the linear one; SModelS uses the linear model when all |m3| sum below 1e-10).

    ``xp``: the array namespace, ``jax.numpy`` (jittable, differentiable) or ``numpy`` (the
    preparation of a result: no XLA compilation for each number of regions).
    """
    s, b, cov = (xp.asarray(x, dtype=float) for x in (s, b, cov))
    if third is None:
        v = cov
        a = b
        c_over_b2 = xp.zeros_like(b)
    else:
        m2 = xp.diag(cov)
        m3 = xp.asarray(third, dtype=float)
        m3 = xp.where(m3 == 0, 1e-30, m3)
        c = (
            -xp.sign(m3)
            * xp.sqrt(2 * m2)
            * xp.cos(4 * xp.pi / 3 + xp.arctan(xp.sqrt(8 * m2**3 / m3**2 - 1)) / 3)
        )
        bb = xp.sqrt(m2 - 2 * c**2)
        a = b - c
        cc = xp.outer(c, c)
        bbo = xp.outer(bb, bb)
        rho = (xp.sqrt(bbo**2 + 8 * cc * cov) - bbo) / (4 * cc)
        v = bbo * rho
        c_over_b2 = c / bb**2
    sign, logdet = xp.linalg.slogdet(2 * xp.pi * v)
    return SimplifiedModel(
        s=s,
        a=a,
        c_over_b2=c_over_b2,
        v_inv=xp.linalg.inv(v),
        log_det=xp.where(sign > 0, logdet, xp.inf),
        mask=xp.ones(s.shape, dtype=bool),
    )


def pad(x: ArrayLike, size: int, value: float = 0.0) -> np.ndarray:
    """A per-region array padded to ``size`` regions with ``value`` (NumPy, dtype kept)."""
    x = np.asarray(x)
    return np.concatenate([x, np.full((size - x.shape[0],), value, dtype=x.dtype)])


def pad_model(m: SimplifiedModel, size: int) -> SimplifiedModel:
    """The model padded to ``size`` regions (every nll, fit and limit unchanged); NumPy arrays
    of the model's dtypes (a preparation step, not meant for jit)."""
    real = np.asarray(m.s).shape[0]
    extra = size - real
    if extra < 0:
        msg = f"cannot pad a model of {real} regions to {size}"
        raise ValueError(msg)
    v_inv = np.asarray(m.v_inv)
    padded_inv = np.eye(size, dtype=v_inv.dtype)
    padded_inv[:real, :real] = v_inv
    return SimplifiedModel(
        s=pad(m.s, size),
        a=pad(m.a, size, 1.0),
        c_over_b2=pad(m.c_over_b2, size),
        v_inv=padded_inv,
        log_det=np.asarray(m.log_det),
        mask=pad(m.mask, size, False),
    )


def _lam(mu: jax.Array, theta: jax.Array, m: SimplifiedModel) -> jax.Array:
    return mu * m.s + m.a + theta + m.c_over_b2 * theta**2


def asimov_counts(theta: jax.Array, m: SimplifiedModel, mu: float = 0.0) -> jax.Array:
    """Expected counts lambda(mu, theta) (padding: 0), e.g. the post-fit Asimov data."""
    return jnp.where(m.mask, jnp.maximum(_lam(jnp.asarray(mu), theta, m), 0.0), 0.0)


def _constant(n: jax.Array, m: SimplifiedModel) -> jax.Array:
    """The part of nll that depends on neither mu nor theta."""
    return jnp.sum(jnp.where(m.mask, gammaln(n + 1.0), 0.0)) + 0.5 * m.log_det


def _variable(mu: jax.Array, theta: jax.Array, n: jax.Array, m: SimplifiedModel) -> jax.Array:
    """nll without :func:`_constant`."""
    lam = jnp.maximum(_lam(mu, theta, m), _TINY)
    poisson = jnp.where(m.mask, lam - n * jnp.log(lam), 0.0)
    return jnp.sum(poisson) + 0.5 * theta @ m.v_inv @ theta


def nll(mu: jax.Array, theta: jax.Array, n: jax.Array, m: SimplifiedModel) -> jax.Array:
    """-ln L(mu, theta) for observed (or Asimov) counts n."""
    return _variable(mu, theta, n, m) + _constant(n, m)


def _bounds(n: jax.Array, m: SimplifiedModel) -> tuple[jax.Array, jax.Array]:
    """SModelS's bounds of theta, [-10 n, 10 n] (0 for padding)."""
    return jnp.where(m.mask, -10.0 * n, 0.0), jnp.where(m.mask, 10.0 * n, 0.0)


def _gradient_hessian(
    x: jax.Array, n: jax.Array, m: SimplifiedModel
) -> tuple[jax.Array, jax.Array]:
    """Gradient and Hessian of nll in x = (mu, theta) (analytic)."""
    mu, th = x[0], x[1:]
    lam = jnp.maximum(_lam(mu, th, m), _TINY)
    r = jnp.where(m.mask, 1.0 - n / lam, 0.0)  # d poisson / d lambda
    w = jnp.where(m.mask, n / lam**2, 0.0)  # d2 poisson / d lambda2
    t = 1.0 + 2.0 * m.c_over_b2 * th  # d lambda / d theta
    g = jnp.concatenate([jnp.sum(m.s * r)[None], r * t + m.v_inv @ th])
    cross = w * m.s * t
    top = jnp.concatenate([jnp.sum(w * m.s**2)[None], cross])
    rest = jnp.concatenate(
        [cross[:, None], jnp.diag(w * t**2 + 2.0 * m.c_over_b2 * r) + m.v_inv], axis=1
    )
    return g, jnp.concatenate([top[None, :], rest], axis=0)


def _factor_solve(a: jax.Array, rhs: jax.Array, skewed: bool) -> jax.Array:
    """Solve a x = rhs: Cholesky for the linear model (a is positive definite there), LU for
    the skewed one (a may be indefinite)."""
    if skewed:
        return jnp.linalg.solve(a, rhs)
    return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(a), rhs)


def _minimise(
    x0: jax.Array,
    n: jax.Array,
    m: SimplifiedModel,
    lower: jax.Array,
    upper: jax.Array,
    max_iterations: int | jax.Array,
    skewed: bool,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """min of nll over x = (mu, theta) in [lower, upper] (fix mu with lower[0] = upper[0]).

    Projected Newton: variables at a bound whose gradient points outwards are held; the
    Newton system is solved through the theta block (Cholesky or LU) and the Schur complement
    of mu. The step stops at the first bound and keeps lambda > 0 to first order; the best of
    a few step lengths along it is taken (0 included, so the nll never grows; the quadratic
    form along the line costs one matrix-vector product). Stops when the Newton decrement or
    the step is at rounding level. Returns (x, nll(x), converged).
    """
    steps = jnp.asarray(_STEPS, dtype=x0.dtype)
    log_n = jnp.where(m.mask & (n > 0), n, 0.0)

    def poisson(mu: jax.Array, th: jax.Array) -> jax.Array:
        lam = jnp.maximum(_lam(mu, th, m), _TINY)
        return jnp.sum(jnp.where(m.mask, lam - log_n * jnp.log(lam), 0.0), axis=-1)

    def cond(state: tuple) -> jax.Array:
        i, _, _, done, _ = state
        return (i < max_iterations) & ~done

    def body(state: tuple) -> tuple:
        i, x, fx, _, _ = state
        mu, th = x[0], x[1:]
        lam = jnp.maximum(_lam(mu, th, m), _TINY)
        r = jnp.where(m.mask, 1.0 - n / lam, 0.0)  # d poisson / d lambda
        w = jnp.where(m.mask, n / lam**2, 0.0)  # d2 poisson / d lambda2
        t = 1.0 + 2.0 * m.c_over_b2 * th  # d lambda / d theta
        u = m.v_inv @ th
        g = jnp.concatenate([jnp.sum(m.s * r)[None], r * t + u])
        span = 1e-12 * (1.0 + jnp.abs(x))
        at_lo, at_hi = x <= lower + span, x >= upper - span
        held = (at_lo & (g > 0)) | (at_hi & (g < 0)) | (upper <= lower)
        free_mu, free = ~held[0], ~held[1:]
        # Newton system [[h00, c^T], [c, A]] (delta_mu, delta_theta) = (g_mu, g_theta)
        diag = w * t**2 + 2.0 * m.c_over_b2 * r
        a = jnp.where(free[:, None] & free[None, :], m.v_inv, 0.0)
        a_diag = jnp.diagonal(a) + diag
        a = a + jnp.diag(jnp.where(free, diag + 1e-12 * (1.0 + jnp.abs(a_diag)), 1.0))
        c = jnp.where(free & free_mu, w * m.s * t, 0.0)
        h00 = jnp.where(free_mu, jnp.sum(w * m.s**2), 1.0)
        g_mu = jnp.where(free_mu, g[0], 0.0)
        g_th = jnp.where(free, g[1:], 0.0)
        sensitivity = jnp.where(free, w * m.s * t, 0.0)
        zy = _factor_solve(a, jnp.stack([g_th, c, sensitivity], axis=1), skewed)
        z, y, drift = zy[:, 0], zy[:, 1], zy[:, 2]
        schur = h00 - c @ y
        schur = jnp.where(jnp.abs(schur) > 1e-12 * (1.0 + h00), schur, 1e-12 * (1.0 + h00))
        d_mu = (g_mu - c @ z) / schur
        delta = jnp.concatenate([d_mu[None], z - y * d_mu])
        gr = jnp.concatenate([g_mu[None], g_th])
        # an indefinite Hessian (skewed model) may give an ascent direction: scaled gradient
        decrement = gr @ delta
        descent = (decrement > 0) & jnp.all(jnp.isfinite(delta))
        scale = jnp.concatenate([h00[None], jnp.diagonal(a)])
        delta = jnp.where(descent, delta, gr / jnp.maximum(jnp.abs(scale), 1e-12))
        # held at a bound whatever the Newton step says, so the step is a straight line
        delta = jnp.where((at_lo & (delta > 0)) | (at_hi & (delta < 0)) | held, 0.0, delta)
        gap = jnp.where(delta > 0, x - lower, upper - x)
        to_bound = jnp.where(delta != 0, gap / jnp.where(delta != 0, jnp.abs(delta), 1.0), jnp.inf)
        d_th = delta[1:]
        shrink = delta[0] * m.s + d_th * t
        room = jnp.where(
            m.mask & (shrink > 0),
            0.9 * jnp.maximum(_lam(mu, th, m), 0.0) / jnp.where(shrink > 0, shrink, 1.0),
            jnp.inf,
        )
        longest = jnp.minimum(1.0, jnp.minimum(jnp.min(to_bound), jnp.min(room)))
        alphas = longest * steps
        trial = jnp.clip(x[None, :] - alphas[:, None] * delta[None, :], lower, upper)
        v = m.v_inv @ d_th
        quadratic = 0.5 * th @ u - alphas * (d_th @ u) + 0.5 * alphas**2 * (d_th @ v)
        values = poisson(trial[:, 0:1], trial[:, 1:]) + quadratic
        values = jnp.where(jnp.isfinite(values), values, jnp.inf)
        best = jnp.argmin(values)
        x_new, f_new = trial[best], values[best]
        done = (
            ((0.5 * decrement < _DECREMENT) & descent & (best == 0) & (longest == 1.0))
            | jnp.all(jnp.abs(x_new - x) <= _XTOL * (1.0 + jnp.abs(x)))
            | (fx - f_new <= _FTOL * (1.0 + jnp.abs(fx)))
        )
        return i + 1, x_new, f_new, done, drift

    x0 = jnp.clip(x0, lower, upper)
    f0 = poisson(x0[0], x0[1:]) + 0.5 * x0[1:] @ m.v_inv @ x0[1:]
    state = (0, x0, f0, jnp.asarray(False), jnp.zeros_like(x0[1:]))
    _, x, _, done, drift = jax.lax.while_loop(cond, body, state)
    return x, nll(x[0], x[1:], n, m), done, drift


def _start(mu: jax.Array, n: jax.Array, m: SimplifiedModel) -> jax.Array:
    """theta of the uncorrelated problem (one quadratic per region), as SModelS starts."""
    lam0 = mu * m.s + m.a
    var = jnp.where(m.mask, 1.0 / jnp.diagonal(m.v_inv), 1.0)
    p = lam0 + var
    theta = 0.5 * (-p + jnp.sqrt(jnp.maximum(p**2 - 4.0 * var * (lam0 - n), 0.0)))
    lower, upper = _bounds(n, m)
    return jnp.where(m.mask, jnp.clip(theta, lower, upper), 0.0)


def _solve(
    n: jax.Array,
    mu_lo: jax.Array,
    mu_hi: jax.Array,
    theta: jax.Array,
    m: SimplifiedModel,
    max_iterations: int | jax.Array,
    skewed: bool,
) -> tuple[jax.Array, ...]:
    """min of nll over theta and mu in [mu_lo, mu_hi] (equal ends: a profile), starting from
    (mu_lo, theta). Returns (mu, theta, nll, d nll / d mu there, converged, drift) (drift:
    see :func:`_minimise`)."""
    lower, upper = _bounds(n, m)
    mu_lo, mu_hi = (jnp.asarray(x, dtype=theta.dtype)[None] for x in (mu_lo, mu_hi))
    x, value, converged, drift = _minimise(
        jnp.concatenate([mu_lo, theta]),
        n,
        m,
        jnp.concatenate([mu_lo, lower]),
        jnp.concatenate([mu_hi, upper]),
        max_iterations,
        skewed,
    )
    lam = jnp.maximum(_lam(x[0], x[1:], m), _TINY)
    slope = jnp.sum(jnp.where(m.mask, m.s * (1.0 - n / lam), 0.0))
    return x[0], x[1:], value, slope, converged, drift


def _lanes(
    n: jax.Array,
    mu_lo: jax.Array,
    mu_hi: jax.Array,
    theta: jax.Array,
    m: SimplifiedModel,
    max_iterations: int | jax.Array,
    skewed: bool,
) -> tuple[jax.Array, ...]:
    """:func:`_solve` for several counts (axis 0) at once."""

    def one(n: jax.Array, lo: jax.Array, hi: jax.Array, th: jax.Array) -> tuple[jax.Array, ...]:
        return _solve(n, lo, hi, th, m, max_iterations, skewed)

    return jax.vmap(one)(n, mu_lo, mu_hi, theta)


def _width(
    mu: jax.Array, theta: jax.Array, n: jax.Array, m: SimplifiedModel, skewed: bool
) -> jax.Array:
    """Width in mu of the profiled nll at a fit, from the Hessian (theta at bounds fixed)."""
    x = jnp.concatenate([mu[None], theta])
    _, h = _gradient_hessian(x, n, m)
    lower, upper = _bounds(n, m)
    inner = (upper > lower) & (theta > lower) & (theta < upper)
    free = jnp.concatenate([jnp.ones((1,), bool), inner])
    h = jnp.where(free[:, None] & free[None, :], h, 0.0) + jnp.diag((~free).astype(h.dtype))
    h = h + jnp.diag(1e-12 * (1.0 + jnp.abs(jnp.diagonal(h))))
    variance = _factor_solve(h, jnp.zeros_like(x).at[0].set(1.0), skewed)[0]
    return jnp.sqrt(jnp.where(variance > 0, variance, jnp.nan))


def profile(
    mu: jax.Array,
    n: jax.Array,
    m: SimplifiedModel,
    theta: jax.Array | None = None,
    *,
    skewed: bool = True,
) -> jax.Array:
    """theta-hat(mu) for counts n (optionally starting from theta). ``skewed``: see
    :func:`summary` (True is always right, False is faster for the linear model)."""
    mu = jnp.asarray(mu, dtype=float)
    start = _start(mu, n, m) if theta is None else theta
    return _solve(n, mu, mu, start, m, _COLD, skewed)[1]


def profiled_nll(
    mu: jax.Array, n: jax.Array, m: SimplifiedModel, *, skewed: bool = True
) -> jax.Array:
    """min over theta of nll(mu, theta) (``skewed``: see :func:`profile`)."""
    mu = jnp.asarray(mu, dtype=float)
    return _solve(n, mu, mu, _start(mu, n, m), m, _COLD, skewed)[2]


def profiled_nll_from(
    mu: jax.Array,
    n: jax.Array,
    m: SimplifiedModel,
    theta: jax.Array,
    warm: jax.Array,
    *,
    skewed: bool = True,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(min over theta of nll(mu, theta), its derivative in mu, theta-hat), the fit starting
    from ``theta`` where ``warm`` (e.g. the profile at a nearby mu: a few Newton steps) and
    from the uncorrelated start of :func:`profiled_nll` elsewhere; the same minimum to the
    fit's tolerance. The derivative is the partial one at theta-hat (envelope theorem)."""
    mu = jnp.asarray(mu, dtype=float)
    start = jnp.where(warm, theta, _start(mu, n, m))
    _, theta_hat, value, slope, *_ = _solve(n, mu, mu, start, m, _COLD, skewed)
    return value, slope, theta_hat


def fit(n: jax.Array, m: SimplifiedModel, *, skewed: bool = True) -> tuple[jax.Array, jax.Array]:
    """(mu-hat >= 0, nll at mu-hat): the minimum of nll over mu >= 0 and theta."""
    n = jnp.asarray(n, dtype=float)
    zero = jnp.zeros(())
    mu_hat, _, value, *_ = _solve(
        n, zero, jnp.full((), jnp.inf), _start(zero, n, m), m, _COLD, skewed
    )
    return mu_hat, value


def _guess_width(counts: jax.Array, m: SimplifiedModel) -> jax.Array:
    """Rough width in mu of the likelihood of ``counts`` (regions taken as uncorrelated)."""
    variance = jnp.where(m.mask, counts + 1.0 / jnp.diagonal(m.v_inv), 1.0)
    return 1.0 / jnp.sqrt(jnp.sum(jnp.where(m.mask, m.s**2 / variance, 0.0)))


def summary(
    n: jax.Array,
    b: jax.Array,
    m: SimplifiedModel,
    *,
    skewed: bool = True,
    rtol: float = 1e-5,
    max_steps: int = 60,
) -> Summary:
    """nll at 1, 0 and mu-hat, mu-hat and both limits, sharing the fits.

    One loop drives a few fits at a time (one compiled copy of the fit keeps compile times
    short). Phase 1: the profiles of the observed counts n at mu = 0 and 1 and the best fit of
    n (and, for the skewed model, the profile of the expected counts b at mu = 0). Phase 2:
    the best fit of the post-fit Asimov counts (and, skewed, of b and of its Asimov counts).
    Then the two CLs searches (observed and a priori expected) step together, each step
    profiling the counts and their Asimov counts at the current mu, warm-started.

    For the linear model the a priori expected counts need no fit: their best fit is mu = 0,
    theta = 0 (lambda = b exactly), so their Asimov counts are b itself and qA = q.

    Args:
        n: observed counts.
        b: expected backgrounds (padding: 0).
        m: the model.
        skewed: the model has the quadratic term (a static flag; False gives the faster
            linear-model path, which is wrong for a skewed model).
        rtol: relative tolerance of the limits.
        max_steps: steps of each limit search.
    """
    n = jnp.asarray(n, dtype=float)
    b = jnp.asarray(b, dtype=float)
    size = n.shape[0]
    zero, inf = jnp.zeros(()), jnp.full((), jnp.inf)
    # lanes per phase: counts, mu range (lower, upper); the expected counts b of the linear
    # model have their fit at (0, 0) and Asimov counts b
    if skewed:
        first_counts = jnp.stack([n, b, n, n])
        first_lo = jnp.asarray([0.0, 0.0, 1.0, 0.0])
        first_hi = jnp.stack([zero, zero, jnp.ones(()), inf])
        lanes = 4
    else:
        first_counts = jnp.stack([n, n, n])
        first_lo = jnp.asarray([0.0, 1.0, 0.0])
        first_hi = jnp.stack([zero, jnp.ones(()), inf])
        lanes = 3
    starts = jax.vmap(_start, in_axes=(0, 0, None))(first_lo, first_counts, m)
    no_signal = ~(jnp.sum(m.s) > 0)
    nll_b = nll(zero, jnp.zeros(size), b, m)  # linear model: minimum of the b likelihood

    def later_counts(asimov: jax.Array) -> jax.Array:
        if skewed:
            return jnp.stack([n, asimov[0], b, asimov[1]])
        return jnp.stack([n, asimov[0], b])

    def cond(state: tuple) -> jax.Array:
        i, *_, done = state
        return (i < 2) | ((i < 2 + max_steps) & ~jnp.all(done))

    def body(state: tuple) -> tuple:
        i, theta, asimov, out, mins, limit, lo, hi, width, done = state
        fitting = i == 1
        # phase 2 lanes: the Asimov fits (and, skewed, the fit of b), plus the profiles that
        # give d theta-hat / d mu at the points the searches start from: n at mu-hat (and,
        # linear, b at 0)
        mu_hat = out[2]
        if skewed:
            second_counts = jnp.stack([asimov[0], b, asimov[1], n])
            second_lo = jnp.stack([zero, zero, zero, mu_hat])
            second_hi = jnp.stack([inf, inf, inf, mu_hat])
        else:
            second_counts = jnp.stack([asimov[0], b, n])
            second_lo = jnp.stack([zero, zero, mu_hat])
            second_hi = jnp.stack([inf, zero, mu_hat])
        counts = jnp.where(
            i == 0, first_counts, jnp.where(fitting, second_counts, later_counts(asimov))
        )
        at = jnp.concatenate([limit[:1], limit[:1], limit[1:], limit[1:]])[:lanes]
        mu_lo = jnp.where(i == 0, first_lo, jnp.where(fitting, second_lo, at))
        mu_hi = jnp.where(i == 0, first_hi, jnp.where(fitting, second_hi, at))
        cap = jnp.where(i >= 2, _WARM, _COLD)
        mu, theta, value, slope, converged, drift = _lanes(
            counts, mu_lo, mu_hi, theta, m, cap, skewed
        )

        # phase 1: profiles at 0 (and 1), the fit of n; the Asimov counts
        if skewed:
            theta0 = theta[:2]
            first_out = jnp.stack([value[0], value[2], mu[3], value[3]])
            second_theta = jnp.stack([theta0[0], theta0[1], theta0[1], theta[3]])
        else:
            theta0 = jnp.stack([theta[0], jnp.zeros(size)])
            first_out = jnp.stack([value[0], value[1], mu[2], value[2]])
            second_theta = jnp.stack([theta0[0], jnp.zeros(size), theta[2]])
        new_asimov = jax.vmap(asimov_counts, in_axes=(0, None))(theta0, m)
        new_asimov = new_asimov if skewed else new_asimov.at[1].set(b)
        asimov = jnp.where(i == 0, new_asimov, asimov)
        out = jnp.where(i == 0, first_out, out)  # nll(0), nll(1), mu-hat, nll(mu-hat)
        keep = jnp.where(i == 0, second_theta, theta)

        # phase 2: minima of the four likelihoods; widths and first guesses of the limits
        if skewed:
            new_mins = jnp.stack([jnp.stack([out[3], value[0]]), jnp.stack([value[1], value[2]])])
            fits = jnp.stack([out[2], mu[1]])
            order = jnp.asarray([3, 0, 1, 2])  # search lanes (n, A(n), b, A(b)) from phase 2
            asimov_fits = (mu[jnp.asarray([0, 2])], theta[jnp.asarray([0, 2])])
        else:
            new_mins = jnp.stack([jnp.stack([out[3], value[0]]), jnp.stack([nll_b, nll_b])])
            fits = jnp.stack([out[2], zero])
            order = jnp.asarray([2, 0, 1])  # search lanes (n, A(n), b) from phase 2
            asimov_fits = (jnp.stack([mu[0], zero]), jnp.stack([theta[0], jnp.zeros(size)]))
        mins = jnp.where(fitting, new_mins, mins)

        def widths() -> jax.Array:
            return jax.vmap(_width, in_axes=(0, 0, 0, None, None))(*asimov_fits, asimov, m, skewed)

        width = jax.lax.cond(fitting, widths, lambda: width)
        guess = cls.first_guess(fits, width)

        # later: one step of both searches
        pair = jnp.asarray([[0, 1], [2, 3]] if skewed else [[0, 1], [2, 2]])
        g, g_slope = jax.vmap(cls.log_cls_and_slope)(value[pair], slope[pair], mins)
        step, new_lo, new_hi, finished = cls.search_step(limit, lo, hi, g, g_slope, width, rtol)
        settled = jnp.all(converged[pair], axis=1)
        searching = (i >= 2) & ~done
        limit = jnp.where(fitting, guess, jnp.where(searching, step, limit))
        lo = jnp.where(fitting, fits, jnp.where(searching, new_lo, lo))
        hi = jnp.where(fitting, jnp.inf, jnp.where(searching, new_hi, hi))
        done = jnp.where(fitting, no_signal, done | (searching & finished & settled))
        # the next profiles start from theta-hat moved along d theta-hat / d mu
        target = jnp.concatenate([limit[:1], limit[:1], limit[1:], limit[1:]])[:lanes]
        source = jnp.where(fitting, order, jnp.arange(lanes))
        start = theta[source] - drift[source] * (target - mu[source])[:, None]
        lower, upper = jax.vmap(_bounds, in_axes=(0, None))(later_counts(asimov), m)
        keep = jnp.where(i >= 1, jnp.clip(start, lower, upper), keep)
        return i + 1, keep, asimov, out, mins, limit, lo, hi, width, done

    two = jnp.zeros(2)
    state = (
        0,
        starts,
        jnp.zeros((2, size)),
        jnp.zeros(4),
        jnp.zeros((2, 2)),
        two,
        two,
        jnp.full(2, jnp.inf),
        jnp.ones(2),
        jnp.zeros(2, bool),
    )
    state = jax.lax.while_loop(cond, body, state)
    _, _, _, out, _, limit, _, _, _, done = state
    limits = jnp.where(done & ~no_signal, limit, jnp.nan)
    return Summary(out[1], out[0], out[3], out[2], limits[0], limits[1])


def upper_limit(
    n: jax.Array, b: jax.Array, m: SimplifiedModel, *, expected: bool = False
) -> jax.Array:
    """95 % CL upper limit on mu (asymptotic CLs with the post-fit Asimov data, as SModelS).

    Args:
        n: observed counts.
        b: expected backgrounds (the data of the a priori expected limit).
        m: the model.
        expected: a priori expected limit (counts replaced by the background).
    """
    result = summary(n, b, m)
    return result.expected_limit if expected else result.limit
