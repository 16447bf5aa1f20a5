"""The protomodel: active particles, masses, decays and production cross sections.

A protomodel is validated on construction. Its production cross sections are either explicit
(read from an SLHA file's XSECTION blocks) or the reference tables times a signal-strength
multiplier per production pair (see :mod:`protomodels.theory.xsec`).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from protomodels.exceptions import (
    InputCorrectionWarning,
    InvalidProtomodelError,
    ProtomodelsError,
)
from protomodels.theory.particles import (
    BSM_PROPERTIES,
    NAMES,
    SM_IDS,
    BsmProperties,
    bsm_properties,
    properties_from_qnumbers,
)
from protomodels.theory.xsec import production_key

__all__ = ["Decay", "InvalidProtomodelError", "Protomodel"]


def __dir__() -> list[str]:
    return __all__


#: particles at or above this mass (GeV) in an SLHA file are frozen (decoupled)
FROZEN_MASS = 1e5
_BR_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Decay:
    """One decay channel: ``mother -> daughter + sm`` with branching ratio ``br``.

    Attributes:
        daughter: PDG id of the BSM daughter (sign as in the decay table); 0 for a decay into
            SM particles only (a resonance decaying to jets, an R-parity violating decay).
        sm: PDG ids of the SM daughters.
        br: branching ratio in [0, 1].
        more: further BSM daughters (a resonance decaying into a pair of dark-matter
            particles, a decay into a Z2-even BSM particle such as H0); empty for a
            chain decay into one BSM particle.
    """

    daughter: int
    sm: tuple[int, ...]
    br: float
    more: tuple[int, ...] = ()

    @property
    def bsm(self) -> tuple[int, ...]:
        """All BSM daughters (empty for a decay into SM particles only)."""
        return ((self.daughter,) if self.daughter else ()) + self.more


#: a production pair (sorted PDG ids), or a 1-tuple for the single production of a resonance
Pair = tuple[int, ...]


def _label(pdg: int) -> str:
    """``1000022 (N1)``: a PDG id with its name, for messages."""
    name = NAMES.get(abs(pdg))
    return f"{pdg} ({name})" if name else str(pdg)


def _numpy_real(x: object) -> bool:
    """A NumPy integer or floating-point scalar (not a bool)."""
    return isinstance(x, (np.integer, np.floating))


#: SLHA decay tables whose branching ratios sum to at most this above 1 are normalised (rounded
#: tables); beyond it the table is refused
BR_SUM_NORMALISED = 0.01


def _checked_sum(
    channels: list[Decay], pdg: int, path: Path, line: int, notes: list[str]
) -> list[Decay]:
    """The rules for the sum of an SLHA decay table's branching ratios (SModelS 3 has no check
    and uses the channels as read): a sum below 1 is used as given, as SModelS does (the rest
    of the decays is lost; stated when it exceeds 1e-4); a sum up to 1 + BR_SUM_NORMALISED is
    normalised (stated), since a weight above the cross section is never right; above that the
    table is refused."""
    total = math.fsum(d.br for d in channels)
    if not channels or abs(total - 1.0) <= _BR_TOLERANCE:
        return channels
    name = _label(pdg)
    if total < 1.0:
        notes.append(
            f"branching ratios of {name} (DECAY block, line {line}) sum to {total:.6g}: used as "
            f"given, as SModelS does (not normalised: {1 - total:.3g} of its decays are lost)"
        )
        return channels
    if total <= 1.0 + BR_SUM_NORMALISED:
        notes.append(
            f"branching ratios of {name} (DECAY block, line {line}) sum to {total:.6g}: "
            "normalised to 1 (SModelS would use them as read, with weights above the cross "
            "section)"
        )
        return [replace(d, br=d.br / total) for d in channels]
    msg = (f"{path}, line {line}: the branching ratios of {name} sum to {total:.6g} > 1; "
           "correct the DECAY block (sums up to "
           f"{1 + BR_SUM_NORMALISED:g} are normalised, smaller ones used as given)")
    raise InvalidProtomodelError(msg)

def _reachable(produced: set[int], decays: Mapping[int, tuple[Decay, ...]]) -> set[int]:
    """The produced particles and every BSM particle their decays lead to."""
    found, todo = set(produced), list(produced)
    while todo:
        for decay in decays.get(todo.pop(), ()):
            for daughter in map(abs, decay.bsm):
                if daughter not in found:
                    found.add(daughter)
                    todo.append(daughter)
    return found


@dataclass(frozen=True, eq=False)
class Protomodel:
    """A protomodel (or any R-parity conserving SLHA spectrum with a neutral LSP).

    Attributes:
        masses: GeV, for every active BSM particle (PDG id > 0), the LSP included.
        decays: for every active particle but the LSP, its decay channels.
        ssm: signal-strength multiplier per production pair (sorted PDG ids); pairs not listed
            have multiplier 1. Used with the reference tables.
        xsecs: explicit cross sections, {pair: {sqrts_tev: sigma_fb}}; when given, they replace
            the reference tables (SLHA input).
        widths: total widths (GeV) where known.
        name: a label for reports.
        allow_stable: SLHA-input semantics, as SModelS's: active particles without decays are
            stable, and decay tables whose branching ratios sum to less than 1 are used as
            given (the rest of the decays is lost); protomodels proper need a decay for every
            particle but the LSP, with branching ratios summing to 1.
        notes: corrections stated while reading the model (negative masses, frozen particles,
            reference cross sections...), shown with its predictions and in their JSON flags.
        properties: charge, colour and spin of particles beyond the MSSM (from the SLHA
            file's QNUMBERS blocks); MSSM particles need none.
    """

    masses: Mapping[int, float]
    decays: Mapping[int, tuple[Decay, ...]]
    ssm: Mapping[Pair, float] = field(default_factory=dict)
    xsecs: Mapping[Pair, Mapping[float, float]] | None = None
    widths: Mapping[int, float] = field(default_factory=dict)
    name: str = "protomodel"
    allow_stable: bool = False
    notes: tuple[str, ...] = ()
    properties: Mapping[int, BsmProperties] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # NumPy numbers (a mass from np.arange, a multiplier from an array) are plain floats
        # here, so that every later stage and the run files see Python numbers
        if isinstance(self.masses, Mapping) and any(
            _numpy_real(m) for m in self.masses.values()
        ):
            masses = {k: float(m) if _numpy_real(m) else m for k, m in self.masses.items()}
            object.__setattr__(self, "masses", masses)
        if isinstance(self.ssm, Mapping) and any(_numpy_real(v) for v in self.ssm.values()):
            ssm = {k: float(v) if _numpy_real(v) else v for k, v in self.ssm.items()}
            object.__setattr__(self, "ssm", ssm)
        self.validate()

    # -- validation -------------------------------------------------------------------------
    def validate(self) -> None:
        """Check the model; raise :class:`InvalidProtomodelError` naming the problem."""
        if not self.masses:
            raise InvalidProtomodelError("protomodel has no particles; add at least the LSP")
        for pdg, mass in self.masses.items():
            try:
                bsm_properties(pdg, self.properties)
            except ProtomodelsError as err:
                raise InvalidProtomodelError(f"masses: {err}") from err
            if pdg <= 0:
                msg = f"masses: use positive PDG ids (got {pdg})"
                raise InvalidProtomodelError(msg)
            if not (isinstance(mass, (int, float)) and math.isfinite(mass) and mass > 0):
                msg = f"masses: mass of {pdg} ({NAMES.get(pdg, pdg)}) is {mass!r}, need > 0"
                raise InvalidProtomodelError(msg)
        lsp = self.lsp
        lsp_props = bsm_properties(lsp, self.properties)
        # (SLHA input, as SModelS: any lightest particle, e.g. a stable charged one or a
        # resonance decaying to SM particles; a protomodel proper has a neutral stable LSP)
        if not self.allow_stable and (lsp_props.charge != 0 or lsp_props.colordim != 1):
            msg = f"the lightest particle {lsp} ({NAMES.get(lsp)}) is charged or coloured"
            raise InvalidProtomodelError(msg)
        for pdg in self.masses:
            if pdg != lsp and not self.decays.get(pdg) and not self.allow_stable:
                msg = f"decays: {pdg} ({NAMES.get(pdg, pdg)}) is active but has no decay channel"
                raise InvalidProtomodelError(msg)
        for pdg, channels in self.decays.items():
            if pdg not in self.masses:
                msg = f"decays: {pdg} has decays but no mass (not active)"
                raise InvalidProtomodelError(msg)
            if pdg == lsp and channels and not self.allow_stable:
                msg = f"decays: the LSP {pdg} must be stable"
                raise InvalidProtomodelError(msg)
            total = 0.0
            for d in channels:
                if not (isinstance(d.br, (int, float)) and math.isfinite(d.br)) or not (
                    -1e-12 <= d.br <= 1 + 1e-12
                ):
                    daughters = " ".join(map(str, d.bsm)) or "SM"
                    msg = f"decays: BR({pdg} -> {daughters} {d.sm}) = {d.br!r} not in [0, 1]"
                    raise InvalidProtomodelError(msg)
                if not d.bsm and not self.allow_stable:
                    msg = (f"decays: {pdg} decays to SM particles only {d.sm}; a protomodel's "
                           "decays have one BSM daughter")
                    raise InvalidProtomodelError(msg)
                for daughter in d.bsm:
                    if abs(daughter) not in self.masses:
                        msg = f"decays: {pdg} decays to {daughter}, which is not active"
                        raise InvalidProtomodelError(msg)
                    if d.br > 0 and self.masses[abs(daughter)] >= self.masses[pdg]:
                        msg = (
                            f"decays: {pdg} ({self.masses[pdg]} GeV) decays to the heavier or "
                            f"equal {daughter} ({self.masses[abs(daughter)]} GeV)"
                        )
                        raise InvalidProtomodelError(msg)
                total += d.br
            partial = self.allow_stable and total < 1.0
            if channels and abs(total - 1.0) > _BR_TOLERANCE and not partial:
                msg = f"decays: branching ratios of {pdg} sum to {total:.6f}, not 1"
                raise InvalidProtomodelError(msg)
        for pair, value in self.ssm.items():
            if not (math.isfinite(value) and value >= 0):
                msg = f"ssm: multiplier of {pair} is {value!r}, need a finite value >= 0"
                raise InvalidProtomodelError(msg)
        if self.xsecs is not None:
            for pair, by_sqrts in self.xsecs.items():
                for sqrts, value in by_sqrts.items():
                    if not (math.isfinite(value) and value >= 0):
                        msg = f"xsecs: sigma({pair}, {sqrts} TeV) = {value!r}"
                        raise InvalidProtomodelError(msg)

    @property
    def lsp(self) -> int:
        """The lightest active particle."""
        return min(self.masses, key=lambda p: (self.masses[p], p))

    @property
    def particles(self) -> list[int]:
        """Active particles sorted by mass."""
        return sorted(self.masses, key=lambda p: (self.masses[p], p))

    def scaled(self, factor: float) -> Protomodel:
        """The model with every production cross section times ``factor`` (all multipliers of
        its production pairs, or its explicit cross sections)."""
        from dataclasses import replace

        from protomodels.theory.xsec import production_channels

        if not (math.isfinite(factor) and factor >= 0):
            raise InvalidProtomodelError(f"scale factor {factor!r}: need a finite value >= 0")
        if self.xsecs is not None:
            xsecs = {p: {s: v * factor for s, v in by.items()} for p, by in self.xsecs.items()}
            return replace(self, xsecs=xsecs)
        pairs = set(production_channels(list(self.masses))) | set(self.ssm)
        return replace(self, ssm={p: self.ssm.get(p, 1.0) * factor for p in sorted(pairs)})

    # -- SLHA ------------------------------------------------------------------------------
    @classmethod
    def from_slha(
        cls,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        particles: str | os.PathLike[str] | None = None,
    ) -> Protomodel:
        """Read MASS, DECAY and XSECTION blocks of an SLHA file (strictly, see
        :mod:`protomodels.theory.slha`).

        ``particles``: another SLHA file whose QNUMBERS blocks describe the particles beyond
        the MSSM (SModelS's ``model`` parameter pointing at an SLHA file); the model file's own
        QNUMBERS blocks take precedence.

        Stated corrections, kept in :attr:`notes` and issued as
        :class:`~protomodels.exceptions.InputCorrectionWarning`: a negative mass is taken as its
        absolute value (a Majorana phase); a particle with ``|m| >= 1e5`` GeV is frozen
        (decoupled: removed with its decays and cross sections); a file without XSECTION blocks
        gets the reference cross-section tables (multipliers 1); decay tables whose branching
        ratios do not sum to 1 (see :func:`_checked_sum`). Widths between 1e-25 and 1e-11 GeV
        make a particle long-lived (:mod:`protomodels.theory.lifetimes`).

        Raises:
            InvalidProtomodelError: missing or unreadable file, an unreadable line (file, line
                and section named), unknown particles, a decaying lightest particle, or a model
                that is not valid (file and field named).
        """
        from protomodels.theory.slha import read_slha

        doc = read_slha(path)
        path = Path(path)
        described = dict(read_slha(particles).qnumbers) if particles is not None else {}
        if not doc.has_mass_block:
            msg = f"{path}: no MASS block; the file needs BLOCK MASS with the BSM masses"
            raise InvalidProtomodelError(msg)
        properties: dict[int, BsmProperties] = {}
        sources = [(Path(particles), described)] if particles is not None else []
        for source, blocks in [*sources, (path, doc.qnumbers)]:
            for pdg, (entries, line) in blocks.items():
                if abs(pdg) in BSM_PROPERTIES:
                    continue  # an MSSM particle: its known quantum numbers
                try:
                    properties[abs(pdg)] = properties_from_qnumbers(abs(pdg), entries)
                except ProtomodelsError as err:
                    raise InvalidProtomodelError(f"{source}, line {line}: {err}") from err
        # SModelS: every particle of the model that is not an SM particle. Below 1000000 that
        # is what a QNUMBERS block describes (e.g. a Z'), and the MSSM's heavy Higgs bosons
        # where they take part: produced, or a decay product of a BSM particle (else a
        # spectrum generator's H0, A0 and H+ are left out, as before)
        higgs_used = {abs(i) for x in doc.xsecs for i in x.final} | {
            abs(i) for mother, block in doc.decays.items()
            if abs(mother) >= 1000000 or abs(mother) in properties
            for dec in block.channels for i in dec.ids}
        higgs_used &= {p for p in BSM_PROPERTIES if p < 1000000}

        def is_bsm(pdg: int) -> bool:
            return abs(pdg) >= 1000000 or abs(pdg) in properties or abs(pdg) in higgs_used

        masses: dict[int, float] = {}
        lines: dict[int, int] = {}
        negative, frozen = [], []
        for pdg, (value, line) in doc.masses.items():
            if not is_bsm(pdg):
                continue  # SM masses
            if abs(value) >= FROZEN_MASS:
                frozen.append(NAMES.get(abs(pdg), str(pdg)))
                continue
            if abs(pdg) in masses:
                msg = (f"{path}, line {line}: a second mass for {abs(pdg)} (line "
                       f"{lines[abs(pdg)]}); give each particle one MASS entry")
                raise InvalidProtomodelError(msg)
            if abs(pdg) not in BSM_PROPERTIES and abs(pdg) not in properties:
                msg = (f"{path}, line {line}: particle {abs(pdg)} is not an MSSM particle and "
                       "has no QNUMBERS block, so it cannot be classified (charge, spin, colour; "
                       "a BSM particle with one BSM daughter per decay is taken as Z2-odd): add "
                       f"'BLOCK QNUMBERS {abs(pdg)}' with 1: 3 x charge, 2: 2S+1, 3: colour "
                       "dimension, 4: 1 if it has an antiparticle (to this file or to a "
                       "particles file, --particles)")
                raise InvalidProtomodelError(msg)
            if value < 0:
                negative.append(f"{_label(pdg)} {value:g} GeV (line {line})")
            masses[abs(pdg)] = round(abs(value), 1)
            lines[abs(pdg)] = line
        notes: list[str] = []
        if negative:
            notes.append("negative masses taken as their absolute values (the sign of an SLHA "
                         "mass is a Majorana phase): " + ", ".join(negative))
        if frozen:
            notes.append(f"{len(frozen)} particles at or above {FROZEN_MASS:g} GeV are frozen "
                         "(decoupled: removed with their decays and cross sections): "
                         + " ".join(frozen))
        frozen_ids = {abs(p) for p, (v, _) in doc.masses.items()
                      if abs(v) >= FROZEN_MASS and is_bsm(p)}
        decays: dict[int, tuple[Decay, ...]] = {}
        widths: dict[int, float] = {}
        decay_lines: dict[int, int] = {}
        several: list[tuple[int, str]] = []
        for pdg, block in doc.decays.items():
            if not is_bsm(pdg) or abs(pdg) in frozen_ids:
                continue
            if abs(pdg) not in masses:
                msg = (f"{path}, line {block.line}: DECAY block of {pdg} but BLOCK MASS has no "
                       f"mass for it; add its mass (>= {FROZEN_MASS:g} GeV to freeze it)")
                raise InvalidProtomodelError(msg)
            if abs(pdg) in widths:
                msg = f"{path}, line {block.line}: a second DECAY block for {abs(pdg)}"
                raise InvalidProtomodelError(msg)
            if block.width < 0:
                msg = (f"{path}, line {block.line}: total width of {pdg} is {block.width:g} "
                       "GeV; a width is >= 0")
                raise InvalidProtomodelError(msg)
            widths[abs(pdg)] = block.width
            decay_lines[abs(pdg)] = block.line
            channels = []
            for dec in block.channels:
                if dec.br == 0:
                    continue
                bsm = [i for i in dec.ids if is_bsm(i)]
                sm = tuple(i for i in dec.ids if not is_bsm(i))
                unknown = [i for i in sm if i not in SM_IDS]
                if unknown:
                    msg = (
                        f"{path}, line {dec.line}: decay {pdg} -> {list(dec.ids)}: "
                        f"{', '.join(map(str, unknown))} is neither an SM particle the database "
                        "knows nor a BSM particle of the model (add a QNUMBERS block for it)"
                    )
                    raise InvalidProtomodelError(msg)
                lost = [i for i in bsm if abs(i) in frozen_ids]
                if lost:
                    msg = (f"{path}, line {dec.line}: decay {pdg} -> {list(dec.ids)} into the "
                           f"frozen (>= {FROZEN_MASS:g} GeV) particle {lost[0]}")
                    raise InvalidProtomodelError(msg)
                if len(bsm) > 1:
                    several.append((abs(pdg), f"{_label(pdg)} -> {' '.join(map(str, dec.ids))} "
                                              f"(line {dec.line})"))
                channels.append(Decay(bsm[0] if bsm else 0, sm, dec.br, tuple(bsm[1:])))
            channels = _checked_sum(channels, pdg, path, block.line, notes)
            # largest branching ratio first, as SModelS's SLHA reader orders them
            decays[abs(pdg)] = tuple(sorted(channels, key=lambda d: -d.br))
        if not masses:
            msg = (f"{path}: BLOCK MASS has no BSM particle below {FROZEN_MASS:g} GeV "
                   "(PDG ids >= 1000000); nothing to predict")
            raise InvalidProtomodelError(msg)
        lsp = min(masses, key=lambda p: (masses[p], p))
        if any(d.bsm for d in decays.get(lsp, ())):
            daughters = sorted({abs(b) for d in decays[lsp] for b in d.bsm})
            msg = (
                f"{path}: {_label(lsp)} is the lightest particle of BLOCK MASS ({masses[lsp]:g} "
                f"GeV, line {lines[lsp]}) but its DECAY block (line {decay_lines[lsp]}) has "
                "decays to "
                + ", ".join(f"{_label(d)} ({masses[d]:g} GeV)" if d in masses else _label(d)
                            for d in daughters)
                + ": the spectrum is not what the file says; check the masses and the decays"
            )
            raise InvalidProtomodelError(msg)
        decays = {p: d for p, d in decays.items() if p != lsp or d}  # (a decaying lightest
        # particle is one decaying into SM particles only: a resonance, an RPV decay)
        undecided = sorted(p for p, w in widths.items() if p != lsp and w > 0 and not decays[p])
        if undecided:
            notes.append(
                f"{', '.join(map(_label, undecided))} have a width but no decay channel in their "
                "DECAY blocks: treated as stable (as SModelS does)"
            )
        xsecs: dict[Pair, dict[float, float]] | None = {}
        orders: dict[tuple[Pair, float], tuple[int, float]] = {}
        ignored: set[tuple[int, ...]] = set()
        for x in doc.xsecs:
            final = x.final
            unknown = [i for i in final if not is_bsm(i) and i not in SM_IDS]
            if unknown:
                msg = (f"{path}, line {x.line}: XSECTION final state {list(final)}: "
                       f"{unknown[0]} is neither an SM particle the database knows nor a BSM "
                       f"particle of the model; describe it with 'BLOCK QNUMBERS "
                       f"{abs(unknown[0])}' (1: 3 x charge, 2: 2S+1, 3: colour dimension, 4: 1 "
                       "if it has an antiparticle) and give it a MASS entry")
                raise InvalidProtomodelError(msg)
            if len(final) not in (1, 2) or any(abs(p) not in masses for p in final):
                if not any(abs(p) in frozen_ids for p in final):
                    ignored.add(final)
                continue
            key = (production_key(*final), round(x.sqrts_gev / 1000.0, 3))
            value = x.value_pb * 1000.0  # pb -> fb
            old = orders.get(key)
            if old is None or x.qcd_order > old[0] or (x.qcd_order == old[0] and value > old[1]):
                orders[key] = (x.qcd_order, value)
        for (pair, sqrts), (_, value) in orders.items():
            xsecs.setdefault(pair, {})[sqrts] = value
        if ignored:
            notes.append(
                "cross sections whose final state is not one or two particles of BLOCK MASS are "
                "ignored: " + ", ".join(" ".join(map(str, f)) for f in sorted(ignored))
            )
        produced_alone = {abs(p[0]) for p in xsecs if len(p) == 1}
        reachable = _reachable(
            {abs(i) for p in xsecs for i in p} if doc.xsecs else set(masses), decays)
        inside = [text for mother, text in several
                  if mother in reachable and mother not in produced_alone]
        if inside:
            notes.append(
                "decays into more than one BSM particle inside a decay chain make topologies "
                "that no result of the database constrains (as in SModelS, where they match "
                "nothing; only a singly produced resonance decaying into two is searched for): "
                + "; ".join(inside[:5]) + (f" and {len(inside) - 5} more" if len(inside) > 5
                                           else "")
            )
        if not doc.xsecs:
            xsecs = None
            notes.append("no XSECTION blocks: the production cross sections are the reference "
                         "tables (signal-strength multipliers 1)")
        for note in notes:
            warnings.warn(f"{path}: {note}", InputCorrectionWarning, stacklevel=2)
        try:
            return cls(
                masses=masses,
                decays=decays,
                xsecs=xsecs,
                widths=widths,
                name=name or path.stem,
                allow_stable=True,
                notes=tuple(notes),
                properties={p: v for p, v in properties.items() if p in masses},
            )
        except InvalidProtomodelError as err:
            raise InvalidProtomodelError(f"{path}: {err}") from err

    def to_slha(self, path: str | os.PathLike[str] | None = None, *, xsecs=None) -> str:  # noqa: ANN001
        """Write MASS, DECAY and XSECTION blocks (SModelS and other tools read them).

        Args:
            path: file to write (the text is returned either way).
            xsecs: cross sections {pair: {sqrts: fb}} to write; default the model's own.
        """
        lines = [f"# protomodel {self.name}"]
        for pdg, props in sorted(self.properties.items()):
            antiparticle = 0 if props.self_conjugate else 1
            # (every entry with a comment: SModelS's QNUMBERS reader cuts each line at '#')
            lines += [f"BLOCK QNUMBERS {pdg}  # {NAMES.get(pdg, pdg)}",
                      f"  1  {round(3 * props.charge):d}  # 3 x electric charge",
                      f"  2  {round(2 * props.spin + 1):d}  # 2S+1",
                      f"  3  {props.colordim:d}  # colour dimension",
                      f"  4  {antiparticle:d}  # 1: has an antiparticle"]
        lines.append("BLOCK MASS")
        for pdg in self.particles:
            lines.append(f"  {pdg:>8d}  {self.masses[pdg]:.6E}  # {NAMES.get(pdg, '')}")
        for pdg in self.particles:
            width = self.widths.get(pdg, 0.0 if pdg == self.lsp else 1.0)
            lines.append(f"DECAY {pdg:>8d}  {width:.6E}  # {NAMES.get(pdg, '')}")
            for d in self.decays.get(pdg, ()):
                ids = (*d.bsm, *d.sm)
                lines.append(f"  {d.br:.8E}  {len(ids)}  " + "  ".join(f"{i:>8d}" for i in ids))
        for pair, by_sqrts in (xsecs if xsecs is not None else self.xsecs or {}).items():
            for sqrts, sigma in sorted(by_sqrts.items()):
                final = " ".join(map(str, pair))
                lines.append(f"XSECTION  {sqrts * 1000:.2E}  2212 2212 {len(pair)} {final}")
                lines.append(f"  0  0  0  0  0  0  {sigma / 1000.0:.8E}  protomodels")
        text = "\n".join(lines) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text
