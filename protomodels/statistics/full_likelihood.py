"""Full likelihoods of results with pyhf workspaces (SModelS ``jsonFiles``), as SModelS 3.0.3.

``docs/statistics.md`` §6 (SModelS ``statistics/pyhfInterface.py:PyhfUpperLimitComputer``):

- **Model**: the background-only workspace patched with the signal (:mod:`pyhf_patch`), built
  with ``normsys`` code4 and ``histosys`` code4p; POI ``mu_SIG``. nll = -ln L is pyhf's full
  log-pdf (Poisson terms with their normalisation and all constraint terms).
- **L(mu)** (``likelihood``): nuisances profiled at fixed mu (SModelS scales the signal by mu
  and fixes the POI at 1, which is the same function). L_SM = L(0), L1 = L(1).
- **mu-hat, L_max** (``lmax``): free fit with the POI inside the workspace's suggested bounds
  ([0, 10] for a plain normfactor, or the measurement's own, e.g. [0, 5]); so mu-hat >= 0 and is
  capped at that bound.
- **Expected** (``expected=True``): the a-priori workspace (observations = nominal background).
- **Upper limit** (``getUpperLimitOnMu``): the mu where the observed CLs of
  ``pyhf.infer.hypotest`` (asymptotic q~_mu of arXiv:1007.1727, post-fit Asimov data at
  mu = 0) is 0.05. SModelS brackets it by rescaling the signal and runs ``brentq`` (rtol 1e-3);
  its POI bound (10 x the rescaled signal) never binds inside that bracket, so here the fit
  behind q~ has no upper POI bound and the root is found to 1e-5 in log CLs.
  ``expected=True`` is the same on the a-priori workspace.
- **Several JSON files** (``getBestCombinationIndex``): only the file with the smallest a-priori
  expected mu_UL among files with signal is used, for every quantity.
- **Limit on sigma x eff** (``getUpperLimitOnSigmaTimesEff``): mu_UL x T / lumi, where T is the
  signal summed over all files (a data set in two files counts twice, as in SModelS).

How: one pyhf model per workspace, built by pyhf itself with its JAX backend with a unit signal
in every signal bin; the actual signal enters at run time (every ``bsm`` rate is linear in the
nominal signal: normfactor, lumi and the signal-uncertainty histosys all scale with it), so a
new protomodel reuses the compiled model. The background-only fits (observed and a-priori data,
POI 0: independent of the signal) and the post-fit Asimov data are made once per workspace,
when it is built. Every fit of a protomodel is a jitted fixed-budget damped projected Newton
minimisation (:mod:`~protomodels.statistics.pyhf_fits`) warm-started from those background-only
fits; nll(0), nll(1), mu-hat, nll(mu-hat) and both limits of a batch of signals are one jitted
call (:meth:`CompiledWorkspace.summaries`), a likelihood curve over many mu values and signals
is another (:meth:`CompiledWorkspace.curves`, :func:`likelihood_curves`). A fit that does not
converge within its budget gives NaN and a reason in :attr:`PyhfLikelihood.errors`;
:func:`attach_full_likelihoods` then leaves the prediction without a likelihood, with the
reason in its ``statistics.fallback`` (and ``statistics.converged = False``): the combiner takes
the result's best signal region instead, never a silent number.

The SciPy (L-BFGS-B) implementation this replaces is kept as the yardstick in
:mod:`~protomodels.statistics.pyhf_scipy`.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pyhf
from jax.scipy.special import gammaln
from numpy.typing import ArrayLike

from protomodels.database.database import Database
from protomodels.database.records import PyhfWorkspace, Result
from protomodels.exceptions import ProtomodelsError
from protomodels.kernel_budget import register_release
from protomodels.statistics import pyhf_fits
from protomodels.statistics.common import (
    PYHF_MAX_ITERATIONS,
    fall_back,
    pyhf_backend,
    store_likelihoods,
)
from protomodels.statistics.pyhf_patch import (
    POI_NAME,
    SIGNAL_SAMPLE,
    PatchPlan,
    PyhfPatchError,
    apriori_spec,
    patch_plans,
    patched_spec,
)
from protomodels.statistics.record import PredictionStatistics
from protomodels.statistics.runtime import pyhf_jax, x64
from protomodels.theory.predictions import TheoryPrediction

__all__ = [
    "EXACT_HESSIAN_MAX_PARAMETERS",
    "FIT_FAILED",
    "MU_LANES",
    "NOT_FITTED",
    "CompiledWorkspace",
    "FitResult",
    "PyhfFitError",
    "PyhfLikelihood",
    "PyhfModels",
    "WorkspaceTooLarge",
    "attach_full_likelihoods",
    "gauss_newton",
    "is_pyhf_prediction",
    "likelihood_curves",
    "prepare_full_likelihoods",
]


def __dir__() -> list[str]:
    return __all__


#: SModelS's ``modifier_settings`` (the ones of ``pyhf cls``)
MODIFIER_SETTINGS = {"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": "code4p"}}
CL = pyhf_fits.CL
#: default cap on Newton steps per fit of a protomodel (warm-started: 3-8 are typical)
MAX_ITERATIONS = PYHF_MAX_ITERATIONS
#: cap on Newton steps of the background-only fits (from pyhf's suggested values)
BACKGROUND_ITERATIONS = 500
_BAD = 1e30  # objective value where the nll is not finite
#: start of the ``fallback`` of a combination whose pyhf fit failed or ran out of budget
FIT_FAILED = "pyhf fit failed, the best signal region stands in"
#: start of the ``fallback`` of a combination whose workspace is above ``max_parameters``
NOT_FITTED = "pyhf workspace too large to fit here, the best signal region stands in"
#: above this many parameters the Newton steps use the Gauss-Newton curvature (exact Hessian:
#: one gradient pass per parameter, 10 ms per step at 115 parameters; Gauss-Newton: 0.1 ms)
EXACT_HESSIAN_MAX_PARAMETERS = 30
_FLOOR = 1e-8  # rates below max(_FLOOR, 1e-3 n) continue quadratically (_poisson_nll)


def _poisson_nll(n: jax.Array, lam: jax.Array) -> jax.Array:
    """-ln Pois(n | lam) = lam - n ln lam + ln Gamma(n + 1), pyhf's continuous form.

    Below lam = c = max(1e-8, 1e-3 n) the function continues as its second-order Taylor
    expansion at c: exactly linear (as pyhf) for n = 0, a parabola for n > 0 where pyhf gives
    NaN (ln of a negative rate). A step into negative rates then sees a finite, steep wall and
    is rejected; the optimum never lies there.
    """
    c = jnp.maximum(_FLOOR, 1e-3 * n)
    safe = jnp.maximum(lam, c)
    value = safe - n * jnp.log(safe) + gammaln(n + 1.0)
    d = jnp.minimum(lam - c, 0.0)
    return value + (1.0 - n / c) * d + 0.5 * (n / c**2) * d**2


def _poisson_curvature(n: jax.Array, lam: jax.Array) -> jax.Array:
    """d^2/dlam^2 of :func:`_poisson_nll`, per bin (>= 0)."""
    second = jax.grad(jax.grad(_poisson_nll, argnums=1), argnums=1)
    return jax.vmap(second)(n, lam)


def gauss_newton(
    rates: Callable[[jax.Array, jax.Array], jax.Array],
    constraint: Callable[[jax.Array, jax.Array], jax.Array],
) -> Callable[..., jax.Array]:
    """The Gauss-Newton curvature of ``sum(poisson_nll(n, rates(pars, s))) + constraint(aux,
    pars)``: J^T diag(w) J + diag(c), with J the Jacobian of the rates (reverse mode, one pass
    per bin), w the Poisson curvature per bin and c the curvature of the constraint terms,
    which must be separable (one term per parameter, as all pyhf constraints are: then H 1 =
    diag H, one Hessian-vector product). Exact where the rates are linear in the parameters
    or the data equal the rates; it drops sum_i (1 - n_i / lam_i) d^2 lam_i elsewhere."""

    def curvature(pars: jax.Array, n: jax.Array, aux: jax.Array, s_bins: jax.Array) -> jax.Array:
        lam = rates(pars, s_bins)
        jac = (jax.jacrev if lam.size < pars.size else jax.jacfwd)(rates)(pars, s_bins)
        w = _poisson_curvature(n, lam)
        grad_c = jax.grad(lambda p: constraint(aux, p))
        diag_c = jax.jvp(grad_c, (pars,), (jnp.ones_like(pars),))[1]
        return jac.T @ (w[:, None] * jac) + jnp.diag(diag_c)

    return curvature


def _separable(
    constraint: Callable[[jax.Array, jax.Array], jax.Array], aux: jax.Array, pars: jax.Array
) -> bool:
    """Whether the constraint terms have a diagonal Hessian at ``pars`` (checked once)."""
    h = np.asarray(jax.jit(jax.hessian(lambda p: constraint(aux, p)))(pars))
    return bool(np.all(np.isfinite(h)) and np.allclose(h, np.diag(np.diagonal(h)), atol=0.0))


class WorkspaceTooLarge(ProtomodelsError):
    """A workspace with more parameters than the caller's ``max_parameters`` (not fitted)."""

    def __init__(self, where: str, n_parameters: int, max_parameters: int) -> None:
        self.n_parameters = n_parameters
        super().__init__(
            f"{where} has {n_parameters} parameters, more than the {max_parameters} fitted in an"
            " evaluation (pyhf_max_parameters, --pyhf-max-parameters)"
        )


