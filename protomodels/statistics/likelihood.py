"""One interface for the likelihood of every kind of result (as spey's backends).

A :class:`Likelihood` gives -ln L(mu) profiled over its nuisances, vectorised over mu, its best
fit and its upper limit on mu; the combiner and the critics never ask which kind they hold.
The backends here are thin wrappers of the pure ``jax.numpy`` functions of
:mod:`~protomodels.statistics.truncated_gaussian`, :mod:`~protomodels.statistics.single_region`
and :mod:`~protomodels.statistics.simplified`; ``PyhfLikelihood`` follows the same protocol.

All nll values keep every constant, as SModelS 3 does (``docs/statistics.md`` §1), so differences
between mu values and sums over results are meaningful. ``expected=True`` is SModelS's
a priori expected likelihood: for upper-limit results the truncated Gaussian with mu-hat = 0,
for efficiency maps the observed counts replaced by the backgrounds.

The jitted functions behind the backends are compiled once per number of regions (padded, see
:func:`padded_size`) and per length of the mu array (padded to a power of two).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any, ClassVar, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from protomodels.statistics import simplified, single_region, truncated_gaussian
from protomodels.statistics.checks import (
    StatisticsInputError,
    check_counts,
    check_covariance,
    check_signals,
    check_third_moments,
    check_upper_limits,
)

__all__ = [
    "Likelihood",
    "SimplifiedLikelihood",
    "SingleRegionLikelihood",
    "TruncatedGaussianLikelihood",
    "padded_size",
]


def __dir__() -> list[str]:
    return __all__


@runtime_checkable
class Likelihood(Protocol):
    """The likelihood of one result as a function of the signal strength mu.

    ``nll(mu, expected)``: -ln L(mu) (nuisances profiled, all constants kept), an array of the
    shape of ``mu``. ``mu_hat`` and ``nll_max``: the observed best fit (mu-hat >= 0 except for
    upper-limit results, whose truncated Gaussian allows mu-hat < 0) and -ln L there.
    ``upper_limit(expected)``: the 95 % CL upper limit on mu (observed or a priori expected;
    inf or NaN when there is none).
    """

    def nll(self, mu: ArrayLike, expected: bool = False) -> np.ndarray:
        """-ln L(mu) (vectorised over mu)."""
        ...

    @property
    def mu_hat(self) -> float:
        """Best-fit signal strength (observed)."""
        ...

    @property
    def nll_max(self) -> float:
        """-ln L at mu-hat (observed)."""
        ...

    def upper_limit(self, expected: bool = False) -> float:
        """95 % CL upper limit on mu."""
        ...


def padded_size(n: int) -> int:
    """The number of regions a simplified likelihood of n regions is padded to: 4, 8, then
    multiples of 8 (few compiled sizes, little wasted work)."""
    if n <= 4:
        return 4
    if n <= 8:
        return 8
    return 8 * math.ceil(n / 8)


def _mu_lanes(mu: ArrayLike) -> tuple[np.ndarray, tuple[int, ...], int]:
    """mu flattened and padded to a power of two >= 8 (few compiled lengths); NumPy, so that
    it becomes a float64 JAX array inside the callers' x64 context."""
    values = np.asarray(mu, dtype=float)
    flat = values.reshape(-1)
    size = max(8, 1 << max(flat.size - 1, 0).bit_length())
    padded = np.concatenate([flat, np.full(size - flat.size, flat[-1] if flat.size else 0.0)])
    return padded, values.shape, flat.size


def _unpad(values: jax.Array, shape: tuple[int, ...], count: int) -> np.ndarray:
    return np.asarray(values)[:count].reshape(shape)


# ---- truncated Gaussian ----------------------------------------------------------------------


@jax.jit
def _tg_parameters(u: jax.Array, e: jax.Array) -> tuple[jax.Array, jax.Array]:
    sigma = truncated_gaussian.width(u, e)
    return sigma, truncated_gaussian.mu_hat(u, sigma)


@jax.jit
def _tg_nll(mu: jax.Array, mu_hat: jax.Array, sigma: jax.Array) -> jax.Array:
    return -truncated_gaussian.log_likelihood(mu, mu_hat, sigma)


