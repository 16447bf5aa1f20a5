"""theta -> the signal yields of every result in a combination, one pure ``jax.numpy`` function.

The chain is the prediction kernel's (:mod:`protomodels.theory.signals`) with the cross sections
made functions of the masses:

    sigma(theta) = sigma0 x R(m_bar(theta)) / R(m_bar0) x exp(ln ssm - ln ssm0)   (per pair, sqrt s)

where R is the reference table of the pair's process at that sqrt(s) (interpolated in ln sigma,
as the predictions do, at the mean mass of the pair) and sigma0 the evaluated model's cross
section (so explicit SLHA cross sections keep their values at the starting point and move with
the masses as the tables do). Then sigma x BR x efficiency per data set from the kernel, with
the grid values *not* rounded to SModelS's 6 digits (so the function is smooth inside each
simplex), and yields = luminosity x signal.

Derivatives: the grid interpolation is linear inside each Delaunay simplex, so d(efficiency)/d
(mass) is the gradient of that simplex's plane; on a face (a set of measure zero) it is the
gradient of the simplex that the kernel's point location picks. The cross-section tables are
linear in ln sigma between their mass points, likewise. The structure -- which topologies pass the
sigmacut, which mass gaps are compressed, which family member and which branch assignment a data
set takes -- is that of the starting point and is held fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from protomodels.inference.parameters import (
    ParameterSpace,
    SpaceArrays,
    branchings_of,
    log_multiplier_shifts_of,
    masses_of,
)
from protomodels.theory.predictions import Predictor
from protomodels.theory.protomodel import Protomodel
from protomodels.theory.signals import Kernel, signals
from protomodels.theory.xsec import SQRTS, channel_table

__all__ = ["SignalArrays", "SignalFunction", "signal_function"]


def __dir__() -> list[str]:
    return __all__


class SignalArrays(NamedTuple):
    """The constant arrays of a :class:`SignalFunction` (a JAX pytree, passed to jit)."""

    kernel: Kernel
    space: SpaceArrays  # theta -> masses, branching ratios, multiplier shifts
    sigma0: jax.Array  # (pairs, 2) fb at the starting point
    table_mass: jax.Array  # (pairs, 2, L) table masses (padded beyond the last one)
    table_value: jax.Array  # (pairs, 2, L) ln sigma or sigma (padded with the last value)
    has_table: jax.Array  # (pairs, 2) a reference table serves the pair
    pair_slots: jax.Array  # (pairs, 2) mass slots of the two particles
    value0: jax.Array  # (pairs, 2) the tables' (ln) sigma at the starting point's mean mass


@dataclass(frozen=True, eq=False)
class SignalFunction:
    """theta -> (datasets + 1,) sigma x BR x efficiency per data-set slot (fb; the last slot 0).

    Attributes:
        space: the parameters.
        arrays: the constant arrays (pass them to :meth:`__call__`, so jit does not embed them).
        slots: (result index, data-set index) -> slot.
        n_datasets, n_groups: the kernel's static sizes.
        log: the tables are interpolated in ln sigma.
    """

    space: ParameterSpace
    arrays: SignalArrays
    slots: dict[tuple[int, int], int]
    n_datasets: int
    n_groups: int
    log: bool = True

    def sigma(self, theta: jax.Array, arrays: SignalArrays) -> jax.Array:
        """(pairs, 2) production cross sections (fb) at theta."""
        return cross_sections(theta, arrays, self.log)

    def __call__(self, theta: jax.Array, arrays: SignalArrays) -> jax.Array:
        return signals_at(theta, arrays, self.n_datasets, self.n_groups, self.log)

    def values_and_jacobian(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(signals (datasets + 1,), d signals / d theta (datasets + 1, n)) at theta, from one
        compiled function shared by every model of the same capacities (forward mode)."""
        n = len(theta)
        padded = np.zeros(len(self.arrays.space.theta0))
        padded[:n] = theta
        with jax.enable_x64(True):
            values, jac = _values_and_jacobian(jnp.asarray(padded), self.arrays, self.n_datasets,
                                               self.n_groups, self.log)
        return np.asarray(values), np.asarray(jac)[:, :n]

    @property
    def zero_slot(self) -> int:
        """The slot that is always 0 (data sets without signal)."""
        return self.n_datasets

    def slot(self, result: int, dataset: int) -> int:
        """The slot of a data set (:attr:`zero_slot` where it has no signal)."""
        return self.slots.get((result, dataset), self.zero_slot)


def cross_sections(theta: jax.Array, arrays: SignalArrays, log: bool = True) -> jax.Array:
    """(pairs, 2) production cross sections (fb) at theta (see the module docstring)."""
    masses = masses_of(theta, arrays.space)
    bar = 0.5 * (masses[arrays.pair_slots[:, 0]] + masses[arrays.pair_slots[:, 1]])

    def table(m: jax.Array, xs: jax.Array, ys: jax.Array) -> jax.Array:
        return jnp.interp(m, xs, ys)

    rows = jax.vmap(jax.vmap(table, in_axes=(None, 0, 0)), in_axes=(0, 0, 0))
    now = rows(bar, arrays.table_mass, arrays.table_value)
    then = arrays.value0
    ratio = jnp.exp(now - then) if log else now / jnp.where(then > 0, then, 1.0)
    ratio = jnp.where(arrays.has_table, ratio, 1.0)
    shift = jnp.exp(log_multiplier_shifts_of(theta, arrays.space))
    return arrays.sigma0 * ratio * shift[:, None]


