"""Importing the SModelS text database (a folder or a tarball) into the SQLite store.

Each result is written in its own transaction, so a failure leaves no half-written result and
an interrupted import can simply be rerun: results whose files did not change are skipped.
Re-importing an unchanged tarball is a no-op (its checksum is compared first). Results are read
in parallel worker processes; the main process writes.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import tarfile
import tempfile
import warnings as pywarnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from protomodels._version import __version__
from protomodels.database import store
from protomodels.database.reader import (
    ResultReading,
    SkipResult,
    find_result_folders,
    read_pretty_names,
    read_result,
)
from protomodels.exceptions import DatabaseFormatError, DatabaseNotFoundError

__all__ = ["ImportReport", "import_database"]


def __dir__() -> list[str]:
    return __all__


#: called after each result: (results done, results in total, result path)
ProgressCallback = Callable[[int, int, str], None]


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        store: the SQLite file.
        source: the folder or tarball read.
        database_version: from the source's ``version`` file.
        imported: paths of results written now.
        unchanged: paths of results already stored with the same content.
        skipped: (path, reason) of results deliberately not imported.
        errors: (path, error) of results that could not be read; their previous copy, if any,
            stays in the store.
        removed: paths of stored results that are no longer in the source.
        warnings: non-fatal problems (missing pyhf JSON, ...).
        no_op: True when the source was unchanged and nothing was read.
        seconds: wall time.
    """

    store: Path
    source: Path
    database_version: str | None = None
    imported: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, DatabaseFormatError]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    no_op: bool = False
    seconds: float = 0.0


def _file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _database_root(folder: Path) -> Path:
    """The folder holding ``8TeV``/``13TeV`` (a tarball may wrap it in one top folder)."""
    for candidate in (folder, *sorted(p for p in folder.iterdir() if p.is_dir())):
        if (candidate / "version").exists() or any(candidate.glob("*TeV")):
            return candidate
    return folder


def _read_version(root: Path) -> str | None:
    version = root / "version"
    return version.read_text().strip() if version.exists() else None


def _extract(tarball: Path, into: Path) -> None:
    try:
        with tarfile.open(tarball) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(into, filter="data")
            else:  # pragma: no cover - Python < 3.10.12
                tar.extractall(into)  # noqa: S202
    except (tarfile.TarError, EOFError, OSError) as err:
        msg = f"cannot unpack {tarball}: {err}; check that it is a complete .tar.xz/.tar.gz file"
        raise DatabaseNotFoundError(msg) from err


def _read_task(args: tuple[str, str, dict[str, str], str | None]):  # noqa: ANN202
    folder, root, pretty, known_checksum = args
    try:
        reading = read_result(Path(folder), Path(root), pretty, skip_if_checksum=known_checksum)
    except DatabaseFormatError as err:
        return "error", err
    except SkipResult as skip:
        return "skipped", str(skip)
    if reading is None:
        return "unchanged", None
    return "read", reading


def _readings(
    tasks: list[tuple[str, str, dict[str, str], str | None]], workers: int
) -> Iterator[tuple[str, object]]:
    if workers <= 1 or len(tasks) < 4:
        for task in tasks:
            yield _read_task(task)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield from pool.map(_read_task, tasks, chunksize=1)


