"""Walk campaigns on toy databases: the best K of many SM-only (or signal-injected) toys.

The global p-value of an observed K asks how often a walk on data without new physics finds a
K as large (arXiv:2012.12246, section 5: 50 SM-only databases, 50 walkers x 1000 steps each).
A campaign runs the same walk (walkers, steps, settings) on each toy of a toy file
(:mod:`protomodels.campaigns.toys`) and keeps, per toy, the best K, its model and a summary of
the run, in one SQLite file:

- ``meta``: the campaign's settings (JSON), the database version and checksum, the toy file;
- ``toys``: one row per finished toy (index, K, T_L, model JSON, run summary JSON, seconds).

Each toy is one task: the walk of its walkers in one process, from seeds that depend on the
campaign seed and the toy index only, so the outcome of a toy is the same whatever runs it, in
whatever order (a serial run and a Dask cluster of any size give the same file contents but the
timings). Tasks run on a ``dask.distributed`` cluster (a :class:`LocalCluster` over the
machine's cores by default, or an existing scheduler): a worker that dies loses only the toy in
flight (the scheduler gives it to another worker); a campaign that is stopped is resumed by
running it again (finished toys are skipped).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from protomodels._optional import require
from protomodels.exceptions import ProtomodelsError
from protomodels.worker_processes import DASK_WORKER_CONFIG, single_thread_environ

__all__ = [
    "Campaign",
    "CampaignError",
    "CampaignSettings",
    "ToyOutcome",
    "local_cluster",
    "read_campaign",
    "run_campaign",
    "k_max_of",
    "walk_seed",
    "walk_toy",
]


def __dir__() -> list[str]:
    return __all__


class CampaignError(ProtomodelsError):
    """A campaign file or its settings cannot be used."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS toys (
    idx INTEGER PRIMARY KEY, K REAL, T_L REAL, model TEXT, summary TEXT, seconds REAL,
    finished TEXT
);
"""


@dataclass(frozen=True)
class CampaignSettings:
    """What a campaign runs.

    Attributes:
        toys: number of toys (toy indices 0 .. toys-1 of the toy file).
        walkers, steps: the walk on each toy (walkers x steps).
        seed: campaign seed: toy i's walk seed is :func:`walk_seed` (seed, i); the toy
            file's toys are made with this seed too when the campaign makes them.
        toys_file: the toy file (made by the campaign when it does not exist).
        inject: SLHA file whose predicted yields are added to the toys (signal injection).
        bg_scale: factor on every background uncertainty of the toys (and the data).
        full_likelihoods: pyhf full likelihoods in the walks (as the walk's default).

    A toy's walkers run in one process, in lockstep (one batched evaluation per round).
    """

    toys: int
    walkers: int = 10
    steps: int = 1000
    seed: int = 0
    toys_file: str = ""
    inject: str | None = None
    bg_scale: float = 1.0
    full_likelihoods: bool = True

    def __post_init__(self) -> None:
        if not (self.toys >= 1 and self.walkers >= 1 and self.steps >= 1):
            msg = "a campaign needs --toys, --walkers and --steps of at least 1"
            raise CampaignError(msg)
        if not (math.isfinite(self.bg_scale) and self.bg_scale > 0):
            msg = f"--bg-scale must be finite and positive, got {self.bg_scale}"
            raise CampaignError(msg)

    def as_json(self) -> str:
        """The settings as stored in the campaign file."""
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class ToyOutcome:
    """What the walk found on one toy.

    Attributes:
        index: the toy.
        K, T_L: of the best model of all walkers (None when no step was accepted).
        model: that model (compact JSON, :func:`protomodels.builders.records.model_to_json`).
        summary: steps, accepted steps, the best K of each walker, the walk seed.
        seconds: wall time of the task.
    """

    index: int
    K: float | None
    T_L: float | None
    model: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def walk_seed(seed: int, index: int) -> int:
    """The walk seed of toy ``index`` in a campaign of seed ``seed`` (independent of the
    number of toys and of the order in which they run)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def walk_toy(
    store: str, toys_file: str, index: int, settings_json: str, run_dir: str
) -> ToyOutcome:
    """One campaign task: walk toy ``index`` and summarise the run (a top-level function, so
    that Dask can send it to a worker process). The run file of a task that died (a killed
    worker, a session that ended) is resumed where it stopped when it is this toy's walk (same
    walk seed, toy and walkers): the walk's chains continue unchanged, so the outcome is the
    same; any other file there is removed and the toy starts again from its seed."""
    from protomodels.builders.run import RunSettings, run_walk
    from protomodels.evaluation import EvaluationSettings

    settings = CampaignSettings(**json.loads(settings_json))
    start = time.perf_counter()
    run_file = Path(run_dir) / f"toy-{index:05d}.sqlite"
    seed = walk_seed(settings.seed, index)
    run_settings = RunSettings(
        steps=settings.steps,
        walkers=settings.walkers,
        seed=seed,
        processes=1,
        evaluation=EvaluationSettings(full_likelihoods=settings.full_likelihoods),
        grids="prepare",
        toy=f"{Path(toys_file).resolve()}:{index}",
    )
    resume = _resumable(run_file, run_settings)
    if not resume:
        for suffix in ("", "-wal", "-shm"):
            run_file.with_name(run_file.name + suffix).unlink(missing_ok=True)
    run_walk(run_file, store, run_settings, resume=resume)
    return _outcome(index, run_file, seed, start)


def _resumable(run_file: Path, settings: Any) -> bool:
    """Whether ``run_file`` is a started walk of these settings (seed, walkers, toy; as many
    steps or fewer: the walk continues to the settings' steps with the same chains)."""
    from protomodels.builders.run import stored_run_settings

    if not run_file.exists():
        return False
    try:
        stored = stored_run_settings(run_file)
    except ProtomodelsError:
        return False
    return (stored.seed, stored.walkers, stored.toy) == (
        settings.seed, settings.walkers, settings.toy) and stored.steps <= settings.steps


#: a gap between two stored steps longer than this (s) is a pause of the run, not walking
_PAUSE = 120.0


def _outcome(index: int, run_file: Path, seed: int, start: float) -> ToyOutcome:
    """The summary of a finished toy walk."""
    from protomodels.builders.storage import RunStorage

    with RunStorage(run_file, readonly=True) as storage:
        hiscores = storage.hiscores()
        steps = storage.steps()
    with sqlite3.connect(f"file:{run_file}?mode=ro", uri=True) as db:
        times = np.sort([t for (t,) in db.execute("SELECT time FROM steps")])
    # wall time of the walk: the gaps between stored steps, without a pause of the run (a
    # walk resumed in a later session)
    gaps = np.diff(times)
    walking = float(gaps[gaps < _PAUSE].sum()) if len(times) else 0.0
    best: dict[int, float] = {}
    for record in steps:
        if record.accepted and record.K is not None and math.isfinite(record.K):
            best[record.walker] = max(best.get(record.walker, -math.inf), record.K)
    top = hiscores[0] if hiscores else None
    summary = {
        "walk_seed": seed,
        "steps": len(steps),
        "accepted": sum(1 for r in steps if r.accepted),
        "best_K_per_walker": {str(w): k for w, k in sorted(best.items())},
        "found_at": None if top is None else {"walker": top.walker, "step": top.step},
        # wall time between the first and the last stored step, and before the first one
        # (store, toy, grids, kernels)
        "walk_seconds": walking,
        "startup_seconds": time.perf_counter() - start - walking,
    }
    return ToyOutcome(
        index=index,
        K=None if top is None else float(top.K),
        T_L=None if top is None or top.T_L is None else float(top.T_L),
        model={} if top is None else dict(top.model),
        summary=summary,
        seconds=time.perf_counter() - start,
    )


# -- the campaign file ----------------------------------------------------------------------
def _connect(path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.executescript(_SCHEMA)
    except sqlite3.DatabaseError as err:
        msg = f"{path} is not a campaign file ({err}); give a file written by 'protomodel "
        msg += "campaign run' or a new name"
        raise CampaignError(msg) from err
    return conn


def _meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def _write_outcome(conn: sqlite3.Connection, outcome: ToyOutcome) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO toys VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            outcome.index,
            outcome.K,
            outcome.T_L,
            json.dumps(outcome.model, sort_keys=True),
            json.dumps(outcome.summary, sort_keys=True),
            outcome.seconds,
            datetime.now(timezone.utc).isoformat(timespec="seconds"),
        ),
    )


