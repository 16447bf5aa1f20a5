"""Full likelihoods of results with pyhf workspaces (SModelS ``jsonFiles``), as SModelS 3.0.3.

``docs/statistics.md`` §5 (SModelS ``statistics/pyhfInterface.py:PyhfUpperLimitComputer``):

- **Model**: the background-only workspace patched with the signal (:mod:`pyhf_patch`), built
  with ``normsys`` code4 and ``histosys`` code4p; POI ``mu_SIG``. nll = -ln L is pyhf's full
  log-pdf (Poisson terms with their normalisation and all constraint terms).
- **L(mu)** (``likelihood``): nuisances profiled at fixed mu (SModelS scales the signal by mu
  and fixes the POI at 1, which is the same function). L_SM = L(0), L1 = L(1).
- **mu-hat, L_max** (``lmax``): free fit with the POI inside the workspace's suggested bounds
  ([0, 10] for a plain normfactor, or the measurement's own, e.g. [0, 5]); so mu-hat >= 0 and is
  capped at that bound.
- **Expected** (``expected=True``): the a-priori workspace (observations = nominal background).
- **Upper limit** (``getUpperLimitOnMu``): observed CLs of ``pyhf.infer.hypotest`` with the
  asymptotic q~_mu of arXiv:1007.1727 (post-fit Asimov data at mu = 0), POI bounds (0, 10) in
  units of the rescaled signal; the signal is rescaled by 3 (or 1/3, factor shrinking on
  oscillation) until CLs(0.2) > 0.05 > CLs(5) (at most 10 tries, 5 NaNs), then ``brentq`` on
  [0.2, 5] with rtol = xtol = 1e-3; mu_UL = root x scale. ``expected=True`` is the same on the
  a-priori workspace.
- **Several JSON files** (``getBestCombinationIndex``): only the file with the smallest a-priori
  expected mu_UL among files with signal is used, for every quantity.
- **Limit on sigma x eff** (``getUpperLimitOnSigmaTimesEff``): mu_UL x T / lumi, where T is the
  signal summed over all files (a data set in two files counts twice, as in SModelS).

The model is compiled once per workspace with a unit signal in every signal bin; the actual
signal enters at run time (every ``bsm`` rate is linear in the nominal signal: normfactor, lumi
and the signal-uncertainty histosys all scale with it), so a new protomodel reuses the compiled
model. Fits minimise the JIT-compiled nll with its gradient by L-BFGS-B inside the parameter
bounds, with a bounded number of iterations; a fit that fails gives NaN and a reason.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pyhf
from jax.scipy.special import gammaln
from numpy.typing import ArrayLike
from scipy import optimize
from scipy.special import ndtr

from protomodels.database.database import Database
from protomodels.database.records import Result
from protomodels.exceptions import ProtomodelsError
from protomodels.statistics.evaluate import (
    NO_FULL_LIKELIHOOD,
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
from protomodels.theory.predictions import TheoryPrediction

_X64 = jax.config.read("jax_enable_x64")
from pyhf.tensor.jax_backend import jax_backend as _PyhfJax  # noqa: E402 - sets x64 globally

jax.config.update("jax_enable_x64", _X64)  # ... which we undo: x64 is used in contexts only

__all__ = [
    "CompiledWorkspace",
    "FitResult",
    "PyhfFitError",
    "PyhfLikelihood",
    "PyhfModels",
    "attach_full_likelihoods",
    "is_pyhf_prediction",
]


def __dir__() -> list[str]:
    return __all__


#: SModelS's ``modifier_settings`` (the ones of ``pyhf cls``)
MODIFIER_SETTINGS = {"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": "code4p"}}
CL = 0.95
#: default cap on optimiser iterations per fit (SModelS gives pyhf 200, 2000 on a retry)
MAX_ITERATIONS = 2000
_LIMIT_TRIES = 10  # SModelS nattempts_max
_LIMIT_NANS = 5
_LIMIT_POI_MAX = 10.0  # POI upper bound in hypotest, in units of the rescaled signal
_BAD = 1e30  # objective value where the nll is not finite
_STARTS = ("best", "pyhf", "warm")
_PG_TIGHT, _PG_LOOSE = 1e-3, 0.1  # projected-gradient limits of a converged fit
_FLOOR = 1e-8  # rates below max(_FLOOR, 1e-3 n) continue quadratically (_poisson_nll)


def _poisson_nll(n: jax.Array, lam: jax.Array) -> jax.Array:
    """-ln Pois(n | lam) = lam - n ln lam + ln Gamma(n + 1), pyhf's continuous form.

    Below lam = c = max(1e-8, 1e-3 n) the function continues as its second-order Taylor
    expansion at c: exactly linear (as pyhf) for n = 0, a parabola for n > 0 where pyhf gives
    NaN (ln of a negative rate). A line search that steps into negative rates then sees a
    finite, steep wall and backs off; the optimum never lies there.
    """
    c = jnp.maximum(_FLOOR, 1e-3 * n)
    safe = jnp.maximum(lam, c)
    value = safe - n * jnp.log(safe) + gammaln(n + 1.0)
    d = jnp.minimum(lam - c, 0.0)
    return value + (1.0 - n / c) * d + 0.5 * (n / c**2) * d**2


class PyhfFitError(ProtomodelsError):
    """A pyhf fit did not converge (the message gives the optimiser's reason)."""


@contextlib.contextmanager
def _pyhf_jax() -> Iterator[None]:
    """pyhf's JAX backend in 64 bit while models are built and traced; pyhf's previous backend
    is restored afterwards (compiled functions no longer need it)."""
    tensorlib, optimizer = pyhf.get_backend()
    with jax.enable_x64(True):
        pyhf.set_backend(_PyhfJax(precision="64b"))
        try:
            yield
        finally:
            pyhf.set_backend(tensorlib, optimizer)


def _openblas_thread_controls() -> list[tuple[Any, Any]]:
    """(get, set) of the thread count of every OpenBLAS loaded in this process (numpy's and
    scipy's wheels each bundle one), found as threadpoolctl does."""
    controls = []
    try:
        with open("/proc/self/maps") as maps:  # noqa: PTH123 - Linux only, else no control
            paths = sorted(
                {
                    line.split()[-1]
                    for line in maps
                    if "openblas" in line.lower() and line.split()[-1].startswith("/")
                }
            )
    except OSError:
        return controls
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_", ""):
            for suffix in ("64_", "_64", ""):
                get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    controls.append((get, put))
                    break
            else:
                continue
            break
    return controls


@functools.cache
def _blas_controls() -> tuple[tuple[Any, Any], ...]:
    return tuple(_openblas_thread_controls())


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """One BLAS thread while scipy's L-BFGS-B runs: its tiny BLAS calls are 10-30 times slower
    with OpenBLAS threads competing for the cores (measured on the 2-core machine)."""
    controls = _blas_controls()
    before = [get() for get, _ in controls]
    for _, put in controls:
        put(1)
    try:
        yield
    finally:
        for (_, put), n in zip(controls, before, strict=True):
            put(n)


@dataclass(frozen=True)
class FitResult:
    """One maximum-likelihood fit.

    Attributes:
        nll: -ln L at the optimum (NaN if the fit failed).
        pars: all parameters at the optimum (pyhf order).
        ok: whether the fit converged.
        message: the optimiser's message.
    """

    nll: float
    pars: np.ndarray
    ok: bool
    message: str


def _source(result: Result, plan: PatchPlan) -> dict[str, Any] | None:
    """The background-only workspace JSON of a plan (the ``jsonFiles`` one, never the full)."""
    return next(w.workspace for w in result.pyhf if w.file_name == plan.file_name and not w.full)


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
    source: dict[str, Any] = field(repr=False)
    _value_and_grad: Any = field(repr=False)
    _expected: Any = field(repr=False)

    @classmethod
    def build(cls, result: Result, plan: PatchPlan) -> CompiledWorkspace:
        """Patch with a unit signal, build the pyhf model and compile nll and its gradient.

        Raises:
            PyhfPatchError: the workspace is missing or invalid.
        """
        raw = _source(result, plan)
        if raw is None:
            msg = f"{result.result_id}/{plan.file_name}: the workspace JSON is missing"
            raise PyhfPatchError(msg)
        spec = patched_spec(raw, plan, dict.fromkeys(plan.datasets, 1.0), result.signal_uncertainty)
        dataset_ids = tuple(d.data_id or d.dataset_id for d in result.datasets)
        with _pyhf_jax():
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
            poi_index = config.poi_index
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
            args = (jnp.asarray(init), jnp.asarray(observed), jnp.asarray(auxdata))
            s0 = jnp.zeros(config.nmaindata)
            value_and_grad = jax.jit(jax.value_and_grad(nll)).lower(*args, s0).compile()
            expected_fn = jax.jit(expected).lower(args[0], s0).compile()
            names = []
            for name in config.par_order:
                size = config.param_set(name).n_parameters
                names += [name] if size == 1 else [f"{name}[{i}]" for i in range(size)]
        return cls(
            result_id=result.result_id,
            plan=plan,
            dataset_ids=dataset_ids,
            signal_index=signal_index,
            poi_index=int(poi_index),
            init=init,
            bounds=np.asarray(config.suggested_bounds(), dtype=float),
            fixed=np.asarray(config.suggested_fixed(), dtype=bool),
            observed=observed,
            apriori=apriori,
            auxdata=auxdata,
            parameter_names=tuple(names),
            source=raw,
            _value_and_grad=value_and_grad,
            _expected=expected_fn,
        )

    @property
    def poi_bounds(self) -> tuple[float, float]:
        """The POI's suggested bounds (SModelS's bounds of mu-hat)."""
        lo, hi = self.bounds[self.poi_index]
        return float(lo), float(hi)

    def signal_bins(self, signals: ArrayLike) -> np.ndarray:
        """Signal yield per main bin from the yield per data set (result order)."""
        s = np.asarray(signals, dtype=float)
        return np.where(self.signal_index >= 0, s[np.maximum(self.signal_index, 0)], 0.0)

    def file_yield(self, signals: ArrayLike) -> float:
        """This file's share of SModelS's total yield: signals of the data sets it names."""
        s = np.asarray(signals, dtype=float)
        return float(sum(s[self.dataset_ids.index(d)] for d in self.plan.datasets))

    def value_and_grad(
        self, pars: np.ndarray, n: np.ndarray, aux: np.ndarray, s_bins: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """nll and its gradient in all parameters."""
        with jax.enable_x64(True):
            value, grad = self._value_and_grad(pars, n, aux, s_bins)
        return float(value), np.asarray(grad)

    def expected_data(self, pars: np.ndarray, s_bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(main, auxiliary) expected data at these parameters (pyhf ``expected_data``)."""
        with jax.enable_x64(True):
            main, aux = self._expected(pars, s_bins)
        return np.asarray(main), np.asarray(aux)

    def fit(
        self,
        n: np.ndarray,
        aux: np.ndarray,
        s_bins: np.ndarray,
        *,
        mu: float | None = None,
        poi_bounds: tuple[float, float] | None = None,
        start: np.ndarray | None = None,
        max_iterations: int = MAX_ITERATIONS,
    ) -> FitResult:
        """Minimise nll over the free parameters: the nuisances, and the POI unless ``mu`` is
        given (then fixed there). Bounds are pyhf's suggested ones (``poi_bounds`` for the
        POI); ``start`` defaults to pyhf's suggested initial values."""
        x = np.array(self.init if start is None else start, dtype=float)
        free = ~self.fixed
        bounds = self.bounds.copy()
        if mu is not None:
            free[self.poi_index] = False
            x[self.poi_index] = mu
        elif poi_bounds is not None:
            bounds[self.poi_index] = poi_bounds
        if mu is None and not free[self.poi_index]:
            msg = f"{self.result_id}/{self.plan.file_name}: the POI is fixed in the workspace"
            raise PyhfFitError(msg)
        x[free] = np.clip(x[free], bounds[free, 0], bounds[free, 1])
        if not free.any():
            value, _ = self.value_and_grad(x, n, aux, s_bins)
            return FitResult(value, x, value < _BAD, "no free parameter")

        def objective(y: np.ndarray) -> tuple[float, np.ndarray]:
            x[free] = y
            value, grad = self.value_and_grad(x, n, aux, s_bins)
            return value, grad[free]

        with np.errstate(all="ignore"), _single_threaded_blas():
            res = optimize.minimize(
                objective,
                x[free],
                jac=True,
                method="L-BFGS-B",
                bounds=bounds[free],
                options={"maxiter": max_iterations, "ftol": 1e-13, "gtol": 1e-9},
            )
        x[free] = res.x
        value, grad = self.value_and_grad(x, n, aux, s_bins)
        # projected gradient: a stop for lack of progress counts as converged when it is
        # small; a "converged" stop with a large one (stuck line search) does not
        g = grad[free]
        at_lo = (res.x <= bounds[free, 0]) & (g > 0)
        at_hi = (res.x >= bounds[free, 1]) & (g < 0)
        pg = float(np.max(np.abs(np.where(at_lo | at_hi, 0.0, g))))
        ok = bool(value < _BAD and pg < _PG_LOOSE and (res.success or pg < _PG_TIGHT))
        return FitResult(value if ok else math.nan, x.copy(), ok, str(res.message))


class PyhfModels:
    """Compiled workspaces, per result and JSON file (compile once, reuse for every signal)."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[str, str], CompiledWorkspace] = {}

    def workspaces(self, result: Result) -> list[CompiledWorkspace]:
        """The compiled workspaces SModelS would consider for this result.

        Raises:
            PyhfPatchError: a workspace is missing or cannot be patched.
        """
        out = []
        for plan in patch_plans(result):
            key = (result.result_id, plan.file_name)
            compiled = self._compiled.get(key)
            if compiled is None or compiled.source is not _source(result, plan):
                compiled = self._compiled[key] = CompiledWorkspace.build(result, plan)
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


def _cls(q: float, q_asimov: float) -> float:
    """Observed CLs from q~_mu and its Asimov value (pyhf ``AsymptoticCalculator``)."""
    sqrt_q, sqrt_qa = math.sqrt(q), math.sqrt(q_asimov)
    if sqrt_qa == 0.0 and sqrt_q > 0.0:
        return math.nan  # no sensitivity: pyhf divides by zero here
    if sqrt_q <= sqrt_qa:
        t = sqrt_q - sqrt_qa
    else:
        t = (q - q_asimov) / (2.0 * sqrt_qa)
    cls_b = float(ndtr(-t))
    return float(ndtr(-(t + sqrt_qa))) / cls_b if cls_b > 0 else math.nan


class _WorkspaceStatistics:
    """Fits of one workspace for one signal, observed or a-priori expected (cached)."""

    def __init__(
        self,
        compiled: CompiledWorkspace,
        signals: np.ndarray,
        max_iterations: int,
        starts: str = "best",
    ) -> None:
        self.compiled = compiled
        self.s_bins = compiled.signal_bins(signals)
        self.max_iterations = max_iterations
        self.starts = starts
        self._cache: dict[tuple, FitResult] = {}
        self._limits: dict[bool, float] = {}
        self.errors: list[str] = []

    def data(self, expected: bool) -> tuple[np.ndarray, np.ndarray]:
        c = self.compiled
        return (c.apriori if expected else c.observed), c.auxdata

    def _fit(
        self,
        data_key: tuple,
        n: np.ndarray,
        aux: np.ndarray,
        *,
        mu: float | None,
        poi_bounds: tuple[float, float] | None = None,
    ) -> FitResult:
        """A cached fit to the data named ``data_key``.

        Starts (``starts``): ``"pyhf"`` = pyhf's suggested values (as SModelS); ``"warm"`` =
        the converged fit of the same data whose POI is closest, pyhf's on failure;
        ``"best"`` = both, keeping the lower nll. The large workspaces have several local
        minima (ATLAS-SUSY-2018-04: 0.1 in nll at mu = 1 between the two starts, and pyhf's
        SLSQP lands in either), so "best" is the profile likelihood most reliably. A fit that
        fails is retried once from the background-only fit (as SModelS retries).
        """
        key = (data_key, mu, poi_bounds)
        if key in self._cache:
            return self._cache[key]
        c = self.compiled
        starts: list[np.ndarray | None] = [None]
        done = [f for (d, _, _), f in self._cache.items() if d == data_key and f.ok]
        if self.starts != "pyhf" and done:
            target = mu if mu is not None else min(done, key=lambda f: f.nll).pars[c.poi_index]
            nearest = min(done, key=lambda f: abs(f.pars[c.poi_index] - target))
            starts.insert(0, nearest.pars)
        fits = []
        for start in starts:
            fits.append(
                c.fit(
                    n,
                    aux,
                    self.s_bins,
                    mu=mu,
                    poi_bounds=poi_bounds,
                    start=start,
                    max_iterations=self.max_iterations,
                )
            )
            if fits[-1].ok and self.starts != "best":
                break
        good = [f for f in fits if f.ok]
        result = min(good, key=lambda f: f.nll) if good else fits[-1]
        assert result is not None
        if not result.ok and mu != 0.0:
            background = self._fit(data_key, n, aux, mu=0.0)
            if background.ok:
                retry = c.fit(
                    n,
                    aux,
                    self.s_bins,
                    mu=mu,
                    poi_bounds=poi_bounds,
                    start=background.pars,
                    max_iterations=self.max_iterations,
                )
                result = retry if retry.ok else result
        if not result.ok:
            what = "free fit" if mu is None else f"fit at mu = {mu:g}"
            self.errors.append(
                f"{c.result_id}/{c.plan.file_name}: {what} failed ({result.message})"
            )
        self._cache[key] = result
        return result

    def nll(self, mu: float, expected: bool) -> float:
        n, aux = self.data(expected)
        return self._fit((expected,), n, aux, mu=float(mu)).nll

    def maximum(self, expected: bool) -> FitResult:
        n, aux = self.data(expected)
        return self._fit((expected,), n, aux, mu=None, poi_bounds=self.compiled.poi_bounds)

    # -- CLs and the upper limit ------------------------------------------------------------
    def _asimov(self, expected: bool) -> tuple[np.ndarray, np.ndarray] | None:
        """Post-fit background-only expectation (main and auxiliary), pyhf's Asimov data."""
        n, aux = self.data(expected)
        fit0 = self._fit((expected,), n, aux, mu=0.0)
        if not fit0.ok:
            return None
        return self.compiled.expected_data(fit0.pars, self.s_bins)

    def _q_tilde(self, mu: float, data: tuple, key: tuple, poi_max: float) -> float:
        """q~_mu = 2 (nll(mu) - nll(mu-hat)), clipped at 0; 0 when mu-hat > mu."""
        n, aux = data
        free = self._fit(key, n, aux, mu=None, poi_bounds=(0.0, poi_max))
        fixed = self._fit(key, n, aux, mu=mu)
        if not (free.ok and fixed.ok):
            return math.nan
        if free.pars[self.compiled.poi_index] > mu:
            return 0.0
        return max(0.0, 2.0 * (fixed.nll - free.nll))

    def cls(self, mu: float, expected: bool, poi_max: float = _LIMIT_POI_MAX) -> float:
        """Observed CLs at mu (on the a-priori data if ``expected``), POI bounds (0, poi_max)."""
        asimov = self._asimov(expected)
        if asimov is None:
            return math.nan
        q = self._q_tilde(mu, self.data(expected), (expected,), poi_max)
        qa = self._q_tilde(mu, asimov, ("asimov", expected), poi_max)
        if math.isnan(q) or math.isnan(qa):
            return math.nan
        return _cls(q, qa)

    def upper_limit(self, expected: bool) -> float:
        """95 % CL upper limit on mu, by SModelS's rescaling bracket and ``brentq``."""
        if expected not in self._limits:
            self._limits[expected] = self._upper_limit(expected)
        return self._limits[expected]

    def _upper_limit(self, expected: bool) -> float:
        if not np.any(self.s_bins):
            self.errors.append("no signal in the workspace: no upper limit")
            return math.nan
        scale, factor = 1.0, 3.0
        lo, med, hi = 0.2, 1.0, 5.0
        both_large = both_tiny = False
        n_nan = 0
        scales = [scale]

        def root(x: float) -> float:
            # SModelS's clsRoot on the signal rescaled by `scale`
            return 1.0 - CL - self.cls(x * scale, expected, _LIMIT_POI_MAX * scale)

        for _ in range(_LIMIT_TRIES):
            if n_nan > _LIMIT_NANS:
                self.errors.append("upper limit: CLs was NaN too often")
                return math.nan
            r_lo, r_hi = root(lo), root(hi)
            if r_lo < 0.0 < r_hi:
                break
            if len(scales) > 2 and math.isclose(scales[-1], scales[-3], rel_tol=1e-12):
                factor = 1.0 + 0.75 * (factor - 1.0)  # oscillating: smaller steps
            if math.isnan(r_lo):
                r_med = root(med)
                if r_med < 0.0 < r_hi:
                    lo, med = med, math.sqrt(med * hi)
                    continue
                if r_hi < 0.0:
                    hi = hi + (10.0 - hi) * 0.5
                    med = math.sqrt(lo * hi)
                n_nan += 1
                scale *= factor
                scales.append(scale)
                continue
            if math.isnan(r_hi):
                r_med = root(med)
                if r_med > 0.0 > r_lo:
                    hi, med = med, math.sqrt(lo * med)
                    continue
                if r_lo > 0.0:
                    lo *= 0.5
                    med = math.sqrt(lo * hi)
                n_nan += 1
                scale /= factor
                scales.append(scale)
                continue
            if r_hi < 0 and r_lo < 0 and both_large:
                factor = 1.0 + (factor - 1.0) / 2.0
            if r_hi > 0 and r_lo > 0 and both_tiny:
                factor = 1.0 + (factor - 1.0) / 2.0
            both_tiny = r_hi < 0 and r_lo < 0
            both_large = r_hi > 0 and r_lo > 0
            scale = scale * factor if r_hi < 0.0 else scale / factor
            scales.append(scale)
        else:
            self.errors.append(f"upper limit: no CLs bracket after {_LIMIT_TRIES} tries")
            return math.nan
        try:
            x = optimize.brentq(root, lo, hi, rtol=1e-3, xtol=1e-3, maxiter=100)
        except (ValueError, RuntimeError) as err:
            self.errors.append(f"upper limit: brentq failed ({err})")
            return math.nan
        return float(x * scale)


class PyhfLikelihood:
    """The likelihood of a result with pyhf workspaces for given signals.

    Args:
        result: the result (its ``jsonFiles`` workspaces must be loaded).
        signals_fb: sigma x eff per data set (fb), in the result's data-set order.
        models: compiled workspaces to reuse (one per database is kept by default).
        max_iterations: cap on optimiser iterations per fit.
        starts: where fits start: ``"best"`` (pyhf's suggested values and the closest
            converged fit of the same data, keeping the lower nll; the default), ``"pyhf"``
            (suggested values only, as SModelS) or ``"warm"`` (closest converged fit first).

    Raises:
        PyhfPatchError: the workspaces are missing or do not fit the result's data sets.
        ValueError: ``signals_fb`` has the wrong length or is negative.
    """

    def __init__(
        self,
        result: Result,
        signals_fb: ArrayLike,
        *,
        models: PyhfModels | None = None,
        max_iterations: int = MAX_ITERATIONS,
        starts: str = "best",
    ) -> None:
        if starts not in _STARTS:
            msg = f"starts={starts!r}; use one of {', '.join(_STARTS)}"
            raise ValueError(msg)
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
        compiled = (models if models is not None else PyhfModels()).workspaces(result)
        if not compiled:
            msg = f"{result.result_id}: no jsonFiles workspace models a data set of the result"
            raise PyhfPatchError(msg)
        self._all = [
            _WorkspaceStatistics(c, self.signals, max_iterations, starts) for c in compiled
        ]
        #: SModelS's total yield T (summed over all files, overlaps counted twice)
        self.total_yield = sum(c.file_yield(self.signals) for c in compiled)
        self._best: _WorkspaceStatistics | None = None
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

    def _stats(self) -> _WorkspaceStatistics | None:
        return self._best if self.workspace is not None else None

    # -- the protocol -----------------------------------------------------------------------
    def nll(self, mu: ArrayLike, expected: bool = False) -> np.ndarray:
        """-ln L(mu), nuisances profiled, for every mu (a-priori expected data if
        ``expected``); NaN where a fit fails."""
        mus = np.asarray(mu, dtype=float)
        stats = self._stats()
        if stats is None:
            return np.full(mus.shape, math.nan)
        flat = [stats.nll(float(m), expected) for m in mus.ravel()]
        return np.asarray(flat, dtype=float).reshape(mus.shape)

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
        """Observed CLs at mu (POI bounds (0, 10)); a-priori expected data if ``expected``."""
        stats = self._stats()
        return math.nan if stats is None else stats.cls(float(mu), expected)

    def upper_limit(self, expected: bool = False) -> float:
        """95 % CL CLs upper limit on mu (asymptotic, SModelS's search); NaN if it fails."""
        stats = self._stats()
        return math.nan if stats is None else stats.upper_limit(expected)

    def upper_limit_fb(self, expected: bool = False) -> float:
        """Upper limit on sigma x eff summed over all data sets: mu_UL x T / lumi."""
        return self.upper_limit(expected) * self.total_yield / self.result.lumi_ifb


def is_pyhf_prediction(p: TheoryPrediction, result: Result) -> bool:
    """A combined prediction whose SModelS backend is pyhf: ``jsonFiles`` but no covariance
    (:func:`~protomodels.statistics.evaluate.pyhf_backend`)."""
    return p.data_type == "combined" and pyhf_backend(result)


def _store(p: TheoryPrediction, likelihood: PyhfLikelihood) -> None:
    """L1, L_SM, L_max, mu-hat and the limits of one prediction (NaN + reason on failure)."""
    nll1, nll0 = (float(v) for v in likelihood.nll(np.asarray([1.0, 0.0])))
    muhat, nll_max = likelihood.maximum()
    limits = [likelihood.upper_limit_fb(expected) for expected in (False, True)]
    store_likelihoods(p, nll1, nll0, nll_max, muhat)
    p.extra["likelihood"] = likelihood
    used = likelihood.workspace
    p.extra["pyhf_workspace"] = used.plan.file_name if used is not None else None
    p.upper_limit_fb, p.expected_upper_limit_fb = (
        u if math.isfinite(u) and u > 0 else None for u in limits
    )
    errors = likelihood.errors
    if used is None:
        errors = [*errors, "no workspace with signal and a finite expected limit"]
    if errors:
        p.extra["likelihood_error"] = "; ".join(dict.fromkeys(errors))


def attach_full_likelihoods(
    predictions: Sequence[TheoryPrediction],
    database: Database,
    *,
    models: PyhfModels | None = None,
    max_iterations: int = MAX_ITERATIONS,
    starts: str = "best",
) -> None:
    """Store pyhf likelihood quantities in every combined prediction whose result has pyhf
    workspaces (in place): ``extra`` gets L1, L_SM, L_max, muhat, nll1, nll_SM, nll_max and
    ``likelihood`` (the :class:`PyhfLikelihood`); ``upper_limit_fb`` and
    ``expected_upper_limit_fb`` get the computed limits. Failures leave NaN values and
    ``extra["likelihood_error"]``; a result whose JSON is missing gets ``extra["fallback"]``.
    ``models``, ``max_iterations`` and ``starts`` as for :class:`PyhfLikelihood`. Usually
    called through :func:`~protomodels.statistics.evaluate.attach_statistics` with
    ``full_likelihoods=True`` (after the other kinds).

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
            p.extra["fallback"] = result.fallback or f"no pyhf workspace ({result.likelihood})"
            continue
        used = [w for w in result.pyhf if not w.full and not w.missing]
        if all(w.workspace is None for w in used):
            msg = (
                f"{result.result_id}: full likelihoods need the pyhf workspaces, but the "
                "database was opened without them; open it with workspaces=True (or turn "
                "full likelihoods off)"
            )
            raise ProtomodelsError(msg)
        stale = p.extra.get("fallback")
        if isinstance(stale, str) and stale.startswith(NO_FULL_LIKELIHOOD):
            # from attach_statistics without full likelihoods: they are computed now
            p.extra.pop("fallback")
            if any(w.missing for w in result.pyhf if not w.full) and result.fallback:
                p.extra["fallback"] = result.fallback
        try:
            likelihood = PyhfLikelihood(
                result, p.signals_fb, models=models, max_iterations=max_iterations, starts=starts
            )
            _store(p, likelihood)
        except (ProtomodelsError, ValueError, ArithmeticError) as err:
            store_likelihoods(p, math.nan, math.nan, math.nan, math.nan)
            p.extra["likelihood_error"] = str(err)
