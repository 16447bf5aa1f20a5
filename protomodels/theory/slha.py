"""A strict reader of the SLHA blocks a protomodel is made of: MASS, DECAY and XSECTION.

Every line of these sections is read or refused: a value that is not a number, a NaN, a decay
line whose daughter count does not match, a DECAY header without a width are errors naming the
file, the line and the section, never a silently dropped entry (general-purpose SLHA readers
skip such lines, which turns a decaying particle into a stable one). Other BLOCKs are skipped
unread. Values are returned as written (signs included) with their line numbers, so that the
model built from them can say where each of its numbers came from.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from protomodels.exceptions import InvalidProtomodelError
from protomodels.theory.protomodel import BR_SUM_NORMALISED

__all__ = ["SlhaChannel", "SlhaDecay", "SlhaDocument", "SlhaFormatError", "SlhaXsec", "read_slha"]


def __dir__() -> list[str]:
    return __all__


class SlhaFormatError(InvalidProtomodelError):
    """A line of an SLHA file cannot be read.

    Attributes:
        path: the file.
        line: 1-based line number.
        section: the section (``MASS``, ``DECAY 1000006``, ``XSECTION``...).
        problem: what is wrong.
    """

    def __init__(self, path: str | Path, line: int, section: str, problem: str) -> None:
        self.path, self.line, self.section, self.problem = str(path), line, section, problem
        super().__init__(f"{path}, line {line}, {section}: {problem} -> {_hint(section)}")


@dataclass(frozen=True)
class SlhaChannel:
    """One decay line: branching ratio and daughter ids as written."""

    br: float
    ids: tuple[int, ...]
    line: int


@dataclass(frozen=True)
class SlhaDecay:
    """A DECAY block: total width (GeV) and its channels."""

    pdg: int
    width: float
    line: int
    channels: list[SlhaChannel] = field(default_factory=list)


@dataclass(frozen=True)
class SlhaXsec:
    """One cross-section line of an XSECTION block (value in pb, as SLHA writes it)."""

    sqrts_gev: float
    initial: tuple[int, int]
    final: tuple[int, ...]
    qcd_order: int
    value_pb: float
    line: int


@dataclass(frozen=True)
class SlhaDocument:
    """What :func:`read_slha` found.

    Attributes:
        path: the file read.
        masses: PDG id (as written) -> (mass in GeV as written, line).
        decays: PDG id (as written) -> its DECAY block.
        xsecs: every cross-section line.
        has_mass_block: whether a ``BLOCK MASS`` was present.
        qnumbers: PDG id -> ({entry: value} of its ``BLOCK QNUMBERS``, line of the header):
            1: three times the electric charge, 2: 2S+1, 3: colour dimension, 4: 0 if the
            particle is its own antiparticle, 1 otherwise.
    """

    path: str
    masses: dict[int, tuple[float, int]]
    decays: dict[int, SlhaDecay]
    xsecs: list[SlhaXsec]
    has_mass_block: bool
    qnumbers: dict[int, tuple[dict[int, float], int]] = field(default_factory=dict)


_HEADERS = ("BLOCK", "DECAY", "XSECTION")
_LAYOUT = {
    "BLOCK MASS": "a MASS line is 'PDG MASS'",
    "DECAY": "a DECAY block is 'DECAY PDG WIDTH', then lines 'BR NDA ID1 ... IDn'",
    "XSECTION": "an XSECTION block is 'XSECTION SQRTS ID1 ID2 NF F1 ... Fn', then lines "
    "'SCHEME QCD EW KAPPA_F KAPPA_R PDF VALUE [CODE]'",
}


def _hint(section: str) -> str:
    for head, layout in _LAYOUT.items():
        if section.startswith(head):
            return f"fix this line ({layout})"
    return "fix this line"


class _Lines:
    """Turns tokens into numbers, or raises naming the line and section."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.line = 0
        self.section = ""

    def fail(self, problem: str) -> SlhaFormatError:
        return SlhaFormatError(self.path, self.line, self.section, problem)

    def integer(self, token: str, what: str) -> int:
        try:
            return int(token)
        except ValueError:
            raise self.fail(f"{what} {token!r} is not an integer") from None

    def number(self, token: str, what: str) -> float:
        try:
            value = float(token)
        except ValueError:
            raise self.fail(f"{what} {token!r} is not a number") from None
        if not math.isfinite(value):
            raise self.fail(f"{what} is {token!r}; give a finite number")
        return value


