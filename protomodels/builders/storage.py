"""Run storage: one SQLite file per run (WAL mode), shared by the walkers of the run.

Tables:

* ``meta``: run metadata (schema version, database version and checksum, code version, seed,
  the full configuration as JSON, creation time);
* ``walkers``: per walker its seed, configuration JSON and the state needed to resume it
  (current and best model, RNG state, step), rewritten with every step;
* ``steps``: the history, one row per step (walker, step, move, accepted, K, T_L, muhat,
  K of the chain, compact model JSON, reason of a rejection);
* ``hiscores``: the best distinct models of the run (by K) with their full evaluation JSON.

Each step (history row, walker state, hiscore) is written in one ``BEGIN IMMEDIATE``
transaction, so a crash leaves the file at the end of the last whole step. Several processes
may write to one file: writers wait for the lock (busy timeout) and retry when SQLite still
reports it busy.

Commands that only read a run (``show``, ``hiscores``, ``plot``) open it with
``RunStorage(path, readonly=True)``: the file is checked to be an SQLite run file first (a text
file, an empty file or another SQLite file is refused with a message naming it) and is never
created or changed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from protomodels.builders.records import Hiscore, StepRecord, dumps
from protomodels.exceptions import ProtomodelsError, StoreSchemaError

__all__ = [
    "SCHEMA_VERSION",
    "SQLITE_HEADER",
    "RunMetadata",
    "RunStorage",
    "RunStorageError",
    "check_run_file",
]


def __dir__() -> list[str]:
    return __all__


#: version of the table layout; a file of another version is refused
SCHEMA_VERSION = 1
#: the first 16 bytes of every SQLite database file
SQLITE_HEADER = b"SQLite format 3\x00"
#: the tables of a run file
_TABLES = ("meta", "walkers", "steps", "hiscores")
_HINT = "give a run file written by 'protomodel walk'"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS walkers (
    walker INTEGER PRIMARY KEY,
    seed INTEGER NOT NULL,
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    step INTEGER NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS steps (
    walker INTEGER NOT NULL,
    step INTEGER NOT NULL,
    move TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    K REAL,
    T_L REAL,
    muhat REAL,
    K_current REAL NOT NULL,
    model TEXT NOT NULL,
    reason TEXT,
    time REAL NOT NULL,
    PRIMARY KEY (walker, step)
);
CREATE TABLE IF NOT EXISTS hiscores (
    key TEXT PRIMARY KEY,
    K REAL NOT NULL,
    T_L REAL,
    walker INTEGER NOT NULL,
    step INTEGER NOT NULL,
    model TEXT NOT NULL,
    evaluation TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS hiscores_by_k ON hiscores (K DESC);
"""

T = TypeVar("T")


class RunStorageError(ProtomodelsError):
    """The run file cannot be used as asked (another run's file, unknown walker, lock...)."""


@dataclass(frozen=True)
class RunMetadata:
    """What a run was made with.

    Attributes:
        database_version: version of the SModelS database.
        database_checksum: checksum of the database store or source.
        code_version: protomodels version.
        seed: the run's random seed.
        config: the full configuration (JSON-compatible).
        created: creation time (UTC, ISO 8601); filled when written.
    """

    database_version: str
    database_checksum: str
    code_version: str
    seed: int
    config: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    def _fields(self) -> dict[str, str]:
        return {
            "database_version": str(self.database_version),
            "database_checksum": str(self.database_checksum),
            "code_version": str(self.code_version),
            "seed": str(int(self.seed)),
            "config": dumps(self.config),
        }


