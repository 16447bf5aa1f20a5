"""The SQLite store: schema, writing one result per transaction, and loading records.

Grids are stored as float64 blobs; identical point sets (efficiency maps of several signal
regions often share one mass grid) are stored once, so that later stages can triangulate each
point set once. pyhf workspaces are stored as zlib-compressed JSON.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from protomodels.database.constraints import Constraint
from protomodels.database.records import (
    Axis,
    DataSet,
    Grid,
    PyhfChannel,
    PyhfWorkspace,
    Result,
    Topology,
)
from protomodels.exceptions import DatabaseNotFoundError, StoreSchemaError

__all__ = [
    "SCHEMA_VERSION",
    "connect",
    "delete_result",
    "load_results",
    "read_meta",
    "stored_checksums",
    "transaction",
    "write_meta",
    "write_result",
]


def __dir__() -> list[str]:
    return __all__


#: bump when the tables change; a store with another version is rebuilt on import
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS results (
    result_id TEXT PRIMARY KEY, position INTEGER, analysis_id TEXT, path TEXT,
    collaboration TEXT, sqrts_tev REAL, lumi_ifb REAL, data_type TEXT, likelihood TEXT,
    fallback TEXT, covariance BLOB, dataset_order TEXT, include_crs INTEGER,
    signal_uncertainty REAL, signature TEXT, pretty_name TEXT, url TEXT, arxiv TEXT,
    publication TEXT, supersedes TEXT, superseded_by TEXT, private INTEGER, preliminary INTEGER,
    lifetime_lengths TEXT, extra TEXT, checksum TEXT, imported_at TEXT
);
CREATE TABLE IF NOT EXISTS datasets (
    result_id TEXT, position INTEGER, dataset_id TEXT, data_id TEXT, data_type TEXT,
    observed_n REAL, expected_bg REAL, bg_error REAL, upper_limit_fb REAL,
    expected_upper_limit_fb REAL, third_moment REAL, region_type TEXT, aggregated TEXT,
    lifetime_lengths TEXT, PRIMARY KEY (result_id, position)
);
CREATE TABLE IF NOT EXISTS topologies (
    topology_key INTEGER PRIMARY KEY, result_id TEXT, dataset_position INTEGER, position INTEGER,
    name TEXT, constraint_json TEXT, constraint_text TEXT, condition_text TEXT, axes TEXT,
    validated TEXT, source TEXT, lifetime_lengths TEXT
);
CREATE INDEX IF NOT EXISTS topologies_result ON topologies (result_id);
CREATE TABLE IF NOT EXISTS grid_points (
    points_key INTEGER PRIMARY KEY, digest TEXT UNIQUE, n_points INTEGER, n_dims INTEGER,
    data BLOB
);
CREATE TABLE IF NOT EXISTS grids (
    topology_key INTEGER, kind TEXT, points_key INTEGER, grid_values BLOB,
    PRIMARY KEY (topology_key, kind)
);
CREATE TABLE IF NOT EXISTS pyhf_workspaces (
    result_id TEXT, position INTEGER, file_name TEXT, channels TEXT, missing INTEGER,
    full INTEGER, workspace BLOB, PRIMARY KEY (result_id, position)
);
CREATE TABLE IF NOT EXISTS notes (result_id TEXT, kind TEXT, source TEXT, message TEXT);
CREATE TABLE IF NOT EXISTS problems (path TEXT PRIMARY KEY, kind TEXT, reason TEXT);
"""

_TABLES = (
    "results",
    "datasets",
    "topologies",
    "grids",
    "pyhf_workspaces",
    "notes",
    "problems",
    "grid_points",
    "meta",
)


#: stored results whose path starts with this were added by users
#: (:mod:`protomodels.database.user_results`); an import of the database keeps them
USER_PATH_PREFIX = "user/"