def import_database(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    workers: int | None = None,
    strict: bool = False,
    progress: ProgressCallback | None = None,
    only: Iterable[str] | None = None,
) -> ImportReport:
    """Import an SModelS text database into a SQLite store.

    Args:
        source: an unpacked database folder or a ``.tar.xz``/``.tar.gz`` of it.
        out: the store file (created if needed).
        workers: reader processes (default: the number of cores, at most 4).
        strict: raise the first :class:`DatabaseFormatError` (after keeping what was written)
            instead of recording it in the report.
        progress: called after each result.
        only: import only results whose path contains one of these strings.

    Returns:
        The import report.

    Raises:
        DatabaseNotFoundError: the source does not exist or cannot be unpacked.
        DatabaseFormatError: with ``strict``, the first malformed result.
    """
    start = datetime.now(timezone.utc)
    source = Path(source)
    out = Path(out)
    if not source.exists():
        msg = f"database source {source} does not exist; pass --source TARBALL_OR_DIR"
        raise DatabaseNotFoundError(msg)
    report = ImportReport(store=out, source=source)
    workers = workers or min(4, os.cpu_count() or 1)
    conn = store.connect(out, create=True)
    tmp: str | None = None
    try:
        meta = store.read_meta(conn)
        source_checksum = _file_checksum(source) if source.is_file() else None
        if (
            source_checksum is not None
            and meta.get("source_checksum") == source_checksum
            and meta.get("complete") == "1"
            and only is None
        ):
            report.no_op = True
            report.database_version = meta.get("database_version")
            report.unchanged = [
                p for (p,) in conn.execute("SELECT path FROM results ORDER BY position")
            ]
            return report
        if source.is_file():
            tmp = tempfile.mkdtemp(prefix="protomodels-import-")
            _extract(source, Path(tmp))
            root = _database_root(Path(tmp))
        else:
            root = _database_root(source)
        report.database_version = _read_version(root)
        folders = find_result_folders(root)
        if only is not None:
            wanted = list(only)
            folders = [
                f for f in folders if any(w in f.relative_to(root).as_posix() for w in wanted)
            ]
        known = store.stored_checksums(conn)
        pretty = read_pretty_names(root)
        tasks = [
            (str(f), str(root), pretty, known.get(f.relative_to(root).as_posix())) for f in folders
        ]
        imported_at = start.isoformat(timespec="seconds")
        shown = f"{source}:" if tmp is not None else f"{root}/"

        def display(text: str) -> str:
            """Messages name files inside the tarball, not the temporary unpacked copy."""
            return text.replace(f"{root}/", shown) if tmp is not None else text

        for position, (folder, (status, payload)) in enumerate(
            zip(folders, _readings(tasks, workers), strict=True)
        ):
            rel = folder.relative_to(root).as_posix()
            if status == "read":
                reading: ResultReading = payload  # type: ignore[assignment]
                reading.warnings = [display(w) for w in reading.warnings]
                with store.transaction(conn):
                    store.write_result(
                        conn,
                        reading.result,
                        position=position,
                        checksum=reading.checksum,
                        imported_at=imported_at,
                        warnings=reading.warnings,
                        dropped=reading.dropped,
                    )
                report.imported.append(rel)
                report.warnings.extend(reading.warnings)
            elif status == "unchanged":
                conn.execute("UPDATE results SET position=? WHERE path=?", (position, rel))
                conn.execute("DELETE FROM problems WHERE path=?", (rel,))
                report.unchanged.append(rel)
            else:
                if isinstance(payload, DatabaseFormatError):
                    payload.path = display(payload.path)
                    payload.args = (display(str(payload.args[0])),)
                with store.transaction(conn):
                    conn.execute(
                        "INSERT OR REPLACE INTO problems VALUES (?, ?, ?)",
                        (rel, status, str(payload)),
                    )
                if status == "skipped":
                    report.skipped.append((rel, str(payload)))
                else:
                    report.errors.append((rel, payload))  # type: ignore[arg-type]
                    if strict:
                        raise payload  # type: ignore[misc]
            if progress is not None:
                progress(position + 1, len(folders), rel)
        if only is None:
            present = {f.relative_to(root).as_posix() for f in folders}
            with store.transaction(conn):
                for rid, path in conn.execute("SELECT result_id, path FROM results").fetchall():
                    if path not in present and not path.startswith(store.USER_PATH_PREFIX):
                        store.delete_result(conn, rid)
                        report.removed.append(path)
                conn.execute(
                    "DELETE FROM grid_points WHERE points_key NOT IN (SELECT points_key FROM grids)"
                )
        for warning in report.warnings:
            pywarnings.warn(warning, stacklevel=2)
        with store.transaction(conn):
            store.write_meta(
                conn,
                {
                    "database_version": report.database_version,
                    "source": str(source.resolve()),
                    "source_checksum": source_checksum,
                    "import_time": imported_at,
                    "code_version": __version__,
                    "complete": "1" if not report.errors and only is None else "0",
                },
            )
        return report
    finally:
        conn.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        report.seconds = (datetime.now(timezone.utc) - start).total_seconds()
