"""Theory stage: protomodels, cross sections, decomposition, matching, interpolation and
predictions.

The names are imported lazily, so that ``protomodels.theory.protomodel`` (light) can be used
without loading JAX and SciPy (the predictions).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Decay",
    "InvalidProtomodelError",
    "PredictionSettings",
    "Predictor",
    "Protomodel",
    "TheoryPrediction",
    "decompose",
    "predict",
    "predictions_frame",
]

_WHERE = {
    "Decay": "protomodel",
    "InvalidProtomodelError": "protomodel",
    "Protomodel": "protomodel",
    "decompose": "decomposition",
    "PredictionSettings": "predictions",
    "Predictor": "predictions",
    "TheoryPrediction": "predictions",
    "predict": "predictions",
    "predictions_frame": "predictions",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"protomodels.theory.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'protomodels.theory' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
