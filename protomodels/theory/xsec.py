"""Reference production cross sections: the tables of ``<shared>/data/xsec`` and their channels.

Which table serves which production pair follows the reference builder (SModelS/protomodels,
``ptools/refxsecComputer.py``): a light-squark pair uses the full squark-antisquark table (the
multiplier carries any flavour factor), sbottom and stop pairs the stop table, a slepton pair the
one-generation slepton table, chargino and neutralino pairs the wino tables, associated channels
the table of the pair evaluated at the mean mass. Tables are interpolated in log(sigma), linearly
in mass (the builder itself interpolates sigma linearly; ``interpolation="linear"`` gives that).
Outside a table's mass range there is no value: the channel is reported, never extrapolated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from protomodels.exceptions import ProtomodelsError
from protomodels.paths import shared_dir

__all__ = [
    "ReferenceTable",
    "XsecTables",
    "channel_table",
    "load_tables",
    "production_channels",
    "production_key",
    "table_xsec",
]


def __dir__() -> list[str]:
    return __all__


SQRTS = (8.0, 13.0)

# file stem -> (cross-section column once a "GeV" token is removed, unit factor to fb per sqrts)
_COLUMNS: dict[str, tuple[int, dict[float, float]]] = {
    "gluino": (1, {8.0: 1e3, 13.0: 1e3}),
    "squark": (1, {8.0: 1e3, 13.0: 1e3}),
    "stop": (1, {8.0: 1e3, 13.0: 1e3}),
    "slepslep": (1, {8.0: 1.0, 13.0: 1e3}),
    "C1C1": (1, {8.0: 1.0, 13.0: 1.0}),
    "N2C1p": (1, {8.0: 1e3, 13.0: 1.0}),
    "N2C1m": (1, {8.0: 1e3, 13.0: 1.0}),
}


@dataclass(frozen=True, eq=False)
class ReferenceTable:
    """One table: ``masses`` (GeV, ascending) and ``xsec_fb`` at one sqrt(s)."""

    process: str
    sqrts: float
    masses: np.ndarray
    xsec_fb: np.ndarray

    def __call__(self, mass: float | np.ndarray, *, interpolation: str = "log") -> np.ndarray:
        """sigma (fb) at ``mass``; NaN outside the table's range."""
        m = np.asarray(mass, dtype=float)
        if interpolation == "log":
            value = np.exp(np.interp(m, self.masses, np.log(self.xsec_fb)))
        else:
            value = np.interp(m, self.masses, self.xsec_fb)
        inside = (m >= self.masses[0]) & (m <= self.masses[-1])
        return np.where(inside, value, np.nan)


XsecTables = Mapping[tuple[str, float], ReferenceTable]


def _read_table(path: Path, process: str, sqrts: float) -> ReferenceTable:
    column, units = _COLUMNS[process]
    masses, values = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        tokens = text.replace("GeV", " ").split()
        try:
            masses.append(float(tokens[0]))
            values.append(float(tokens[column]))
        except (IndexError, ValueError) as err:
            msg = f"{path}, line {number}: cannot read mass and cross section from {line!r}"
            raise ProtomodelsError(msg) from err
        if not (np.isfinite(masses[-1]) and masses[-1] > 0 and np.isfinite(values[-1])
                and values[-1] > 0):
            msg = (f"{path}, line {number}: mass {tokens[0]} and cross section {tokens[column]} "
                   "must be finite and positive; fix the line")
            raise ProtomodelsError(msg)
    order = np.argsort(masses, kind="stable")
    m = np.asarray(masses)[order]
    v = np.asarray(values)[order] * units[sqrts]
    if len(m) < 2 or (np.diff(m) == 0).any():
        msg = f"{path}: need >= 2 rows with distinct masses; fix the table"
        raise ProtomodelsError(msg)
    return ReferenceTable(process, sqrts, m, v)


@cache
def _load(folder: str) -> dict[tuple[str, float], ReferenceTable]:
    tables = {}
    for process in _COLUMNS:
        for sqrts in SQRTS:
            path = Path(folder) / f"xsec{process}{int(sqrts)}.txt"
            if not path.exists():
                msg = f"cross-section table {path} is missing; check --shared / PROTOMODELS_SHARED"
                raise ProtomodelsError(msg)
            tables[(process, sqrts)] = _read_table(path, process, sqrts)
    return tables


def load_tables(shared: str | os.PathLike[str] | None = None) -> XsecTables:
    """Read all reference tables (cached per folder)."""
    return _load(str(shared_dir(shared) / "data" / "xsec"))


_SQUARKS = (1000001, 1000002, 1000003, 1000004)
_THIRD = (1000005, 2000005, 1000006, 2000006)
_SLEPTONS = (1000011, 1000013, 1000015)
_C1, _C2, _N1, _N2, _N3 = 1000024, 1000037, 1000022, 1000023, 1000025


def production_key(*ids: int) -> tuple[int, ...]:
    """A production's key: its PDG ids sorted (one id for a singly produced resonance)."""
    return tuple(sorted(ids))


@cache
def _channel_map() -> dict[tuple[int, int], str]:
    table: dict[tuple[int, int], str] = {}
    for q in _SQUARKS:
        table[production_key(-q, q)] = "squark"
    for q in _THIRD:
        table[production_key(-q, q)] = "stop"
    for q in (*_SQUARKS, *_THIRD):
        table[production_key(q, 1000021)] = "squark"
    table[(1000021, 1000021)] = "gluino"
    for lep in _SLEPTONS:
        table[production_key(-lep, lep)] = "slepslep"
        table[production_key(-lep, lep + 1)] = "slepslep"
    for a, b in ((-_C1, _C1), (-_C2, _C2), (-_C1, _C2), (-_C2, _C1)):
        table[production_key(a, b)] = "C1C1"
    for pair in ((_N2, _N2), (_N3, _N3), (_N1, _N2), (_N2, _N3)):
        table[production_key(*pair)] = "C1C1"
    for pair in ((_N1, _C1), (_N2, _C1), (_N2, _C2), (_N3, _C1), (_N3, _C2)):
        table[production_key(*pair)] = "N2C1p"
    for pair in ((-_C1, _N2), (-_C2, _N2), (-_C1, _N3), (-_C2, _N3)):
        table[production_key(*pair)] = "N2C1m"
    return table


def channel_table(pair: tuple[int, int]) -> str | None:
    """Name of the table serving a production pair (sorted PDG ids), or None."""
    return _channel_map().get(production_key(*pair))


def production_channels(particles: list[int] | tuple[int, ...]) -> list[tuple[int, int]]:
    """Production pairs with a reference table among the given (positive) particle ids."""
    active = set(particles)
    return sorted(
        pair for pair in _channel_map() if abs(pair[0]) in active and abs(pair[1]) in active
    )


def table_xsec(
    pair: tuple[int, int],
    masses: Mapping[int, float],
    tables: XsecTables,
    *,
    interpolation: str = "log",
) -> dict[float, float]:
    """Reference sigma (fb) of a pair at each sqrt(s), at the mean of the two masses.

    Returns:
        {sqrts: sigma}; a sqrt(s) whose table does not cover the mass is missing.
    """
    process = channel_table(pair)
    if process is None:
        return {}
    mass = 0.5 * (masses[abs(pair[0])] + masses[abs(pair[1])])
    result = {}
    for sqrts in SQRTS:
        value = float(tables[(process, sqrts)](mass, interpolation=interpolation))
        if np.isfinite(value):
            result[sqrts] = value
    return result
