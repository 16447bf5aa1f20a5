"""``protomodel predict`` through click's test runner, on the imported subset."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from protomodels.cli import cli

ENV = {"COLUMNS": "400", "PROTOMODELS_DATABASE": None}
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
