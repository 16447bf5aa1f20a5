"""Fixed-budget maximum-likelihood fits and CLs limits of one pyhf model, in JAX.

The functions here are pure ``jax.numpy`` (no NumPy, no host round-trips): they take the model's
``nll(pars, n, aux, s_bins)`` (pyhf's own log-pdf, built by
:class:`~protomodels.statistics.full_likelihood.CompiledWorkspace`) and are jitted and vmapped
there. Optimiser: a projected, Levenberg-Marquardt damped Newton method on the exact Hessian
(``jax.jacfwd`` of ``jax.grad``):

- parameters inside pyhf's suggested bounds: a parameter at a bound whose gradient points out
  of the box is held (active set), the Newton step is solved on the others and the trial point
  is clipped into the box (Bertsekas' projected Newton);
- damping: the step solves (H + lambda diag|H|) d = -g (Cholesky); a step that does not lower
  the nll, or a Hessian that is not positive definite, is rejected and lambda grows tenfold,
  an accepted step divides it by five (down to a pure Newton step);
- budget: at most ``max_iter`` steps (``lax.while_loop``); converged when the Newton decrement
  g^T H^-1 g / 2 (the nll decrease a further step promises) is below ``tol`` or the projected
  gradient vanishes. The flag ``ok`` says whether that happened: the caller never sees a silent
  number from a fit that ran out of budget.

Curvature: the exact Hessian costs one forward pass of the gradient per parameter, cheap for
the 3-5 parameter workspaces but 10 ms per step at 115 parameters (ATLAS-SUSY-2018-04, two main
bins). An :class:`Objective` may therefore carry its own ``curvature``: the workspaces of many
parameters use the Gauss-Newton (Fisher-scoring) form J^T W J + C of
:mod:`~protomodels.statistics.full_likelihood` (J: Jacobian of the expected main data, one
reverse pass per bin; W: the Poisson curvature per bin; C: the diagonal curvature of the
constraint terms), 100x cheaper. The gradient stays exact, so the fits converge to the same
minimum; only the path there differs (exact at the post-fit Asimov data, where n = lambda).

Why Newton rather than L-BFGS or an optax first-order method: the models have 3-200 parameters,
the nll is smooth and close to quadratic near its minimum, and the fits start from the
background-only fit of the same data, so 3-6 exact Newton steps reach machine precision where
first-order methods need hundreds of steps; the Hessian of a 3-parameter model is as cheap as
its gradient, and vmapping over mu values and signals keeps one call per curve.

CLs (``docs/statistics.md`` §6, pyhf's ``AsymptoticCalculator``): q~_mu on the data and on the
post-fit Asimov data (made once per workspace from the background-only fit); the 95 % limit is
found on a batched grid of mu values (scaled by the Asimov width of mu at the background-only
fit) that brackets CLs = 0.05, then refined by Illinois (regula falsi) steps in log CLs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import cho_solve
from jax.scipy.special import ndtr

__all__ = [
    "Background",
    "Fit",
    "Objective",
    "Summary",
    "cls_from_q",
    "minimise",
    "summary",
]

CL = 0.95
#: grid of the limit search, in units of the Asimov width sigma_mu above max(mu-hat, 0); wide
#: because sigma_mu from the curvature at mu = 0 underestimates Poisson limits of tiny
#: backgrounds (n = 0, b -> 0: mu_UL = 3/s vs sigma = sqrt(b)/s)
GRID = (0.3, 0.6, 1.0, 1.4, 1.8, 2.2, 2.7, 3.3, 4.2, 6.0, 10.0, 20.0, 50.0, 150.0, 500.0, 2000.0)
#: status bits of a :class:`Summary`
FREE_FIT, PROFILE_FIT, NO_BRACKET, LIMIT_FIT, NO_SENSITIVITY = 1, 2, 4, 8, 16
STATUS_TEXT = {
    FREE_FIT: "the free fit (mu-hat) did not converge",
    PROFILE_FIT: "the profile fit at mu = 1 did not converge",
    NO_BRACKET: "no mu with CLs = 0.05 on the search grid",
    LIMIT_FIT: "a profile fit of the limit search did not converge",
    NO_SENSITIVITY: "no sensitivity to the signal (CLs undefined)",
}
RIDGE = 1e-10  # relative ridge of the Newton matrix (see _direction)
_BIG_MU = 1e9  # upper POI bound of the fit behind q~ (pyhf's 10 x SModelS's rescaled signal)


class Fit(NamedTuple):
    """One fit: parameters, nll there, converged flag, steps taken, last Newton decrement."""

    x: jax.Array
    nll: jax.Array
    ok: jax.Array
    steps: jax.Array
    decrement: jax.Array


class Background(NamedTuple):
    """Per-workspace constants, stacked over the two data kinds (observed, a-priori):
    data, background-only fit (POI 0), its nll, the post-fit Asimov data made from it and
    the nll of the Asimov data at that fit (its global minimum)."""

    n: jax.Array  # (2, nbins)
    aux: jax.Array  # (2, naux)
    x0: jax.Array  # (2, P)
    nll0: jax.Array  # (2,)
    n_asimov: jax.Array  # (2, nbins)
    aux_asimov: jax.Array  # (2, naux)
    nll0_asimov: jax.Array  # (2,)


class Summary(NamedTuple):
    """Everything one protomodel needs of one workspace and one data kind."""

    nll0: jax.Array
    nll1: jax.Array
    mu_hat: jax.Array
    nll_max: jax.Array
    limit: jax.Array
    status: jax.Array  # bits FREE_FIT, PROFILE_FIT, NO_BRACKET, LIMIT_FIT, NO_SENSITIVITY
    steps: jax.Array  # Newton steps of the slowest fit


class Objective(NamedTuple):
    """What a fit minimises: ``nll(pars, n, aux, s)`` and, optionally, the ``curvature(pars, n,
    aux, s)`` (a symmetric positive semi-definite (P, P) matrix) that the Newton steps use
    instead of the exact Hessian of ``nll``."""

    nll: Callable[..., jax.Array]
    curvature: Callable[..., jax.Array] | None = None

    def bind(self, n: jax.Array, aux: jax.Array, s: jax.Array) -> tuple[Callable, Callable | None]:
        """The function of the parameters alone on these data, and its curvature."""
        curvature = self.curvature
        return (
            lambda p: self.nll(p, n, aux, s),
            None if curvature is None else (lambda p: curvature(p, n, aux, s)),
        )


def _fgh(
    fun: Callable[[jax.Array], jax.Array], x: jax.Array,
    curvature: Callable[[jax.Array], jax.Array] | None = None,
) -> tuple[jax.Array, ...]:
    """Value, gradient and Hessian (one forward-over-reverse pass), or value, gradient and
    the given ``curvature``."""
    if curvature is not None:
        v, g = jax.value_and_grad(fun)(x)
        return v, g, curvature(x)

    def g_aux(y: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        v, g = jax.value_and_grad(fun)(y)
        return g, (v, g)

    h, (v, g) = jax.jacfwd(g_aux, has_aux=True)(x)
    return v, g, 0.5 * (h + h.T)


def _direction(
    x: jax.Array, g: jax.Array, h: jax.Array, lam: jax.Array, free: jax.Array,
    lo: jax.Array, hi: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Damped projected Newton step, its decrement g^T d (>= 0) and whether it is defined."""
    active = (~free) | ((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0))
    keep = ~active
    ga = jnp.where(keep, g, 0.0)
    ha = jnp.where(keep[:, None] & keep[None, :], h, 0.0)
    diag = jnp.where(keep, jnp.maximum(jnp.abs(jnp.diagonal(ha)), 1e-12), 0.0)
    # a relative ridge keeps the step defined along flat directions (free normalisations
    # that the data cannot separate, e.g. ATLAS-SUSY-2018-04 without its control regions)
    ridge = RIDGE * jnp.max(diag)
    a = ha + jnp.diag(jnp.where(keep, lam * diag + ridge, 1.0))
    chol = jnp.linalg.cholesky(a)
    d = -cho_solve((chol, True), ga)
    defined = jnp.all(jnp.isfinite(d))
    d = jnp.where(defined, d, 0.0)
    return d, -jnp.dot(ga, d), defined


