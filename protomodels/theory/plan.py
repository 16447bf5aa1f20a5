"""The structure of predictions as index arrays (host side of :mod:`protomodels.theory.signals`).

For a batch of decomposed models, :class:`PlanBuilder` lists every matched (topology, txname)
item with the indices the numeric kernel needs: which topology (hence which pair and decays make
its weight), which mass slots sit on the grid's axes for both branch assignments, which grid
(stack row and value offset) and where the item adds up. The matches of a topology depend only on
its structure and are cached per structure, as arrays; assembling a model is then a few array
concatenations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from protomodels.database.database import Database
from protomodels.theory.decomposition import INVISIBLE, Topology, lifetime_class
from protomodels.theory.interpolation import rescale_width
from protomodels.theory.lifetimes import effective_lengths, reweighting
from protomodels.theory.matching import Matcher
from protomodels.theory.protomodel import Protomodel

__all__ = ["ModelArrays", "Plan", "PlanBuilder", "SQRTS"]


def __dir__() -> list[str]:
    return __all__


SQRTS = (8.0, 13.0)

# axis kinds in the cached arrays
_PAD, _MASS, _WIDTH, _WIDTH_LAST = 0, 1, 2, 3


@dataclass(frozen=True)
class ModelArrays:
    """One model as parameter arrays.

    Attributes:
        particles: PDG ids (> 0) of the mass slots, sorted.
        masses: (P,) GeV, rounded to 0.1 GeV as the predictions use them.
        decays: (mother, channel index) of each BR slot.
        br: (B,) branching ratios.
        pairs: production pairs of the sigma rows.
        sigma: (pairs, 2) cross sections at 8 and 13 TeV (fb), 0 where there is none.
    """

    particles: np.ndarray
    masses: np.ndarray
    decays: tuple[tuple[int, int], ...]
    br: np.ndarray
    pairs: tuple[tuple[int, int], ...]
    sigma: np.ndarray

    @classmethod
    def of(
        cls, model: Protomodel, xsecs: dict[tuple[int, int], dict[float, float]]
    ) -> ModelArrays:
        """Arrays of a model and its cross sections {pair: {sqrts: fb}}."""
        particles = np.asarray(sorted(model.masses), dtype=np.int64)
        masses = np.asarray([round(model.masses[p], 1) for p in particles])
        decays = tuple((m, i) for m in sorted(model.decays) for i in range(len(model.decays[m])))
        br = np.asarray([model.decays[m][i].br for m, i in decays], dtype=float)
        pairs = tuple(sorted(xsecs))
        sigma = np.asarray(
            [[xsecs[p].get(s, 0.0) for s in SQRTS] for p in pairs], dtype=float
        ).reshape(len(pairs), 2)
        return cls(particles, masses, decays, br, pairs, sigma)


@dataclass
class _Matches:
    """The cached matches of one topology structure (U items)."""

    result: np.ndarray
    dataset: np.ndarray
    txname: np.ndarray
    coefficient: np.ndarray
    pdg: np.ndarray  # (U, 2, W) PDG id on each axis (0 for padding)
    kind: np.ndarray  # (U, 2, W) _PAD / _MASS / _WIDTH / _WIDTH_LAST
    sqrts: np.ndarray  # (U,) index into SQRTS
    condition_sms: list[tuple[int, ...]]  # per item: condition SMS (constraint.sms index) it is
    width_nodes: list[frozenset[tuple[int, int]]]  # per item: (branch, position) on width axes


@dataclass
class Plan:
    """A batch of models as the kernel's arrays, plus what the host needs to build reports.

    Item arrays have one row per matched (topology, txname) item, in decomposition order.
    """

    n_models: int
    # parameters, all models concatenated (+1 padding entry each at the end)
    masses: np.ndarray
    br: np.ndarray
    sigma: np.ndarray
    # topologies
    topology_pair: np.ndarray
    topology_decays: np.ndarray
    topology_family: np.ndarray
    topology_model: np.ndarray
    topology_particles: list[frozenset[int]]
    # items
    item_topology: np.ndarray
    item_model: np.ndarray
    item_result: np.ndarray
    item_dataset: np.ndarray
    item_txname: np.ndarray
    item_coefficient: np.ndarray
    item_sqrts: np.ndarray
    item_source: np.ndarray  # (I, 2, W)
    item_const: np.ndarray  # (I, 2, W)
    item_efficiency: np.ndarray  # bool
    item_condition_sms: list[tuple[int, ...]]  # the txname's condition SMS the topology is
    #: lifetime reweighting xi (:mod:`protomodels.theory.lifetimes`): multiplies efficiencies,
    #: divides upper limits; 1 for prompt spectra
    item_factor: np.ndarray | None = None


def _final_width(pdg: int, model: Protomodel) -> float:
    """The width of an undecayed final state: its own if it is long-lived, else 0 (stable)."""
    if lifetime_class(pdg, model) == "long-lived":
        return model.widths[abs(pdg)]
    return 0.0


def _has_lifetimes(model: Protomodel) -> bool:
    """Whether any particle of the model is long-lived (else every xi is 1)."""
    return any(lifetime_class(p, model) == "long-lived" for p in model.decays)


class PlanBuilder:
    """Caches the matches per topology structure and assembles plans."""

    def __init__(self, database: Database, matcher: Matcher, chosen: set[str]) -> None:
        self.database = database
        self.matcher = matcher
        self._chosen = chosen
        self._cache: dict[tuple, _Matches] = {}
        self.width = max(
            (len(tx.axes) for r in database.results for d in r.datasets for tx in d.topologies),
            default=1,
        )

    def matches(self, topology: Topology) -> _Matches:
        """The matches of a topology's structure as arrays (cached)."""
        key = (topology.branches, topology.properties, topology.root)
        found = self._cache.get(key)
        if found is not None:
            return found
        results = self.database.results
        rows: list[tuple[int, int, int, float, int]] = []
        pdg_rows, kind_rows = [], []
        condition_sms: list[tuple[int, ...]] = []
        width_nodes: list[frozenset[tuple[int, int]]] = []
        w = self.width
        for pattern in self.matcher.candidates(topology):
            assignments = self.matcher.assignments(topology, pattern)
            if not assignments:
                continue
            for usage in self.matcher.usages[pattern]:
                result = results[usage.result]
                if result.result_id not in self._chosen:
                    continue
                txname = result.datasets[usage.dataset].topologies[usage.topology]
                pdg = np.zeros((2, w), np.int64)
                kind = np.zeros((2, w), np.int64)
                on_width_axes = set()
                for a in range(2):
                    assignment = assignments[min(a, len(assignments) - 1)]
                    for j, axis in enumerate(txname.axes):
                        b, p = usage.node_positions[axis.node]
                        part = topology.part(assignment[b])
                        pdg[a, j] = abs(part.nodes[p][0])
                        if axis.attribute == "mass":
                            kind[a, j] = _MASS
                        else:
                            final = p == len(part.nodes) - 1 and not part.decayed
                            kind[a, j] = _WIDTH_LAST if final else _WIDTH
                            if a == 0:
                                on_width_axes.add((assignment[b], p))
                rows.append(
                    (
                        usage.result,
                        usage.dataset,
                        usage.topology,
                        usage.coefficient,
                        SQRTS.index(result.sqrts_tev),
                    )
                )
                pdg_rows.append(pdg)
                kind_rows.append(kind)
                width_nodes.append(frozenset(on_width_axes))
                if txname.constraint.conditions:
                    patterns = self.matcher.condition_patterns(
                        usage.result, usage.dataset, usage.topology
                    )
                    condition_sms.append(
                        tuple(i for i, p in patterns.items() if self.matcher.matches(topology, p))
                    )
                else:
                    condition_sms.append(())
        n = len(rows)
        columns = list(zip(*rows, strict=True)) if rows else [()] * 5
        found = _Matches(
            result=np.asarray(columns[0], np.int64),
            dataset=np.asarray(columns[1], np.int64),
            txname=np.asarray(columns[2], np.int64),
            coefficient=np.asarray(columns[3], float),
            pdg=np.asarray(pdg_rows, np.int64).reshape(n, 2, w),
            kind=np.asarray(kind_rows, np.int64).reshape(n, 2, w),
            sqrts=np.asarray(columns[4], np.int64),
            condition_sms=condition_sms,
            width_nodes=width_nodes,
        )
        self._cache[key] = found
        return found

    def build(
        self,
        models: Sequence[Protomodel],
        arrays: Sequence[ModelArrays],
        topologies: Sequence[list[Topology]],
    ) -> Plan:
        """Assemble the plan of a batch of decomposed models."""
        masses, brs, sigmas = [], [], []
        t_pair, t_decays, t_family, t_model = [], [], [], []
        t_particles: list[frozenset[int]] = []
        parts: list[tuple[int, int, _Matches, set[int], Protomodel, Topology]] = []
        mass_base = br_base = sigma_base = topo_base = family_base = 0
        length = max((len(t.decays) for ts in topologies for t in ts), default=0)
        length = max(length, 1)
        for m, (model, a, tops) in enumerate(zip(models, arrays, topologies, strict=True)):
            masses.append(np.append(a.masses, 0.0))
            brs.append(np.append(a.br, 1.0))
            sigmas.append(a.sigma)
            decay_slot = {d: br_base + i for i, d in enumerate(a.decays)}
            pad = br_base + len(a.decays)
            pair_slot = {p: sigma_base + i for i, p in enumerate(a.pairs)}
            for t_index, topology in enumerate(tops):
                row = [decay_slot[d] for d in topology.decays]
                t_decays.append(row + [pad] * (length - len(row)))
                t_pair.append(pair_slot[topology.pair])
                t_family.append(family_base + topology.family)
                t_model.append(m)
                t_particles.append(
                    frozenset(abs(n[0]) for _, b in topology.parts for n in b.nodes)
                )
                matches = self.matches(topology)
                available = {i for i, s in enumerate(SQRTS) if topology.weights.get(s)}
                if len(matches.result):
                    parts.append((m, topo_base + t_index, matches, available, model, topology))
            mass_base += len(a.masses) + 1
            br_base += len(a.decays) + 1
            sigma_base += len(a.pairs)
            topo_base += len(tops)
            family_base += 1 + max((t.family for t in tops), default=0)
        w = self.width
        columns: dict[str, list[np.ndarray]] = {k: [] for k in (
            "topology", "model", "result", "dataset", "txname", "coefficient", "sqrts",
            "source", "const")}
        condition_sms: list[tuple[int, ...]] = []
        factors: list[np.ndarray] = []
        mass_base = np.cumsum([0] + [len(a.masses) + 1 for a in arrays])
        long_lived = [_has_lifetimes(model) for model in models]
        any_long_lived = any(long_lived)  # (else no factors at all: every xi is 1)
        for m, t, matches, available, model, topology in parts:
            keep = np.isin(matches.sqrts, list(available))
            if not keep.any():
                continue
            n = int(keep.sum())
            pdg = matches.pdg[keep]
            kind = matches.kind[keep]
            particles = arrays[m].particles
            position = np.searchsorted(particles, pdg)
            inside = position < len(particles)
            found = inside & (particles[np.minimum(position, len(particles) - 1)] == pdg)
            local = np.where(found, position, -1)
            source = np.where(kind == _MASS, local + mass_base[m], -1)
            widths = np.ones(pdg.shape)
            final = np.zeros(pdg.shape)
            for p, w in model.widths.items():
                widths[pdg == p] = w
                if long_lived[m]:
                    final[pdg == p] = _final_width(p, model)
            widths = np.where(kind == _WIDTH_LAST, final, widths)
            const = np.where((kind == _WIDTH) | (kind == _WIDTH_LAST), rescale_width(widths), 0.0)
            columns["topology"].append(np.full(n, t))
            columns["model"].append(np.full(n, m))
            columns["result"].append(matches.result[keep])
            columns["dataset"].append(matches.dataset[keep])
            columns["txname"].append(matches.txname[keep])
            columns["coefficient"].append(matches.coefficient[keep])
            columns["sqrts"].append(matches.sqrts[keep])
            columns["source"].append(source)
            columns["const"].append(const)
            condition_sms.extend(c for c, k in zip(matches.condition_sms, keep, strict=True) if k)
            if any_long_lived:
                factors.append(np.asarray([
                    self._factor(topology, model, int(r), int(d), int(x), nodes)
                    for r, d, x, nodes, k in zip(matches.result, matches.dataset,
                                                 matches.txname, matches.width_nodes, keep,
                                                 strict=True) if k
                ]) if long_lived[m] else np.ones(n))

        def cat(name: str, dtype: type, shape: tuple[int, ...] = ()) -> np.ndarray:
            if not columns[name]:
                return np.zeros((0, *shape), dtype)
            return np.concatenate(columns[name]).astype(dtype)

        results = self.database.results
        result = cat("result", np.int64)
        efficiency = np.asarray(
            [results[r].data_type == "efficiencyMap" for r in result.tolist()], dtype=bool
        )
        return Plan(
            n_models=len(models),
            masses=np.concatenate(masses) if masses else np.zeros(0),
            br=np.concatenate(brs) if brs else np.zeros(0),
            sigma=np.concatenate(sigmas) if sigmas else np.zeros((0, 2)),
            topology_pair=np.asarray(t_pair, np.int64),
            topology_decays=np.asarray(t_decays, np.int64).reshape(len(t_pair), length),
            topology_family=np.asarray(t_family, np.int64),
            topology_model=np.asarray(t_model, np.int64),
            topology_particles=t_particles,
            item_topology=cat("topology", np.int64),
            item_model=cat("model", np.int64),
            item_result=result,
            item_dataset=cat("dataset", np.int64),
            item_txname=cat("txname", np.int64),
            item_coefficient=cat("coefficient", float),
            item_sqrts=cat("sqrts", np.int64),
            item_source=cat("source", np.int64, (2, w)),
            item_const=cat("const", float, (2, w)),
            item_efficiency=efficiency,
            item_condition_sms=condition_sms,
            item_factor=(np.concatenate(factors) if factors else np.zeros(0))
            if any_long_lived else None,
        )

    def _factor(
        self, topology: Topology, model: Protomodel, r: int, d: int, t: int,
        on_width_axes: frozenset[tuple[int, int]],
    ) -> float:
        """The lifetime reweighting xi of one matched item."""
        result = self.database.results[r]
        dataset = result.datasets[d]
        lengths = effective_lengths(result.lifetime_lengths, dataset.lifetime_lengths,
                                    dataset.topologies[t].lifetime_lengths)
        decaying, final = [], []
        for b, branch in topology.parts:
            last = len(branch.nodes) - (0 if branch.decayed else 1)
            for p, (pdg, flag) in enumerate(branch.nodes):
                if (b, p) in on_width_axes:
                    continue
                if p < last:
                    width = model.widths.get(abs(pdg))
                    decaying.append(math.inf if width is None else width)
                else:
                    final.append(0.0 if flag == INVISIBLE else _final_width(pdg, model))
        return reweighting(decaying, final, *lengths)
