"""Particles beyond the MSSM in SModelS 3's graph topologies: a singly produced Z' decaying into
jets or into a pair of dark-matter particles, and chains ending in a decay into SM particles only
(R-parity violation). Values are computed here by hand from SModelS's rules and the grid."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

import protomodels.database as pdb
from protomodels.database.constraints import parse_constraint
from protomodels.theory.decomposition import ROOT, decompose
from protomodels.theory.matching import branch_matches, compile_pattern
from protomodels.theory.predictions import Predictor
from protomodels.theory.protomodel import Decay, Protomodel

ZPRIME, DM = 55, 52
SIGMA_PB = 1.2967

# after SModelS's inputFiles/slha/TRV1_1800_300_300.slha (a Z' of 1800 GeV, Dirac dark matter)
SLHA = f"""\
BLOCK MASS
   6  1.720000e+02  # top
  52  3.000000e+02  # dark matter
  55  1.800000e+03  # Z'
BLOCK QNUMBERS 52  # xd
  1  0  # 3 x charge
  2  2  # 2S+1
  3  1  # colour
  4  1  # has an antiparticle
BLOCK QNUMBERS 55  # y1
  1  0
  2  3
  3  1
  4  0
DECAY  6  1.5
DECAY  52  0.0
DECAY  55  18.0
  0.70  2  52  -52
  0.15  2   1   -1
  0.15  2   2   -2
XSECTION  1.30E+04  2212 2212 1 55
  0  0  0  0  0  0  {SIGMA_PB:.6e}  test