def read_slha(path: str | os.PathLike[str]) -> SlhaDocument:
    """Read the MASS, DECAY and XSECTION sections of an SLHA file.

    Raises:
        InvalidProtomodelError: the file is missing or unreadable.
        SlhaFormatError: a line of those sections cannot be read (names file, line, section).
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise InvalidProtomodelError(f"SLHA file {path} {what}; give the path of an SLHA file")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as err:
        msg = f"{path}: cannot read the file as text ({err}); give an SLHA text file"
        raise InvalidProtomodelError(msg) from err
    lines = _Lines(str(path))
    masses: dict[int, tuple[float, int]] = {}
    decays: dict[int, SlhaDecay] = {}
    xsecs: list[SlhaXsec] = []
    qnumbers: dict[int, tuple[dict[int, float], int]] = {}
    qnumbers_of: dict[int, float] | None = None
    has_mass = False
    kind = None  # "MASS", "QNUMBERS", "OTHER", "DECAY", "XSECTION"
    decay: SlhaDecay | None = None
    process: tuple[float, tuple[int, int], tuple[int, ...]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        lines.line = number
        tokens = raw.split("#", 1)[0].split()
        if not tokens:
            continue
        head = tokens[0].upper()
        if head in _HEADERS and not raw[:1].isspace():
            lines.section = " ".join(tokens[:2]).upper() if head != "XSECTION" else "XSECTION"
            if head == "BLOCK":
                if len(tokens) < 2:
                    raise lines.fail("BLOCK without a name")
                kind = "MASS" if tokens[1].upper() == "MASS" else "OTHER"
                has_mass = has_mass or kind == "MASS"
                if tokens[1].upper() == "QNUMBERS":
                    if len(tokens) < 3:
                        raise lines.fail("a QNUMBERS block needs 'BLOCK QNUMBERS PDG'")
                    pdg = lines.integer(tokens[2], "PDG id")
                    if pdg in qnumbers:
                        raise lines.fail(f"a second QNUMBERS block for {pdg} (the first is at "
                                         f"line {qnumbers[pdg][1]})")
                    qnumbers_of = {}
                    qnumbers[pdg] = (qnumbers_of, number)
                    kind = "QNUMBERS"
            elif head == "DECAY":
                kind = "DECAY"
                if len(tokens) < 3:
                    raise lines.fail("a DECAY header needs 'DECAY PDG WIDTH'")
                pdg = lines.integer(tokens[1], "PDG id")
                if pdg in decays:
                    raise lines.fail(
                        f"a second DECAY block for {pdg} (the first is at line "
                        f"{decays[pdg].line}); give each particle one"
                    )
                width = lines.number(tokens[2], "total width")
                decay = decays[pdg] = SlhaDecay(pdg, width, number)
            else:
                kind = "XSECTION"
                if len(tokens) < 5:
                    raise lines.fail("an XSECTION header needs 'XSECTION SQRTS ID1 ID2 NF F1..'")
                sqrts = lines.number(tokens[1], "sqrt(s)")
                initial = (lines.integer(tokens[2], "beam id"), lines.integer(tokens[3], "beam id"))
                nf = lines.integer(tokens[4], "number of final-state particles")
                final = tuple(lines.integer(t, "final-state id") for t in tokens[5:])
                if len(final) != nf or sqrts <= 0:
                    raise lines.fail(
                        f"{nf} final-state particles announced, {len(final)} given"
                        if len(final) != nf
                        else f"sqrt(s) = {tokens[1]} must be > 0"
                    )
                process = (sqrts, initial, final)
            continue
        if kind is None:
            raise lines.fail(f"a data line before any BLOCK, DECAY or XSECTION header: {raw!r}")
        if kind == "QNUMBERS":
            assert qnumbers_of is not None
            if len(tokens) < 2:
                raise lines.fail("a QNUMBERS line needs 'ENTRY VALUE'")
            qnumbers_of[lines.integer(tokens[0], "QNUMBERS entry")] = lines.number(
                tokens[1], "QNUMBERS value")
            continue
        if kind == "MASS":
            lines.section = "BLOCK MASS"
            if len(tokens) < 2:
                raise lines.fail("a MASS line needs 'PDG mass'")
            pdg = lines.integer(tokens[0], "PDG id")
            mass = lines.number(tokens[1], f"mass of {pdg}")
            if pdg in masses:
                raise lines.fail(f"a second mass for {pdg} (the first is at line {masses[pdg][1]})")
            masses[pdg] = (mass, number)
        elif kind == "DECAY":
            assert decay is not None
            if len(tokens) < 3:
                raise lines.fail("a decay line needs 'BR NDA ID1 ... IDn'")
            br = lines.number(tokens[0], "branching ratio")
            nda = lines.integer(tokens[1], "number of daughters")
            ids = tuple(lines.integer(t, "daughter id") for t in tokens[2:])
            if nda != len(ids):
                raise lines.fail(f"{nda} daughters announced, {len(ids)} given")
            # (a rounded table: the sum is checked, and normalised, by Protomodel.from_slha)
            if not 0.0 <= br <= 1.0 + BR_SUM_NORMALISED:
                raise lines.fail(f"branching ratio {tokens[0]} is not in [0, 1]")
            decay.channels.append(SlhaChannel(br, ids, number))
        elif kind == "XSECTION":
            assert process is not None
            if len(tokens) < 7:
                raise lines.fail(
                    "a cross-section line needs 'SCHEME QCD EW KAPPA_F KAPPA_R PDF VALUE [CODE]'"
                )
            order = lines.integer(tokens[1], "QCD order")
            value = lines.number(tokens[6], "cross section")
            if value < 0:
                raise lines.fail(f"cross section {tokens[6]} pb is negative")
            xsecs.append(SlhaXsec(process[0], process[1], process[2], order, value, number))
    return SlhaDocument(str(path), masses, decays, xsecs, has_mass, qnumbers)
