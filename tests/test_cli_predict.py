"""``protomodel predict`` through click's test runner, on the imported subset."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from _helpers import pyhf_model
from click.testing import CliRunner, Result

from protomodels.cli import cli

ENV = {"COLUMNS": "400", "PROTOMODELS_DATABASE": None}
PYHF = "ATLAS-SUSY-2018-14-eff"  # pyhf JSON (three files), no covariance
MISSING = "ATLAS-SUSY-2019-08-eff"  # its pyhf JSON is missing in v3.0.0
REFERENCE_KEYS = {"analysis", "dataset", "dataType", "txnames", "xsec_fb", "r_obs", "r_exp"}


def run(*args: str, database: Path) -> Result:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CliRunner().invoke(cli, ["--database", str(database), *args], env=ENV)


@pytest.fixture(scope="module")
def slha(shared: Path) -> Path:
    return shared / "data" / "reference" / "random_1_01.slha"


@pytest.fixture(scope="module")
def reference(shared: Path) -> dict:
    return json.loads((shared / "data" / "reference" / "random_1_01.json").read_text())


def test_predict_json_to_stdout(subset_store: Path, slha: Path, reference: dict) -> None:
    result = run("predict", str(slha), "--json", "-", database=subset_store)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["slha"] == "random_1_01.slha"
    predictions = payload["predictions"]
    assert predictions
    for record in predictions:
        assert REFERENCE_KEYS <= set(record)
    # ~s_L 617.7 -> s N1 306.1: T2 of CMS-SUS-19-006 with the SLHA's 13 TeV sigma
    ref = next(
        r for r in reference["predictions"]
        if r["analysis"] == "CMS-SUS-19-006" and r["dataType"] == "upperLimit"
    )  # fmt: skip
    ours = [
        r for r in predictions
        if r["analysis"] == "CMS-SUS-19-006" and r["dataType"] == "upperLimit"
    ]  # fmt: skip
    assert [r["txnames"] for r in ours] == [["T2"]]
    assert ours[0]["xsec_fb"] == pytest.approx(ref["xsec_fb"], rel=1e-9)
    assert ours[0]["xsec_fb"] == pytest.approx(172.637511, rel=1e-9)
    # every key of the reference record (likelihoods included) is there, r from the UL grid
    assert set(ref) <= set(ours[0])
    assert ours[0]["r_obs"] == pytest.approx(ref["r_obs"], rel=1e-6)
    assert ours[0]["r_exp"] == pytest.approx(ref["r_exp"], rel=1e-6)


def test_predict_json_without_statistics(subset_store: Path, slha: Path) -> None:
    result = run("predict", str(slha), "--no-statistics", "--json", "-", database=subset_store)
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.stdout)["predictions"]
    assert predictions
    assert all(set(r) == REFERENCE_KEYS for r in predictions)


def test_predict_json_to_file(subset_store: Path, slha: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = run("predict", str(slha), "--json", str(out), database=subset_store)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout
    payload = json.loads(out.read_text())
    assert payload["predictions"]
    assert all(REFERENCE_KEYS <= set(r) for r in payload["predictions"])
    same = json.loads(run("predict", str(slha), "--json", "-", database=subset_store).stdout)
    assert payload["predictions"] == same["predictions"]


def test_predict_table(subset_store: Path, slha: Path) -> None:
    result = run("predict", str(slha), database=subset_store)
    assert result.exit_code == 0, result.output
    assert "CMS-SUS-19-006" in result.stdout
    assert "T2" in result.stdout


def test_predict_id_filter(subset_store: Path, slha: Path) -> None:
    result = run(
        "predict", str(slha), "--id", "ATLAS-SUSY-2013-05", "--json", "-", database=subset_store
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["predictions"] == []


def test_predict_missing_slha(subset_store: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nothere.slha"
    result = run("predict", str(missing), database=subset_store)
    assert result.exit_code != 0
    assert "nothere.slha" in result.output
    assert "does not exist" in result.output
    assert "Traceback" not in result.output


def test_predict_slha_without_mass_block(subset_store: Path, tmp_path: Path) -> None:
    path = tmp_path / "nomass.slha"
    path.write_text("DECAY   1000006     1.0E+00\n     1.00000000E+00    2   1000022  6\n")
    result = run("predict", str(path), database=subset_store)
    assert result.exit_code == 1, result.output
    assert "no MASS block" in result.output
    assert "nomass.slha" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- pyhf full likelihoods --------------------------------------------------------------------
@pytest.fixture(scope="module")
def pyhf_slha(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A displaced stau (ATLAS-SUSY-2018-14, three regions: a pyhf combination) and a wino-like
    C1/N2 -> W/h N1 (ATLAS-SUSY-2019-08, JSON missing: best region)."""
    path = tmp_path_factory.mktemp("pyhf-model") / "pyhf_model.slha"
    pyhf_model().to_slha(path)
    return path


