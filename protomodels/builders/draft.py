"""Working copy of a protomodel for the moves, and the kinematics of its decay channels.

A channel of the template is *open* when its BSM daughter is active and the mother is heavier
than the daughters, SM masses included (``ProtoModel.getOpenChannels`` of the reference builder,
SModelS/protomodels ``develop``); the three-body channels of chi20 / chi1+ are open only off
shell (``Manipulator.checkIfOffshell``), the gluino's (~g -> chi q q) always. Channels
sharing a template placeholder form a group with one branching ratio, shared equally.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from protomodels.theory.particles import Channel, Template
from protomodels.theory.protomodel import Decay, Protomodel
from protomodels.theory.xsec import production_channels

__all__ = [
    "OFFSHELL_WEIGHTS",
    "SM_MASSES",
    "Draft",
    "DraftChannel",
    "channel_groups",
    "channel_key",
    "init_branchings",
    "template_index",
]


def __dir__() -> list[str]:
    return __all__


N2, C1 = 1000023, 1000024

#: GeV; SM masses for the kinematic check (``ProtoModel.getOpenChannels``). W and Z carry the
#: off-shell thresholds of ``Manipulator.checkIfOffshell`` (mass + width) so that the two agree.
SM_MASSES: dict[int, float] = {
    6: 173.0, 24: 80.377 + 0.012, 23: 91.1876 + 0.0021, 25: 125.0, 15: 1.77, 4: 1.2, 5: 5.0,
}  # fmt: skip

#: ``Manipulator.initBranchings``: branching weights of an off-shell chi20 (Z*) and chi1+ (W*)
#: per SM content of the three-body channel (per channel; lepton groups have three channels).
OFFSHELL_WEIGHTS: dict[tuple[int, frozenset[int]], float] = {
    (N2, frozenset({2})): 12.0, (N2, frozenset({5})): 3.0, (N2, frozenset({11})): 1.0,
    (N2, frozenset({13})): 1.0, (N2, frozenset({15})): 1.0,
    (C1, frozenset({1, 2})): 6.0, (C1, frozenset({11, 12})): 1.0, (C1, frozenset({13, 14})): 1.0,
    (C1, frozenset({15, 16})): 1.0,
}  # fmt: skip

# -- template index ---------------------------------------------------------------------------
Key = tuple[int, tuple[int, ...]]


def channel_key(daughter: int, sm: Iterable[int]) -> Key:
    """|PDG| content of a channel (the reference keys channels so: a channel and its
    charge conjugate, or a Majorana daughter of either sign, are one)."""
    return abs(daughter), tuple(sorted(abs(s) for s in sm))


class DraftChannel:
    """A decay channel inside the moves (hashed by identity: one object per channel)."""

    __slots__ = ("channel", "daughter", "mother", "name", "rank", "sm", "sm_mass")

    def __init__(self, channel: Channel, rank: int) -> None:
        self.channel = channel
        self.mother = channel.mother
        self.daughter = channel.daughter
        self.sm = tuple(channel.sm)
        self.name = channel.name
        self.rank = rank
        self.sm_mass = sum(SM_MASSES.get(abs(s), 0.0) for s in channel.sm)


class _Index:
    """The template's channels per mother, deduplicated by |PDG| content, with their groups."""

    def __init__(self, template: Template) -> None:
        self.particles = tuple(template.particles)
        self.channels: dict[int, tuple[DraftChannel, ...]] = {}
        self.by_key: dict[int, dict[Key, DraftChannel]] = {}
        for mother in template.particles:
            seen: dict[Key, DraftChannel] = {}
            for number, channel in enumerate(template.channels):
                if channel.mother == mother:
                    key = channel_key(channel.daughter, channel.sm)
                    seen.setdefault(key, DraftChannel(channel, number))
            self.by_key[mother] = seen
            self.channels[mother] = tuple(seen.values())


_INDEXES: dict[int, tuple[Template, _Index]] = {}


def template_index(template: Template) -> _Index:
    """The index of a template, cached by identity (hashing a template is slow)."""
    entry = _INDEXES.get(id(template))
    if entry is None or entry[0] is not template:
        if len(_INDEXES) >= 8:
            _INDEXES.clear()
        entry = (template, _Index(template))
        _INDEXES[id(template)] = entry
    return entry[1]


def channel_groups(channels: Iterable[DraftChannel]) -> list[tuple[DraftChannel, ...]]:
    """Channels grouped by template placeholder, in template order."""
    found: dict[str, list[DraftChannel]] = {}
    for channel in channels:
        found.setdefault(channel.name, []).append(channel)
    return [tuple(g) for g in found.values()]


