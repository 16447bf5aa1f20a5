"""attach_statistics: batched = one by one, the stored backends, bad input, the compile cache.

The database here is a small stand-in with the fields the statistics read (results with data
sets, a covariance), so that the tests need no import of the real database.
"""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from protomodels.statistics.attach import LikelihoodBuilder, attach_statistics
from protomodels.statistics.checks import StatisticsInputError
from protomodels.statistics.compilation_cache import ENV_VAR, enable_compilation_cache
from protomodels.statistics.likelihood import (
    Likelihood,
    SimplifiedLikelihood,
    SingleRegionLikelihood,
    TruncatedGaussianLikelihood,
)
from protomodels.theory.predictions import TheoryPrediction

LUMI = 139.0


def _dataset(name: str, n: float, b: float, sigma: float) -> SimpleNamespace:
    return SimpleNamespace(
        data_id=name, dataset_id=name, observed_n=n, expected_bg=b, bg_error=sigma,
        third_moment=None,
    )


def _database() -> SimpleNamespace:
    sd = np.array([3.0, 1.5, 6.0])
    corr = np.array([[1.0, 0.4, 0.2], [0.4, 1.0, -0.3], [0.2, -0.3, 1.0]])
    combined = SimpleNamespace(
        result_id="SL-3",
        covariance=corr * np.outer(sd, sd),
        datasets=(
            _dataset("SR1", 17.0, 12.0, 3.0),
            _dataset("SR2", 0.0, 4.5, 1.5),
            _dataset("SR3", 26.0, 30.0, 6.0),
        ),
    )
    single = SimpleNamespace(
        result_id="EM-2",
        covariance=None,
        datasets=(_dataset("A", 5.0, 3.2, 1.1), _dataset("B", 12.0, 14.0, 2.5)),
    )
    ul = SimpleNamespace(result_id="UL-1", covariance=None, datasets=())
    return SimpleNamespace(results=[combined, single, ul])


def _prediction(result_id: str, data_type: str, xsec: float, **kw: object) -> TheoryPrediction:
    return TheoryPrediction(
        analysis=result_id, result_id=result_id, dataset=kw.pop("dataset", None),
        data_type=data_type, txnames=("T",), xsec_fb=xsec,
        upper_limit_fb=kw.pop("ul", None), expected_upper_limit_fb=kw.pop("eul", None),
        sqrts_tev=13.0, lumi_ifb=LUMI, signals_fb=kw.pop("signals", None),
    )


def _predictions(scale: float = 1.0) -> list[TheoryPrediction]:
    signals = scale * np.array([0.02, 0.004, 0.03])
    return [
        _prediction("UL-1", "upperLimit", 2.0 * scale, ul=3.0, eul=2.5),
        _prediction("UL-1", "upperLimit", 0.5 * scale, ul=0.4, eul=0.9),
        _prediction("UL-1", "upperLimit", 1.0 * scale, ul=2.0, eul=None),  # no likelihood
        _prediction("EM-2", "efficiencyMap", 0.01 * scale, dataset="A", ul=0.1, eul=0.08),
        _prediction("EM-2", "efficiencyMap", 0.02 * scale, dataset="B", ul=0.1, eul=0.12),
        _prediction("SL-3", "combined", float(signals.sum()), dataset="(combined)",
                    signals=signals),
    ]


KEYS = ("L1", "L_SM", "L_max", "muhat", "nll1", "nll_SM", "nll_max")  # of to_json()


def test_batch_equals_one_by_one() -> None:
    database = _database()
    builder = LikelihoodBuilder(database, compilation_cache=False)
    batch = _predictions() + _predictions(0.3)
    builder.attach(batch)
    for p in batch:
        alone = copy.deepcopy(p)
        alone.statistics = None
        attach_statistics([alone], database)
        mine, theirs = p.to_json(), alone.to_json()
        assert getattr(p.statistics, "kind", None) == getattr(alone.statistics, "kind", None)
        for key in KEYS:
            assert (key in mine) == (key in theirs)
            if key in mine:
                assert mine[key] == pytest.approx(theirs[key], rel=1e-12, abs=1e-300)
        assert p.upper_limit_fb == pytest.approx(alone.upper_limit_fb, rel=1e-9)


