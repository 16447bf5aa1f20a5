"""Particles: the SM final states, the MSSM-like BSM states and the protomodel template.

Matching with the database compares particle *properties* (charge, colour, spin) and SM labels,
never PDG codes (SModelS ``databaseParticles.py``). Theory-side SM labels follow SModelS: light
quarks (PDG 1-3) are ``q``, neutrinos ``nu``, the top, W and charged leptons keep their charge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from protomodels.exceptions import ProtomodelsError

__all__ = [
    "SM_IDS",
    "BSM_PROPERTIES",
    "LSP",
    "NAMES",
    "SM_LABEL_MEMBERS",
    "BsmProperties",
    "Channel",
    "Template",
    "bsm_label_matches",
    "bsm_properties",
    "load_template",
    "properties_from_qnumbers",
    "sm_label",
]


def __dir__() -> list[str]:
    return __all__


#: the lightest neutralino: the protomodels' stable, invisible LSP
LSP = 1000022


@dataclass(frozen=True)
class BsmProperties:
    """Quantum numbers of a BSM particle (as SModelS compares them)."""

    charge: float
    colordim: int
    spin: float
    #: whether it has a distinct antiparticle (SLHA QNUMBERS entry 4); None if not stated
    antiparticle: bool | None = field(default=None, compare=False)

    @property
    def self_conjugate(self) -> bool:
        """Its own antiparticle: as stated, else when neutral and a colour singlet or octet."""
        if self.antiparticle is not None:
            return not self.antiparticle
        return self.charge == 0 and self.colordim in (1, 8)


_BSM: dict[int, tuple[float, int, float]] = {}
for _pdg in (1000001, 1000003, 1000005, 2000001, 2000003, 2000005):
    _BSM[_pdg] = (-1 / 3, 3, 0.0)
for _pdg in (1000002, 1000004, 1000006, 2000002, 2000004, 2000006):
    _BSM[_pdg] = (2 / 3, 3, 0.0)
for _pdg in (1000011, 1000013, 1000015, 2000011, 2000013, 2000015):
    _BSM[_pdg] = (-1.0, 1, 0.0)
for _pdg in (1000012, 1000014, 1000016):
    _BSM[_pdg] = (0.0, 1, 0.0)
_BSM[1000021] = (0.0, 8, 0.5)
for _pdg in (1000022, 1000023, 1000025, 1000035):
    _BSM[_pdg] = (0.0, 1, 0.5)
for _pdg in (1000024, 1000037):
    _BSM[_pdg] = (1.0, 1, 0.5)
_BSM[35] = (0.0, 1, 0.0)
_BSM[36] = (0.0, 1, 0.0)
_BSM[37] = (1.0, 1, 0.0)

#: PDG id -> (charge, colour dimension, spin) of every BSM particle known to the theory stage
BSM_PROPERTIES: dict[int, BsmProperties] = {k: BsmProperties(*v) for k, v in _BSM.items()}

#: readable names of the BSM particles
NAMES: dict[int, str] = {
    1000001: "~d_L", 1000002: "~u_L", 1000003: "~s_L", 1000004: "~c_L", 1000005: "~b_1",
    1000006: "~t_1", 2000001: "~d_R", 2000002: "~u_R", 2000003: "~s_R", 2000004: "~c_R",
    2000005: "~b_2", 2000006: "~t_2", 1000011: "~e_L", 1000012: "~nu_e", 1000013: "~mu_L",
    1000014: "~nu_mu", 1000015: "~tau_1", 1000016: "~nu_tau", 2000011: "~e_R", 2000013: "~mu_R",
    2000015: "~tau_2", 1000021: "~g", 1000022: "~chi10", 1000023: "~chi20", 1000025: "~chi30",
    1000035: "~chi40", 1000024: "~chi1+", 1000037: "~chi2+", 35: "H0", 36: "A0", 37: "H+",
}  # fmt: skip


def bsm_properties(pdg: int, extra: Mapping[int, BsmProperties] | None = None) -> BsmProperties:
    """Properties of a BSM particle or antiparticle (negative PDG: charge flipped).

    Args:
        pdg: the PDG id.
        extra: properties of particles beyond the MSSM (a model's QNUMBERS blocks).

    Raises:
        ProtomodelsError: a PDG id that is neither an MSSM particle nor in ``extra``.
    """
    props = (extra or {}).get(abs(pdg)) or BSM_PROPERTIES.get(abs(pdg))
    if props is None:
        msg = (f"unknown BSM particle {pdg}: not an MSSM particle, and no QNUMBERS block gives "
               "its charge, spin and colour (add 'BLOCK QNUMBERS "
               f"{abs(pdg)}' with entries 1: 3 x charge, 2: 2S+1, 3: colour dimension, "
               "4: 1 if it has an antiparticle)")
        raise ProtomodelsError(msg)
    if pdg > 0:
        return props
    return BsmProperties(-props.charge, props.colordim, props.spin, props.antiparticle)


def properties_from_qnumbers(pdg: int, entries: Mapping[int, float]) -> BsmProperties:
    """BsmProperties from the entries of an SLHA QNUMBERS block (1: 3 x charge, 2: 2S+1,
    3: colour dimension).

    Raises:
        ProtomodelsError: an entry is missing or not a possible value (named).
    """
    missing = [f"{k} ({what})" for k, what in ((1, "3 x charge"), (2, "2S+1"),
                                              (3, "colour dimension")) if k not in entries]
    if missing:
        msg = (f"QNUMBERS of {pdg} lack entry {', '.join(missing)}: the particle cannot be "
               "classified")
        raise ProtomodelsError(msg)
    colour = int(entries[3])
    if abs(colour) not in (1, 3, 6, 8) or colour != entries[3]:
        msg = f"QNUMBERS of {pdg}: colour dimension {entries[3]:g} is not 1, 3, -3, 6 or 8"
        raise ProtomodelsError(msg)
    multiplicity = entries[2]
    if multiplicity < 1 or multiplicity != int(multiplicity):
        msg = f"QNUMBERS of {pdg}: 2S+1 = {multiplicity:g} is not a positive integer"
        raise ProtomodelsError(msg)
    antiparticle = bool(entries[4]) if 4 in entries else None
    return BsmProperties(entries[1] / 3.0, abs(colour), (multiplicity - 1) / 2.0, antiparticle)


_SM_LABEL: dict[int, str] = {
    1: "q", 2: "q", 3: "q", -1: "q", -2: "q", -3: "q", 4: "c", -4: "c", 5: "b", -5: "b",
    6: "t+", -6: "t-", 11: "e-", -11: "e+", 13: "mu-", -13: "mu+", 15: "ta-", -15: "ta+",
    12: "nu", -12: "nu", 14: "nu", -14: "nu", 16: "nu", -16: "nu", 21: "g", -21: "g",
    22: "photon", -22: "photon", 23: "Z", -23: "Z", 24: "W+", -24: "W-", 25: "higgs",
    -25: "higgs", 111: "pi0", 211: "pi+", -211: "pi-",
}  # fmt: skip


#: PDG ids of the SM particles the database knows (decay products)
SM_IDS: frozenset[int] = frozenset(_SM_LABEL)


def sm_label(pdg: int) -> str:
    """Theory label of an SM decay product (SModelS groups: q, c, b, nu; charged t, W, leptons).

    Raises:
        ProtomodelsError: not an SM particle the database knows.
    """
    label = _SM_LABEL.get(pdg)
    if label is None:
        msg = f"unknown SM particle {pdg} in a decay"
        raise ProtomodelsError(msg)
    return label


_ALL_SM = frozenset(_SM_LABEL.values())
_LEPTONS_L = {"e-": ("e-",), "mu-": ("mu-",), "ta-": ("ta-",)}

#: database SM label -> the theory labels it stands for (``databaseParticles.py``)
SM_LABEL_MEMBERS: dict[str, frozenset[str]] = {
    "q": frozenset({"q"}), "u": frozenset({"q"}), "d": frozenset({"q"}), "s": frozenset({"q"}),
    "c": frozenset({"c"}), "b": frozenset({"b"}),
    "t+": frozenset({"t+"}), "t-": frozenset({"t-"}), "t": frozenset({"t+", "t-"}),
    "e-": frozenset({"e-"}), "e+": frozenset({"e+"}), "e": frozenset({"e-", "e+"}),
    "mu-": frozenset({"mu-"}), "mu+": frozenset({"mu+"}), "mu": frozenset({"mu-", "mu+"}),
    "ta-": frozenset({"ta-"}), "ta+": frozenset({"ta+"}), "ta": frozenset({"ta-", "ta+"}),
    "l-": frozenset({"e-", "mu-"}), "l+": frozenset({"e+", "mu+"}),
    "l": frozenset({"e-", "mu-", "e+", "mu+"}),
    "L-": frozenset({"e-", "mu-", "ta-"}), "L+": frozenset({"e+", "mu+", "ta+"}),
    "L": frozenset({"e-", "mu-", "ta-", "e+", "mu+", "ta+"}),
    "nu": frozenset({"nu"}), "nue": frozenset({"nu"}), "numu": frozenset({"nu"}),
    "nuta": frozenset({"nu"}),
    "g": frozenset({"g"}), "photon": frozenset({"photon"}), "Z": frozenset({"Z"}),
    "W+": frozenset({"W+"}), "W-": frozenset({"W-"}), "W": frozenset({"W+", "W-"}),
    "higgs": frozenset({"higgs"}),
    "pi+": frozenset({"pi+"}), "pi-": frozenset({"pi-"}), "pi0": frozenset({"pi0"}),
    "pion": frozenset({"pi+", "pi-", "pi0"}),
    "jet": frozenset({"q", "c", "g", "pi+", "pi-", "pi0"}),
    "jetb": frozenset({"q", "c", "g", "b"}),
    "anySM": _ALL_SM,
}  # fmt: skip

# BSM database labels: (charge set or None, colordim or None, spin or None)
_BSM_LABELS: dict[str, tuple[frozenset[float] | None, int | None, float | None]] = {
    "anyBSM": (None, None, None),
    "MET": (frozenset({0.0}), 1, None),
    "HSCP": (frozenset({1.0, -1.0}), 1, None), "HSCP+": (frozenset({1.0}), 1, None),
    "HSCP-": (frozenset({-1.0}), 1, None),
    "RHadronG": (frozenset({0.0}), 8, None),
    "RHadronU": (frozenset({2 / 3, -2 / 3}), 3, None), "RHadronU+": (frozenset({2 / 3}), 3, None),
    "RHadronU-": (frozenset({-2 / 3}), 3, None),
    "RHadronD": (frozenset({1 / 3, -1 / 3}), 3, None), "RHadronD-": (frozenset({-1 / 3}), 3, None),
    "RHadronD+": (frozenset({1 / 3}), 3, None),
    "RHadronQ": (frozenset({2 / 3, -2 / 3, 1 / 3, -1 / 3}), 3, None),
    "gluino": (frozenset({0.0}), 8, 0.5),
    "C1+": (frozenset({1.0}), 1, 0.5), "C1-": (frozenset({-1.0}), 1, 0.5),
    "C1": (frozenset({1.0, -1.0}), 1, 0.5),
    "H+": (frozenset({1.0}), 1, 0.0), "H-": (frozenset({-1.0}), 1, 0.0),
    "Hpm": (frozenset({1.0, -1.0}), 1, 0.0),
    "Zprime": (frozenset({0.0}), 1, 1.0), "Vprime": (None, 1, 1.0),
    "H0": (frozenset({0.0}), 1, 0.0),
}  # fmt: skip


def bsm_label_matches(label: str, props: BsmProperties) -> bool:
    """Whether a database BSM label (``MET``, ``anyBSM``, ``C1``, ...) matches a BSM state."""
    spec = _BSM_LABELS.get(label)
    if spec is None:
        return False
    charges, colordim, spin = spec
    if charges is not None and not any(abs(props.charge - c) < 1e-6 for c in charges):
        return False
    if colordim is not None and props.colordim != colordim:
        return False
    return spin is None or abs(props.spin - spin) < 1e-6


@dataclass(frozen=True)
class Channel:
    """An allowed decay channel of the template.

    Attributes:
        mother: PDG id of the decaying particle.
        daughter: PDG id of the BSM daughter (sign as written in the template).
        sm: PDG ids of the SM daughters.
        name: the template's placeholder, e.g. ``D1000006_1000022_6``.
    """

    mother: int
    daughter: int
    sm: tuple[int, ...]
    name: str


@dataclass(frozen=True)
class Template:
    """The protomodel template: its particles (in template order) and their allowed decays."""

    particles: tuple[int, ...]
    channels: tuple[Channel, ...]

    def channels_of(self, pdg: int) -> tuple[Channel, ...]:
        """Allowed decay channels of a particle."""
        return tuple(c for c in self.channels if c.mother == pdg)


_PLACEHOLDER = re.compile(r"^\s*(D\d+_[\d_]+)\s+(\d+)\s+((?:-?\d+\s*)+?)(?:#.*)?$")
_MASS_PLACEHOLDER = re.compile(r"^\s*(\d+)\s+M(\d+)\b")


@cache
def load_template(path: str | Path) -> Template:
    """Read the template SLHA: particles with an ``M<pdg>`` mass placeholder and the
    ``D<mother>_<daughter>_...`` decay placeholders.

    Raises:
        ProtomodelsError: unreadable file or no placeholders.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        msg = f"cannot read the protomodel template {path}: {err.strerror}; check --shared"
        raise ProtomodelsError(msg) from err
    particles: list[int] = []
    channels: list[Channel] = []
    mother = None
    for number, line in enumerate(lines, 1):
        m = _MASS_PLACEHOLDER.match(line)
        if m and m.group(1) == m.group(2):
            particles.append(int(m.group(1)))
            continue
        if line.startswith("DECAY"):
            mother = int(line.split()[1])
            continue
        m = _PLACEHOLDER.match(line)
        if m is None and re.match(r"^\s*D\d+_", line):
            msg = (f"{path}, line {number}: decay placeholder {line.strip()!r} is not "
                   "'D<mother>_<daughters> NDA ID1 ... IDn'; fix the template line")
            raise ProtomodelsError(msg)
        if m and mother is not None:
            ids = [int(x) for x in m.group(3).split()]
            bsm = [i for i in ids if abs(i) in BSM_PROPERTIES]
            sm = tuple(i for i in ids if abs(i) not in BSM_PROPERTIES)
            if len(ids) != int(m.group(2)) or len(bsm) != 1:
                msg = (f"{path}, line {number}: decay placeholder {m.group(1)} lists "
                       f"{len(ids)} daughters ({m.group(2)} announced), {len(bsm)} of them BSM; "
                       "a template decay has NDA daughters, exactly one BSM")
                raise ProtomodelsError(msg)
            channels.append(Channel(mother, bsm[0], sm, m.group(1)))
    if not particles or not channels:
        msg = f"{path} has no M<pdg> mass or D<...> decay placeholders; is it the template?"
        raise ProtomodelsError(msg)
    if LSP not in particles:
        particles.append(LSP)
    return Template(tuple(particles), tuple(channels))
