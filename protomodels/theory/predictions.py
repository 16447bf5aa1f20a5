"""Theory predictions: from a protomodel to sigma x BR (x eff) for every result of the database.

Follows SModelS 3.0.3 (``docs/predictions.md`` §5-§9): matched topologies add their weight to
the constraint term they match; efficiency-map data sets sum sigma x BR x eff over their
txnames; related topologies (a topology and its compressed descendants) count once per data set
(the one with the largest weight); upper-limit txnames cluster topologies whose upper limits are
within 20 % into one prediction at the weight-averaged masses. Per result, an efficiency-map
analysis reports its combined prediction (covariance or pyhf material) or its best signal region
by expected r.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from protomodels.database.database import Database
from protomodels.database.records import Result
from protomodels.database.records import Topology as TxName
from protomodels.paths import triangulation_cache_dir
from protomodels.shapes import padded_length, padded_lengths
from protomodels.theory.conditions import condition_values, max_condition, violates
from protomodels.theory.decomposition import decompose
from protomodels.theory.interpolation import round_significant
from protomodels.theory.locator import GridIndex, Query, Request
from protomodels.theory.matching import Matcher
from protomodels.theory.particles import LSP
from protomodels.theory.plan import ModelArrays, Plan, PlanBuilder
from protomodels.theory.protomodel import Protomodel
from protomodels.theory.signals import (
    Aggregation,
    ItemGroup,
    Items,
    Kernel,
    aggregate,
    item_weights,
)
from protomodels.theory.xsec import XsecTables, load_tables, production_channels, table_xsec

if TYPE_CHECKING:  # the statistics stage fills the field; theory never imports it
    from protomodels.statistics.record import PredictionStatistics

__all__ = ["PredictionSettings", "Predictor", "TheoryPrediction", "predict", "predictions_frame"]


def __dir__() -> list[str]:
    return __all__


_MIN_XSEC = 1e-6  # fb: smaller predictions are dropped
_MIN_EFF = 1e-14
_CLUSTER_DISTANCE = 0.2


@dataclass(frozen=True)
class PredictionSettings:
    """Settings of the decomposition and the selection of predictions.

    Attributes:
        sigmacut: fb, topologies below are dropped (SModelS default 0.005).
        minmassgap: GeV, mass-compression threshold (SModelS default 5).
        combine: report combined predictions for results with a covariance or pyhf material.
        best_dataset: report only the best signal region (or the combination) per result.
        interpolation: reference-table interpolation, ``"log"`` or ``"linear"``.
        maxcond: predictions whose txname conditions are violated by more than this are
            dropped (SModelS's command-line default 0.2; None keeps them all).
    """

    sigmacut: float = 0.005
    minmassgap: float = 5.0
    combine: bool = True
    best_dataset: bool = True
    interpolation: str = "log"
    maxcond: float | None = 0.2


@dataclass
class TheoryPrediction:
    """One prediction for one result (a data set, a combination, or an upper-limit cluster).

    Attributes:
        analysis: analysis id (``globalInfo`` id).
        result_id: the result's folder name.
        dataset: data-set id, ``"(combined)"``, or None for upper-limit results.
        data_type: ``upperLimit``, ``efficiencyMap`` or ``combined``.
        txnames: the txnames that contribute.
        xsec_fb: sigma x BR (UL) or sigma x BR x eff (EM, combined) in fb.
        upper_limit_fb, expected_upper_limit_fb: observed / expected 95 % CL limits (fb).
        sqrts_tev, lumi_ifb: of the result.
        signals_fb: for EM and combined predictions, sigma x BR x eff per data set (fb), in the
            result's data-set order (0 for data sets without signal).
        masses: for UL predictions, the (averaged) data vector.
        particles: PDG ids (> 0) of the BSM particles in the topologies that contribute.
        max_condition: the largest violation of the txnames' conditions (0: none, or none
            defined; see :mod:`protomodels.theory.conditions`).
        statistics: the likelihood quantities, set by the statistics stage
            (:class:`~protomodels.statistics.record.PredictionStatistics`); None before.
    """

    analysis: str
    result_id: str
    dataset: str | None
    data_type: str
    txnames: tuple[str, ...]
    xsec_fb: float
    upper_limit_fb: float | None
    expected_upper_limit_fb: float | None
    sqrts_tev: float
    lumi_ifb: float
    signals_fb: np.ndarray | None = None
    masses: tuple[float, ...] | None = None
    particles: frozenset[int] = frozenset()
    max_condition: float = 0.0
    statistics: PredictionStatistics | None = None

    @property
    def r_obs(self) -> float | None:
        """sigma / observed UL."""
        if not self.upper_limit_fb:
            return None
        return self.xsec_fb / self.upper_limit_fb

    @property
    def r_exp(self) -> float | None:
        """sigma / expected UL."""
        if not self.expected_upper_limit_fb:
            return None
        return self.xsec_fb / self.expected_upper_limit_fb

    def to_json(self) -> dict[str, Any]:
        """A record with the keys of the SModelS reference JSON."""
        record = {
            "analysis": self.analysis,
            "dataset": self.dataset,
            "dataType": self.data_type,
            "txnames": list(self.txnames),
            "xsec_fb": self.xsec_fb,
            "r_obs": self.r_obs,
            "r_exp": self.r_exp,
        }
        if self.statistics is not None:
            record.update(self.statistics.to_json())
        return record


@dataclass
class _Item:
    """One matched topology in one txname of one data set."""

    topology: int
    family: int
    txname: int
    coefficient: float
    vector: np.ndarray
    weight: float  # sigma x BR at the result's sqrt(s)
    value: float = math.nan  # efficiency, or UL for UL txnames
    conditions: tuple[int, ...] = ()  # the txname's condition SMS this topology is
    expected: float = math.nan  # expected UL at ``vector`` (UL txnames)


_aggregate = jax.jit(aggregate, static_argnums=(3, 4))
#: item capacities the signal kernels are compiled for before a walk (larger batches compile
#: on first use)
MAX_WARM_ITEMS = 4096
_item_weights = jax.jit(item_weights)


def _capacity(n: int, minimum: int = 16) -> int:
    """Power-of-two padding of array lengths (jitted code compiles once per capacity)."""
    return max(minimum, 1 << max(0, int(n) - 1).bit_length())


def _pad(a: np.ndarray, fill: float = 0, n: int | None = None) -> np.ndarray:
    n = _capacity(len(a)) if n is None else n
    out = np.full((n, *a.shape[1:]), fill, dtype=a.dtype)
    out[: len(a)] = a
    return out


def _aggregation(
    plan: Plan, size: int | None = None
) -> tuple[Aggregation, int, int, dict[tuple[int, int, int], int]]:
    """Index arrays for :func:`~protomodels.theory.signals.aggregate`: data-set slots of EM
    items, family groups, and the decomposition order (ties between family members go to the
    first topology of the first txname matched in the data set, as SModelS's list order).
    ``size``: the capacity (default: the padded length the plan needs)."""
    n = len(plan.item_topology)
    em = plan.item_efficiency
    family = plan.topology_family[plan.item_topology]
    model, result, dataset, txname = (
        plan.item_model, plan.item_result, plan.item_dataset, plan.item_txname
    )
    keys, sizes = _encode([model, result, dataset])
    unique_ds, ds_index = np.unique(keys, return_inverse=True)
    slots = {_decode(k, sizes): i for i, k in enumerate(unique_ds.tolist())}
    n_tx = int(txname.max()) + 2 if n else 1
    n_fam = int(family.max()) + 1 if n else 1
    group_keys = (ds_index * n_tx + np.where(em, 0, txname + 1)) * n_fam + family
    _, group = np.unique(group_keys, return_inverse=True)
    # order: per data set, txnames in the order they are first matched, then topologies
    _, tx_index = np.unique(ds_index * n_tx + txname, return_inverse=True)
    first_seen = np.full(tx_index.max() + 1 if n else 0, n)
    np.minimum.at(first_seen, tx_index, np.arange(n))
    rank = np.empty(n, np.int64)
    rank[np.lexsort((np.arange(n), first_seen[tx_index]))] = np.arange(n)
    # one capacity for items, data sets and groups (each is at most the number of items, plus
    # one padding slot): the jitted kernels then compile once per capacity, not per triple;
    # powers of four (few capacities: Predictor.warm_up compiles them all)
    needed = max(n, len(unique_ds), int(group.max()) + 1 if n else 0) + 1
    size = max(size or 0, padded_length(needed, 16))
    n_ds = n_groups = size
    how = Aggregation(
        efficiency=_pad(em, False, size),
        coefficient=_pad(_em_coefficients(plan), 0.0, size),
        dataset=_pad(ds_index, n_ds - 1, size),
        group=_pad(group, n_groups - 1, size),
        rank=_pad(rank, np.iinfo(np.int64).max - 1, size),
    )
    return how, n_ds, n_groups, slots


def _em_coefficients(plan: Plan) -> np.ndarray:
    """Constraint coefficients, times the lifetime reweighting of efficiency-map items (an
    upper limit is divided by it instead, on the host)."""
    if plan.item_factor is None:
        return plan.item_coefficient
    return np.where(plan.item_efficiency, plan.item_coefficient * plan.item_factor,
                    plan.item_coefficient)


def _reweighted_limit(value: float, factor: float) -> float:
    """An upper limit divided by the lifetime reweighting xi (> 0: items with xi = 0 have no
    limit and are left out before)."""
    return value if factor == 1.0 else value / factor


def _items(plan: Plan, size: int) -> Items:
    """A plan's parameters and items, padded to capacities (no recompiles for each new model
    size): sigma rows 0, BR entries 1, masses 0; padding items look up nothing."""
    # capacities that one model never exceeds (production pairs, branching ratios, masses,
    # decays per topology) and topologies padded like the items: one compiled copy per item
    # capacity
    n_br = _capacity(len(plan.br) + 1, 256)
    n_top = max(size, _capacity(len(plan.topology_pair)))
    length = plan.topology_decays.shape[1]
    decays = np.full((n_top, _capacity(length, 8)), n_br - 1, np.int64)
    decays[: len(plan.topology_pair), :length] = plan.topology_decays
    return Items(
        sigma=_pad(plan.sigma, 0.0, _capacity(len(plan.sigma) + 1, 64)),
        br=_pad(plan.br, 1.0, n_br),
        masses=_pad(plan.masses, 0.0, _capacity(len(plan.masses) + 1, 64)),
        topology_pair=_pad(plan.topology_pair, 0, n_top),
        topology_decays=decays,
        topology=_pad(plan.item_topology, 0, size),
        sqrts=_pad(plan.item_sqrts, 0, size),
        source=_pad(plan.item_source, -1, size),
        const=_pad(plan.item_const, 0.0, size),
    )


def _width_columns(txname: TxName) -> tuple[int, ...]:
    """Axes of a txname that are widths (rescaled before triangulation)."""
    return tuple(j for j, a in enumerate(txname.axes) if a.attribute == "totalwidth")


def _request(txname: TxName, kind: str, vector: np.ndarray) -> Request | None:
    """A grid lookup of :class:`~protomodels.theory.locator.GridIndex` (None: no such grid)."""
    grid = txname.grids.get(kind)
    if grid is None:
        return None
    return (grid.points, _width_columns(txname), grid.values, vector)


def _encode(columns: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """One int64 code per row of non-negative int columns (mixed radix), and the radices:
    ``np.unique`` over rows of a 2-D array is many times slower than over codes."""
    sizes = [int(c.max()) + 1 if len(c) else 1 for c in columns]
    code = np.zeros(len(columns[0]), np.int64)
    for c, size in zip(columns, sizes, strict=True):
        code = code * size + c
    return code, sizes


def _decode(code: int, sizes: list[int]) -> tuple[int, ...]:
    """The row of an :func:`_encode` code."""
    parts = []
    for size in reversed(sizes):
        code, rest = divmod(code, size)
        parts.append(rest)
    return tuple(reversed(parts))


def _distinct(
    keys: np.ndarray, values: np.ndarray
) -> list[tuple[tuple[int, int, int], int]]:
    """The distinct (key row, value) pairs of (n, 3) non-negative int keys and (n,) values."""
    if not len(values):
        return []
    code, sizes = _encode([*keys.T, values])
    return [((a, b, c), t) for a, b, c, t in (_decode(v, sizes) for v in np.unique(code).tolist())]


class Predictor:
    """Compiled database (patterns, triangulations) that turns protomodels into predictions.

    Build it once per database and reuse it: :meth:`predict` is then the fast path. Grid
    triangulations are kept on disk between processes (:func:`protomodels.paths.
    triangulation_cache_dir`; ``triangulation_cache=False`` or ``PROTOMODELS_TRIANGULATIONS=0``
    switch that off).
    """

    def __init__(
        self,
        database: Database,
        *,
        settings: PredictionSettings | None = None,
        tables: XsecTables | None = None,
        results: Iterable[Result] | None = None,
        triangulation_cache: bool = True,
    ) -> None:
        self.database = database
        self.settings = settings or PredictionSettings()
        self._tables = tables
        chosen = list(results) if results is not None else list(database.results)
        self._chosen = {r.result_id for r in chosen}
        self.matcher = Matcher(database)
        self.plans = PlanBuilder(database, self.matcher, self._chosen)
        results = database.results
        self._dataset_base = np.cumsum([0] + [len(r.datasets) for r in results])
        self._txnames = [
            (r, d, t)
            for r, result in enumerate(results)
            for d, ds in enumerate(result.datasets)
            for t in range(len(ds.topologies))
        ]
        self._txname_base = np.cumsum(
            [0] + [len(ds.topologies) for r in results for ds in r.datasets]
        )
        # (dimension, stack row, value offset) of each txname's grid (observed, expected):
        # dimension -1 = no such grid, -2 = not triangulated yet
        self._refs = np.full((2, len(self._txnames), 3), -2, np.int64)
        self._dataset_indices: dict[int, dict[str | None, int]] = {}
        self.grid_index = GridIndex(
            (
                grid.values
                for result in database.results
                for dataset in result.datasets
                for txname in dataset.topologies
                for grid in txname.grids.values()
            ),
            cache=triangulation_cache_dir() if triangulation_cache else None,
        )

    def prepare_grids(
        self, *, workers: int = 1, progress: Callable[[int, int], None] | None = None
    ) -> None:
        """Triangulate and stack every grid of the chosen results now (see
        :meth:`GridIndex.reserve`): a long run (the walk) then meets no new grid, so no stack
        is rebuilt and no kernel recompiled on the way; a first run on a machine triangulates
        the grids missing from the cache with ``workers`` processes."""
        self.grid_index.reserve(self.grid_point_sets(), workers=workers, progress=progress)

    def warm_up(self, max_items: int = MAX_WARM_ITEMS) -> int:
        """Compile the grid lookups for every padded number of query points
        (:meth:`GridIndex.warm_up`; after :meth:`prepare_grids`, so that the stacks are
        final) and the signal kernels for every padded number of items up to ``max_items``
        (on the plan of a model with the LSP alone, padded: the shapes of the parameter
        arrays are those of any model below 64 production pairs, 64 masses and 256 branching
        ratios); returns the number of shapes."""
        count = self.grid_index.warm_up()
        plan = self.plan([Protomodel(masses={LSP: 100.0}, decays={})])
        with jax.enable_x64(True):
            for size in padded_lengths(16, max_items):
                how, n_datasets, n_groups, _ = _aggregation(plan, size)
                _item_weights(_items(plan, size))
                empty = np.zeros(0)  # (host arrays, as the evaluation passes them)
                _aggregate(_pad(empty, 0.0, size), _pad(empty, np.nan, size), how, n_datasets,
                           n_groups)
                count += 2
        return count

    def grid_point_sets(self) -> list[tuple[np.ndarray, tuple[int, ...]]]:
        """(points, width columns) of every grid the chosen results may look up."""
        point_sets = []
        for result in self.database.results:
            if result.result_id not in self._chosen:
                continue
            for ds in result.datasets:
                kinds = (
                    ("upper_limit", "expected_upper_limit")
                    if ds.data_type == "upperLimit"
                    else ("efficiency",)
                )
                for txname in ds.topologies:
                    for kind in kinds:
                        grid = txname.grids.get(kind)
                        if grid is not None:
                            point_sets.append((grid.points, _width_columns(txname)))
        return point_sets

    @property
    def tables(self) -> XsecTables:
        """Reference cross-section tables (loaded on first use)."""
        if self._tables is None:
            self._tables = load_tables()
        return self._tables

    # -- cross sections ---------------------------------------------------------------------
    def cross_sections(self, model: Protomodel) -> dict[tuple[int, int], dict[float, float]]:
        """{pair: {sqrts: fb}}: the model's own, or reference tables times the multipliers."""
        if model.xsecs is not None:
            return {pair: dict(v) for pair, v in model.xsecs.items()}
        result = {}
        for pair in production_channels(list(model.masses)):
            sigma = table_xsec(
                pair, model.masses, self.tables, interpolation=self.settings.interpolation
            )
            factor = model.ssm.get(pair, 1.0)
            if sigma and factor > 0:
                result[pair] = {s: v * factor for s, v in sigma.items()}
        return result

    # -- main -------------------------------------------------------------------------------
    def predict(self, model: Protomodel) -> list[TheoryPrediction]:
        """All theory predictions of a protomodel, sorted by r_obs (largest first)."""
        return self.predict_batch([model])[0]

    def rescale(
        self, model: Protomodel, predictions: Iterable[TheoryPrediction], factor: float
    ) -> list[TheoryPrediction] | None:
        """The predictions of ``model.scaled(factor)`` from those of ``model``, without a new
        prediction pass: every sigma x BR (x eff) times ``factor`` (upper limits,
        efficiencies, conditions, clusters and best regions do not change with a common
        factor). None when that would not be exact: the sigmacut would keep another set of
        topologies, or a prediction would fall below the smallest cross section kept.
        (Predictions that the scaling would lift above that smallest cross section, 1e-6 fb,
        are not recovered.) The copies carry no statistics."""
        if not (math.isfinite(factor) and factor > 0):
            return None
        rounded = replace(model, masses={p: round(m, 1) for p, m in model.masses.items()})
        xsecs = self.cross_sections(rounded)
        cut, gap = self.settings.sigmacut, self.settings.minmassgap
        kept = len(decompose(rounded, xsecs, sigmacut=cut, minmassgap=gap))
        if len(decompose(rounded, xsecs, sigmacut=cut / factor, minmassgap=gap)) != kept:
            return None
        out = []
        for p in predictions:
            xsec = p.xsec_fb * factor
            if xsec < _MIN_XSEC:
                return None
            signals = None if p.signals_fb is None else np.asarray(p.signals_fb) * factor
            out.append(replace(p, xsec_fb=xsec, signals_fb=signals, statistics=None))
        return out

    def plan(self, models: Iterable[Protomodel]) -> Plan:
        """Decompose and match a batch of models into the kernel's index arrays."""
        settings = self.settings
        kept, arrays, topologies = [], [], []
        for model in models:
            model = replace(model, masses={p: round(m, 1) for p, m in model.masses.items()})
            xsecs = self.cross_sections(model)
            topologies.append(
                decompose(
                    model, xsecs, sigmacut=settings.sigmacut, minmassgap=settings.minmassgap
                )
            )
            arrays.append(ModelArrays.of(model, xsecs))
            kept.append(model)
        return self.plans.build(kept, arrays, topologies)

    def predict_batch(self, models: Iterable[Protomodel]) -> list[list[TheoryPrediction]]:
        """Predictions of many protomodels: one kernel call for the whole batch."""
        plan = self.plan(models)
        how, n_datasets, n_groups, slots = _aggregation(plan)
        weight, value, vector, expected, signals, selected = self._evaluate(
            plan, how, n_datasets, n_groups
        )
        batch: list[list[TheoryPrediction]] = [[] for _ in range(plan.n_models)]
        self._em_reports(plan, signals, selected, slots, batch, weight, value)
        self._ul_reports(plan, weight, value, vector, expected, selected, batch)
        for predictions in batch:
            predictions.sort(key=lambda p: (p.r_obs is None, -(p.r_obs or 0.0)))
        return batch

    def signal_kernel(
        self, models: Iterable[Protomodel], *, padded: bool = False
    ) -> tuple[Kernel, tuple[jax.Array, jax.Array, jax.Array], int, int, dict]:
        """The pure-function form of the efficiency-map predictions of a batch of models.

        ``padded``: every array at a power-of-two capacity (as the evaluation pads them: sigma
        rows and masses from 64, branching ratios from 256, padding BR 1) and every stacked
        grid dimension present, so that models of different structure share one compiled
        function (the kernel's pytree structure and shapes depend only on the capacities).

        Returns:
            (kernel, (sigma, br, masses), n_datasets, n_groups, slots): then
            ``signals(kernel, sigma, br, masses, n_datasets, n_groups).signals[slots[(model,
            result, data set)]]`` is sigma x BR x efficiency of that data set (fb), jittable,
            vmappable over parameters of the same structure, differentiable. (SModelS's
            tie-breaks on ambiguous grid cells are not applied here: see
            :mod:`protomodels.theory.lookup`.)
        """
        plan = self.plan(models)
        observed = self._item_refs(plan)[0]
        refs = [None if r[0] < 0 else tuple(r) for r in observed.tolist()]
        how, n_datasets, n_groups, slots = _aggregation(plan)
        with jax.enable_x64(True):
            stacks, groups, rows_how = {}, {}, {}
            dims = sorted({r[0] for r in refs if r is not None and r[0] > 0})
            if padded:
                dims = sorted(set(dims) | {d for d in self.grid_index.dims if d > 0})
            for d in dims:
                rows = np.asarray([i for i, r in enumerate(refs) if r is not None and r[0] == d],
                                  dtype=np.int64)
                stacks[d] = self.grid_index.stack(d)
                width = stacks[d].shift.shape[1]
                n = _capacity(len(rows))
                groups[d] = ItemGroup(
                    topology=jnp.asarray(_pad(plan.item_topology[rows], 0, n)),
                    sqrts=jnp.asarray(_pad(plan.item_sqrts[rows], 0, n)),
                    source=jnp.asarray(_pad(plan.item_source[rows][:, :, :width], -1, n)),
                    const=jnp.asarray(_pad(plan.item_const[rows][:, :, :width], 0.0, n)),
                    k=jnp.asarray(_pad(np.asarray([refs[i][1] for i in rows], np.int64), 0, n)),
                    offset=jnp.asarray(
                        _pad(np.asarray([refs[i][2] for i in rows], np.int64), 0, n)
                    ),
                )
                fills = (False, 0.0, n_datasets - 1, n_groups - 1, np.iinfo(np.int64).max - 1)
                rows_how[d] = Aggregation(
                    *(
                        jnp.asarray(_pad(np.asarray(a)[rows], fill, n))
                        for a, fill in zip(how, fills, strict=True)
                    )
                )
            if padded:
                items = _items(plan, len(how.efficiency))
                pair, decays = items.topology_pair, items.topology_decays
                params = (items.sigma, items.br, items.masses)
            else:
                pair, decays = plan.topology_pair, plan.topology_decays
                params = (plan.sigma, plan.br, plan.masses)
            kernel = Kernel(
                stacks, self.grid_index.values, jnp.asarray(pair), jnp.asarray(decays), groups,
                rows_how,
            )
            params = tuple(jnp.asarray(p) for p in params)
        return kernel, params, n_datasets, n_groups, slots

    # -- numbers ----------------------------------------------------------------------------
    def _item_refs(self, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
        """(I, 3) (dimension, stack row, value offset) of every item's grid: its UL or efficiency
        grid, and its expected-UL grid (upper-limit items); dimension -1 where there is none."""
        ids = self._txname_base[self._dataset_base[plan.item_result] + plan.item_dataset]
        ids = ids + plan.item_txname
        for i in np.unique(ids[self._refs[0, ids, 0] == -2]).tolist():
            r, d, t = self._txnames[i]
            ds = self.database.results[r].datasets[d]
            kinds = (
                ("upper_limit", "expected_upper_limit")
                if ds.data_type == "upperLimit"
                else ("efficiency", None)
            )
            for j, kind in enumerate(kinds):
                grid = ds.topologies[t].grids.get(kind) if kind else None
                if grid is None:
                    self._refs[j, i] = (-1, 0, 0)
                else:
                    entry = self.grid_index.entry(grid.points, _width_columns(ds.topologies[t]))
                    self._refs[j, i] = (
                        entry.tri.dim, entry.stack_index, self.grid_index.offset(grid.values)
                    )
        return self._refs[0, ids], self._refs[1, ids]

    def _evaluate(
        self, plan: Plan, how: Aggregation, n_datasets: int, n_groups: int
    ) -> tuple[np.ndarray, ...]:
        """(weight, value, vector, expected UL, signals, selected) of the items of a plan, as
        SModelS gives them: one kernel call per grid dimension (observed and expected grids
        together); its ambiguous lookups and zero-dimensional grids are answered by SciPy."""
        n = len(plan.item_topology)
        size = len(how.efficiency)  # the aggregation's capacity (>= n)
        observed, expected_refs = self._item_refs(plan)
        refs = np.concatenate([observed, expected_refs])
        rows = np.concatenate([np.arange(n), np.arange(n)])
        with jax.enable_x64(True):
            weight, vector = _item_weights(_items(plan, size))
            weight, vector = np.asarray(weight)[:n], np.asarray(vector)[:n]
        both = np.full(2 * n, np.nan)  # values, then expected ULs
        dims = refs[:, 0]
        flagged = [np.flatnonzero(dims == 0)]
        for d in np.unique(dims[dims > 0]).tolist():
            sel = np.flatnonzero(dims == d)
            width = self.grid_index.stack(d).shift.shape[1]
            m = padded_length(len(sel), 16)
            x = np.full((m, width), np.nan)  # (padding rows: outside every grid, cheap)
            x[: len(sel)] = vector[rows[sel], :width]
            query = Query(d, sel, _pad(refs[sel, 1], 0, m), x, _pad(refs[sel, 2], 0, m))
            f, flag = self.grid_index.interpolate(query)
            both[sel] = f
            flagged.append(sel[flag])
        flagged_rows = np.concatenate(flagged)
        if len(flagged_rows):  # SciPy's answer, as SModelS
            requests = []
            for j in flagged_rows.tolist():
                i = j % n
                ds = self.database.results[plan.item_result[i]].datasets[plan.item_dataset[i]]
                tx = ds.topologies[plan.item_txname[i]]
                kind = ("upper_limit" if ds.data_type == "upperLimit" else "efficiency",
                        "expected_upper_limit")[j // n]
                requests.append(_request(tx, kind, vector[i, : len(tx.axes)]))
            both[flagged_rows] = self.grid_index.scipy_lookup(requests)
        value, expected = both[:n], both[n:]
        with jax.enable_x64(True):
            aggregated = _aggregate(
                _pad(weight, 0.0, size), _pad(value, np.nan, size), how, n_datasets, n_groups
            )
            signals = np.asarray(aggregated.signals)
            selected = np.asarray(aggregated.selected)[:n]
        return weight, value, vector, expected, signals, selected

    def _batch_lookup(self, requests: list[tuple[TxName, str, np.ndarray]]) -> np.ndarray:
        """Values of many (txname, grid kind, point) lookups in one batched call."""
        out = np.full(len(requests), np.nan)
        batch, where = [], []
        for i, (txname, kind, vector) in enumerate(requests):
            request = _request(txname, kind, vector)
            if request is not None:
                batch.append(request)
                where.append(i)
        if batch:
            out[where] = self.grid_index.lookup(batch)
        return out

    def _lookup(self, txname: TxName, kind: str, vectors: np.ndarray) -> np.ndarray:
        return self._batch_lookup([(txname, kind, v) for v in np.atleast_2d(vectors)])

    # -- reports ----------------------------------------------------------------------------
    def _em_reports(
        self,
        plan: Plan,
        signals: np.ndarray,
        selected: np.ndarray,
        slots: dict[tuple[int, int, int], int],
        batch: list[list[TheoryPrediction]],
        weight: np.ndarray,
        value: np.ndarray,
    ) -> None:
        """Efficiency-map predictions (best region or combination) per model and result."""
        by_result: dict[tuple[int, int], dict[int, set[str]]] = defaultdict(dict)
        particles: dict[tuple[int, int, int], set[int]] = defaultdict(set)
        # (model, result, data set) -> txname -> {condition SMS: sigma x BR x eff}
        condition_weights: dict[tuple[int, int, int], dict[int, dict[int, float]]] = (
            defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
        )
        for m, r, d in slots:
            if self.database.results[r].data_type == "efficiencyMap":
                by_result[(m, r)].setdefault(d, set())
        rows = np.flatnonzero(selected & plan.item_efficiency)
        mrd = np.stack([plan.item_model[rows], plan.item_result[rows], plan.item_dataset[rows]], 1)
        for key, t in _distinct(mrd, plan.item_txname[rows]):
            m, r, d = key
            by_result[(m, r)][d].add(self.database.results[r].datasets[d].topologies[t].name)
        for key, t in _distinct(mrd, plan.item_topology[rows]):
            particles[key] |= plan.topology_particles[t]
        for i, key in zip(rows.tolist(), map(tuple, mrd.tolist()), strict=True):
            if plan.item_condition_sms[i]:
                sums = condition_weights[key][int(plan.item_txname[i])]
                for k in plan.item_condition_sms[i]:
                    sums[k] += float(weight[i] * value[i])
        for (m, r), txnames in by_result.items():
            result = self.database.results[r]
            values = np.zeros(len(result.datasets))
            for d in txnames:
                total = float(signals[slots[(m, r, d)]])
                if total >= _MIN_XSEC:
                    values[d] = total
            index = self._dataset_index(r)
            for p in self._em_predictions(result, values, txnames):
                shown = range(len(values)) if p.data_type == "combined" else [index[p.dataset]]
                p.particles = frozenset().union(*(particles[(m, r, d)] for d in shown))
                if p.data_type != "combined":  # (SModelS gives combinations no conditions)
                    d = shown[0]
                    p.max_condition = max_condition(
                        v
                        for t, sums in condition_weights[(m, r, d)].items()
                        for v in condition_values(
                            result.datasets[d].topologies[t].constraint, sums
                        )
                    )
                if not violates(p.max_condition, self.settings.maxcond):
                    batch[m].append(p)

    def _dataset_index(self, r: int) -> dict[str | None, int]:
        """Position of each data set of result r by its id (built once per result)."""
        found = self._dataset_indices.get(r)
        if found is None:
            datasets = self.database.results[r].datasets
            found = {(ds.data_id or ds.dataset_id): d for d, ds in enumerate(datasets)}
            self._dataset_indices[r] = found
        return found

    def _ul_reports(
        self,
        plan: Plan,
        weight: np.ndarray,
        value: np.ndarray,
        vector: np.ndarray,
        expected: np.ndarray,
        selected: np.ndarray,
        batch: list[list[TheoryPrediction]],
    ) -> None:
        """Upper-limit predictions (clusters) per model and txname, and their expected limits."""
        groups: dict[tuple[int, int, int, int], list[_Item]] = defaultdict(list)
        factors = plan.item_factor
        for i in np.flatnonzero(selected & ~plan.item_efficiency):
            xi = 1.0 if factors is None else float(factors[i])
            key = (
                int(plan.item_model[i]),
                int(plan.item_result[i]),
                int(plan.item_dataset[i]),
                int(plan.item_txname[i]),
            )
            result = self.database.results[key[1]]
            tx = result.datasets[key[2]].topologies[key[3]]
            if xi == 0.0:  # (SModelS: no upper limit where xi is 0)
                continue
            groups[key].append(
                _Item(
                    int(plan.item_topology[i]),
                    int(plan.topology_family[plan.item_topology[i]]),
                    key[3],
                    float(plan.item_coefficient[i]),
                    vector[i, : len(tx.axes)],
                    float(weight[i]),
                    _reweighted_limit(float(value[i]), xi),
                    plan.item_condition_sms[i],
                    _reweighted_limit(float(expected[i]), xi),
                )
            )
        requests, made = [], []
        for (m, r, d, t), items in groups.items():
            result = self.database.results[r]
            txname = result.datasets[d].topologies[t]
            items.sort(key=lambda it: it.topology)
            for p, members in self._ul_predictions(result, txname, items):
                p.particles = frozenset().union(
                    *(plan.topology_particles[it.topology] for it in members)
                )
                if txname.constraint.conditions:
                    sums: dict[int, float] = defaultdict(float)
                    for it in members:
                        for k in it.conditions:
                            sums[k] += it.weight
                    p.max_condition = max_condition(
                        condition_values(txname.constraint, sums)
                    )
                    if violates(p.max_condition, self.settings.maxcond):
                        continue
                batch[m].append(p)
                if p.expected_upper_limit_fb is None:  # a merged cluster: at its mean masses
                    made.append(p)
                    requests.append((txname, "expected_upper_limit", np.asarray(p.masses)))
                elif not math.isfinite(p.expected_upper_limit_fb):
                    p.expected_upper_limit_fb = None
        for p, v in zip(made, self._batch_lookup(requests), strict=True):
            p.expected_upper_limit_fb = float(v) if np.isfinite(v) else None

    def _ul_predictions(
        self, result: Result, txname: TxName, items: list[_Item]
    ) -> list[tuple[TheoryPrediction, list[_Item]]]:
        """One prediction per mass cluster, with the cluster's items."""
        clusters = self._cluster(txname, items)
        predictions = []
        for members, vector, ul, expected in clusters:
            xsec = sum(it.coefficient * it.weight for it in members)
            if xsec < _MIN_XSEC:
                continue
            prediction = TheoryPrediction(
                analysis=result.analysis_id,
                result_id=result.result_id,
                dataset=None,
                data_type="upperLimit",
                txnames=(txname.name,),
                xsec_fb=xsec,
                upper_limit_fb=ul,
                expected_upper_limit_fb=expected,
                sqrts_tev=result.sqrts_tev,
                lumi_ifb=result.lumi_ifb,
                masses=tuple(float(x) for x in vector),
            )
            predictions.append((prediction, members))
        return predictions

    def _cluster(
        self, txname: TxName, items: list[_Item]
    ) -> list[tuple[list[_Item], np.ndarray, float, float | None]]:
        """SModelS mass clustering of UL txnames (``docs/predictions.md`` §9): (members, masses,
        UL, expected UL) per cluster; the expected UL is None for merged clusters (not looked up
        here)."""
        groups: dict[tuple, list[_Item]] = defaultdict(list)
        for it in sorted(items, key=lambda i: i.value):
            groups[(it.value, tuple(it.vector))].append(it)
        clusters = [
            (members, members[0].vector, members[0].value, members[0].expected)
            for members in groups.values()
        ]
        clusters.sort(key=lambda c: c[2])
        invalid: set[tuple[frozenset[int], frozenset[int]]] = set()

        def distance(a: float, b: float) -> float:
            return 2 * abs(a - b) / (a + b) if a + b > 0 else math.inf

        while len(clusters) > 1:
            best = None
            for i in range(len(clusters)):
                for j in range(i + 1, len(clusters)):
                    key = (frozenset(map(id, clusters[i][0])), frozenset(map(id, clusters[j][0])))
                    if key in invalid:
                        continue
                    d = distance(clusters[i][2], clusters[j][2])
                    if d < _CLUSTER_DISTANCE and (best is None or d < best[0]):
                        best = (d, i, j, key)
            if best is None:
                break
            _, i, j, key = best
            members = clusters[i][0] + clusters[j][0]
            weights = np.asarray([m.weight for m in members])
            vectors = np.asarray([m.vector for m in members])
            average = round_significant((weights[:, None] * vectors).sum(0) / weights.sum(), 5)
            ul = float(self._lookup(txname, "upper_limit", average[None, :])[0])
            if np.isfinite(ul) and all(distance(ul, m.value) <= _CLUSTER_DISTANCE for m in members):
                merged = (members, average, ul, None)
                clusters = [c for k, c in enumerate(clusters) if k not in (i, j)] + [merged]
            else:
                invalid.add(key)
        clusters.sort(key=lambda c: (-sum(m.weight for m in c[0]), -len(c[0])))
        return clusters

    def _em_predictions(
        self, result: Result, signals: np.ndarray, txnames_of: Mapping[int, set[str]]
    ) -> list[TheoryPrediction]:
        with_signal = [di for di in range(len(result.datasets)) if signals[di] > 0]
        if not with_signal:
            return []

        def single(di: int) -> TheoryPrediction:
            ds = result.datasets[di]
            return TheoryPrediction(
                analysis=result.analysis_id,
                result_id=result.result_id,
                dataset=ds.data_id or ds.dataset_id,
                data_type="efficiencyMap",
                txnames=tuple(sorted(txnames_of[di])),
                xsec_fb=float(signals[di]),
                upper_limit_fb=None if ds.region_type == "CR" else ds.upper_limit_fb,
                expected_upper_limit_fb=ds.expected_upper_limit_fb,
                sqrts_tev=result.sqrts_tev,
                lumi_ifb=result.lumi_ifb,
                signals_fb=signals.copy(),
            )

        combinable = result.covariance is not None or any(
            not w.full and not w.missing for w in result.pyhf
        )
        predictions = []
        if self.settings.combine and combinable and len(with_signal) > 1:
            txnames = sorted(set().union(*(txnames_of[d] for d in with_signal)))
            predictions.append(
                TheoryPrediction(
                    analysis=result.analysis_id,
                    result_id=result.result_id,
                    dataset="(combined)",
                    data_type="combined",
                    txnames=tuple(txnames),
                    xsec_fb=float(signals.sum()),
                    upper_limit_fb=None,
                    expected_upper_limit_fb=None,
                    sqrts_tev=result.sqrts_tev,
                    lumi_ifb=result.lumi_ifb,
                    signals_fb=signals.copy(),
                )
            )
            if self.settings.best_dataset:
                return predictions
        if len(with_signal) == 1:  # (a combination needs two regions with signal)
            return [single(with_signal[0])]
        if not self.settings.best_dataset:
            return predictions + [single(di) for di in with_signal]
        candidates = [
            di
            for di in with_signal
            if result.datasets[di].region_type == "SR"
            and result.datasets[di].expected_upper_limit_fb
        ]
        if not candidates:
            return predictions
        best = max(
            candidates,
            key=lambda di: (signals[di] / result.datasets[di].expected_upper_limit_fb, signals[di]),
        )
        return [*predictions, single(best)]


def predict(
    model: Protomodel,
    database: Database,
    *,
    settings: PredictionSettings | None = None,
    tables: XsecTables | None = None,
) -> list[TheoryPrediction]:
    """Theory predictions of one protomodel (builds a :class:`Predictor`; reuse one in loops)."""
    return Predictor(database, settings=settings, tables=tables).predict(model)


def predictions_frame(predictions: Iterable[TheoryPrediction]):  # noqa: ANN201 - pandas optional
    """The predictions as a pandas DataFrame (one row each, the reference JSON's columns)."""
    import pandas as pd

    rows = []
    for p in predictions:
        row = p.to_json()
        row["txnames"] = ",".join(row["txnames"])
        row["result_id"] = p.result_id
        row["sqrts_tev"] = p.sqrts_tev
        rows.append(row)
    return pd.DataFrame(rows)
