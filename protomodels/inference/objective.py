"""T_L and K of one protomodel as differentiable functions of its continuous parameters.

At a fixed combination (the best one of the evaluated model) and at signal strength 1 on the
evaluated model (which the evaluation has already rescaled by mu-hat, so that the walk's models
carry mu-hat in their multipliers and mu is not a separate parameter)::

    T_L(theta) = 2 sum_i [nll_i(0) - nll_i(s_i(theta))],    K(theta) = T_L(theta) + 2 ln pi

with s_i the yields of member i (:mod:`~protomodels.inference.yields`) and nll_i its profiled
-ln L (:mod:`~protomodels.inference.profiled`). The prior pi counts particles, channels and
distinct multipliers: it is constant under continuous changes (its gradient is 0; the penalty
steps of the reference builder are not smoothed). At theta0, T_L and K are the evaluation's.

Second derivatives. The yields are piecewise linear in the masses (Delaunay interpolation) and
products of cross sections and branching ratios, so their second derivatives vanish or are small
almost everywhere; the curvature of -ln L comes from the likelihood's curvature in the yields.
Two forms are given (:meth:`Objective.hessian`):

- ``"gauss-newton"`` (default, the Fisher form): ``H = sum_i J_i^T F_i J_i`` with J_i = ds_i/dtheta
  (forward mode) and F_i the profiled curvature of nll_i in the yields (exact, see
  :func:`~protomodels.inference.profiled.newton_profiled`); positive semi-definite when the F_i
  are;
- ``"exact"``: the autodiff Hessian of sum_i nll_i(s_i(theta)) inside the current simplices, i.e.
  Gauss-Newton plus sum_i g_i . d^2 s_i/dtheta^2.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from protomodels.exceptions import ProtomodelsError
from protomodels.inference.parameters import ParameterSpace
from protomodels.inference.profiled import YieldLikelihood, yield_likelihood
from protomodels.inference.yields import SignalArrays, SignalFunction, signal_function

__all__ = ["Member", "Objective", "objective_of"]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True, eq=False)
class Member:
    """One result of the combination: its likelihood in the yields and where its yields come
    from (``slots`` of the signal function, times ``lumi``)."""

    likelihood: YieldLikelihood
    slots: np.ndarray
    lumi: float


class _Data(dict):
    """(internal) the arrays passed to the jitted functions."""


@dataclass(frozen=True, eq=False)
class Objective:
    """T_L(theta), K(theta), their gradients and Hessians at a fixed combination.

    Attributes:
        signal: theta -> signals per data set.
        members: the combination's results.
        log_prior: 2 ln pi (constant).
        label: the model's name.
        compact: builds the unpadded signal function of the same model (smaller arrays: the
            functions compiled for this model alone, :meth:`total_nll` for NUTS and the exact
            Hessian, run faster on it); None: ``signal`` serves.
    """

    signal: SignalFunction
    members: tuple[Member, ...]
    log_prior: float
    label: str = "protomodel"
    compact: Callable[[], SignalFunction] | None = None

    @property
    def pure(self) -> SignalFunction:
        """The signal function of the pure path (:meth:`total_nll`, :meth:`k_of`): the compact
        one when there is one (built once), else :attr:`signal`."""
        if self.compact is None:
            return self.signal
        if "_pure" not in self.__dict__:
            self.__dict__["_pure"] = self.compact()
        return self.__dict__["_pure"]

    # -- pure functions ---------------------------------------------------------------------
    @property
    def space(self) -> ParameterSpace:
        return self.signal.space

    @property
    def theta0(self) -> np.ndarray:
        return self.space.theta0

    @property
    def nll_sm(self) -> float:
        """sum_i -ln L_i at zero signal."""
        return float(sum(m.likelihood.nll_sm for m in self.members))

    def yields(self, theta: jax.Array, arrays: SignalArrays) -> list[jax.Array]:
        """The yields of every member at theta (pure)."""
        out = self.pure(theta, arrays)
        return [m.lumi * out[jnp.asarray(m.slots)] for m in self.members]

    def total_nll(self, theta: jax.Array, arrays: SignalArrays) -> jax.Array:
        """sum_i -ln L_i(s_i(theta)) (pure; ``arrays``: those of :attr:`pure`)."""
        total = jnp.zeros((), theta.dtype)
        for m, s in zip(self.members, self.yields(theta, arrays), strict=True):
            total = total + m.likelihood.nll(s)
        return total

    def k_of(self, theta: jax.Array, arrays: SignalArrays) -> jax.Array:
        """K(theta) (pure)."""
        return 2.0 * (self.nll_sm - self.total_nll(theta, arrays)) + self.log_prior

    # -- compiled entry points (host arrays in and out) --------------------------------------
    def _compiled(self, name: str) -> Any:
        cache = self.__dict__.setdefault("_jit", {})
        if name not in cache:
            if name == "nll":
                fn = jax.jit(self.total_nll)
            elif name == "exact":
                fn = jax.jit(jax.hessian(self.total_nll))
            else:  # pragma: no cover - internal names only
                raise KeyError(name)
            cache[name] = fn
        return cache[name]

    def _context(self) -> Any:
        """x64, and pyhf's JAX backend while a pyhf member is traced."""
        if any(m.likelihood.kind == "pyhf" for m in self.members):
            from protomodels.statistics.runtime import pyhf_jax

            return pyhf_jax()
        return jax.enable_x64(True)

    def _theta(self, theta: np.ndarray | None) -> jax.Array:
        t = self.theta0 if theta is None else np.asarray(theta, dtype=float)
        if t.shape != self.theta0.shape or not np.all(np.isfinite(t)):
            msg = f"theta must be {len(self.theta0)} finite numbers ({', '.join(self.space.names)})"
            raise ProtomodelsError(msg)
        return jnp.asarray(t)

    def nll(self, theta: np.ndarray | None = None) -> float:
        """sum_i -ln L_i at theta (default theta0)."""
        with self._context():
            return float(self._compiled("nll")(self._theta(theta), self.pure.arrays))

    def t_l(self, theta: np.ndarray | None = None) -> float:
        """T_L at theta."""
        return 2.0 * (self.nll_sm - self.nll(theta))

    def k(self, theta: np.ndarray | None = None) -> float:
        """K at theta."""
        return self.t_l(theta) + self.log_prior

    def derivatives(self, theta: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
        """(sum_i nll_i, its gradient, its Gauss-Newton Hessian) at theta, composed on the
        host from the yields' Jacobian (forward mode) and each likelihood's derivatives in its
        yields: compiled code shared by all models of the same capacities (no compilation per
        model once warm)."""
        t = np.asarray(self._theta(theta))
        values, jac = self._values_and_jacobian(t)
        total, grad = 0.0, np.zeros(len(t))
        hess = np.zeros((len(t), len(t)))
        for m in self.members:
            s = m.lumi * values[m.slots]
            j = m.lumi * jac[m.slots]
            value, g, h = m.likelihood.derivatives(s)
            total += value
            grad += j.T @ g
            hess += j.T @ h @ j
        return total, grad, 0.5 * (hess + hess.T)

    def _values_and_jacobian(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        own = getattr(self.signal, "values_and_jacobian", None)
        if own is not None:
            return own(theta)
        with self._context():  # a signal function without its own compiled Jacobian
            t = jnp.asarray(theta)
            values = self.signal(t, self.signal.arrays)
            jac = jax.jacfwd(self.signal)(t, self.signal.arrays)
        return np.asarray(values), np.asarray(jac)

    def gradient(self, theta: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """(K, dK/dtheta) at theta (see :meth:`derivatives`)."""
        total, grad, _ = self.derivatives(theta)
        return 2.0 * (self.nll_sm - total) + self.log_prior, -2.0 * grad

    def jacobian(self, theta: np.ndarray | None = None) -> np.ndarray:
        """(yields, parameters) d(yields of all members, concatenated)/dtheta."""
        _, jac = self._values_and_jacobian(np.asarray(self._theta(theta)))
        return np.concatenate([m.lumi * jac[m.slots] for m in self.members])

    def hessian(self, theta: np.ndarray | None = None, method: str = "gauss-newton") -> np.ndarray:
        """Hessian of sum_i -ln L_i (= -1/2 the Hessian of T_L and of K) at theta; ``method``:
        ``"gauss-newton"`` or ``"exact"`` (see the module docstring)."""
        if method == "exact":
            with self._context():
                h = self._compiled("exact")(self._theta(theta), self.pure.arrays)
            return np.asarray(h)
        if method != "gauss-newton":
            raise ProtomodelsError(f"hessian method {method!r}: use 'gauss-newton' or 'exact'")
        return self.derivatives(theta)[2]


def _member(evaluation: Any, database: Any, signal: SignalFunction, analysis: str,
            dataset: str | None) -> Member:
    label = f"{analysis}:{dataset}"
    found = [
        p for p in evaluation.predictions
        if p.analysis == analysis and p.dataset == dataset
        and p.statistics is not None and p.statistics.likelihood is not None
    ]
    if not found:
        raise ProtomodelsError(f"{label}: the combination member has no prediction with a "
                               "likelihood in the evaluation")
    p = found[0]
    like = yield_likelihood(p, label)
    index = {r.result_id: i for i, r in enumerate(database.results)}
    r = index[p.result_id]
    result = database.results[r]
    ids = [d.data_id or d.dataset_id for d in result.datasets]
    if like.kind == "single_region":
        slots = [signal.slot(r, ids.index(p.dataset))]
    elif like.kind == "simplified":
        slots = [signal.slot(r, d) for d in range(len(ids))]
        slots += [signal.zero_slot] * (like.size - len(slots))
    else:  # pyhf: per bin of the chosen workspace
        index_of = p.statistics.likelihood.workspace.signal_index
        slots = [signal.slot(r, int(d)) if d >= 0 else signal.zero_slot for d in index_of]
    return Member(like, np.asarray(slots, dtype=int), float(p.lumi_ifb))


def objective_of(evaluator: Any, evaluation: Any,
                 combination: Sequence[tuple[str, str | None]] | None = None) -> Objective:
    """The objective of an evaluated model (:class:`~protomodels.evaluation.Evaluation` from
    ``evaluator``), at its best combination (or the given (analysis, data set) members).

    Raises:
        ProtomodelsError: the evaluation has no K or no combination, or a member has no
            likelihood that can be differentiated.
    """
    k = evaluation.k
    if k is None or not math.isfinite(evaluation.K):
        raise ProtomodelsError(f"no K to differentiate: {evaluation.reason}")
    members = combination if combination is not None else [
        (m.analysis, m.dataset) for m in k.combination
    ]
    if not members:
        raise ProtomodelsError("the model has no combination (T_L = 0): nothing to differentiate")
    signal = signal_function(evaluator.predictor, evaluation.model)
    built = tuple(_member(evaluation, evaluator.database, signal, a, d) for a, d in members)
    log_prior = 2.0 * math.log(k.prior.value) if k.prior.value > 0 else -math.inf

    def compact() -> SignalFunction:
        return signal_function(evaluator.predictor, evaluation.model, padded=False)

    return Objective(signal, built, log_prior, getattr(evaluation.model, "name", "protomodel"),
                     compact)
