"""The continuous parameters of one protomodel, as one vector theta.

A protomodel's discrete structure (which particles, which decay channels, which production
pairs) is fixed; what varies continuously is

- the mass of every active particle (GeV),
- the natural log of the signal-strength multiplier of every production pair with a cross
  section (``ln ssm``; the reference tables times ``exp(ln ssm)``),
- the branching ratios of every particle with two or more channels, on the simplex: the
  channel with the largest BR at the starting point is the dependent one
  (1 - the sum of the others), so the free coordinates are the other channels' BRs.

:class:`ParameterSpace` maps theta to the three parameter arrays of the prediction kernel
(:mod:`protomodels.theory.signals`: masses, branching ratios, multiplier shifts in the layout of
:class:`~protomodels.theory.plan.ModelArrays`) as pure ``jax.numpy`` functions, and back to a
:class:`~protomodels.theory.protomodel.Protomodel`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from protomodels.theory.particles import NAMES
from protomodels.theory.protomodel import Protomodel

__all__ = [
    "BRANCHING", "LOG_MULTIPLIER", "MASS", "Parameter", "ParameterSpace", "SpaceArrays",
    "branchings_of", "log_multiplier_shifts_of", "masses_of",
]


def __dir__() -> list[str]:
    return __all__


MASS, LOG_MULTIPLIER, BRANCHING = "mass", "log_multiplier", "branching"
Pair = tuple[int, int]


def particle_name(pdg: int) -> str:
    """A short readable name (``~chi10``; the PDG id where there is none)."""
    name = NAMES.get(abs(pdg), str(abs(pdg)))
    return name if pdg > 0 else name.replace("+", "-") if "+" in name else f"{name}*"


class SpaceArrays(NamedTuple):
    """The index arrays of a :class:`ParameterSpace` (a JAX pytree; padding: -1 / 1 / 0).

    Attributes:
        theta0: theta at the starting model.
        mass_index: theta index of each mass slot.
        pair_index: theta index of each cross-section row's ln ssm.
        br_index: theta index of each free branching ratio.
        br_dependent: the dependent channel of its particle.
        br_group: the particle of each branching-ratio slot.
        br_fixed: the BR of single-channel and padding slots (1), else 0.
    """

    theta0: jax.Array
    mass_index: jax.Array
    pair_index: jax.Array
    br_index: jax.Array
    br_dependent: jax.Array
    br_group: jax.Array
    br_fixed: jax.Array


def masses_of(theta: jax.Array, a: SpaceArrays) -> jax.Array:
    """Masses in the plan's layout (padding 0)."""
    idx = jnp.asarray(a.mass_index)
    return jnp.where(idx >= 0, theta[jnp.maximum(idx, 0)], 0.0)


def branchings_of(theta: jax.Array, a: SpaceArrays) -> jax.Array:
    """Branching ratios in the plan's layout (padding 1): the dependent channel of each
    particle is 1 - the sum of its other channels."""
    idx = jnp.asarray(a.br_index)
    group = jnp.asarray(a.br_group)
    free = jnp.where(idx >= 0, theta[jnp.maximum(idx, 0)], 0.0)
    sums = jax.ops.segment_sum(free, group, num_segments=group.shape[0])
    return jnp.where(jnp.asarray(a.br_dependent), 1.0 - sums[group], free) + jnp.asarray(
        a.br_fixed)


def log_multiplier_shifts_of(theta: jax.Array, a: SpaceArrays) -> jax.Array:
    """ln ssm - its starting value per cross-section row (padding 0)."""
    idx = jnp.asarray(a.pair_index)
    safe = jnp.maximum(idx, 0)
    return jnp.where(idx >= 0, theta[safe] - jnp.asarray(a.theta0)[safe], 0.0)


@dataclass(frozen=True)
class Parameter:
    """One coordinate of theta.

    Attributes:
        name: readable label (``m(~chi10)``, ``ln ssm(~chi20,~chi1+)``,
            ``BR(~chi1+ > ~chi10 24)``).
        kind: :data:`MASS`, :data:`LOG_MULTIPLIER` or :data:`BRANCHING`.
        value: its value at the starting point.
        particle: the particle (masses and branching ratios), else 0.
        pair: the production pair (multipliers), else None.
        channel: the decay channel's index in the particle's decays (branching ratios), else -1.
    """

    name: str
    kind: str
    value: float
    particle: int = 0
    pair: Pair | None = None
    channel: int = -1


