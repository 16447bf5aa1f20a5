"""The pyhf full likelihoods inside the evaluation (on by default), on the subset store: what
entered the evaluation (``candidates``), ``--no-full-likelihoods``, a fit out of budget."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
from _helpers import pyhf_model
from click.testing import CliRunner

import protomodels.database as pdb
from protomodels.cli import cli
from protomodels.evaluation import Evaluation, EvaluationSettings, Evaluator
from protomodels.exceptions import ProtomodelsError
from protomodels.statistics.common import NO_FULL_LIKELIHOOD
from protomodels.statistics.full_likelihood import FIT_FAILED

PYHF = "ATLAS-SUSY-2018-14-eff"  # pyhf JSON (three files), no covariance
KINDS = {"upper_limit", "single_region", "simplified", "pyhf", "none"}


@pytest.fixture(scope="module")
def database(subset_store: Path) -> pdb.Database:
    return pdb.open(subset_store, build=False)


@pytest.fixture(scope="module")
def full(database: pdb.Database) -> Evaluation:
    return Evaluator(database)(pyhf_model())


def _rows(evaluation: Evaluation, result: str = PYHF) -> list[dict]:
    return [
        r for r, p in zip(evaluation.candidates, evaluation.predictions, strict=True)
        if p.result_id == result
    ]


def test_the_pyhf_combination_enters_by_default(full: Evaluation) -> None:
    assert EvaluationSettings().full_likelihoods
    rows = full.candidates
    assert rows and {r["kind"] for r in rows} <= KINDS
    combined = [r for r in _rows(full) if r["data_type"] == "combined"]
    assert len(combined) == 1
    row = combined[0]
    assert row["kind"] == "pyhf" and row["candidate"] and row["fallback"] is None
    assert math.isfinite(row["nll0"]) and math.isfinite(row["nll1"])
    p = next(p for p in full.predictions if p.result_id == PYHF and p.data_type == "combined")
    assert row["nll0"] == p.statistics.nll_sm and row["nll1"] == p.statistics.nll1
    assert row["r_exp"] == pytest.approx(p.r_exp) and row["r_obs"] == pytest.approx(p.r_obs)
    # its single regions are not candidates: the combination stands for them
    regions = [r for r in _rows(full) if r["data_type"] == "efficiencyMap"]
    assert regions and not any(r["candidate"] for r in regions)
    assert all("combination stands for it" in r["why"] for r in regions)
    # every prediction without a likelihood says why
    assert all(r["why"] for r in rows if r["kind"] == "none")
    assert json.loads(json.dumps(full.as_json()))["candidates"] == rows


def test_without_full_likelihoods_the_best_region_stands_in(
    database: pdb.Database, full: Evaluation
) -> None:
    off = Evaluator(database, EvaluationSettings(full_likelihoods=False))(pyhf_model())
    combined = next(r for r in _rows(off) if r["data_type"] == "combined")
    assert combined["kind"] == "none" and not combined["candidate"]
    assert combined["fallback"].startswith(NO_FULL_LIKELIHOOD)
    assert "stands in" in combined["fallback"]
    standing = [r for r in _rows(off) if r["data_type"] == "efficiencyMap" and r["candidate"]]
    assert len(standing) == 1
    assert standing[0]["dataset"] in combined["fallback"]
    regions = [r for r in _rows(off) if r["data_type"] == "efficiencyMap" and r["r_exp"]]
    assert standing[0]["r_exp"] == max(r["r_exp"] for r in regions)  # best expected r
    # the other results are the same with and without the full likelihoods
    others = lambda e: [  # noqa: E731
        (r["analysis"], r["dataset"], r["kind"], r["nll1"]) for r in e.candidates
        if not r["analysis"].startswith("ATLAS-SUSY-2018-14")
    ]
    assert others(off) == others(full)


def test_a_fit_out_of_budget_is_a_recorded_fallback(database: pdb.Database) -> None:
    settings = EvaluationSettings(pyhf_iterations=1)
    e = Evaluator(database, settings)(pyhf_model())
    assert math.isfinite(e.K)  # the evaluation goes on, with the best region instead
    combined = next(r for r in _rows(e) if r["data_type"] == "combined")
    assert combined["kind"] == "none" and combined["nll1"] is None
    assert combined["fallback"].startswith(FIT_FAILED) and "stands in" in combined["fallback"]
    assert sum(r["candidate"] for r in _rows(e)) == 1


def test_full_likelihoods_need_the_workspaces(subset_store: Path) -> None:
    bare = pdb.open(subset_store, build=False, workspaces=False)
    with pytest.raises(ProtomodelsError, match="without its pyhf workspaces.*workspaces=True"):
        Evaluator(bare)
    Evaluator(bare, EvaluationSettings(full_likelihoods=False))  # fine without them


def _evaluate(*args: str, database: Path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(
            cli, ["--database", str(database), "evaluate", *args, "--json", "-"],
            env={"COLUMNS": "300", "PROTOMODELS_DATABASE": None},
        )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_evaluate_candidates(subset_store: Path, tmp_path: Path, full: Evaluation) -> None:
    slha = tmp_path / "pyhf_model.slha"
    pyhf_model().to_slha(slha)
    on = _evaluate(str(slha), database=subset_store)
    keys = {"analysis", "dataset", "kind", "r_obs", "r_exp", "nll0", "nll1", "fallback"}
    assert all(keys <= set(r) for r in on["candidates"])
    kinds = {(r["analysis"], r["dataset"]): r["kind"] for r in on["candidates"]}
    assert kinds[(PYHF.removesuffix("-eff"), "(combined)")] == "pyhf"
    assert on["K"] == pytest.approx(full.K, abs=1e-6)
    off = _evaluate(str(slha), "--no-full-likelihoods", database=subset_store)
    kinds = {(r["analysis"], r["dataset"]): r["kind"] for r in off["candidates"]}
    assert kinds[(PYHF.removesuffix("-eff"), "(combined)")] == "none"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shown = CliRunner().invoke(
            cli, ["--database", str(subset_store), "evaluate", str(slha)],
            env={"COLUMNS": "300", "PROTOMODELS_DATABASE": None},
        )
    assert shown.exit_code == 0, shown.output
    assert "results considered" in shown.stdout and "pyhf" in shown.stdout