def test_stored_backends_reproduce_the_stored_numbers() -> None:
    predictions = _predictions()
    attach_statistics(predictions, _database())
    kinds = {
        "upperLimit": TruncatedGaussianLikelihood,
        "efficiencyMap": SingleRegionLikelihood,
        "combined": SimplifiedLikelihood,
    }
    for p in predictions:
        if p.data_type == "upperLimit" and p.expected_upper_limit_fb is None:
            assert p.statistics is None and "nll1" not in p.to_json()
            continue
        s = p.statistics
        like = s.likelihood
        assert isinstance(like, kinds[p.data_type]) and isinstance(like, Likelihood)
        assert s.kind == like.kind
        values = like.nll(np.array([1.0, 0.0]))
        assert values[0] == pytest.approx(s.nll1, rel=1e-10)
        assert values[1] == pytest.approx(s.nll_sm, rel=1e-10)
        assert like.mu_hat == pytest.approx(s.mu_hat, rel=1e-10, abs=1e-12)
        assert like.nll_max == pytest.approx(s.nll_max, rel=1e-10)
        assert s.L1 == pytest.approx(math.exp(-s.nll1), rel=1e-12)
        record = p.to_json()
        assert "likelihood" not in record and record["nll1"] == s.nll1
    combined = predictions[-1]
    like = combined.statistics.likelihood
    total = combined.xsec_fb
    assert combined.upper_limit_fb == pytest.approx(like.upper_limit() * total, rel=1e-12)
    assert combined.expected_upper_limit_fb == pytest.approx(
        like.upper_limit(expected=True) * total, rel=1e-12
    )
    assert combined.r_obs == pytest.approx(1 / like.upper_limit(), rel=1e-12)
    # the truncated Gaussian in units of the prediction: u = UL / xsec
    ul = predictions[0].statistics.likelihood
    assert ul.upper_limit() == pytest.approx(3.0 / 2.0) and ul.upper_limit(True) == 1.25


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda db, ps: setattr(ps[3], "xsec_fb", -0.01), "xsec_fb x lumi"),
        (lambda db, ps: setattr(ps[4], "xsec_fb", math.nan), "xsec_fb x lumi"),
        (lambda db, ps: setattr(ps[0], "xsec_fb", math.nan), "xsec_fb"),
        (lambda db, ps: setattr(ps[0], "expected_upper_limit_fb", -1.0),
         "expected_upper_limit_fb"),
        (lambda db, ps: setattr(db.results[1].datasets[0], "expected_bg", -3.0), "expected_bg"),
        (lambda db, ps: setattr(db.results[1].datasets[1], "bg_error", math.nan), "bg_error"),
        (lambda db, ps: setattr(db.results[0].datasets[2], "observed_n", math.nan), "observed_n"),
        (lambda db, ps: setattr(db.results[0].datasets[2], "expected_bg", math.nan),
         "expected_bg"),
        (lambda db, ps: setattr(ps[5], "signals_fb", np.array([0.02, -1e-3, 0.03])), "signal"),
        (lambda db, ps: db.results[0].covariance.__setitem__((0, 1), 50.0), "covariance"),
    ],
)
def test_bad_input_raises_a_clear_error(change, field: str) -> None:
    database = _database()
    predictions = _predictions()
    change(database, predictions)
    with pytest.raises(StatisticsInputError) as caught:
        attach_statistics(predictions, database)
    error = caught.value
    assert error.field == field
    assert error.result_id in {"UL-1", "EM-2", "SL-3"}
    assert error.result_id in str(error) and field in str(error)


def test_bad_covariances_are_named() -> None:
    s = np.array([1.0, 2.0])
    b = np.array([5.0, 7.0])
    n = np.array([4.0, 9.0])
    bad = {
        "not positive definite": np.array([[1.0, 2.0], [2.0, 1.0]]),
        "singular": np.array([[1.0, 1.0], [1.0, 1.0]]),
        "not symmetric": np.array([[1.0, 0.5], [0.2, 1.0]]),
        "shape": np.eye(3),
        "finite": np.array([[1.0, np.nan], [np.nan, 1.0]]),
    }
    for words, cov in bad.items():
        with pytest.raises(StatisticsInputError, match=words) as caught:
            SimplifiedLikelihood.from_covariance(s, b, cov, n, label="ANA-1")
        assert caught.value.field == "covariance" and "ANA-1" in str(caught.value)
    with pytest.raises(StatisticsInputError, match="third_moment"):
        SimplifiedLikelihood.from_covariance(s, b, np.eye(2), n, [10.0, 0.1], label="ANA-1")
    with pytest.raises(StatisticsInputError, match="expected_bg"):
        SingleRegionLikelihood(1.0, -2.0, 1.0, 3.0, "SR")
    with pytest.raises(StatisticsInputError, match="upper_limit"):
        TruncatedGaussianLikelihood(float("nan"), 1.0, "UL")


def test_compilation_cache_folder(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = jax.config.jax_compilation_cache_dir
    before_time = jax.config.jax_persistent_cache_min_compile_time_secs
    try:
        monkeypatch.setenv(ENV_VAR, "0")
        assert enable_compilation_cache() is None
        monkeypatch.setenv(ENV_VAR, str(tmp_path / "jax-cache"))
        jax.config.update("jax_compilation_cache_dir", None)
        path = enable_compilation_cache()
        assert path == tmp_path / "jax-cache" and path.is_dir()
        assert jax.config.jax_compilation_cache_dir == str(path)
        # a folder the user gave JAX is kept
        assert enable_compilation_cache() == path
    finally:
        from jax.experimental.compilation_cache import compilation_cache

        jax.config.update("jax_compilation_cache_dir", before)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", before_time)
        compilation_cache.reset_cache()


def test_a_signal_met_again_takes_its_kept_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """The builder keeps the simplified likelihoods' summaries by result and signal: the same
    signal again gives the same numbers without a new fit, another signal is fitted, and only
    the last SUMMARIES_KEPT signals are kept."""
    from protomodels.statistics import attach

    builder = LikelihoodBuilder(_database(), compilation_cache=False)
    first = _predictions()
    builder.attach(first)
    fits = []
    original = SimplifiedLikelihood.summary.func

    def counted(self):  # noqa: ANN001, ANN202
        fits.append(self.label)
        return original(self)

    counted_summary = SimplifiedLikelihood.summary.__class__(counted)
    counted_summary.__set_name__(SimplifiedLikelihood, "summary")
    monkeypatch.setattr(SimplifiedLikelihood, "summary", counted_summary)
    again = _predictions()
    builder.attach(again)
    assert fits == []
    assert again[-1].to_json() == first[-1].to_json()
    assert again[-1].statistics.likelihood.summary == first[-1].statistics.likelihood.summary
    other = _predictions(0.3)
    builder.attach(other)
    assert fits == ["SL-3"]
    fresh = _predictions(0.3)
    attach_statistics(fresh, _database())
    assert other[-1].to_json() == fresh[-1].to_json()
    assert len(fits) == 2  # (the fresh attach fitted too)
    builder.attach(_predictions())
    assert len(fits) == 2
    monkeypatch.setattr(attach, "SUMMARIES_KEPT", 1)
    builder.attach(_predictions(0.5))  # kept: this signal alone
    builder.attach(_predictions())
    assert len(fits) == 4
