"""Moves of the random walk: small changes of a protomodel that keep it valid.

Every move is a pure function ``move(model, rng, template, ...) -> (new_model, MoveRecord)``: the
model is never modified, all randomness comes from ``rng`` (a :class:`numpy.random.Generator`),
and the result is a valid :class:`~protomodels.theory.protomodel.Protomodel` (or the unchanged
model with a record saying why nothing was done).

The moves follow the reference builder, SModelS/protomodels (branch ``develop``),
``builder/manipulator.py`` class ``Manipulator``; each setting names the reference function it
comes from. Where the reference is weak we do better, and say so:

* a decay channel is *open* when the template lists it, its BSM daughter is active and the
  mother is heavier than the daughters (SM masses included, as ``ProtoModel.getOpenChannels``);
  the three-body channels of chi20 / chi1+ are open only off shell (mass gap to the LSP below the
  Z / W mass), as in the reference; the gluino's three-body channels (~g -> chi q q, its only
  decays in the reference's template) are always open. The reference checks on-shell decays
  against 92 / 81 GeV but switches to off-shell below 91.19 / 80.39 GeV, leaving a window where
  neither is open; we use one threshold for both.
* channels that share a template placeholder (e.g. the three lepton flavours of an off-shell
  chargino) form one *group* and share its branching ratio equally.
* masses are rounded to 0.1 GeV (the predictor rounds them so; unrounded masses 0.04 GeV apart
  would become equal there) and kept strictly ordered.
* a mass move never leaves a particle without an open channel (such a mass is redrawn); the
  reference freezes the particle, so that a mass step silently deletes particles.
* when a particle loses all its decay channels (a daughter frozen, a mass changed) but other
  channels are open, its branchings are drawn anew (``initBranchings``) instead of freezing it
  and everything that cascades from that; it is frozen only when no channel is open at all.
* merging two particles adds their production cross sections (the reference's ``mergeSSMs``
  meant to, but divides instead of multiplying and uses a stale variable).
* the multiplier steps are log-normal (symmetric in log), without the reference's +0.1 drift.
* off-shell jumps of chi20 / chi1+ in ``randomlyChangeMassOf`` are done (the reference's code
  assigns to misspelt variables, so they never happen).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from protomodels.builders.draft import (
    SM_MASSES,
    Draft,
    channel_groups,
    channel_key,
    init_branchings,
    template_index,
)
from protomodels.theory.particles import LSP, NAMES, Channel, Template
from protomodels.theory.protomodel import Protomodel
from protomodels.theory.xsec import XsecTables, load_tables, table_xsec

__all__ = [
    "LONG_LIVED_WIDTHS",
    "MoveProbabilities",
    "MoveRecord",
    "MoveSettings",
    "change_branchings",
    "change_lifetime",
    "change_mass",
    "change_multipliers",
    "freeze_particle",
    "freeze_unused",
    "legalize",
    "lsp_only",
    "merge_particles",
    "open_channels",
    "random_move",
    "refine_move",
    "refine_settings",
    "unfreeze_particle",
]


def __dir__() -> list[str]:
    return __all__


N2, N3, C1, C2 = 1000023, 1000025, 1000024, 1000037
STOPS = (1000006, 2000006)

#: ``ProtoModel.hasAntiParticle``: particles the reference treats as self-conjugate
SELF_CONJUGATE = frozenset({1000021, 1000022, 1000023, 1000025, 1000035, 1000012, 1000014, 1000016})


@dataclass(frozen=True)
class MoveSettings:
    """Step sizes and constraints of the moves (defaults: the reference's).

    Attributes:
        max_mass: GeV, upper end of every mass (``ProtoModel.maxMass``).
        lsp_min_mass: GeV, lower end of the LSP mass (``randomlyChangeMasses``).
        mass_step: GeV, half-width of the uniform mass step (``randomlyChangeModel(dx=200)``).
        mass_step_growth: the step grows by this factor after each illegal draw, up to
            ``mass_attempts`` draws (``randomlyChangeMassOf``).
        mass_attempts: draws before a mass move gives up (``randomlyChangeMassOf``: 20).
        walls: (pdg, GeV) minimal masses (``Manipulator.walledpids``).
        canonical_order: (lighter, heavier) pairs whose order is kept (``canonicalOrder``).
        merger_candidates: groups of particles that may be merged (``mergerCandidates``).
        merge_dm: GeV, particles closer than this are merged (``onestep``:
            ``simplifyModel(dm=200.)``).
        offshell_probability: chance that an unfrozen or moved chi20 / chi1+ goes off-shell
            (``unFreezeParticle``, ``randomlyChangeMassOf``: 0.1).
        degenerate_probability: chance that moving chi20 (chi1+) sets chi1+ (chi20) to about the
            same mass (``randomlyChangeMasses``: 0.1; doubled when off-shell).
        degenerate_spread: relative spread of that mass (``uniform(.99, 1.01)``).
        corridor: (max stop mass, lower, upper mass gap) of the top corridor that stops avoid
            (``inCorridorRegion``: 280, 150, 200 GeV).
        br_step: a group's branching ratio moves by up to ``br_step / sqrt(n_groups)``
            (``randomlyChangeBranchingOfPid``: 0.1).
        br_zero_probability: chance to switch a channel off (``zeroBRprob`` 0.05).
        br_single_probability: chance to keep a single channel (``singleBRprob`` 0.05).
        ssm_sigma: log-normal width of a one-pair multiplier step (``ssmSigma`` 0.1).
        ssm_particle_sigma: log-normal width of the common step of all multipliers of one
            particle (the reference's ``uniform(.8, 1.2)`` has this standard deviation).
        ssm_zero_probability, ssm_one_probability, ssm_copy_probability: chances to set one
            pair's multiplier to 0 (the reference uses 1e-5), to 1, or to another pair's value
            (``randomlyChangeSSOfOneParticle``: 0.1 each).
        max_ssm: largest multiplier (``changeSSM``: 1e4).
        attempts: draws of a new particle's mass before giving up (stop corridor).
    """

    max_mass: float = 2400.0
    lsp_min_mass: float = 10.0
    mass_step: float = 200.0
    mass_step_growth: float = 1.2
    mass_attempts: int = 20
    walls: tuple[tuple[int, float], ...] = (
        (1000001, 310.0), (1000002, 310.0), (1000003, 310.0), (1000004, 310.0),
        (1000021, 310.0), (1000023, 20.0), (1000024, 100.0), (1000037, 100.0),
        (1000025, 20.0),
    )  # fmt: skip
    canonical_order: tuple[tuple[int, int], ...] = (
        (1000006, 2000006), (1000005, 2000005), (1000023, 1000025), (1000024, 1000037),
        (1000025, 1000035), (1000001, 1000002), (1000001, 1000003),
    )  # fmt: skip
    merger_candidates: tuple[tuple[int, ...], ...] = (
        (1000001, 1000002, 1000003, 1000004), (1000005, 2000005), (1000006, 2000006),
        (1000024, 1000037), (1000023, 1000025),
    )  # fmt: skip
    merge_dm: float = 200.0
    offshell_probability: float = 0.1
    degenerate_probability: float = 0.1
    degenerate_spread: float = 0.01
    corridor: tuple[float, float, float] = (280.0, 150.0, 200.0)
    br_step: float = 0.1
    br_zero_probability: float = 0.05
    br_single_probability: float = 0.05
    ssm_sigma: float = 0.1
    ssm_particle_sigma: float = 0.4 / math.sqrt(12.0)
    ssm_zero_probability: float = 0.1
    ssm_one_probability: float = 0.1
    ssm_copy_probability: float = 0.1
    max_ssm: float = 1e4
    attempts: int = 20

    def wall(self, pdg: int) -> float:
        """Minimal mass of a particle (GeV; 0 when it has no wall)."""
        return dict(self.walls).get(pdg, 0.0)


@dataclass(frozen=True)
class MoveProbabilities:
    """How :func:`random_move` picks its moves (``Manipulator.randomlyChangeModel`` defaults).

    Attributes:
        unfreeze_sigma: width of the Gaussian deciding on an unfreeze (``sigmaUnFreeze``):
            unfreeze when ``N(1 - unfreeze_offset / max(1, T_L + 1), sigma)`` reaches the fraction
            of template particles already active (``randomlyUnfreezeParticle``); always when only
            the LSP is active.
        unfreeze_offset: see above (0.7).
        branchings: chance of a branching-ratio move (``probBR``).
        ssm: chance of a multiplier move (``probSS``).
        ssm_single: of those, the share that moves all multipliers of one particle
            (``probSSingle``); the rest move one production pair.
        freeze_sigma: width of the Gaussian deciding on a freeze (``sigmaFreeze``): freeze when
            ``N(freeze_offset / max(1, T_L + 1), sigma)`` stays below the active fraction
            (``randomlyFreezeParticle``), never with fewer than three active particles.
        freeze_offset: see above (0.4).
        freeze_most_massive: of the freezes, the share that freezes the heaviest particle
            (``probMassive``).
        mass: chance of a mass move when another move changed the model (``probMass``); when
            none did, a mass move is made.
        lifetime: chance of a lifetime move (:func:`change_lifetime`; 0, the reference
            builder's walk, has none: every particle decays promptly).
    """

    unfreeze_sigma: float = 0.5
    unfreeze_offset: float = 0.7
    branchings: float = 0.2
    ssm: float = 0.25
    ssm_single: float = 0.8
    freeze_sigma: float = 0.5
    freeze_offset: float = 0.4
    freeze_most_massive: float = 0.3
    mass: float = 0.05
    lifetime: float = 0.0


@dataclass(frozen=True)
class MoveRecord:
    """What a move did.

    Attributes:
        move: name (``unfreeze``, ``freeze``, ``mass``, ``branchings``, ``ssm``, ``merge``,
            ``freeze_unused``, ``legalize``; a :func:`random_move` joins the names of its parts
            with ``+``; ``noop`` when nothing changed).
        changed: whether the model changed.
        description: human-readable summary (or why nothing was done).
        particles: PDG ids touched.
        parts: the records of the parts of a composite move.
    """

    move: str
    changed: bool
    description: str
    particles: tuple[int, ...] = ()
    parts: tuple[MoveRecord, ...] = field(default=())


def _noop(move: str, why: str) -> MoveRecord:
    return MoveRecord(move, False, why)


def _round(mass: float) -> float:
    return round(float(mass), 1)


def _in_corridor(m_stop: float, m_lsp: float, corridor: tuple[float, float, float]) -> bool:
    """``Manipulator.inCorridorRegion``: a light stop about a top mass above the LSP."""
    top, low, high = corridor
    return m_stop <= top and low < m_stop - m_lsp < high


def _bounds(draft: Draft, pdg: int, settings: MoveSettings) -> tuple[float, float]:
    """Open mass interval of a particle (``randomlyChangeMasses``, ``unFreezeParticle``)."""
    lsp = draft.lsp
    if pdg == lsp:
        others = [m for p, m in draft.masses.items() if p != lsp]
        low, high = settings.lsp_min_mass, min(others) if others else settings.max_mass
    else:
        low, high = draft.masses[lsp], settings.max_mass
        for light, heavy in settings.canonical_order:
            if pdg == light and heavy in draft.masses:
                high = min(high, draft.masses[heavy])
            elif pdg == heavy and light in draft.masses:
                low = max(low, draft.masses[light])
    return max(low, settings.wall(pdg)), high


def _fed(draft: Draft) -> list[int]:
    """Particles with at least one open decay channel."""
    return [p for p in draft.non_lsp() if draft.open_channels(p)]


def _mass_allowed(
    draft: Draft, pdg: int, mass: float, settings: MoveSettings, fed: list[int]
) -> bool:
    """Outside the stop corridor, and no particle of ``fed`` left without an open channel (the
    reference would freeze it; a mass move should not delete particles)."""
    if pdg in STOPS and _in_corridor(mass, draft.masses[draft.lsp], settings.corridor):
        return False
    if pdg == draft.lsp:
        for stop in STOPS:
            if stop in draft.masses and _in_corridor(draft.masses[stop], mass, settings.corridor):
                return False
    old = draft.masses.get(pdg)
    draft.masses[pdg] = mass
    try:
        return all(draft.open_channels(p) for p in fed)
    finally:
        if old is None:
            del draft.masses[pdg]
        else:
            draft.masses[pdg] = old


def _legalize(
    draft: Draft, rng: np.random.Generator, settings: MoveSettings, *, rescale: bool = True
) -> list[str]:
    """``Manipulator.removeIllegalBRs(rescaleSSMs=True)``: drop closed channels and renormalize
    (multipliers rescaled so that sigma x BR of the kept channels stays); draw new branchings
    for a particle left without channels, freeze it when none is open. Returns notes."""
    notes: list[str] = []
    changed = True
    while changed:
        changed = False
        for pdg in sorted(draft.non_lsp(), key=lambda p: (draft.masses[p], p)):
            table = draft.decays.get(pdg, {})
            opened = set(draft.open_channels(pdg))
            kept = {c: br for c, br in table.items() if c in opened and br > 0}
            total = sum(kept.values())
            if len(kept) == len(table) and abs(total - 1.0) < 1e-9:
                continue
            if total > 0:
                draft.decays[pdg] = {c: br / total for c, br in kept.items()}
                if rescale and total < 1.0 - 1e-9:
                    draft.rescale_multipliers(pdg, total, settings.max_ssm)
                notes.append(f"renormalized {pdg} (kept BR {total:.3f})")
            elif opened:
                init_branchings(draft, pdg, rng)
                notes.append(f"new branchings for {pdg}")
            else:
                draft.remove(pdg)
                notes.append(f"froze {pdg} (no open channel)")
                changed = True
                break
    return notes


def _finish(
    draft: Draft, move: str, description: str, particles: Iterable[int]
) -> tuple[Protomodel, MoveRecord]:
    touched = tuple(sorted({abs(int(p)) for p in particles}))
    return draft.build(), MoveRecord(move, True, description, touched)


def _choice(rng: np.random.Generator, items: list) -> Any:
    return items[int(rng.integers(len(items)))]


# -- public helpers ---------------------------------------------------------------------------
def lsp_only(mass: float) -> Protomodel:
    """The starting point of a walk: the LSP alone (mass rounded to 0.1 GeV)."""
    return Protomodel(masses={LSP: _round(mass)}, decays={}, name="protomodel")


def open_channels(model: Protomodel, pdg: int, template: Template) -> list[Channel]:
    """Template channels of ``pdg`` that are open in ``model`` (see the module notes)."""
    return [c.channel for c in Draft(model, template_index(template)).open_channels(pdg)]


def legalize(
    model: Protomodel,
    rng: np.random.Generator,
    template: Template,
    *,
    settings: MoveSettings | None = None,
) -> tuple[Protomodel, MoveRecord]:
    """Bring a model to the template's rules: closed or unknown channels dropped (multipliers
    rescaled), particles without channels given new ones or frozen."""
    draft = Draft(model, template_index(template))
    notes = _legalize(draft, rng, settings or MoveSettings())
    if not notes:
        return model, _noop("legalize", "already legal")
    return _finish(draft, "legalize", "; ".join(notes), draft.masses)


# -- moves ------------------------------------------------------------------------------------
def unfreeze_particle(
    model: Protomodel,
    rng: np.random.Generator,
    template: Template,
    *,
    pdg: int | None = None,
    settings: MoveSettings | None = None,
) -> tuple[Protomodel, MoveRecord]:
    """Add a template particle with a random mass above the LSP and random branchings
    (``randomlyUnfreezeParticle`` / ``unFreezeParticle``); its multipliers start at 1.

    A heavier partner whose lighter state is frozen is replaced by the lighter state
    (canonical order); chi20 / chi1+ start off-shell with probability 0.1; stops avoid the top
    corridor.
    """
    settings = settings or MoveSettings()
    draft = Draft(model, template_index(template))
    frozen = [p for p in draft.index.particles if p not in draft.masses and p != LSP]
    if pdg is None:
        if not frozen:
            return model, _noop("unfreeze", "every template particle is active")
        pdg = int(_choice(rng, frozen))
        for light, heavy in settings.canonical_order:
            if pdg == heavy and light in frozen:
                pdg = light
                break
    elif pdg not in frozen:
        return model, _noop("unfreeze", f"{pdg} is active or not a template particle")
    low, high = _bounds(draft, pdg, settings)
    if pdg in (N2, C1) and rng.uniform() < settings.offshell_probability:
        m_lsp = draft.masses[draft.lsp]
        offshell_high = min(high, m_lsp + SM_MASSES[23 if pdg == N2 else 24])
        if offshell_high > low + 0.2:
            high = offshell_high
    if high - low < 0.2:
        return model, _noop("unfreeze", f"no room for {pdg} between {low} and {high} GeV")
    mass = None
    fed = _fed(draft)
    for _ in range(settings.attempts):
        trial = _round(rng.uniform(low, high))
        if low < trial < high and _mass_allowed(draft, pdg, trial, settings, fed):
            mass = trial
            break
    if mass is None:
        return model, _noop("unfreeze", f"no legal mass for {pdg} in ({low}, {high}) GeV")
    draft.masses[pdg] = mass
    if not init_branchings(draft, pdg, rng):
        return model, _noop("unfreeze", f"{pdg} at {mass} GeV would have no open decay channel")
    return _finish(draft, "unfreeze", f"unfreeze {pdg} at {mass} GeV", [pdg])


def _freeze_refusal(draft: Draft, pdg: int, settings: MoveSettings) -> str | None:
    """Why ``freezeParticle(force=False)`` would refuse, or None."""
    if pdg not in draft.masses:
        return f"{pdg} is not active"
    if pdg == draft.lsp:
        return "the LSP stays"
    if len(draft.non_lsp()) < 2:
        return "at least one particle besides the LSP stays"
    for light, heavy in settings.canonical_order:
        if pdg == light and heavy in draft.masses:
            return f"{heavy} is active: freeze it before {pdg} (canonical order)"
    return None


def freeze_particle(
    model: Protomodel,
    rng: np.random.Generator,
    template: Template,
    *,
    pdg: int | None = None,
    most_massive: bool = False,
    force: bool = False,
    settings: MoveSettings | None = None,
) -> tuple[Protomodel, MoveRecord]:
    """Remove a particle (``randomlyFreezeParticle`` / ``freezeMostMassiveParticle`` /
    ``freezeParticle``): its mass, decays and productions go; decays into it are dropped and
    the mothers' other channels renormalized with their multipliers rescaled so that their
    sigma x BR stays (``removeIllegalBRs(rescaleSSMs=True)``); a mother left without channels
    gets new branchings over its open channels, or is frozen too when none is open.

    Without ``force`` the LSP, the last particle besides the LSP and the lighter state of an
    active canonical pair stay.
    """
    settings = settings or MoveSettings()
    draft = Draft(model, template_index(template))
    candidates = draft.non_lsp()
    if pdg is None:
        if len(candidates) < 2:
            return model, _noop("freeze", "at least one particle besides the LSP stays")
        if most_massive:
            pdg = max(candidates, key=lambda p: (draft.masses[p], p))
        else:
            pdg = int(_choice(rng, candidates))
    why = _freeze_refusal(draft, pdg, settings)
    if why is not None and not (force and pdg in candidates):
        return model, _noop("freeze", why)
    draft.remove(pdg)
    notes = _legalize(draft, rng, settings)
    text = f"freeze {pdg}" + (f" ({'; '.join(notes)})" if notes else "")
    return _finish(draft, "freeze", text, [pdg])


def freeze_unused(
    model: Protomodel,
    rng: np.random.Generator,
    template: Template,
    keep: Collection[int],
    *,
    settings: MoveSettings | None = None,
) -> tuple[Protomodel, MoveRecord]:
    """Freeze the particles that take no part in the best combination
    (``freezePidsNotInBestCombo``): heaviest first, with the rules of :func:`freeze_particle`.
    An empty ``keep`` (no combination) freezes nothing."""
    settings = settings or MoveSettings()
    wanted = {abs(int(p)) for p in keep}
    if not wanted:
        return model, _noop("freeze_unused", "no best combination")
    draft = Draft(model, template_index(template))
    frozen = []
    notes: list[str] = []
    for pdg in sorted(draft.non_lsp(), key=lambda p: (-draft.masses[p], p)):
        if pdg in wanted or pdg not in draft.masses:
            continue
        if _freeze_refusal(draft, pdg, settings) is None:
            draft.remove(pdg)
            notes += _legalize(draft, rng, settings)
            frozen.append(pdg)
    if not frozen:
        return model, _noop("freeze_unused", "every active particle is used or must stay")
    text = "freeze unused " + ", ".join(map(str, frozen))
    return _finish(
        draft, "freeze_unused", text + (f" ({'; '.join(notes)})" if notes else ""), frozen
    )


def change_mass(
    model: Protomodel,
    rng: np.random.Generator,
    template: Template,
    *,
    pdg: int | None = None,
    dx: float | None = None,
    settings: MoveSettings | None = None,
) -> tuple[Protomodel, MoveRecord]:
    """Move the mass of one active particle, the LSP included (``randomlyChangeMasses`` /
    ``randomlyChangeMassOf``): uniform step of half-width ``dx`` (default
    ``settings.mass_step``), redrawn with a 1.2 times wider step while illegal (outside the
    interval set by the LSP, the lightest other particle for the LSP, canonical partners, walls
    and ``max_mass``, in the stop corridor, or leaving a particle without open channel), at most
    20 times. chi20 / chi1+ jump off-shell
    with probability 0.1, and with probability 0.1 pull their partner (chi1+ / chi20) to about
    the same mass. Channels that close are dropped (``removeIllegalBRs(rescaleSSMs=True)``).
    """
    settings = settings or MoveSettings()
    draft = Draft(model, template_index(template))
    if pdg is None:
        pdg = int(_choice(rng, sorted(draft.masses)))
    elif pdg not in draft.masses:
        return model, _noop("mass", f"{pdg} is not active")
    low, high = _bounds(draft, pdg, settings)
    old = draft.masses[pdg]
    was_offshell = draft.offshell(pdg)
    fed = _fed(draft)
    mass = None
    if pdg in (N2, C1) and not was_offshell and rng.uniform() < settings.offshell_probability:
        m_lsp = draft.masses[draft.lsp]
        offshell_high = min(high, m_lsp + SM_MASSES[23 if pdg == N2 else 24])
        if offshell_high > low + 0.2:
            trial = _round(rng.uniform(low, offshell_high))
            if low < trial < offshell_high and _mass_allowed(draft, pdg, trial, settings, fed):
                mass = trial
    if mass is None:
        step = settings.mass_step if dx is None else float(dx)
        for _ in range(settings.mass_attempts):
            trial = _round(old + rng.uniform(-step, step))
            if low < trial < high and _mass_allowed(draft, pdg, trial, settings, fed):
                mass = trial
                break
            step *= settings.mass_step_growth
    if mass is None:
        return model, _noop("mass", f"no legal mass for {pdg} near {old} GeV")
    draft.masses[pdg] = mass
    touched = [pdg]
    text = f"mass of {pdg}: {old} -> {mass} GeV"
    if pdg in (N2, C1) and draft.offshell(pdg) != was_offshell:
        init_branchings(draft, pdg, rng)
    if pdg in (N2, C1):
        u = rng.uniform(0.0, 0.5) if draft.offshell(pdg) else rng.uniform()
        if u < settings.degenerate_probability:
            other = C1 if pdg == N2 else N2
            spread = settings.degenerate_spread
            partner = _round(mass * rng.uniform(1.0 - spread, 1.0 + spread))
            was_frozen = other not in draft.masses
            other_offshell = draft.offshell(other)
            low2, high2 = _bounds(draft, other, settings)
            if low2 < partner < high2 and _mass_allowed(draft, other, partner, settings, fed):
                draft.masses[other] = partner
                if was_frozen or draft.offshell(other) != other_offshell:
                    if not init_branchings(draft, other, rng) and was_frozen:
                        del draft.masses[other]
                if other in draft.masses:
                    touched.append(other)
                    text += f"; {other} follows to {partner} GeV"
    notes = _legalize(draft, rng, settings)
    if notes:
        text += f" ({'; '.join(notes)})"
    if mass == old and len(touched) == 1 and not notes:
        return model, _noop("mass", f"mass of {pdg} stays at {old} GeV after rounding")
    return _finish(draft, "mass", text, touched)


def change_branchings(
    model: Protomodel,
    rng: np.random.Generator,
    template: Template,
    *,
    pdg: int | None = None,
    settings: MoveSettings | None = None,
) -> tuple[Protomodel, MoveRecord]:
    """Change the branching ratios of one particle with at least two open channel groups
    (``randomlyChangeBranchings`` / ``randomlyChangeBranchingOfPid``): with probability 0.05 keep
    one random group only; otherwise each open group's ratio moves uniformly by up to
    ``0.1 / sqrt(n_groups)`` (closed groups open that way), an open one is switched off with
    probability 0.05; then renormalize."""
    settings = settings or MoveSettings()
    draft = Draft(model, template_index(template))
    candidates = [p for p in draft.non_lsp() if len(channel_groups(draft.open_channels(p))) >= 2]
    if pdg is None:
        if not candidates:
            return model, _noop("branchings", "no particle has two open channels")
        pdg = int(_choice(rng, candidates))
    elif pdg not in candidates:
        return model, _noop("branchings", f"{pdg} has fewer than two open channels")
    grouped = channel_groups(draft.open_channels(pdg))
    table = draft.decays.get(pdg, {})
    if rng.uniform() < settings.br_single_probability:
        group = grouped[int(rng.integers(len(grouped)))]
        draft.set_groups(pdg, [(group, 1.0)])
        return _finish(draft, "branchings", f"{pdg} decays only via {group[0].name}", [pdg])
    dx = settings.br_step / math.sqrt(len(grouped))
    values = []
    for group in grouped:
        old = sum(table.get(c, 0.0) for c in group)
        if old > 0 and rng.uniform() < settings.br_zero_probability:
            values.append((group, 0.0))
            continue
        values.append((group, float(rng.uniform(max(0.0, old - dx), min(old + dx, 1.0)))))
    if sum(v for _, v in values) <= 0:
        values = [(grouped[int(rng.integers(len(grouped)))], 1.0)]
    draft.set_groups(pdg, values)
    return _finish(draft, "branchings", f"branchings of {pdg} changed", [pdg])


def _conjugate(pair: tuple[int, int]) -> tuple[int, int]:
    a, b = (p if abs(p) in SELF_CONJUGATE else -p for p in pair)
    return (a, b) if a <= b else (b, a)


def change_multipliers(
    model: Protomodel,
    rng: np.random.Generator,
    template: Template,
    *,
    single_probability: float = 0.8,
    settings: MoveSettings | None = None,
) -> tuple[Protomodel, MoveRecord]:
    """Change signal-strength multipliers (``randomlyChangeSignalStrengths``).

    With ``single_probability`` (``randomlyChangeSSOfOneParticle``) one particle is picked and,
    with probability 0.1 each, one random production pair's multiplier is set to 0, to 1, or
    to another pair's value; otherwise all multipliers of that particle's productions are
    scaled by one log-normal factor. Else one production pair's multiplier takes a log-normal
    step (width ``ssm_sigma``; from 0 it restarts at ``|N(0.1, 0.1)|``). A pair and its charge
    conjugate move together (``changeSSM(recursive=True)``). Capped at ``max_ssm``.
    """
    settings = settings or MoveSettings()
    draft = Draft(model, template_index(template))
    pairs = draft.pairs()
    if not pairs:
        return model, _noop("ssm", "no production channel")
    pair_set = set(pairs)

    def assign(pair: tuple[int, int], value: float) -> list[tuple[int, int]]:
        value = min(settings.max_ssm, max(0.0, value))
        conj = _conjugate(pair)
        targets = [pair] + ([conj] if conj != pair and conj in pair_set else [])
        for target in targets:
            draft.ssm[target] = value
        return targets

    if rng.uniform() < single_probability:
        particles = draft.non_lsp()
        if not particles:
            return model, _noop("ssm", "no particle besides the LSP")
        pdg = int(_choice(rng, particles))
        u = rng.uniform()
        if u > 1.0 - settings.ssm_zero_probability:
            pair = _choice(rng, pairs)
            assign(pair, 0.0)
            return _finish(draft, "ssm", f"multiplier of {pair} set to 0", pair)
        if u < settings.ssm_one_probability:
            pair = _choice(rng, pairs)
            assign(pair, 1.0)
            return _finish(draft, "ssm", f"multiplier of {pair} set to 1", pair)
        if u < settings.ssm_one_probability + settings.ssm_copy_probability:
            pair = _choice(rng, pairs)
            source = _choice(rng, pairs)
            value = draft.multiplier(source)
            assign(pair, value)
            return _finish(draft, "ssm", f"multiplier of {pair} set to {value:.3g}", pair)
        factor = math.exp(rng.normal(0.0, settings.ssm_particle_sigma))
        own = [p for p in pairs if pdg in (abs(p[0]), abs(p[1]))]
        if not own:
            return model, _noop("ssm", f"{pdg} has no production channel")
        for pair in own:
            draft.ssm[pair] = min(settings.max_ssm, draft.multiplier(pair) * factor)
        return _finish(draft, "ssm", f"multipliers of {pdg} scaled by {factor:.3f}", [pdg])
    pair = _choice(rng, pairs)
    old = draft.multiplier(pair)
    if old > 0:
        new = old * math.exp(rng.normal(0.0, settings.ssm_sigma))
    else:
        new = abs(rng.normal(0.1, 0.1))
    assign(pair, new)
    return _finish(draft, "ssm", f"multiplier of {pair}: {old:.3g} -> {new:.3g}", pair)


def _sigma13(pair: tuple[int, int], masses: dict[int, float], tables: XsecTables) -> float | None:
    value = table_xsec(pair, masses, tables).get(13.0)
    return value if value is not None and value > 0 else None


def _merge(draft: Draft, light: int, heavy: int, tables: XsecTables, cap: float) -> None:
    """``Manipulator.merge``: ``heavy`` goes into ``light`` at the mean mass."""
    index = draft.index
    old_masses = dict(draft.masses)
    old_pairs = draft.pairs()
    old_sigma = {p: _sigma13(p, old_masses, tables) for p in old_pairs}
    old_ssm = {p: draft.multiplier(p) for p in old_pairs}
    # decays of the merged particle: both sets, mapped onto its own channels, renormalized
    table = dict(draft.decays.get(light, {}))
    for channel, br in draft.decays.get(heavy, {}).items():
        target = index.by_key.get(light, {}).get(channel_key(channel.daughter, channel.sm))
        if target is not None and abs(target.daughter) != light:
            table[target] = table.get(target, 0.0) + br
    total = sum(table.values())
    draft.decays[light] = {c: br / total for c, br in table.items()} if total > 0 else {}
    # decays into the heavy state now go into the light one
    for mother, channels in draft.decays.items():
        if mother in (light, heavy):
            continue
        for channel in [c for c in channels if abs(c.daughter) == heavy]:
            br = channels.pop(channel)
            target = index.by_key.get(mother, {}).get(channel_key(light, channel.sm))
            if target is not None:
                channels[target] = channels.get(target, 0.0) + br
    draft.masses[light] = _round(0.5 * (old_masses[light] + old_masses[heavy]))
    draft.remove(heavy)

    # multipliers: the merged productions carry the sum of the old cross sections
    def substitute(pair: tuple[int, int]) -> tuple[int, int]:
        a, b = (light if p == heavy else -light if p == -heavy else p for p in pair)
        return (a, b) if a <= b else (b, a)

    new_pairs = set(draft.pairs())
    sums: dict[tuple[int, int], float] = {}
    for pair in old_pairs:
        if not {abs(pair[0]), abs(pair[1])} & {light, heavy}:
            continue
        target = substitute(pair)
        if target in new_pairs and old_sigma[pair] is not None:
            sums[target] = sums.get(target, 0.0) + old_ssm[pair] * old_sigma[pair]
    for target, sigma in sorted(sums.items()):
        reference = _sigma13(target, draft.masses, tables)
        if reference is not None:
            draft.ssm[target] = min(cap, sigma / reference)


def merge_particles(
    model: Protomodel,
    rng: np.random.Generator,
    template: Template,
    *,
    dm: float | None = None,
    tables: XsecTables | None = None,
    settings: MoveSettings | None = None,
) -> tuple[Protomodel, MoveRecord]:
    """Merge particles of one merger group closer than ``dm`` GeV (default
    ``settings.merge_dm`` = 200; ``simplifyModel`` / ``mergeParticles`` / ``merge``), the
    closest pair first, until none is left: the lighter PDG id (which must be the lighter
    state) takes the mean mass, the decays of both (renormalized) and the decays into both; its
    multipliers are set so that its production cross sections (13 TeV reference tables) are
    the sums of the old ones. Stops are not merged into the top corridor."""
    settings = settings or MoveSettings()
    dm = settings.merge_dm if dm is None else float(dm)
    draft = Draft(model, template_index(template))
    merged: list[tuple[int, int]] = []
    while True:
        best: tuple[float, int, int] | None = None
        for group in settings.merger_candidates:
            for a, b in itertools.combinations(sorted(group), 2):
                if a not in draft.masses or b not in draft.masses:
                    continue
                gap = abs(draft.masses[a] - draft.masses[b])
                if gap >= dm or draft.masses[a] > draft.masses[b]:
                    continue
                mean = _round(0.5 * (draft.masses[a] + draft.masses[b]))
                if a in STOPS and _in_corridor(mean, draft.masses[draft.lsp], settings.corridor):
                    continue
                if best is None or (gap, a, b) < best:
                    best = (gap, a, b)
        if best is None:
            break
        if tables is None:
            tables = load_tables()
        _merge(draft, best[1], best[2], tables, settings.max_ssm)
        merged.append((best[1], best[2]))
    if not merged:
        return model, _noop("merge", f"no mergeable pair closer than {dm} GeV")
    notes = _legalize(draft, rng, settings)
    text = "merge " + ", ".join(f"{b} into {a}" for a, b in merged)
    text += f" ({'; '.join(notes)})" if notes else ""
    return _finish(draft, "merge", text, [p for pair in merged for p in pair])


#: GeV, log-uniform range of the widths a lifetime move draws (c tau from 2 mm to 2 km)
LONG_LIVED_WIDTHS = (1e-19, 1e-13)


def change_lifetime(
    model: Protomodel, rng: np.random.Generator, template: Template
) -> tuple[Protomodel, MoveRecord]:
    """Make one decaying particle long-lived (a total width drawn log-uniformly in
    :data:`LONG_LIVED_WIDTHS`) or, if it is long-lived, prompt again (half of the time)."""
    draft = Draft(model, template_index(template))
    candidates = [p for p in draft.non_lsp() if draft.decays.get(p)]
    if not candidates:
        return model, _noop("lifetime", "no decaying particle")
    pdg = int(_choice(rng, candidates))
    if pdg in draft.widths and rng.uniform() < 0.5:
        del draft.widths[pdg]
        what = f"{NAMES.get(pdg, pdg)} prompt again"
    else:
        low, high = np.log10(LONG_LIVED_WIDTHS)
        draft.widths[pdg] = float(10.0 ** rng.uniform(low, high))
        what = f"{NAMES.get(pdg, pdg)} long-lived, width {draft.widths[pdg]:.3g} GeV"
    return draft.build(), MoveRecord("lifetime", True, what, (pdg,))


def random_move(
    model: Protomodel,
    rng: np.random.Generator,
    template: Template,
    probabilities: MoveProbabilities | None = None,
    *,
    settings: MoveSettings | None = None,
    t_l: float | None = None,
) -> tuple[Protomodel, MoveRecord]:
    """One proposal of the walk (``Manipulator.randomlyChangeModel``): in turn maybe unfreeze,
    change branchings, change multipliers, freeze, then change a mass (always when nothing else
    changed). ``t_l`` is the current model's T_L (a high T_L makes unfreezing and freezing
    rarer). Returns the composite record (its ``parts`` are the moves made)."""
    probabilities = probabilities or MoveProbabilities()
    settings = settings or MoveSettings()
    n_total = max(1, len(template.particles))
    denom = 1.0
    if t_l is not None and math.isfinite(t_l):
        denom = max(1.0, t_l + 1.0)
    parts: list[MoveRecord] = []
    current = model

    def apply(result: tuple[Protomodel, MoveRecord]) -> None:
        nonlocal current
        current, record = result
        parts.append(record)

    n_active = len(current.masses)
    if (
        n_active <= 1
        or rng.normal(1.0 - probabilities.unfreeze_offset / denom, probabilities.unfreeze_sigma)
        >= n_active / n_total
    ):
        apply(unfreeze_particle(current, rng, template, settings=settings))
    if rng.uniform() < probabilities.branchings:
        apply(change_branchings(current, rng, template, settings=settings))
    if rng.uniform() < probabilities.ssm:
        apply(
            change_multipliers(
                current,
                rng,
                template,
                single_probability=probabilities.ssm_single,
                settings=settings,
            )
        )
    n_active = len(current.masses)
    if (
        n_active > 2
        and rng.normal(probabilities.freeze_offset / denom, probabilities.freeze_sigma)
        <= n_active / n_total
    ):
        most = bool(rng.uniform() < probabilities.freeze_most_massive)
        apply(freeze_particle(current, rng, template, most_massive=most, settings=settings))
    if probabilities.lifetime > 0 and rng.uniform() < probabilities.lifetime:
        apply(change_lifetime(current, rng, template))
    if not any(p.changed for p in parts) or rng.uniform() < probabilities.mass:
        apply(change_mass(current, rng, template, settings=settings))
    done = [p for p in parts if p.changed]
    if not done:
        return model, MoveRecord(
            "noop", False, "; ".join(p.description for p in parts), (), tuple(parts)
        )
    particles = sorted({q for p in done for q in p.particles})
    return current, MoveRecord(
        "+".join(p.move for p in done),
        True,
        "; ".join(p.description for p in done),
        tuple(particles),
        tuple(parts),
    )


def refine_settings(settings: MoveSettings, mass_step: float) -> MoveSettings:
    """Fine steps for the end of a walk (:func:`refine_move`): masses by up to ``mass_step``
    GeV, multipliers and branching ratios by a quarter of their usual steps, none of the
    jumps (a multiplier to 0, 1 or another's value; a channel switched off; off-shell or
    degenerate partners)."""
    return replace(
        settings, mass_step=mass_step, ssm_sigma=settings.ssm_sigma / 4,
        ssm_particle_sigma=settings.ssm_particle_sigma / 4, br_step=settings.br_step / 4,
        ssm_zero_probability=0.0, ssm_one_probability=0.0, ssm_copy_probability=0.0,
        br_zero_probability=0.0, br_single_probability=0.0, offshell_probability=0.0,
        degenerate_probability=0.0,
    )


def refine_move(
    model: Protomodel,
    rng: np.random.Generator,
    template: Template,
    *,
    settings: MoveSettings,
) -> tuple[Protomodel, MoveRecord]:
    """One small change of the continuous parameters, the particle content kept: a mass
    (probability 1/2), the multipliers (3/10) or the branching ratios (1/5), with the steps
    of ``settings`` (see :func:`refine_settings`). Not in the reference builder: the walk's
    final local search (``WalkerConfig.refine_from``)."""
    u = rng.uniform()
    if u < 0.5:
        return change_mass(model, rng, template, settings=settings)
    if u < 0.8:
        return change_multipliers(model, rng, template, single_probability=0.5,
                                  settings=settings)
    return change_branchings(model, rng, template, settings=settings)