def check_run_file(path: str | os.PathLike[str], *, hint: str = _HINT) -> Path:
    """Check, without opening it as a database, that ``path`` is an existing SQLite file.

    Returns:
        the path.

    Raises:
        RunStorageError: no such file, a folder, an empty file, or not an SQLite file (the
            message names the file and ends with ``hint``).
    """
    p = Path(path)
    if not p.exists():
        raise RunStorageError(f"{p}: no such run file; {hint}")
    if p.is_dir():
        raise RunStorageError(f"{p} is a folder, not a run file; {hint}")
    try:
        with open(p, "rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as err:
        raise RunStorageError(f"cannot read the run file {p}: {err.strerror}; {hint}") from err
    if not head:
        raise RunStorageError(f"{p} is empty, not a run file; {hint}")
    if head != SQLITE_HEADER:
        raise RunStorageError(f"{p} is not a run file (not an SQLite database); {hint}")
    return p


def _is_busy(err: sqlite3.OperationalError) -> bool:
    text = str(err).lower()
    return "locked" in text or "busy" in text


class RunStorage:
    """One run's SQLite file.

    Args:
        path: the file (created with its tables when missing or empty).
        timeout: seconds a writer waits for another writer's lock before retrying.
        retries: attempts of a transaction that keeps finding the file busy.
        synchronous: SQLite ``synchronous`` setting: ``NORMAL`` survives a killed process
            (WAL), ``FULL`` also a power cut.
        readonly: only read: the file must be an existing run file and is neither created nor
            changed (at rest, with no ``-wal`` file beside it, it is opened as immutable, so
            that no ``-wal`` / ``-shm`` files appear next to it either).

    Raises:
        StoreSchemaError: the file was written with another table layout.
        RunStorageError: the file cannot be opened, is not an SQLite file, or (``readonly``)
            is not a run file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 30.0,
        retries: int = 20,
        synchronous: str = "NORMAL",
        readonly: bool = False,
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            msg = f"synchronous={synchronous!r}: use NORMAL, FULL or EXTRA"
            raise RunStorageError(msg)
        self.path = Path(path)
        self.retries = retries
        self.readonly = readonly
        if readonly:
            self._open_readonly(timeout)
            return
        if self.path.is_file() and self.path.stat().st_size > 0:
            check_run_file(self.path)  # never write into a file that is not SQLite
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as err:
            msg = f"cannot open the run file {self.path}: {err}; check the folder exists"
            raise RunStorageError(msg) from err
        try:
            self._retry(lambda: self._db.execute("PRAGMA journal_mode=WAL").fetchone())
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            try:
                row = self._db.execute(
                    "SELECT value FROM meta WHERE key = 'schema_version'"
                ).fetchone()
            except sqlite3.OperationalError:  # a new file: no tables yet
                row = None
            if row is None:
                self._transaction(self._create)
            else:
                self._check_version(row[0])
        except sqlite3.DatabaseError as err:
            self._db.close()
            msg = f"{self.path} cannot be used as a run file ({err}); {_HINT}"
            raise RunStorageError(msg) from err
        except BaseException:
            self._db.close()
            raise

    def _open_readonly(self, timeout: float) -> None:
        check_run_file(self.path)
        wal = self.path.with_name(self.path.name + "-wal")
        query = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
        uri = "file:" + urllib.parse.quote(str(self.path.absolute())) + "?" + query
        try:
            self._db = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
        except sqlite3.Error as err:
            msg = f"cannot open the run file {self.path}: {err}"
            raise RunStorageError(msg) from err
        try:
            tables = {
                r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            missing = [t for t in _TABLES if t not in tables]
            if missing:
                msg = (
                    f"{self.path} is an SQLite file but not a run file (no table "
                    f"{', '.join(missing)}); {_HINT}"
                )
                raise RunStorageError(msg)
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                raise RunStorageError(f"{self.path} has no run-file schema version; {_HINT}")
            self._check_version(row[0])
        except sqlite3.DatabaseError as err:
            self._db.close()
            msg = f"{self.path} cannot be read as a run file ({err}); {_HINT}"
            raise RunStorageError(msg) from err
        except BaseException:
            self._db.close()
            raise

    # -- plumbing ---------------------------------------------------------------------------
    def _retry(self, action: Callable[[], T]) -> T:
        delay = 0.01
        for attempt in range(self.retries):
            try:
                return action()
            except sqlite3.OperationalError as err:
                if not _is_busy(err) or attempt == self.retries - 1:
                    if _is_busy(err):
                        msg = f"{self.path} stayed locked through {self.retries} attempts"
                        raise RunStorageError(msg) from err
                    raise
                time.sleep(delay)
                delay = min(1.0, delay * 2)
        raise AssertionError("unreachable")  # pragma: no cover

    def _transaction(self, body: Callable[[sqlite3.Connection], T]) -> T:
        def attempt() -> T:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = body(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            return result

        return self._retry(attempt)

    def _create(self, db: sqlite3.Connection) -> None:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        else:
            self._check_version(row[0])

    def _check_version(self, version: str) -> None:
        if version != str(SCHEMA_VERSION):
            msg = (
                f"{self.path} has run-file schema {version}, this protomodels writes "
                f"{SCHEMA_VERSION}; read it with a matching version or start a new run file"
            )
            raise StoreSchemaError(msg)

    def close(self) -> None:
        """Close the connection (the file stays consistent whenever this is skipped)."""
        self._db.close()

    def __enter__(self) -> RunStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata ---------------------------------------------------------------------------
    def write_metadata(self, metadata: RunMetadata) -> RunMetadata:
        """Record the run metadata; when the file already has metadata it must agree.

        Raises:
            RunStorageError: the file holds another run (a field differs).
        """
        fields = metadata._fields()

        def body(db: sqlite3.Connection) -> RunMetadata:
            stored = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if "seed" not in stored:
                created = metadata.created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                rows = [*fields.items(), ("created", created)]
                db.executemany("INSERT INTO meta VALUES (?, ?)", rows)
                return RunMetadata(**_parse_meta(dict(rows)))
            for name, value in fields.items():
                if stored.get(name) != value:
                    msg = (
                        f"{self.path} belongs to another run ({name}: stored "
                        f"{stored.get(name)!r}, given {value!r}); use a new run file or resume"
                    )
                    raise RunStorageError(msg)
            return RunMetadata(**_parse_meta(stored))

        return self._transaction(body)

    def metadata(self) -> RunMetadata | None:
        """The run metadata, or None before :meth:`write_metadata`."""
        stored = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        return RunMetadata(**_parse_meta(stored)) if "seed" in stored else None

    # -- walkers ----------------------------------------------------------------------------
    def add_walker(
        self, walker: int, seed: int, config: dict[str, Any], state: dict[str, Any]
    ) -> None:
        """Register a walker with its configuration and starting state.

        Raises:
            RunStorageError: the walker exists already (resume it or pick another id).
        """

        def body(db: sqlite3.Connection) -> None:
            if db.execute("SELECT 1 FROM walkers WHERE walker = ?", (walker,)).fetchone():
                msg = (
                    f"walker {walker} already exists in {self.path}; resume it or use "
                    "another walker id"
                )
                raise RunStorageError(msg)
            now = time.time()
            db.execute(
                "INSERT INTO walkers VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    walker,
                    int(seed),
                    dumps(config),
                    dumps(state),
                    int(state.get("step", 0)),
                    now,
                    now,
                ),
            )

        self._transaction(body)

    def walkers(self) -> list[int]:
        """Walker ids of the run."""
        return [r[0] for r in self._db.execute("SELECT walker FROM walkers ORDER BY walker")]

    def _walker_row(self, walker: int, column: str) -> Any:
        row = self._db.execute(
            f"SELECT {column} FROM walkers WHERE walker = ?", (walker,)
        ).fetchone()
        if row is None:
            known = ", ".join(map(str, self.walkers())) or "none"
            msg = f"{self.path} has no walker {walker} (walkers: {known})"
            raise RunStorageError(msg)
        return row[0]

    def walker_config(self, walker: int) -> dict[str, Any]:
        """Configuration JSON of a walker."""
        return json.loads(self._walker_row(walker, "config"))

    def walker_seed(self, walker: int) -> int:
        """Seed of a walker."""
        return int(self._walker_row(walker, "seed"))

    def load_state(self, walker: int) -> dict[str, Any]:
        """The state a walker saved with its last step."""
        return json.loads(self._walker_row(walker, "state"))

    # -- steps ------------------------------------------------------------------------------
    def commit_step(
        self,
        record: StepRecord,
        state: dict[str, Any],
        hiscore: Hiscore | None = None,
        *,
        keep: int = 10,
    ) -> None:
        """Write one step in one transaction: its history row, the walker's new state and,
        when given, a hiscore candidate (kept when among the ``keep`` best distinct models).

        Raises:
            RunStorageError: the walker is unknown or the step was written already.
        """
        model = dumps(record.model)
        state_text = dumps(state)

        def body(db: sqlite3.Connection) -> None:
            now = time.time()
            try:
                db.execute(
                    "INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.walker, record.step, record.move, int(record.accepted),
                        record.K, record.T_L, record.muhat, record.K_current, model,
                        record.reason, now,
                    ),
                )  # fmt: skip
            except sqlite3.IntegrityError as err:
                msg = f"step {record.step} of walker {record.walker} is already in {self.path}"
                raise RunStorageError(msg) from err
            updated = db.execute(
                "UPDATE walkers SET state = ?, step = ?, updated = ? WHERE walker = ?",
                (state_text, record.step, now, record.walker),
            )
            if updated.rowcount != 1:
                msg = f"walker {record.walker} is not registered in {self.path} (add_walker)"
                raise RunStorageError(msg)
            if hiscore is not None:
                self._insert_hiscore(db, hiscore, keep, now)

        self._transaction(body)

    @staticmethod
    def _insert_hiscore(db: sqlite3.Connection, entry: Hiscore, keep: int, now: float) -> None:
        db.execute(
            "INSERT INTO hiscores VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
            "K = excluded.K, T_L = excluded.T_L, walker = excluded.walker, "
            "step = excluded.step, model = excluded.model, evaluation = excluded.evaluation, "
            "time = excluded.time WHERE excluded.K > hiscores.K",
            (
                entry.key, entry.K, entry.T_L, entry.walker, entry.step, dumps(entry.model),
                dumps(entry.evaluation), now,
            ),
        )  # fmt: skip
        db.execute(
            "DELETE FROM hiscores WHERE key NOT IN "
            "(SELECT key FROM hiscores ORDER BY K DESC, walker, step LIMIT ?)",
            (keep,),
        )

    def add_hiscore(self, entry: Hiscore, *, keep: int = 10) -> None:
        """Offer one model to the hiscore list (outside a step)."""
        self._transaction(lambda db: self._insert_hiscore(db, entry, keep, time.time()))

    def steps(self, walker: int | None = None) -> list[StepRecord]:
        """The history (of one walker, or of all), by walker and step."""
        query = (
            "SELECT walker, step, move, accepted, K, T_L, muhat, K_current, model, reason "
            "FROM steps"
        )
        args: tuple[int, ...] = ()
        if walker is not None:
            query += " WHERE walker = ?"
            args = (walker,)
        rows = self._db.execute(query + " ORDER BY walker, step", args).fetchall()
        return [
            StepRecord(
                walker=w, step=s, move=m, accepted=bool(a), K=k, T_L=tl, muhat=mu,
                K_current=kc, model=json.loads(model), reason=reason,
            )
            for w, s, m, a, k, tl, mu, kc, model, reason in rows
        ]  # fmt: skip

    def count_steps(self, walker: int | None = None) -> int:
        """Number of history rows (of one walker, or of all)."""
        if walker is None:
            return int(self._db.execute("SELECT COUNT(*) FROM steps").fetchone()[0])
        row = self._db.execute("SELECT COUNT(*) FROM steps WHERE walker = ?", (walker,))
        return int(row.fetchone()[0])

    def hiscores(self) -> list[Hiscore]:
        """The best distinct models of the run, best first."""
        rows = self._db.execute(
            "SELECT K, T_L, walker, step, model, evaluation, key FROM hiscores "
            "ORDER BY K DESC, walker, step"
        ).fetchall()
        return [
            Hiscore(k, tl, w, s, json.loads(model), json.loads(evaluation), key)
            for k, tl, w, s, model, evaluation, key in rows
        ]


def _parse_meta(stored: dict[str, str]) -> dict[str, Any]:
    return {
        "database_version": stored["database_version"],
        "database_checksum": stored["database_checksum"],
        "code_version": stored["code_version"],
        "seed": int(stored["seed"]),
        "config": json.loads(stored["config"]),
        "created": stored.get("created", ""),
    }
