"""A walk run: several walkers against the real evaluation, in one or more processes, stored in
one run file.

``run_walk`` starts (or resumes) the walkers of a run. With more than one process, each process
loads the store and builds its own :class:`~protomodels.evaluation.Evaluator` and runs its share
of the walkers; all write to the same SQLite run file (WAL, one transaction per step), so the
caller can follow the progress by reading the file.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from protomodels._version import __version__
from protomodels.builders.storage import RunMetadata, RunStorage, RunStorageError, check_run_file
from protomodels.builders.walker import Walker, WalkerConfig, lockstep
from protomodels.evaluation import EvaluationSettings, Evaluator
from protomodels.theory.protomodel import Protomodel
from protomodels.worker_processes import submit_single_threaded

__all__ = ["RunSettings", "run_walk", "start_model", "stored_run_settings"]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True)
class RunSettings:
    """What a run does.

    Attributes:
        steps: steps per walker.
        walkers: number of walkers.
        seed: seed of the run (walker w draws from (seed, w)).
        processes: worker processes (1: everything in this process).
        walker: the walkers' settings besides steps, seed and id.
        evaluation: the evaluation settings.
        start: SLHA file of the starting model (default: the LSP alone).
        grids: ``"lazy"`` (default): a grid is triangulated when a step first needs it (or
            read from the cache), while a background process fills the triangulation cache,
            so that a fresh machine starts walking at once (once the cache holds every grid,
            they are all loaded before the first step: seconds); ``"prepare"``: every grid is
            triangulated and stacked before the first step (no stack grows during the walk).
            Either way the chains are the same; not stored in the run file.
        toy: walk on this toy database instead of the real one, ``TOYS.sqlite:INDEX``
            (:mod:`protomodels.campaigns.toys`; an absolute path is best, each worker process
            reads it); stored in the run's configuration.
    """

    steps: int = 200
    walkers: int = 1
    seed: int = 0
    processes: int = 1
    walker: WalkerConfig = field(default_factory=WalkerConfig)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    start: str | None = None
    grids: str = "lazy"
    toy: str | None = None

    def __post_init__(self) -> None:
        if self.grids not in ("lazy", "prepare"):
            msg = f"RunSettings.grids must be 'lazy' or 'prepare', not {self.grids!r}"
            raise ValueError(msg)

    def config_json(self) -> dict[str, Any]:
        """The configuration as stored in the run metadata."""
        evaluation = self.evaluation
        return {
            "steps": self.steps,
            "walkers": self.walkers,
            "seed": self.seed,
            "processes": self.processes,
            "start": self.start,
            "toy": self.toy,
            "walker": self.walker.as_json(),
            "evaluation": {
                "sigmacut": evaluation.predictions.sigmacut,
                "minmassgap": evaluation.predictions.minmassgap,
                "combine": evaluation.predictions.combine,
                "best_dataset": evaluation.predictions.best_dataset,
                "combinability": str(evaluation.k.combinability),
                "prior": asdict(evaluation.k.prior) if not callable(evaluation.k.prior.name)
                else "custom",
                "constructive": evaluation.constructive,
                "full_likelihoods": evaluation.full_likelihoods,
                "pyhf_max_parameters": evaluation.pyhf_max_parameters,
            },
        }


def start_model(path: str | os.PathLike[str]) -> Protomodel:
    """A walker's starting model from an SLHA file. Its cross sections (XSECTION blocks)
    become signal-strength multipliers of the reference tables, as the reference builder
    derives them (13 TeV cross section / reference cross section); a channel of the tables
    that the file gives no cross section gets multiplier 0."""
    from protomodels.combiner.prior import derive_multipliers
    from protomodels.theory.xsec import production_channels

    model = Protomodel.from_slha(path)
    if model.xsecs is None:
        return model
    multipliers = derive_multipliers(model, model.xsecs)
    for pair in production_channels(list(model.masses)):
        multipliers.setdefault(pair, 0.0)
    return replace(model, xsecs=None, ssm=multipliers)


def _walk_share(
    run_file: str,
    store: str,
    settings: RunSettings,
    walkers: list[int],
    on_progress: Callable[[RunStorage], None] | None = None,
    *,
    capture: bool = False,
) -> list[tuple[str, type[Warning]]]:
    """Run some walkers of a run to ``settings.steps`` (one process). With ``capture`` (a
    worker process) its warnings are not printed but returned, each distinct one once, for
    the parent to issue."""
    if not capture:
        _walk_walkers(run_file, store, settings, walkers, on_progress)
        return []
    with warnings.catch_warnings(record=True) as caught:
        _walk_walkers(run_file, store, settings, walkers, on_progress)
    seen: dict[str, type[Warning]] = {}
    for w in caught:
        seen.setdefault(str(w.message), w.category)
    return list(seen.items())


def _walk_walkers(
    run_file: str,
    store: str,
    settings: RunSettings,
    walkers: list[int],
    on_progress: Callable[[RunStorage], None] | None,
) -> None:
    from protomodels.database import open as open_database

    database = open_database(store, build=False, workspaces=settings.evaluation.full_likelihoods)
    if settings.toy:
        from protomodels.campaigns.toys import apply_toy, load_toy

        database = apply_toy(database, load_toy(settings.toy, database))
    evaluator = Evaluator(database, settings.evaluation)
    if settings.grids == "prepare":
        evaluator.prepare()
    else:
        predictor = evaluator.predictor
        if predictor.grid_index.all_cached(predictor.grid_point_sets()):
            # a machine that has run before: load every grid now (seconds) so that no stack
            # grows, and no kernel recompiles, as the walk meets new grids
            predictor.prepare_grids()
    start = start_model(settings.start) if settings.start else None
    with RunStorage(run_file) as storage:
        done = set(storage.walkers())

        def on_step(_: object) -> None:
            if on_progress is not None:
                on_progress(storage)

        team = []
        for w in walkers:
            if w in done:
                walker = Walker.resume(storage, evaluator, walker=w, on_step=on_step)
            else:
                config = replace(
                    settings.walker, steps=settings.steps, seed=settings.seed, walker=w
                )
                walker = Walker(evaluator, config, storage=storage, start=start, on_step=on_step)
            team.append(walker)
        if len(team) == 1:
            team[0].run(until=settings.steps)
        else:  # the walkers of this process in lockstep: one batch of proposals per round
            lockstep(team, until=settings.steps)


def run_walk(
    run_file: str | os.PathLike[str],
    store: str | os.PathLike[str],
    settings: RunSettings | None = None,
    *,
    resume: bool = False,
    on_progress: Callable[[RunStorage], None] | None = None,
    on_prepare: Callable[[int, int], None] | None = None,
    poll_seconds: float = 0.5,
) -> Path:
    """Start or resume a run; returns the run file.

    Grids (``settings.grids``): lazily, each when a step first needs it, while a background
    process fills the triangulation cache (a fresh machine starts at once); or, with
    ``"prepare"``, every grid triangulated (once per machine: the triangulations are cached,
    with ``settings.processes`` processes) and stacked before the first step.

    Args:
        run_file: the SQLite run file (created; with ``resume``, continued).
        store: the database store (built beforehand).
        settings: what to run (with ``resume``: taken from the run file).
        on_progress: called with the open run storage while the walkers work (progress bar).
        on_prepare: called with (done, total) while the grids are prepared (``"prepare"``).

    A new run's file is written only after its settings and starting model have been read,
    and is removed again when the run fails (or is interrupted) before its first step, so
    that the name can be used again. Resuming checks that the file is an SQLite run file
    before opening it (a text or empty file is refused unchanged).

    Raises:
        RunStorageError: a new run on an existing file, or resuming a file that is not a run.
    """
    path = Path(run_file)
    from protomodels.database import open as open_database

    if resume:
        check_run_file(path, hint="give a run file written by 'protomodel walk' to resume")
        with RunStorage(path, readonly=True) as storage:
            meta = storage.metadata()
            if meta is None:
                raise RunStorageError(f"{path} holds no run metadata: not a run file")
            settings = _settings_from(meta.config, settings)
        _run(path, store, settings, on_progress, on_prepare, poll_seconds)
        return path
    if path.exists():
        msg = f"{path} exists: use --resume to continue it, or choose a new file"
        raise RunStorageError(msg)
    settings = settings or RunSettings()
    if settings.start:
        start_model(settings.start)  # a bad starting model is refused before the file exists
    database = open_database(store, build=False, workspaces=False)
    with RunStorage(path) as storage:
        storage.write_metadata(
            RunMetadata(
                database_version=database.version or "unknown",
                database_checksum=database.meta.get("source_checksum", ""),
                code_version=__version__,
                seed=settings.seed,
                config=settings.config_json(),
            )
        )
    try:
        _run(path, store, settings, on_progress, on_prepare, poll_seconds)
    except BaseException:
        _remove_if_unused(path)
        raise
    return path


def _remove_if_unused(path: Path) -> None:
    """Remove a run file made by this call when it holds no step yet (a walk that failed or was
    interrupted during its start-up), so that its name can be used again."""
    try:
        with RunStorage(path) as storage:
            if storage.count_steps() > 0:
                return
    except Exception:  # keep a file that cannot be read
        return
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _run(
    path: Path,
    store: str | os.PathLike[str],
    settings: RunSettings,
    on_progress: Callable[[RunStorage], None] | None,
    on_prepare: Callable[[int, int], None] | None,
    poll_seconds: float,
) -> None:
    walkers = list(range(settings.walkers))
    processes = max(1, min(settings.processes, len(walkers)))
    filler = None
    if settings.grids == "prepare":
        _prepare_cache(store, settings, processes, on_prepare)
    elif processes < (os.cpu_count() or 1):
        filler = _start_cache_filler(store, settings)
    try:
        _walk_processes(path, store, settings, walkers, processes, on_progress, poll_seconds)
    finally:
        if filler is not None and filler.is_alive():
            filler.terminate()  # its files are written atomically: what it made is kept
            filler.join(5)


def _start_cache_filler(
    store: str | os.PathLike[str], settings: RunSettings
) -> multiprocessing.process.BaseProcess | None:
    """A background process that fills the triangulation cache while the walk runs (lazy
    grids), or None when there is no cache."""
    from protomodels.paths import triangulation_cache_dir

    if triangulation_cache_dir() is None:
        return None
    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=_fill_cache, args=(str(store), settings.evaluation.predictions), daemon=True
    )
    process.start()
    return process


def _fill_cache(store: str, predictions: Any) -> None:
    """Body of the cache filler: every grid of the database triangulated into the
    triangulation cache, one by one, at the lowest priority (a walker then reads what it needs
    instead of triangulating it)."""
    import contextlib

    from protomodels.database import open as open_database
    from protomodels.theory.predictions import Predictor

    with contextlib.suppress(OSError):
        os.nice(19)
    database = open_database(store, build=False, workspaces=False)
    predictor = Predictor(database, settings=predictions)
    predictor.grid_index.fill_cache(predictor.grid_point_sets())


def _walk_processes(
    path: Path,
    store: str | os.PathLike[str],
    settings: RunSettings,
    walkers: list[int],
    processes: int,
    on_progress: Callable[[RunStorage], None] | None,
    poll_seconds: float,
) -> None:
    if processes == 1:
        _walk_share(str(path), str(store), settings, walkers, on_progress)
        return
    shares = [walkers[i::processes] for i in range(processes)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = submit_single_threaded(  # one compute thread per walking process
            pool, _walk_share,
            [((str(path), str(store), settings, share), {"capture": True}) for share in shares],
        )
        with RunStorage(path) as storage:
            while not all(f.done() for f in futures):
                if on_progress is not None:
                    on_progress(storage)
                time.sleep(poll_seconds)
            if on_progress is not None:
                on_progress(storage)
        issued: set[str] = set()
        for f in futures:
            for message, category in f.result():  # (re-raises a worker's error)
                if message not in issued:
                    issued.add(message)
                    warnings.warn(message, category, stacklevel=2)


def _prepare_cache(
    store: str | os.PathLike[str],
    settings: RunSettings,
    workers: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Fill the triangulation cache for every grid (the walkers then only read it)."""
    from protomodels.database import open as open_database
    from protomodels.theory.predictions import Predictor

    database = open_database(store, build=False, workspaces=False)
    predictor = Predictor(database, settings=settings.evaluation.predictions)
    if predictor.grid_index.cache is None:
        return  # no cache to fill: each walker process triangulates for itself
    predictor.grid_index.reserve(
        predictor.grid_point_sets(), workers=max(2, workers), progress=progress, stack=False
    )