def connect(path: str | Path, *, create: bool = False) -> sqlite3.Connection:
    """Open a store; with ``create`` make the file and tables (a store of another schema
    version is emptied first).

    Raises:
        DatabaseNotFoundError: the file does not exist and ``create`` is False.
        StoreSchemaError: the file is not a protomodels store of this schema version.
    """
    path = Path(path)
    if not create and not path.exists():
        msg = f"store {path} does not exist; build it with 'protomodel db import --out {path}'"
        raise DatabaseNotFoundError(msg)
    _check_sqlite_file(path, create=create)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as err:
        msg = f"cannot open the store {path} ({err}); check the file and its folder's permissions"
        raise StoreSchemaError(msg) from err
    try:
        version = read_meta(conn).get("schema_version")
    except sqlite3.DatabaseError as err:
        conn.close()
        msg = f"{path} is not a protomodels store ({err}); delete it and import again"
        raise StoreSchemaError(msg) from err
    if version is not None and version != SCHEMA_VERSION:
        if not create:
            conn.close()
            msg = (
                f"store {path} has schema version {version}, this code needs {SCHEMA_VERSION}; "
                "rebuild it with 'protomodel db import'"
            )
            raise StoreSchemaError(msg)
        for table in _TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    if not create and version is None:
        conn.close()
        msg = f"{path} has no protomodels tables; build it with 'protomodel db import --out {path}'"
        raise StoreSchemaError(msg)
    if create and version is None and conn.execute("SELECT 1 FROM sqlite_master").fetchone():
        conn.close()  # an SQLite file of something else: never write our tables into it
        msg = (
            f"{path} is an SQLite database of something else, not a store; "
            "write the store elsewhere"
        )
        raise StoreSchemaError(msg)
    # only once the file is known to be (or to become) a store
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    if create:
        conn.executescript(_SCHEMA)
        write_meta(conn, {"schema_version": SCHEMA_VERSION})
    return conn


#: the first bytes of every SQLite 3 file
_SQLITE_HEADER = b"SQLite format 3\x00"


def _check_sqlite_file(path: Path, *, create: bool) -> None:
    """Refuse, before SQLite touches it, a path that is a folder, an empty file (unless a store
    is to be made in it) or a file that is not an SQLite database: SQLite would otherwise
    write a journal beside it, or turn an empty file into a database."""
    if not path.exists():
        return
    build = "build a store with 'protomodel db import --out STORE'"
    if path.is_dir():
        raise StoreSchemaError(f"{path} is a folder, not a protomodels store; {build}")
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_HEADER))
    except OSError as err:
        raise StoreSchemaError(f"cannot read the store {path}: {err.strerror}") from err
    if not head:
        if create:
            return
        raise StoreSchemaError(f"{path} is empty, not a protomodels store; {build}")
    if head != _SQLITE_HEADER:
        what = "write the store elsewhere" if create else build
        raise StoreSchemaError(
            f"{path} is not a protomodels store (not an SQLite database); {what}"
        )


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN ... COMMIT, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    """The key/value metadata (empty if the table does not exist yet)."""
    exists = conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='meta'"
    ).fetchone()
    if not exists:
        return {}
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def write_meta(conn: sqlite3.Connection, values: dict[str, Any]) -> None:
    """Insert or replace metadata entries."""
    conn.executemany(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        [(k, None if v is None else str(v)) for k, v in values.items()],
    )


def stored_checksums(conn: sqlite3.Connection) -> dict[str, str]:
    """Source checksum of every stored result, by path."""
    return dict(conn.execute("SELECT path, checksum FROM results").fetchall())


def delete_result(conn: sqlite3.Connection, result_id: str) -> None:
    """Remove a result and everything that hangs on it (grid points are pruned separately)."""
    conn.execute(
        "DELETE FROM grids WHERE topology_key IN "
        "(SELECT topology_key FROM topologies WHERE result_id=?)",
        (result_id,),
    )
    for table in ("topologies", "datasets", "pyhf_workspaces", "notes", "results"):
        conn.execute(f"DELETE FROM {table} WHERE result_id=?", (result_id,))


def _blob(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype="<f8").tobytes()


def _points_key(conn: sqlite3.Connection, points: np.ndarray) -> int:
    data = _blob(points)
    digest = hashlib.sha1(data + str(points.shape).encode()).hexdigest()  # noqa: S324
    row = conn.execute("SELECT points_key FROM grid_points WHERE digest=?", (digest,)).fetchone()
    if row:
        return int(row[0])
    cur = conn.execute(
        "INSERT INTO grid_points (digest, n_points, n_dims, data) VALUES (?, ?, ?, ?)",
        (digest, points.shape[0], points.shape[1], data),
    )
    return int(cur.lastrowid)  # type: ignore[arg-type]


