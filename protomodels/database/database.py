"""The loaded database: all results in memory, with selection and counting helpers."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from protomodels.database import store
from protomodels.database.records import Result
from protomodels.exceptions import StoreSchemaError

__all__ = ["Database", "load"]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True, eq=False)
class Database:
    """The experimental results of one store.

    Attributes:
        path: the SQLite store.
        meta: provenance (database version, source checksum, import time, code version, ...).
        results: every imported result, in source order.
        problems: (path, kind, reason) of results that were skipped or failed at import.
    """

    path: Path
    meta: dict[str, str]
    results: tuple[Result, ...]
    problems: tuple[tuple[str, str, str], ...]

    @property
    def version(self) -> str | None:
        """Version of the SModelS database the store was built from."""
        return self.meta.get("database_version")

    def __len__(self) -> int:
        return len(self.results)

    def result(self, result_id: str) -> Result:
        """The result with this folder name (e.g. ``CMS-SUS-19-006-agg``).

        Raises:
            KeyError: with the closest ids as a hint.
        """
        for r in self.results:
            if r.result_id == result_id:
                return r
        close = [r.result_id for r in self.results if result_id.lower() in r.result_id.lower()]
        hint = f"; did you mean {', '.join(close[:5])}?" if close else ""
        msg = f"no result {result_id!r} in {self.path}{hint}"
        raise KeyError(msg)

    def select(
        self,
        *,
        sqrts: float | None = None,
        data_type: str | None = None,
        collaboration: str | None = None,
        topology: str | None = None,
        grep: str | None = None,
        ids: list[str] | None = None,
        superseded: bool = True,
    ) -> list[Result]:
        """Results passing all given filters.

        Args:
            sqrts: centre-of-mass energy in TeV.
            data_type: ``upperLimit`` or ``efficiencyMap`` (``ul``/``em`` accepted).
            collaboration: ``ATLAS`` or ``CMS`` (case-insensitive).
            topology: a txname (e.g. ``T2tt``) the result must have.
            grep: a regular expression searched in result id, analysis id and pretty name.
            ids: result ids (folder names) or analysis ids to keep.
            superseded: keep results that have been superseded by a newer one.
        """
        aliases = {"ul": "upperLimit", "em": "efficiencyMap", "eff": "efficiencyMap"}
        if data_type is not None:
            data_type = aliases.get(data_type.lower(), data_type)
        pattern = re.compile(grep, re.IGNORECASE) if grep else None
        chosen = []
        for r in self.results:
            if sqrts is not None and abs(r.sqrts_tev - sqrts) > 1e-6:
                continue
            if data_type is not None and r.data_type != data_type:
                continue
            if collaboration is not None and r.collaboration.lower() != collaboration.lower():
                continue
            if topology is not None and topology not in r.topology_names:
                continue
            if pattern is not None and not any(
                pattern.search(s or "") for s in (r.result_id, r.analysis_id, r.pretty_name)
            ):
                continue
            if ids is not None and r.result_id not in ids and r.analysis_id not in ids:
                continue
            if not superseded and r.superseded_by:
                continue
            chosen.append(r)
        return chosen

    def counts(self) -> dict[str, dict[str, int]]:
        """Numbers of results per sqrts, collaboration and data type, and totals."""
        results = self.results
        datasets = [d for r in results for d in r.datasets]
        topologies = [t for d in datasets for t in d.topologies]
        return {
            "sqrts": dict(sorted(Counter(f"{r.sqrts_tev:g} TeV" for r in results).items())),
            "collaboration": dict(sorted(Counter(r.collaboration for r in results).items())),
            "data_type": dict(sorted(Counter(r.data_type for r in results).items())),
            "likelihood": dict(sorted(Counter(r.likelihood for r in results).items())),
            "totals": {
                "results": len(results),
                "datasets": len(datasets),
                "topologies": len(topologies),
                "grids": sum(len(t.grids) for t in topologies),
                "grid_points": sum(g.n_points for t in topologies for g in t.grids.values()),
                "pyhf_workspaces": sum(len(r.pyhf) for r in results),
                "superseded": sum(1 for r in results if r.superseded_by),
            },
        }


def load(path: str | Path, *, workspaces: bool = True) -> Database:
    """Load a store into memory.

    Raises:
        DatabaseNotFoundError: no such file.
        StoreSchemaError: not a store of this version.
    """
    path = Path(path)
    conn = store.connect(path)
    try:
        meta = store.read_meta(conn)
        results = store.load_results(conn, workspaces=workspaces)
        problems = tuple(conn.execute("SELECT path, kind, reason FROM problems ORDER BY path"))
    except sqlite3.DatabaseError as err:  # pragma: no cover - corrupt file
        msg = f"cannot read store {path}: {err}; delete it and import again"
        raise StoreSchemaError(msg) from err
    finally:
        conn.close()
    return Database(path=path, meta=meta, results=tuple(results), problems=problems)