def minimise(
    fun: Callable[[jax.Array], jax.Array],
    x0: jax.Array,
    free: jax.Array,
    lo: jax.Array,
    hi: jax.Array,
    *,
    max_iter: int,
    tol: float = 1e-9,
    curvature: Callable[[jax.Array], jax.Array] | None = None,
) -> Fit:
    """Minimise ``fun`` over the ``free`` parameters inside [lo, hi], from ``x0`` (the others
    stay at their ``x0`` values), by the damped projected Newton method of the module doc
    (Newton steps on ``curvature`` if given, else on the exact Hessian)."""
    x0 = jnp.where(free, jnp.clip(x0, lo, hi), x0)
    # the first pass of the loop body only evaluates x0 (g = 0 gives a zero step): one copy of
    # the Hessian code in the compiled graph instead of two
    v0, g0, h0 = jnp.full((), jnp.inf, x0.dtype), jnp.zeros_like(x0), jnp.eye(x0.size)

    def cond(state: tuple) -> jax.Array:
        *_, it, done, _ = state
        return (~done) & (it < max_iter)

    def body(state: tuple) -> tuple:
        x, v, g, h, lam, it, _, _ = state
        d, dec, defined = _direction(x, g, h, lam, free, lo, hi)
        xt = jnp.where(free, jnp.clip(x + d, lo, hi), x)
        vt, gt, ht = _fgh(fun, xt, curvature)
        accept = (it == 0) | (defined & jnp.isfinite(vt) & (vt <= v))
        # converged: an undamped step that promises (and gives) less than tol
        small = defined & (lam == 0.0) & (0.5 * dec < tol) & (vt <= v + tol)
        pg = jnp.where(free & ~(((xt <= lo) & (gt > 0)) | ((xt >= hi) & (gt < 0))), gt, 0.0)
        done = (it > 0) & (small | (accept & (jnp.max(jnp.abs(pg)) < 1e-10)))
        x, v, g, h = (
            jnp.where(accept, new, old) for new, old in ((xt, x), (vt, v), (gt, g), (ht, h))
        )
        lam = jnp.where(
            accept,
            jnp.where(lam < 1e-6, 0.0, 0.2 * lam),
            jnp.maximum(10.0 * lam, 1e-4),
        )
        return x, v, g, h, lam, it + 1, done, dec.astype(x.dtype)

    start = (x0, v0, g0, h0, jnp.zeros((), x0.dtype), jnp.zeros((), jnp.int32),
             jnp.zeros((), bool), jnp.full((), jnp.inf, x0.dtype))
    x, v, _, _, _, it, done, dec = lax.while_loop(cond, body, start)
    return Fit(x, v, done & jnp.isfinite(v), it - 1, dec)


