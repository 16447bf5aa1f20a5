"""Decomposition into weighted topologies: cascades, sigmacut, mass and invisible compression.

Every expected topology and weight below is worked out by hand from the model.
"""

from __future__ import annotations

import pytest

from protomodels.theory import Decay, Protomodel, decompose
from protomodels.theory.decomposition import INVISIBLE, Branch, Topology

STOP, N1, N2, N3, SNU = 1000006, 1000022, 1000023, 1000025, 1000012
STOP_PAIR = (-STOP, STOP)


def stop_model(decays: tuple[Decay, ...] = (Decay(N1, (6,), 1.0),)) -> Protomodel:
    return Protomodel(masses={STOP: 600.0, N1: 100.0}, decays={STOP: decays})


def chains(t: Topology) -> tuple[tuple, tuple]:
    """(nodes, vertices) of both branches."""
    return tuple((b.nodes, b.vertices) for b in t.branches)  # type: ignore[return-value]


def test_single_stop_topology() -> None:
    tops = decompose(stop_model(), {STOP_PAIR: {13.0: 100.0, 8.0: 20.0}})
    assert len(tops) == 1
    t = tops[0]
    assert t.branches == (
        Branch(((-STOP, ""), (N1, "")), (("t-",),)),
        Branch(((STOP, ""), (N1, "")), (("t+",),)),
    )
    assert dict(t.weights) == {13.0: 100.0, 8.0: 20.0}
    assert t.compressed == ""
    assert t.pair == STOP_PAIR
    assert t.family == 0


def test_branching_ratio_split() -> None:
    """stop -> t N1 (0.3), stop -> c N1 (0.7): four distinct charge-tagged pairs."""
    model = stop_model((Decay(N1, (6,), 0.3), Decay(N1, (4,), 0.7)))
    sigma = {13.0: 100.0, 8.0: 20.0}
    tops = decompose(model, {STOP_PAIR: sigma})
    got: dict[tuple, dict[float, float]] = {}
    for t in tops:
        key = tuple(b.vertices for b in t.branches)
        assert key not in got
        got[key] = dict(t.weights)
        assert all(len(b.nodes) == 2 for b in t.branches)
    expected = {
        ((("t-",),), (("t+",),)): 0.09,
        ((("t-",),), (("c",),)): 0.21,
        ((("c",),), (("t+",),)): 0.21,
        ((("c",),), (("c",),)): 0.49,
    }
    assert set(got) == set(expected)
    for key, fraction in expected.items():
        for sqrts, value in sigma.items():
            assert got[key][sqrts] == pytest.approx(fraction * value, rel=1e-12)
    for sqrts, value in sigma.items():
        assert sum(t.weights[sqrts] for t in tops) == pytest.approx(value, rel=1e-12)
    assert len({t.family for t in tops}) == 4


def test_neutralino_pair_branching_split() -> None:
    """N2 N2 with N2 -> Z N1 (0.3) / h N1 (0.7): weights 0.09, 0.21 (x2 or merged), 0.49."""
    model = Protomodel(
        masses={N2: 400.0, N1: 100.0},
        decays={N2: (Decay(N1, (23,), 0.3), Decay(N1, (25,), 0.7))},
    )
    tops = decompose(model, {(N2, N2): {13.0: 10.0}})
    assert len(tops) in (3, 4)
    by_set: dict[frozenset, float] = {}
    for t in tops:
        key = frozenset(b.vertices for b in t.branches)
        by_set[key] = by_set.get(key, 0.0) + t.weights[13.0]
    assert by_set == {
        frozenset({(("Z",),)}): pytest.approx(0.9),
        frozenset({(("Z",),), (("higgs",),)}): pytest.approx(4.2),
        frozenset({(("higgs",),)}): pytest.approx(4.9),
    }


def test_sigmacut_drops_small_topologies() -> None:
    model = stop_model((Decay(N1, (6,), 0.3), Decay(N1, (4,), 0.7)))
    # weights at 13 TeV: 0.9 (tt), 2.1, 2.1, 4.9 fb; the cut uses the largest sqrt(s)
    tops = decompose(model, {STOP_PAIR: {13.0: 10.0, 8.0: 2.0}}, sigmacut=1.0)
    weights = sorted(t.weights[13.0] for t in tops)
    assert weights == pytest.approx([2.1, 2.1, 4.9])
    assert (((("t-",),), (("t+",),))) not in [tuple(b.vertices for b in t.branches) for t in tops]
    tops = decompose(model, {STOP_PAIR: {13.0: 10.0, 8.0: 2.0}}, sigmacut=2.2)
    assert [t.weights[13.0] for t in tops] == pytest.approx([4.9])
    # a pair below the cut gives nothing at all
    assert decompose(model, {STOP_PAIR: {13.0: 0.004}}) == []
    # the cut applies to the largest sqrt(s), not to each one
    tops = decompose(stop_model(), {STOP_PAIR: {13.0: 0.01, 8.0: 0.001}})
    assert len(tops) == 1 and dict(tops[0].weights) == {13.0: 0.01, 8.0: 0.001}


def n2_model(m2: float) -> Protomodel:
    return Protomodel(masses={N2: m2, N1: 100.0}, decays={N2: (Decay(N1, (23,), 1.0),)})


