"""Txname conditions (SModelS's Cgtr / Csim and the maxcond filter)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _helpers import single_result_source

import protomodels.database as pdb
from protomodels.database import import_database
from protomodels.database.constraints import Condition, Constraint, LinearExpression
from protomodels.theory import Decay, PredictionSettings, Predictor, Protomodel
from protomodels.theory.conditions import condition_values, max_condition, violates

SLEPTONS = "13TeV/ATLAS/ATLAS-SUSY-2016-24"  # TSlepSlep: Cgtr(muons, electrons)
SEL, SMU, N1 = 1000011, 1000013, 1000022


def _constraint(kind: str, *args: tuple[tuple[int, float], ...]) -> Constraint:
    return Constraint(
        sms=(),
        expression=LinearExpression(((0, 1.0),)),
        conditions=(Condition(kind, tuple(LinearExpression(a) for a in args)),),
    )


def test_greater_and_similar_by_hand() -> None:
    greater = _constraint("greater", ((0, 1.0),), ((1, 1.0),))
    assert condition_values(greater, {0: 3.0, 1: 1.0}) == [0.0]
    assert condition_values(greater, {0: 1.0, 1: 3.0}) == [pytest.approx(0.5)]  # (3-1)/(3+1)
    assert condition_values(greater, {}) == [None]  # a + b = 0
    similar = _constraint("similar", ((0, 1.0),), ((1, 2.0),), ((2, 1.0),))
    # 1, 2*2, 3: the largest |a-b|/|a+b| is (4-1)/(4+1)
    assert condition_values(similar, {0: 1.0, 1: 2.0, 2: 3.0}) == [pytest.approx(0.6)]
    assert max_condition([None, 0.1, 0.3]) == pytest.approx(0.3)
    assert max_condition([None]) == 0.0


def test_violation_threshold_is_rounded_as_smodels() -> None:
    assert not violates(0.2009, 0.2)  # round(1.0045, 2) = 1.0
    assert violates(0.202, 0.2)
    assert not violates(5.0, None) and not violates(5.0, 0.0)


@pytest.fixture(scope="module")
def sleptons_store(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = single_result_source(tarball, tmp_path_factory, SLEPTONS)
    out = tmp_path_factory.mktemp("sleptons") / "store.sqlite"
    report = import_database(source, out, workers=1)
    assert not report.errors, report.errors
    return out


def _sleptons(*which: int) -> Protomodel:
    masses = {N1: 100.0, **{p: 300.0 for p in which}}
    decays = {p: (Decay(N1, (p - 1000000,), 1.0),) for p in which}
    xsecs = {(-p, p): {13.0: 20.0} for p in which}
    return Protomodel(masses=masses, decays=decays, xsecs=xsecs)


def test_selectrons_alone_violate_the_muon_condition(sleptons_store: Path) -> None:
    database = pdb.open(sleptons_store, build=False, workspaces=False)
    keep_all = Predictor(database, settings=PredictionSettings(maxcond=None))
    found = [p for p in keep_all.predict(_sleptons(SEL)) if "TSlepSlep" in p.txnames]
    assert len(found) == 1
    assert found[0].max_condition == pytest.approx(1.0)  # no muons at all
    filtered = Predictor(database)  # maxcond 0.2, as SModelS's command line
    assert not [p for p in filtered.predict(_sleptons(SEL)) if "TSlepSlep" in p.txnames]
    both = [p for p in filtered.predict(_sleptons(SEL, SMU)) if "TSlepSlep" in p.txnames]
    assert len(both) == 1 and both[0].max_condition == 0.0
    assert both[0].xsec_fb == pytest.approx(2 * found[0].xsec_fb)


def test_long_lived_particles_are_read_without_a_correction(tmp_path: Path) -> None:
    """A width between 1e-25 and 1e-11 GeV is a long-lived particle, read as it is (the
    predictions reweight it, tests/test_theory_lifetimes.py)."""
    slha = tmp_path / "long_lived.slha"
    model = Protomodel(
        masses={SEL: 300.0, N1: 100.0},
        decays={SEL: (Decay(N1, (11,), 1.0),)},
        widths={SEL: 1e-16},
        xsecs={(-SEL, SEL): {13.0: 20.0}},
    )
    model.to_slha(slha)
    read = Protomodel.from_slha(slha)
    assert read.widths[SEL] == pytest.approx(1e-16)
    assert not any("long-lived" in n for n in read.notes)
