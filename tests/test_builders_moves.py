"""Moves of the random walk: validity over long random chains, determinism, and each move's
rules (reference: SModelS/protomodels develop, builder/manipulator.py)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from protomodels.builders import moves as mv
from protomodels.builders.records import model_from_json, model_to_json
from protomodels.paths import shared_dir
from protomodels.theory.particles import LSP, load_template
from protomodels.theory.protomodel import Decay, Protomodel
from protomodels.theory.sampling import random_protomodel
from protomodels.theory.xsec import load_tables, table_xsec

STOP1, STOP2, GLUINO, N2, N3, C1, C2 = 1000006, 2000006, 1000021, 1000023, 1000025, 1000024, 1000037
SETTINGS = mv.MoveSettings()


@pytest.fixture(scope="module")
def template():
    return load_template(shared_dir() / "data" / "templates" / "protomodel_template.slha")


@pytest.fixture(scope="module")
def tables():
    return load_tables()


def _model(masses, decays, ssm=None) -> Protomodel:
    return Protomodel(
        masses=masses,
        decays={p: tuple(Decay(d, tuple(sm), br) for d, sm, br in ds) for p, ds in decays.items()},
        ssm=ssm or {},
    )


def _check_invariants(model: Protomodel, template, *, strict: bool) -> None:
    """Valid (the constructor checks), LSP is the neutralino, masses on the 0.1 GeV grid and
    within bounds; from a legal start (strict) every decay is an open template channel."""
    rebuilt = model_from_json(model_to_json(model))  # re-validates
    assert model_to_json(rebuilt) == model_to_json(model)
    assert model.lsp == LSP
    for pdg, mass in model.masses.items():
        assert mass < SETTINGS.max_mass
        if strict:
            assert round(mass, 1) == mass
            assert mass >= SETTINGS.wall(pdg), (pdg, mass)
    assert model.masses[LSP] >= SETTINGS.lsp_min_mass
    for pdg, channels in model.decays.items():
        assert abs(sum(d.br for d in channels) - 1.0) < 1e-9
        assert all(d.br > 0 for d in channels)
        if strict:
            opened = {(c.daughter, c.sm) for c in mv.open_channels(model, pdg, template)}
            for d in channels:
                assert (d.daughter, d.sm) in opened, (pdg, d, model.masses)
    if strict:
        for light, heavy in SETTINGS.canonical_order:
            if light in model.masses and heavy in model.masses:
                assert model.masses[light] < model.masses[heavy], (light, heavy, model.masses)
        for pdg in (STOP1, STOP2):
            if pdg in model.masses:
                assert not mv._in_corridor(
                    model.masses[pdg], model.masses[LSP], SETTINGS.corridor
                ), model.masses


def _chain(model, rng, template, tables, steps, *, strict):
    """Random moves, accepted always, with merges and freezes of unused particles mixed in."""
    names = Counter()
    history = []
    for _ in range(steps):
        u = rng.uniform()
        if u < 0.1:
            model, record = mv.merge_particles(model, rng, template, tables=tables)
        elif u < 0.15:
            active = sorted(model.masses)
            keep = [int(p) for p in rng.choice(active, size=min(2, len(active)), replace=False)]
            model, record = mv.freeze_unused(model, rng, template, keep)
        else:
            t_l = float(rng.uniform(-1, 8))
            model, record = mv.random_move(model, rng, template, t_l=t_l)
        names[record.move] += 1
        _check_invariants(model, template, strict=strict)
        history.append(model_to_json(model))
    return model, names, history


def test_long_chain_from_lsp_only_stays_valid(template, tables) -> None:
    rng = np.random.default_rng(2024)
    model, names, _ = _chain(mv.lsp_only(300.0), rng, template, tables, 3000, strict=True)
    moves = Counter()
    for name, n in names.items():
        for part in name.split("+"):
            moves[part] += n
    for kind in ("unfreeze", "freeze", "mass", "branchings", "ssm", "merge", "freeze_unused"):
        assert moves[kind] > 5, (kind, moves)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_long_chains_from_random_models_stay_valid(template, tables, seed) -> None:
    rng = np.random.default_rng(seed)
    start = random_protomodel(rng, template, n_particles=(2, 6))
    _chain(start, rng, template, tables, 800, strict=False)


def test_single_moves_on_random_models_stay_valid(template, tables) -> None:
    rng = np.random.default_rng(7)
    single = [
        lambda m: mv.unfreeze_particle(m, rng, template),
        lambda m: mv.freeze_particle(m, rng, template),
        lambda m: mv.freeze_particle(m, rng, template, most_massive=True),
        lambda m: mv.change_mass(m, rng, template),
        lambda m: mv.change_branchings(m, rng, template),
        lambda m: mv.change_multipliers(m, rng, template),
        lambda m: mv.merge_particles(m, rng, template, tables=tables),
        lambda m: mv.legalize(m, rng, template),
    ]
    for _ in range(300):
        model = random_protomodel(rng, template, n_particles=(1, 7))
        for move in single:
            new, record = move(model)
            _check_invariants(new, template, strict=False)
            if not record.changed:
                assert new is model
            elif record.move in ("unfreeze", "freeze", "merge"):
                assert sorted(new.masses) != sorted(model.masses)


def test_moves_are_deterministic_by_seed(template, tables) -> None:
    runs = []
    for seed in (11, 11, 12):
        rng = np.random.default_rng(seed)
        runs.append(_chain(mv.lsp_only(250.0), rng, template, tables, 300, strict=True)[2])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_unfreeze_respects_bounds_walls_and_canonical_order(template) -> None:
    rng = np.random.default_rng(3)
    base = mv.lsp_only(400.0)
    seen = Counter()
    for _ in range(400):
        model, record = mv.unfreeze_particle(base, rng, template)
        if not record.changed:
            continue
        (pdg,) = record.particles
        seen[pdg] += 1
        assert model.masses[pdg] > 400.0
        assert model.masses[pdg] >= SETTINGS.wall(pdg)
        assert not model.ssm  # multipliers start at 1
        assert sum(d.br for d in model.decays[pdg]) == pytest.approx(1.0)
    # heavier states of canonical pairs are never chosen while the lighter one is frozen
    for _light, heavy in SETTINGS.canonical_order:
        if heavy != 1000035:
            assert seen[heavy] == 0, (heavy, seen)
    assert seen[STOP1] > 0 and seen[GLUINO] > 0


def test_offshell_chargino_and_neutralino(template) -> None:
    rng = np.random.default_rng(5)
    base = mv.lsp_only(200.0)
    offshell = 0
    for _ in range(400):
        model, record = mv.unfreeze_particle(base, rng, template, pdg=N2)
        assert record.changed
        gap = model.masses[N2] - model.masses[LSP]
        brs = {(d.daughter, d.sm): d.br for d in model.decays[N2]}
        if gap < 91.19:
            offshell += 1
            # Z* branchings of the reference's initBranchings: 12/18 light quarks, 3/18 b,
            # 1/18 per lepton flavour (b b-bar closed below 10 GeV, tau pairs below 3.54 GeV)
            weights = {(-2, 2): 12, (-5, 5): 3, (-11, 11): 1, (-13, 13): 1, (-15, 15): 1}
            thresholds = {(-5, 5): 10.0, (-15, 15): 3.54}
            opened = {sm: w for sm, w in weights.items() if gap > thresholds.get(sm, 0.0)}
            assert {sm for _, sm in brs} == set(opened)
            for sm, weight in opened.items():
                assert brs[(LSP, sm)] == pytest.approx(weight / sum(opened.values()))
        else:
            assert all(len(sm) == 1 for _, sm in brs)
    assert 20 < offshell < 80  # 10 % off-shell draws (plus the uniform mass draws below m_Z)
    chargino, _ = mv.unfreeze_particle(base, np.random.default_rng(0), template, pdg=C1)
    if chargino.masses[C1] - 200.0 >= 80.39:
        assert {d.sm for d in chargino.decays[C1]} == {(24,)}


def test_freeze_redistributes_and_rescales(template) -> None:
    model = _model(
        {LSP: 100.0, N2: 300.0, STOP1: 800.0},
        {STOP1: [(LSP, (6,), 0.4), (N2, (6,), 0.6)], N2: [(LSP, (23,), 1.0)]},
        {(-STOP1, STOP1): 2.0},
    )
    new, record = mv.freeze_particle(model, np.random.default_rng(0), template, pdg=N2)
    assert record.changed and N2 not in new.masses
    assert [(d.daughter, d.sm, d.br) for d in new.decays[STOP1]] == [(LSP, (6,), 1.0)]
    # sigma x BR(stop -> t chi10) for both stops stays: ssm x BR^2 unchanged
    assert new.ssm[(-STOP1, STOP1)] * 1.0**2 == pytest.approx(2.0 * 0.4**2)


def test_freeze_reroutes_a_mother_left_without_channels(template) -> None:
    model = _model(
        {LSP: 100.0, N2: 300.0, STOP1: 800.0},
        {STOP1: [(N2, (6,), 1.0)], N2: [(LSP, (23,), 1.0)]},
    )
    new, _ = mv.freeze_particle(model, np.random.default_rng(0), template, pdg=N2)
    assert STOP1 in new.masses
    assert [(d.daughter, d.sm) for d in new.decays[STOP1]] == [(LSP, (6,))]
    # nothing open: the mother goes too (stop at 150 GeV cannot make a top)
    light = _model(
        {LSP: 10.0, N2: 50.0, STOP1: 150.0, GLUINO: 1500.0},
        {STOP1: [(N2, (6,), 1.0)], N2: [(LSP, (-2, 2), 1.0)], GLUINO: [(LSP, (21,), 1.0)]},
    )
    new, record = mv.freeze_particle(light, np.random.default_rng(0), template, pdg=N2)
    assert set(new.masses) == {LSP, GLUINO}
    assert "froze 1000006" in record.description


def test_freeze_refusals(template) -> None:
    rng = np.random.default_rng(0)
    two = _model({LSP: 100.0, STOP1: 800.0}, {STOP1: [(LSP, (6,), 1.0)]})
    assert not mv.freeze_particle(two, rng, template, pdg=STOP1)[1].changed
    assert not mv.freeze_particle(two, rng, template, pdg=LSP, force=True)[1].changed
    assert mv.freeze_particle(two, rng, template, pdg=STOP1, force=True)[1].changed
    stops = _model(
        {LSP: 100.0, STOP1: 600.0, STOP2: 900.0},
        {STOP1: [(LSP, (6,), 1.0)], STOP2: [(LSP, (6,), 1.0)]},
    )
    new, record = mv.freeze_particle(stops, rng, template, pdg=STOP1)
    assert not record.changed and "canonical" in record.description
    new, record = mv.freeze_particle(stops, rng, template, most_massive=True)
    assert set(new.masses) == {LSP, STOP1}


def test_freeze_unused(template) -> None:
    model = _model(
        {LSP: 100.0, N2: 300.0, STOP1: 800.0, GLUINO: 1500.0},
        {
            STOP1: [(LSP, (6,), 0.5), (N2, (6,), 0.5)],
            N2: [(LSP, (23,), 1.0)],
            GLUINO: [(STOP1, (-6,), 1.0)],
        },
    )
    rng = np.random.default_rng(0)
    new, record = mv.freeze_unused(model, rng, template, {STOP1, -LSP})
    assert set(new.masses) == {STOP1, LSP}
    assert set(record.particles) == {N2, GLUINO}
    assert not mv.freeze_unused(model, rng, template, set())[1].changed


def test_mass_moves_keep_the_ordering(template) -> None:
    rng = np.random.default_rng(9)
    model = _model(
        {LSP: 300.0, STOP1: 700.0, STOP2: 750.0},
        {STOP1: [(LSP, (6,), 1.0)], STOP2: [(STOP1, (23,), 0.5), (LSP, (6,), 0.5)]},
    )
    lsp_moved = 0
    for _ in range(500):
        new, record = mv.change_mass(model, rng, template)
        if not record.changed:
            continue
        assert new.lsp == LSP
        assert set(new.masses) == set(model.masses)  # a mass move deletes no particle
        assert new.masses[STOP1] < new.masses[STOP2]  # canonical order
        lsp_moved += new.masses[LSP] != 300.0
        for pdg in (STOP1, STOP2):
            assert not mv._in_corridor(new.masses[pdg], new.masses[LSP], SETTINGS.corridor)
    assert lsp_moved > 50
    # a stop moved below its own daughter's threshold loses that channel
    squeezed, _ = mv.change_mass(model, rng, template, pdg=STOP2, dx=1e-9)
    assert squeezed is model or squeezed.masses[STOP2] > squeezed.masses[STOP1]


def test_lsp_mass_move_stays_below_the_rest(template) -> None:
    rng = np.random.default_rng(1)
    model = _model({LSP: 480.0, C1: 500.0}, {C1: [(LSP, (2, -1), 0.5), (LSP, (11, -12), 0.5)]})
    for _ in range(200):
        new, record = mv.change_mass(model, rng, template, pdg=LSP)
        assert SETTINGS.lsp_min_mass < new.masses[LSP] < 500.0


def test_branching_moves(template) -> None:
    rng = np.random.default_rng(4)
    model = _model(
        {LSP: 100.0, N2: 400.0, STOP1: 900.0},
        {STOP1: [(LSP, (6,), 1.0)], N2: [(LSP, (23,), 1.0)]},
    )
    single = 0
    for _ in range(600):
        new, record = mv.change_branchings(model, rng, template, pdg=STOP1)
        assert record.changed
        channels = {(d.daughter, d.sm) for d in new.decays[STOP1]}
        assert channels <= {(LSP, (6,)), (N2, (6,))}
        single += len(channels) == 1
    assert 10 < single < 80  # single-channel 5 % plus switches off 5 % per channel
    # N2 has a single open channel group at 400 GeV with an LSP at 100? Z and h: two groups
    assert mv.change_branchings(model, rng, template, pdg=N2)[1].changed
    lone = _model({LSP: 100.0, C2: 300.0}, {C2: [(LSP, (24,), 1.0)]})
    assert not mv.change_branchings(lone, rng, template)[1].changed


def test_multiplier_moves(template) -> None:
    rng = np.random.default_rng(8)
    model = _model(
        {LSP: 100.0, N2: 300.0, C1: 310.0},
        {N2: [(LSP, (23,), 1.0)], C1: [(LSP, (24,), 1.0)]},
    )
    zero = one = 0
    for _ in range(2000):
        new, record = mv.change_multipliers(model, rng, template, single_probability=0.5)
        assert record.changed
        # charge-conjugate productions move together
        assert new.ssm.get((N2, C1), 1.0) == new.ssm.get((-C1, N2), 1.0)
        values = set(new.ssm.values())
        zero += 0.0 in values
        one += values == {1.0}
    assert 50 < zero < 200  # 0.5 x 0.1 of the draws
    steps = []
    for _ in range(3000):
        new, record = mv.change_multipliers(model, rng, template, single_probability=0.0)
        (value,) = {v for v in new.ssm.values()}
        steps.append(math.log(value))
    assert abs(np.mean(steps)) < 0.01  # log-normal, no drift
    assert np.std(steps) == pytest.approx(SETTINGS.ssm_sigma, rel=0.1)


def test_merge_adds_cross_sections(template, tables) -> None:
    rng = np.random.default_rng(0)
    model = _model(
        {LSP: 100.0, STOP1: 600.0, STOP2: 700.0, GLUINO: 1500.0},
        {
            STOP1: [(LSP, (6,), 1.0)],
            STOP2: [(LSP, (6,), 0.5), (STOP1, (23,), 0.5)],
            GLUINO: [(STOP2, (-6,), 0.7), (LSP, (21,), 0.3)],
        },
        {(-STOP1, STOP1): 2.0, (-STOP2, STOP2): 0.5},
    )
    new, record = mv.merge_particles(model, rng, template, tables=tables)
    assert record.changed and record.particles == (STOP1, STOP2)
    assert STOP2 not in new.masses and new.masses[STOP1] == 650.0
    assert [(d.daughter, d.sm) for d in new.decays[STOP1]] == [(LSP, (6,))]
    gluino = {(d.daughter, d.sm): d.br for d in new.decays[GLUINO]}
    assert gluino[(STOP1, (-6,))] == pytest.approx(0.7)  # decays into stop2 now go to stop1

    def sigma(pair, masses):
        return table_xsec(pair, masses, tables)[13.0]

    before = 2.0 * sigma((-STOP1, STOP1), model.masses) + 0.5 * sigma((-STOP2, STOP2), model.masses)
    after = new.ssm[(-STOP1, STOP1)] * sigma((-STOP1, STOP1), new.masses)
    assert after == pytest.approx(before, rel=1e-9)
    # not merged: too far apart, or the lighter PDG id is the heavier state
    far = _model(
        model.masses | {STOP2: 900.0},
        {STOP1: [(LSP, (6,), 1.0)], STOP2: [(LSP, (6,), 1.0)], GLUINO: [(LSP, (21,), 1.0)]},
    )
    assert not mv.merge_particles(far, rng, template, tables=tables)[1].changed
    inverted = _model(
        {LSP: 100.0, N2: 400.0, N3: 350.0},
        {N2: [(LSP, (23,), 1.0)], N3: [(LSP, (23,), 1.0)]},
    )
    assert not mv.merge_particles(inverted, rng, template, tables=tables)[1].changed


def test_random_move_probabilities(template) -> None:
    """With T_L high enough to suppress unfreezing and freezing, the branching and multiplier
    moves are picked with the reference's 0.2 and 0.25."""
    rng = np.random.default_rng(6)
    model = _model(
        {LSP: 100.0, N2: 400.0, STOP1: 900.0},
        {STOP1: [(LSP, (6,), 1.0)], N2: [(LSP, (23,), 1.0)]},
    )
    parts = Counter()
    n = 3000
    for _ in range(n):
        _, record = mv.random_move(model, rng, template)
        parts.update({p.move for p in record.parts})
    assert parts["branchings"] / n == pytest.approx(0.2, abs=0.03)
    assert parts["ssm"] / n == pytest.approx(0.25, abs=0.03)
    assert parts["mass"] > 0 and parts["unfreeze"] > 0
    # only the LSP: always unfreeze
    for _ in range(20):
        new, record = mv.random_move(mv.lsp_only(300.0), rng, template)
        assert record.parts[0].move == "unfreeze"


