"""The evaluation of a protomodel (predictions, likelihoods, K, critics) on the subset store."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import protomodels.database as pdb
from protomodels.evaluation import Evaluator
from protomodels.theory import Decay, Protomodel

STOP, N1 = 1000006, 1000022


@pytest.fixture(scope="module")
def evaluator(subset_store: Path) -> Evaluator:
    return Evaluator(pdb.open(subset_store, build=False))


def stop_model(multiplier: float = 1.0) -> Protomodel:
    return Protomodel(
        masses={STOP: 650.0, N1: 250.0},
        decays={STOP: (Decay(N1, (6,), 1.0),)},
        ssm={(-STOP, STOP): multiplier},
    )


def test_an_internal_failure_is_a_rejected_model_not_a_crash(
    evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(model: Protomodel) -> list:
        raise OverflowError("math range error")

    monkeypatch.setattr(evaluator.predictor, "predict", broken)
    e = evaluator(stop_model())
    assert math.isnan(e.K) and not e.passed
    assert "internal error" in e.reason and "OverflowError" in e.reason


def test_rescaled_predictions_equal_a_new_pass(evaluator: Evaluator) -> None:
    """The mu-hat rescaled model's predictions (scaled, with their likelihoods attached again)
    equal those of a full prediction pass on the rescaled model."""
    model = stop_model(2.0)
    predictions = evaluator.predictions(model)
    assert predictions
    factor = 0.42
    scaled = evaluator.rescaled_predictions(model, predictions, factor)
    again = evaluator.predictions(model.scaled(factor))
    key = lambda p: (p.result_id, p.dataset, p.txnames)  # noqa: E731
    assert sorted(map(key, scaled)) == sorted(map(key, again))
    by_key = {key(p): p for p in again}
    for p in scaled:
        q = by_key[key(p)]
        assert p.xsec_fb == pytest.approx(q.xsec_fb, rel=1e-12)
        assert (p.statistics.likelihood is None) == (q.statistics.likelihood is None)
        for name in ("nll1", "nll_sm", "nll_max", "mu_hat"):
            if q.statistics.likelihood is not None:
                mine, theirs = getattr(p.statistics, name), getattr(q.statistics, name)
                assert mine == pytest.approx(theirs, rel=1e-9, abs=1e-9), name


def test_constructive_critics_cap_the_signal_strength(subset_store: Path) -> None:
    """A model the upper limits exclude: the veto rejects it; the constructive critics cap
    mu-hat where the largest r reaches the threshold, and the capped model passes."""
    from protomodels.evaluation import EvaluationSettings

    database = pdb.open(subset_store, build=False)
    model = stop_model(30.0)
    veto = Evaluator(database)(model)
    assert not veto.passed and veto.critics.mu_max < 1.0
    capped = Evaluator(database, EvaluationSettings(constructive=True))(model)
    assert capped.passed
    assert any(f.startswith("capped by the critics") for f in capped.k.flags)
    assert capped.muhat <= veto.muhat * veto.critics.mu_max * (1 + 1e-9)
    assert capped.T_L <= veto.T_L + 1e-9
    r_max = max(p.r_obs or 0.0 for p in capped.predictions if p.data_type == "upperLimit")
    assert r_max < 1.38


def test_a_non_finite_k_is_no_evaluation_and_says_why(
    evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    import protomodels.evaluation as evaluation

    real = evaluation.compute_k

    def nan_k(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        return dataclasses.replace(real(*args, **kwargs), K=math.nan)

    monkeypatch.setattr(evaluation, "compute_k", nan_k)
    e = evaluator(stop_model())
    assert math.isnan(e.K) and not e.passed and e.k is None
    assert e.reason.startswith("not evaluable: K = nan")


def test_cli_evaluate_fails_without_a_k(
    subset_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from protomodels.cli import cli
    from protomodels.evaluation import Evaluation

    def no_k(self, model):  # noqa: ANN001, ANN202
        return Evaluation(math.nan, math.nan, math.nan, math.nan, model, None, None, False,
                          "not evaluable: K = nan")

    monkeypatch.setattr(Evaluator, "__call__", no_k)
    slha = tmp_path / "stop.slha"
    stop_model().to_slha(slha)
    result = CliRunner().invoke(cli, ["--database", str(subset_store), "evaluate", str(slha)])
    assert result.exit_code == 1
    assert f"{slha}: no K: not evaluable: K = nan" in result.output


def test_every_combiner_setting_reaches_the_combiner(subset_store: Path) -> None:
    """The evaluator keeps every field of the user's KSettings (a field-by-field copy once
    dropped ``regions``), with the combinability graph loaded once."""
    import dataclasses

    from protomodels.combiner.test_statistic import KSettings
    from protomodels.evaluation import EvaluationSettings

    k = KSettings(regions="most_significant", drop_regions_of_combined=False)
    ev = Evaluator(pdb.open(subset_store, build=False), EvaluationSettings(k=k))
    for f in dataclasses.fields(KSettings):
        if f.name != "combinability":
            assert getattr(ev.k_settings, f.name) == getattr(k, f.name), f.name
    assert ev.k_settings.combinability is ev.graph