@dataclass(frozen=True)
class Campaign:
    """A campaign file as read back: its settings, database and the finished toys."""

    path: Path
    settings: CampaignSettings
    meta: dict[str, str]
    outcomes: tuple[ToyOutcome, ...]

    @property
    def k_max(self) -> np.ndarray:
        """The best K of every finished toy with an accepted step."""
        return k_max_of(self.outcomes)


def k_max_of(outcomes: Iterable[ToyOutcome]) -> np.ndarray:
    """The best K of every toy of ``outcomes`` with an accepted step."""
    return np.array([o.K for o in outcomes if o.K is not None], dtype=float)


def read_campaign(path: str | os.PathLike[str]) -> Campaign:
    """Read a campaign file (read-only).

    Raises:
        CampaignError: no such file, or not a campaign file.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"campaign file {path} does not exist; run 'protomodel campaign run --out {path}'"
        raise CampaignError(msg)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        meta = _meta(conn)
        outcomes = _outcomes(conn)
        conn.close()
    except sqlite3.DatabaseError as err:
        msg = f"{path} is not a campaign file ({err}); give a file written by 'protomodel "
        msg += "campaign run'"
        raise CampaignError(msg) from err
    if "settings" not in meta:
        raise CampaignError(f"{path} holds no campaign settings: not a campaign file")
    settings = CampaignSettings(**json.loads(meta["settings"]))
    return Campaign(path, settings, meta, outcomes)


def _outcomes(conn: sqlite3.Connection) -> tuple[ToyOutcome, ...]:
    rows = conn.execute(
        "SELECT idx, K, T_L, model, summary, seconds FROM toys ORDER BY idx"
    ).fetchall()
    return tuple(
        ToyOutcome(int(i), k, t, json.loads(m), json.loads(s), float(sec or 0.0))
        for i, k, t, m, s, sec in rows
    )


def _changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``key old -> new`` for every setting that differs (a key missing on one side: None)."""
    keys = [*old, *(k for k in new if k not in old)]
    return ", ".join(
        f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)
    )


