"""``protomodel evaluate`` and ``walk | hiscores | show | plot`` on the imported subset, and the
library calls behind them."""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

import protomodels
import protomodels.database as pdb
from protomodels.cli import cli
from protomodels.combiner.graph import load_combinability
from protomodels.evaluation import Evaluator
from protomodels.theory.protomodel import Protomodel

ENV = {"COLUMNS": "400", "PROTOMODELS_DATABASE": None}


def run(*args: str, database: Path) -> Result:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CliRunner().invoke(cli, ["--database", str(database), *args], env=ENV)


@pytest.fixture(scope="module")
def slha(shared: Path) -> Path:
    return shared / "data" / "reference" / "best_pmodel_latest.slha"


def test_evaluate_json(subset_store: Path, slha: Path) -> None:
    result = run("evaluate", str(slha), "--json", "-", database=subset_store)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"K", "T_L", "muhat", "prior", "combination", "critics"} <= set(data)
    assert np.isfinite(data["K"]) and data["T_L"] >= 0
    assert data["K"] == pytest.approx(data["T_L"] + 2 * np.log(data["prior"]), abs=1e-9)
    assert "passed" in data["critics"]


def test_evaluation_combination_is_combinable(subset_store: Path, slha: Path, shared: Path) -> None:
    """The best combination holds only pairwise combinable results, one per analysis, and the
    model is rescaled by mu-hat."""
    database = pdb.open(subset_store, build=False)
    evaluation = Evaluator(database)(Protomodel.from_slha(slha))
    graph = load_combinability("yaml", shared=shared)
    members = evaluation.k.combination if evaluation.k else ()
    for i, a in enumerate(members):
        for b in members[i + 1 :]:
            assert graph.combinable(a, b), (a.analysis, b.analysis)
    assert evaluation.T_L >= evaluation.T_L_mu1 - 1e-9
    if members:
        assert evaluation.muhat > 0
        assert evaluation.combination_particles


def test_walk_then_inspect(subset_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.sqlite"
    result = run("walk", "--steps", "6", "--seed", "3", "--out", str(out), database=subset_store)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(out) as db:
        assert db.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 6
    result = run("hiscores", str(out), "--json", database=subset_store)
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    assert [e["rank"] for e in entries] == list(range(1, len(entries) + 1))
    if entries:
        slha_out = tmp_path / "best.slha"
        result = run("show", str(out), "--slha", str(slha_out), database=subset_store)
        assert result.exit_code == 0, result.output
        assert Protomodel.from_slha(slha_out).masses
    result = run("plot", str(out), "--out", str(tmp_path / "plots"), database=subset_store)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "plots" / "walk.png").exists()
    # resume to more steps continues the same file
    result = run("walk", "--resume", str(out), "--steps", "8", database=subset_store)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(out) as db:
        assert db.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 8


def test_walk_refuses_to_overwrite(subset_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.sqlite"
    out.write_text("")
    result = run("walk", "--steps", "2", "--out", str(out), database=subset_store)
    assert result.exit_code != 0
    assert "--resume" in result.output


def test_library_walk(subset_store: Path, tmp_path: Path) -> None:
    database = pdb.open(subset_store, build=False)
    run_ = protomodels.walk(database, steps=3, seed=5, out=tmp_path / "lib.sqlite")
    assert len(run_.steps()) == 3
    assert run_.metadata().seed == 5


def test_lazy_grids_walk_the_same_chain(
    subset_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Grids triangulated when a step first needs them (the default, with the background
    cache filler) give the same chain as every grid prepared before the first step; the filler
    leaves every grid in the (fresh) cache."""
    from protomodels.database import open as open_database
    from protomodels.evaluation import EvaluationSettings
    from protomodels.theory.locator import _cache_file, _coordinates
    from protomodels.theory.predictions import Predictor

    database = pdb.open(subset_store, build=False)
    records = {}
    for grids in ("lazy", "prepare"):
        cache = tmp_path / f"tri-{grids}"
        monkeypatch.setenv("PROTOMODELS_TRIANGULATIONS", str(cache))
        run_ = protomodels.walk(
            database, steps=8, seed=7, out=tmp_path / f"{grids}.sqlite", grids=grids,
            evaluation=EvaluationSettings(full_likelihoods=False),
        )
        records[grids] = [(s.step, s.move, s.accepted, s.K) for s in run_.steps()]
    assert records["lazy"] == records["prepare"] and len(records["lazy"]) == 8
    # lazy on a machine whose cache holds every grid: all loaded up front, the same chain
    monkeypatch.setenv("PROTOMODELS_TRIANGULATIONS", str(tmp_path / "tri-prepare"))
    run_ = protomodels.walk(
        database, steps=8, seed=7, out=tmp_path / "cached.sqlite", grids="lazy",
        evaluation=EvaluationSettings(full_likelihoods=False),
    )
    assert [(s.step, s.move, s.accepted, s.K) for s in run_.steps()] == records["lazy"]
    predictor = Predictor(open_database(subset_store, build=False, workspaces=False))
    sets = predictor.grid_point_sets()
    predictor.grid_index.cache = tmp_path / "tri-prepare"
    assert predictor.grid_index.all_cached(sets)
    assert predictor.grid_index.fill_cache(sets) == 0  # prepared: every grid is cached
    predictor.grid_index.cache = tmp_path / "tri-fresh"
    assert not predictor.grid_index.all_cached(sets[:3])
    assert predictor.grid_index.fill_cache(sets[:3]) >= 1
    assert predictor.grid_index.fill_cache(sets[:3]) == 0
    assert predictor.grid_index.all_cached(sets[:3]) and not predictor.grid_index.all_cached(sets)
    points, widths = sets[0]
    assert _cache_file(predictor.grid_index.cache, _coordinates(points, widths)).exists()


def test_walkers_in_lockstep_walk_the_chains_of_separate_walkers(subset_store: Path) -> None:
    """With the real evaluation: three walkers in lockstep (each round's proposals evaluated
    as one batch, :meth:`Evaluator.evaluate_many`) make the chains of three walkers walked one
    after the other, with the same K at every step."""
    from protomodels.builders.walker import Walker, WalkerConfig, lockstep
    from protomodels.evaluation import EvaluationSettings

    database = pdb.open(subset_store, build=False, workspaces=False)
    evaluator = Evaluator(database, EvaluationSettings(full_likelihoods=False))
    configs = [WalkerConfig(steps=6, seed=11, walker=w) for w in range(3)]

    def chain(records: list) -> list:
        return [(r.step, r.move, r.accepted, r.K, r.muhat, r.model) for r in records]

    alone = [chain(Walker(evaluator, c).run()) for c in configs]
    records = lockstep([Walker(evaluator, c) for c in configs])
    together = [chain([r for r in records if r.walker == c.walker]) for c in configs]
    assert together == alone
    assert any(r[2] for r in alone[0])  # something was accepted