# -- working copy -----------------------------------------------------------------------------
class Draft:
    """Mutable working copy of a protomodel (masses, decays by channel, multipliers)."""

    def __init__(self, model: Protomodel, index: _Index) -> None:
        self.index = index
        self.name = model.name
        self.masses: dict[int, float] = {p: float(m) for p, m in sorted(model.masses.items())}
        self.decays: dict[int, dict[DraftChannel, float]] = {}
        self._extra: dict[tuple[int, int, tuple[int, ...]], DraftChannel] = {}
        for pdg, channels in sorted(model.decays.items()):
            table: dict[DraftChannel, float] = {}
            for decay in channels:
                if decay.br > 0:
                    channel = self._channel_for(pdg, decay)
                    table[channel] = table.get(channel, 0.0) + float(decay.br)
            self.decays[pdg] = table
        self.ssm: dict[tuple[int, int], float] = {k: float(v) for k, v in sorted(model.ssm.items())}
        #: total widths of long-lived particles (walks with lifetimes; prompt otherwise)
        self.widths: dict[int, float] = {p: float(w) for p, w in sorted(model.widths.items())}

    def _channel_for(self, mother: int, decay: Decay) -> DraftChannel:
        found = self.index.by_key.get(mother, {}).get(channel_key(decay.daughter, decay.sm))
        if found is not None:
            return found
        ident = (mother, decay.daughter, tuple(decay.sm))
        if ident not in self._extra:
            name = "extra_" + "_".join(str(i) for i in (mother, decay.daughter, *decay.sm))
            channel = Channel(mother, decay.daughter, tuple(decay.sm), name)
            self._extra[ident] = DraftChannel(channel, 1_000_000 + len(self._extra))
        return self._extra[ident]

    @property
    def lsp(self) -> int:
        masses = self.masses
        return min(masses, key=lambda p: (masses[p], p))

    def non_lsp(self) -> list[int]:
        lsp = self.lsp
        return [p for p in sorted(self.masses) if p != lsp]

    def offshell(self, pdg: int, lsp: int | None = None) -> bool:
        """``Manipulator.checkIfOffshell``: chi20 / chi1+ closer to the LSP than m_Z / m_W."""
        if pdg not in (N2, C1) or pdg not in self.masses:
            return False
        gap = self.masses[pdg] - self.masses[self.lsp if lsp is None else lsp]
        return gap < SM_MASSES[23 if pdg == N2 else 24]

    def open_channels(self, pdg: int) -> list[DraftChannel]:
        """Open channels of an active particle (template order)."""
        masses = self.masses
        if pdg not in masses:
            return []
        lsp = self.lsp
        if pdg == lsp:
            return []
        mass = masses[pdg]
        offshell = self.offshell(pdg, lsp)
        result = []
        for channel in self.index.channels.get(pdg, ()):
            daughter = abs(channel.daughter)
            if daughter == pdg or daughter not in masses:
                continue
            # three-body channels of chi20 / chi1+ are their off-shell Z* / W* decays: open only
            # off shell; the gluino's three-body channels (~g -> chi q q) are its ordinary decays
            # (the reference's template has no two-body gluino channel, so its initBranchings
            # opens a three-body one whenever the gluino has no other channel)
            if len(channel.sm) > 1 and pdg in (N2, C1) and not offshell:
                continue
            if mass > masses[daughter] + channel.sm_mass:
                result.append(channel)
        return result

    def pairs(self) -> list[tuple[int, int]]:
        return production_channels(sorted(self.masses))

    def multiplier(self, pair: tuple[int, int]) -> float:
        return self.ssm.get(pair, 1.0)

    def remove(self, pdg: int) -> None:
        """Freeze: drop the particle, its decays and its multipliers (decays into it stay until
        :meth:`legalize` re-routes them)."""
        self.masses.pop(pdg, None)
        self.decays.pop(pdg, None)
        self.ssm = {k: v for k, v in self.ssm.items() if abs(k[0]) != pdg and abs(k[1]) != pdg}

    def rescale_multipliers(self, pdg: int, factor: float, cap: float) -> None:
        """``normalizeBranchings(rescaleSSMs=True)``: scale the productions of ``pdg`` so that
        sigma x BR of its remaining channels stays (factor squared for pair production)."""
        for pair in self.pairs():
            count = (abs(pair[0]) == pdg) + (abs(pair[1]) == pdg)
            if count:
                self.ssm[pair] = min(cap, self.multiplier(pair) * factor**count)

    def set_groups(self, pdg: int, values: list[tuple[tuple[DraftChannel, ...], float]]) -> None:
        table: dict[DraftChannel, float] = {}
        total = sum(v for _, v in values)
        for group, value in values:
            if value > 0:
                for channel in group:
                    table[channel] = value / total / len(group)
        self.decays[pdg] = table

    def build(self) -> Protomodel:
        lsp = self.lsp
        masses = {p: self.masses[p] for p in sorted(self.masses)}
        decays: dict[int, tuple[Decay, ...]] = {}
        for pdg in masses:
            if pdg == lsp:
                continue
            table = {c: br for c, br in self.decays.get(pdg, {}).items() if br > 0}
            total = sum(table.values())
            ordered = sorted(table, key=lambda c: c.rank)
            decays[pdg] = tuple(Decay(c.daughter, c.sm, table[c] / total) for c in ordered)
        ssm = {
            k: v
            for k, v in sorted(self.ssm.items())
            if abs(k[0]) in self.masses and abs(k[1]) in self.masses
        }
        widths = {p: w for p, w in self.widths.items() if p in decays}
        return Protomodel(masses=masses, decays=decays, ssm=ssm, name=self.name, widths=widths)


def init_branchings(draft: Draft, pdg: int, rng: np.random.Generator) -> bool:
    """``Manipulator.initBranchings``: random (or, off-shell, fixed) branchings over the open
    channels. Returns False when no channel is open."""
    channels = draft.open_channels(pdg)
    if not channels:
        return False
    grouped = channel_groups(channels)
    if draft.offshell(pdg):
        values = []
        for group in grouped:
            weight = sum(
                OFFSHELL_WEIGHTS.get((pdg, frozenset(abs(s) for s in c.sm)), 0.0) for c in group
            )
            values.append((group, weight))
        if sum(v for _, v in values) > 0:
            draft.set_groups(pdg, values)
            return True
    n = len(channels)
    values = [(g, max(0.0, float(rng.normal(1.0 / n, math.sqrt(0.5 / n))))) for g in grouped]
    if sum(v for _, v in values) <= 0:
        values = [(grouped[int(rng.integers(len(grouped)))], 1.0)]
    draft.set_groups(pdg, values)
    return True