def _checksum(database: Any) -> str:
    """The database's source checksum ("" for a folder source)."""
    return str(database.meta.get("source_checksum") or "")


def _ledger_header(settings: CampaignSettings, database: Any) -> Any:
    """The campaign's ledger without toys: its settings and database (made once per run; the
    injected model is hashed here)."""
    from protomodels.campaigns.ledger import Ledger, ledger_settings

    return Ledger(ledger_settings(settings), str(database.version or "unknown"),
                  _checksum(database), ())


def _sync_ledger(conn: sqlite3.Connection, path: Path, header: Any, *, merge: bool) -> None:
    """Add the toys of the ledger ``path`` that the campaign file lacks (``merge``; the ledger
    must have ``header``'s settings and database), then write the ledger anew with every
    finished toy of the file."""
    from protomodels.campaigns.ledger import read_ledger, write_ledger

    found = read_ledger(path) if merge else None
    if found is not None:
        if found.database_checksum != header.database_checksum:
            msg = f"ledger {path} was walked on another database (version "
            msg += f"{found.database_version or 'unknown'}, this one {header.database_version}"
            msg += "); give another ledger file"
            raise CampaignError(msg)
        if found.settings != header.settings:
            changed = _changes(found.settings, header.settings)
            msg = f"ledger {path} holds toys walked with other settings ({changed}); resume "
            msg += "with its settings or give another ledger file"
            raise CampaignError(msg)
        done = {int(r[0]) for r in conn.execute("SELECT idx FROM toys").fetchall()}
        for outcome in found.outcomes:
            if outcome.index not in done:
                _write_outcome(conn, outcome)
    write_ledger(path, replace(header, outcomes=_outcomes(conn)))