class PyhfFitError(ProtomodelsError):
    """A pyhf fit did not converge (the message gives the reason)."""


@dataclass(frozen=True)
class FitResult:
    """One maximum-likelihood fit.

    Attributes:
        nll: -ln L at the optimum (NaN if the fit failed).
        pars: all parameters at the optimum (pyhf order).
        ok: whether the fit converged.
        message: why not, or what it did.
    """

    nll: float
    pars: np.ndarray
    ok: bool
    message: str


def _workspace(result: Result, plan: PatchPlan) -> PyhfWorkspace:
    """The background-only workspace of a plan (the ``jsonFiles`` one, never the full)."""
    return next(w for w in result.pyhf if w.file_name == plan.file_name and not w.full)


def _source(result: Result, plan: PatchPlan) -> dict[str, Any] | None:
    """The background-only workspace JSON of a plan."""
    return _workspace(result, plan).workspace


#: the lengths of the mu arrays the fits are compiled for (longer ones go in chunks)
MU_LANES = (4, 16)


def _lanes(n: int, least: int = 1) -> int:
    """A power of two >= max(n, least) (few compiled batch shapes)."""
    return max(least, 1 << max(n - 1, 0).bit_length())


def _release_kernels() -> None:
    """Drop the executables every kernel keeps (see :mod:`protomodels.kernel_budget`)."""
    for kernel in list(_KERNELS):
        kernel._compiled.clear()


