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
from typing import TYPE_CHECKING, Any

from protomodels._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from protomodels.database.database import Database
    from protomodels.theory.predictions import TheoryPrediction
    from protomodels.theory.protomodel import Protomodel

__all__ = ["Protomodel", "__version__", "open_database", "predict"]


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