def test_mass_compression() -> None:
    model = n2_model(103.0)
    sigma = {13.0: 50.0, 8.0: 10.0}
    tops = decompose(model, {(N1, N2): sigma}, minmassgap=5.0)
    assert len(tops) == 2
    original = next(t for t in tops if t.compressed == "")
    compressed = next(t for t in tops if t.compressed == "mass")
    assert chains(original) == (
        (((N1, ""),), ()),
        (((N2, ""), (N1, "")), (("Z",),)),
    )
    assert chains(compressed) == ((((N1, ""),), ()), (((N1, ""),), ()))
    assert compressed.family == original.family
    assert dict(compressed.weights) == dict(original.weights) == sigma
    assert compressed.pair == original.pair == (N1, N2)


@pytest.mark.parametrize("m2", [106.0, 105.0], ids=["gap-6", "gap-5-strict"])
def test_no_mass_compression_above_gap(m2: float) -> None:
    tops = decompose(n2_model(m2), {(N1, N2): {13.0: 50.0}}, minmassgap=5.0)
    assert len(tops) == 1
    assert tops[0].compressed == ""


def test_mass_compression_switched_off() -> None:
    tops = decompose(
        n2_model(103.0), {(N1, N2): {13.0: 50.0}}, minmassgap=5.0, mass_compression=False
    )
    assert [t.compressed for t in tops] == [""]


def test_mass_compression_chain_in_one_pass() -> None:
    """N3 (106) -> Z N2 (103) -> Z N1 (100): consecutive gaps of 3 GeV both collapse."""
    model = Protomodel(
        masses={N3: 106.0, N2: 103.0, N1: 100.0},
        decays={N3: (Decay(N2, (23,), 1.0),), N2: (Decay(N1, (23,), 1.0),)},
    )
    tops = decompose(model, {(N1, N3): {13.0: 50.0}}, minmassgap=5.0)
    assert sorted(t.compressed for t in tops) == ["", "mass"]
    compressed = next(t for t in tops if t.compressed == "mass")
    assert chains(compressed) == ((((N1, ""),), ()), (((N1, ""),), ()))


def test_mass_compression_of_an_intermediate_step() -> None:
    """stop (600) -> t N2 (103) -> Z N1 (100): only the N2 step goes."""
    model = Protomodel(
        masses={STOP: 600.0, N2: 103.0, N1: 100.0},
        decays={STOP: (Decay(N2, (6,), 1.0),), N2: (Decay(N1, (23,), 1.0),)},
    )
    tops = decompose(model, {STOP_PAIR: {13.0: 80.0}})
    assert sorted(t.compressed for t in tops) == ["", "mass"]
    compressed = next(t for t in tops if t.compressed == "mass")
    assert compressed.branches == (
        Branch(((-STOP, ""), (N1, "")), (("t-",),)),
        Branch(((STOP, ""), (N1, "")), (("t+",),)),
    )
    assert dict(compressed.weights) == {13.0: 80.0}


def sneutrino_model() -> Protomodel:
    return Protomodel(masses={SNU: 250.0, N1: 100.0}, decays={SNU: (Decay(N1, (12,), 1.0),)})


def test_invisible_compression() -> None:
    sigma = {13.0: 30.0, 8.0: 6.0}
    model = sneutrino_model()
    tops = decompose(model, {(-SNU, SNU): sigma})
    assert len(tops) == 2
    original = next(t for t in tops if t.compressed == "")
    compressed = next(t for t in tops if t.compressed == "inv")
    assert chains(original) == (
        (((-SNU, ""), (N1, "")), (("nu",),)),
        (((SNU, ""), (N1, "")), (("nu",),)),
    )
    assert chains(compressed) == ((((-SNU, INVISIBLE),), ()), (((SNU, INVISIBLE),), ()))
    # the invisible final state has the sneutrino's mass
    for b in compressed.branches:
        assert model.masses[abs(b.nodes[-1][0])] == 250.0
    assert compressed.family == original.family
    assert dict(compressed.weights) == sigma


def test_invisible_compression_switched_off() -> None:
    tops = decompose(sneutrino_model(), {(-SNU, SNU): {13.0: 30.0}}, invisible_compression=False)
    assert [t.compressed for t in tops] == [""]


def test_no_compression_at_all() -> None:
    """Both switches off: a small gap and an invisible decay stay uncompressed."""
    model = Protomodel(masses={SNU: 104.0, N1: 100.0}, decays={SNU: (Decay(N1, (12,), 1.0),)})
    tops = decompose(
        model, {(-SNU, SNU): {13.0: 30.0}}, mass_compression=False, invisible_compression=False
    )
    assert len(tops) == 1
    assert tops[0].compressed == ""
    assert all(len(b.nodes) == 2 for b in tops[0].branches)
    both = decompose(model, {(-SNU, SNU): {13.0: 30.0}})
    assert {t.compressed for t in both} >= {"", "mass", "inv"}
    assert len({t.family for t in both}) == 1


def test_families_are_distinct_per_original() -> None:
    model = stop_model((Decay(N1, (6,), 0.5), Decay(N1, (4,), 0.5)))
    tops = decompose(model, {STOP_PAIR: {13.0: 10.0}, (N1, N1): {13.0: 1.0}})
    assert len(tops) == 5
    assert sorted(t.family for t in tops) == [0, 1, 2, 3, 4]
