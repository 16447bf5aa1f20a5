"""Builders stage: the random walk over protomodels and its run storage.

``moves`` changes a protomodel at random, keeping it valid (``draft`` holds the working copy
and the decay kinematics); ``walker`` walks against an injected evaluation; ``storage`` keeps a
run in one SQLite file (history, hiscores, resumable walker states); ``records`` has the JSON
forms and ``toy`` a stand-in evaluation.

Example:
    >>> from protomodels.builders import WalkerConfig, walk
    >>> from protomodels.builders.toy import toy_evaluator
    >>> walker = walk(toy_evaluator, WalkerConfig(steps=20, seed=1))  # doctest: +SKIP
    >>> walker.state.best.K  # doctest: +SKIP
"""

from __future__ import annotations

from protomodels.builders.moves import (
    MoveProbabilities,
    MoveRecord,
    MoveSettings,
    random_move,
)
from protomodels.builders.records import Hiscore, StepRecord, model_from_json, model_to_json
from protomodels.builders.storage import RunMetadata, RunStorage, RunStorageError
from protomodels.builders.walker import (
    Evaluation,
    Walker,
    WalkerConfig,
    WalkerConfigError,
    WalkerState,
    walk,
)

__all__ = [
    "Evaluation",
    "Hiscore",
    "MoveProbabilities",
    "MoveRecord",
    "MoveSettings",
    "RunMetadata",
    "RunStorage",
    "RunStorageError",
    "StepRecord",
    "Walker",
    "WalkerConfig",
    "WalkerConfigError",
    "WalkerState",
    "model_from_json",
    "model_to_json",
    "random_move",
    "walk",
]


def __dir__() -> list[str]:
    return __all__
