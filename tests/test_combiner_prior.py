"""The prior: counts and penalties by hand, and against the reference builder's own prior parts
for the 11 builder_K models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from protomodels.combiner.prior import (
    PRIORS,
    PriorError,
    PriorSettings,
    compute_prior,
    count_branchings,
    count_multipliers,
    derive_multipliers,
    expo1,
    extreme_multiplier_penalty,
    flavour_penalty,
    gauss1,
    missing_experiment_penalty,
    model_multipliers,
    prior_function,
)
from protomodels.theory.protomodel import Decay, Protomodel
from protomodels.theory.xsec import load_tables

N1, N2, C1, STOP, STOP2, GLUINO = 1000022, 1000023, 1000024, 1000006, 2000006, 1000021
STOPS = (-STOP, STOP)


def model(masses: dict, decays: dict, **kwargs) -> Protomodel:  # noqa: ANN003
    return Protomodel(masses=masses, decays=decays, **kwargs)


def test_prior_functions() -> None:
    assert expo1(3, 2, 1.1) == pytest.approx(math.exp(-(1.5 + 0.5 + 1.1 / 8)))
    assert gauss1(2, 8, 32) == pytest.approx(math.exp(-1.5))
    assert PRIORS["flat"](9, 9, 9) == 1.0
    assert prior_function("expo2")(3, 0, 0) == pytest.approx(math.exp(-1))
    assert prior_function(lambda a, b, c: 0.5)(1, 1, 1) == 0.5
    with pytest.raises(PriorError, match="unknown prior 'expo3'"):
        prior_function("expo3")
    with pytest.raises(PriorError, match="flavour_floor"):
        PriorSettings(flavour_floor=0.0)


def test_count_branchings() -> None:
    m = model(
        {N1: 100.0, N2: 300.0, STOP: 500.0, GLUINO: 900.0},
        {
            N2: (Decay(N1, (23,), 0.5), Decay(N1, (25,), 0.5)),  # equal BRs: 0
            STOP: (Decay(N1, (6,), 0.7), Decay(N2, (6,), 0.3)),  # 1
            GLUINO: (  # 0.5 and 0.49 are one (2.5 % rule), 1e-6 ignored: 1
                Decay(STOP, (-6,), 0.5),
                Decay(N1, (6, -6), 0.49),
                Decay(N2, (6, -6), 0.01 - 1e-6),
                Decay(N2, (5, -5), 1e-6),
            ),
        },
    )
    assert count_branchings(m) == 0 + 1 + 1
    stable = model({N1: 100.0, C1: 110.0}, {C1: ()}, allow_stable=True)
    assert count_branchings(stable) == -1  # as the reference: a decay table without channels


def test_count_multipliers() -> None:
    xsecs = {
        (-STOP, STOP): {8.0: 1.0, 13.0: 5.0},
        (-STOP2, STOP2): {13.0: 2.0},
        (N1, N2): {13.0: 0.0005},  # below 0.001 fb: does not count
        (N2, N2): {13.0: 3.0},
        (GLUINO, GLUINO): {13.0: 3.0},  # gluino not active
        (C1, N2): {13.0: 3.0},
    }
    multipliers = {
        (-STOP, STOP): 0.50,
        (-STOP2, STOP2): 0.51,  # 2|a-b|/(a+b) = 0.0198 < 0.03: same value
        (N1, N2): 3.0,
        (N2, N2): 2.0,
        (GLUINO, GLUINO): 7.0,
        (C1, N2): 5e-5,  # "zero"
        (N2, STOP): 4.0,  # no cross section
    }
    active = (N1, N2, C1, STOP, STOP2)
    n, distinct = count_multipliers(multipliers, xsecs, active)
    assert n == pytest.approx(2.1)
    assert distinct == (0.5, 2.0)


def test_penalties() -> None:
    assert missing_experiment_penalty(["ATLAS-SUSY-2018-12", "CMS-SUS-20-004"]) == 1.0
    assert missing_experiment_penalty(["CMS-SUS-20-004", "CMS-SUS-21-002"]) == 0.1
    assert missing_experiment_penalty([]) == 0.01
    assert extreme_multiplier_penalty([0.0, 0.02, 1.0, 99.0]) == 1.0
    assert extreme_multiplier_penalty([0.01, 1000.0]) == pytest.approx(0.9 * 0.85)
    assert extreme_multiplier_penalty([1e-300]) == pytest.approx(1e-10)


def ewkino(c1: tuple, n2: tuple, gap: float = 20.0) -> Protomodel:
    masses = {N1: 100.0, C1: 100.0 + gap, N2: 100.0 + gap + 0.5}
    return model(masses, {C1: c1, N2: n2})


def three(sm: tuple, br: float) -> Decay:
    return Decay(N1, sm, br)


def test_flavour_penalty() -> None:
    third = 1 / 3
    democratic = (three((-11, 12), third), three((-13, 14), third), three((-15, 16), third))
    z = (Decay(N1, (23,), 1.0),)
    assert flavour_penalty(ewkino(democratic, z)) == (pytest.approx(1.0), None)
    uneven = (three((-11, 12), 0.5), three((-13, 14), 0.3), three((-15, 16), 0.2))
    assert flavour_penalty(ewkino(uneven, z))[0] == pytest.approx(1 - (0.5 - third) / 3)
    one_lepton = (three((-11, 11), 1.0),)
    assert flavour_penalty(ewkino(democratic, one_lepton))[0] == pytest.approx(1 / 3)
    # no tau channel below the tau threshold: 2 leptons are all there can be
    two = (three((-11, 12), 0.5), three((-13, 14), 0.5))
    assert flavour_penalty(ewkino(two, z, gap=3.0))[0] == pytest.approx(1.0)
    assert flavour_penalty(ewkino(two, z, gap=20.0))[0] == pytest.approx(0.5)
    single_quarks = (three((2, -1), 1.0),)
    assert flavour_penalty(ewkino(single_quarks, (three((-5, 5), 1.0),)))[0] == 1.0
    mixed = (Decay(N1, (24,), 0.5), three((-11, 12), 0.5))
    assert flavour_penalty(ewkino(mixed, z))[0] == 0.0
    hadronic = (three((2, -1), 0.5), three((4, -3), 0.5))
    value, reason = flavour_penalty(ewkino(hadronic, z))
    assert value == 0.0 and "no leptonic" in reason


def test_floored_flavour_penalty_is_flagged() -> None:
    m = ewkino((Decay(N1, (24,), 0.5), three((-11, 12), 0.5)), (Decay(N1, (23,), 1.0),))
    prior = compute_prior(m, {}, {}, ["ATLAS-X", "CMS-Y"])
    assert prior.undemocratic_flavours == 1e-10
    assert prior.flags and "flavour_penalty_floored" in prior.flags[0]
    assert math.isfinite(prior.log)
    off = compute_prior(m, {}, {}, ["ATLAS-X"], settings=PriorSettings(undemocratic_flavours=False))
    assert off.undemocratic_flavours == 1.0 and off.missing_experiment == 0.1


def test_scaling_by_muhat() -> None:
    m = model({N1: 100.0, STOP: 500.0}, {STOP: (Decay(N1, (6,), 1.0),)}, ssm={STOPS: 0.5})
    xsecs = {STOPS: {13.0: 0.002}}
    multipliers, derived = model_multipliers(m, xsecs)
    assert multipliers == {STOPS: 0.5} and not derived
    assert compute_prior(m, multipliers, xsecs, []).complexity.n_multipliers == 1
    scaled = compute_prior(m, multipliers, xsecs, [], scale=0.4)  # 0.0008 fb: below threshold
    assert scaled.complexity.n_multipliers == 0
    extreme = compute_prior(m, multipliers, xsecs, [], scale=2000.0)  # 1000
    assert extreme.extreme_multipliers == pytest.approx(0.85)
    assert extreme.value == pytest.approx(expo1(2, 0, 1) * 0.01 * 0.85)


# ---------------------------------------------------------------------------- builder_K


def builder_records(shared: Path) -> list[dict]:
    return [
        json.loads(p.read_text())
        for p in sorted((shared / "data" / "reference" / "builder_K").glob("*.json"))
    ]


def test_derived_multipliers_are_the_builders(shared: Path) -> None:
    tables = load_tables(shared)
    n_compared = 0
    for record in builder_records(shared):
        m = Protomodel.from_slha(shared / "data" / "reference" / record["slha"])
        derived = derive_multipliers(m, m.xsecs, tables=tables)
        for key, value in record["ssm"].items():
            pair = tuple(int(x) for x in key.strip("()").split(","))
            if pair in derived:
                # masses rounded to 0.1 GeV by from_slha: agreement to ~2e-3
                assert derived[pair] == pytest.approx(value, rel=2e-3, abs=1e-12), (pair, record)
                n_compared += 1
            else:
                assert value == 0.0 or pair not in m.xsecs, (pair, record["slha"])
    assert n_compared >= 25


def test_prior_parts_equal_the_builders(shared: Path) -> None:
    """n_particles, n_branchings, n_multipliers, the three penalties and the prior of the 11
    models as given (the builder_K prior is the one of the file as given). The
    missing-experiment penalty uses the analyses of the non-upper-limit predictions of the
    SModelS reference JSON of the same file."""
    records = builder_records(shared)
    assert len(records) == 11
    for record in records:
        folder = shared / "data" / "reference"
        m = Protomodel.from_slha(folder / record["slha"])
        predictions = json.loads((folder / record["slha"]).with_suffix(".json").read_text())
        analyses = [
            p["analysis"] for p in predictions["predictions"] if p["dataType"] != "upperLimit"
        ]
        multipliers, derived = model_multipliers(m, m.xsecs)
        assert derived
        prior = compute_prior(m, multipliers, m.xsecs, analyses)
        parts = record["prior_parts"]
        c = prior.complexity
        name = record["slha"]
        if parts["n_particles"] is not None:
            assert c.n_particles == parts["n_particles"], name
            assert c.n_branchings == parts["n_branchings"], name
            assert c.n_multipliers == pytest.approx(parts["n_multipliers"]), name
        assert prior.before_penalties == pytest.approx(parts["prior_before_penalties"]), name
        penalties = parts["penalties"]
        assert prior.missing_experiment == penalties["missingExperiment"], name
        assert prior.extreme_multipliers == pytest.approx(penalties["extremeSSMs"]), name
        assert prior.undemocratic_flavours == pytest.approx(penalties["undemocraticFlavors"])
        assert prior.value == pytest.approx(record["prior"], rel=1e-9), name
        # and K - T_L of the builder is 2 ln(prior)
        assert record["K"] - record["T_L"] == pytest.approx(2 * prior.log, abs=1e-9), name
