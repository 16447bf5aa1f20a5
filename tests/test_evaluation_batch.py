"""protomodels.evaluate_batch: many protomodels in one call, equal to one by one."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import protomodels
import protomodels.database as pdb
from protomodels.evaluation import EvaluationSettings, Evaluator
from protomodels.theory import Decay, Protomodel
from protomodels.theory.particles import load_template
from protomodels.theory.sampling import FAMILIES, family_protomodel, random_protomodel

STOP, N1 = 1000006, 1000022


@pytest.fixture(scope="module")
def evaluator(subset_store: Path) -> Evaluator:
    return Evaluator(
        pdb.open(subset_store, build=False), EvaluationSettings(full_likelihoods=False)
    )


def _models(shared: Path) -> list[Protomodel]:
    template = load_template(shared / "data" / "templates" / "protomodel_template.slha")
    rng = np.random.default_rng(5)
    models = [random_protomodel(rng, template) for _ in range(4)]
    models += [family_protomodel(rng, template, FAMILIES[i]) for i in range(1, 3)]
    models += [
        Protomodel(
            masses={STOP: m, N1: 250.0}, decays={STOP: (Decay(N1, (6,), 1.0),)},
            ssm={(-STOP, STOP): 1.0},
        )
        for m in (600.0, 700.0)
    ]
    return models


def test_batch_equals_one_by_one(evaluator: Evaluator, shared: Path) -> None:
    models = _models(shared)
    batch = protomodels.evaluate_batch(models, evaluator=evaluator, chunk=3)
    assert len(batch) == len(models) and batch.K.shape == (len(models),)
    for i, model in enumerate(models):
        alone = evaluator(model)
        for name in ("K", "T_L", "T_L_mu1", "muhat"):
            mine, theirs = getattr(batch, name)[i], getattr(alone, name)
            assert mine == pytest.approx(theirs, rel=1e-9, abs=1e-9, nan_ok=True), (i, name)
        assert batch.passed[i] == alone.passed and batch.reason[i] == alone.reason
        assert batch.evaluations[i].combination == pytest.approx(alone.combination)
    assert batch.evaluated.any()
    frame = batch.to_pandas()
    assert list(frame.columns[:6]) == ["K", "T_L", "T_L_mu1", "muhat", "passed", "reason"]
    assert len(frame) == len(models)


def test_a_failing_model_has_its_reason(
    evaluator: Evaluator, shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One model whose predictions fail: NaN and the reason for it, the others evaluated."""
    models = _models(shared)[-3:]
    original = evaluator.predictor.predict_batch
    bad = models[1]

    def predict_batch(batch: list[Protomodel]) -> list:
        if any(m is bad for m in batch):
            raise OverflowError("math range error")
        return original(batch)

    monkeypatch.setattr(evaluator.predictor, "predict_batch", predict_batch)
    result = evaluator.batch(models, chunk=8)
    assert math.isnan(result.K[1]) and not result.passed[1]
    assert "OverflowError" in result.reason[1]
    assert np.isfinite(result.K[[0, 2]]).all()