def cls_from_q(q: jax.Array, qa: jax.Array) -> jax.Array:
    """Observed CLs from q~_mu and its Asimov value (pyhf ``AsymptoticCalculator``); NaN where
    q > 0 but the Asimov q is 0 (no sensitivity: pyhf divides by zero there)."""
    q, qa = jnp.maximum(q, 0.0), jnp.maximum(qa, 0.0)
    sq, sqa = jnp.sqrt(q), jnp.sqrt(qa)
    safe = jnp.where(sqa > 0, sqa, 1.0)
    t = jnp.where(sq <= sqa, sq - sqa, (q - qa) / (2.0 * safe))
    cls_b = ndtr(-t)
    value = ndtr(-(t + sqa)) / cls_b
    return jnp.where((sqa == 0.0) & (sq > 0.0), jnp.nan, value)


class Problem(NamedTuple):
    """The static description of a model's parameters (arrays, traced)."""

    lo: jax.Array
    hi: jax.Array
    free: jax.Array  # not fixed by the workspace


def profile(
    objective: Objective, problem: Problem, poi: int, x0: jax.Array, mu: jax.Array,
    n: jax.Array, aux: jax.Array, s: jax.Array, max_iter: int,
) -> Fit:
    """Nuisances profiled at fixed mu (POI fixed), from x0 with its POI set to mu."""
    free = problem.free.at[poi].set(False)
    fun, curvature = objective.bind(n, aux, s)
    return minimise(
        fun, x0.at[poi].set(mu), free, problem.lo, problem.hi, max_iter=max_iter,
        curvature=curvature,
    )


