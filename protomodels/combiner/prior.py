"""The prior of a protomodel: its complexity and three penalty factors.

Follows the reference builder (SModelS/protomodels ``develop``, ``tester/combiner.py``):

- ``priorForNDF``: pi = exp(-(n_particles/2 + n_branchings/4 + n_multipliers/8)) ("expo1",
  the default), beside "expo2", "gauss1" and "flat" (:data:`PRIORS`; any callable of the three
  counts may be used instead);
- ``computePrior``: n_particles = active particles, LSP included; n_branchings = per active
  particle other than the LSP, the number of distinct branching ratios above 1e-5 (a and b
  count as one when |a - b| / (a + b) < 0.025) minus one (so a particle with a decay table but
  no channel counts -1, as in the reference); n_multipliers = the number of distinct
  multipliers > 1e-4 of production channels whose two particles are active and whose cross
  section (at the highest sqrt(s), 13 TeV) is at least 0.001 fb (a and b count as one when
  2 |a - b| / (a + b) < 0.03, compared with the first value of each group in turn) plus 0.1 for
  every further multiplier in a group;
- ``penaltyForMissingResults``: 1 if the predictions come from ATLAS and CMS, 0.1 if from one
  experiment only, 0.01 if there are none;
- ``penaltyForExtremeSSMs``: per multiplier v outside (0.01, 100) (v != 0),
  1 - |log10 v| / 20, at least 1e-10;
- ``penaltyForUndemocraticFlavors``: for the off-shell (three-body) decays of the lighter
  chargino and of the second neutralino (:func:`flavour_penalty`). Where the reference returns 0
  (which makes K = -inf), this module uses ``PriorSettings.flavour_floor`` and says so in
  :attr:`Prior.flags`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from protomodels.exceptions import ProtomodelsError
from protomodels.theory.protomodel import Protomodel
from protomodels.theory.xsec import (
    XsecTables,
    channel_table,
    load_tables,
    production_key,
    table_xsec,
)

__all__ = [
    "PRIORS",
    "Complexity",
    "Prior",
    "PriorError",
    "PriorSettings",
    "compute_prior",
    "count_branchings",
    "count_multipliers",
    "derive_multipliers",
    "expo1",
    "expo2",
    "extreme_multiplier_penalty",
    "flat",
    "flavour_penalty",
    "gauss1",
    "missing_experiment_penalty",
    "model_multipliers",
    "prior_function",
]


def __dir__() -> list[str]:
    return __all__


Pair = tuple[int, int]
PriorFunction = Callable[[int, int, float], float]

BR_MIN = 1e-5  #: branching ratios at or below are ignored
BR_SAME = 0.025  #: |a - b| / (a + b) below: the same branching ratio
SSM_MIN = 1e-4  #: multipliers at or below are "zero"
SSM_SAME = 0.03  #: 2 |a - b| / (a + b) below: the same multiplier
XSEC_MIN_FB = 0.001  #: channels with a smaller cross section do not count
REPEAT_COST = 0.1  #: cost of a multiplier that repeats a value
_C1, _N1, _N2 = 1000024, 1000022, 1000023
_M_TAU = 1.78  # GeV, as in the reference


class PriorError(ProtomodelsError):
    """Unknown prior or inconsistent prior input."""


# -- the prior functions --------------------------------------------------------------------
def expo1(n_particles: int, n_branchings: int, n_multipliers: float) -> float:
    """exp(-(n_p/2 + n_b/4 + n_m/8)), the reference default."""
    return math.exp(-(n_particles / 2 + n_branchings / 4 + n_multipliers / 8))


def expo2(n_particles: int, n_branchings: int, n_multipliers: float) -> float:
    """exp(-(n_p/3 + n_b/11.04 + n_m/17.1)) (reference "expo2")."""
    return math.exp(-(n_particles / 3 + n_branchings / (3.68 * 3) + n_multipliers / (5.7 * 3)))


def gauss1(n_particles: int, n_branchings: int, n_multipliers: float) -> float:
    """exp(-((n_p/2)^2 + (n_b/8)^2 + (n_m/32)^2) / 2) (reference "gauss1")."""
    squares = (n_particles / 2) ** 2 + (n_branchings / 8) ** 2 + (n_multipliers / 32) ** 2
    return math.exp(-0.5 * squares)


def flat(n_particles: int, n_branchings: int, n_multipliers: float) -> float:
    """1 (reference "flat")."""
    return 1.0


#: the named priors
PRIORS: Mapping[str, PriorFunction] = MappingProxyType(
    {"expo1": expo1, "expo2": expo2, "gauss1": gauss1, "flat": flat}
)


def prior_function(prior: str | PriorFunction) -> PriorFunction:
    """The prior function for a name of :data:`PRIORS` or a callable (returned as is)."""
    if callable(prior):
        return prior
    if prior not in PRIORS:
        msg = f"unknown prior {prior!r}; use one of {', '.join(PRIORS)} or a callable"
        raise PriorError(msg)
    return PRIORS[prior]


# -- counting -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Complexity:
    """The counts the prior is a function of.

    Attributes:
        n_particles: active particles, LSP included.
        n_branchings: distinct branching ratios minus one, summed over decaying particles.
        n_multipliers: distinct multipliers plus 0.1 per repeated one.
        distinct_multipliers: the first value of each group of equal multipliers.
    """

    n_particles: int
    n_branchings: int
    n_multipliers: float
    distinct_multipliers: tuple[float, ...] = ()


def count_branchings(model: Protomodel) -> int:
    """Sum over active particles but the LSP of (distinct BRs above 1e-5) - 1."""
    total = 0
    lsp = model.lsp
    for pdg, channels in model.decays.items():
        if pdg not in model.masses or pdg == lsp:
            continue
        seen: list[float] = []
        for decay in channels:
            br = float(decay.br)
            if br > BR_MIN and all(abs(x - br) / (x + br) >= BR_SAME for x in seen):
                seen.append(br)
        total += len(seen) - 1
    return total


def _xsec_value(by_sqrts: Mapping[float, float] | None) -> float | None:
    if not by_sqrts:
        return None
    return float(by_sqrts[max(by_sqrts)])


def count_multipliers(
    multipliers: Mapping[Pair, float],
    xsecs: Mapping[Pair, Mapping[float, float]],
    active: Iterable[int],
) -> tuple[float, tuple[float, ...]]:
    """(n_multipliers, distinct values) of the channels with both particles active and a cross
    section of at least 0.001 fb, in the order of ``multipliers``."""
    active = set(active)
    groups: dict[float, int] = {}
    for pair, value in multipliers.items():
        if abs(pair[0]) not in active or abs(pair[1]) not in active:
            continue
        sigma = _xsec_value(xsecs.get(pair))
        if sigma is None or sigma < XSEC_MIN_FB or not value > SSM_MIN:
            continue
        for first in groups:
            if 2.0 * abs(value - first) / (value + first) < SSM_SAME:
                groups[first] += 1
                break
        else:
            groups[float(value)] = 1
    repeats = sum(groups.values()) - len(groups)
    return len(groups) + REPEAT_COST * repeats, tuple(groups)


# -- multipliers of a model ---------------------------------------------------------------
def derive_multipliers(
    model: Protomodel,
    xsecs: Mapping[Pair, Mapping[float, float]],
    *,
    tables: XsecTables | None = None,
    sqrts: float = 13.0,
    interpolation: str = "linear",
) -> dict[Pair, float]:
    """Multipliers of explicit cross sections: sigma / reference sigma at ``sqrts``.

    This is how the reference builder's multipliers of an SLHA file are obtained (its tables
    interpolate sigma linearly). Channels without a reference table, or whose table does not
    cover the mass, get none (the builder skips them).
    """
    tables = tables if tables is not None else load_tables()
    out = {}
    for pair, by_sqrts in xsecs.items():
        pair = production_key(*pair)
        if channel_table(pair) is None or sqrts not in by_sqrts:
            continue
        reference = table_xsec(pair, model.masses, tables, interpolation=interpolation)
        if reference.get(sqrts):
            out[pair] = float(by_sqrts[sqrts]) / reference[sqrts]
    return out


def model_multipliers(
    model: Protomodel,
    xsecs: Mapping[Pair, Mapping[float, float]],
    *,
    tables: XsecTables | None = None,
) -> tuple[dict[Pair, float], bool]:
    """(multipliers, derived): the model's own (every channel with a cross section, 1 where
    not listed), or for explicit cross sections (SLHA input) the :func:`derive_multipliers`."""
    if model.xsecs is None:
        out = {production_key(*p): float(v) for p, v in model.ssm.items()}
        for pair in xsecs:
            out.setdefault(production_key(*pair), 1.0)
        return dict(sorted(out.items())), False
    return derive_multipliers(model, xsecs, tables=tables), True


# -- penalties ------------------------------------------------------------------------------
def missing_experiment_penalty(analysis_ids: Iterable[str]) -> float:
    """1 if ATLAS and CMS are both among the analyses, 0.1 if one is, 0.01 if none."""
    ids = list(analysis_ids)
    if not ids:
        return 0.01
    has_atlas = any("ATLAS" in i for i in ids)
    has_cms = any("CMS" in i for i in ids)
    return 1.0 if has_atlas and has_cms else 0.1


def extreme_multiplier_penalty(multipliers: Iterable[float]) -> float:
    """Product over multipliers v outside (0.01, 100), v != 0, of 1 - |log10 v| / 20."""
    factor = 1.0
    for v in multipliers:
        if v == 0.0 or 0.01 < v < 100.0:
            continue
        factor *= max(1.0 - abs(math.log10(v)) / 20.0, 1e-10)
    return factor


_LIGHT_QUARKS = {(_N1, 1, 2), (_N1, 2, 2), (_N1, 5, 5)}
_LEPTONIC = {
    _C1: {(_N1, 11, 12), (_N1, 13, 14), (_N1, 15, 16)},
    _N2: {(_N1, 11, 11), (_N1, 13, 13), (_N1, 15, 15)},
}


def flavour_penalty(model: Protomodel) -> tuple[float, str | None]:
    """The reference's penalty for undemocratic lepton flavours in three-body decays.

    For the lighter chargino and the second neutralino with three-body decays only (two-body
    only: no penalty; a mix of both: 0): a single decay to light quarks or b quarks is free;
    otherwise each missing leptonic channel (e, mu, and tau when the mass gap to the LSP allows
    it: > 1.78 GeV, 3.56 GeV for the chargino) divides the factor by (4 - n) (by 2 without tau);
    with all of them present, the factor is 1 - max|BR - mean BR| / 3. A chargino with several
    channels and no leptonic one gets 0.

    Returns:
        (factor, reason the factor is 0 or None).
    """
    factor = 1.0
    m_lsp = model.masses.get(_N1, model.masses[model.lsp])
    for pdg in (_C1, _N2):  # the reference's order
        channels = [d for d in model.decays.get(pdg, ()) if pdg in model.masses]
        if not channels:
            continue
        keys = [(abs(d.daughter), *sorted(abs(s) for s in d.sm)) for d in channels]
        if all(len(k) == 2 for k in keys):
            continue
        if not all(len(k) == 3 for k in keys):
            return 0.0, f"{pdg} has both two- and three-body decays"
        if len(keys) == 1 and keys[0] in _LIGHT_QUARKS:
            continue
        leptonic = _LEPTONIC[pdg]
        n_leptonic = sum(
            1 for k, d in zip(keys, channels, strict=True) if k in leptonic and d.br != 0
        )
        if n_leptonic == 0:
            if pdg == _N2:
                continue
            return 0.0, f"{pdg} has several three-body channels but no leptonic one"
        m_tau = 2 * _M_TAU if pdg == _C1 else _M_TAU
        if model.masses[pdg] - m_lsp >= m_tau:
            if n_leptonic != 3:
                factor *= 1.0 / (4 - n_leptonic)
                continue
        elif n_leptonic != 2:
            factor *= 0.5
            continue
        brs = [float(d.br) for d in channels]
        mean = sum(brs) / len(brs)
        factor *= 1.0 - max(max(brs) - mean, mean - min(brs)) / 3.0
    return factor, None


# -- the prior ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PriorSettings:
    """Which prior and which penalties.

    Attributes:
        name: a name of :data:`PRIORS` or a callable (n_particles, n_branchings,
            n_multipliers) -> prior.
        missing_experiment, extreme_multipliers, undemocratic_flavours: switch the penalties.
        flavour_floor: used where the flavour penalty is 0 (the reference's K = -inf).
    """

    name: str | PriorFunction = "expo1"
    missing_experiment: bool = True
    extreme_multipliers: bool = True
    undemocratic_flavours: bool = True
    flavour_floor: float = 1e-10

    def __post_init__(self) -> None:
        prior_function(self.name)
        if not 0 < self.flavour_floor <= 1:
            msg = f"PriorSettings.flavour_floor must be in (0, 1], got {self.flavour_floor}"
            raise PriorError(msg)


@dataclass(frozen=True)
class Prior:
    """The prior and its parts.

    Attributes:
        value: prior times the penalties.
        before_penalties: the prior function of the counts.
        complexity: the counts.
        missing_experiment, extreme_multipliers, undemocratic_flavours: the penalty factors
            (1 when switched off).
        flags: remarks, e.g. ``"flavour_penalty_floored: ..."``.
    """

    value: float
    before_penalties: float
    complexity: Complexity
    missing_experiment: float
    extreme_multipliers: float
    undemocratic_flavours: float
    flags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def log(self) -> float:
        """ln(value)."""
        return math.log(self.value)


def compute_prior(
    model: Protomodel,
    multipliers: Mapping[Pair, float],
    xsecs: Mapping[Pair, Mapping[float, float]],
    analysis_ids: Iterable[str],
    *,
    settings: PriorSettings | None = None,
    scale: float = 1.0,
) -> Prior:
    """The prior of ``model`` with every multiplier and cross section times ``scale``.

    Args:
        model: the protomodel (particles, decays).
        multipliers: signal-strength multiplier per production channel (see
            :func:`model_multipliers`).
        xsecs: cross sections per channel, {pair: {sqrts: fb}} (before scaling).
        analysis_ids: analyses of the predictions (for the missing-experiment penalty).
        settings: prior name and penalty switches.
        scale: the rescaling of the signal (mu-hat), applied as the reference does before it
            computes the prior.
    """
    settings = settings or PriorSettings()
    if not (math.isfinite(scale) and scale >= 0):
        msg = f"compute_prior: scale must be finite and >= 0, got {scale}"
        raise PriorError(msg)
    scaled = {production_key(*p): float(v) * scale for p, v in multipliers.items()}
    scaled_xsecs = {production_key(*p): {s: x * scale for s, x in v.items()}
                    for p, v in xsecs.items()}
    n_multipliers, distinct = count_multipliers(scaled, scaled_xsecs, model.masses)
    complexity = Complexity(len(model.masses), count_branchings(model), n_multipliers, distinct)
    before = prior_function(settings.name)(
        complexity.n_particles, complexity.n_branchings, complexity.n_multipliers
    )
    flags = []
    missing = missing_experiment_penalty(analysis_ids) if settings.missing_experiment else 1.0
    extreme = extreme_multiplier_penalty(scaled.values()) if settings.extreme_multipliers else 1.0
    flavour = 1.0
    if settings.undemocratic_flavours:
        flavour, reason = flavour_penalty(model)
        if flavour == 0.0:
            flavour = settings.flavour_floor
            flags.append(f"flavour_penalty_floored: {reason} (reference: K = -inf)")
    return Prior(
        value=before * missing * extreme * flavour,
        before_penalties=before,
        complexity=complexity,
        missing_experiment=missing,
        extreme_multipliers=extreme,
        undemocratic_flavours=flavour,
        flags=tuple(flags),
    )