@dataclass(frozen=True, eq=False)
class ParameterSpace:
    """theta <-> kernel arrays for one protomodel (structure fixed).

    Attributes:
        model: the starting model.
        parameters: the coordinates of theta.
        particles: the mass slots (sorted PDG ids, as ``ModelArrays``).
        pairs: the cross-section rows (production pairs, sorted).
        decays: the branching-ratio slots ((mother, channel index), as ``ModelArrays``).
    """

    model: Protomodel
    parameters: tuple[Parameter, ...]
    particles: tuple[int, ...]
    pairs: tuple[Pair, ...]
    decays: tuple[tuple[int, int], ...]
    _mass_index: np.ndarray  # (P,) theta index of each mass slot
    _pair_index: np.ndarray  # (pairs,) theta index of each pair's ln ssm, -1: none
    _br_index: np.ndarray  # (B,) theta index of each BR slot, -1: fixed or dependent
    _br_dependent: np.ndarray  # (B,) True for the dependent channel of its mother
    _br_group: np.ndarray  # (B,) index of the slot's mother among the BR slots' mothers
    _br_fixed: np.ndarray  # (B,) BR of single-channel slots (1), else 0

    @classmethod
    def of(cls, model: Protomodel, pairs: tuple[Pair, ...]) -> ParameterSpace:
        """The space of ``model`` whose cross-section rows are ``pairs`` (those with a cross
        section, as the plan has them)."""
        params: list[Parameter] = []
        particles = tuple(sorted(model.masses))
        mass_index = np.arange(len(particles))
        for p in particles:
            params.append(Parameter(f"m({particle_name(p)})", MASS, float(model.masses[p]), p))
        pair_index = np.full(len(pairs), -1)
        for j, pair in enumerate(pairs):
            pair_index[j] = len(params)
            value = _multiplier(model, pair)
            names = ",".join(particle_name(p) for p in pair)
            params.append(Parameter(f"ln ssm({names})", LOG_MULTIPLIER, math.log(value),
                                    pair=pair))
        decays = tuple((m, i) for m in sorted(model.decays) for i in range(len(model.decays[m])))
        br_index = np.full(len(decays), -1)
        dependent = np.zeros(len(decays), bool)
        fixed = np.zeros(len(decays))
        mothers = sorted(model.decays)
        group = np.asarray([mothers.index(m) for m, _ in decays], dtype=int)
        for mother in mothers:
            channels = model.decays[mother]
            slots = [k for k, (m, _) in enumerate(decays) if m == mother]
            if len(channels) <= 1:  # (a stable particle of an SLHA file has none)
                fixed[slots] = 1.0
                continue
            largest = max(range(len(channels)), key=lambda i: (channels[i].br, -i))
            for k in slots:
                i = decays[k][1]
                if i == largest:
                    dependent[k] = True
                    continue
                br_index[k] = len(params)
                d = channels[i]
                label = f"BR({particle_name(mother)} > " + " ".join(
                    [particle_name(x) for x in d.bsm] + [str(x) for x in d.sm]) + ")"
                params.append(Parameter(label, BRANCHING, float(d.br), mother, channel=i))
        return cls(model, tuple(params), particles, tuple(pairs), decays, mass_index,
                   pair_index, br_index, dependent, group, fixed)

    # -- theta ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.parameters)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    @property
    def kinds(self) -> np.ndarray:
        return np.asarray([p.kind for p in self.parameters])

    @property
    def theta0(self) -> np.ndarray:
        """theta at the starting model."""
        return np.asarray([p.value for p in self.parameters], dtype=float)

    def indices(self, kind: str) -> np.ndarray:
        """theta indices of one kind of parameter."""
        return np.flatnonzero(self.kinds == kind)

    # -- kernel arrays (pure jax.numpy) -----------------------------------------------------
    def arrays(self, masses: int = 0, branchings: int = 0, pairs: int = 0,
               theta: int = 0) -> SpaceArrays:
        """The index arrays of the space, padded to at least the given lengths (the plan's
        layout: masses P + 1, branching ratios B + 1, cross-section rows; theta n)."""
        n_m = max(masses, len(self.particles) + 1)
        n_b = max(branchings, len(self.decays) + 1)
        n_p = max(pairs, len(self.pairs))
        n_t = max(theta, len(self.parameters))

        def padded(a: np.ndarray, size: int, fill: float, dtype: type) -> np.ndarray:
            out = np.full(size, fill, dtype=dtype)
            out[: len(a)] = a
            return out

        groups = self._br_group
        spare = int(groups.max()) + 1 if len(groups) else 0
        return SpaceArrays(
            theta0=padded(self.theta0, n_t, 0.0, float),
            mass_index=padded(self._mass_index, n_m, -1, np.int64),
            pair_index=padded(self._pair_index, n_p, -1, np.int64),
            br_index=padded(self._br_index, n_b, -1, np.int64),
            br_dependent=padded(self._br_dependent, n_b, False, bool),
            br_group=padded(groups, n_b, spare, np.int64),
            br_fixed=padded(self._br_fixed, n_b, 1.0, float),
        )

    def masses(self, theta: jax.Array) -> jax.Array:
        """(P + 1,) masses in the plan's layout (last entry 0: padding)."""
        return masses_of(theta, self.arrays())

    def branchings(self, theta: jax.Array) -> jax.Array:
        """(B + 1,) branching ratios in the plan's layout (last entry 1: padding); the
        dependent channel of each particle is 1 - the sum of its other channels."""
        return branchings_of(theta, self.arrays())

    def log_multiplier_shifts(self, theta: jax.Array) -> jax.Array:
        """(pairs,) ln ssm - its starting value, per cross-section row."""
        return log_multiplier_shifts_of(theta, self.arrays())

    def valid(self, theta: jax.Array, minimum_gap: float = 0.0) -> jax.Array:
        """Whether theta is a model: positive masses, every mother heavier than its daughters
        (by ``minimum_gap``), branching ratios in [0, 1]."""
        m = self.masses(theta)[:-1]
        br = self.branchings(theta)[:-1]
        ok = jnp.all(m > 0) & jnp.all((br >= 0) & (br <= 1))
        slot = {p: i for i, p in enumerate(self.particles)}
        heavy, light = [], []
        for mother, i in self.decays:
            for daughter in self.model.decays[mother][i].bsm:
                heavy.append(slot[mother])
                light.append(slot[abs(daughter)])
        if heavy:
            ok = ok & jnp.all(m[jnp.asarray(heavy)] - m[jnp.asarray(light)] >= minimum_gap)
        return ok

    # -- back to a model --------------------------------------------------------------------
    def model_at(self, theta: np.ndarray) -> Protomodel:
        """The protomodel at theta (same structure; multipliers or explicit cross sections
        scaled by exp of the ln ssm shifts)."""
        theta = np.asarray(theta, dtype=float)
        masses = {p: float(theta[i]) for p, i in zip(self.particles, self._mass_index,
                                                    strict=True)}
        with jax.enable_x64(True):
            br = np.asarray(self.branchings(jnp.asarray(theta)))[:-1]
            shifts = np.asarray(self.log_multiplier_shifts(jnp.asarray(theta)))
        br = np.clip(br, 0.0, 1.0)
        decays = {}
        for mother in sorted(self.model.decays):
            channels = self.model.decays[mother]
            decays[mother] = tuple(
                replace(d, br=float(br[self.decays.index((mother, i))]))
                for i, d in enumerate(channels)
            )
        factors = {pair: math.exp(float(s)) for pair, s in zip(self.pairs, shifts, strict=True)}
        model = self.model
        if model.xsecs is not None:
            xsecs = {p: {s: v * factors.get(p, 1.0) for s, v in by.items()}
                     for p, by in model.xsecs.items()}
            return replace(model, masses=masses, decays=decays, xsecs=xsecs)
        ssm = dict(model.ssm)
        for pair, f in factors.items():
            ssm[pair] = _multiplier(model, pair) * f
        return replace(model, masses=masses, decays=decays, ssm=ssm)


def _multiplier(model: Protomodel, pair: Pair) -> float:
    """The pair's multiplier (1 where none is given; explicit cross sections count as 1: their
    ln ssm is a shift from them)."""
    if model.xsecs is not None:
        return 1.0
    return float(model.ssm.get(pair, 1.0))
