"""``protomodel predict --combine-analyses`` (SModelS combineAnas): the product of the analyses'
likelihoods, its mu-hat and r, the selection of one prediction per analysis, and the
combinability check with its override."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from _helpers import INFERENCE_FOLDERS, imported_store, stau_chargino_model
from click.testing import CliRunner

from protomodels.analyses_combination import CombinationError, combine_analyses
from protomodels.cli import cli
from protomodels.theory.protomodel import Protomodel

FOLDERS = INFERENCE_FOLDERS
N1, STAU, C1, N2 = 1000022, 1000015, 1000024, 1000023


def model(stau: float = 213.3, c1: float = 452.7, n2: float = 453.9, n1: float = 0.5) -> Protomodel:
    return stau_chargino_model(stau, c1, n2, n1)


@pytest.fixture(scope="module")
def store(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return imported_store(tarball, tmp_path_factory, FOLDERS, "inference-db")


@pytest.fixture(scope="module")
def slha(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("combine-model") / "model.slha"
    model().to_slha(path)
    return path


def _predict(store: Path, slha: Path, *args: str) -> tuple[int, str, dict | None]:
    result = CliRunner().invoke(
        cli, ["--database", str(store), "predict", str(slha), "--json", "-", *args],
        env={"COLUMNS": "200"},
    )
    data = None
    if result.exit_code == 0:
        data = json.loads(result.stdout[result.stdout.index("{"):])
    return result.exit_code, result.output, data


def test_combining_two_experiments(store: Path, slha: Path) -> None:
    code, output, data = _predict(store, slha, "--combine-analyses",
                                  "CMS-SUS-20-004,ATLAS-SUSY-2018-14")
    assert code == 0, output
    (combined,) = data["CombinedRes"]
    assert combined["AnalysisID"] == "ATLAS-SUSY-2018-14,CMS-SUS-20-004"
    by_analysis = {p["analysis"]: p for p in data["predictions"]}
    members = {m["analysis"]: m for m in combined["members"]}
    assert members["CMS-SUS-20-004"]["dataset"] == "(combined)"  # combined before a region
    # the product of the likelihoods: nll at mu = 1 and 0 are the members' sums
    for key, member_key in (("nll", "nll1"), ("nll_SM", "nll_SM")):
        assert combined[key] == pytest.approx(
            sum(by_analysis[a][member_key] for a in members), rel=1e-9)
    assert combined["nll_min"] <= min(combined["nll"], combined["nll_SM"]) + 1e-9
    assert combined["muhat"] >= 0 and combined["r"] > 0 and combined["r_expected"] > 0
    assert not combined["forced"]


def test_one_combined_analysis_reproduces_its_own_r(store: Path, slha: Path) -> None:
    """SModelS's combination of one analysis is that analysis' prediction."""
    code, output, data = _predict(store, slha, "--combine-analyses", "CMS-SUS-20-004")
    assert code == 0, output
    (combined,) = data["CombinedRes"]
    own = next(p for p in data["predictions"] if p["analysis"] == "CMS-SUS-20-004")
    assert combined["r"] == own["r_obs"] and combined["r_expected"] == own["r_exp"]
    assert combined["nll"] == own["nll1"] and combined["muhat"] == pytest.approx(own["muhat"])


def test_unknown_analyses_are_named(store: Path, slha: Path) -> None:
    code, output, _ = _predict(store, slha, "--combine-analyses", "CMS-SUS-20-004,NOPE-1")
    assert code != 0 and "cannot combine NOPE-1" in output


class _Like:
    """nll = (mu - m)^2 / (2 s^2) + c: a Gaussian likelihood in mu."""

    def __init__(self, m: float, s: float) -> None:
        self.m, self.s, self.mu_hat = m, s, max(m, 0.0)

    def nll(self, mu, expected: bool = False) -> np.ndarray:  # noqa: ANN001
        centre = 0.0 if expected else self.m
        return (np.asarray(mu, dtype=float) - centre) ** 2 / (2 * self.s**2)


class _Statistics:
    def __init__(self, like: _Like) -> None:
        self.likelihood, self.has_likelihood = like, True


class _Prediction:
    def __init__(self, analysis: str, like: _Like) -> None:
        self.analysis = self.result_id = analysis
        self.dataset, self.data_type, self.r_exp = "SR", "efficiencyMap", 1.0
        self.statistics = _Statistics(like)


def test_gaussian_likelihoods_combine_as_a_weighted_mean() -> None:
    """Two Gaussians in mu: the product's mu-hat is the inverse-variance weighted mean."""
    a, b = _Like(1.0, 0.5), _Like(2.0, 1.0)
    combined = combine_analyses([_Prediction("A", a), _Prediction("B", b)], ["A", "B"])
    weights = np.array([1 / 0.5**2, 1 / 1.0**2])
    assert combined.mu_hat == pytest.approx((weights @ [1.0, 2.0]) / weights.sum(), rel=1e-4)
    assert combined.nll_sm == pytest.approx(1 / (2 * 0.25) + 4 / 2)
    # expected limit of a Gaussian of width sigma with the Asimov data at 0: 1.96 sigma
    sigma = 1 / math.sqrt(weights.sum())
    assert combined.r_exp == pytest.approx(1 / (1.96 * sigma), rel=2e-3)
    assert math.isfinite(combined.r_obs) and combined.r_obs < combined.r_exp  # an excess
    with pytest.raises(CombinationError, match="same analysis"):
        combine_analyses([_Prediction("A", a)], ["A", "A"])


def test_a_pair_the_matrix_forbids_is_refused_or_forced() -> None:
    predictions = [_Prediction("A", _Like(1.0, 0.5)), _Prediction("B", _Like(2.0, 1.0))]
    with pytest.raises(CombinationError, match="not combinable.*A and B.*--force-combination"):
        combine_analyses(predictions, ["A", "B"], combinable=lambda a, b: False)
    with pytest.warns(UserWarning, match="combining A and B.*forced"):
        forced = combine_analyses(predictions, ["A", "B"], combinable=lambda a, b: False,
                                  force=True)
    assert forced.forced == (("A", "B"),)
    allowed = combine_analyses(predictions, ["A", "B"], combinable=lambda a, b: True)
    assert allowed.forced == () and allowed.mu_hat == pytest.approx(forced.mu_hat)