def free_fit(
    objective: Objective, problem: Problem, poi: int, x0: jax.Array, poi_hi: jax.Array,
    n: jax.Array, aux: jax.Array, s: jax.Array, max_iter: int,
) -> Fit:
    """All free parameters, the POI inside [its lower bound, poi_hi]."""
    free = problem.free.at[poi].set(True)
    hi = problem.hi.at[poi].set(poi_hi)
    fun, curvature = objective.bind(n, aux, s)
    return minimise(fun, x0, free, problem.lo, hi, max_iter=max_iter, curvature=curvature)


def asimov_width(
    objective: Objective, problem: Problem, poi: int, x0: jax.Array, n: jax.Array,
    aux: jax.Array, s: jax.Array,
) -> jax.Array:
    """sigma_mu of the Asimov data at the background-only fit: sqrt([H^-1]_mu,mu) over the free
    parameters not at a bound (inf without sensitivity). Nuisances at a bound are held: a
    normalisation fitted to 0 may be all that stops the signal from being absorbed by a flat
    direction (ATLAS-SUSY-2018-04 without its control regions), and H is singular there."""
    at_bound = (x0 <= problem.lo) | (x0 >= problem.hi)
    free = (problem.free & ~at_bound).at[poi].set(True)
    fun, curvature = objective.bind(n, aux, s)
    _, _, h = _fgh(fun, x0, curvature)
    keep = free[:, None] & free[None, :]
    a = jnp.where(keep, h, 0.0) + jnp.diag(jnp.where(free, 0.0, 1.0))
    e = jnp.zeros_like(x0).at[poi].set(1.0)
    var = jnp.linalg.solve(a, e)[poi]
    return jnp.where(jnp.isfinite(var) & (var > 0), jnp.sqrt(var), jnp.inf)


