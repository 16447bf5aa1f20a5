"""Theory predictions: from a protomodel to sigma x BR (x eff) for every result of the database.

Follows SModelS 3.0.3 (``docs/predictions.md`` §3-§6): matched topologies add their weight to
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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from protomodels.database.database import Database
from protomodels.database.records import Result
from protomodels.database.records import Topology as TxName
from protomodels.theory.decomposition import Topology, decompose
from protomodels.theory.interpolation import rescale_width, round_significant
from protomodels.theory.locator import GridIndex
from protomodels.theory.matching import Matcher, Usage
from protomodels.theory.protomodel import Protomodel
from protomodels.theory.xsec import XsecTables, load_tables, production_channels, table_xsec

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
    """

    sigmacut: float = 0.005
    minmassgap: float = 5.0
    combine: bool = True
    best_dataset: bool = True
    interpolation: str = "log"


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
        extra: room for the statistics stage (likelihoods, mu-hat, ...).
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
    extra: dict[str, Any] = field(default_factory=dict)

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
        record.update({k: v for k, v in self.extra.items() if not isinstance(v, np.ndarray)})
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


class Predictor:
    """Compiled database (patterns, triangulations) that turns protomodels into predictions.

    Build it once per database and reuse it: :meth:`predict` is then the fast path.
    """

    def __init__(
        self,
        database: Database,
        *,
        settings: PredictionSettings | None = None,
        tables: XsecTables | None = None,
        results: Iterable[Result] | None = None,
    ) -> None:
        self.database = database
        self.settings = settings or PredictionSettings()
        self._tables = tables
        chosen = list(results) if results is not None else list(database.results)
        self._chosen = {r.result_id for r in chosen}
        self.matcher = Matcher(database)
        self._matches: dict[tuple, list[tuple[Usage, list[tuple[int, int]]]]] = {}
        self.grid_index = GridIndex(
            grid.values
            for result in database.results
            for dataset in result.datasets
            for txname in dataset.topologies
            for grid in txname.grids.values()
        )

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

    # -- grids ------------------------------------------------------------------------------
    def _lookup(self, txname: TxName, kind: str, vectors: np.ndarray) -> np.ndarray:
        return self._batch_lookup([(txname, kind, v) for v in np.atleast_2d(vectors)])

    # -- main -------------------------------------------------------------------------------
    def predict(self, model: Protomodel) -> list[TheoryPrediction]:
        """All theory predictions of a protomodel, sorted by r_obs (largest first)."""
        return self.predict_batch([model])[0]

    def predict_batch(self, models: Iterable[Protomodel]) -> list[list[TheoryPrediction]]:
        """Predictions of many protomodels; the grid lookups of all of them run as one batch."""
        settings = self.settings
        matched = []
        for model in models:
            model = replace(model, masses={p: round(m, 1) for p, m in model.masses.items()})
            topologies = decompose(
                model,
                self.cross_sections(model),
                sigmacut=settings.sigmacut,
                minmassgap=settings.minmassgap,
            )
            matched.append(self._match(model, topologies))
        self._evaluate(matched)
        batch: list[list[TheoryPrediction]] = []
        ul_requests: list[tuple[TxName, str, np.ndarray]] = []
        ul_predictions: list[TheoryPrediction] = []
        for items in matched:
            predictions: list[TheoryPrediction] = []
            for (ri, di), by_tx in items.items():
                result = self.database.results[ri]
                dataset = result.datasets[di]
                if dataset.data_type == "upperLimit":
                    for ti, tx_items in by_tx.items():
                        txname = dataset.topologies[ti]
                        for p in self._ul_predictions(result, txname, tx_items):
                            predictions.append(p)
                            ul_predictions.append(p)
                            ul_requests.append(
                                (txname, "expected_upper_limit", np.asarray(p.masses))
                            )
            em: dict[int, dict[int, dict[int, list[_Item]]]] = defaultdict(dict)
            for (ri, di), by_tx in items.items():
                if self.database.results[ri].data_type == "efficiencyMap":
                    em[ri][di] = by_tx
            for ri, per_dataset in em.items():
                predictions += self._em_predictions(self.database.results[ri], per_dataset)
            batch.append(predictions)
        for p, value in zip(ul_predictions, self._batch_lookup(ul_requests), strict=True):
            p.expected_upper_limit_fb = float(value) if np.isfinite(value) else None
        for predictions in batch:
            predictions.sort(key=lambda p: (p.r_obs is None, -(p.r_obs or 0.0)))
        return batch

    def _matches_of(self, topology: Topology) -> list[tuple[Usage, list[tuple[int, int]]]]:
        """(usage, branch assignments) of every constraint a topology matches (cached)."""
        key = topology.branches
        found = self._matches.get(key)
        if found is None:
            found = []
            for pattern in self.matcher.candidates(topology):
                assignments = self.matcher.assignments(topology, pattern)
                if not assignments:
                    continue
                for usage in self.matcher.usages[pattern]:
                    if self.database.results[usage.result].result_id in self._chosen:
                        found.append((usage, assignments))
            self._matches[key] = found
        return found

    def _match(
        self, model: Protomodel, topologies: list[Topology]
    ) -> dict[tuple[int, int], dict[int, list[_Item]]]:
        """Matched (topology, txname) items with their data vectors and weights."""
        results = self.database.results
        found: dict[tuple[int, int], dict[int, list[_Item]]] = defaultdict(
            lambda: defaultdict(list)
        )
        vectors: dict[tuple, np.ndarray] = {}
        for t_index, topology in enumerate(topologies):
            for usage, assignments in self._matches_of(topology):
                result = results[usage.result]
                weight = topology.weights.get(result.sqrts_tev)
                if weight is None:
                    continue
                txname = result.datasets[usage.dataset].topologies[usage.topology]
                key = (t_index, txname.axes, id(usage.node_positions))
                vector = vectors.get(key)
                if vector is None:
                    vector = self._data_vector(model, topology, txname, usage, assignments)
                    vectors[key] = vector
                found[(usage.result, usage.dataset)][usage.topology].append(
                    _Item(
                        t_index, topology.family, usage.topology, usage.coefficient, vector, weight
                    )
                )
        return found

    @staticmethod
    def _data_vector(
        model: Protomodel,
        topology: Topology,
        txname: TxName,
        usage: Usage,
        assignments: list[tuple[int, int]],
    ) -> np.ndarray:
        """The txname's data vector for a matched topology: of the two branch assignments
        that match, the lexicographically larger vector (SModelS ``TxName.hasSMSas``)."""
        best = None
        for assignment in assignments:
            vector = []
            for axis in txname.axes:
                b, p = usage.node_positions[axis.node]
                nodes = topology.branches[assignment[b]].nodes
                if axis.attribute == "mass":
                    vector.append(model.masses[abs(nodes[p][0])])
                else:
                    last = p == len(nodes) - 1
                    width = 0.0 if last else model.widths.get(abs(nodes[p][0]), 1.0)
                    vector.append(float(rescale_width(width)))
            if best is None or vector > best:
                best = vector
        return np.asarray(best)

    def _batch_lookup(self, requests: list[tuple[TxName, str, np.ndarray]]) -> np.ndarray:
        """Values of many (txname, grid kind, point) lookups in one batched call."""
        out = np.full(len(requests), np.nan)
        batch, where = [], []
        for i, (txname, kind, vector) in enumerate(requests):
            grid = txname.grids.get(kind)
            if grid is None:
                continue
            widths = tuple(j for j, a in enumerate(txname.axes) if a.attribute == "totalwidth")
            batch.append((grid.points, widths, grid.values, vector))
            where.append(i)
        if batch:
            out[where] = self.grid_index.lookup(batch)
        return out

    def _evaluate(self, matched: list[dict[tuple[int, int], dict[int, list[_Item]]]]) -> None:
        """Upper limits (UL data sets) or efficiencies (EM data sets) of all matched items."""
        requests, targets = [], []
        for items in matched:
            for (ri, di), by_tx in items.items():
                dataset = self.database.results[ri].datasets[di]
                kind = "upper_limit" if dataset.data_type == "upperLimit" else "efficiency"
                for ti, tx_items in by_tx.items():
                    txname = dataset.topologies[ti]
                    for it in tx_items:
                        requests.append((txname, kind, it.vector))
                        targets.append(it)
        for it, value in zip(targets, self._batch_lookup(requests), strict=True):
            it.value = float(value)

    @staticmethod
    def _deduplicate(items: list[_Item]) -> list[_Item]:
        """Keep, per family of related topologies, the member with the largest weight."""
        kept, seen = [], set()
        for it in sorted(items, key=lambda i: -i.weight):
            if it.family in seen:
                continue
            seen.add(it.family)
            kept.append(it)
        return kept

    def _ul_predictions(
        self, result: Result, txname: TxName, items: list[_Item]
    ) -> list[TheoryPrediction]:
        items = [it for it in items if np.isfinite(it.value)]
        items = self._deduplicate(items)
        clusters = self._cluster(txname, items)
        predictions = []
        for members, vector, ul in clusters:
            xsec = sum(it.coefficient * it.weight for it in members)
            if xsec < _MIN_XSEC:
                continue
            predictions.append(
                TheoryPrediction(
                    analysis=result.analysis_id,
                    result_id=result.result_id,
                    dataset=None,
                    data_type="upperLimit",
                    txnames=(txname.name,),
                    xsec_fb=xsec,
                    upper_limit_fb=ul,
                    expected_upper_limit_fb=None,
                    sqrts_tev=result.sqrts_tev,
                    lumi_ifb=result.lumi_ifb,
                    masses=tuple(float(x) for x in vector),
                )
            )
        return predictions

    def _cluster(
        self, txname: TxName, items: list[_Item]
    ) -> list[tuple[list[_Item], np.ndarray, float]]:
        """SModelS mass clustering of UL txnames (§3.7)."""
        groups: dict[tuple, list[_Item]] = defaultdict(list)
        for it in sorted(items, key=lambda i: i.value):
            groups[(it.value, tuple(it.vector))].append(it)
        clusters = [(members, members[0].vector, members[0].value) for members in groups.values()]
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
                merged = (members, average, ul)
                clusters = [c for k, c in enumerate(clusters) if k not in (i, j)] + [merged]
            else:
                invalid.add(key)
        clusters.sort(key=lambda c: (-sum(m.weight for m in c[0]), -len(c[0])))
        return clusters

    def _em_predictions(
        self, result: Result, per_dataset: Mapping[int, Mapping[int, list[_Item]]]
    ) -> list[TheoryPrediction]:
        signals = np.zeros(len(result.datasets))
        txnames_of: dict[int, set[str]] = {}
        for di, by_tx in per_dataset.items():
            dataset = result.datasets[di]
            items_ds: list[_Item] = []
            for items in by_tx.values():
                items_ds += [
                    it for it in items if np.isfinite(it.value) and abs(it.value) >= _MIN_EFF
                ]
            for it in items_ds:
                it.weight = it.weight * it.value
            kept = self._deduplicate(items_ds)
            total = sum(it.coefficient * it.weight for it in kept)
            if total >= _MIN_XSEC:
                signals[di] = total
                txnames_of[di] = {dataset.topologies[it.txname].name for it in kept}
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

        combinable = result.covariance is not None or any(not w.full for w in result.pyhf)
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
