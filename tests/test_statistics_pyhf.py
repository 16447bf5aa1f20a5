"""pyhf full likelihoods (protomodels.statistics.full_likelihood, pyhf_patch).

Hand-made workspaces with known answers, the SModelS patching rules, vectorisation, failures,
and real workspaces of the database checked against pyhf itself (numpy backend, as SModelS
calls it). The SModelS 3.0.3 reference files hold no pyhf combined prediction (the models reach
only the two results left out of the reference), so pyhf is the yardstick here.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyhf
import pytest
from scipy.stats import norm, poisson

import protomodels.database as pdb
from protomodels.combiner.candidates import stand_in_regions
from protomodels.database.records import DataSet, PyhfChannel, PyhfWorkspace, Result
from protomodels.exceptions import ProtomodelsError
from protomodels.statistics.attach import (
    NO_FULL_LIKELIHOOD,
    attach_statistics,
    likelihood_value,
    store_likelihoods,
)
from protomodels.statistics.common import PYHF_MAX_ITERATIONS
from protomodels.statistics.full_likelihood import (
    FIT_FAILED,
    MODIFIER_SETTINGS,
    NOT_FITTED,
    PyhfLikelihood,
    PyhfModels,
    WorkspaceTooLarge,
    attach_full_likelihoods,
)
from protomodels.statistics.pyhf_patch import (
    PyhfPatchError,
    apriori_spec,
    guess_region_type,
    patched_spec,
    plan_patch,
)
from protomodels.statistics.record import PredictionStatistics
from protomodels.theory.predictions import TheoryPrediction

LUMI = 100.0
FIXED_LUMI = {
    "name": "lumi",
    "auxdata": [1.0],
    "sigmas": [0.017],
    "bounds": [[0.915, 1.085]],
    "inits": [1.0],
    "fixed": True,
}


def _channel(name: str, background: list[float], *, systematic: bool = False) -> dict:
    modifiers = []
    if systematic:
        modifiers.append(
            {
                "name": f"syst_{name}",
                "type": "normsys",
                "data": {"hi": 1.2, "lo": 0.8},
            }
        )
    return {
        "name": name,
        "samples": [{"name": "background", "data": background, "modifiers": modifiers}],
    }


def _workspace(channels: list[dict], observed: dict[str, list[float]]) -> dict:
    return {
        "channels": channels,
        "observations": [{"name": c["name"], "data": observed[c["name"]]} for c in channels],
        "measurements": [{"name": "meas", "config": {"poi": "mu_SIG", "parameters": [FIXED_LUMI]}}],
        "version": "1.0.0",
    }


def _dataset(name: str, region_type: str = "SR") -> DataSet:
    return DataSet(
        dataset_id=name,
        data_id=name,
        data_type="efficiencyMap",
        observed_n=None,
        expected_bg=None,
        bg_error=None,
        upper_limit_fb=None,
        expected_upper_limit_fb=None,
        third_moment=None,
        region_type=region_type,
        aggregated=(),
        topologies=(),
    )


def _result(
    datasets: list[DataSet],
    workspaces: list[PyhfWorkspace],
    *,
    include_crs: bool = False,
    signal_uncertainty: float | None = None,
    likelihood: str = "pyhf",
    fallback: str | None = None,
) -> Result:
    return Result(
        result_id="TEST-eff",
        analysis_id="TEST",
        path="13TeV/TEST/TEST-eff",
        collaboration="ATLAS",
        sqrts_tev=13.0,
        lumi_ifb=LUMI,
        data_type="efficiencyMap",
        likelihood=likelihood,
        fallback=fallback,
        covariance=None,
        dataset_order=None,
        pyhf=tuple(workspaces),
        include_crs=include_crs,
        signal_uncertainty=signal_uncertainty,
        signature="prompt",
        pretty_name=None,
        url=None,
        arxiv=None,
        publication=None,
        supersedes=None,
        superseded_by=None,
        private=False,
        preliminary=False,
        lifetime_lengths={},
        extra={},
        datasets=tuple(datasets),
    )


def _one_bin(n: float = 12.0, b: float = 5.0, **kwargs) -> Result:
    spec = _workspace([_channel("SR_a", [b])], {"SR_a": [n]})
    ws = PyhfWorkspace("one.json", (PyhfChannel("A", None, "SR"),), spec, False)
    return _result([_dataset("A")], [ws], **kwargs)


@pytest.fixture(scope="module")
def models() -> PyhfModels:
    return PyhfModels()


def test_public_api() -> None:
    from protomodels.statistics import full_likelihood, pyhf_patch

    assert dir(full_likelihood) == [
        "CompiledWorkspace",
        "EXACT_HESSIAN_MAX_PARAMETERS",
        "FIT_FAILED",
        "FitResult",
        "MU_LANES",
        "NOT_FITTED",
        "PyhfFitError",
        "PyhfLikelihood",
        "PyhfModels",
        "WorkspaceTooLarge",
        "attach_full_likelihoods",
        "gauss_newton",
        "is_pyhf_prediction",
        "likelihood_curves",
        "prepare_full_likelihoods",
    ]
    assert dir(pyhf_patch) == [
        "PatchPlan",
        "PyhfPatchError",
        "SignalChannel",
        "apriori_spec",
        "guess_region_type",
        "patch_plans",
        "patched_spec",
        "plan_patch",
    ]


# -- patching ---------------------------------------------------------------------------------
def test_guess_region_type() -> None:
    assert guess_region_type("CRtt_cuts") == "CR"
    assert guess_region_type("VRz") == "VR"
    assert guess_region_type("SR_meff") == "SR"
    assert guess_region_type("WZ_CR_0jets") == "CR"
    assert guess_region_type("bin_a") == "SR"


def _mixed_workspace() -> dict:
    channels = [
        _channel("CRtop", [50.0]),
        _channel("SR_multi", [3.0, 2.0, 1.0]),
        _channel("VRz", [20.0]),
        _channel("SR_single", [4.0]),
    ]
    observed = {"CRtop": [52.0], "SR_multi": [4.0, 1.0, 2.0], "VRz": [19.0], "SR_single": [6.0]}
    return _workspace(channels, observed)


def test_unnamed_entries_follow_the_observations() -> None:
    """Entries without pyhf names take the SR bins in observation order; the CR and the VR
    are removed without includeCRs."""
    ids = ["M0", "M1", "M2", "S"]
    ws = PyhfWorkspace(
        "mixed.json", tuple(PyhfChannel(i, None, "SR") for i in ids), _mixed_workspace(), False
    )
    result = _result([_dataset(i) for i in ids], [ws])
    plan = plan_patch(result, ws)
    assert plan is not None
    assert [(c.channel, c.datasets) for c in plan.signal_channels] == [
        ("SR_multi", ("M0", "M1", "M2")),
        ("SR_single", ("S",)),
    ]
    assert set(plan.removed) == {"CRtop", "VRz"}
    spec = patched_spec(_mixed_workspace(), plan, {"M0": 1.0, "M2": 3.0, "S": 2.0})
    names = [c["name"] for c in spec["channels"]]
    assert names == ["SR_multi", "SR_single"]
    multi = spec["channels"][0]["samples"][0]
    assert multi["name"] == "bsm" and multi["data"] == [1.0, 0.0, 3.0]
    assert [m["type"] for m in multi["modifiers"]] == ["normfactor", "lumi"]
    assert spec["channels"][1]["samples"][0]["data"] == [2.0]


def test_control_region_with_signal_and_signal_uncertainty() -> None:
    """includeCRs: a CR named after a data set gets signal; signalUncertainty adds a histosys."""
    entries = (
        PyhfChannel("CR", "CRtop", "CR"),
        PyhfChannel("M0", "SR_multi[0]", "SR"),
        PyhfChannel("M1", "SR_multi[1]", "SR"),
        PyhfChannel("M2", "SR_multi[2]", "SR"),
        PyhfChannel(None, "VRz", "VR"),
        PyhfChannel("S", "SR_single", "SR"),
    )
    ws = PyhfWorkspace("mixed.json", entries, _mixed_workspace(), False)
    datasets = [_dataset("CR", "CR")] + [_dataset(i) for i in ("M0", "M1", "M2", "S")]
    result = _result(datasets, [ws], include_crs=True, signal_uncertainty=0.2)
    plan = plan_patch(result, ws)
    assert plan is not None
    assert [c.channel for c in plan.signal_channels] == ["CRtop", "SR_multi", "SR_single"]
    assert plan.removed == ("VRz",)
    spec = patched_spec(_mixed_workspace(), plan, {"CR": 0.5, "S": 2.0}, 0.2)
    cr = next(c for c in spec["channels"] if c["name"] == "CRtop")
    bsm = cr["samples"][0]
    assert bsm["data"] == [0.5]
    histosys = next(m for m in bsm["modifiers"] if m["type"] == "histosys")
    assert histosys["data"]["hi_data"] == pytest.approx([0.6])
    assert histosys["data"]["lo_data"] == pytest.approx([0.4])
    # without includeCRs, the named CR is a consistency error (as SModelS's errorFlag)
    with pytest.raises(PyhfPatchError, match="signal-bearing"):
        plan_patch(_result(datasets, [ws], include_crs=False), ws)


def test_unmapped_bin_is_an_error() -> None:
    entries = (PyhfChannel("M0", "SR_multi[0]", "SR"), PyhfChannel("M1", "SR_multi[1]", "SR"))
    ws = PyhfWorkspace("mixed.json", entries, _mixed_workspace(), False)
    result = _result([_dataset("M0"), _dataset("M1")], [ws])
    with pytest.raises(PyhfPatchError, match="3 bins but 2"):
        plan_patch(result, ws)


def test_apriori_spec_uses_the_nominal_background() -> None:
    spec = apriori_spec(_mixed_workspace())
    observed = {o["name"]: o["data"] for o in spec["observations"]}
    assert observed["SR_multi"] == [3.0, 2.0, 1.0]
    assert observed["CRtop"] == [50.0]


# -- known answers ----------------------------------------------------------------------------
def test_one_bin_without_systematics(models: PyhfModels) -> None:
    """L = Pois(n | mu s + b) x N(1 | 1, 0.017): mu-hat = (n - b)/s and nll(mu) in closed
    form. The lumi constraint is pyhf's: its term counts even though the parameter is fixed."""
    n, b = 12.0, 5.0
    lumi_term = -norm.logpdf(1.0, 1.0, 0.017)
    result = _one_bin(n, b)
    signal_fb = 0.04  # s = 4 events
    s = signal_fb * LUMI
    likelihood = PyhfLikelihood(result, [signal_fb], models=models)
    mus = np.asarray([0.0, 0.5, 1.0, 2.5])
    expected = -poisson.logpmf(n, mus * s + b) + lumi_term
    np.testing.assert_allclose(likelihood.nll(mus), expected, rtol=1e-9)
    assert likelihood.mu_hat == pytest.approx((n - b) / s, rel=1e-5)
    assert likelihood.nll_max == pytest.approx(-poisson.logpmf(n, n) + lumi_term, rel=1e-9)
    # a-priori expected data: n = b (continuous Poisson), so mu-hat = 0
    assert likelihood.nll(0.0, expected=True) == pytest.approx(
        -(b * math.log(b) - b - math.lgamma(b + 1)) + lumi_term, rel=1e-9
    )
    assert likelihood.maximum(expected=True)[0] == pytest.approx(0.0, abs=1e-6)