def stored_run_settings(run_file: str | Path) -> RunSettings:
    """The settings a run file was written with (its evaluation settings, walkers, seed...).

    Raises:
        RunStorageError: the file is not a run file.
    """
    path = Path(run_file)
    check_run_file(path, hint="give a run file written by 'protomodel walk'")
    with RunStorage(path, readonly=True) as storage:
        meta = storage.metadata()
    if meta is None:
        raise RunStorageError(f"{path} holds no run metadata: not a run file")
    return _settings_from(meta.config, None)


def _settings_from(config: dict[str, Any], override: RunSettings | None) -> RunSettings:
    """The settings of a stored run (steps may be raised by ``override``)."""
    from protomodels.combiner.prior import PriorSettings
    from protomodels.combiner.test_statistic import KSettings
    from protomodels.theory.predictions import PredictionSettings

    e = config["evaluation"]
    prior = e["prior"] if isinstance(e["prior"], dict) else {}
    evaluation = EvaluationSettings(
        predictions=PredictionSettings(
            sigmacut=e["sigmacut"], minmassgap=e["minmassgap"], combine=e["combine"],
            best_dataset=e.get("best_dataset", False),
        ),
        k=KSettings(combinability=e["combinability"], prior=PriorSettings(**prior)),
        constructive=e["constructive"],
        full_likelihoods=e["full_likelihoods"],
        # run files written before the cap fitted every workspace
        pyhf_max_parameters=e.get("pyhf_max_parameters"),
    )
    settings = RunSettings(
        steps=config["steps"],
        walkers=config["walkers"],
        seed=config["seed"],
        processes=config["processes"],
        walker=WalkerConfig.from_json(config["walker"]),
        evaluation=evaluation,
        start=config["start"],
        toy=config.get("toy"),
    )
    if override is not None:
        settings = replace(settings, steps=max(settings.steps, override.steps),
                           processes=override.processes, grids=override.grids)
    return settings