@dataclass(frozen=True, eq=False)
class TruncatedGaussianLikelihood:
    """Upper-limit result with observed and expected limits (SModelS's truncated Gaussian).

    Attributes:
        observed_limit: observed 95 % CL limit on mu (UL_obs / predicted cross section).
        expected_limit: expected limit on mu (UL_exp / predicted cross section).
        label: the result id (for messages).
    """

    #: the kind of likelihood (``protomodel evaluate``'s candidates table)
    kind: ClassVar[str] = "upper_limit"

    observed_limit: float
    expected_limit: float
    label: str = ""

    def __post_init__(self) -> None:
        u, e = self.observed_limit, self.expected_limit
        if not (math.isfinite(u) and u > 0 and math.isfinite(e) and e > 0):
            check_upper_limits(self.label, u, e, field="upper_limit_on_mu")

    @classmethod
    def _fitted(
        cls, u: float, e: float, label: str, sigma: float, mu_hat: float, nll_max: float
    ) -> TruncatedGaussianLikelihood:
        """The likelihood with its fit already known (from a batched evaluation)."""
        like = cls(u, e, label)
        like.__dict__.update(_parameters=(sigma, mu_hat), nll_max=nll_max)
        return like

    @cached_property
    def _parameters(self) -> tuple[float, float]:
        """(sigma_mu, mu-hat)."""
        with jax.enable_x64(True):
            sigma, mu_hat = _tg_parameters(
                jnp.asarray(self.observed_limit), jnp.asarray(self.expected_limit)
            )
        return float(sigma), float(mu_hat)

    @property
    def sigma_mu(self) -> float:
        """Width of the Gaussian (from the expected limit, corrected when obs > exp)."""
        return self._parameters[0]

    @property
    def mu_hat(self) -> float:
        """Best fit; negative for under-fluctuations (u < e)."""
        return self._parameters[1]

    @cached_property
    def nll_max(self) -> float:
        """-ln L(mu-hat) = ln(sigma sqrt(2 pi) Phi(mu-hat / sigma))."""
        return float(self.nll(self.mu_hat))

    def nll(self, mu: ArrayLike, expected: bool = False) -> np.ndarray:
        """-ln L(mu); ``expected``: mu-hat = 0 (SModelS's expected likelihood)."""
        lanes, shape, count = _mu_lanes(mu)
        with jax.enable_x64(True):
            sigma, mu_hat = self._parameters
            values = _tg_nll(lanes, jnp.asarray(0.0 if expected else mu_hat), jnp.asarray(sigma))
            return _unpad(values, shape, count)

    def upper_limit(self, expected: bool = False) -> float:
        """The database limit on mu (observed: also the 95 % quantile of the likelihood)."""
        return self.expected_limit if expected else self.observed_limit


# ---- single region ---------------------------------------------------------------------------


@jax.jit
def _sr_nll(mu: jax.Array, s: jax.Array, b: jax.Array, sigma: jax.Array, n: jax.Array) -> Any:
    return single_region.nll(mu, s, b, sigma, n)


_sr_limit = jax.jit(single_region.upper_limit, static_argnames=("expected",))


@dataclass(frozen=True, eq=False)
class SingleRegionLikelihood:
    """One efficiency-map signal region: Poisson x Gaussian background, theta profiled.

    Attributes:
        signal: signal yield at mu = 1 (events).
        background: expected background b.
        background_error: its 1 sigma uncertainty (0: none).
        observed: observed count n.
        label: the result id (for messages).
    """

    #: the kind of likelihood (``protomodel evaluate``'s candidates table)
    kind: ClassVar[str] = "single_region"

    signal: float
    background: float
    background_error: float
    observed: float
    label: str = ""

    def __post_init__(self) -> None:
        values = (self.signal, self.background, self.background_error, self.observed)
        if not all(math.isfinite(v) and v >= 0 for v in values):
            check_signals(self.label, [self.signal], field="signal")
            check_counts(self.label, [self.observed], [self.background], [self.background_error])

    @classmethod
    def _fitted(
        cls, s: float, b: float, sigma: float, n: float, label: str, nll_max: float
    ) -> SingleRegionLikelihood:
        """The likelihood with its maximum already known (from a batched evaluation)."""
        like = cls(s, b, sigma, n, label)
        like.__dict__["nll_max"] = nll_max
        return like

    def _arrays(self, expected: bool) -> tuple[jax.Array, ...]:
        n = self.background if expected else self.observed
        return tuple(
            jnp.asarray(v, dtype=float)
            for v in (self.signal, self.background, self.background_error, n)
        )

    @property
    def mu_hat(self) -> float:
        """(n - b)/s clipped at 0 (exact for s > 0)."""
        raw = self.observed - self.background
        if self.signal > 1e-100:
            raw /= self.signal
        return max(raw, 0.0)

    @cached_property
    def nll_max(self) -> float:
        """-ln L(mu-hat)."""
        return float(self.nll(self.mu_hat))

    def nll(self, mu: ArrayLike, expected: bool = False) -> np.ndarray:
        """-ln L(mu); ``expected``: n replaced by b."""
        lanes, shape, count = _mu_lanes(mu)
        with jax.enable_x64(True):
            return _unpad(_sr_nll(lanes, *self._arrays(expected)), shape, count)

    def upper_limit(self, expected: bool = False) -> float:
        """Asymptotic CLs limit of this likelihood (SModelS reports the database limit for
        single regions; the predictions keep that one)."""
        with jax.enable_x64(True):
            s, b, sigma, _ = self._arrays(False)
            value = _sr_limit(s, b, sigma, jnp.asarray(float(self.observed)), expected=expected)
            return float(value)


# ---- simplified likelihood -------------------------------------------------------------------


@partial(jax.jit, static_argnames=("skewed",))
def _sl_summary(
    n: jax.Array, b: jax.Array, m: simplified.SimplifiedModel, skewed: bool
) -> jax.Array:
    return jnp.stack(simplified.summary(n, b, m, skewed=skewed))