def write_result(
    conn: sqlite3.Connection,
    result: Result,
    *,
    position: int,
    checksum: str,
    imported_at: str,
    warnings: list[str],
    dropped: list[tuple[str, str]],
) -> None:
    """Write one result (call inside :func:`transaction`; an older copy is replaced)."""
    delete_result(conn, result.result_id)
    conn.execute("DELETE FROM problems WHERE path=?", (result.path,))
    conn.execute(
        "INSERT INTO results VALUES (" + ",".join(["?"] * 27) + ")",
        (
            result.result_id,
            position,
            result.analysis_id,
            result.path,
            result.collaboration,
            result.sqrts_tev,
            result.lumi_ifb,
            result.data_type,
            result.likelihood,
            result.fallback,
            None if result.covariance is None else _blob(result.covariance),
            None if result.dataset_order is None else json.dumps(result.dataset_order),
            int(result.include_crs),
            result.signal_uncertainty,
            result.signature,
            result.pretty_name,
            result.url,
            result.arxiv,
            result.publication,
            result.supersedes,
            result.superseded_by,
            int(result.private),
            int(result.preliminary),
            json.dumps(result.lifetime_lengths),
            json.dumps(result.extra),
            checksum,
            imported_at,
        ),
    )
    for i, ds in enumerate(result.datasets):
        conn.execute(
            "INSERT INTO datasets VALUES (" + ",".join(["?"] * 14) + ")",
            (
                result.result_id,
                i,
                ds.dataset_id,
                ds.data_id,
                ds.data_type,
                ds.observed_n,
                ds.expected_bg,
                ds.bg_error,
                ds.upper_limit_fb,
                ds.expected_upper_limit_fb,
                ds.third_moment,
                ds.region_type,
                json.dumps(ds.aggregated),
                json.dumps(ds.lifetime_lengths),
            ),
        )
        for j, topo in enumerate(ds.topologies):
            cur = conn.execute(
                "INSERT INTO topologies (result_id, dataset_position, position, name, "
                "constraint_json, constraint_text, condition_text, axes, validated, source, "
                "lifetime_lengths) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    result.result_id,
                    i,
                    j,
                    topo.name,
                    json.dumps(topo.constraint.to_json()),
                    topo.constraint_text,
                    json.dumps(topo.condition_text),
                    json.dumps([[a.node, a.attribute] for a in topo.axes]),
                    topo.validated,
                    topo.source,
                    json.dumps(topo.lifetime_lengths),
                ),
            )
            key = cur.lastrowid
            for kind, grid in topo.grids.items():
                conn.execute(
                    "INSERT INTO grids VALUES (?, ?, ?, ?)",
                    (key, kind, _points_key(conn, grid.points), _blob(grid.values)),
                )
    for i, ws in enumerate(result.pyhf):
        conn.execute(
            "INSERT INTO pyhf_workspaces VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                result.result_id,
                i,
                ws.file_name,
                json.dumps([[c.smodels, c.pyhf, c.region_type] for c in ws.channels]),
                int(ws.missing),
                int(ws.full),
                None
                if ws.workspace is None
                else zlib.compress(json.dumps(ws.workspace).encode(), 6),
            ),
        )
    conn.executemany(
        "INSERT INTO notes VALUES (?, ?, ?, ?)",
        [(result.result_id, "warning", result.path, w) for w in warnings]
        + [(result.result_id, "dropped", src, why) for src, why in dropped],
    )


def _json_or(value: str | None, default: Any) -> Any:
    return default if value is None else json.loads(value)