def _settings_of(
    conn: sqlite3.Connection, path: Path, settings: CampaignSettings | None, database: Any
) -> CampaignSettings:
    """The campaign's settings: the stored ones when the file holds a campaign (a rerun
    resumes it; the settings given must equal them but for the number of toys, which may
    grow), else the new ones, stored now."""
    meta = _meta(conn)
    checksum = _checksum(database)
    if "settings" not in meta:
        if settings is None:
            raise CampaignError(f"{path} holds no campaign: give its settings")
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [
                ("settings", settings.as_json()),
                ("database_version", database.version or "unknown"),
                ("database_checksum", checksum),
                ("created", datetime.now(timezone.utc).isoformat(timespec="seconds")),
            ],
        )
        return settings
    stored = CampaignSettings(**json.loads(meta["settings"]))
    if meta.get("database_checksum", "") != checksum:
        msg = f"{path} was run on another database (version {meta.get('database_version')}); "
        msg += "choose a new --out"
        raise CampaignError(msg)
    if settings is None:
        return stored
    ignored = ("toys", "toys_file")
    theirs = {k: v for k, v in asdict(settings).items() if k not in ignored}
    ours = {k: v for k, v in asdict(stored).items() if k not in ignored}
    if theirs != ours:
        changed = _changes(ours, theirs)
        msg = f"{path} holds a campaign with other settings ({changed}); resume it with the "
        msg += "same ones (only --toys may grow) or choose a new --out"
        raise CampaignError(msg)
    if settings.toys > stored.toys:
        stored = CampaignSettings(**{**asdict(stored), "toys": settings.toys})
        conn.execute("UPDATE meta SET value = ? WHERE key = 'settings'", (stored.as_json(),))
    return stored


def _ensure_toys(settings: CampaignSettings, store: str) -> None:
    """Make the toys the toy file lacks (toy i depends on the seed and i only: toys already
    in the file stay what they are)."""
    from protomodels.campaigns.toys import count_toys, make_toys, write_toys
    from protomodels.database import open as open_database

    path = Path(settings.toys_file)
    have = count_toys(path) if path.exists() else 0
    if have >= settings.toys:
        return
    database = open_database(store, build=False, workspaces=True)
    toys = make_toys(
        database, settings.toys - have, settings.seed, inject=settings.inject,
        bg_scale=settings.bg_scale, start=have,
    )
    write_toys(path, toys)


def _prepare_grids(store: str) -> None:
    """Fill the triangulation cache once, before the tasks (they then only read it)."""
    from protomodels.builders.run import RunSettings, _prepare_cache

    _prepare_cache(store, RunSettings(grids="prepare"), os.cpu_count() or 1, None)


