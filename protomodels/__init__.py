"""protomodels: minimal new-physics models inferred bottom-up from LHC search results.

The package is organised so that data flow one way: ``database`` (SModelS text database ->
SQLite store -> records), ``theory`` (protomodel -> topologies -> predictions), then the
statistics, combination, critics and builders stages, and the ``cli`` on top.

Example:
    >>> import protomodels  # doctest: +SKIP
    >>> model = protomodels.Protomodel.from_slha("model.slha")  # doctest: +SKIP
    >>> protomodels.predict(model)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from protomodels._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from protomodels.builders.storage import RunStorage
    from protomodels.database.database import Database
    from protomodels.evaluation import BatchEvaluation, Evaluation, Evaluator
    from protomodels.theory.predictions import TheoryPrediction
    from protomodels.theory.protomodel import Protomodel

__all__ = [
    "Protomodel",
    "__version__",
    "evaluate",
    "evaluate_batch",
    "open_database",
    "predict",
    "walk",
]


def __dir__() -> list[str]:
    return __all__


def open_database(path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Database:
    """Open the database store (see :func:`protomodels.database.open`)."""
    from protomodels.database import open as _open

    return _open(path, **kwargs)


def predict(
    model: Protomodel | str | os.PathLike[str],
    database: Database | None = None,
    **settings: Any,
) -> list[TheoryPrediction]:
    """Theory predictions of a protomodel (or an SLHA file) for every result of the database.

    Args:
        model: a :class:`Protomodel` or the path of an SLHA file (its cross sections are used).
        database: the database (default: the default store, built on first use).
        settings: fields of :class:`protomodels.theory.PredictionSettings` (sigmacut, ...).
    """
    from protomodels.theory.predictions import PredictionSettings
    from protomodels.theory.predictions import predict as _predict
    from protomodels.theory.protomodel import Protomodel as _Protomodel

    if not isinstance(model, _Protomodel):
        model = _Protomodel.from_slha(model)
    if database is None:
        database = open_database(workspaces=False)
    return _predict(model, database, settings=PredictionSettings(**settings))


def __getattr__(name: str) -> Any:
    if name == "Protomodel":
        from protomodels.theory.protomodel import Protomodel as _Protomodel

        return _Protomodel
    msg = f"module 'protomodels' has no attribute {name!r}"
    raise AttributeError(msg)


def evaluate(
    model: Protomodel | str | os.PathLike[str],
    database: Database | None = None,
    **settings: Any,
) -> Evaluation:
    """K, T_L, mu-hat, prior, best combination and critics of a protomodel (or SLHA file).

    Args:
        model: a :class:`Protomodel` or the path of an SLHA file.
        database: the database (default: the default store, built on first use).
        settings: fields of :class:`protomodels.evaluation.EvaluationSettings`.
    """
    from protomodels.evaluation import EvaluationSettings, Evaluator
    from protomodels.theory.protomodel import Protomodel as _Protomodel

    if not isinstance(model, _Protomodel):
        model = _Protomodel.from_slha(model)
    if database is None:
        database = open_database(workspaces=bool(settings.get("full_likelihoods", True)))
    return Evaluator(database, EvaluationSettings(**settings))(model)


def evaluate_batch(
    models: Iterable[Protomodel | str | os.PathLike[str]],
    database: Database | None = None,
    *,
    evaluator: Evaluator | None = None,
    combination: str | Sequence[str] | None = None,
    chunk: int = 256,
    **settings: Any,
) -> BatchEvaluation:
    """K, T_L, mu-hat and the critics' verdict of many protomodels in one call, as arrays.

    The predictions of ``chunk`` models at a time are one batched kernel call; the result
    equals the models evaluated one by one. A model that cannot be evaluated has NaN and its
    ``reason``. Pass an ``evaluator`` (:class:`protomodels.evaluation.Evaluator`) to reuse
    its compiled state across calls (then ``database`` and ``settings`` are not used).

    Args:
        models: protomodels or SLHA paths.
        database: the database (default: the default store, built on first use).
        evaluator: an evaluator built once (faster for repeated calls).
        combination: score this combination (``"A:dataset,B:dataset"``) in every model.
        chunk: models per batched prediction call.
        settings: fields of :class:`protomodels.evaluation.EvaluationSettings`.

    Returns:
        A :class:`protomodels.evaluation.BatchEvaluation` (``.K``, ``.T_L``, ``.muhat``,
        ``.passed``, ``.reason``, ``.evaluations``, ``.to_pandas()``).
    """
    from protomodels.evaluation import EvaluationSettings
    from protomodels.evaluation import Evaluator as _Evaluator
    from protomodels.theory.protomodel import Protomodel as _Protomodel

    models = [m if isinstance(m, _Protomodel) else _Protomodel.from_slha(m) for m in models]
    if evaluator is None:
        if database is None:
            database = open_database(workspaces=bool(settings.get("full_likelihoods", True)))
        evaluator = _Evaluator(database, EvaluationSettings(**settings))
    return evaluator.batch(models, chunk=chunk, combination=combination)


def walk(
    database: Database | None = None,
    *,
    steps: int = 200,
    walkers: int = 1,
    seed: int = 0,
    out: str | os.PathLike[str] = "walk.sqlite",
    processes: int = 1,
    **settings: Any,
) -> RunStorage:
    """Run the builder (``walkers`` random walks of ``steps`` steps) into the run file ``out``.

    Returns:
        The run (:class:`protomodels.builders.storage.RunStorage`): ``.hiscores()``,
        ``.steps()``, ``.metadata()``.
    """
    from protomodels.builders.run import RunSettings, run_walk
    from protomodels.builders.storage import RunStorage as _RunStorage

    if database is None:
        database = open_database(workspaces=False)
    run = RunSettings(steps=steps, walkers=walkers, seed=seed, processes=processes, **settings)
    return _RunStorage(run_walk(out, database.path, run))
