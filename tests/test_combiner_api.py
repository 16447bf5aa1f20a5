"""Pin the public API of the combiner stage (a change shows up as a test diff)."""

import importlib

import protomodels.combiner


def test_combiner_api() -> None:
    assert dir(protomodels.combiner) == [
        "Candidate",
        "CombinabilityGraph",
        "CombinationFit",
        "KResult",
        "KSettings",
        "Likelihood",
        "MuSearchSettings",
        "Prior",
        "PriorSettings",
        "analysis_base",
        "best_combination",
        "best_combination_in_mu",
        "compute_k",
        "compute_prior",
        "load_combinability",
        "pathfinder_combination",
        "select_candidates",
    ]


def test_modules_hide_helpers() -> None:
    for name in ("candidates", "graph", "mu_search", "prior", "search", "test_statistic"):
        module = importlib.import_module(f"protomodels.combiner.{name}")
        assert dir(module) == sorted(module.__all__)
    search = importlib.import_module("protomodels.combiner.search")
    assert search.__all__ == ["best_combination", "pathfinder_combination"]