def run_campaign(
    path: str | os.PathLike[str],
    store: str | os.PathLike[str],
    settings: CampaignSettings | None = None,
    *,
    scheduler: str | Any = None,
    workers: int | None = None,
    serial: bool = False,
    keep_runs: bool = False,
    on_toy: Callable[[ToyOutcome, int, int], None] | None = None,
    ledger: str | os.PathLike[str] | None = None,
) -> Campaign:
    """Run (or resume) a campaign; returns it as read back.

    Args:
        path: the campaign file (created, or resumed: its stored settings hold).
        store: the database store.
        settings: what to run (None: resume the stored campaign).
        scheduler: address of a running Dask scheduler (``tcp://host:8786``), or a
            ``dask.distributed.Client`` (left open); default a LocalCluster of ``workers``
            processes (default: the machine's cores).
        serial: run the toys one after the other in this process (no Dask).
        keep_runs: keep each toy's run file in ``<campaign>.runs/``.
        on_toy: called with (outcome, toys done, toys in all) as toys finish.
        ledger: a JSON ledger of finished toys (:mod:`protomodels.campaigns.ledger`): its toys
            are added to the campaign file first (not walked again), and it is rewritten with
            every toy as it finishes. It must come from the same settings and database.
    """
    from protomodels.database import open as open_database

    path = Path(path)
    database = open_database(store, build=False, workspaces=False)
    conn = _connect(path)
    try:
        if settings is not None and not settings.toys_file:
            toys_file = str(path.resolve().with_name(path.stem + ".toys.sqlite"))
            settings = CampaignSettings(**{**asdict(settings), "toys_file": toys_file})
        settings = _settings_of(conn, path, settings, database)
        header = None if ledger is None else _ledger_header(settings, database)
        if ledger is not None:
            _sync_ledger(conn, Path(ledger), header, merge=True)
        done = {int(r[0]) for r in conn.execute("SELECT idx FROM toys").fetchall()}
        pending = [i for i in range(settings.toys) if i not in done]
        if not pending:
            return read_campaign(path)
        _ensure_toys(settings, str(store))
        _prepare_grids(str(store))
        run_dir = path.with_name(path.stem + ".runs")
        run_dir.mkdir(exist_ok=True)
        args = (str(Path(store).resolve()), str(Path(settings.toys_file).resolve()))
        total, count = settings.toys, len(done)

        def record(outcome: ToyOutcome) -> None:
            nonlocal count
            _write_outcome(conn, outcome)
            if ledger is not None:
                _sync_ledger(conn, Path(ledger), header, merge=False)
            count += 1
            if not keep_runs:
                for suffix in ("", "-wal", "-shm"):
                    name = f"toy-{outcome.index:05d}.sqlite{suffix}"
                    (run_dir / name).unlink(missing_ok=True)
            if on_toy is not None:
                on_toy(outcome, count, total)

        if serial:
            for i in pending:
                record(walk_toy(*args, i, settings.as_json(), str(run_dir)))
        else:
            _run_on_dask(args, pending, settings, str(run_dir), scheduler, workers, record)
        if not keep_runs and run_dir.exists() and not any(run_dir.iterdir()):
            shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        conn.close()
    return read_campaign(path)


def local_cluster(workers: int | None = None) -> Any:
    """The campaign's own ``dask.distributed.LocalCluster``: ``workers`` processes (default:
    the machine's cores) of one thread, each with one compute thread (no XLA or BLAS pools
    competing for the cores), glibc's own heap trimming and non-daemonic (a toy walk may start
    processes of its own: grid preparation); see :mod:`protomodels.worker_processes`."""
    distributed = require(
        "dask.distributed", feature="campaigns on a dask cluster (or run them with --serial)"
    )
    import dask

    # (each nanny takes the configuration and the environment when it is made)
    with dask.config.set(DASK_WORKER_CONFIG):
        return distributed.LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env=single_thread_environ(),
        )


def _run_on_dask(
    args: tuple[str, str],
    pending: Iterable[int],
    settings: CampaignSettings,
    run_dir: str,
    scheduler: str | Any,
    workers: int | None,
    record: Callable[[ToyOutcome], None],
) -> None:
    """The tasks on a Dask cluster; outcomes are written by this process as they come."""
    distributed = require(
        "dask.distributed", feature="campaigns on a dask cluster (or run them with --serial)"
    )
    Client, as_completed = distributed.Client, distributed.as_completed
    own = not isinstance(scheduler, Client)
    cluster = None
    if not own:
        client = scheduler
    elif scheduler:
        client = Client(scheduler)
    else:
        cluster = local_cluster(workers)
        client = Client(cluster)
    try:
        futures = [
            client.submit(
                walk_toy, *args, i, settings.as_json(), run_dir, key=f"toy-{i}-{os.getpid()}",
                pure=False,
            )
            for i in pending
        ]
        for future in as_completed(futures):
            record(future.result())
    finally:
        if own:
            client.close()
        if cluster is not None:
            cluster.close()