def load_results(conn: sqlite3.Connection, *, workspaces: bool = True) -> list[Result]:
    """Load every result with its data sets, topologies, grids (and pyhf workspaces)."""
    points = {
        key: np.frombuffer(data, dtype="<f8").reshape(n, d)
        for key, n, d, data in conn.execute(
            "SELECT points_key, n_points, n_dims, data FROM grid_points"
        )
    }
    grids: dict[int, dict[str, Grid]] = {}
    for key, kind, pkey, values in conn.execute(
        "SELECT topology_key, kind, points_key, grid_values FROM grids"
    ):
        grids.setdefault(key, {})[kind] = Grid(kind, points[pkey], np.frombuffer(values, "<f8"))
    topologies: dict[tuple[str, int], list[Topology]] = {}
    for row in conn.execute(
        "SELECT topology_key, result_id, dataset_position, name, constraint_json, "
        "constraint_text, condition_text, axes, validated, source, lifetime_lengths "
        "FROM topologies ORDER BY result_id, dataset_position, position"
    ):
        key, rid, dpos, name, cjson, ctext, cond, axes, validated, source, life = row
        topologies.setdefault((rid, dpos), []).append(
            Topology(
                name=name,
                constraint=Constraint.from_json(json.loads(cjson)),
                constraint_text=ctext,
                condition_text=tuple(json.loads(cond)),
                axes=tuple(Axis(n, a) for n, a in json.loads(axes)),
                grids=grids.get(key, {}),
                validated=validated,
                source=source,
                lifetime_lengths=json.loads(life),
            )
        )
    datasets: dict[str, list[DataSet]] = {}
    for row in conn.execute("SELECT * FROM datasets ORDER BY result_id, position"):
        (rid, pos, dsid, data_id, dtype, n, b, db, ul, eul, m3, rtype, agg, life) = row
        datasets.setdefault(rid, []).append(
            DataSet(
                dataset_id=dsid,
                data_id=data_id,
                data_type=dtype,
                observed_n=n,
                expected_bg=b,
                bg_error=db,
                upper_limit_fb=ul,
                expected_upper_limit_fb=eul,
                third_moment=m3,
                region_type=rtype,
                aggregated=tuple(json.loads(agg)),
                topologies=tuple(topologies.get((rid, pos), [])),
                lifetime_lengths=json.loads(life),
            )
        )
    pyhf: dict[str, list[PyhfWorkspace]] = {}
    columns = "result_id, file_name, channels, missing, full" + (
        ", workspace" if workspaces else ""
    )
    for row in conn.execute(f"SELECT {columns} FROM pyhf_workspaces ORDER BY result_id, position"):
        rid, fname, channels, missing, full = row[:5]
        blob = row[5] if workspaces else None
        pyhf.setdefault(rid, []).append(
            PyhfWorkspace(
                file_name=fname,
                channels=tuple(PyhfChannel(*c) for c in json.loads(channels)),
                workspace=None if blob is None else json.loads(zlib.decompress(blob)),
                missing=bool(missing),
                full=bool(full),
            )
        )
    results = []
    for row in conn.execute("SELECT * FROM results ORDER BY position"):
        r = dict(
            zip(
                [c[0] for c in conn.execute("SELECT * FROM results LIMIT 0").description],
                row,
                strict=True,
            )
        )
        datasets_of = datasets.get(r["result_id"], [])
        cov = r["covariance"]
        if cov is not None:
            n = len(datasets_of)
            cov = np.frombuffer(cov, "<f8").reshape(n, n)
        results.append(
            Result(
                result_id=r["result_id"],
                analysis_id=r["analysis_id"],
                path=r["path"],
                collaboration=r["collaboration"],
                sqrts_tev=r["sqrts_tev"],
                lumi_ifb=r["lumi_ifb"],
                data_type=r["data_type"],
                likelihood=r["likelihood"],
                fallback=r["fallback"],
                covariance=cov,
                dataset_order=None
                if r["dataset_order"] is None
                else tuple(json.loads(r["dataset_order"])),
                pyhf=tuple(pyhf.get(r["result_id"], [])),
                include_crs=bool(r["include_crs"]),
                signal_uncertainty=r["signal_uncertainty"],
                signature=r["signature"],
                pretty_name=r["pretty_name"],
                url=r["url"],
                arxiv=r["arxiv"],
                publication=r["publication"],
                supersedes=r["supersedes"],
                superseded_by=r["superseded_by"],
                private=bool(r["private"]),
                preliminary=bool(r["preliminary"]),
                lifetime_lengths=_json_or(r["lifetime_lengths"], {}),
                extra=_json_or(r["extra"], {}),
                datasets=tuple(datasets_of),
            )
        )
    return results