def test_mu_hat_is_capped_at_the_poi_bound(models: PyhfModels) -> None:
    likelihood = PyhfLikelihood(_one_bin(30.0, 5.0), [1e-4], models=models)
    assert likelihood.mu_hat == pytest.approx(10.0)


def test_underfluctuation_gives_mu_hat_zero(models: PyhfModels) -> None:
    likelihood = PyhfLikelihood(_one_bin(2.0, 5.0), [0.03], models=models)
    assert likelihood.mu_hat == pytest.approx(0.0, abs=1e-8)
    assert likelihood.nll_max == pytest.approx(float(likelihood.nll(0.0)), abs=1e-9)


def _pyhf_model(spec: dict) -> tuple:
    workspace = pyhf.Workspace(spec)
    model = workspace.model(modifier_settings=MODIFIER_SETTINGS)
    return model, workspace.data(model)


def test_upper_limit_matches_pyhf_hypotest(models: PyhfModels) -> None:
    """CLs at our limit is 0.05 by pyhf.infer.hypotest (q~mu, POI bounds (0, 10)); the
    expected limit uses the a-priori data."""
    result = _one_bin(8.0, 5.0)
    likelihood = PyhfLikelihood(result, [0.05], models=models)
    plan = likelihood.workspace.plan
    spec = patched_spec(result.pyhf[0].workspace, plan, {"A": 0.05 * LUMI})
    for expected in (False, True):
        mu_ul = likelihood.upper_limit(expected=expected)
        model, data = _pyhf_model(apriori_spec(spec) if expected else spec)
        bounds = model.config.suggested_bounds()
        bounds[model.config.poi_index] = (0.0, 10.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls = float(
                pyhf.infer.hypotest(mu_ul, data, model, test_stat="qtilde", par_bounds=bounds)
            )
            cls_low = float(pyhf.infer.hypotest(0.99 * mu_ul, data, model, test_stat="qtilde"))
        assert cls == pytest.approx(0.05, abs=2e-3)
        assert cls_low > cls
        assert likelihood.cls(mu_ul, expected=expected) == pytest.approx(cls, abs=1e-6)


def test_systematics_match_pyhf_fits(models: PyhfModels) -> None:
    """Two bins with normsys nuisances and a signal uncertainty: profiled nll and mu-hat
    equal pyhf's own fits (numpy backend)."""
    spec = _workspace(
        [_channel("SR1", [5.0], systematic=True), _channel("SR2", [3.0], systematic=True)],
        {"SR1": [9.0], "SR2": [4.0]},
    )
    entries = (PyhfChannel("A", None, "SR"), PyhfChannel("B", None, "SR"))
    ws = PyhfWorkspace("two.json", entries, spec, False)
    result = _result([_dataset("A"), _dataset("B")], [ws], signal_uncertainty=0.1)
    signals = np.asarray([0.03, 0.01])
    likelihood = PyhfLikelihood(result, signals, models=models)
    patched = patched_spec(spec, likelihood.workspace.plan, {"A": 3.0, "B": 1.0}, 0.1)
    model, data = _pyhf_model(patched)
    for mu in (0.0, 1.0, 1.7):
        _, twice = pyhf.infer.mle.fixed_poi_fit(mu, data, model, return_fitted_val=True)
        assert float(likelihood.nll(mu)) == pytest.approx(float(twice) / 2, abs=1e-6)
    best, twice = pyhf.infer.mle.fit(data, model, return_fitted_val=True)
    assert likelihood.mu_hat == pytest.approx(float(best[model.config.poi_index]), abs=2e-3)
    assert likelihood.nll_max == pytest.approx(float(twice) / 2, abs=1e-6)


def test_nll_is_vectorised(models: PyhfModels) -> None:
    likelihood = PyhfLikelihood(_one_bin(), [0.02], models=models)
    grid = np.asarray([[0.0, 0.3], [1.0, 4.0]])
    batch = likelihood.nll(grid)
    assert batch.shape == grid.shape
    fresh = PyhfLikelihood(_one_bin(), [0.02], models=models)
    scalars = np.asarray([[float(fresh.nll(m)) for m in row] for row in grid])
    np.testing.assert_allclose(batch, scalars, rtol=1e-10)


def test_compiled_model_is_reused_for_new_signals(models: PyhfModels) -> None:
    result = _one_bin()
    first = PyhfLikelihood(result, [0.01], models=models)
    second = PyhfLikelihood(result, [0.08], models=models)
    assert first.workspace is second.workspace
    assert float(first.nll(1.0)) != pytest.approx(float(second.nll(1.0)))


def test_fits_see_a_fixed_set_of_mu_lengths() -> None:
    """Curves of any length are computed in chunks of MU_LANES values: compile_kernels
    compiles the summary and the shortest curve; asking for 1 to 40 mu values then compiles
    only the other MU_LANES length, and the chunked values equal the closed form of the
    one-bin workspace."""
    from protomodels.statistics.full_likelihood import MU_LANES, prepare_full_likelihoods

    n, b = 12.0, 5.0
    result = _one_bin(n, b)
    database = SimpleNamespace(results=[result])
    own = PyhfModels()
    assert prepare_full_likelihoods(database, models=own) == {}
    (compiled,) = own.workspaces(result)
    kernels = {name: len(k._compiled) for name, k in compiled._kernels.items()}
    budget = PYHF_MAX_ITERATIONS
    assert kernels == {("summary", budget): 1, ("curve", budget): 1}
    lumi_term = -norm.logpdf(1.0, 1.0, 0.017)
    for size in (1, 3, 4, 5, 16, 17, 21, 40):
        mus = np.linspace(0.0, 3.0, size)
        likelihood = PyhfLikelihood(result, [0.04], models=own)
        values = likelihood.nll(mus)
        expected = -poisson.logpmf(n, mus * 0.04 * LUMI + b) + lumi_term
        np.testing.assert_allclose(values, expected, rtol=1e-9)
    after = {name: len(k._compiled) for name, k in compiled._kernels.items()}
    assert after == {("summary", budget): 1, ("curve", budget): len(MU_LANES)}


def test_too_large_workspaces_are_not_prepared() -> None:
    """prepare_full_likelihoods names a workspace above max_parameters instead of building it
    (the evaluation's fallback applies to it anyway)."""
    from protomodels.statistics.full_likelihood import prepare_full_likelihoods

    database = SimpleNamespace(results=[_one_bin()])
    skipped = prepare_full_likelihoods(database, models=PyhfModels(), max_parameters=0)
    assert list(skipped) == ["TEST-eff"]
    assert "parameters" in next(iter(skipped.values()))


def test_several_files_use_the_best_expected_one(models: PyhfModels) -> None:
    """Two JSON files: the one with the smaller a-priori expected limit is used, and the
    limit on sigma x eff uses the yield summed over both files (SModelS's T)."""
    loose = PyhfWorkspace(
        "loose.json",
        (PyhfChannel("A", None, "SR"),),
        _workspace([_channel("SR_a", [50.0])], {"SR_a": [50.0]}),
        False,
    )
    tight = PyhfWorkspace(
        "tight.json",
        (PyhfChannel("B", None, "SR"),),
        _workspace([_channel("SR_b", [1.0])], {"SR_b": [1.0]}),
        False,
    )
    result = _result([_dataset("A"), _dataset("B")], [loose, tight])
    likelihood = PyhfLikelihood(result, [0.05, 0.05], models=models)
    assert likelihood.workspace.plan.file_name == "tight.json"
    alone = PyhfLikelihood(result, [0.0, 0.05], models=models)
    assert alone.workspace.plan.file_name == "tight.json"
    assert likelihood.total_yield == pytest.approx(10.0)
    mu_ul = likelihood.upper_limit()
    assert likelihood.upper_limit_fb() == pytest.approx(mu_ul * 10.0 / LUMI)
    assert mu_ul == pytest.approx(alone.upper_limit(), rel=1e-9)


# -- failures ---------------------------------------------------------------------------------
def _prediction(result: Result, signals_fb: list[float]) -> TheoryPrediction:
    return TheoryPrediction(
        analysis=result.analysis_id,
        result_id=result.result_id,
        dataset="(combined)",
        data_type="combined",
        txnames=("T",),
        xsec_fb=float(sum(signals_fb)),
        upper_limit_fb=None,
        expected_upper_limit_fb=None,
        sqrts_tev=13.0,
        lumi_ifb=LUMI,
        signals_fb=np.asarray(signals_fb),
    )


class _OneResult:
    def __init__(self, result: Result) -> None:
        self.results = (result,)


def test_failed_fit_is_a_recorded_fallback() -> None:
    spec = _workspace(
        [_channel("SR1", [5.0], systematic=True), _channel("SR2", [3.0], systematic=True)],
        {"SR1": [40.0], "SR2": [1.0]},
    )
    entries = (PyhfChannel("A", None, "SR"), PyhfChannel("B", None, "SR"))
    result = _result(
        [_dataset("A"), _dataset("B")], [PyhfWorkspace("two.json", entries, spec, False)]
    )
    p = _prediction(result, [0.02, 0.03])
    attach_full_likelihoods([p], _OneResult(result), max_iterations=1)  # type: ignore[arg-type]
    s = p.statistics
    assert s.kind == "none" and s.likelihood is None and math.isnan(s.nll1)
    assert "L1" not in p.to_json() and "nll1" not in p.to_json()
    assert "failed" in s.error
    assert s.fallback.startswith(FIT_FAILED)
    assert p.upper_limit_fb is None and p.r_obs is None


def test_bad_signals_and_missing_json() -> None:
    result = _one_bin()
    with pytest.raises(ValueError, match="signals_fb"):
        PyhfLikelihood(result, [0.1, 0.2])
    missing = _result(
        [_dataset("A")],
        [PyhfWorkspace("gone.json", (PyhfChannel("A", None, "SR"),), None, True)],
        likelihood="single_region",
        fallback="pyhf JSON files missing: best signal region instead",
    )
    p = _prediction(missing, [0.1])
    attach_full_likelihoods([p], _OneResult(missing))  # type: ignore[arg-type]
    assert p.statistics == PredictionStatistics.without_likelihood(
        "pyhf JSON files missing: best signal region instead"
    )
    bad = _prediction(result, [0.1, 0.2])
    attach_full_likelihoods([bad], _OneResult(result))  # type: ignore[arg-type]
    assert "signals_fb" in bad.statistics.error and math.isnan(bad.statistics.mu_hat)
    assert bad.statistics.fallback.startswith(FIT_FAILED)


# -- attach_statistics(full_likelihoods=...) --------------------------------------------------
def _counted(name: str, n: float, b: float, sigma: float) -> DataSet:
    return dataclasses.replace(
        _dataset(name), observed_n=n, expected_bg=b, bg_error=sigma, upper_limit_fb=0.1,
        expected_upper_limit_fb=0.08,
    )


def _two_bins(**kwargs) -> Result:
    spec = _workspace(
        [_channel("SR1", [5.0], systematic=True), _channel("SR2", [3.0], systematic=True)],
        {"SR1": [9.0], "SR2": [4.0]},
    )
    entries = (PyhfChannel("A", None, "SR"), PyhfChannel("B", None, "SR"))
    datasets = [_counted("A", 9.0, 5.0, 1.0), _counted("B", 4.0, 3.0, 0.6)]
    return _result(datasets, [PyhfWorkspace("two.json", entries, spec, False)], **kwargs)


def test_attach_statistics_runs_the_pyhf_stage() -> None:
    """full_likelihoods=True: the combined prediction of a pyhf result gets the full likelihood
    (the numbers of PyhfLikelihood, limits included) next to the other kinds; the default
    leaves it without a likelihood and says so."""
    result = _two_bins()
    database = _OneResult(result)
    signals = [0.03, 0.01]
    region = dataclasses.replace(
        _prediction(result, signals), dataset="A", data_type="efficiencyMap", xsec_fb=0.03
    )
    combined = _prediction(result, signals)
    attach_statistics([region, combined], database, full_likelihoods=True)  # type: ignore[arg-type]
    expected = PyhfLikelihood(result, signals)
    nll1, nll0 = expected.nll([1.0, 0.0])
    s = combined.statistics
    assert isinstance(s.likelihood, PyhfLikelihood) and s.kind == "pyhf"
    assert s.nll1 == pytest.approx(float(nll1), abs=1e-9)
    assert s.nll_sm == pytest.approx(float(nll0), abs=1e-9)
    assert s.mu_hat == pytest.approx(expected.mu_hat, abs=1e-6)
    assert s.L1 == pytest.approx(math.exp(-float(nll1)), rel=1e-9)
    assert s.workspace == "two.json" and combined.to_json()["pyhf_workspace"] == "two.json"
    assert combined.upper_limit_fb == pytest.approx(expected.upper_limit_fb(), rel=1e-6)
    assert combined.r_obs == pytest.approx(combined.xsec_fb / expected.upper_limit_fb(), rel=1e-6)
    assert s.fallback is None and s.error is None
    # the single region too
    assert region.statistics.kind == "single_region" and region.statistics.fallback is None
    # the default: no pyhf stage, the prediction says so
    fast = _prediction(result, signals)
    attach_statistics([fast], database)  # type: ignore[arg-type]
    assert fast.statistics == PredictionStatistics.without_likelihood(NO_FULL_LIKELIHOOD)
    assert fast.upper_limit_fb is None
    # attach_statistics, then attach_full_likelihoods: the label is cleared
    attach_full_likelihoods([fast], database)  # type: ignore[arg-type]
    assert fast.statistics.fallback is None
    assert fast.statistics.nll1 == pytest.approx(s.nll1, abs=1e-9)


def test_missing_json_reports_its_fallback() -> None:
    """A result whose pyhf JSON is missing: its best-region prediction carries the result's
    fallback, with or without full likelihoods, and gets the single-region likelihood."""
    fallback = "pyhf JSON files missing: best signal region instead"
    missing = _result(
        [_counted("A", 9.0, 5.0, 1.0), _counted("B", 4.0, 3.0, 0.6)],
        [PyhfWorkspace("gone.json", (PyhfChannel("A", None, "SR"),), None, True)],
        likelihood="single_region",
        fallback=fallback,
    )
    for full in (False, True):
        p = dataclasses.replace(
            _prediction(missing, [0.03, 0.0]), dataset="A", data_type="efficiencyMap",
            xsec_fb=0.03,
        )
        attach_statistics([p], _OneResult(missing), full_likelihoods=full)  # type: ignore[arg-type]
        assert p.statistics.fallback == fallback
        assert p.statistics.likelihood.__class__.__name__ == "SingleRegionLikelihood"
        assert p.to_json()["fallback"] == fallback


def test_full_likelihoods_need_the_workspaces() -> None:
    """A database opened with workspaces=False: a clear error, not a NaN per prediction."""
    loaded = _one_bin()
    unloaded = dataclasses.replace(
        loaded, pyhf=tuple(dataclasses.replace(w, workspace=None) for w in loaded.pyhf)
    )
    p = _prediction(unloaded, [0.02])
    with pytest.raises(ProtomodelsError, match="workspaces=True"):
        attach_statistics([p], _OneResult(unloaded), full_likelihoods=True)  # type: ignore[arg-type]
    attach_statistics([p], _OneResult(unloaded))  # type: ignore[arg-type] - fine without pyhf


def test_one_store_helper_for_every_backend() -> None:
    """L = exp(-nll), 0 where it underflows, NaN where nll is NaN (kinds 1-3 and pyhf alike)."""
    assert likelihood_value(2.0) == pytest.approx(math.exp(-2.0))
    assert likelihood_value(800.0) == 0.0
    assert likelihood_value(-800.0) == math.inf  # a very narrow density: no OverflowError
    assert math.isnan(likelihood_value(math.nan))
    p = _prediction(_one_bin(), [0.02])
    store_likelihoods(p, "pyhf", 800.0, 1.0, math.nan, 0.5, object())
    assert {k: v for k, v in p.to_json().items() if k[0] in "Lmn"} == {
        "L1": 0.0, "L_SM": pytest.approx(math.exp(-1.0)), "L_max": pytest.approx(math.nan,
        nan_ok=True), "muhat": 0.5, "nll1": 800.0, "nll_SM": 1.0,
        "nll_max": pytest.approx(math.nan, nan_ok=True),
    }


# -- the real database ------------------------------------------------------------------------
def test_atlas_susy_2018_14_against_pyhf(subset_store: Path) -> None:
    """Three overlapping JSON files (SRee, SRmm, Comb): the chosen file has the smallest
    expected limit, and nll(1), nll(0) and mu-hat equal pyhf's fits on that file."""
    database = pdb.open(subset_store, build=False, workspaces=True)
    result = database.result("ATLAS-SUSY-2018-14-eff")
    by_name = {"SRee": 0.02, "SRmm": 0.01, "SRem": 0.005}  # fb
    signals = np.asarray([by_name[d.data_id or d.dataset_id] for d in result.datasets])
    models = PyhfModels()
    likelihood = PyhfLikelihood(result, signals, models=models)
    chosen = likelihood.workspace
    singles = {}
    for compiled in models.workspaces(result):
        single = PyhfLikelihood(result, signals, models=models)
        stats = next(w for w in single._all if w.compiled is compiled)
        singles[compiled.plan.file_name] = stats.upper_limit(expected=True)
    assert chosen.plan.file_name == min(singles, key=singles.get)
    ids = [d.data_id or d.dataset_id for d in result.datasets]
    raw = next(w.workspace for w in result.pyhf if w.file_name == chosen.plan.file_name)
    spec = patched_spec(raw, chosen.plan, dict(zip(ids, signals * result.lumi_ifb, strict=True)))
    model, data = _pyhf_model(copy.deepcopy(spec))
    for mu in (0.0, 1.0):
        _, twice = pyhf.infer.mle.fixed_poi_fit(mu, data, model, return_fitted_val=True)
        assert float(likelihood.nll(mu)) == pytest.approx(float(twice) / 2, abs=1e-5)
    best, _ = pyhf.infer.mle.fit(data, model, return_fitted_val=True)
    assert likelihood.mu_hat == pytest.approx(float(best[model.config.poi_index]), abs=2e-3)
    # SRee and SRmm also sit in Comb: T counts them twice (SModelS's total yield)
    expected_total = (2 * (0.02 + 0.01) + 0.005) * result.lumi_ifb
    assert likelihood.total_yield == pytest.approx(expected_total)


@pytest.mark.slow
def test_reference_model_with_pyhf_results(shared: Path) -> None:
    """protomodels_ewkinos.slha reaches ATLAS-SUSY-2018-32 (pyhf) and ATLAS-SUSY-2019-08 (JSON
    missing): through attach_statistics(full_likelihoods=True), the first gets likelihoods equal
    to pyhf's fits and a limit where pyhf's CLs is 0.05, the second (its best signal region)
    says which fallback applies. The reference file itself has no pyhf combined prediction to
    compare with (both results are left out of it)."""
    import json

    from protomodels.theory.predictions import Predictor
    from protomodels.theory.protomodel import Protomodel

    slha = shared / "data" / "reference" / "protomodels_ewkinos.slha"
    reference = json.loads(slha.with_suffix(".json").read_text())["predictions"]
    database = pdb.open(build=False, workspaces=True)
    by_id = {r.result_id: r for r in database.results}
    assert not [q for q in reference if q["dataType"] == "combined" and by_id[q["analysis"]].pyhf]
    predictions = Predictor(database).predict(Protomodel.from_slha(slha))
    attach_statistics(predictions, database, full_likelihoods=True)
    combined = {p.result_id: p for p in predictions if p.data_type == "combined"}
    (missing,) = [p for p in predictions if p.result_id == "ATLAS-SUSY-2019-08-eff"]
    assert missing.data_type == "efficiencyMap"
    assert "best signal region" in missing.statistics.fallback
    p = combined["ATLAS-SUSY-2018-32-eff"]
    assert p.statistics.error is None
    likelihood = p.statistics.likelihood
    result = by_id[p.result_id]
    ids = [d.data_id or d.dataset_id for d in result.datasets]
    raw = next(w.workspace for w in result.pyhf if not w.full)
    signals = dict(zip(ids, np.asarray(p.signals_fb) * result.lumi_ifb, strict=True))
    model, data = _pyhf_model(patched_spec(raw, likelihood.workspace.plan, signals))
    _, twice = pyhf.infer.mle.fixed_poi_fit(1.0, data, model, return_fitted_val=True)
    assert p.statistics.nll1 == pytest.approx(float(twice) / 2, abs=1e-5)
    mu_ul = p.upper_limit_fb / p.xsec_fb  # one JSON, all data sets in it: T = xsec x lumi
    bounds = model.config.suggested_bounds()
    bounds[model.config.poi_index] = (0.0, 10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls = float(pyhf.infer.hypotest(mu_ul, data, model, test_stat="qtilde", par_bounds=bounds))
    assert cls == pytest.approx(0.05, abs=2e-3)
    assert p.r_obs == pytest.approx(1.0 / mu_ul)


# -- the JAX fits: batching, limits, flags, settings ------------------------------------------
def test_curves_of_many_signals_are_one_call(models: PyhfModels) -> None:
    """likelihood_curves: (signals x mu) profiled nll in one call, equal to the closed form of
    the one-bin workspace and to PyhfLikelihood.nll."""
    from protomodels.statistics.full_likelihood import likelihood_curves

    n, b = 12.0, 5.0
    result = _one_bin(n, b)
    signals = np.asarray([[0.01], [0.04], [0.1]])
    mus = np.asarray([0.0, 0.5, 1.0, 2.0, 3.0])
    values, ok = likelihood_curves(result, signals, mus, models=models)
    assert values.shape == ok.shape == (3, 5) and ok.all()
    lumi_term = -norm.logpdf(1.0, 1.0, 0.017)
    expected = -poisson.logpmf(n, mus[None, :] * signals * LUMI + b) + lumi_term
    np.testing.assert_allclose(values, expected, rtol=1e-9)
    single = PyhfLikelihood(result, signals[1], models=models)
    np.testing.assert_allclose(single.nll(mus), values[1], rtol=1e-12)
    curve, good = single.curve(mus)
    np.testing.assert_allclose(curve, values[1], rtol=1e-12)
    assert good.all()


def _brentq_limit(model, data, lo: float, hi: float) -> float:  # noqa: ANN001
    from scipy.optimize import brentq

    bounds = model.config.suggested_bounds()
    bounds[model.config.poi_index] = (0.0, 10.0)

    def f(mu: float) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls = pyhf.infer.hypotest(mu, data, model, test_stat="qtilde", par_bounds=bounds)
        return float(cls) - 0.05

    return brentq(f, lo, hi, rtol=1e-6)


def _assert_agrees_with_pyhf(likelihood: PyhfLikelihood, patched: dict, nll_abs: float) -> None:
    """-2 ln L at mu = 0, 0.5, 1, 2 within ``nll_abs`` of pyhf's fixed_poi_fit (numpy), mu-hat
    within 2 %, observed and expected mu_UL within 1e-3 of a brentq on pyhf.infer.hypotest."""
    model, data = _pyhf_model(patched)
    for mu in (0.0, 0.5, 1.0, 2.0):
        _, twice = pyhf.infer.mle.fixed_poi_fit(mu, data, model, return_fitted_val=True)
        assert 2 * float(likelihood.nll(mu)) == pytest.approx(float(twice), abs=nll_abs)
    best = pyhf.infer.mle.fit(data, model)
    assert likelihood.mu_hat == pytest.approx(float(best[model.config.poi_index]), rel=0.02)
    ours = likelihood.upper_limit()
    assert ours == pytest.approx(_brentq_limit(model, data, 0.3 * ours, 3 * ours), rel=1e-3)
    model_e, data_e = _pyhf_model(apriori_spec(patched))
    ours_e = likelihood.upper_limit(expected=True)
    assert ours_e == pytest.approx(_brentq_limit(model_e, data_e, 0.3 * ours_e, 3 * ours_e),
                                   rel=1e-3)
    assert likelihood.converged and not likelihood.errors


def test_agreement_with_pyhf_on_systematics(models: PyhfModels) -> None:
    """Two bins with normsys nuisances and a signal uncertainty: -2 ln L at mu = 0, 0.5, 1, 2
    within 0.05 of pyhf's fixed_poi_fit (numpy backend), mu-hat within 2 %, observed and
    expected mu_UL within 2 % of a brentq on pyhf.infer.hypotest (much closer in fact)."""
    spec = _workspace(
        [_channel("SR1", [5.0], systematic=True), _channel("SR2", [3.0], systematic=True)],
        {"SR1": [9.0], "SR2": [4.0]},
    )
    entries = (PyhfChannel("A", None, "SR"), PyhfChannel("B", None, "SR"))
    ws = PyhfWorkspace("two.json", entries, spec, False)
    result = _result([_dataset("A"), _dataset("B")], [ws], signal_uncertainty=0.1)
    likelihood = PyhfLikelihood(result, [0.03, 0.01], models=models)
    patched = patched_spec(spec, likelihood.workspace.plan, {"A": 3.0, "B": 1.0}, 0.1)
    _assert_agrees_with_pyhf(likelihood, patched, nll_abs=0.05)


def test_fit_out_of_budget_is_a_flag(models: PyhfModels) -> None:
    """A fit that does not converge within its Newton budget: NaN and the reason; the
    prediction is a recorded fallback (no likelihood, no limits, statistics.fallback with the
    reason, statistics.converged = False), never a silent number."""
    result = _two_bins()
    likelihood = PyhfLikelihood(result, [0.03, 0.01], models=models, max_iterations=1)
    assert math.isnan(float(likelihood.nll(1.0)))
    assert not likelihood.converged
    assert any("did not converge" in e for e in likelihood.errors)
    p = _prediction(result, [0.03, 0.01])
    attach_full_likelihoods([p], _OneResult(result), models=models, max_iterations=1)  # type: ignore[arg-type]
    assert p.statistics.converged is False and p.to_json()["pyhf_converged"] is False
    assert p.statistics.likelihood is None and "nll1" not in p.to_json()
    assert p.upper_limit_fb is None and p.expected_upper_limit_fb is None
    assert p.statistics.fallback.startswith(FIT_FAILED)
    assert "did not converge" in p.statistics.fallback
    assert stand_in_regions([p]) == {}  # no region predicted here: nothing stands in
    p_ok = _prediction(result, [0.03, 0.01])
    attach_full_likelihoods([p_ok], _OneResult(result), models=models)  # type: ignore[arg-type]
    assert p_ok.statistics.fallback is None and math.isfinite(p_ok.statistics.nll1)


def test_runtime_settings_are_restored() -> None:
    """The statistics settings (x64, pyhf's backend, BLAS threads) hold inside their
    contexts only: an embedding code keeps its own."""
    import jax

    from protomodels.statistics import runtime

    x64_before = jax.config.read("jax_enable_x64")
    backend_before = pyhf.get_backend()[0].name
    with runtime.statistics_settings():
        assert pyhf.get_backend()[0].name == "jax"
        assert jax.numpy.zeros(1).dtype == np.float64
    assert jax.config.read("jax_enable_x64") == x64_before
    assert pyhf.get_backend()[0].name == backend_before
    runtime.pyhf_jax_backend()
    assert jax.config.read("jax_enable_x64") == x64_before


def test_no_import_cycle() -> None:
    """statistics.attach and statistics.full_likelihood share statistics.common, not each
    other (evaluate imports full_likelihood lazily, only for the pyhf stage)."""
    import ast
    import inspect

    from protomodels.statistics import full_likelihood

    tree = ast.parse(inspect.getsource(full_likelihood))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "protomodels.statistics.attach" not in imported
    assert "protomodels.statistics.common" in imported


def test_a_workspace_above_the_parameter_cap_is_not_fitted(monkeypatch: pytest.MonkeyPatch) -> None:
    """max_parameters: a larger workspace is a recorded fallback naming its size and the cap,
    and the refusal is remembered (pyhf does not build the model again for the next signal)."""
    from protomodels.statistics import full_likelihood

    result = _two_bins()
    models = PyhfModels()
    n_par = len(models.workspaces(result)[0].init)
    fresh = PyhfModels()
    p = _prediction(result, [0.03, 0.01])
    attach_full_likelihoods([p], _OneResult(result), models=fresh, max_parameters=n_par - 1)  # type: ignore[arg-type]
    assert p.statistics.fallback.startswith(NOT_FITTED)
    assert f"{n_par} parameters, more than the {n_par - 1}" in p.statistics.fallback
    assert p.statistics.likelihood is None and p.upper_limit_fb is None
    builds = []
    original = full_likelihood.CompiledWorkspace.build
    monkeypatch.setattr(full_likelihood.CompiledWorkspace, "build",
                        lambda *a, **k: builds.append(1) or original(*a, **k))
    with pytest.raises(WorkspaceTooLarge):
        fresh.workspaces(result, max_parameters=n_par - 1)
    assert not builds  # remembered
    assert fresh.workspaces(result, max_parameters=n_par)  # a higher cap builds it
    assert builds == [1]


def _many_nuisances(n_syst: int = 36) -> Result:
    """Three single-bin SRs sharing ``n_syst`` normsys nuisances of different sizes per bin:
    more parameters than EXACT_HESSIAN_MAX_PARAMETERS."""
    rng = np.random.default_rng(5)
    channels = []
    for name, b in (("SR1", 6.0), ("SR2", 4.0), ("SR3", 9.0)):
        channel = _channel(name, [b])
        for k in range(n_syst):
            up = float(rng.uniform(0.01, 0.12))
            channel["samples"][0]["modifiers"].append(
                {"name": f"syst{k}", "type": "normsys",
                 "data": {"hi": 1.0 + up, "lo": 1.0 - 0.8 * up}}
            )
        channels.append(channel)
    spec = _workspace(channels, {"SR1": [11.0], "SR2": [3.0], "SR3": [12.0]})
    entries = tuple(PyhfChannel(k, None, "SR") for k in ("A", "B", "C"))
    ws = PyhfWorkspace("many.json", entries, spec, False)
    return _result([_dataset("A"), _dataset("B"), _dataset("C")], [ws])


def test_gauss_newton_fits_agree_with_pyhf(models: PyhfModels) -> None:
    """Above EXACT_HESSIAN_MAX_PARAMETERS the Newton steps use the Gauss-Newton curvature:
    it equals the exact Hessian at the post-fit Asimov data, and the fits reach pyhf's
    minima: -2 ln L at mu = 0, 0.5, 1, 2, mu-hat and both limits as pyhf numpy."""
    import jax
    import jax.numpy as jnp

    from protomodels.statistics.full_likelihood import EXACT_HESSIAN_MAX_PARAMETERS
    from protomodels.statistics.runtime import statistics_settings

    result = _many_nuisances()
    signals = [0.05, 0.01, 0.03]
    likelihood = PyhfLikelihood(result, signals, models=models)
    compiled = likelihood.workspace
    assert len(compiled.init) > EXACT_HESSIAN_MAX_PARAMETERS
    assert compiled.curvature == "gauss-newton"
    bg = compiled.background
    with statistics_settings():
        n, aux, x = (jnp.asarray(a[0]) for a in (bg.n_asimov, bg.aux_asimov, bg.x0))
        s = jnp.asarray(compiled.signal_bins(np.asarray(signals) * LUMI))
        exact = jax.hessian(lambda p: compiled._nll(p, n, aux, s))(x)
        approx = compiled._objective.curvature(x, n, aux, s)
    np.testing.assert_allclose(np.asarray(approx), np.asarray(exact), atol=1e-9)

    patched = patched_spec(result.pyhf[0].workspace, compiled.plan,
                           {"A": 5.0, "B": 1.0, "C": 3.0})
    _assert_agrees_with_pyhf(likelihood, patched, nll_abs=1e-4)


def test_small_workspaces_keep_the_exact_hessian(models: PyhfModels) -> None:
    compiled = PyhfLikelihood(_two_bins(), [0.03, 0.01], models=models).workspace
    assert compiled.curvature == "exact"
