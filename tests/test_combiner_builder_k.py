"""End to end against the reference builder (builder_K files): predictions with the builder's
settings, the likelihood objects of protomodels.statistics, our candidates and graph.

- with weights at mu = 1, :func:`pathfinder_combination` (the builder's PathFinder choice)
  returns the builder's best combination and T_L;
- our exact T_L at mu = 1 is at least the builder's T_L, and our T_L over mu is at least the
  builder's T_L after its mu-hat rescaling loop (the global maximum is at least every fixed
  point); K = T_L + 2 ln(prior) with the builder's prior parts.

Models without pyhf-combined results only (their likelihoods need the workspaces).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from protomodels.combiner import KSettings, compute_k, select_candidates
from protomodels.combiner.graph import load_combinability
from protomodels.combiner.search import pathfinder_combination
from protomodels.exceptions import ProtomodelsError
from protomodels.theory.predictions import PredictionSettings, Predictor
from protomodels.theory.protomodel import Protomodel
from protomodels.theory.xsec import load_tables

MODELS = ("random_1_01", "random_1_04", "random_1_05", "random_1_06")
TOLERANCE = 0.02  # in T_L: our statistics vs SModelS 3.0.3, predictions vs the builder's


@pytest.mark.slow
def test_builder_k_models(shared: Path) -> None:
    import protomodels.database as pdb
    from protomodels.statistics.attach import attach_statistics

    try:
        database = pdb.open(build=False, workspaces=False)
    except ProtomodelsError as err:
        pytest.skip(f"no database store: {err}")
    settings = PredictionSettings(
        sigmacut=0.02, minmassgap=10.0, best_dataset=False, interpolation="linear"
    )
    predictor = Predictor(database, settings=settings, tables=load_tables(shared))
    graph = load_combinability("yaml", shared=shared)
    folder = shared / "data" / "reference"
    for name in MODELS:
        record = json.loads((folder / "builder_K" / f"{name}.json").read_text())
        model = Protomodel.from_slha(folder / record["slha"])
        predictions = predictor.predict(model)
        attach_statistics(predictions, database)
        candidates = select_candidates(predictions)
        weights = [c.weight1 for c in candidates]
        matrix = graph.matrix(candidates)
        chosen, total = pathfinder_combination(weights, matrix, [c.analysis for c in candidates])
        members = {(candidates[i].analysis, candidates[i].dataset) for i in chosen}
        expected = {(m["analysis"], m["dataset"]) for m in record["best_combination"]}
        assert members == expected, name
        assert total == pytest.approx(record["T_L"], abs=TOLERANCE), name

        result = compute_k(model, predictions, predictor.cross_sections(model), KSettings(graph))
        assert result.certified, name
        assert result.T_L_mu1 >= record["T_L"] - TOLERANCE, name
        rescaled = record["T_L_after_muhat_rescaling"]
        assert result.T_L >= rescaled - TOLERANCE, name
        assert result.K == pytest.approx(result.T_L + 2 * math.log(result.prior.value)), name
        parts = record["prior_parts"]
        c = result.prior.complexity
        assert (c.n_particles, c.n_branchings) == (parts["n_particles"], parts["n_branchings"])