@partial(jax.jit, static_argnames=("skewed",))
def _sl_nll(
    mu: jax.Array, n: jax.Array, m: simplified.SimplifiedModel, skewed: bool
) -> jax.Array:
    def one(x: jax.Array) -> jax.Array:
        return simplified.profiled_nll(x, n, m, skewed=skewed)

    return jax.vmap(one)(mu)


@dataclass(frozen=True, eq=False)
class SimplifiedLikelihood:
    """Several regions with a background covariance (linear or skewed simplified likelihood).

    Build it with :meth:`from_covariance`. The arrays are padded to :func:`padded_size`.

    Attributes:
        model: the model arrays (signal at mu = 1 included).
        observed: observed counts (padding 0).
        background: expected backgrounds (padding 0).
        label: the result id (for messages).
        skewed: whether the model has the quadratic (third-moment) term (derived).
    """

    #: the kind of likelihood (``protomodel evaluate``'s candidates table)
    kind: ClassVar[str] = "simplified"

    model: simplified.SimplifiedModel
    observed: np.ndarray
    background: np.ndarray
    label: str = ""
    skewed: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "skewed", bool(np.any(np.asarray(self.model.c_over_b2) != 0)))

    @classmethod
    def from_covariance(
        cls,
        signal: ArrayLike,
        background: ArrayLike,
        covariance: ArrayLike,
        observed: ArrayLike,
        third_moment: ArrayLike | None = None,
        *,
        label: str = "",
    ) -> SimplifiedLikelihood:
        """Check the inputs and build the model (skewed if third moments are given and not all
        ~0, as SModelS)."""
        n, b = check_counts(label, observed, background)
        s = check_signals(label, signal, field="signal")
        if not (len(s) == len(b) == len(n)):
            problem = f"{len(s)} signals for {len(b)} backgrounds and {len(n)} observed counts"
            raise StatisticsInputError(label, "signal", problem, hint="give one per region")
        cov = check_covariance(label, covariance, len(b))
        third = None
        if third_moment is not None and np.sum(np.abs(np.asarray(third_moment))) >= 1e-10:
            third = check_third_moments(label, third_moment, np.diag(cov))
        size = padded_size(len(b))
        with np.errstate(invalid="ignore", divide="ignore"):
            try:
                model = simplified.make_model(s, b, cov, third, xp=np)
            except np.linalg.LinAlgError:
                model = None
        if model is None or not (
            np.isfinite(float(model.log_det)) and np.all(np.isfinite(model.v_inv))
        ):
            problem = "the skewed model's covariance V is not positive definite"
            raise StatisticsInputError(label, "third_moment", problem)
        with jax.enable_x64(True):
            # the large arrays stay on the device; the signal (changed per prediction) and C/B^2
            # (read in Python: linear or skewed) stay NumPy
            padded = simplified.pad_model(model, size)
            model = jax.tree_util.tree_map(jnp.asarray, padded)
            model = model._replace(s=padded.s, c_over_b2=padded.c_over_b2)
        pad = np.zeros(size - len(b))
        return cls(model, np.concatenate([n, pad]), np.concatenate([b, pad]), label)

    def with_signal(self, signal: ArrayLike) -> SimplifiedLikelihood:
        """The same result with another signal (checked; unpadded or padded)."""
        s = check_signals(self.label, signal, field="signal")
        size = self.model.s.shape[0]
        if len(s) > size:
            problem = f"{len(s)} signals for {int(np.sum(self.model.mask))} regions"
            raise StatisticsInputError(self.label, "signal", problem, hint="give one per region")
        s = np.concatenate([s, np.zeros(size - len(s))])
        return SimplifiedLikelihood(
            self.model._replace(s=s), self.observed, self.background, self.label
        )

    @cached_property
    def summary(self) -> simplified.Summary:
        """nll at 1, 0 and mu-hat, mu-hat and both limits (one compiled call)."""
        with jax.enable_x64(True):
            values = _sl_summary(
                self.observed, self.background, self.model, skewed=self.skewed
            )
            return simplified.Summary(*np.asarray(values).tolist())

    @property
    def mu_hat(self) -> float:
        """Best fit (>= 0)."""
        return self.summary.mu_hat

    @property
    def nll_max(self) -> float:
        """-ln L(mu-hat)."""
        return self.summary.nll_max

    def nll(self, mu: ArrayLike, expected: bool = False) -> np.ndarray:
        """-ln L(mu); ``expected``: counts replaced by the backgrounds."""
        lanes, shape, count = _mu_lanes(mu)
        data = self.background if expected else self.observed
        with jax.enable_x64(True):
            return _unpad(_sl_nll(lanes, data, self.model, self.skewed), shape, count)

    def upper_limit(self, expected: bool = False) -> float:
        """Asymptotic CLs limit with the post-fit Asimov data, as SModelS (NaN if it fails)."""
        return self.summary.expected_limit if expected else self.summary.limit