def signals_at(
    theta: jax.Array, arrays: SignalArrays, n_datasets: int, n_groups: int, log: bool = True
) -> jax.Array:
    """(datasets + 1,) sigma x BR x efficiency per data-set slot (fb; the last slot 0) at
    theta (pure; ``n_datasets``, ``n_groups``, ``log`` static)."""
    out = signals(
        arrays.kernel, cross_sections(theta, arrays, log), branchings_of(theta, arrays.space),
        masses_of(theta, arrays.space), n_datasets, n_groups, rounded=False,
    ).signals
    return jnp.concatenate([out, jnp.zeros(1, out.dtype)])


def _with_jacobian(theta: jax.Array, arrays: SignalArrays, n_datasets: int, n_groups: int,
                   log: bool) -> tuple[jax.Array, jax.Array]:
    def both(t: jax.Array) -> tuple[jax.Array, jax.Array]:
        value = signals_at(t, arrays, n_datasets, n_groups, log)
        return value, value

    jac, value = jax.jacfwd(both, has_aux=True)(theta)
    return value, jac


_values_and_jacobian = jax.jit(_with_jacobian, static_argnums=(2, 3, 4))


def _tables(predictor: Predictor, pairs: tuple[tuple[int, int], ...], rows: int,
            log: bool) -> tuple:
    """(masses, values, has) of the pairs' reference tables, (rows, 2, L): L the longest
    table of all (one shape for every model), padding beyond the last mass."""
    tables = predictor.tables
    found = []
    for pair in pairs:
        process = channel_table(pair)
        found.append([None if process is None else tables[(process, s)] for s in SQRTS])
    found += [[None, None]] * (rows - len(pairs))
    length = max(len(t.masses) for t in tables.values())
    mass = np.zeros((rows, 2, length))
    value = np.zeros((rows, 2, length))
    has = np.zeros((rows, 2), bool)
    for j, row in enumerate(found):
        for k, t in enumerate(row):
            if t is None:
                mass[j, k] = np.arange(length, dtype=float)
                continue
            n = len(t.masses)
            ys = np.log(t.xsec_fb) if log else t.xsec_fb
            mass[j, k, :n] = t.masses
            mass[j, k, n:] = t.masses[-1] + 1e6 * np.arange(1, length - n + 1)
            value[j, k, :n] = ys
            value[j, k, n:] = ys[-1]
            has[j, k] = True
    return mass, value, has


def signal_function(predictor: Predictor, model: Protomodel, *, padded: bool = True
                    ) -> SignalFunction:
    """The :class:`SignalFunction` of ``model`` (its structure: decomposition and matches);
    ``padded``: its arrays at capacities, every grid dimension present (models of other
    structure share its compiled code), else as small as the model needs (the same slots)."""
    kernel, (sigma, _, masses), n_datasets, n_groups, slots = predictor.signal_kernel(
        [model], padded=padded)
    rounded = replace(model, masses={p: round(m, 1) for p, m in model.masses.items()})
    plan_pairs = tuple(sorted(predictor.cross_sections(rounded)))  # the plan's sigma rows
    space = ParameterSpace.of(model, plan_pairs)
    log = predictor.settings.interpolation == "log"
    n_pairs = sigma.shape[0]
    mass, value, has = _tables(predictor, plan_pairs, n_pairs, log)
    slot_of = {p: i for i, p in enumerate(space.particles)}
    pair_slots = np.zeros((n_pairs, 2), dtype=np.int64)
    for j, (a, b) in enumerate(plan_pairs):
        pair_slots[j] = slot_of[abs(a)], slot_of[abs(b)]
    masses0 = np.zeros(masses.shape[0])
    masses0[: len(space.particles)] = [model.masses[p] for p in space.particles]
    bar0 = 0.5 * (masses0[pair_slots[:, 0]] + masses0[pair_slots[:, 1]])
    theta_capacity = 1 << max(4, (len(space) - 1).bit_length()) if padded else len(space)
    with jax.enable_x64(True):
        arrays = SignalArrays(
            kernel=kernel,
            space=jax.tree_util.tree_map(jnp.asarray, space.arrays(
                masses.shape[0], kernel_branchings(kernel), n_pairs, theta_capacity)),
            sigma0=jnp.asarray(np.asarray(sigma, dtype=float)),
            table_mass=jnp.asarray(mass), table_value=jnp.asarray(value),
            has_table=jnp.asarray(has), pair_slots=jnp.asarray(pair_slots),
            value0=jnp.asarray([[np.interp(b, mass[j, k], value[j, k]) for k in range(2)]
                                for j, b in enumerate(bar0)]).reshape(n_pairs, 2),
        )
    own = {(r, d): s for (m, r, d), s in slots.items() if m == 0}
    return SignalFunction(space, arrays, own, n_datasets, n_groups, log)


def kernel_branchings(kernel: Kernel) -> int:
    """The length of the branching-ratio array a padded kernel indexes (its padding index + 1)."""
    decays = np.asarray(kernel.topology_decays)
    return int(decays.max()) + 1 if decays.size else 0
