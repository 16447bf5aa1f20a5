"""Long-lived particles as SModelS 3 treats them, checked against its rules computed by hand:
the decomposition adds the undecayed particle (weight 1 x the rest), and each matched
topology is reweighted by xi = prod F_prompt(decaying) x prod F_long(final) (efficiencies
multiplied, upper limits divided), with the result's effective detector sizes, except for
states whose width is a grid coordinate."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from _helpers import imported_store

import protomodels.database as pdb
from protomodels.theory.decomposition import decompose, lifetime_class
from protomodels.theory.lifetimes import (
    HBAR_C,
    LEFF_INNER,
    LEFF_OUTER,
    effective_lengths,
    long_fraction,
    prompt_fraction,
    reweighting,
)
from protomodels.theory.predictions import PredictionSettings, Predictor
from protomodels.theory.protomodel import Decay, Protomodel

G, N1, STAU = 1000021, 1000022, 1000015
FOLDERS = (
    "13TeV/CMS/CMS-SUS-16-036",  # T1 upper limits (prompt gluinos), no Leff settings
    "13TeV/ATLAS/ATLAS-SUSY-2016-32",  # HSCP / R-hadron upper limits, Leff 0.001 m / 12 m
)


def gluino(width: float | None) -> Protomodel:
    widths = {} if width is None else {G: width}
    return Protomodel(masses={G: 1500.0, N1: 100.0},
                      decays={G: (Decay(N1, (1, -1), 0.5), Decay(N1, (2, -2), 0.5))},
                      widths=widths, xsecs={(G, G): {13.0: 15.7}})


def stau(width: float) -> Protomodel:
    decays = {STAU: (Decay(N1, (15,), 1.0),)} if width > 0 else {}
    return Protomodel(masses={STAU: 400.0, N1: 100.0}, decays=decays, widths={STAU: width},
                      xsecs={(-STAU, STAU): {13.0: 1.859}}, allow_stable=True)


def test_fractions_by_hand() -> None:
    width = 6e-15  # c tau = hbar c / width = 3.3 cm
    assert prompt_fraction(width) == pytest.approx(1 - math.exp(-width * LEFF_INNER / HBAR_C))
    assert long_fraction(width, 12.0) == pytest.approx(math.exp(-width * 12.0 / HBAR_C))
    assert prompt_fraction(1.0) == 1.0 and long_fraction(1.0) == 0.0
    assert prompt_fraction(0.0) == 0.0 and long_fraction(0.0) == 1.0
    assert reweighting([width], [0.0], LEFF_INNER, LEFF_OUTER) == pytest.approx(
        prompt_fraction(width))
    assert reweighting([], [width], LEFF_INNER, LEFF_OUTER) == 0.0  # below 1e-10
    assert effective_lengths({"Leff_inner": 0.001}, {}, {"Leff_outer": 12.0}) == (0.001, 12.0)
    assert effective_lengths() == (LEFF_INNER, LEFF_OUTER)


def test_lifetime_classes() -> None:
    assert lifetime_class(G, gluino(None)) == "prompt"
    assert lifetime_class(G, gluino(1.0)) == "prompt"
    assert lifetime_class(G, gluino(6e-15)) == "long-lived"
    assert lifetime_class(G, gluino(1e-30)) == "stable"
    assert lifetime_class(N1, gluino(6e-15)) == "stable"


def test_a_long_lived_gluino_is_also_undecayed() -> None:
    """Each gluino: two decays (BR 0.5) or undecayed (weight 1): 3 x 3 chains, SModelS's
    decomposition (weights not reweighted)."""
    model = gluino(6e-15)
    tops = [t for t in decompose(model, model.xsecs, sigmacut=0.0) if not t.compressed]
    assert len(tops) == 9
    depth = sorted(tuple(sorted(len(b.nodes) for b in t.branches)) for t in tops)
    assert depth.count((1, 1)) == 1 and depth.count((1, 2)) == 4 and depth.count((2, 2)) == 4
    weights = {tuple(sorted(len(b.nodes) for b in t.branches)): t.weights[13.0] for t in tops}
    assert weights[(1, 1)] == pytest.approx(15.7)
    assert weights[(1, 2)] == pytest.approx(15.7 * 0.5)
    assert weights[(2, 2)] == pytest.approx(15.7 * 0.25)
    prompt = [t for t in decompose(gluino(1.0), model.xsecs, sigmacut=0.0) if not t.compressed]
    assert len(prompt) == 4


@pytest.fixture(scope="module")
def predictor(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    out = imported_store(tarball, tmp_path_factory, FOLDERS, "lifetimes-db")
    return Predictor(pdb.load(out, workspaces=False),
                     settings=PredictionSettings(sigmacut=0.0, minmassgap=5.0))


def _by_txname(predictions: list, txname: str) -> dict:
    return {p.result_id: p for p in predictions if p.txnames == (txname,)}


def test_a_prompt_search_sees_the_prompt_fraction(predictor: Predictor) -> None:
    """CMS-SUS-16-036 T1 (no Leff settings): the upper limit is divided by F_prompt^2 at the
    default 0.769 mm, the cross section stays, so r falls by F_prompt^2."""
    prompt = _by_txname(predictor.predict(gluino(1.0)), "T1")["CMS-SUS-16-036"]
    llp = _by_txname(predictor.predict(gluino(6e-15)), "T1")["CMS-SUS-16-036"]
    xi = prompt_fraction(6e-15, 0.000769) ** 2
    assert llp.xsec_fb == pytest.approx(prompt.xsec_fb)
    assert llp.upper_limit_fb == pytest.approx(prompt.upper_limit_fb / xi, rel=1e-9)
    assert llp.r_obs == pytest.approx(prompt.r_obs * xi, rel=1e-9)


def test_a_stable_stau_is_an_hscp(predictor: Predictor) -> None:
    """ATLAS-SUSY-2016-32 THSCPM1b (masses only): a stable stau pair is two HSCPs; with a
    width of 1e-16 GeV (c tau 2 m) the limit is divided by F_long(12 m)^2."""
    stable = _by_txname(predictor.predict(stau(0.0)), "THSCPM1b")["ATLAS-SUSY-2016-32"]
    assert stable.xsec_fb == pytest.approx(1.859)
    long_lived = _by_txname(predictor.predict(stau(1e-16)), "THSCPM1b")["ATLAS-SUSY-2016-32"]
    xi = long_fraction(1e-16, 12.0) ** 2
    assert long_lived.xsec_fb == pytest.approx(1.859)  # the undecayed staus, weight 1
    assert long_lived.upper_limit_fb == pytest.approx(stable.upper_limit_fb / xi, rel=1e-9)
    assert long_lived.r_obs == pytest.approx(stable.r_obs * xi, rel=1e-9)


def test_a_width_on_the_grid_is_not_reweighted(predictor: Predictor) -> None:
    """ATLAS-SUSY-2016-32 TRHadGM1 has the gluino widths as coordinates: the grid itself
    depends on the width, no xi (the limit is the grid's at that width)."""
    width = 1.316e-17  # a width of the grid
    found = _by_txname(predictor.predict(gluino(width)), "TRHadGM1")["ATLAS-SUSY-2016-32"]
    txname = next(t for d in predictor.database.result("ATLAS-SUSY-2016-32").datasets
                  for t in d.topologies if t.name == "TRHadGM1")
    grid = txname.grids["upper_limit"]
    at = np.flatnonzero((grid.points[:, 0] == 1500.0) & np.isclose(grid.points[:, 2], width))
    if len(at):  # the point is on the grid: the limit is its value
        assert found.upper_limit_fb == pytest.approx(float(grid.values[at[0]]), rel=1e-6)
    assert found.xsec_fb == pytest.approx(15.7)


def test_prompt_spectra_are_unchanged(predictor: Predictor) -> None:
    """Without long-lived particles every xi is 1: the same numbers with or without widths."""
    a = {(p.result_id, p.txnames): p.r_obs for p in predictor.predict(gluino(None))}
    b = {(p.result_id, p.txnames): p.r_obs for p in predictor.predict(gluino(1.0))}
    assert a == b and a


def test_only_prompt_decays_are_mass_compressed() -> None:
    """A 0.2 GeV splitting is below minmassgap, but SModelS compresses prompt decays only."""
    c1 = 1000024

    def chargino(width: float) -> Protomodel:
        return Protomodel(masses={c1: 400.2, N1: 400.0}, decays={c1: (Decay(N1, (211,), 1.0),)},
                          widths={c1: width}, xsecs={(-c1, c1): {13.0: 58.5}})

    def mass_compressed(model: Protomodel) -> list:
        return [t for t in decompose(model, model.xsecs, sigmacut=0.0, minmassgap=5.0)
                if "mass" in t.compressed]

    assert mass_compressed(chargino(1.0))
    assert not mass_compressed(chargino(2e-15))
