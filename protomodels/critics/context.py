"""The interface of a critic and what critics are given besides the predictions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from protomodels.critics.verdict import CriticInputError, Verdict
from protomodels.theory.predictions import TheoryPrediction

if TYPE_CHECKING:
    from protomodels.database.database import Database

__all__ = ["CombinabilityFunction", "Critic", "CriticContext", "SearchFunction"]


def __dir__() -> list[str]:
    return __all__


#: ``search(weights, combinable, analyses) -> (sorted indices, total weight)``: the heaviest set
#: of pairwise combinable candidates with at most one candidate per analysis
#: (``protomodels.combiner.search.best_combination``).
SearchFunction = Callable[
    [Sequence[float], np.ndarray, Sequence[str]], tuple[tuple[int, ...], float]
]

#: ``combinable(predictions) -> (n, n) bool matrix``: which pairs may enter one likelihood.
CombinabilityFunction = Callable[[Sequence[TheoryPrediction]], np.ndarray]


class Critic(Protocol):
    """A critic judges whether a model survives the LHC constraints."""

    @property
    def name(self) -> str:
        """Short name, used in verdicts."""
        ...

    def __call__(self, predictions: Sequence[TheoryPrediction], context: CriticContext) -> Verdict:
        """Judge the predictions of one model."""
        ...


def _default_search() -> SearchFunction:
    try:
        from protomodels.combiner.search import best_combination
    except ImportError as error:  # pragma: no cover - depends on the installed stages
        msg = (
            "CriticContext.search is not set and protomodels.combiner.search.best_combination "
            "cannot be imported; pass search=... (weights, combinable, analyses) -> "
            "(indices, weight)"
        )
        raise CriticInputError(msg) from error
    return best_combination


@dataclass(frozen=True)
class CriticContext:
    """What critics need besides the predictions.

    Attributes:
        combinable: builds the (n, n) bool combinability matrix of a list of predictions
            (needed by the likelihood critic when two or more predictions pass its cut).
        search: the combination search; default ``protomodels.combiner.search.best_combination``
            (imported when first needed).
        database: the database the predictions come from; the upper-limit critic uses it to
            find the best signal region of a combined prediction.
        constructive: instead of a veto, report mu_max (the verdicts then always pass).
    """

    combinable: CombinabilityFunction | None = None
    search: SearchFunction | None = None
    database: Database | None = None
    constructive: bool = False

    def search_function(self) -> SearchFunction:
        """The combination search (the default one imported lazily)."""
        return self.search if self.search is not None else _default_search()

    def combinability(self, predictions: Sequence[TheoryPrediction]) -> np.ndarray:
        """The validated (n, n) bool combinability matrix of the predictions."""
        n = len(predictions)
        if n <= 1:
            return np.zeros((n, n), dtype=bool)
        if self.combinable is None:
            msg = (
                "CriticContext.combinable is not set: pass a function mapping the predictions "
                "to their (n, n) bool combinability matrix"
            )
            raise CriticInputError(msg)
        matrix = np.asarray(self.combinable(predictions))
        if matrix.shape != (n, n):
            msg = (
                f"CriticContext.combinable returned a matrix of shape {matrix.shape} for "
                f"{n} predictions; it must be ({n}, {n})"
            )
            raise CriticInputError(msg)
        if matrix.dtype != bool:
            msg = (
                f"CriticContext.combinable returned dtype {matrix.dtype}; it must return a bool "
                "matrix (True = may be combined)"
            )
            raise CriticInputError(msg)
        if not np.array_equal(matrix, matrix.T):
            msg = "CriticContext.combinable returned a matrix that is not symmetric"
            raise CriticInputError(msg)
        return matrix