def summary(
    objective: Objective, problem: Problem, poi: int, poi_hi: jax.Array, bg: Background, kind: int,
    s: jax.Array, *, max_iter: int, limit_steps: int = 12,
) -> Summary:
    """nll(0), nll(1), mu-hat (POI in [lo, poi_hi]), nll(mu-hat) and the 95 % CLs limit of one
    signal ``s`` (per main bin) on the data of ``kind`` (0 observed, 1 a-priori)."""
    n, aux, x0 = bg.n[kind], bg.aux[kind], bg.x0[kind]
    na, auxa, nlla0 = bg.n_asimov[kind], bg.aux_asimov[kind], bg.nll0_asimov[kind]
    loose = free_fit(objective, problem, poi, x0, jnp.asarray(_BIG_MU), n, aux, s, max_iter)
    mu_hat = loose.x[poi]
    # nll(1) and nll(poi_hi): mu-hat capped at the POI bound (profile likelihood unimodal)
    pair = jax.vmap(lambda m: profile(objective, problem, poi, x0, m, n, aux, s, max_iter))(
        jnp.stack([jnp.asarray(1.0, x0.dtype), jnp.asarray(poi_hi, x0.dtype)])
    )
    one = jax.tree_util.tree_map(lambda t: t[0], pair)
    over = mu_hat > poi_hi
    capped_mu = jnp.where(over, poi_hi, mu_hat)
    capped_nll = jnp.where(over, pair.nll[1], loose.nll)
    capped_ok = loose.ok & (~over | pair.ok[1])
    status = jnp.where(capped_ok, 0, FREE_FIT) + jnp.where(one.ok, 0, PROFILE_FIT)

    sigma = asimov_width(objective, problem, poi, x0, na, auxa, s)
    start = jnp.maximum(mu_hat, 0.0)

    pair_n, pair_aux = jnp.stack([n, na]), jnp.stack([aux, auxa])

    def cls_at(mu: jax.Array, xd: jax.Array, xa: jax.Array) -> tuple[jax.Array, ...]:
        fits = jax.vmap(
            lambda x, nn, aa: profile(objective, problem, poi, x, mu, nn, aa, s, max_iter)
        )(jnp.stack([xd, xa]), pair_n, pair_aux)
        fd, fa = (jax.tree_util.tree_map(lambda t, i=i: t[i], fits) for i in (0, 1))
        q = jnp.where(mu_hat > mu, 0.0, 2.0 * (fd.nll - loose.nll))
        qa = 2.0 * (fa.nll - nlla0)
        return cls_from_q(q, qa), fd.x, fa.x, fd.ok & fa.ok, jnp.maximum(fd.steps, fa.steps)

    grid = start + sigma * jnp.asarray(GRID, dtype=x0.dtype)
    cls_g, xd_g, xa_g, ok_g, steps_g = jax.vmap(cls_at, in_axes=(0, None, None))(grid, x0, x0)
    below = cls_g < 1.0 - CL
    found = jnp.any(below) & jnp.isfinite(sigma)
    j = jnp.argmax(below)
    jl = jnp.maximum(j - 1, 0)
    first = j == 0
    target = jnp.log(1.0 - CL)

    def h(c: jax.Array) -> jax.Array:
        return jnp.log(jnp.maximum(c, 1e-300)) - target

    a, ha = jnp.where(first, 0.0, grid[jl]), jnp.where(first, h(1.0), h(cls_g[jl]))
    b, hb = grid[j], h(cls_g[j])
    xd, xa = xd_g[j], xa_g[j]

    def refine_cond(state: tuple) -> jax.Array:
        *_, it, _, _, conv, _ = state
        return (it < limit_steps) & ~conv & found

    def refine(state: tuple) -> tuple:
        a, ha, b, hb, side, xd, xa, it, ok, steps, _, _ = state
        c = (a * hb - b * ha) / (hb - ha)
        c = jnp.where(jnp.isfinite(c) & (c > a) & (c < b), c, 0.5 * (a + b))
        cls_c, xd_c, xa_c, ok_c, steps_c = cls_at(c, xd, xa)
        hc = h(cls_c)
        upper = hc < 0  # c replaces b
        # Illinois: halve the kept end's value when the same end is kept twice
        ha_new = jnp.where(upper, jnp.where(side == 1, 0.5 * ha, ha), hc)
        hb_new = jnp.where(upper, hc, jnp.where(side == -1, 0.5 * hb, hb))
        a_new, b_new = jnp.where(upper, a, c), jnp.where(upper, c, b)
        conv = (jnp.abs(hc) < 1e-5) | (b_new - a_new < 1e-5 * b_new)
        side = jnp.where(upper, 1, -1).astype(jnp.int32)
        return (a_new, ha_new, b_new, hb_new, side, xd_c, xa_c, it + 1,
                ok & ok_c & jnp.isfinite(hc), jnp.maximum(steps, steps_c), conv, c)

    init = (a, ha, b, hb, jnp.zeros((), jnp.int32), xd, xa, jnp.zeros((), jnp.int32),
            jnp.ones((), bool), jnp.zeros((), jnp.int32), jnp.zeros((), bool), b)
    a, ha, b, hb, _, _, _, _, ok_r, steps_r, conv, last = lax.while_loop(
        refine_cond, refine, init
    )
    secant = (a * hb - b * ha) / (hb - ha)
    secant = jnp.where(jnp.isfinite(secant) & (secant >= a) & (secant <= b), secant, 0.5 * (a + b))
    root = jnp.where(conv, last, secant)
    grid_ok = jnp.all(jnp.where(jnp.arange(grid.size) <= j, ok_g, True))
    status = (
        status
        + jnp.where(found, 0, NO_BRACKET)
        + jnp.where(grid_ok & ok_r, 0, LIMIT_FIT)
        + jnp.where(jnp.isfinite(sigma), 0, NO_SENSITIVITY)
    )
    limit = jnp.where(found, root, jnp.nan)
    steps = jnp.max(jnp.stack([loose.steps, jnp.max(pair.steps), jnp.max(steps_g), steps_r]))
    return Summary(bg.nll0[kind], one.nll, capped_mu, capped_nll, limit, status, steps)