class _Kernel:
    """A jitted function compiled per argument shapes, traced with pyhf's JAX backend (pyhf's
    model code reads the backend while it is traced), called in x64."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._jit = jax.jit(fn)
        self._compiled: dict[tuple, Any] = {}
        _KERNELS.add(self)

    def compile(self, *args: Any) -> Any:
        """The executable for these argument shapes (compiled on first use)."""
        key = tuple((np.shape(a), np.asarray(a).dtype.str) for a in jax.tree_util.tree_leaves(args))
        exe = self._compiled.get(key)
        if exe is None:
            with pyhf_jax():
                exe = self._compiled[key] = self._jit.lower(*args).compile()
        return exe

    def __call__(self, *args: Any) -> Any:
        exe = self.compile(*args)
        with x64():
            return jax.device_get(exe(*args))


#: every kernel made (weakly): their executables are dropped when the budget is exceeded
_KERNELS: weakref.WeakSet[_Kernel] = weakref.WeakSet()
register_release(_release_kernels)


@dataclass(frozen=True, eq=False)
class CompiledWorkspace:
    """One patched workspace, compiled for any signal (the signal is a run-time input).

    Attributes:
        result_id, plan: where it comes from and how it was patched.
        dataset_ids: the result's data-set ids (the order of ``signals``).
        signal_index: for every main bin (pyhf order), the index of its data set in
            ``dataset_ids``, or -1 for bins without signal.
        poi_index: index of ``mu_SIG`` among the parameters.
        init, bounds, fixed: pyhf's suggested initial values, bounds and fixed flags.
        observed, apriori: main data, observed and a-priori expected (nominal background).
        auxdata: nominal auxiliary data.
        parameter_names: one name per parameter (``name[i]`` for vector parameters).
        background: the background-only fits (observed, a-priori), their nll and the post-fit
            Asimov data (:class:`~protomodels.statistics.pyhf_fits.Background`, NumPy arrays).
        background_ok: whether both background-only fits converged.
        curvature: what the Newton steps use: ``"exact"`` (the Hessian) or ``"gauss-newton"``
            (above :data:`EXACT_HESSIAN_MAX_PARAMETERS` parameters; see :func:`gauss_newton`).
        source: the background-only workspace JSON it was built from.
    """

    result_id: str
    plan: PatchPlan
    dataset_ids: tuple[str, ...]
    signal_index: np.ndarray
    poi_index: int
    init: np.ndarray
    bounds: np.ndarray
    fixed: np.ndarray
    observed: np.ndarray
    apriori: np.ndarray
    auxdata: np.ndarray
    parameter_names: tuple[str, ...]
    background: pyhf_fits.Background = field(repr=False)
    background_ok: bool
    source: dict[str, Any] = field(repr=False)
    _nll: Callable[..., jax.Array] = field(repr=False)
    _expected_fn: Callable[..., Any] = field(repr=False)
    curvature: str
    _objective: pyhf_fits.Objective = field(repr=False)
    _kernels: dict[tuple, _Kernel] = field(repr=False, default_factory=dict)

    @classmethod
    def build(
        cls, result: Result, plan: PatchPlan, *, max_parameters: int | None = None
    ) -> CompiledWorkspace:
        """Patch with a unit signal, build the pyhf model, make the background-only fits.

        Raises:
            PyhfPatchError: the workspace is missing or invalid.
            WorkspaceTooLarge: it has more than ``max_parameters`` parameters (checked once
                pyhf has built the model, before anything is compiled).
        """
        raw = _source(result, plan)
        if raw is None:
            msg = f"{result.result_id}/{plan.file_name}: the workspace JSON is missing"
            raise PyhfPatchError(msg)
        spec = patched_spec(raw, plan, dict.fromkeys(plan.datasets, 1.0), result.signal_uncertainty)
        dataset_ids = tuple(d.data_id or d.dataset_id for d in result.datasets)
        with pyhf_jax():
            try:
                workspace = pyhf.Workspace(spec)
                model = workspace.model(modifier_settings=MODIFIER_SETTINGS)
                apriori_ws = pyhf.Workspace(apriori_spec(spec))
            except (pyhf.exceptions.InvalidSpecification, pyhf.exceptions.InvalidModel) as err:
                msg = f"{result.result_id}/{plan.file_name}: invalid pyhf workspace ({err})"
                raise PyhfPatchError(msg) from err
            config = model.config
            observed = np.asarray(workspace.data(model, include_auxdata=False), dtype=float)
            apriori = np.asarray(apriori_ws.data(model, include_auxdata=False), dtype=float)
            auxdata = np.asarray(config.auxdata, dtype=float)
            apriori_aux = _apriori_auxdata(result, plan, auxdata)
            signal_index = np.full(config.nmaindata, -1, dtype=int)
            start = 0
            for channel in config.channels:
                n_bins = config.channel_nbins[channel]
                target = next((c for c in plan.signal_channels if c.channel == channel), None)
                if target is not None:
                    signal_index[start : start + n_bins] = [
                        dataset_ids.index(d) for d in target.datasets
                    ]
                start += n_bins
            bsm = config.samples.index(SIGNAL_SAMPLE)
            poi_index = int(config.poi_index)
            if config.poi_name != POI_NAME:
                msg = f"{result.result_id}/{plan.file_name}: POI is {config.poi_name}"
                raise PyhfPatchError(msg)

            def rates(pars: jax.Array, s_bins: jax.Array) -> jax.Array:
                by_sample = model.main_model.expected_data(pars, return_by_sample=True)
                return jnp.sum(by_sample, axis=0) + by_sample[bsm] * (s_bins - 1.0)

            def nll(pars: jax.Array, n: jax.Array, aux: jax.Array, s_bins: jax.Array) -> jax.Array:
                main = jnp.sum(_poisson_nll(n, rates(pars, s_bins)))
                value = main - jnp.sum(model.constraint_logpdf(aux, pars))
                return jnp.where(jnp.isfinite(value), value, _BAD)

            def expected(pars: jax.Array, s_bins: jax.Array) -> tuple[jax.Array, jax.Array]:
                return rates(pars, s_bins), model.expected_auxdata(pars)

            init = np.asarray(config.suggested_init(), dtype=float)
            if max_parameters is not None and len(init) > max_parameters:
                where = f"{result.result_id}/{plan.file_name}"
                raise WorkspaceTooLarge(where, len(init), max_parameters)

            def constraint(aux: jax.Array, pars: jax.Array) -> jax.Array:
                return -jnp.sum(model.constraint_logpdf(aux, pars))

            objective, curvature_kind = pyhf_fits.Objective(nll), "exact"
            if len(init) > EXACT_HESSIAN_MAX_PARAMETERS and _separable(
                constraint, jnp.asarray(auxdata), jnp.asarray(init)
            ):
                objective = pyhf_fits.Objective(nll, gauss_newton(rates, constraint))
                curvature_kind = "gauss-newton"
            bounds = np.asarray(config.suggested_bounds(), dtype=float)
            fixed = np.asarray(config.suggested_fixed(), dtype=bool)
            names = []
            for name in config.par_order:
                size = config.param_set(name).n_parameters
                names += [name] if size == 1 else [f"{name}[{i}]" for i in range(size)]
            background, ok = _background(
                objective, expected, init, bounds, fixed, poi_index, observed, apriori,
                np.stack([auxdata, apriori_aux]),
            )
        return cls(
            result_id=result.result_id,
            plan=plan,
            dataset_ids=dataset_ids,
            signal_index=signal_index,
            poi_index=poi_index,
            init=init,
            bounds=bounds,
            fixed=fixed,
            observed=observed,
            apriori=apriori,
            auxdata=auxdata,
            parameter_names=tuple(names),
            background=background,
            background_ok=ok,
            source=raw,
            _nll=nll,
            _expected_fn=expected,
            curvature=curvature_kind,
            _objective=objective,
        )

    # -- shapes and signals -----------------------------------------------------------------
    @property
    def poi_bounds(self) -> tuple[float, float]:
        """The POI's suggested bounds (SModelS's bounds of mu-hat)."""
        lo, hi = self.bounds[self.poi_index]
        return float(lo), float(hi)

    def signal_bins(self, signals: ArrayLike) -> np.ndarray:
        """Signal yield per main bin from the yield per data set (result order); a batch of
        signals (..., data sets) gives (..., bins)."""
        s = np.asarray(signals, dtype=float)
        picked = s[..., np.maximum(self.signal_index, 0)]
        return np.where(self.signal_index >= 0, picked, 0.0)

    def file_yield(self, signals: ArrayLike) -> float:
        """This file's share of SModelS's total yield: signals of the data sets it names."""
        s = np.asarray(signals, dtype=float)
        return float(sum(s[self.dataset_ids.index(d)] for d in self.plan.datasets))

    @property
    def _problem(self) -> pyhf_fits.Problem:
        return pyhf_fits.Problem(
            jnp.asarray(self.bounds[:, 0]), jnp.asarray(self.bounds[:, 1]),
            jnp.asarray(~self.fixed),
        )

    def _kernel(self, name: str, max_iter: int) -> _Kernel:
        key = (name, max_iter)
        if key not in self._kernels:
            self._kernels[key] = _Kernel(getattr(self, f"_{name}_fn")(max_iter))
        return self._kernels[key]

    # -- the jitted computations ------------------------------------------------------------
    def _summary_fn(self, max_iter: int) -> Callable[..., Any]:
        poi, poi_hi, nll = self.poi_index, self.poi_bounds[1], self._objective

        def run(s: jax.Array, bg: pyhf_fits.Background) -> pyhf_fits.Summary:
            problem = self._problem

            def one(s1: jax.Array, kind: jax.Array) -> pyhf_fits.Summary:
                return pyhf_fits.summary(
                    nll, problem, poi, jnp.asarray(poi_hi), bg, kind, s1, max_iter=max_iter
                )

            kinds = jnp.arange(2)
            return jax.vmap(lambda s1: jax.vmap(lambda k: one(s1, k))(kinds))(s)

        return run

    def _curve_fn(self, max_iter: int) -> Callable[..., Any]:
        poi, nll = self.poi_index, self._objective

        def run(mu: jax.Array, s: jax.Array, kind: jax.Array, bg: pyhf_fits.Background) -> Any:
            problem = self._problem
            n, aux, x0 = bg.n[kind], bg.aux[kind], bg.x0[kind]

            def one(m: jax.Array, s1: jax.Array) -> pyhf_fits.Fit:
                return pyhf_fits.profile(nll, problem, poi, x0, m, n, aux, s1, max_iter)

            fits = jax.vmap(lambda s1: jax.vmap(lambda m: one(m, s1))(mu))(s)
            return fits.nll, fits.ok, fits.steps, fits.x

        return run

    def _cls_fn(self, max_iter: int) -> Callable[..., Any]:
        poi, nll = self.poi_index, self._objective

        def run(mu: jax.Array, s: jax.Array, kind: jax.Array, bg: pyhf_fits.Background) -> Any:
            problem = self._problem
            n, aux, x0 = bg.n[kind], bg.aux[kind], bg.x0[kind]
            na, auxa, nlla0 = bg.n_asimov[kind], bg.aux_asimov[kind], bg.nll0_asimov[kind]

            def one(m: jax.Array, s1: jax.Array) -> tuple[jax.Array, jax.Array]:
                free = pyhf_fits.free_fit(
                    nll, problem, poi, x0, jnp.asarray(1e9), n, aux, s1, max_iter
                )
                fd = pyhf_fits.profile(nll, problem, poi, x0, m, n, aux, s1, max_iter)
                fa = pyhf_fits.profile(nll, problem, poi, x0, m, na, auxa, s1, max_iter)
                q = jnp.where(free.x[poi] > m, 0.0, 2.0 * (fd.nll - free.nll))
                cls = pyhf_fits.cls_from_q(q, 2.0 * (fa.nll - nlla0))
                return cls, free.ok & fd.ok & fa.ok

            return jax.vmap(lambda s1: jax.vmap(lambda m: one(m, s1))(mu))(s)

        return run

    def _padded_signals(self, s_bins: np.ndarray) -> tuple[np.ndarray, int]:
        s_bins = np.atleast_2d(np.asarray(s_bins, dtype=float))
        count = s_bins.shape[0]
        pad = _lanes(count) - count
        if pad:
            s_bins = np.concatenate([s_bins, np.repeat(s_bins[:1], pad, axis=0)])
        return s_bins, count

    def _mu_chunks(self, mu: ArrayLike) -> list[tuple[np.ndarray, int]]:
        """mu in chunks of :data:`MU_LANES` values (the last one padded): the kernels see only
        these lengths, so a long walk compiles nothing new whatever it asks for."""
        mus = np.asarray(mu, dtype=float).ravel()
        small, large = MU_LANES
        if mus.size <= small:
            pad = small - mus.size
            return [(np.concatenate([mus, np.full(pad, mus[-1] if mus.size else 0.0)]), mus.size)]
        out = []
        for start in range(0, mus.size, large):
            part = mus[start : start + large]
            lanes = small if part.size <= small else large
            out.append((np.concatenate([part, np.full(lanes - part.size, part[-1])]), part.size))
        return out

    def compile_kernels(self, *, max_iterations: int = MAX_ITERATIONS) -> int:
        """Compile the fits an evaluation uses most (the summary, and the profile curves of
        the shortest length of :data:`MU_LANES`, for one signal) without running them, so that
        a walk rarely compiles on the way (with JAX's persistent cache a later process skips
        the XLA compilation, not the tracing); the longer curves compile when first asked for
        (each compiled shape costs hundreds to a thousand of the process's memory mappings).
        Returns the number of executables."""
        s, _ = self._padded_signals(np.zeros((1, len(self.signal_index))))
        self._kernel("summary", max_iterations).compile(s, self.background)
        self._kernel("curve", max_iterations).compile(
            np.zeros(MU_LANES[0]), s, np.asarray(0), self.background
        )
        return 2

    def summaries(
        self, s_bins: ArrayLike, *, max_iterations: int = MAX_ITERATIONS
    ) -> pyhf_fits.Summary:
        """nll(0), nll(1), mu-hat, nll(mu-hat) and the 95 % CLs limit on mu of a batch of
        signals (B, bins), on the observed and the a-priori data: arrays of shape (B, 2), one
        jitted call. ``status`` holds :data:`pyhf_fits.STATUS_TEXT` bits (0 = all converged)."""
        s, count = self._padded_signals(s_bins)
        out = self._kernel("summary", max_iterations)(s, self.background)
        return pyhf_fits.Summary(*(np.asarray(a)[:count] for a in out))

    def curves(
        self,
        mu: ArrayLike,
        s_bins: ArrayLike,
        *,
        expected: bool = False,
        max_iterations: int = MAX_ITERATIONS,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Profiled nll at every mu (M,) for every signal (B, bins): (nll, converged), each
        (B, M), one jitted call (NaN-free: look at ``converged``)."""
        nll, ok, _, _ = self._over_mu("curve", mu, s_bins, expected, max_iterations)
        return nll, ok

    def profile_fits(
        self, mu: ArrayLike, s_bins: ArrayLike, *, expected: bool = False,
        max_iterations: int = MAX_ITERATIONS,
    ) -> list[FitResult]:
        """The profile fits of one signal at every mu, with their parameters."""
        nll, ok, steps, x = self._over_mu("curve", mu, s_bins, expected, max_iterations)
        return [
            FitResult(float(nll[0, i]) if ok[0, i] else math.nan, np.asarray(x[0, i]),
                      bool(ok[0, i]), f"{int(steps[0, i])} Newton steps")
            for i in range(nll.shape[1])
        ]

    def cls(
        self, mu: ArrayLike, s_bins: ArrayLike, *, expected: bool = False,
        max_iterations: int = MAX_ITERATIONS,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Observed CLs (q~_mu, asymptotic) at every mu (M,) for every signal (B, bins):
        (CLs, converged), each (B, M)."""
        cls, ok = self._over_mu("cls", mu, s_bins, expected, max_iterations)
        return cls, ok

    def _over_mu(
        self, name: str, mu: ArrayLike, s_bins: ArrayLike, expected: bool, max_iterations: int
    ) -> tuple[np.ndarray, ...]:
        """Kernel ``name`` at every mu (chunks of :data:`MU_LANES`) for every signal: its
        outputs, each (B, M, ...)."""
        s, count = self._padded_signals(s_bins)
        kind = np.asarray(int(expected))
        kernel = self._kernel(name, max_iterations)
        parts = []
        for mus, m in self._mu_chunks(mu):
            out = kernel(mus, s, kind, self.background)
            parts.append([np.asarray(a)[:count, :m] for a in out])
        return tuple(np.concatenate(column, axis=1) for column in zip(*parts, strict=True))

    # -- what the SciPy reference path needs ------------------------------------------------
    @functools.cached_property
    def _value_and_grad(self) -> _Kernel:
        return _Kernel(jax.value_and_grad(self._nll))

    @functools.cached_property
    def _expected(self) -> _Kernel:
        return _Kernel(self._expected_fn)

    def value_and_grad(
        self, pars: np.ndarray, n: np.ndarray, aux: np.ndarray, s_bins: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """nll and its gradient in all parameters (one host call)."""
        value, grad = self._value_and_grad(
            *(np.asarray(a, dtype=float) for a in (pars, n, aux, s_bins))
        )
        return float(value), np.asarray(grad)

    def expected_data(self, pars: np.ndarray, s_bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(main, auxiliary) expected data at these parameters (pyhf ``expected_data``)."""
        main, aux = self._expected(np.asarray(pars, dtype=float), np.asarray(s_bins, dtype=float))
        return np.asarray(main), np.asarray(aux)


def _apriori_auxdata(result: Result, plan: PatchPlan, auxdata: np.ndarray) -> np.ndarray:
    """The auxiliary data of the a-priori expectation: the workspace's own, or those of its
    ``apriori`` workspace (a toy's, whose auxiliary data were redrawn)."""
    source = _workspace(result, plan).apriori
    if source is None:
        return auxdata
    spec = patched_spec(source, plan, dict.fromkeys(plan.datasets, 1.0), result.signal_uncertainty)
    model = pyhf.Workspace(spec).model(modifier_settings=MODIFIER_SETTINGS)
    values = np.asarray(model.config.auxdata, dtype=float)
    if values.shape != auxdata.shape:
        msg = f"{result.result_id}/{plan.file_name}: the a-priori workspace has other parameters"
        raise PyhfPatchError(msg)
    return values


def _background(
    objective: pyhf_fits.Objective,
    expected: Callable[..., Any],
    init: np.ndarray,
    bounds: np.ndarray,
    fixed: np.ndarray,
    poi: int,
    observed: np.ndarray,
    apriori: np.ndarray,
    auxdata: np.ndarray,
) -> tuple[pyhf_fits.Background, bool]:
    """Background-only fits (POI 0) of the observed and a-priori data (``auxdata``: their
    auxiliary data, stacked in that order) and their post-fit
    Asimov data, once per workspace (called inside :func:`pyhf_jax`). These fits start far
    from the optimum (pyhf's suggested values), so they take exact Newton steps whatever the
    ``objective``'s curvature: Gauss-Newton steps can end in another local minimum (they do
    on ATLAS-SUSY-2018-04, 0.19 above the exact path's); the protomodel fits then start here."""
    objective = pyhf_fits.Objective(objective.nll)
    problem = pyhf_fits.Problem(
        jnp.asarray(bounds[:, 0]), jnp.asarray(bounds[:, 1]), jnp.asarray(~fixed)
    )
    s0 = jnp.zeros(observed.shape)

    @jax.jit
    def run(n: jax.Array, aux: jax.Array) -> tuple:
        fit = pyhf_fits.profile(
            objective, problem, poi, jnp.asarray(init), jnp.asarray(0.0), n, aux, s0,
            BACKGROUND_ITERATIONS,
        )
        n_a, aux_a = expected(fit.x, s0)
        return fit.x, fit.nll, fit.ok, n_a, aux_a, objective.nll(fit.x, n_a, aux_a, s0)

    out = [
        run(jnp.asarray(n), jnp.asarray(aux))
        for n, aux in zip((observed, apriori), auxdata, strict=True)
    ]
    x0, nll0, ok, n_a, aux_a, nll_a = (np.stack([np.asarray(o[i]) for o in out]) for i in range(6))
    background = pyhf_fits.Background(
        n=np.stack([observed, apriori]),
        aux=auxdata,
        x0=x0,
        nll0=nll0,
        n_asimov=n_a,
        aux_asimov=aux_a,
        nll0_asimov=nll_a,
    )
    return background, bool(np.all(ok))


class PyhfModels:
    """Compiled workspaces, per result and JSON file (compile once, reuse for every signal)."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[str, str], CompiledWorkspace] = {}
        self._sizes: dict[tuple[str, str], int] = {}  # parameters of workspaces not built

    def workspaces(
        self, result: Result, *, max_parameters: int | None = None
    ) -> list[CompiledWorkspace]:
        """The compiled workspaces SModelS would consider for this result.

        Raises:
            PyhfPatchError: a workspace is missing or cannot be patched.
            WorkspaceTooLarge: one has more than ``max_parameters`` parameters (remembered:
                the model is not built again for the next signal).
        """
        out = []
        for plan in patch_plans(result):
            key = (result.result_id, plan.file_name)
            compiled = self._compiled.get(key)
            size = len(compiled.init) if compiled is not None else self._sizes.get(key)
            if max_parameters is not None and size is not None and size > max_parameters:
                raise WorkspaceTooLarge(f"{key[0]}/{key[1]}", size, max_parameters)
            if compiled is None or compiled.source is not _source(result, plan):
                try:
                    compiled = CompiledWorkspace.build(
                        result, plan, max_parameters=max_parameters
                    )
                except WorkspaceTooLarge as err:
                    self._sizes[key] = err.n_parameters
                    raise
                self._compiled[key] = compiled
            out.append(compiled)
        return out

    def __len__(self) -> int:
        return len(self._compiled)


_MODELS: weakref.WeakKeyDictionary[Database, PyhfModels] = weakref.WeakKeyDictionary()


def _models_for(database: Database) -> PyhfModels:
    """One :class:`PyhfModels` per database object (a memo, freed with the database)."""
    if database not in _MODELS:
        _MODELS[database] = PyhfModels()
    return _MODELS[database]


_KINDS = ("observed", "expected")


class _WorkspaceFits:
    """The fits of one workspace for one signal (results kept)."""

    def __init__(self, compiled: CompiledWorkspace, signals: np.ndarray, max_iterations: int):
        self.compiled = compiled
        self.s_bins = compiled.signal_bins(signals)
        self.max_iterations = max_iterations
        self.errors: list[str] = []
        self._summary: pyhf_fits.Summary | None = None
        self._nll: dict[tuple[bool, float], float] = {}
        self.converged = True

    def _fail(self, what: str) -> None:
        c = self.compiled
        msg = f"{c.result_id}/{c.plan.file_name}: {what}"
        self.converged = False
        if msg not in self.errors:
            self.errors.append(msg)

    @property
    def summary(self) -> pyhf_fits.Summary:
        if self._summary is None:
            if not self.compiled.background_ok:
                self._fail("the background-only fit did not converge")
            out = self.compiled.summaries(self.s_bins[None], max_iterations=self.max_iterations)
            self._summary = pyhf_fits.Summary(*(a[0] for a in out))
            for k, expected in enumerate((False, True)):
                self._nll.setdefault((expected, 0.0), float(self._summary.nll0[k]))
                if not int(self._summary.status[k]) & pyhf_fits.PROFILE_FIT:
                    self._nll.setdefault((expected, 1.0), float(self._summary.nll1[k]))
        return self._summary

    def _status(self, expected: bool, bits: int, what: str) -> bool:
        """Whether the summary's quantity is good; records the reason if not."""
        status = int(self.summary.status[int(expected)]) & bits
        if status:
            reasons = [t for b, t in pyhf_fits.STATUS_TEXT.items() if status & b]
            budget = f"within {self.max_iterations} Newton steps"
            self._fail(f"{_KINDS[expected]} {what} failed ({'; '.join(reasons)}; {budget})")
        return not status

    def nll(self, mus: np.ndarray, expected: bool) -> np.ndarray:
        if not self.compiled.background_ok:
            self._fail("the background-only fit did not converge")
            return np.full(mus.shape, math.nan)
        flat = [float(m) for m in mus.ravel()]
        for k in (0, 1):
            self._nll.setdefault((bool(k), 0.0), float(self.compiled.background.nll0[k]))
        missing = sorted({m for m in flat if (expected, m) not in self._nll})
        if missing:
            values, ok = self.compiled.curves(
                missing, self.s_bins[None], expected=expected,
                max_iterations=self.max_iterations,
            )
            for m, v, good in zip(missing, values[0], ok[0], strict=True):
                if not good:
                    self._fail(
                        f"{_KINDS[expected]} fit at mu = {m:g} failed (did not converge within "
                        f"{self.max_iterations} Newton steps)"
                    )
                self._nll[(expected, m)] = float(v) if good else math.nan
        return np.asarray([self._nll[(expected, m)] for m in flat]).reshape(mus.shape)

    def maximum(self, expected: bool) -> FitResult:
        s = self.summary
        k = int(expected)
        ok = self._status(expected, pyhf_fits.FREE_FIT, "free fit")
        mu_hat, value = (float(s.mu_hat[k]), float(s.nll_max[k])) if ok else (math.nan,) * 2
        pars = np.full(len(self.compiled.init), math.nan)
        pars[self.compiled.poi_index] = mu_hat
        return FitResult(value, pars, ok, f"{int(s.steps[k])} Newton steps at most")

    def upper_limit(self, expected: bool) -> float:
        if not np.any(self.s_bins):
            self._fail("no signal in the workspace: no upper limit")
            return math.nan
        bits = (
            pyhf_fits.NO_BRACKET | pyhf_fits.LIMIT_FIT | pyhf_fits.NO_SENSITIVITY
            | pyhf_fits.FREE_FIT
        )
        ok = self._status(expected, bits, "upper limit")
        return float(self.summary.limit[int(expected)]) if ok else math.nan

    def cls(self, mu: float, expected: bool) -> float:
        values, ok = self.compiled.cls(
            [mu], self.s_bins[None], expected=expected, max_iterations=self.max_iterations
        )
        if not ok[0, 0]:
            self._fail(f"{_KINDS[expected]} CLs at mu = {mu:g}: a fit did not converge")
            return math.nan
        return float(values[0, 0])


class PyhfLikelihood:
    """The likelihood of a result with pyhf workspaces for given signals.

    Args:
        result: the result (its ``jsonFiles`` workspaces must be loaded).
        signals_fb: sigma x eff per data set (fb), in the result's data-set order.
        models: compiled workspaces to reuse (one per database is kept by default).
        max_iterations: cap on Newton steps per fit.
        max_parameters: refuse workspaces with more parameters (:class:`WorkspaceTooLarge`).

    Raises:
        PyhfPatchError: the workspaces are missing or do not fit the result's data sets.
        ValueError: ``signals_fb`` has the wrong length or is negative.
    """

    #: the kind of likelihood (``protomodel evaluate``'s candidates table)
    kind: ClassVar[str] = "pyhf"

    def __init__(
        self,
        result: Result,
        signals_fb: ArrayLike,
        *,
        models: PyhfModels | None = None,
        max_iterations: int = MAX_ITERATIONS,
        max_parameters: int | None = None,
    ) -> None:
        signals_fb = np.asarray(signals_fb, dtype=float)
        if signals_fb.shape != (len(result.datasets),):
            msg = (
                f"{result.result_id}: signals_fb has shape {signals_fb.shape}, expected "
                f"({len(result.datasets)},), one value per data set in the result's order"
            )
            raise ValueError(msg)
        if np.any(signals_fb < 0) or not np.all(np.isfinite(signals_fb)):
            msg = f"{result.result_id}: signals_fb must be finite and >= 0"
            raise ValueError(msg)
        self.result = result
        self.signals = signals_fb * result.lumi_ifb  # events per data set
        compiled = (models if models is not None else PyhfModels()).workspaces(
            result, max_parameters=max_parameters
        )
        if not compiled:
            msg = f"{result.result_id}: no jsonFiles workspace models a data set of the result"
            raise PyhfPatchError(msg)
        self._all = [_WorkspaceFits(c, self.signals, max_iterations) for c in compiled]
        #: SModelS's total yield T (summed over all files, overlaps counted twice)
        self.total_yield = sum(c.file_yield(self.signals) for c in compiled)
        self._best: _WorkspaceFits | None = None
        self._chosen = False

    # -- choice of workspace ----------------------------------------------------------------
    @property
    def workspace(self) -> CompiledWorkspace | None:
        """The workspace used: the best a-priori expected limit among files with signal."""
        if not self._chosen:
            self._chosen = True
            with_signal = [w for w in self._all if w.compiled.file_yield(self.signals) > 0]
            if self.total_yield <= 0 or not with_signal:
                self._best = None
            elif len(self._all) == 1:
                self._best = self._all[0]
            else:
                limits = [w.upper_limit(expected=True) for w in with_signal]
                finite = [(u, i) for i, u in enumerate(limits) if math.isfinite(u)]
                self._best = with_signal[min(finite)[1]] if finite else None
        return None if self._best is None else self._best.compiled

    @property
    def errors(self) -> list[str]:
        """Reasons of failed fits so far."""
        return [e for w in self._all for e in w.errors]

    @property
    def converged(self) -> bool:
        """Whether every fit made so far converged (else see :attr:`errors`)."""
        return all(w.converged for w in self._all)

    def _stats(self) -> _WorkspaceFits | None:
        return self._best if self.workspace is not None else None

    # -- the protocol -----------------------------------------------------------------------
    def nll(self, mu: ArrayLike, expected: bool = False) -> np.ndarray:
        """-ln L(mu), nuisances profiled, for every mu (a-priori expected data if
        ``expected``); NaN where a fit fails. New mu values are fitted in one call."""
        mus = np.asarray(mu, dtype=float)
        stats = self._stats()
        if stats is None:
            return np.full(mus.shape, math.nan)
        return stats.nll(mus, expected)

    def curve(self, mu: ArrayLike, expected: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(nll, converged) at every mu, one call, nothing kept (see :func:`likelihood_curves`
        for many signals at once)."""
        mus = np.asarray(mu, dtype=float)
        stats = self._stats()
        if stats is None:
            return np.full(mus.shape, math.nan), np.zeros(mus.shape, bool)
        values, ok = stats.compiled.curves(
            mus.ravel(), stats.s_bins[None], expected=expected,
            max_iterations=stats.max_iterations,
        )
        return values[0].reshape(mus.shape), ok[0].reshape(mus.shape)

    def maximum(self, expected: bool = False) -> tuple[float, float]:
        """(mu-hat, nll at mu-hat), mu-hat inside the POI's suggested bounds."""
        stats = self._stats()
        if stats is None:
            return math.nan, math.nan
        fit = stats.maximum(expected)
        if not fit.ok:
            return math.nan, math.nan
        return float(fit.pars[stats.compiled.poi_index]), fit.nll

    @property
    def mu_hat(self) -> float:
        """Best-fit signal strength (>= 0, capped at the POI's upper bound)."""
        return self.maximum()[0]

    @property
    def nll_max(self) -> float:
        """-ln L at mu-hat."""
        return self.maximum()[1]

    def cls(self, mu: float, expected: bool = False) -> float:
        """Observed CLs at mu (q~_mu, asymptotic); a-priori expected data if ``expected``."""
        stats = self._stats()
        return math.nan if stats is None else stats.cls(float(mu), expected)

    def upper_limit(self, expected: bool = False) -> float:
        """95 % CL CLs upper limit on mu (asymptotic); NaN if the search fails."""
        stats = self._stats()
        return math.nan if stats is None else stats.upper_limit(expected)

    def upper_limit_fb(self, expected: bool = False) -> float:
        """Upper limit on sigma x eff summed over all data sets: mu_UL x T / lumi."""
        return self.upper_limit(expected) * self.total_yield / self.result.lumi_ifb


def likelihood_curves(
    result: Result,
    signals_fb: ArrayLike,
    mu: ArrayLike,
    *,
    models: PyhfModels,
    expected: bool = False,
    file_name: str | None = None,
    max_iterations: int = MAX_ITERATIONS,
) -> tuple[np.ndarray, np.ndarray]:
    """Profiled nll of many signals (B, data sets; fb) at many mu (M,), in one jitted call per
    workspace: (nll, converged), each (B, M).

    ``file_name`` picks the JSON file (default: the result's only file, or the one
    :class:`PyhfLikelihood` chooses for the first signal)."""
    signals = np.atleast_2d(np.asarray(signals_fb, dtype=float)) * result.lumi_ifb
    compiled = models.workspaces(result)
    if file_name is None:
        if len(compiled) == 1:
            chosen = compiled[0]
        else:
            chosen = PyhfLikelihood(
                result, signals[0] / result.lumi_ifb, models=models,
                max_iterations=max_iterations,
            ).workspace
            if chosen is None:
                shape = (signals.shape[0], np.asarray(mu).size)
                return np.full(shape, math.nan), np.zeros(shape, bool)
    else:
        chosen = next(c for c in compiled if c.plan.file_name == file_name)
    return chosen.curves(
        mu, chosen.signal_bins(signals), expected=expected, max_iterations=max_iterations
    )


def prepare_full_likelihoods(
    database: Database,
    *,
    models: PyhfModels | None = None,
    max_iterations: int = MAX_ITERATIONS,
    max_parameters: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, str]:
    """Build every pyhf workspace of the database the evaluation would fit (with its
    background-only fits) and compile its fits for the shapes an evaluation uses
    (:meth:`CompiledWorkspace.compile_kernels`), so that a walk compiles nothing when it first
    meets a pyhf result; with JAX's persistent cache (on by default) a later process loads them
    from disk. ``progress(done, total)`` is called per result. Returns, per result that could
    not be prepared, why (too many parameters, a missing or invalid workspace): such a result
    is a recorded fallback in the evaluation anyway."""
    models = models if models is not None else _models_for(database)
    results = [r for r in database.results if pyhf_backend(r) and r.likelihood == "pyhf"]
    skipped: dict[str, str] = {}
    for done, result in enumerate(results, start=1):
        try:
            for compiled in models.workspaces(result, max_parameters=max_parameters):
                compiled.compile_kernels(max_iterations=max_iterations)
        except (WorkspaceTooLarge, PyhfPatchError) as err:
            skipped[result.result_id] = str(err)
        if progress is not None:
            progress(done, len(results))
    return skipped


def is_pyhf_prediction(p: TheoryPrediction, result: Result) -> bool:
    """A combined prediction whose SModelS backend is pyhf: ``jsonFiles`` but no covariance
    (:func:`~protomodels.statistics.common.pyhf_backend`)."""
    return p.data_type == "combined" and pyhf_backend(result)


def _store(p: TheoryPrediction, likelihood: PyhfLikelihood, fallback: str | None) -> None:
    """L1, L_SM, L_max, mu-hat and the limits of one prediction (NaN + reason on failure)."""
    nll1, nll0 = (float(v) for v in likelihood.nll(np.asarray([1.0, 0.0])))
    muhat, nll_max = likelihood.maximum()
    limits = [likelihood.upper_limit_fb(expected) for expected in (False, True)]
    used = likelihood.workspace
    errors = likelihood.errors
    if used is None:
        errors = [*errors, "no workspace with signal and a finite expected limit"]
    error = "; ".join(dict.fromkeys(errors)) if errors else None
    values = (nll1, nll0, nll_max, muhat)
    if not likelihood.converged or (used is not None and not all(map(math.isfinite, values))):
        why = error or "a non-finite -ln L"
        fall_back(p, f"{FIT_FAILED}: {why}", error=error, converged=likelihood.converged)
        return
    p.upper_limit_fb, p.expected_upper_limit_fb = (
        u if math.isfinite(u) and u > 0 else None for u in limits
    )
    store_likelihoods(
        p, "pyhf", nll1, nll0, nll_max, muhat, likelihood, error=error,
        workspace=used.plan.file_name if used is not None else None,
        fallback=fallback,
    )


def attach_full_likelihoods(
    predictions: Sequence[TheoryPrediction],
    database: Database,
    *,
    models: PyhfModels | None = None,
    max_iterations: int = MAX_ITERATIONS,
    max_parameters: int | None = None,
) -> None:
    """Store pyhf likelihood quantities in every combined prediction whose result has pyhf
    workspaces (in place): its ``statistics`` get nll at mu = 1, 0 and mu-hat, mu-hat and the
    :class:`PyhfLikelihood` (kind ``"pyhf"``); ``upper_limit_fb`` and
    ``expected_upper_limit_fb`` get the computed limits. A fit that fails or runs out of its
    budget leaves the prediction without likelihood and limits (:func:`fall_back`): its
    ``statistics.fallback`` starts with :data:`FIT_FAILED` and gives the reason (also in
    ``statistics.error``; ``statistics.converged = False`` when out of budget), and the
    combiner lets the result's best signal region stand in; a result whose JSON is missing
    says so in ``statistics.fallback``. ``models``, ``max_iterations`` and ``max_parameters`` (None:
    no cap) as for :class:`PyhfLikelihood`; a workspace above ``max_parameters`` is such a
    fallback too. Usually called through
    :func:`~protomodels.statistics.attach.attach_statistics` with ``full_likelihoods=True``
    (after the other kinds).

    Raises:
        ProtomodelsError: the database was opened without its pyhf workspaces
            (``workspaces=False``).
    """
    by_id = {r.result_id: r for r in database.results}
    models = models if models is not None else _models_for(database)
    for p in predictions:
        result = by_id.get(p.result_id)
        if result is None or not is_pyhf_prediction(p, result):
            continue
        if result.likelihood != "pyhf":
            p.statistics = PredictionStatistics.without_likelihood(
                result.fallback or f"no pyhf workspace ({result.likelihood})"
            )
            continue
        used = [w for w in result.pyhf if not w.full and not w.missing]
        if all(w.workspace is None for w in used):
            msg = (
                f"{result.result_id}: full likelihoods need the pyhf workspaces, but the "
                "database was opened without them; open it with workspaces=True (or turn "
                "full likelihoods off)"
            )
            raise ProtomodelsError(msg)
        # a missing JSON file of the result: its fallback note stays with the likelihood
        missing = any(w.missing for w in result.pyhf if not w.full) and result.fallback
        try:
            likelihood = PyhfLikelihood(
                result, p.signals_fb, models=models, max_iterations=max_iterations,
                max_parameters=max_parameters,
            )
            _store(p, likelihood, result.fallback if missing else None)
        except WorkspaceTooLarge as err:
            fall_back(p, f"{NOT_FITTED}: {err}", error=str(err))
        except (ProtomodelsError, ValueError, ArithmeticError) as err:
            fall_back(p, f"{FIT_FAILED}: {err}", error=str(err))
