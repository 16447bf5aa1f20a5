"""The protomodel (validation, SLHA in and out), the reference cross sections and random models."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from protomodels.exceptions import InputCorrectionWarning
from protomodels.theory import Decay, InvalidProtomodelError, Protomodel
from protomodels.theory.particles import LSP, load_template
from protomodels.theory.sampling import FAMILIES, family_protomodel, random_protomodel
from protomodels.theory.xsec import (
    channel_table,
    load_tables,
    production_channels,
    table_xsec,
)

STOP, N1, N2, C1, GLUINO = 1000006, 1000022, 1000023, 1000024, 1000021


def reference(shared: Path, name: str) -> Path:
    return shared / "data" / "reference" / name


def stop_model(**changes) -> Protomodel:  # noqa: ANN003
    """A valid stop -> t N1 model, with fields overridden by ``changes``."""
    fields = {
        "masses": {STOP: 600.0, N1: 100.0},
        "decays": {STOP: (Decay(N1, (6,), 1.0),)},
    }
    fields.update(changes)
    return Protomodel(**fields)


# --------------------------------------------------------------------------- validation


def test_valid_model_is_accepted() -> None:
    model = stop_model()
    assert model.lsp == N1
    assert model.particles == [N1, STOP]


@pytest.mark.parametrize(
    ("decays", "pattern"),
    [
        pytest.param(
            {STOP: (Decay(N1, (6,), 0.5), Decay(N1, (4,), 0.3))},
            r"branching ratios of 1000006 sum to 0\.8",
            id="brs-sum-0.8",
        ),
        pytest.param({STOP: (Decay(N1, (6,), 1.5),)}, r"BR\(1000006 -> 1000022.*1\.5", id="br-1.5"),
        pytest.param(
            {STOP: (Decay(N1, (6,), math.nan),)}, r"BR\(1000006 -> 1000022.*nan", id="br-nan"
        ),
        pytest.param(
            {STOP: (Decay(N1, (6,), -0.2), Decay(N1, (4,), 1.2))},
            r"BR\(1000006 -> 1000022",
            id="br-negative",
        ),
    ],
)
def test_invalid_branching_ratios(decays: dict, pattern: str) -> None:
    with pytest.raises(InvalidProtomodelError, match=pattern) as info:
        stop_model(decays=decays)
    assert "decays" in str(info.value)


@pytest.mark.parametrize("mass", [math.nan, -600.0, math.inf, 0.0], ids=["nan", "neg", "inf", "0"])
def test_invalid_mass(mass: float) -> None:
    with pytest.raises(InvalidProtomodelError, match=r"masses: mass of 1000006 .*need > 0"):
        stop_model(masses={STOP: mass, N1: 100.0})


def test_unknown_pdg_id() -> None:
    with pytest.raises(InvalidProtomodelError, match=r"masses: .*1000099"):
        stop_model(masses={STOP: 600.0, N1: 100.0, 1000099: 300.0})


def test_negative_pdg_id_in_masses() -> None:
    with pytest.raises(InvalidProtomodelError, match=r"masses: .*-1000006"):
        Protomodel(masses={-STOP: 600.0, N1: 100.0}, decays={})


def test_decay_to_heavier_particle() -> None:
    with pytest.raises(InvalidProtomodelError, match=r"decays: 1000023 .*heavier.*1000024"):
        Protomodel(
            masses={N1: 100.0, N2: 300.0, C1: 400.0},
            decays={N2: (Decay(C1, (-24,), 1.0),), C1: (Decay(N1, (24,), 1.0),)},
        )


def test_decay_to_equal_mass_particle() -> None:
    with pytest.raises(InvalidProtomodelError, match=r"heavier or equal"):
        Protomodel(
            masses={N1: 100.0, N2: 300.0, C1: 300.0},
            decays={N2: (Decay(C1, (-24,), 1.0),), C1: (Decay(N1, (24,), 1.0),)},
        )


def test_decay_to_inactive_particle() -> None:
    pattern = r"decays: 1000006 decays to 1000023.*not active"
    with pytest.raises(InvalidProtomodelError, match=pattern):
        stop_model(decays={STOP: (Decay(N2, (6,), 1.0),)})


def test_decays_of_inactive_particle() -> None:
    with pytest.raises(InvalidProtomodelError, match=r"decays: 1000023 .*not active"):
        stop_model(decays={STOP: (Decay(N1, (6,), 1.0),), N2: (Decay(N1, (23,), 1.0),)})


def test_charged_lsp() -> None:
    # the stop is the lightest particle: charged and coloured
    with pytest.raises(InvalidProtomodelError, match=r"lightest particle 1000006.*charged"):
        Protomodel(masses={STOP: 90.0, N1: 100.0}, decays={N1: (Decay(STOP, (-6,), 1.0),)})


def test_charged_lsp_alone() -> None:
    with pytest.raises(InvalidProtomodelError, match=r"lightest particle 1000011"):
        Protomodel(masses={1000011: 200.0}, decays={})


def test_lsp_must_not_decay() -> None:
    with pytest.raises(InvalidProtomodelError, match=r"LSP 1000022 must be stable"):
        stop_model(decays={STOP: (Decay(N1, (6,), 1.0),), N1: (Decay(N2, (23,), 1.0),)})


def test_active_particle_without_decays() -> None:
    with pytest.raises(InvalidProtomodelError, match=r"decays: 1000006 .*no decay channel"):
        stop_model(decays={})
    model = stop_model(decays={}, allow_stable=True)
    assert model.masses[STOP] == 600.0


def test_empty_model() -> None:
    with pytest.raises(InvalidProtomodelError, match="no particles"):
        Protomodel(masses={}, decays={})


def test_invalid_ssm_and_xsecs() -> None:
    with pytest.raises(InvalidProtomodelError, match=r"ssm: .*-1000006, 1000006"):
        stop_model(ssm={(-STOP, STOP): -1.0})
    with pytest.raises(InvalidProtomodelError, match=r"xsecs: .*13\.0"):
        stop_model(xsecs={(-STOP, STOP): {13.0: math.nan}})


def test_brs_within_tolerance_accepted() -> None:
    model = stop_model(decays={STOP: (Decay(N1, (6,), 0.7), Decay(N1, (4,), 0.30004))})
    assert sum(d.br for d in model.decays[STOP]) == pytest.approx(1.00004)


# --------------------------------------------------------------------------- SLHA input

# random_1_01.slha: ~s_L 617.6978, ~e_L 311.676, N1 306.1417 (all others frozen at 1e6),
# ~e_L -> N1 e-, ~s_L -> N1 s, XSECTION blocks in pb at 8 and 13 TeV.
RANDOM_1_01_MASSES = {1000003: 617.7, 1000011: 311.7, 1000022: 306.1}
RANDOM_1_01_XSECS_FB = {
    (-1000011, 1000011): {8.0: 0.871235038, 13.0: 2.68006569},
    (-1000003, 1000003): {8.0: 19.9521358, 13.0: 172.637511},
}


def test_from_slha_reference_file(shared: Path) -> None:
    model = Protomodel.from_slha(reference(shared, "random_1_01.slha"))
    assert dict(model.masses) == RANDOM_1_01_MASSES  # frozen 1e6 particles dropped
    assert model.lsp == N1
    assert dict(model.decays) == {
        1000011: (Decay(N1, (11,), 1.0),),
        1000003: (Decay(N1, (3,), 1.0),),
    }
    assert model.xsecs is not None
    assert set(model.xsecs) == set(RANDOM_1_01_XSECS_FB)
    for pair, by_sqrts in RANDOM_1_01_XSECS_FB.items():
        assert set(model.xsecs[pair]) == set(by_sqrts)
        for sqrts, fb in by_sqrts.items():
            assert model.xsecs[pair][sqrts] == pytest.approx(fb, rel=1e-12)
    assert model.name == "random_1_01"


def test_from_slha_xsec_duplicates_collapsed(tmp_path: Path) -> None:
    """Same pair several times: the highest QCD order wins, then the largest value; pb -> fb."""
    path = tmp_path / "dup.slha"
    path.write_text(
        "BLOCK MASS\n"
        "   1000006     6.000000E+02\n"
        "   1000022     1.000000E+02\n"
        "   1000021     1.000000E+06\n"
        "DECAY   1000006     1.0E+00\n"
        "     1.00000000E+00    2   1000022  6\n"
        "DECAY   1000022     0.0\n"
        "XSECTION  1.30E+04  2212 2212 2 -1000006 1000006\n"
        "  0  0  0  0  0  0    1.0E-01 a\n"
        "XSECTION  1.30E+04  2212 2212 2 -1000006 1000006\n"
        "  0  0  0  0  0  0    3.0E-01 b\n"
        "XSECTION  8.00E+03  2212 2212 2 -1000006 1000006\n"
        "  0  2  0  0  0  0    5.0E-02 nlo\n"
        "  0  0  0  0  0  0    9.0E-02 lo\n"
        "XSECTION  1.30E+04  2212 2212 2 1000021 1000021\n"
        "  0  0  0  0  0  0    7.0E-01 frozen\n"
    )
    model = Protomodel.from_slha(path)
    assert model.xsecs == {(-STOP, STOP): {13.0: pytest.approx(300.0), 8.0: pytest.approx(50.0)}}
    assert dict(model.masses) == {STOP: 600.0, N1: 100.0}


def test_slha_round_trip(shared: Path, tmp_path: Path) -> None:
    model = Protomodel.from_slha(reference(shared, "random_1_01.slha"))
    out = tmp_path / "copy.slha"
    text = model.to_slha(out)
    assert out.read_text() == text
    again = Protomodel.from_slha(out)
    assert dict(again.masses) == dict(model.masses)
    assert dict(again.decays) == dict(model.decays)
    assert again.xsecs is not None and model.xsecs is not None
    assert set(again.xsecs) == set(model.xsecs)
    for pair, by_sqrts in model.xsecs.items():
        assert set(again.xsecs[pair]) == set(by_sqrts)
        for sqrts, fb in by_sqrts.items():
            assert again.xsecs[pair][sqrts] == pytest.approx(fb, rel=1e-8)


def test_round_trip_of_a_constructed_model(tmp_path: Path) -> None:
    model = Protomodel(
        masses={STOP: 612.3, N2: 250.5, N1: 100.0},
        decays={
            STOP: (Decay(N1, (6,), 0.25), Decay(N2, (6,), 0.75)),
            N2: (Decay(N1, (23,), 0.4), Decay(N1, (25,), 0.6)),
        },
        xsecs={(-STOP, STOP): {13.0: 150.0, 8.0: 22.5}, (N2, N2): {13.0: 3.25}},
    )
    model.to_slha(tmp_path / "m.slha")
    again = Protomodel.from_slha(tmp_path / "m.slha")
    assert dict(again.masses) == dict(model.masses)
    assert {p: set(d) for p, d in again.decays.items()} == {
        p: set(d) for p, d in model.decays.items()
    }
    assert again.xsecs == {
        (-STOP, STOP): {13.0: pytest.approx(150.0), 8.0: pytest.approx(22.5)},
        (N2, N2): {13.0: pytest.approx(3.25)},
    }


def test_from_slha_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nothere.slha"
    with pytest.raises(InvalidProtomodelError, match=r"nothere\.slha does not exist"):
        Protomodel.from_slha(missing)


def test_from_slha_without_mass_block(tmp_path: Path) -> None:
    path = tmp_path / "nomass.slha"
    path.write_text("DECAY   1000006     1.0E+00\n     1.00000000E+00    2   1000022  6\n")
    with pytest.raises(InvalidProtomodelError, match="no MASS block"):
        Protomodel.from_slha(path)


def test_from_slha_two_bsm_daughters(tmp_path: Path) -> None:
    path = tmp_path / "rpv.slha"
    path.write_text(
        "BLOCK MASS\n"
        "   1000006     6.000000E+02\n"
        "   1000023     3.000000E+02\n"
        "   1000022     1.000000E+02\n"
        "DECAY   1000006     1.0E+00\n"
        "     1.00000000E+00    3   1000022  1000023  6\n"
        "DECAY   1000023     1.0E+00\n"
        "     1.00000000E+00    2   1000022  23\n"
    )
    with pytest.warns(InputCorrectionWarning, match=r"no result.*1000006 .*line 6"):
        model = Protomodel.from_slha(path)
    # read as SModelS reads it; the tree it makes inside a chain matches no result
    assert model.decays[1000006] == (Decay(1000022, (6,), 1.0, (1000023,)),)


def test_from_slha_decay_into_sm_particles_only(tmp_path: Path) -> None:
    """An R-parity violating decay of the lightest particle is kept (SModelS accepts it); an
    unknown daughter is named with its line."""
    path = tmp_path / "rpv.slha"
    text = ("BLOCK MASS\n   1000006     6.000000E+02\n"
            "DECAY   1000006     1.0E-14\n     1.00000000E+00    2   1  -13\n")
    path.write_text(text)
    model = Protomodel.from_slha(path)
    assert model.decays[1000006] == (Decay(0, (1, -13), 1.0),)
    assert model.decays[1000006][0].bsm == ()
    path.write_text(text.replace("1  -13", "1  -99"))
    with pytest.raises(InvalidProtomodelError, match=r"line 4.*-99 is neither an SM particle"):
        Protomodel.from_slha(path)


# --------------------------------------------------------------------------- reference xsecs

# README of data/: file -> (cross-section column counting the "GeV" token, unit -> fb factor)
XSEC_FILES = {
    "gluino8": (2, 1e3), "gluino13": (2, 1e3),
    "squark8": (2, 1e3), "squark13": (2, 1e3),
    "stop8": (2, 1e3), "stop13": (2, 1e3),
    "slepslep8": (1, 1.0), "slepslep13": (1, 1e3),
    "C1C18": (1, 1.0), "C1C113": (1, 1.0),
    "N2C1p8": (1, 1e3), "N2C1m8": (1, 1e3),
    "N2C1p13": (1, 1.0), "N2C1m13": (1, 1.0),
}  # fmt: skip


def read_xsec_file(shared: Path, stem: str) -> tuple[np.ndarray, np.ndarray]:
    """(masses, sigma in fb) of a table, read independently of the package."""
    column, factor = XSEC_FILES[stem]
    masses, values = [], []
    for line in (shared / "data" / "xsec" / f"xsec{stem}.txt").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        tokens = line.split()
        has_gev = tokens[1] == "GeV"
        masses.append(float(tokens[0]))
        values.append(float(tokens[column if has_gev else 1]) * factor)
        if column == 2:
            assert has_gev, line
    order = np.argsort(masses)
    return np.asarray(masses)[order], np.asarray(values)[order]


@pytest.mark.parametrize("stem", sorted(XSEC_FILES))
def test_tables_at_nodes(shared: Path, stem: str) -> None:
    process = stem[:-2] if stem.endswith("13") else stem[:-1]
    sqrts = 13.0 if stem.endswith("13") else 8.0
    masses, fb = read_xsec_file(shared, stem)
    table = load_tables(shared)[(process, sqrts)]
    np.testing.assert_array_equal(table.masses, masses)
    np.testing.assert_allclose(table.xsec_fb, fb, rtol=1e-12)
    np.testing.assert_allclose(table(masses), fb, rtol=1e-12)


def test_known_table_values(shared: Path) -> None:
    """Hand-read lines: stop13 '600. GeV 0.205E+00' pb, slepslep8 '100 181.16' fb,
    N2C1p13 '100 13895.1' fb, N2C1m8 '100 4.019153e+00' pb."""
    tables = load_tables(shared)
    assert float(tables[("stop", 13.0)](600.0)) == pytest.approx(205.0)
    assert float(tables[("slepslep", 8.0)](100.0)) == pytest.approx(181.16)
    assert float(tables[("N2C1p", 13.0)](100.0)) == pytest.approx(13895.1)
    assert float(tables[("N2C1m", 8.0)](100.0)) == pytest.approx(4019.153)
    assert float(tables[("slepslep", 13.0)](100.0)) == pytest.approx(365.7)


@pytest.mark.parametrize("stem", ["stop13", "gluino8", "N2C1p13", "slepslep13", "C1C18"])
def test_log_interpolation_between_nodes(shared: Path, stem: str) -> None:
    process = stem[:-2] if stem.endswith("13") else stem[:-1]
    sqrts = 13.0 if stem.endswith("13") else 8.0
    masses, fb = read_xsec_file(shared, stem)
    table = load_tables(shared)[(process, sqrts)]
    for i in (0, len(masses) // 3, len(masses) - 2):
        for t in (0.25, 0.5, 0.9):
            m = masses[i] + t * (masses[i + 1] - masses[i])
            expected = math.exp((1 - t) * math.log(fb[i]) + t * math.log(fb[i + 1]))
            assert float(table(m)) == pytest.approx(expected, rel=1e-10)
            linear = (1 - t) * fb[i] + t * fb[i + 1]
            assert float(table(m, interpolation="linear")) == pytest.approx(linear, rel=1e-10)


def test_table_xsec_stop_pair(shared: Path) -> None:
    tables = load_tables(shared)
    m13, fb13 = read_xsec_file(shared, "stop13")
    m8, fb8 = read_xsec_file(shared, "stop8")
    at600 = table_xsec((-STOP, STOP), {STOP: 600.0, N1: 100.0}, tables)
    assert at600 == {
        13.0: pytest.approx(float(fb13[m13 == 600.0][0])),
        8.0: pytest.approx(float(fb8[m8 == 600.0][0])),
    }
    between = table_xsec((-STOP, STOP), {STOP: 602.5}, tables)
    i = int(np.flatnonzero(m13 == 600.0)[0])
    assert m13[i + 1] == 605.0
    assert between[13.0] == pytest.approx(math.sqrt(fb13[i] * fb13[i + 1]), rel=1e-10)


def test_table_xsec_associated_uses_mean_mass(shared: Path) -> None:
    tables = load_tables(shared)
    masses, fb = read_xsec_file(shared, "N2C1p13")
    m = 0.5 * (300.0 + 310.0)
    i = int(np.searchsorted(masses, m)) - 1
    t = (m - masses[i]) / (masses[i + 1] - masses[i])
    expected = math.exp((1 - t) * math.log(fb[i]) + t * math.log(fb[i + 1]))
    got = table_xsec((N2, C1), {N2: 300.0, C1: 310.0, N1: 100.0}, tables)
    assert got[13.0] == pytest.approx(expected, rel=1e-10)


def test_table_xsec_outside_range(shared: Path) -> None:
    tables = load_tables(shared)
    # stop tables: 100-3000 GeV at 13 TeV, 100-2000 GeV at 8 TeV
    assert table_xsec((-STOP, STOP), {STOP: 3100.0}, tables) == {}
    assert table_xsec((-STOP, STOP), {STOP: 90.0}, tables) == {}
    assert set(table_xsec((-STOP, STOP), {STOP: 2500.0}, tables)) == {13.0}
    # slepton tables: 50-500 GeV at 8 TeV, 50-1000 GeV at 13 TeV
    assert set(table_xsec((-1000011, 1000011), {1000011: 700.0}, tables)) == {13.0}
    # a pair without a table
    assert table_xsec((N1, N1), {N1: 100.0}, tables) == {}


@pytest.mark.parametrize(
    ("pair", "name"),
    [
        ((-1000006, 1000006), "stop"),
        ((1000006, -1000006), "stop"),
        ((-1000005, 1000005), "stop"),
        ((1000021, 1000021), "gluino"),
        ((-1000001, 1000001), "squark"),
        ((1000023, 1000024), "N2C1p"),
        ((-1000024, 1000023), "N2C1m"),
        ((-1000011, 1000011), "slepslep"),
        ((-1000024, 1000024), "C1C1"),
        ((1000022, 1000022), None),
    ],
)
def test_channel_table(pair: tuple[int, int], name: str | None) -> None:
    assert channel_table(pair) == name


def test_production_channels() -> None:
    channels = production_channels([STOP, N1])
    assert (-STOP, STOP) in channels
    assert all(abs(a) in (STOP, N1) and abs(b) in (STOP, N1) for a, b in channels)
    both = production_channels([GLUINO, STOP, N1])
    assert {(-STOP, STOP), (GLUINO, GLUINO), (STOP, GLUINO)} <= set(both)


# --------------------------------------------------------------------------- random models


def test_random_protomodels_are_valid(shared: Path) -> None:
    template = load_template(shared / "data" / "templates" / "protomodel_template.slha")
    rng = np.random.default_rng(20240601)
    for _ in range(300):
        model = random_protomodel(rng, template)
        model.validate()
        assert model.lsp == LSP
        assert 2 <= len(model.masses) <= 5
        assert set(model.masses) <= set(template.particles)
        for pdg, decays in model.decays.items():
            allowed = {(c.daughter, c.sm) for c in template.channels_of(pdg)}
            assert decays, pdg
            assert sum(d.br for d in decays) == pytest.approx(1.0)
            for d in decays:
                assert (d.daughter, d.sm) in allowed
                assert abs(d.daughter) in model.masses
                assert model.masses[abs(d.daughter)] < model.masses[pdg]
        for pdg in model.masses:
            assert pdg == LSP or model.decays.get(pdg)


def test_family_protomodels_are_valid(shared: Path) -> None:
    """Each family draws valid models; the LSP mass never rounds to zero (it did, at 0.0 GeV)."""
    template = load_template(shared / "data" / "templates" / "protomodel_template.slha")
    rng = np.random.default_rng(3)
    for i in range(2000):
        family = FAMILIES[i % len(FAMILIES)]
        model = family_protomodel(rng, template, family)
        model.validate()
        assert model.masses[LSP] > 0
        if family == "compressed":
            assert max(model.masses.values()) - model.masses[LSP] <= 60.0 + 1e-9
        if family == "long-lived sleptons":
            assert model.widths
    with pytest.raises(ValueError, match="family"):
        family_protomodel(rng, template, "gluinos")
    with pytest.raises(ValueError, match="lsp_mass"):
        random_protomodel(rng, template, lsp_mass=(0.0, 10.0))


def test_random_protomodel_is_reproducible(shared: Path) -> None:
    template = load_template(shared / "data" / "templates" / "protomodel_template.slha")
    for seed in (1, 2, 3):
        a = random_protomodel(np.random.default_rng(seed), template)
        b = random_protomodel(np.random.default_rng(seed), template)
        assert dict(a.masses) == dict(b.masses)
        assert dict(a.decays) == dict(b.decays)
    rng = np.random.default_rng(7)
    draws = [dict(random_protomodel(rng, template).masses) for _ in range(5)]
    assert len({tuple(sorted(d.items())) for d in draws}) == 5


def test_numpy_numbers_are_plain_floats() -> None:
    """A mass grid from np.arange is accepted and stored as Python floats."""
    import numpy as np

    from protomodels.theory import Decay, Protomodel

    stop, n1 = 1000006, 1000022
    model = Protomodel(
        masses={stop: np.int64(600), n1: np.float32(250.0)},
        decays={stop: (Decay(n1, (6,), 1.0),)},
        ssm={(-stop, stop): np.float64(0.5)},
    )
    assert all(type(m) is float for m in model.masses.values())
    assert type(model.ssm[(-stop, stop)]) is float and model.masses[stop] == 600.0
