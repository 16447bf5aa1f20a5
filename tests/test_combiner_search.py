"""The exact combination search for fixed weights against brute force, networkx and a
straightforward implementation of the reference builder's PathFinder choice."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protomodels.combiner.graph import CombinabilityError, analysis_base
from protomodels.combiner.search import best_combination, pathfinder_combination


def random_problem(rng: np.random.Generator, n: int, density: float):  # noqa: ANN201
    upper = np.triu(rng.random((n, n)) < density, 1)
    combinable = upper | upper.T
    weights = rng.normal(0.5, 2.0, n)
    analyses = [f"ANA-{k}" for k in rng.integers(0, n + 1, n)]  # some analyses repeat
    return weights, combinable, analyses


def cliques(combinable: np.ndarray, analyses: list[str]):  # noqa: ANN201
    """Every allowed combination (brute force)."""
    n = len(analyses)
    yield ()
    for size in range(1, n + 1):
        for c in itertools.combinations(range(n), size):
            if all(
                combinable[i, j] and analysis_base(analyses[i]) != analysis_base(analyses[j])
                for i, j in itertools.combinations(c, 2)
            ):
                yield c


def brute_force(weights, combinable, analyses) -> float:  # noqa: ANN001
    return max(math.fsum(weights[i] for i in c) for c in cliques(combinable, analyses))


def reference_path(weights, combinable, analyses, runs: int = 50):  # noqa: ANN001, ANN201
    """The reference's objective written out plainly (ptools/bamCreator.get_best_set):
    shift all weights by |min| + 1 if one is negative, take the combination with the largest
    shifted sum whose heaviest member is among the `runs` heaviest; report unshifted sums."""
    w = np.asarray(weights, dtype=float)
    offset = abs(w.min()) + 1.0 if w.min() < 0 else 0.0
    rank = {int(i): r for r, i in enumerate(np.argsort(-w, kind="stable"))}
    best, best_c = 0.0, ()
    for c in cliques(combinable, analyses):
        if not c or min(rank[i] for i in c) >= runs:
            continue
        shifted = math.fsum(w[i] + offset for i in c)
        if shifted > best + 1e-12:
            best, best_c = shifted, c
    return best_c, math.fsum(w[i] for i in best_c)


def test_doc_example() -> None:
    combinable = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=bool)
    assert best_combination([3.0, 2.0, 2.0], combinable, ["A", "B", "C"]) == ((1, 2), 4.0)


@pytest.mark.parametrize("seed", range(4))
def test_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(60):
        n = int(rng.integers(1, 12))
        weights, combinable, analyses = random_problem(rng, n, rng.uniform(0.1, 0.95))
        chosen, total = best_combination(weights, combinable, analyses)
        assert total == pytest.approx(brute_force(weights, combinable, analyses), abs=1e-12)
        assert total == pytest.approx(math.fsum(weights[i] for i in chosen), abs=1e-12)
        assert chosen in set(cliques(combinable, analyses))
        assert all(weights[i] > 0 for i in chosen)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=0, max_value=9).flatmap(
        lambda n: st.tuples(
            st.lists(st.floats(-5, 10, allow_nan=False), min_size=n, max_size=n),
            st.lists(st.booleans(), min_size=n * n, max_size=n * n),
            st.lists(st.integers(0, 4), min_size=n, max_size=n),
        )
    )
)
def test_equals_brute_force_hypothesis(problem: tuple) -> None:
    weights, flat, labels = problem
    n = len(weights)
    upper = np.triu(np.asarray(flat, dtype=bool).reshape(n, n), 1)
    combinable = upper | upper.T
    analyses = [f"CMS-SUS-{k}" if k % 2 else f"CMS-SUS-{k}-agg" for k in labels]
    _, total = best_combination(weights, combinable, analyses)
    assert total == pytest.approx(brute_force(weights, combinable, analyses), abs=1e-9)


def test_suffix_siblings_are_one_analysis() -> None:
    combinable = np.ones((2, 2), dtype=bool)
    chosen, total = best_combination(
        [1.0, 2.0], combinable, ["CMS-SUS-19-006", "CMS-SUS-19-006-agg"]
    )
    assert (chosen, total) == ((1,), 2.0)


def test_no_positive_weight() -> None:
    assert best_combination([-1.0, 0.0, math.nan], np.ones((3, 3), bool), "ABC") == ((), 0.0)
    assert best_combination([], np.zeros((0, 0), bool), []) == ((), 0.0)


def test_against_networkx_on_large_graphs() -> None:
    """50 candidates: compare with networkx's exact max_weight_clique (integer weights)."""
    rng = np.random.default_rng(11)
    for _ in range(5):
        n = 50
        # four always-combinable groups (experiment x energy), sparser inside each group
        group = rng.integers(0, 4, n)
        inside = np.triu(rng.random((n, n)) < 0.5, 1)
        combinable = (group[:, None] != group[None, :]) | inside | inside.T
        np.fill_diagonal(combinable, False)
        weights = np.round(rng.exponential(2.0, n) * 1000) / 1000
        analyses = [f"A{i}" for i in range(n)]
        _, total = best_combination(weights, combinable, analyses)
        graph = nx.Graph()
        for i in range(n):
            graph.add_node(i, weight=int(round(weights[i] * 1000)))
        graph.add_edges_from(zip(*np.nonzero(np.triu(combinable, 1)), strict=True))
        _, expected = nx.max_weight_clique(graph, weight="weight")
        assert total == pytest.approx(expected / 1000, abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_pathfinder_choice_equals_straightforward_reference(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    for _ in range(60):
        n = int(rng.integers(1, 11))
        weights, combinable, analyses = random_problem(rng, n, rng.uniform(0.1, 0.95))
        runs = int(rng.integers(1, 12))
        chosen, total = pathfinder_combination(weights, combinable, analyses, runs=runs)
        expected, expected_total = reference_path(weights, combinable, analyses, runs)
        assert chosen == expected
        assert total == pytest.approx(expected_total, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_mu1_weights_pick_the_reference_path(seed: int) -> None:
    """With non-negative weights (no offset) and <= 50 candidates, ours is the reference's."""
    rng = np.random.default_rng(200 + seed)
    for _ in range(60):
        n = int(rng.integers(1, 11))
        weights, combinable, analyses = random_problem(rng, n, rng.uniform(0.1, 0.95))
        weights = np.abs(weights)
        expected, expected_total = reference_path(weights, combinable, analyses)
        assert best_combination(weights, combinable, analyses) == (
            expected,
            pytest.approx(expected_total, abs=1e-12),
        )


def test_reference_offset_adds_negative_weights() -> None:
    """Where the reference differs: its offset makes it add a combinable negative weight."""
    combinable = np.ones((2, 2), dtype=bool)
    assert pathfinder_combination([5.0, -0.5], combinable, ["A", "B"]) == ((0, 1), 4.5)
    assert best_combination([5.0, -0.5], combinable, ["A", "B"]) == ((0,), 5.0)


@pytest.mark.parametrize(
    ("weights", "matrix", "analyses", "match"),
    [
        ([1.0, 2.0], [[0, 1], [0, 0]], ["A", "B"], "not symmetric"),
        ([1.0, 2.0], np.ones((3, 3), bool), ["A", "B"], r"\(2, 2\) bool matrix"),
        ([1.0, 2.0], [[0, 2], [2, 0]], ["A", "B"], "booleans"),
        ([1.0, 2.0], np.ones((2, 2), bool), ["A"], "analyses has 1 entries"),
        ([[1.0, 2.0]], np.ones((2, 2), bool), ["A", "B"], "1-d"),
    ],
)
def test_bad_input(weights, matrix, analyses, match) -> None:  # noqa: ANN001
    with pytest.raises(CombinabilityError, match=match):
        best_combination(weights, np.asarray(matrix), analyses)
