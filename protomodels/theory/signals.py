"""From model parameters to signals: the numeric core of the predictions, in ``jax.numpy``.

The structure of a prediction -- which topologies a model has, which txnames of which data sets
they match, with which particles on which axes -- is fixed by the decomposition and the matching
(:mod:`protomodels.theory.plan` turns it into index arrays). Given that structure, everything
numeric is a pure function of three parameter arrays, jittable, batched over any number of
models (their items are simply concatenated) and differentiable inside a simplex:

- ``sigma`` (pairs, 2): production cross sections in fb at 8 and 13 TeV,
- ``br`` (decays + 1,): branching ratios, the last entry 1 (padding),
- ``masses`` (particles + 1,): GeV, the last entry 0 (padding).

:func:`item_values`: the weight sigma x BR of every matched topology, its data vector (of the two
branch assignments, the lexicographically larger vector, as SModelS's ``TxName.hasSMSas``) and the
interpolated upper limit or efficiency there. :func:`aggregate`: per data set, the sum of
coefficient x sigma x BR x efficiency over the matched topologies, keeping per family of related
topologies the member with the largest weight (SModelS's removal of compressed duplicates).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from protomodels.theory.lookup import SimplexStack, interpolate

__all__ = [
    "Aggregated",
    "Aggregation",
    "ItemGroup",
    "Items",
    "Kernel",
    "aggregate",
    "data_vectors",
    "item_values",
    "item_weights",
    "signals",
    "weights",
]


def __dir__() -> list[str]:
    return __all__


MIN_EFFICIENCY = 1e-14


class ItemGroup(NamedTuple):
    """Matched (topology, txname) items whose grids have one dimension d (a JAX pytree).

    Attributes:
        topology: (I,) index of the topology.
        sqrts: (I,) 0 for 8 TeV, 1 for 13 TeV (the result's).
        source: (I, 2, W) mass slot of each axis for both branch assignments; -1 where the
            axis is not a mass (then ``const`` holds its value) or is padding.
        const: (I, 2, W) values of the non-mass axes (rescaled widths), 0 for padding.
        k: (I,) stack row of the item's grid.
        offset: (I,) start of the item's grid values in the concatenated values.
    """

    topology: jax.Array
    sqrts: jax.Array
    source: jax.Array
    const: jax.Array
    k: jax.Array
    offset: jax.Array


def weights(sigma: jax.Array, br: jax.Array, pair: jax.Array, decays: jax.Array) -> jax.Array:
    """(T, 2) sigma x BR of each topology: sigma of its pair times the product of its BRs.

    Args:
        sigma: (pairs, 2) cross sections (fb).
        br: (decays + 1,) branching ratios (last entry 1).
        pair: (T,) pair index of each topology.
        decays: (T, L) indices into ``br`` of the decays making each topology (padded with
            the index of the trailing 1).
    """
    factors = br[decays]
    product = jnp.ones(factors.shape[0], sigma.dtype)
    for j in range(factors.shape[1]):  # left to right, whatever the padding (no reduction)
        product = product * factors[:, j]
    return sigma[pair] * product[:, None]


def data_vectors(masses: jax.Array, source: jax.Array, const: jax.Array) -> jax.Array:
    """(I, W) data vector of each item: of its two branch assignments (source/const (I, 2, W),
    see :class:`ItemGroup`), the lexicographically larger vector."""
    candidates = jnp.where(source >= 0, masses[jnp.maximum(source, 0)], const)
    a, b = candidates[:, 0], candidates[:, 1]
    differ = a != b
    first = jnp.argmax(differ, axis=1)
    a_first = jnp.take_along_axis(a, first[:, None], 1)[:, 0]
    b_first = jnp.take_along_axis(b, first[:, None], 1)[:, 0]
    take_b = differ.any(1) & (b_first > a_first)
    return jnp.where(take_b[:, None], b, a)


def item_values(
    stacks: Mapping[int, SimplexStack],
    values: jax.Array,
    topology_weights: jax.Array,
    masses: jax.Array,
    groups: Mapping[int, ItemGroup],
    *,
    rounded: bool = True,
) -> dict[int, tuple[jax.Array, jax.Array, jax.Array, jax.Array]]:
    """Per dimension d: (weight, value, ambiguity flag, data vector) of each item.

    ``value`` is the interpolated upper limit (fb) or efficiency, NaN outside the grid
    (``rounded``: to 6 significant digits, as SModelS; see :func:`interpolate`).
    """
    out = {}
    for d, g in groups.items():
        weight = topology_weights[g.topology, g.sqrts]
        vector = data_vectors(masses, g.source, g.const)
        value, flag = interpolate(stacks[d], values, g.k, vector, g.offset, rounded=rounded)
        out[d] = (weight, value, flag, vector)
    return out


class Aggregation(NamedTuple):
    """Index arrays that say how items add up (a JAX pytree; I items in any order).

    Attributes:
        efficiency: (I,) True for efficiency-map items, False for upper-limit items.
        coefficient: (I,) the constraint coefficient of the matched term.
        dataset: (I,) data-set slot (EM items; any value for UL items).
        group: (I,) family group: (data set, family) for EM, (txname, family) for UL items.
        rank: (I,) order of the items in the decomposition (ties go to the first).
    """

    efficiency: jax.Array
    coefficient: jax.Array
    dataset: jax.Array
    group: jax.Array
    rank: jax.Array


class Aggregated(NamedTuple):
    """Signals per data set and which items were kept."""

    signals: jax.Array  # (datasets,) sum of coefficient x sigma x BR x efficiency (fb)
    selected: jax.Array  # (I,) item kept (largest weight of its family group, valid value)


def aggregate(
    weight: jax.Array,
    value: jax.Array,
    how: Aggregation,
    n_datasets: int,
    n_groups: int,
) -> Aggregated:
    """Efficiency-map signals per data set, one member per family (see module docstring).

    For EM items the family member with the largest sigma x BR x efficiency is kept (items with
    efficiency below 1e-14 or without one do not count); for UL items the member with the
    largest sigma x BR among those with an upper limit.
    """
    eff = how.efficiency
    valid = jnp.isfinite(value) & jnp.where(eff, jnp.abs(value) >= MIN_EFFICIENCY, True)
    score = jnp.where(eff, weight * jnp.where(valid, value, 0.0), weight)
    score = jnp.where(valid, score, -jnp.inf)
    best = jax.ops.segment_max(score, how.group, num_segments=n_groups)
    is_best = valid & (score == best[how.group])
    big = jnp.iinfo(how.rank.dtype).max
    first = jax.ops.segment_min(
        jnp.where(is_best, how.rank, big), how.group, num_segments=n_groups
    )
    selected = is_best & (how.rank == first[how.group])
    contribution = jnp.where(selected & eff, how.coefficient * score, 0.0)
    signals = jax.ops.segment_sum(contribution, how.dataset, num_segments=n_datasets)
    return Aggregated(signals, selected)


class Items(NamedTuple):
    """The matched items of a plan and the parameters they need (a JAX pytree, padded).

    Attributes:
        sigma, br, masses: the parameters (see the module docstring).
        topology_pair, topology_decays: see :func:`weights`.
        topology, sqrts, source, const: per item, see :class:`ItemGroup`.
    """

    sigma: jax.Array
    br: jax.Array
    masses: jax.Array
    topology_pair: jax.Array
    topology_decays: jax.Array
    topology: jax.Array
    sqrts: jax.Array
    source: jax.Array
    const: jax.Array


def item_weights(items: Items) -> tuple[jax.Array, jax.Array]:
    """(weight, data vector) of every item: sigma x BR at the item's sqrt(s), (I,), and the
    point to look up in its grid, (I, W)."""
    topology_weights = weights(items.sigma, items.br, items.topology_pair, items.topology_decays)
    weight = topology_weights[items.topology, items.sqrts]
    return weight, data_vectors(items.masses, items.source, items.const)


class Kernel(NamedTuple):
    """Everything but the parameters that :func:`signals` needs (a JAX pytree).

    Attributes:
        stacks: stacked triangulations per grid dimension.
        values: all grid values, concatenated.
        topology_pair, topology_decays: see :func:`weights`.
        groups: the items per grid dimension (:class:`ItemGroup`).
        how: per dimension, the items' :class:`Aggregation` rows (same order as ``groups``).
    """

    stacks: dict[int, SimplexStack]
    values: jax.Array
    topology_pair: jax.Array
    topology_decays: jax.Array
    groups: dict[int, ItemGroup]
    how: dict[int, Aggregation]


def signals(
    kernel: Kernel,
    sigma: jax.Array,
    br: jax.Array,
    masses: jax.Array,
    n_datasets: int,
    n_groups: int,
    *,
    rounded: bool = True,
) -> Aggregated:
    """Efficiency-map signal (fb) of every data set slot of a plan, as a pure function of the
    cross sections, branching ratios and masses (jit with ``n_datasets``, ``n_groups`` and
    ``rounded`` static; ``rounded=False``: grid values not rounded to 6 digits).

    The grid-cell choice is piecewise constant, so derivatives are those of the linear
    interpolation inside the simplex that holds each point.
    """
    topology_weights = weights(sigma, br, kernel.topology_pair, kernel.topology_decays)
    found = item_values(
        kernel.stacks, kernel.values, topology_weights, masses, kernel.groups, rounded=rounded
    )
    dims = sorted(found)
    weight = jnp.concatenate([found[d][0] for d in dims])
    value = jnp.concatenate([found[d][1] for d in dims])
    how = Aggregation(
        *(jnp.concatenate([getattr(kernel.how[d], f) for d in dims]) for f in Aggregation._fields)
    )
    return aggregate(weight, value, how, n_datasets, n_groups)