"""


def _zprime(tmp_path: Path) -> Protomodel:
    path = tmp_path / "zprime.slha"
    path.write_text(SLHA)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to correct in this file
        return Protomodel.from_slha(path)


def test_a_resonance_model_is_read(tmp_path: Path) -> None:
    model = _zprime(tmp_path)
    assert dict(model.masses) == {DM: 300.0, ZPRIME: 1800.0}  # the top stays an SM particle
    assert model.xsecs == {(ZPRIME,): {13.0: pytest.approx(SIGMA_PB * 1000)}}
    assert model.decays[ZPRIME][0] == Decay(DM, (), 0.7, (-DM,))
    assert [d.bsm for d in model.decays[ZPRIME]] == [(DM, -DM), (), ()]
    assert model.properties[DM].antiparticle and not model.properties[ZPRIME].antiparticle
    # written and read back the same (QNUMBERS, decays into two and into none, single xsec)
    again = tmp_path / "again.slha"
    model.to_slha(again)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = Protomodel.from_slha(again)
    assert dict(back.decays) == dict(model.decays) and back.xsecs == model.xsecs


def test_resonance_topologies(tmp_path: Path) -> None:
    model = _zprime(tmp_path)
    topologies = decompose(model, model.xsecs)
    sigma = SIGMA_PB * 1000
    found = {(t.root.vertices, len(t.branches)): t.weights[13.0] for t in topologies
             if t.decays[0][1] == 0}
    assert found == {(((),), 2): pytest.approx(0.7 * sigma)}
    jets = [t for t in topologies if not t.branches]
    assert [t.root.vertices for t in jets] == [(("q", "q"),)] * 2
    assert sum(t.weights[13.0] for t in jets) == pytest.approx(0.3 * sigma)
    dijet = compile_pattern(parse_constraint("{(PV > Zprime(1)),(Zprime(1) > jetb(2),jetb(3))}")
                            .sms[0])
    monojet = compile_pattern(parse_constraint("{(PV > Zprime(1)), (Zprime(1) > MET(2),MET(3))}")
                              .sms[0])
    extra = dict(model.properties)
    assert all(branch_matches(t.root, dijet.root, extra) for t in jets)
    pair = next(t for t in topologies if t.branches)
    assert not branch_matches(pair.root, dijet.root, extra)
    assert branch_matches(pair.root, monojet.root, extra)
    assert all(branch_matches(b, p, extra)
               for b, p in zip(pair.branches, monojet.branches, strict=True))
    assert pair.part(ROOT) is pair.root and [i for i, _ in pair.parts] == [0, 1, ROOT]


def _grid_value(source: Path, mass: float, width: float) -> float:
    """The upper limit (fb) at one grid point of CMS-EXO-19-012's TRV1jj map, read from the
    database text."""
    text = (source / "13TeV/CMS/CMS-EXO-19-012/data/TRV1jj.txt").read_text()
    match = re.search(rf"\[\[{mass},{width}\],([0-9.E+-]+)\*pb\]", text)
    assert match, "grid point not in the map"
    return float(match.group(1)) * 1000.0


def test_dijet_resonance_prediction(subset_store: Path, subset_source: Path,
                                    tmp_path: Path) -> None:
    """r = sigma x BR(Z' -> jets) / UL(m, Gamma) at a grid point of the (mass, width) map."""
    model = _zprime(tmp_path)
    predictor = Predictor(pdb.load(subset_store, workspaces=False))
    found = [p for p in predictor.predict(model) if p.result_id == "CMS-EXO-19-012"]
    assert len(found) == 1 and found[0].txnames == ("TRV1jj",)
    xsec = 0.3 * SIGMA_PB * 1000
    assert found[0].xsec_fb == pytest.approx(xsec)
    assert found[0].r_obs == pytest.approx(xsec / _grid_value(subset_source, 1800.0, 18.0),
                                           rel=1e-6)


def test_rpv_chains_end_in_sm_particles() -> None:
    """A stop decaying into a jet and a muon (R-parity violating): a chain whose last state
    decays, matched by SModelS's TRPV1jmu graph; the same graph with a neutralino left over
    does not match."""
    stop, n1 = 1000006, 1000022
    model = Protomodel(masses={stop: 1000.0}, decays={stop: (Decay(0, (1, -13), 1.0),)},
                       widths={stop: 1e-14}, allow_stable=True)
    topologies = decompose(model, {(-stop, stop): {13.0: 10.0}})
    # long-lived (c tau 2 cm): each stop decays, or leaves the detector undecayed
    assert sorted(sum(b.decayed for b in t.branches) for t in topologies) == [0, 1, 1, 2]
    [topology] = [t for t in topologies if all(b.decayed for b in t.branches)]
    assert all(len(b.nodes) == 1 for b in topology.branches)
    pattern = compile_pattern(parse_constraint(
        "{(PV > anyBSM(1),anyBSM(2)), (anyBSM(1) > jet,mu+), (anyBSM(2) > jet,mu-)}").sms[0])
    assert pattern is not None and pattern.root is None
    up, down = sorted(topology.branches, key=lambda b: b.vertices)
    assert branch_matches(up, pattern.branches[0]) and branch_matches(down, pattern.branches[1])
    chain = Protomodel(masses={stop: 1000.0, n1: 100.0},
                       decays={stop: (Decay(n1, (1, -13), 1.0),)})
    [other] = [t for t in decompose(chain, {(-stop, stop): {13.0: 10.0}}) if not t.compressed]
    assert not any(branch_matches(b, p) for b in other.branches for p in pattern.branches)


def test_a_decay_into_neutrinos_only_is_invisible() -> None:
    """A sneutrino decaying (R-parity violating) into two neutrinos is compressed into an
    invisible final state, as SModelS's invisible compression does."""
    snu = 1000012
    model = Protomodel(masses={snu: 500.0}, decays={snu: (Decay(0, (12, -12), 1.0),)},
                       allow_stable=True)
    topologies = decompose(model, {(snu, snu): {13.0: 10.0}})
    assert [t.compressed for t in topologies] == ["", "inv"]
    assert all(b.nodes == ((snu, "inv"),) and not b.vertices for b in topologies[1].branches)


def test_a_resonance_has_no_reference_multiplier(tmp_path: Path) -> None:
    """The K prior's multipliers come from the reference tables, which have no single
    production: a resonance's cross section is its own (no multiplier, no error)."""
    from protomodels.combiner.prior import derive_multipliers
    from protomodels.theory.xsec import channel_table

    model = _zprime(tmp_path)
    assert channel_table((ZPRIME,)) is None
    assert derive_multipliers(model, model.xsecs) == {}


def test_run_file_json_keeps_every_decay_kind() -> None:
    from protomodels.builders.records import model_from_json, model_to_json

    model = Protomodel(
        masses={1000023: 600.0, 1000022: 100.0, 35: 300.0},
        decays={1000023: (Decay(1000022, (), 0.5, (35,)), Decay(1000022, (23,), 0.5)),
                35: (Decay(0, (5, -5), 1.0),)},
        allow_stable=True)
    data = model_to_json(model)
    assert data["decays"]["1000023"][0] == [1000022, [], 0.5, [35]]
    assert data["decays"]["1000023"][1] == [1000022, [23], 0.5]
    back = model_from_json(data)
    assert dict(back.decays) == dict(model.decays)


def test_a_resonance_without_qnumbers_is_named(tmp_path: Path) -> None:
    """A Z' without a QNUMBERS block cannot be classified: the cross section's line and the
    block to add are named (rather than an empty prediction)."""
    from protomodels.exceptions import InvalidProtomodelError

    path = tmp_path / "zprime.slha"
    path.write_text(SLHA.replace("BLOCK QNUMBERS 55  # y1\n  1  0\n  2  3\n  3  1\n  4  0\n", ""))
    with pytest.raises(InvalidProtomodelError, match=r"line 17: XSECTION.*55 is neither.*"
                                                      r"QNUMBERS 55"):
        Protomodel.from_slha(path)
