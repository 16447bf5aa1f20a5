"""The experimental database: SModelS text format in, SQLite store out, records in memory.

Typical use::

    import protomodels.database as pdb
    db = pdb.open()            # the default store, built from ../shared on first use
    db.select(sqrts=13, data_type="efficiencyMap")
"""

from __future__ import annotations

import os
from pathlib import Path

from protomodels.database.database import Database, load
from protomodels.database.importer import ImportReport, ProgressCallback, import_database
from protomodels.database.records import (
    Axis,
    DataSet,
    Grid,
    PyhfChannel,
    PyhfWorkspace,
    Result,
    Topology,
)
from protomodels.database.store import SCHEMA_VERSION, connect, read_meta
from protomodels.exceptions import DatabaseNotFoundError, StoreSchemaError
from protomodels.paths import default_database_source, default_store_path

__all__ = [
    "Axis",
    "DataSet",
    "Database",
    "Grid",
    "ImportReport",
    "PyhfChannel",
    "PyhfWorkspace",
    "Result",
    "Topology",
    "check_store",
    "ensure_store",
    "import_database",
    "open",
    "store_is_ready",
]


def __dir__() -> list[str]:
    return __all__


def check_store(path: str | os.PathLike[str]) -> None:
    """Check that ``path`` is a protomodels store of the current schema (complete or not).

    Raises:
        DatabaseNotFoundError: no such file.
        StoreSchemaError: a folder, an empty file, not an SQLite file, or another schema.
    """
    connect(path).close()


def store_is_ready(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a complete store of the current schema."""
    try:
        conn = connect(path)
    except (DatabaseNotFoundError, StoreSchemaError):
        return False
    try:
        meta = read_meta(conn)
    finally:
        conn.close()
    return meta.get("schema_version") == SCHEMA_VERSION and meta.get("complete") == "1"


def ensure_store(
    path: str | os.PathLike[str] | None = None,
    *,
    source: str | os.PathLike[str] | None = None,
    shared: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Return a ready store, importing the database first if the store is missing or stale.

    Args:
        path: the store (default: ``PROTOMODELS_DATABASE`` or the user cache).
        source: database folder or tarball (default: the tarball in the shared folder).
        shared: the shared folder (default: ``PROTOMODELS_SHARED`` or ``../shared``).
        progress: import progress callback.
    """
    store_path = Path(path) if path is not None else default_store_path()
    if store_is_ready(store_path):
        return store_path
    src = Path(source) if source is not None else default_database_source(shared)
    import_database(src, store_path, progress=progress)
    return store_path


def open(  # noqa: A001 - mirrors the builtin on purpose: protomodels.database.open(path)
    path: str | os.PathLike[str] | None = None,
    *,
    build: bool = True,
    source: str | os.PathLike[str] | None = None,
    shared: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    workspaces: bool = True,
) -> Database:
    """Load a store, building the default one from the shared tarball on first use.

    Args:
        path: the store (default: ``PROTOMODELS_DATABASE`` or the user cache).
        build: import the database if the store is missing or incomplete.
        source, shared, progress: see :func:`ensure_store`.
        workspaces: also load the pyhf workspaces (the slowest part of loading).
    """
    store_path = Path(path) if path is not None else default_store_path()
    if build:
        store_path = ensure_store(store_path, source=source, shared=shared, progress=progress)
    return load(store_path, workspaces=workspaces)