def _records(*args: str, database: Path) -> dict[tuple[str, str | None], dict]:
    result = run("predict", *args, "--id", PYHF, "--id", MISSING, "--json", "-", database=database)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    return {(r["analysis"], r["dataset"]): r for r in payload["predictions"]} | {
        ("settings", None): payload["settings"]
    }


@pytest.fixture(scope="module")
def full_records(subset_store: Path, pyhf_slha: Path) -> dict:
    return _records(str(pyhf_slha), database=subset_store)


def test_predict_uses_the_pyhf_full_likelihood(
    subset_store: Path, pyhf_slha: Path, full_records: dict
) -> None:
    """By default the combination of a pyhf result has the pyhf full likelihood: the values
    of PyhfLikelihood on the same signals, limits from pyhf's CLs."""
    import numpy as np

    import protomodels.database as pdb
    from protomodels.statistics.full_likelihood import PyhfLikelihood
    from protomodels.theory.predictions import Predictor
    from protomodels.theory.protomodel import Protomodel

    assert full_records[("settings", None)]["full_likelihoods"] is True
    record = full_records[("ATLAS-SUSY-2018-14", "(combined)")]
    assert record["dataType"] == "combined" and record["likelihood_kind"] == "pyhf"
    assert "fallback" not in record and "likelihood_error" not in record
    database = pdb.open(subset_store, build=False, workspaces=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Protomodel.from_slha(pyhf_slha)
    (combined,) = [
        p for p in Predictor(database, results=[database.result(PYHF)]).predict(model)
        if p.data_type == "combined"
    ]  # fmt: skip
    likelihood = PyhfLikelihood(database.result(PYHF), combined.signals_fb)
    nll1, nll0 = likelihood.nll(np.asarray([1.0, 0.0]))
    assert record["xsec_fb"] == pytest.approx(combined.xsec_fb, rel=1e-12)
    assert record["nll1"] == pytest.approx(float(nll1), abs=1e-6)
    assert record["nll_SM"] == pytest.approx(float(nll0), abs=1e-6)
    assert record["muhat"] == pytest.approx(likelihood.mu_hat, abs=1e-4)
    assert record["pyhf_workspace"] == likelihood.workspace.plan.file_name
    for key, expected in (("r_obs", False), ("r_exp", True)):
        r = combined.xsec_fb / likelihood.upper_limit_fb(expected=expected)
        assert record[key] == pytest.approx(r, rel=1e-4)


def test_predict_missing_json_reports_its_fallback(full_records: dict) -> None:
    (record,) = [r for k, r in full_records.items() if k[0] == "ATLAS-SUSY-2019-08"]
    assert record["dataType"] == "efficiencyMap" and record["likelihood_kind"] == "SR"
    assert record["fallback"] == "pyhf JSON files missing: best signal region instead"
    assert "nll1" in record


def test_predict_no_full_likelihoods(subset_store: Path, pyhf_slha: Path) -> None:
    """--no-full-likelihoods: the pyhf result gives its best signal region (as SModelS without
    combining: the same record as --no-combine), with its single-region likelihood, marked."""
    from protomodels.cli.predict import BEST_REGION_FALLBACK

    records = _records(str(pyhf_slha), "--no-full-likelihoods", database=subset_store)
    assert records[("settings", None)]["full_likelihoods"] is False
    ours = [r for k, r in records.items() if k[0] == "ATLAS-SUSY-2018-14"]
    assert [r["dataType"] for r in ours] == ["efficiencyMap"]
    assert ours[0]["fallback"] == BEST_REGION_FALLBACK
    assert ours[0]["likelihood_kind"] == "SR"
    uncombined = _records(str(pyhf_slha), "--no-combine", database=subset_store)
    same = uncombined[("ATLAS-SUSY-2018-14", ours[0]["dataset"])]
    assert {k: v for k, v in ours[0].items() if k != "fallback"} == same
    # the missing-JSON result is unchanged
    (missing,) = [r for k, r in records.items() if k[0] == "ATLAS-SUSY-2019-08"]
    assert missing["fallback"].startswith("pyhf JSON files missing")


def test_predict_table_shows_the_likelihood_and_fallbacks(
    subset_store: Path, pyhf_slha: Path
) -> None:
    result = run(
        "predict", str(pyhf_slha), "--no-full-likelihoods", "--id", PYHF, "--id", MISSING,
        database=subset_store,
    )
    assert result.exit_code == 0, result.output
    assert "likelihood" in result.stdout and "SR *" in result.stdout
    assert "* ATLAS-SUSY-2019-08-eff: fallback: pyhf JSON files missing" in result.stdout
    assert "* ATLAS-SUSY-2018-14-eff: fallback: full likelihoods off" in result.stdout
