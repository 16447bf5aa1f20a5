"""Theory stage: protomodels, cross sections, decomposition, matching, interpolation and
predictions."""

from __future__ import annotations

from protomodels.theory.decomposition import decompose
from protomodels.theory.predictions import (
    PredictionSettings,
    Predictor,
    TheoryPrediction,
    predict,
    predictions_frame,
)
from protomodels.theory.protomodel import Decay, InvalidProtomodelError, Protomodel

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


def __dir__() -> list[str]:
    return __all__