def test_lifetime_moves_make_particles_long_lived_and_prompt_again(template) -> None:  # noqa: ANN001
    """With --lifetimes a move draws a width in LONG_LIVED_WIDTHS (log-uniform) or drops it;
    the width survives the other moves and the run files; without, no random number is
    drawn for it (the reference builder's walk is unchanged)."""
    from protomodels.theory.decomposition import lifetime_class

    rng = np.random.default_rng(5)
    model = random_protomodel(rng, template)
    low, high = mv.LONG_LIVED_WIDTHS
    seen_long, seen_prompt = False, False
    current = model
    for _ in range(40):
        current, record = mv.change_lifetime(current, rng, template)
        assert record.move == "lifetime" and record.changed
        (pdg,) = record.particles
        if pdg in current.widths:
            assert low <= current.widths[pdg] <= high
            assert lifetime_class(pdg, current) == "long-lived"
            seen_long = True
        else:
            assert lifetime_class(pdg, current) == "prompt"
            seen_prompt = True
    assert seen_long and seen_prompt
    long_lived = dict(current.widths)
    assert long_lived
    again = model_from_json(model_to_json(current))
    assert dict(again.widths) == long_lived
    moved, _ = mv.change_mass(current, np.random.default_rng(1), template)
    assert {p: w for p, w in moved.widths.items()} == {
        p: w for p, w in long_lived.items() if p in moved.decays}
    # lifetime probability 0: the same proposals as without the option
    a = mv.random_move(model, np.random.default_rng(9), template)
    b = mv.random_move(model, np.random.default_rng(9), template,
                       mv.MoveProbabilities(lifetime=0.0))
    assert model_to_json(a[0]) == model_to_json(b[0]) and "widths" not in model_to_json(a[0])
