"""Which results may enter one likelihood: the combinability graph of analyses.

Input: ``<shared>/data/combinability/*.json``, ``{analysis id: [ids it may be combined with]}``
(``combinability_yaml.json``, derived from the experiments' yaml files, is the default;
``combinability_handcrafted.json`` is the alternative; any JSON of the same shape is accepted).
Entries are analysis ids, ``"id:dataset"`` for data-set level entries, or ``*`` wildcards
(``CMS-SUS-*``).

Rule (``data/README.md``; SModelS 3.0.3 ``DataSet.isCombinableWith``, which the reference
builder uses): results of different experiments or of different sqrt(s) are always combinable;
within one experiment and energy a pair is combinable when either one lists the other (the files
are not exactly symmetric, the lists are read as an undirected graph, as SModelS does). Two results
of the same analysis never are: an upper-limit result and its ``-eff``/``-agg``/``-ma5``/``-trim``
sibling are one analysis (:func:`analysis_base`). An id is looked up as it is and, failing that,
with those suffixes stripped.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Protocol

import networkx as nx
import numpy as np

from protomodels.exceptions import ProtomodelsError
from protomodels.paths import shared_dir

__all__ = [
    "MATRICES",
    "CombinabilityError",
    "CombinabilityGraph",
    "ResultLike",
    "analysis_base",
    "experiment",
    "load_combinability",
]


def __dir__() -> list[str]:
    return __all__


#: named combinability files in ``<shared>/data/combinability``
MATRICES: Mapping[str, str] = {
    "yaml": "combinability_yaml.json",
    "handcrafted": "combinability_handcrafted.json",
}

#: suffixes of a result folder that do not make a new analysis (longest first)
_SIBLING_SUFFIXES = ("-eff-trim", "-eff", "-agg", "-ma5", "-trim")


class CombinabilityError(ProtomodelsError):
    """A combinability file or matrix is missing or malformed."""


class ResultLike(Protocol):
    """What the graph needs of a result or prediction (``TheoryPrediction`` has it)."""

    @property
    def analysis(self) -> str: ...

    @property
    def dataset(self) -> str | None: ...

    @property
    def sqrts_tev(self) -> float: ...


@lru_cache(maxsize=4096)
def analysis_base(analysis_id: str) -> str:
    """The analysis an id belongs to: ``-eff``, ``-agg``, ``-ma5``, ``-trim`` suffixes removed.

    >>> analysis_base("CMS-SUS-19-006-agg")
    'CMS-SUS-19-006'
    """
    base = analysis_id.strip()
    changed = True
    while changed:
        changed = False
        for suffix in _SIBLING_SUFFIXES:
            if base.endswith(suffix):
                base = base[: -len(suffix)]
                changed = True
    return base


def experiment(analysis_id: str) -> str:
    """``"CMS"`` or ``"ATLAS"`` (SModelS's rule: ``CMS`` in the id, else ATLAS)."""
    return "CMS" if "CMS" in analysis_id else "ATLAS"


@dataclass(frozen=True, eq=False)
class CombinabilityGraph:
    """Analyses (and data-set labels) as nodes, combinable pairs as edges.

    Attributes:
        graph: the frozen undirected ``networkx`` graph of the listed pairs.
        wildcards: ``(label, pattern)`` for entries with ``*`` (matched with fnmatch).
        source: where the lists came from (file path or ``"<mapping>"``).
    """

    graph: nx.Graph
    wildcards: tuple[tuple[str, str], ...]
    source: str
    _codes: dict[tuple[str, str | None, float], int] = field(
        default_factory=dict, init=False, repr=False
    )
    _table: list[np.ndarray] = field(default_factory=list, init=False, repr=False)

    @classmethod
    def from_mapping(
        cls, lists: Mapping[str, Iterable[str]], source: str = "<mapping>"
    ) -> CombinabilityGraph:
        """Build the graph from ``{id: [ids]}`` (validated)."""
        if not isinstance(lists, Mapping):
            msg = f"{source}: expected a JSON object {{analysis id: [ids]}}, got {type(lists)}"
            raise CombinabilityError(msg)
        graph = nx.Graph()
        wildcards = []
        for key, values in lists.items():
            if not isinstance(key, str) or isinstance(values, str):
                msg = f"{source}: entry {key!r} must map an id to a list of ids"
                raise CombinabilityError(msg)
            try:
                items = list(values)
            except TypeError as err:
                msg = f"{source}: entry {key!r} must map an id to a list of ids"
                raise CombinabilityError(msg) from err
            graph.add_node(key)
            for other in items:
                if not isinstance(other, str):
                    msg = f"{source}: entry {key!r} lists {other!r}, which is not an id"
                    raise CombinabilityError(msg)
                if "*" in other or "?" in other:
                    wildcards.append((key, other))
                elif other != key:
                    graph.add_edge(key, other)
        return cls(nx.freeze(graph), tuple(wildcards), source)

    # -- look-ups ---------------------------------------------------------------------------
    @staticmethod
    def labels(analysis_id: str, dataset: str | None = None) -> tuple[str, ...]:
        """Labels under which a result may be listed: id, base id, and ``id:dataset``."""
        ids = [analysis_id]
        base = analysis_base(analysis_id)
        if base != analysis_id:
            ids.append(base)
        labels = list(ids)
        if dataset and dataset != "(combined)":
            labels += [f"{i}:{dataset}" for i in ids]
        return tuple(labels)

    def listed(self, a: Sequence[str], b: Sequence[str]) -> bool:
        """Does any label of ``a`` list any label of ``b`` (or vice versa)?"""
        graph = self.graph
        for x in a:
            if x in graph:
                adjacent = graph.adj[x]
                for y in b:
                    if y in adjacent:
                        return True
        for key, pattern in self.wildcards:
            if key in a and any(fnmatch.fnmatchcase(y, pattern) for y in b):
                return True
            if key in b and any(fnmatch.fnmatchcase(x, pattern) for x in a):
                return True
        return False

    def combinable(self, a: ResultLike, b: ResultLike) -> bool:
        """May results ``a`` and ``b`` enter one likelihood? (rule in the module docstring)"""
        if analysis_base(a.analysis) == analysis_base(b.analysis):
            return False
        if not math.isclose(float(a.sqrts_tev), float(b.sqrts_tev), abs_tol=1e-5):
            return True
        if experiment(a.analysis) != experiment(b.analysis):
            return True
        return self.listed(self.labels(a.analysis, a.dataset), self.labels(b.analysis, b.dataset))

    def matrix(self, results: Sequence[ResultLike]) -> np.ndarray:
        """The symmetric (n, n) bool matrix of :meth:`combinable` (False on the diagonal).

        Pairs are decided once per (analysis, data set, sqrt(s)) and remembered, so a walk
        that meets the same results again pays for the look-ups only once."""
        codes = np.fromiter((self._code(r) for r in results), np.int64, len(results))
        table = self._table[0] if self._table else np.zeros((0, 0), np.int8)
        out = table[np.ix_(codes, codes)]
        for i, j in zip(*np.nonzero(np.triu(out < 0, 1)), strict=True):
            a, b = int(codes[i]), int(codes[j])
            if table[a, b] < 0:
                table[a, b] = table[b, a] = self.combinable(results[i], results[j])
            out[i, j] = out[j, i] = table[a, b]
        out = out > 0
        np.fill_diagonal(out, False)
        return out

    def _code(self, result: ResultLike) -> int:
        """Row of a result's label in the table of decided pairs (-1: not decided yet)."""
        key = (result.analysis, result.dataset, round(float(result.sqrts_tev), 5))
        code = self._codes.get(key)
        if code is None:
            code = self._codes[key] = len(self._codes)
            if not self._table or code >= len(self._table[0]):
                grown = np.full((max(64, 2 * (code + 1)),) * 2, -1, dtype=np.int8)
                if self._table:
                    old = self._table[0]
                    grown[: len(old), : len(old)] = old
                    self._table[0] = grown
                else:
                    self._table.append(grown)
        return code

    def __call__(self, results: Sequence[ResultLike]) -> np.ndarray:
        """Same as :meth:`matrix` (so the graph is a critics ``CombinabilityFunction``)."""
        return self.matrix(results)


@cache
def _load_file(path: str) -> CombinabilityGraph:
    try:
        with open(path) as handle:
            lists = json.load(handle)
    except OSError as err:
        msg = f"combinability file {path} cannot be read ({err}); check the path"
        raise CombinabilityError(msg) from err
    except json.JSONDecodeError as err:
        msg = f"combinability file {path} is not valid JSON ({err})"
        raise CombinabilityError(msg) from err
    return CombinabilityGraph.from_mapping(lists, source=path)


def load_combinability(
    source: str | os.PathLike[str] | Mapping[str, Iterable[str]] = "yaml",
    *,
    shared: str | os.PathLike[str] | None = None,
) -> CombinabilityGraph:
    """Load a combinability graph.

    Args:
        source: ``"yaml"`` (default) or ``"handcrafted"`` (files in
            ``<shared>/data/combinability``), the path of a JSON file of the same shape, or the
            mapping itself.
        shared: the shared data folder (default: :func:`protomodels.paths.shared_dir`).

    Raises:
        CombinabilityError: unknown name, unreadable or malformed file.
    """
    if isinstance(source, Mapping):
        return CombinabilityGraph.from_mapping(source)
    if isinstance(source, str) and source in MATRICES:
        path = shared_dir(shared) / "data" / "combinability" / MATRICES[source]
    else:
        path = Path(source)
        if not path.suffix and not path.exists():
            names = ", ".join(MATRICES)
            msg = f"unknown combinability matrix {source!r}; use one of {names} or a JSON path"
            raise CombinabilityError(msg)
    if not path.is_file():
        msg = f"combinability file {path} does not exist; pass a name ({', '.join(MATRICES)})"
        msg += " or the path of a JSON file {analysis id: [ids]}"
        raise CombinabilityError(msg)
    return _load_file(str(path.resolve()))
