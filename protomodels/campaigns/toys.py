"""Toy databases: the imported database with its observations redrawn (issue 20).

A *toy* is a pseudo-data version of the database: every observation is replaced by a draw from
the background-only model (SM-only toys) or from background plus the yields that a given
protomodel predicts (signal-injected toys, ``inject=``). Campaigns walk on many toys and count how
often the best K there reaches the observed one (the global p-value). What is drawn follows the
reference builder's generator (SModelS/protomodels, ``ptools/expResModifier.py``, branch
``develop``); where this module does something else, it says so below.

What is drawn
-------------
Each result is drawn by the first rule that applies, as ``fakeBackgrounds`` dispatches:

1. **Results with a covariance** (the simplified likelihood; ``fakeBackgroundsForSL``): the true
   backgrounds of all data sets jointly. Linear model: lambda = b + theta, theta ~ N(0, Sigma).
   With third moments (every data set has one) the skewed model the likelihood uses
   (:func:`protomodels.statistics.simplified.make_model`): lambda = A + theta + C theta^2 / B^2,
   theta ~ N(0, V), which has the mean b, covariance Sigma and third moments m3 of the data. (The
   reference draws theta from N(0, Sigma) in the same formula, a slightly wider stand-in for V.)
   lambda is clipped at 0, then n ~ Poisson(lambda + s).
2. **Results with pyhf workspaces** (``fakeBackgroundsForPyhf``; every workspace of the result
   whose JSON is present, ``jsonFiles`` first, then ``jsonFiles_FullLikelihood``): the
   observations, main and auxiliary, drawn from the background-only model at its nominal
   parameters (pyhf's ``suggested_init``, as the reference), i.e. what
   ``model.make_pdf(pars).sample()`` draws, with this module's seeded generator: every main bin
   n ~ Poisson(expected_actualdata + s), and the auxiliary data of every constrained, not fixed,
   parameter set from its constraint term (Gaussian: nominal + width z, rounded to 1e-6;
   Poisson, ``shapesys``: Poisson(tau x nominal)). The toy's workspace carries them: the main
   ones as its ``observations``, the auxiliary ones as ``auxdata`` of the parameters in the
   configuration of each measurement, which pyhf uses instead of the nominal ones, so the fits
   see both. (The reference samples the main model only and keeps the nominal auxiliary data,
   which leaves the systematic spread out. Drawing the true nuisance parameters from their
   constraints instead, as rule 1 does, gives absurd rates where many large ``normsys``
   variations of a small background multiply: 1e9 events in a bin of ATLAS-SUSY-2018-16.)
   A data set mapped to a bin of the workspace gets that bin's count as its ``observed_n``; a
   data set that several workspaces of the result model (a combination and its parts, a full
   and a simplified likelihood) gets the count of the first that draws it, and that count is
   written into the others' bins too, so that every view of a region agrees. These counts are
   Poisson around the nominal background, without the systematic spread, which the auxiliary
   data carry for the fits. A single-region likelihood has no auxiliary data: it stands in for
   a workspace that is not fitted (too many parameters, full likelihoods off) and gives the
   region's r. So the data set's own ``observed_n`` is that count shifted by its background
   error, round(n + sigma_b z) clipped at 0, which gives it the mean b and the variance
   b + sigma_b^2 of rule 3 while it stays correlated with the workspace's bin (generator
   version 2; toy files of version 1 gave the data sets the bin's count). Data sets of the
   result that no workspace maps are drawn by rule 3.
3. **Other efficiency-map data sets** (``sampleEfficiencyMap``): the true background from its
   uncertainty, then n ~ Poisson(lambda + s). ``distribution="gaussian"`` (default):
   lambda = b + sigma z clipped at 0 (the reference's "kept positive"); ``"lognormal"``: a
   lognormal of mean b and standard deviation sigma, or the Gaussian where b < sigma/4 (as
   ``drawNuisance``). The lognormal option applies to this rule only, as in the reference.
4. **Upper-limit maps with an expected limit** (``computeNewObserved``): one standard-normal draw
   per map (topology grid), x = bg_scale z, redrawn while the shifted limits would not be
   positive (x <= -1.96); the observed map becomes the expected one shifted,
   observed = expected + x expected / 1.96 (on the expected map's grid points, as the reference
   replaces the map). Maps without an expected limit keep their observed limit.

Signal injection (``inject=`` a :class:`~protomodels.theory.protomodel.Protomodel` or SLHA file):
the model is predicted with the evaluation's settings (sigmacut 0.02 fb, minmassgap 10 GeV, every
signal region; :class:`~protomodels.theory.predictions.Predictor`, as
:class:`~protomodels.evaluation.Evaluator` does) on the real database; s = sigma x BR x eff x lumi
of each data set enters the Poisson means above (the reference adds a separate
Poisson(s) draw: the same distribution). Upper-limit maps (``addSignalForULMap``): the
prediction's sigma x BR is added to the observed limit at every grid point within 400 GeV
(Euclidean distance over the mass axes) of the prediction's mass point, for every map of its
topologies; on top of the shifted limit (the reference adds it to the unshifted expected one,
which drops the background fluctuation near the signal) or, for maps without an expected limit,
to the observed one.

Scaled background uncertainties (``bg_scale`` = f; the reference's ``fudge``): ``bg_error``
times f, the covariance times f^2, the third moments times f^3, and in the pyhf workspaces the
``normsys`` and ``histosys`` variations around the nominal (hi -> 1 + f (hi - 1) for normsys,
hi_data -> nominal + f (hi_data - nominal) for histosys; lo alike, a normsys lo kept > 0), the
``staterror`` and ``shapesys`` uncertainties times f (the reference scales normsys and histosys
around the midpoint of hi and lo); ``lumi`` and normalisation factors are unchanged. The same
scaling is applied to the toys' draws and to the database a toy gives (:func:`apply_toy`), and
:func:`observed_toy` gives the real observations with scaled uncertainties (the "scaled observed"
database). Upper-limit maps have no background uncertainty to scale: the shift x is drawn as
f z (the reference), their likelihood is unchanged.

The published 95 % CL limit of an efficiency-map data set (``upper_limit_fb``, used for its r)
belongs to the real count: :func:`apply_toy` rescales it (and the expected one when bg_scale
changes the background error) by the ratio of the single-region CLs limits
(:func:`protomodels.statistics.single_region.upper_limit`) for the toy's and for the real inputs;
the reference keeps the published limit for background-only toys.

Storage
-------
A :class:`Toy` holds only what is redrawn (per data set the count, per upper-limit map the shift
x, per pyhf workspace its main observations, and the injected upper-limit additions) with its
seed, method and the database version and source checksum it was made on. Toy i of seed S draws
from ``SeedSequence(S, spawn_key=(i, crc32(result id)))`` for each result (the grandchildren of
``SeedSequence(S).spawn(n)[i]``): it does not depend on the number of toys nor on the other
results, and :func:`make_toy` rebuilds it. :func:`write_toys` keeps toys in a small SQLite file
(a ``meta`` table and one compressed JSON overlay per toy, a few kB each);
:func:`read_toy`, :func:`count_toys`, :func:`parse_toy_reference` (``TOYS.sqlite:INDEX``) read
them back and :func:`apply_toy` makes the in-memory database of a toy.

Example: the upper-limit shift (``computeNewObserved``) for x = 1.96 doubles the limit:

>>> shifted_upper_limits([1.0, 2.0], 1.96).tolist()
[2.0, 4.0]
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from protomodels._version import __version__
from protomodels.database.database import Database
from protomodels.database.records import DataSet, Grid, PyhfWorkspace, Result, Topology
from protomodels.exceptions import ProtomodelsError

__all__ = [
    "DISTRIBUTIONS",
    "UL_INJECTION_RADIUS",
    "UL_SIGMA",
    "Toy",
    "ToyDatabaseMismatchError",
    "ToyError",
    "ToyMaker",
    "ToyMethod",
    "ToyReference",
    "ToyReferenceError",
    "apply_toy",
    "count_toys",
    "load_toy",
    "make_toy",
    "make_toys",
    "observed_toy",
    "parse_toy_reference",
    "read_toy",
    "read_toy_meta",
    "scale_workspace",
    "shifted_upper_limits",
    "toy_indices",
    "write_toys",
]


def __dir__() -> list[str]:
    return __all__


#: nuisance distributions of the uncorrelated efficiency-map regions
DISTRIBUTIONS = ("gaussian", "lognormal")
#: an expected 95 % CL limit is 1.96 sigma of the Gaussian the observed limit is drawn from
UL_SIGMA = 1.96
#: GeV: grid points of an upper-limit map this close to a prediction get its signal (the
#: reference's ``maxmassdist``)
UL_INJECTION_RADIUS = 400.0
#: the ``kind`` entry of a toy file's meta table
FILE_KIND = "protomodels-toys"
FILE_SCHEMA = "1"
#: the index part of a reference to the real observations (with the file's bg_scale)
OBSERVED = "observed"
_MAX_REDRAWS = 1000
#: decimals kept of a drawn Gaussian auxiliary datum (widths are ~1 or relative errors)
_AUX_DIGITS = 6
_SQLITE_MAGIC = b"SQLite format 3\x00"


# -- errors --------------------------------------------------------------------------------------
class ToyError(ProtomodelsError):
    """A toy cannot be made, stored, read or applied."""


class ToyReferenceError(ToyError):
    """A ``TOYS.sqlite:INDEX`` reference or a toy file that cannot be used."""


class ToyDatabaseMismatchError(ToyError):
    """A toy made on another database (version, source checksum or results) than the one it is
    applied to."""


# -- records -------------------------------------------------------------------------------------
#: version of the drawing rules (stored with every toy file's method)
GENERATOR = 2


@dataclass(frozen=True)
class ToyMethod:
    """How toys are drawn.

    Attributes:
        distribution: nuisance distribution of the uncorrelated regions (``gaussian`` or
            ``lognormal``).
        bg_scale: factor on every background uncertainty (> 0).
        inject_name: name of the injected protomodel (None: SM-only toys).
        inject_digest: SHA-256 (16 hex digits) of the injected model's SLHA text with the cross
            sections used (None: SM-only toys).
        generator: version of the drawing rules (2: the data-set counts of pyhf results carry
            their background uncertainty; toy files of version 1 lack it, see the module docs).
    """

    distribution: str = "gaussian"
    bg_scale: float = 1.0
    inject_name: str | None = None
    inject_digest: str | None = None
    generator: int = GENERATOR

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            msg = (f"distribution {self.distribution!r}: choose one of "
                   f"{', '.join(DISTRIBUTIONS)}")
            raise ToyError(msg)
        scale = self.bg_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (
            math.isfinite(scale) and scale > 0
        ):
            msg = f"bg_scale {scale!r}: give a finite number > 0 (1 leaves the uncertainties)"
            raise ToyError(msg)
        object.__setattr__(self, "bg_scale", float(scale))

    def as_json(self) -> dict[str, Any]:
        """The method as stored in a toy file."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToyMethod:
        """The method from :meth:`as_json`."""
        values = {f.name: data.get(f.name, f.default) for f in dataclasses.fields(cls)}
        values["generator"] = int(data.get("generator", 1))  # (files before version 2)
        return cls(**values)

    def describe(self) -> str:
        """One line: ``gaussian, bg_scale 1, SM only``."""
        signal = f"injected {self.inject_name}" if self.inject_name else "SM only"
        return f"{self.distribution}, bg_scale {self.bg_scale:g}, {signal}"


@dataclass(frozen=True)
class Toy:
    """One toy: the redrawn observations (an overlay on the store) and how they were made.

    Attributes:
        index: the toy's number (None: the real observations, :func:`observed_toy`).
        seed: the seed of the toys it belongs to (None for the real observations).
        method: distribution, bg_scale, injected model.
        database_version, database_checksum: ``Database.meta`` of the store it was made on
            (``database_version``, ``source_checksum``).
        observed: {result id: {data-set id: count}} of every efficiency-map data set.
        ul_shifts: {result id: {data-set id: {txname: x}}} of every upper-limit map with an
            expected limit (observed = expected (1 + x / 1.96)).
        pyhf_observations: {result id: {workspace key: [[count per bin] per observation]}}, the
            main observations in the order of the workspace's ``observations``; the key is
            ``jsonFiles/NAME`` or ``jsonFiles_FullLikelihood/NAME``.
        pyhf_auxdata: {result id: {workspace key: {parameter set: [auxiliary data]}}}, the
            drawn auxiliary data of every constrained (not fixed) parameter set.
        ul_signal: with injection, {result id: {data-set id: {txname: [[point index, ...],
            [fb added, ...]]}}} (points of the map the toy's observed limits are on).
        origin: where the toy was read from (``FILE:INDEX``), for messages; not compared.
    """

    index: int | None
    seed: int | None
    method: ToyMethod
    database_version: str
    database_checksum: str
    observed: dict[str, dict[str, int]] = field(default_factory=dict)
    ul_shifts: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    pyhf_observations: dict[str, dict[str, list[list[int]]]] = field(default_factory=dict)
    pyhf_auxdata: dict[str, dict[str, dict[str, list[float]]]] = field(default_factory=dict)
    ul_signal: dict[str, dict[str, dict[str, list[list[float]]]]] = field(
        default_factory=dict
    )
    origin: str | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        """``FILE:INDEX`` when read from a file, else ``toy INDEX (seed S)``."""
        if self.origin:
            return self.origin
        if self.index is None:
            return f"the observed data (bg_scale {self.method.bg_scale:g})"
        return f"toy {self.index} (seed {self.seed})"

    def overlay_json(self) -> dict[str, Any]:
        """The redrawn observations, as stored (JSON-compatible)."""
        overlay: dict[str, Any] = {
            "observed": self.observed,
            "ul_shifts": self.ul_shifts,
            "pyhf_observations": self.pyhf_observations,
            "pyhf_auxdata": self.pyhf_auxdata,
        }
        if self.ul_signal:
            overlay["ul_signal"] = self.ul_signal
        return overlay


@dataclass(frozen=True)
class ToyReference:
    """A parsed ``TOYS.sqlite:INDEX`` reference (``INDEX`` None: ``TOYS.sqlite:observed``)."""

    path: Path
    index: int | None

    def __str__(self) -> str:
        return f"{self.path}:{OBSERVED if self.index is None else self.index}"


# -- helpers -------------------------------------------------------------------------------------
def shifted_upper_limits(expected: Sequence[float] | np.ndarray, x: float) -> np.ndarray:
    """Observed limits drawn from expected ones with the standard-normal shift ``x``:
    expected + x expected / 1.96 (``computeNewObserved``)."""
    values = np.asarray(expected, dtype=float)
    return values + x * values / UL_SIGMA


def _dataset_key(ds: DataSet) -> str:
    return ds.dataset_id


def _signal_key(ds: DataSet) -> str:
    """The data-set id the predictions and the pyhf mapping use."""
    return ds.data_id or ds.dataset_id


def _workspace_key(w: PyhfWorkspace) -> str:
    return f"{'jsonFiles_FullLikelihood' if w.full else 'jsonFiles'}/{w.file_name}"


def _checksum(database: Database) -> str:
    """The store's source checksum ("" where the source was a folder)."""
    return str(database.meta.get("source_checksum") or "")


def _rng(seed: int, index: int, result_id: str) -> np.random.Generator:
    stream = np.random.SeedSequence(seed, spawn_key=(index, zlib.crc32(result_id.encode())))
    return np.random.default_rng(stream)


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        msg = f"seed {seed!r}: give an integer >= 0"
        raise ToyError(msg)
    return int(seed)


def _workspaces_loaded(database: Database) -> bool:
    return not any(
        w.workspace is None and not w.missing for r in database.results for w in r.pyhf
    )


def _kinds_of(result: Result) -> str:
    """How a result is drawn: ``covariance``, ``pyhf``, ``regions`` or ``upper_limits``."""
    if result.data_type == "upperLimit":
        return "upper_limits"
    if result.covariance is not None:
        return "covariance"
    if any(w.workspace is not None for w in result.pyhf):
        return "pyhf"
    return "regions"


@contextlib.contextmanager
def _pyhf_numpy() -> Iterator[Any]:
    """pyhf on its NumPy backend inside the block (the previous backend restored)."""
    import pyhf

    tensorlib, optimizer = pyhf.get_backend()
    pyhf.set_backend("numpy")
    try:
        yield pyhf
    finally:
        pyhf.set_backend(tensorlib, optimizer)


#: the interpolation codes of the project's fits (statistics.full_likelihood.MODIFIER_SETTINGS)
_MODIFIER_SETTINGS = {"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": "code4p"}}
_MIN_NORMSYS_LO = 1e-3


def scale_workspace(spec: Mapping[str, Any], factor: float) -> dict[str, Any]:
    """A copy of a pyhf workspace with its background uncertainties scaled by ``factor``:
    ``normsys`` hi/lo around 1 (lo kept >= 1e-3), ``histosys`` hi_data/lo_data around the
    sample's nominal, ``staterror`` and ``shapesys`` uncertainties times the factor; ``lumi``,
    ``normfactor`` and ``shapefactor`` unchanged. ``factor`` 1 gives an unchanged copy."""
    out = json.loads(json.dumps(spec))
    if factor == 1.0:
        return out
    f = float(factor)
    for channel in out.get("channels", []):
        for sample in channel.get("samples", []):
            nominal = sample.get("data", [])
            for modifier in sample.get("modifiers", []):
                kind, data = modifier.get("type"), modifier.get("data")
                if data is None:
                    continue
                if kind == "normsys":
                    data["hi"] = 1.0 + f * (data["hi"] - 1.0)
                    data["lo"] = max(1.0 + f * (data["lo"] - 1.0), _MIN_NORMSYS_LO)
                elif kind == "histosys":
                    for key in ("hi_data", "lo_data"):
                        data[key] = [n + f * (v - n) for v, n in zip(data[key], nominal,
                                                                       strict=True)]
                elif kind in ("staterror", "shapesys"):
                    modifier["data"] = [f * v for v in data]
    return out


# -- signal injection ------------------------------------------------------------------------------
@dataclass
class _Signals:
    """The injected model's yields: events per efficiency-map data set, and the upper-limit
    predictions (sigma x BR, mass point) per result and txname."""

    events: dict[str, dict[str, float]] = field(default_factory=dict)
    upper_limits: dict[str, list[tuple[tuple[str, ...], tuple[float, ...], float]]] = field(
        default_factory=dict
    )


def _model_of(inject: object) -> tuple[Any, str]:
    from protomodels.theory.protomodel import Protomodel

    if isinstance(inject, Protomodel):
        return inject, inject.name
    if isinstance(inject, (str, os.PathLike)):
        path = Path(inject)
        if not path.is_file():
            msg = f"inject {path}: no such SLHA file; give the model to inject"
            raise ToyError(msg)
        return Protomodel.from_slha(path), path.name
    msg = f"inject: give a Protomodel or an SLHA file, not {type(inject).__name__}"
    raise ToyError(msg)


def _signals(database: Database, model: Any) -> tuple[_Signals, str]:
    """Predict the model on the real database with the evaluation's settings; returns the
    yields and the digest of the model (its SLHA text with the cross sections used)."""
    from protomodels.evaluation import EvaluationSettings
    from protomodels.theory.predictions import Predictor

    predictor = Predictor(database, settings=EvaluationSettings().predictions)
    xsecs = predictor.cross_sections(model)
    digest = hashlib.sha256(model.to_slha(xsecs=xsecs).encode()).hexdigest()[:16]
    signals = _Signals()
    by_id = {r.result_id: r for r in database.results}
    for p in predictor.predict(model):
        result = by_id[p.result_id]
        if p.data_type == "upperLimit":
            if p.masses is not None and p.xsec_fb > 0:
                signals.upper_limits.setdefault(p.result_id, []).append(
                    (tuple(p.txnames), tuple(float(m) for m in p.masses), float(p.xsec_fb))
                )
            continue
        if p.signals_fb is None or p.result_id in signals.events:
            continue
        events = {
            _signal_key(ds): float(s) * result.lumi_ifb
            for ds, s in zip(result.datasets, np.asarray(p.signals_fb).tolist(), strict=True)
            if s > 0
        }
        signals.events[p.result_id] = events
    return signals, digest


# -- drawing plans -------------------------------------------------------------------------------
@dataclass
class _Constraint:
    """The constraint term of one parameter set: its auxiliary data are drawn at the nominal
    parameters (Gaussian: centre + width z; Poisson: Poisson(rate))."""

    name: str
    kind: str  # "normal" or "poisson"
    centre: np.ndarray  # the nominal parameters (normal) or tau x nominal (Poisson)
    width: np.ndarray


@dataclass
class _PyhfPlan:
    """One workspace, prepared for drawing: the nominal expected main data (plus signal) and
    the constraint terms."""

    key: str
    names: list[str]
    slices: list[slice]
    rates: np.ndarray  # expected main data at the nominal parameters, plus signal
    constraints: list[_Constraint]
    bins: dict[str, int]  # data-set id (signal key) -> main bin

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, list[float]]]:
        """(main counts, {parameter set: auxiliary data})."""
        main = rng.poisson(self.rates)
        aux: dict[str, list[float]] = {}
        for c in self.constraints:
            if c.kind == "normal":
                values = c.centre + c.width * rng.standard_normal(len(c.centre))
                aux[c.name] = [round(float(v), _AUX_DIGITS) for v in values]
            else:
                aux[c.name] = [float(v) for v in rng.poisson(c.centre)]
        return main, aux


def _channel_bins(result: Result, workspace: PyhfWorkspace) -> dict[str, tuple[str, int]]:
    """{data-set id: (channel, bin)} of a workspace: the patch plan's signal channels, and
    data sets the mapping names with an explicit ``pyhf`` channel."""
    from protomodels.statistics.pyhf_patch import PyhfPatchError, plan_patch

    out: dict[str, tuple[str, int]] = {}
    try:
        plan = plan_patch(result, workspace)
    except PyhfPatchError:
        plan = None
    if plan is not None:
        for channel in plan.signal_channels:
            for k, name in enumerate(channel.datasets):
                out.setdefault(name, (channel.channel, k))
    known = {_signal_key(d) for d in result.datasets}
    for entry in workspace.channels:
        if entry.smodels is None or entry.pyhf is None or entry.smodels in out:
            continue
        if entry.smodels not in known:
            continue
        name, _, rest = entry.pyhf.partition("[")
        k = int(rest.rstrip("]")) if rest.rstrip("]").isdigit() else 0
        out[entry.smodels] = (name, k)
    return out


def _pyhf_plan(
    result: Result, workspace: PyhfWorkspace, factor: float, events: Mapping[str, float]
) -> _PyhfPlan:
    spec = scale_workspace(workspace.workspace or {}, factor)
    where = f"{result.result_id}/{workspace.file_name}"
    with _pyhf_numpy() as pyhf:
        try:
            model = pyhf.Workspace(spec).model(
                poi_name=None, modifier_settings=_MODIFIER_SETTINGS
            )
        except Exception as err:  # pyhf raises several kinds for a bad spec
            msg = f"{where}: cannot build the pyhf model to draw toys from ({err})"
            raise ToyError(msg) from err
        config = model.config
        init = np.asarray(config.suggested_init(), dtype=float)
        fixed = np.asarray(config.suggested_fixed(), dtype=bool)
        expected = np.asarray(model.expected_actualdata(init), dtype=float)
        constraints = []
        for name in config.auxdata_order:
            paramset = config.param_set(name)
            indices = np.arange(config.npars)[config.par_slice(name)]
            if fixed[indices].all():
                continue  # a fixed parameter: its auxiliary data stay
            if paramset.pdf_type == "normal":
                constraints.append(_Constraint(
                    name, "normal", init[indices], np.asarray(paramset.width(), dtype=float)
                ))
            elif paramset.pdf_type == "poisson":
                rate = np.asarray(paramset.factors, dtype=float) * init[indices]
                constraints.append(_Constraint(name, "poisson", rate, np.zeros(len(rate))))
        slices = config.channel_slices
        names = [o["name"] for o in spec["observations"]]
        missing = [n for n in names if n not in slices]
        if missing:
            msg = f"{where}: observations {', '.join(missing)} have no channel"
            raise ToyError(msg)
        n_main = int(config.nmaindata)
    bins: dict[str, int] = {}
    for dataset, (channel, k) in _channel_bins(result, workspace).items():
        if channel in slices and k < slices[channel].stop - slices[channel].start:
            bins[dataset] = slices[channel].start + k
    signal = np.zeros(n_main)
    for dataset, b in bins.items():
        signal[b] += events.get(dataset, 0.0)
    rates = np.maximum(np.nan_to_num(expected, nan=0.0), 0.0) + signal
    return _PyhfPlan(
        key=_workspace_key(workspace), names=names, slices=[slices[n] for n in names],
        rates=rates, constraints=constraints, bins=bins,
    )


@dataclass
class _Region:
    """An uncorrelated efficiency-map data set."""

    key: str
    background: float
    error: float
    signal: float


@dataclass
class _Correlated:
    """The data sets of a result with a covariance."""

    keys: list[str]
    offset: np.ndarray  # b (linear) or A (skewed)
    c_over_b2: np.ndarray
    cholesky: np.ndarray
    signal: np.ndarray


@dataclass
class _UpperLimitMap:
    dataset: str
    txname: str
    shifted: bool  # has an expected map (drawn); else only the injected signal applies
    signal: list[list[float]] | None


@dataclass
class _ResultPlan:
    result_id: str
    kind: str
    regions: list[_Region] = field(default_factory=list)
    correlated: _Correlated | None = None
    workspaces: list[_PyhfPlan] = field(default_factory=list)
    maps: list[_UpperLimitMap] = field(default_factory=list)
    #: background uncertainty of the data sets a pyhf workspace models (their counts)
    smear: dict[str, float] = field(default_factory=dict)


def _lognormal(rng: np.random.Generator, mean: float, sigma: float) -> float:
    """``drawNuisance``: lognormal of this mean and standard deviation (Gaussian where
    mean < sigma / 4)."""
    if abs(mean) < sigma / 4.0:
        return mean + sigma * float(rng.standard_normal())
    scale = mean**2 / math.sqrt(mean**2 + sigma**2)
    s = math.sqrt(math.log(1.0 + sigma**2 / mean**2))
    return scale * math.exp(s * float(rng.standard_normal()))


def _correlated_plan(result: Result, factor: float, events: Mapping[str, float]) -> _Correlated:
    from protomodels.statistics import simplified

    datasets = result.datasets
    b = np.asarray([d.expected_bg for d in datasets], dtype=float)
    cov = np.asarray(result.covariance, dtype=float) * factor**2
    moments = [d.third_moment for d in datasets]
    third = None
    if all(m is not None for m in moments) and np.sum(np.abs(moments)) >= 1e-10:
        third = np.asarray(moments, dtype=float) * factor**3
    with np.errstate(invalid="ignore", divide="ignore"):
        model = simplified.make_model(np.zeros(len(b)), b, cov, third, xp=np)
        v = np.linalg.inv(np.asarray(model.v_inv))
    v = (v + v.T) / 2.0
    try:
        chol = np.linalg.cholesky(v)
    except np.linalg.LinAlgError as err:
        msg = (f"{result.result_id}: the background covariance of its simplified likelihood is "
               "not positive definite; toys cannot be drawn for it")
        raise ToyError(msg) from err
    keys = [_dataset_key(d) for d in datasets]
    signal = np.asarray([events.get(_signal_key(d), 0.0) for d in datasets])
    return _Correlated(
        keys=keys, offset=np.asarray(model.a, dtype=float),
        c_over_b2=np.asarray(model.c_over_b2, dtype=float), cholesky=chol, signal=signal,
    )


def _ul_signal_points(
    topology: Topology, grid: Grid, predictions: Iterable[tuple[tuple[str, ...], tuple[float, ...],
                                                                 float]]
) -> list[list[float]] | None:
    """[[point index, ...], [fb added, ...]] of the grid points within the injection radius of
    the predictions of this topology (``addSignalForULMap``), or None."""
    mass = [i for i, a in enumerate(topology.axes) if a.attribute == "mass"]
    if not mass:
        return None
    added = np.zeros(grid.n_points)
    points = grid.points[:, mass]
    for txnames, masses, xsec in predictions:
        if topology.name not in txnames or len(masses) != grid.points.shape[1]:
            continue
        where = np.asarray(masses, dtype=float)[mass]
        near = np.sqrt(((points - where) ** 2).sum(axis=1)) <= UL_INJECTION_RADIUS
        added[near] += xsec
    chosen = np.flatnonzero(added)
    if not len(chosen):
        return None
    return [[int(i) for i in chosen], [float(v) for v in added[chosen]]]


# -- the maker -----------------------------------------------------------------------------------
class ToyMaker:
    """Draws toys of one database with one method (prepared once: pyhf models, simplified
    likelihood factors, injected yields).

    Args:
        database: the real database, loaded with its pyhf workspaces.
        inject: a protomodel (or SLHA file) whose predicted yields are added (None: SM only).
        bg_scale: factor on every background uncertainty.
        distribution: ``gaussian`` (default) or ``lognormal`` (uncorrelated regions).

    Raises:
        ToyError: a bad option, a database loaded without its pyhf workspaces, a toy database,
            a result whose background model cannot be drawn from.
    """

    def __init__(
        self,
        database: Database,
        *,
        inject: object = None,
        bg_scale: float = 1.0,
        distribution: str = "gaussian",
    ) -> None:
        if "toy" in database.meta:
            msg = (f"the database is already a toy ({database.meta['toy']}); make toys from "
                   "the real database")
            raise ToyError(msg)
        if not _workspaces_loaded(database):
            msg = (f"the database {database.path} was loaded without its pyhf workspaces; "
                   "open it with workspaces=True to draw toys of the pyhf results")
            raise ToyError(msg)
        name = digest = None
        signals = _Signals()
        if inject is not None:
            model, name = _model_of(inject)
            signals, digest = _signals(database, model)
        self.method = ToyMethod(distribution, bg_scale, name, digest)
        self.database = database
        self.signals = signals
        self.plans = [self._plan(r) for r in database.results]

    def _plan(self, result: Result) -> _ResultPlan:
        kind = _kinds_of(result)
        plan = _ResultPlan(result.result_id, kind)
        f = self.method.bg_scale
        events = self.signals.events.get(result.result_id, {})
        if kind == "upper_limits":
            predictions = self.signals.upper_limits.get(result.result_id, [])
            for ds in result.datasets:
                for t in ds.topologies:
                    expected = t.grids.get("expected_upper_limit")
                    grid = expected if expected is not None else t.grids.get("upper_limit")
                    if grid is None:
                        continue
                    signal = _ul_signal_points(t, grid, predictions) if predictions else None
                    if expected is not None or signal is not None:
                        plan.maps.append(
                            _UpperLimitMap(_dataset_key(ds), t.name, expected is not None,
                                           signal)
                        )
            return plan
        if kind == "covariance":
            plan.correlated = _correlated_plan(result, f, events)
            return plan
        mapped: set[str] = set()
        if kind == "pyhf":
            ordered = [w for w in result.pyhf if not w.full] + [w for w in result.pyhf if w.full]
            for w in ordered:
                if w.workspace is None:
                    continue
                ws = _pyhf_plan(result, w, f, events)
                plan.workspaces.append(ws)
                mapped |= set(ws.bins)
        for ds in result.datasets:
            if ds.data_type == "efficiencyMap" and _signal_key(ds) in mapped and ds.bg_error:
                plan.smear[_dataset_key(ds)] = float(ds.bg_error) * f
            if ds.data_type != "efficiencyMap" or _signal_key(ds) in mapped:
                continue
            plan.regions.append(
                _Region(_dataset_key(ds), float(ds.expected_bg or 0.0),
                        float(ds.bg_error or 0.0) * f, events.get(_signal_key(ds), 0.0))
            )
        return plan

    def summary(self) -> dict[str, int]:
        """What each toy redraws: numbers of regions (by rule), pyhf workspaces, upper-limit
        maps shifted and kept, and the injected predictions."""
        out = dict.fromkeys(
            ("regions drawn alone", "regions drawn jointly (covariance)",
             "regions of pyhf results", "pyhf workspaces", "upper-limit maps shifted",
             "upper-limit maps kept (no expected limit)"), 0)
        by_id = {r.result_id: r for r in self.database.results}
        for plan in self.plans:
            result = by_id[plan.result_id]
            if plan.kind == "upper_limits":
                for ds in result.datasets:
                    for t in ds.topologies:
                        key = ("upper-limit maps shifted" if "expected_upper_limit" in t.grids
                               else "upper-limit maps kept (no expected limit)")
                        out[key] += 1
                continue
            out["regions drawn alone"] += len(plan.regions)
            if plan.correlated is not None:
                out["regions drawn jointly (covariance)"] += len(plan.correlated.keys)
            out["regions of pyhf results"] += len(
                {d for ws in plan.workspaces for d in ws.bins}
            )
            out["pyhf workspaces"] += len(plan.workspaces)
        if self.method.inject_name is not None:
            out["injected: regions with signal"] = sum(
                sum(1 for v in events.values() if v > 0) for events in self.signals.events.values()
            )
            out["injected: upper-limit predictions"] = sum(
                len(v) for v in self.signals.upper_limits.values()
            )
        return out

    # -- drawing ---------------------------------------------------------------------------------
    def toy(self, seed: int, index: int) -> Toy:
        """Toy ``index`` of ``seed``."""
        seed = _check_seed(seed)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            msg = f"toy index {index!r}: give an integer >= 0"
            raise ToyError(msg)
        index = int(index)
        observed: dict[str, dict[str, int]] = {}
        shifts: dict[str, dict[str, dict[str, float]]] = {}
        pyhf: dict[str, dict[str, list[list[int]]]] = {}
        aux: dict[str, dict[str, dict[str, list[float]]]] = {}
        ul_signal: dict[str, dict[str, dict[str, list[list[float]]]]] = {}
        by_id = {r.result_id: r for r in self.database.results}
        with _pyhf_numpy():
            for plan in self.plans:
                self._draw_result(plan, by_id[plan.result_id], _rng(seed, index, plan.result_id),
                                  observed, shifts, (pyhf, aux), ul_signal)
        return Toy(
            index=index, seed=seed, method=self.method,
            database_version=str(self.database.version or ""),
            database_checksum=_checksum(self.database),
            observed=observed, ul_shifts=shifts, pyhf_observations=pyhf, pyhf_auxdata=aux,
            ul_signal=ul_signal,
        )

    def _draw_result(
        self, plan: _ResultPlan, result: Result, rng: np.random.Generator,
        observed: dict[str, dict[str, int]], shifts: dict[str, dict[str, dict[str, float]]],
        pyhf: tuple[dict[str, Any], dict[str, Any]],
        ul_signal: dict[str, dict[str, dict[str, list[list[float]]]]],
    ) -> None:
        """Draw one result's observations into the overlay dictionaries."""
        if plan.kind == "upper_limits":
            for m in plan.maps:
                if m.shifted:
                    shifts.setdefault(plan.result_id, {}).setdefault(m.dataset, {})[
                        m.txname] = self._ul_shift(rng)
                if m.signal is not None:
                    ul_signal.setdefault(plan.result_id, {}).setdefault(m.dataset, {})[
                        m.txname] = m.signal
            return
        counts: dict[str, int] = {}
        if plan.correlated is not None:
            c = plan.correlated
            theta = c.cholesky @ rng.standard_normal(len(c.keys))
            lam = np.maximum(c.offset + theta + c.c_over_b2 * theta**2, 0.0) + c.signal
            counts.update(zip(c.keys, (int(n) for n in rng.poisson(lam)), strict=True))
        if plan.workspaces:
            # the workspaces' counts carry no systematic spread (their redrawn auxiliary data
            # do); the data sets' own counts, read by single-region likelihoods that have no
            # auxiliary data, get it as a Gaussian shift by their background error
            for key, n in self._pyhf_toy(result, plan, rng, *pyhf).items():
                sigma = plan.smear.get(key, 0.0)
                if sigma > 0:
                    n = max(0, round(n + sigma * float(rng.standard_normal())))
                counts[key] = int(n)
        for region in plan.regions:
            counts[region.key] = self._region_count(region, rng)
        if counts:
            observed[plan.result_id] = counts

    def _ul_shift(self, rng: np.random.Generator) -> float:
        """x = bg_scale z, redrawn while x <= -1.96 (the shifted limits would not be
        positive)."""
        x = -math.inf
        for _ in range(_MAX_REDRAWS):
            x = self.method.bg_scale * float(rng.standard_normal())
            if x > -UL_SIGMA:
                break
        return x

    def _region_count(self, region: _Region, rng: np.random.Generator) -> int:
        if self.method.distribution == "lognormal":
            lam = _lognormal(rng, region.background, region.error)
        else:
            lam = region.background + region.error * float(rng.standard_normal())
        return int(rng.poisson(max(lam, 0.0) + region.signal))

    def _pyhf_toy(
        self, result: Result, plan: _ResultPlan, rng: np.random.Generator,
        out: dict[str, dict[str, list[list[int]]]],
        out_aux: dict[str, dict[str, dict[str, list[float]]]],
    ) -> dict[str, int]:
        """Draw every workspace of a result; the data sets' counts (first workspace wins,
        its count written into the others' bins)."""
        drawn = [ws.draw(rng) for ws in plan.workspaces]
        counts: dict[str, int] = {}
        for ws, (main, _) in zip(plan.workspaces, drawn, strict=True):
            for dataset, b in ws.bins.items():
                counts.setdefault(dataset, int(main[b]))
        key_of = {_signal_key(d): _dataset_key(d) for d in result.datasets}
        stored: dict[str, list[list[int]]] = {}
        stored_aux: dict[str, dict[str, list[float]]] = {}
        for ws, (main, aux) in zip(plan.workspaces, drawn, strict=True):
            for dataset, b in ws.bins.items():
                main[b] = counts[dataset]
            stored[ws.key] = [[int(n) for n in main[s]] for s in ws.slices]
            stored_aux[ws.key] = aux
        out[result.result_id] = stored
        out_aux[result.result_id] = stored_aux
        return {key_of[d]: n for d, n in counts.items() if d in key_of}


def make_toy(
    database: Database,
    seed: int,
    index: int,
    *,
    inject: object = None,
    bg_scale: float = 1.0,
    distribution: str = "gaussian",
) -> Toy:
    """Toy ``index`` of ``seed`` (the same as ``make_toys(database, n, seed)[index]`` for any
    n > index). Building a :class:`ToyMaker` once is faster for many toys."""
    maker = ToyMaker(database, inject=inject, bg_scale=bg_scale, distribution=distribution)
    return maker.toy(seed, index)


def make_toys(
    database: Database,
    n: int,
    seed: int,
    *,
    inject: object = None,
    bg_scale: float = 1.0,
    distribution: str = "gaussian",
    start: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[Toy]:
    """Toys ``start`` ... ``start + n - 1`` of ``seed`` (toy i is independent of n).

    Args:
        database: the real database, loaded with its pyhf workspaces.
        n: number of toys (>= 0).
        seed: seed of the toys (>= 0); toy i draws from ``SeedSequence(seed).spawn(..)[i]``'s
            grandchildren, one per result.
        inject: a protomodel or SLHA file whose predicted yields are added (None: SM only).
        bg_scale: factor on every background uncertainty (> 0).
        distribution: ``gaussian`` or ``lognormal`` for the uncorrelated regions.
        start: the first index.
        progress: called with (done, n) after each toy.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        msg = f"n {n!r}: give the number of toys, an integer >= 0"
        raise ToyError(msg)
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        msg = f"start {start!r}: give the first toy index, an integer >= 0"
        raise ToyError(msg)
    seed = _check_seed(seed)
    maker = ToyMaker(database, inject=inject, bg_scale=bg_scale, distribution=distribution)
    toys = []
    for i in range(int(n)):
        toys.append(maker.toy(seed, int(start) + i))
        if progress is not None:
            progress(i + 1, int(n))
    return toys


def observed_toy(database: Database, *, bg_scale: float = 1.0) -> Toy:
    """The real observations as a toy (no overlay), to apply ``bg_scale`` alone: the "scaled
    observed" database is ``apply_toy(database, observed_toy(database, bg_scale=f))``."""
    return Toy(
        index=None, seed=None, method=ToyMethod(bg_scale=bg_scale),
        database_version=str(database.version or ""),
        database_checksum=_checksum(database),
    )


# -- applying a toy ------------------------------------------------------------------------------
def _check_applicable(database: Database, toy: Toy) -> None:
    version = str(database.version or "")
    checksum = _checksum(database)
    if "toy" in database.meta:
        msg = (f"{toy.label}: the database is already a toy ({database.meta['toy']}); apply "
               "toys to the real database")
        raise ToyError(msg)
    if toy.database_version != version or toy.database_checksum != checksum:
        msg = (
            f"{toy.label}: made on database {toy.database_version or '?'} (source checksum "
            f"{toy.database_checksum[:12] or '?'}), but the store {database.path} holds "
            f"{version or '?'} (checksum {checksum[:12] or '?'}); make the toys again on this "
            "store ('protomodel toys make'), or use the store they were made on (--database)"
        )
        raise ToyDatabaseMismatchError(msg)
    if toy.index is None:
        return
    drawn = {r.result_id for r in database.results if _kinds_of(r) != "upper_limits"
             and any(d.data_type == "efficiencyMap" for d in r.datasets)}
    drawn |= {
        r.result_id for r in database.results if _kinds_of(r) == "upper_limits"
        and any("expected_upper_limit" in t.grids for d in r.datasets for t in d.topologies)
    }
    have = set(toy.observed) | set(toy.ul_shifts)
    if drawn != have:
        extra, lacking = sorted(have - drawn), sorted(drawn - have)
        parts = []
        if extra:
            parts.append(f"results not in the database: {', '.join(extra[:5])}")
        if lacking:
            parts.append(f"nothing drawn for {', '.join(lacking[:5])}")
        msg = (f"{toy.label} does not fit the database {database.path} ({'; '.join(parts)}); "
               "make the toys again on this database")
        raise ToyDatabaseMismatchError(msg)


def _limit_ratios(rows: list[tuple[float, float, float, float, float]], expected: bool
                  ) -> np.ndarray:
    """Ratios of single-region CLs limits, new / old, for rows (b, sigma_old, n_old, sigma_new,
    n_new) (NaN where a limit fails)."""
    import jax
    import jax.numpy as jnp

    if not rows:
        return np.zeros(0)
    size = max(16, 1 << (len(rows) - 1).bit_length())
    data = np.ones((size, 5))
    data[:, 1] = data[:, 3] = 0.1
    data[: len(rows)] = rows
    with jax.enable_x64(True):
        b = jnp.asarray(data[:, 0])
        s = jnp.ones_like(b)
        limits = _vmapped_limit(expected)
        old = np.asarray(limits(s, b, jnp.asarray(data[:, 1]), jnp.asarray(data[:, 2])))
        new = np.asarray(limits(s, b, jnp.asarray(data[:, 3]), jnp.asarray(data[:, 4])))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = new / old
    return ratio[: len(rows)]


_LIMIT_KERNELS: dict[bool, Any] = {}


def _vmapped_limit(expected: bool) -> Any:
    if expected not in _LIMIT_KERNELS:
        import jax

        from protomodels.statistics import single_region

        def one(s: Any, b: Any, sigma: Any, n: Any) -> Any:
            return single_region.upper_limit(s, b, sigma, n, expected=expected)

        _LIMIT_KERNELS[expected] = jax.jit(jax.vmap(one))
    return _LIMIT_KERNELS[expected]


def _rescale_limits(changes: list[tuple[DataSet, DataSet]]) -> list[DataSet]:
    """The new data sets with their published limits rescaled to the toy's count (observed) and
    to the scaled error (expected)."""
    observed_rows = [
        (float(old.expected_bg), float(old.bg_error), float(old.observed_n),
         float(new.bg_error), float(new.observed_n))
        for old, new in changes
    ]
    ratio = _limit_ratios(observed_rows, expected=False)
    scaled = [i for i, (old, new) in enumerate(changes) if new.bg_error != old.bg_error]
    ratio_exp = _limit_ratios([observed_rows[i] for i in scaled], expected=True)
    by_index = dict(zip(scaled, ratio_exp.tolist(), strict=True))
    out = []
    for i, (old, new) in enumerate(changes):
        updates: dict[str, float] = {}
        if old.upper_limit_fb and math.isfinite(ratio[i]) and ratio[i] > 0:
            updates["upper_limit_fb"] = float(old.upper_limit_fb * ratio[i])
        r = by_index.get(i)
        if r is not None and old.expected_upper_limit_fb and math.isfinite(r) and r > 0:
            updates["expected_upper_limit_fb"] = float(old.expected_upper_limit_fb * r)
        out.append(dataclasses.replace(new, **updates) if updates else new)
    return out


def _toy_topology(
    result: Result, ds: DataSet, t: Topology, toy: Toy
) -> Topology:
    x = toy.ul_shifts.get(result.result_id, {}).get(_dataset_key(ds), {}).get(t.name)
    signal = toy.ul_signal.get(result.result_id, {}).get(_dataset_key(ds), {}).get(t.name)
    if x is None and signal is None:
        return t
    expected = t.grids.get("expected_upper_limit")
    if x is not None:
        if expected is None:
            msg = (f"{toy.label}: {result.result_id}/{_dataset_key(ds)}/{t.name} has no expected "
                   "limits to shift; the toy was not made on this database")
            raise ToyDatabaseMismatchError(msg)
        points, values = expected.points, shifted_upper_limits(expected.values, float(x))
    else:
        observed = t.grids["upper_limit"]
        points, values = observed.points, np.array(observed.values, dtype=float)
    if signal is not None:
        indices, added = signal
        if len(indices) and max(indices) >= len(values):
            msg = (f"{toy.label}: injected points of {result.result_id}/{t.name} lie outside its "
                   "grid; the toy was not made on this database")
            raise ToyDatabaseMismatchError(msg)
        np.add.at(values, np.asarray(indices, dtype=int), np.asarray(added, dtype=float))
    grids = dict(t.grids)
    grids["upper_limit"] = Grid("upper_limit", points, values)
    return dataclasses.replace(t, grids=grids)


def _with_auxdata(spec: dict[str, Any], auxdata: Mapping[str, list[float]]) -> dict[str, Any]:
    """The workspace with these auxiliary data, set as ``auxdata`` of the parameters in the
    configuration of every measurement (pyhf takes them instead of the nominal ones)."""
    measurements = []
    for measurement in spec.get("measurements", []):
        config = dict(measurement.get("config", {}))
        parameters = [dict(p) for p in config.get("parameters", [])]
        by_name = {p.get("name"): p for p in parameters}
        for name, values in auxdata.items():
            entry = by_name.get(name)
            if entry is None:
                entry = {"name": name}
                parameters.append(entry)
            entry["auxdata"] = [float(v) for v in values]
        config["parameters"] = parameters
        measurements.append({**measurement, "config": config})
    return {**spec, "measurements": measurements}


def _toy_workspace(result: Result, w: PyhfWorkspace, toy: Toy) -> PyhfWorkspace:
    if w.workspace is None:
        return w
    spec = scale_workspace(w.workspace, toy.method.bg_scale) if toy.method.bg_scale != 1.0 \
        else w.workspace
    key = _workspace_key(w)
    drawn = toy.pyhf_observations.get(result.result_id, {}).get(key)
    if drawn is None:
        return w if spec is w.workspace else dataclasses.replace(w, workspace=spec)
    observations = w.workspace["observations"]
    if len(drawn) != len(observations) or any(
        len(d) != len(o["data"]) for d, o in zip(drawn, observations, strict=True)
    ):
        msg = (f"{toy.label}: its observations of {result.result_id}/{w.file_name} do not fit "
               "the workspace; the toy was not made on this database")
        raise ToyDatabaseMismatchError(msg)
    spec = dict(spec)
    spec["observations"] = [
        {**o, "data": [float(n) for n in d]} for o, d in zip(observations, drawn, strict=True)
    ]
    auxdata = toy.pyhf_auxdata.get(result.result_id, {}).get(key)
    if auxdata:  # (the a-priori expectation keeps the real auxiliary data)
        return dataclasses.replace(w, workspace=_with_auxdata(spec, auxdata), apriori=spec)
    return dataclasses.replace(w, workspace=spec)


def apply_toy(database: Database, toy: Toy) -> Database:
    """A new in-memory database with the toy's observations (and background uncertainties times
    its ``bg_scale``); the store is not touched.

    Efficiency-map data sets get the toy's count (their published observed limit rescaled to
    it, see the module docstring), upper-limit maps with an expected limit the shifted limits,
    pyhf workspaces the toy's observations; with bg_scale != 1 also the scaled errors,
    covariance, third moments and workspace systematics. ``meta`` gains ``toy`` (its label),
    ``toy_index``, ``toy_seed`` and ``toy_method``.

    Raises:
        ToyDatabaseMismatchError: the toy was made on another database version, source or set
            of results.
        ToyError: the database is itself a toy.
    """
    _check_applicable(database, toy)
    f = toy.method.bg_scale
    results: list[Result] = []
    changes: list[tuple[DataSet, DataSet]] = []
    slots: list[tuple[int, int]] = []
    for r in database.results:
        counts = toy.observed.get(r.result_id, {})
        unknown = set(counts) - {_dataset_key(d) for d in r.datasets}
        if unknown:
            msg = (f"{toy.label}: {r.result_id} has no data set {sorted(unknown)[0]!r}; the toy "
                   "was not made on this database")
            raise ToyDatabaseMismatchError(msg)
        datasets = []
        for ds in r.datasets:
            new = ds
            if ds.data_type == "efficiencyMap":
                updates: dict[str, Any] = {}
                n = counts.get(_dataset_key(ds))
                if n is not None and float(n) != ds.observed_n:
                    updates["observed_n"] = float(n)
                if f != 1.0 and ds.bg_error is not None:
                    updates["bg_error"] = ds.bg_error * f
                    if ds.third_moment is not None:
                        updates["third_moment"] = ds.third_moment * f**3
                if updates:
                    new = dataclasses.replace(ds, **updates)
                if (updates or n is not None) and ds.observed_n is not None \
                        and ds.expected_bg is not None and ds.bg_error:
                    # every drawn data set, so that the limits are one batch of a fixed size
                    changes.append((ds, new))
                    slots.append((len(results), len(datasets)))
            elif ds.data_type == "upperLimit":
                topologies = tuple(_toy_topology(r, ds, t, toy) for t in ds.topologies)
                if any(a is not b for a, b in zip(topologies, ds.topologies, strict=True)):
                    new = dataclasses.replace(ds, topologies=topologies)
            datasets.append(new)
        updates_r: dict[str, Any] = {"datasets": tuple(datasets)}
        if f != 1.0 and r.covariance is not None:
            updates_r["covariance"] = np.asarray(r.covariance, dtype=float) * f**2
        if r.pyhf:
            updates_r["pyhf"] = tuple(_toy_workspace(r, w, toy) for w in r.pyhf)
        results.append(dataclasses.replace(r, **updates_r))
    if changes:
        rescaled = _rescale_limits(changes)
        for (ri, di), new in zip(slots, rescaled, strict=True):
            r = results[ri]
            datasets = list(r.datasets)
            datasets[di] = new
            results[ri] = dataclasses.replace(r, datasets=tuple(datasets))
    meta = dict(database.meta)
    meta.update(
        toy=toy.label,
        toy_index="observed" if toy.index is None else str(toy.index),
        toy_seed="" if toy.seed is None else str(toy.seed),
        toy_method=json.dumps(toy.method.as_json()),
    )
    return Database(path=database.path, meta=meta, results=tuple(results),
                    problems=database.problems)


# -- toy files -----------------------------------------------------------------------------------
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS toys (
    idx INTEGER PRIMARY KEY,
    seed INTEGER NOT NULL,
    overlay BLOB NOT NULL
);
"""


def _make_hint(path: Path) -> str:
    return f"make toys with 'protomodel toys make --n N --seed S --out {path}'"


def _check_toy_file(path: Path) -> None:
    """Refuse a missing path, a folder, a file that is no SQLite file."""
    if not path.exists():
        msg = f"{path}: no such toy file; {_make_hint(path)}"
        raise ToyReferenceError(msg)
    if path.is_dir():
        msg = f"{path} is a folder, not a toy file; {_make_hint(path)}"
        raise ToyReferenceError(msg)
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except OSError as err:
        msg = f"{path}: cannot be read ({err.strerror or err}); check its permissions"
        raise ToyReferenceError(msg) from err
    if head != _SQLITE_MAGIC:
        what = "an empty file" if not head else "not an SQLite file"
        msg = f"{path} is not a toy file ({what}); {_make_hint(path)}"
        raise ToyReferenceError(msg)


def _connect_readonly(path: Path) -> sqlite3.Connection:
    _check_toy_file(path)
    conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
    try:
        _file_meta(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _file_meta(conn: sqlite3.Connection, path: Path) -> dict[str, str]:
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        conn.execute("SELECT idx FROM toys LIMIT 1").fetchall()
    except sqlite3.DatabaseError as err:
        msg = (f"{path} is not a toy file (an SQLite file without toys: {err}); "
               f"{_make_hint(path)}")
        raise ToyReferenceError(msg) from err
    if meta.get("kind") != FILE_KIND:
        msg = f"{path} is not a toy file (an SQLite file of something else); {_make_hint(path)}"
        raise ToyReferenceError(msg)
    if meta.get("schema_version") != FILE_SCHEMA:
        msg = (f"{path}: toy file of schema {meta.get('schema_version')!r}, this version reads "
               f"{FILE_SCHEMA!r}; make the toys again")
        raise ToyReferenceError(msg)
    return meta


def read_toy_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The meta data of a toy file: ``database_version``, ``database_checksum``, ``seed``,
    ``method`` (a :class:`ToyMethod`), ``code_version``, ``created``, and ``count``.

    Raises:
        ToyReferenceError: no such file, or not a toy file.
    """
    path = Path(path)
    conn = _connect_readonly(path)
    try:
        meta: dict[str, Any] = _file_meta(conn, path)
        count = conn.execute("SELECT COUNT(*) FROM toys").fetchone()[0]
    finally:
        conn.close()
    meta["method"] = ToyMethod.from_json(json.loads(meta["method"]))
    meta["seed"] = int(meta["seed"])
    meta["count"] = int(count)
    return meta


def count_toys(path: str | os.PathLike[str]) -> int:
    """The number of toys in a toy file."""
    return int(read_toy_meta(path)["count"])


def toy_indices(path: str | os.PathLike[str]) -> list[int]:
    """The indices of the toys in a toy file, in order."""
    path = Path(path)
    conn = _connect_readonly(path)
    try:
        return [int(i) for (i,) in conn.execute("SELECT idx FROM toys ORDER BY idx")]
    finally:
        conn.close()


def _encode(toy: Toy) -> bytes:
    text = json.dumps(toy.overlay_json(), separators=(",", ":"), sort_keys=True)
    return zlib.compress(text.encode(), 6)


def write_toys(path: str | os.PathLike[str], toys: Sequence[Toy]) -> Path:
    """Write toys into a toy file (created if missing). An existing file takes more toys of
    the same seed, method and database (a toy of an index it holds is replaced: the same
    draw); anything else is refused.

    Raises:
        ToyError: toys of different seeds, methods or databases, a real-observations toy.
        ToyReferenceError: the path exists and is no toy file, or one of other toys.
    """
    path = Path(path)
    toys = list(toys)
    if not toys:
        msg = "write_toys: no toys to write"
        raise ToyError(msg)
    first = toys[0]
    for toy in toys:
        if toy.index is None or toy.seed is None:
            msg = "write_toys: the real observations (observed_toy) are not stored as a toy"
            raise ToyError(msg)
        same = (toy.seed, toy.method, toy.database_version, toy.database_checksum)
        if same != (first.seed, first.method, first.database_version, first.database_checksum):
            msg = ("write_toys: one toy file holds toys of one seed, method and database; "
                   f"toy {toy.index} differs from toy {first.index}")
            raise ToyError(msg)
    wanted = {
        "kind": FILE_KIND,
        "schema_version": FILE_SCHEMA,
        "database_version": first.database_version,
        "database_checksum": first.database_checksum,
        "seed": str(first.seed),
        "method": json.dumps(first.method.as_json(), sort_keys=True),
    }
    if path.exists():
        _check_toy_file(path)
        conn = sqlite3.connect(path)
        try:
            meta = _file_meta(conn, path)
        except BaseException:
            conn.close()
            raise
        differ = [k for k, v in wanted.items() if meta.get(k) != v]
        if differ:
            conn.close()
            msg = (f"{path} holds toys of another {', '.join(differ)}; choose a new file for "
                   "these toys")
            raise ToyReferenceError(msg)
    else:
        conn = sqlite3.connect(path)
        conn.executescript(_SCHEMA)
        with conn:
            conn.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [*wanted.items(), ("code_version", __version__),
                 ("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))],
            )
    try:
        with conn:
            conn.executemany(
                "INSERT OR REPLACE INTO toys VALUES (?, ?, ?)",
                [(int(t.index), int(t.seed), _encode(t)) for t in toys],  # type: ignore[arg-type]
            )
    finally:
        conn.close()
    return path


def _range_text(indices: list[int]) -> str:
    if not indices:
        return "no toys"
    if indices == list(range(indices[0], indices[-1] + 1)):
        return f"toys {indices[0]}..{indices[-1]}"
    return f"{len(indices)} toys ({indices[0]}..{indices[-1]}, with gaps)"


def read_toy(path: str | os.PathLike[str], index: int) -> Toy:
    """Toy ``index`` of a toy file.

    Raises:
        ToyReferenceError: no such file, not a toy file, no toy of that index.
    """
    path = Path(path)
    conn = _connect_readonly(path)
    try:
        meta = _file_meta(conn, path)
        row = conn.execute("SELECT seed, overlay FROM toys WHERE idx = ?", (int(index),)
                           ).fetchone()
        if row is None:
            indices = [int(i) for (i,) in conn.execute("SELECT idx FROM toys ORDER BY idx")]
            msg = (f"{path}:{index}: no such toy; the file holds {_range_text(indices)} "
                   "(make more with 'protomodel toys make --n N' on the same file)")
            raise ToyReferenceError(msg)
    finally:
        conn.close()
    seed, blob = row
    try:
        overlay = json.loads(zlib.decompress(blob).decode())
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError) as err:
        msg = f"{path}:{index}: the stored toy is corrupt ({err}); make the toys again"
        raise ToyReferenceError(msg) from err
    return Toy(
        index=int(index), seed=int(seed),
        method=ToyMethod.from_json(json.loads(meta["method"])),
        database_version=meta["database_version"],
        database_checksum=meta["database_checksum"],
        observed=overlay.get("observed", {}),
        ul_shifts=overlay.get("ul_shifts", {}),
        pyhf_observations=overlay.get("pyhf_observations", {}),
        pyhf_auxdata=overlay.get("pyhf_auxdata", {}),
        ul_signal=overlay.get("ul_signal", {}),
        origin=f"{path}:{index}",
    )


def parse_toy_reference(reference: str) -> ToyReference:
    """Parse and check ``TOYS.sqlite:INDEX`` (``TOYS.sqlite:observed``: the real observations
    with the file's bg_scale). The file must be a toy file holding that index.

    Raises:
        ToyReferenceError: no colon, an index that is no integer >= 0, a missing file, a file
            that is no toy file, an index the file does not hold.
    """
    example = "e.g. toys.sqlite:0"
    if not isinstance(reference, str) or ":" not in reference:
        msg = (f"toy reference {reference!r}: expected TOYS.sqlite:INDEX ({example}; "
               f"TOYS.sqlite:{OBSERVED} for the real data with the file's bg_scale)")
        raise ToyReferenceError(msg)
    name, _, part = reference.rpartition(":")
    part = part.strip()
    if not name:
        msg = f"toy reference {reference!r}: the toy file is missing before ':' ({example})"
        raise ToyReferenceError(msg)
    index: int | None
    if part == OBSERVED:
        index = None
    elif part.isdigit():
        index = int(part)
    else:
        msg = (f"toy reference {reference!r}: the index {part!r} is not an integer >= 0 "
               f"({example})")
        raise ToyReferenceError(msg)
    path = Path(name)
    conn = _connect_readonly(path)
    try:
        if index is not None:
            found = conn.execute("SELECT 1 FROM toys WHERE idx = ?", (index,)).fetchone()
            if found is None:
                indices = [int(i) for (i,) in conn.execute("SELECT idx FROM toys ORDER BY idx")]
                msg = (f"toy reference {reference!r}: index {index} is out of range; {path} "
                       f"holds {_range_text(indices)}")
                raise ToyReferenceError(msg)
    finally:
        conn.close()
    return ToyReference(path, index)


def load_toy(reference: str | ToyReference, database: Database | None = None) -> Toy:
    """The toy a reference names (``TOYS.sqlite:observed`` needs ``database``: the real
    observations with the file's bg_scale)."""
    ref = parse_toy_reference(reference) if isinstance(reference, str) else reference
    if ref.index is not None:
        return read_toy(ref.path, ref.index)
    meta = read_toy_meta(ref.path)
    if database is None:
        msg = f"{ref}: the real observations need the database to apply them to"
        raise ToyError(msg)
    toy = observed_toy(database, bg_scale=meta["method"].bg_scale)
    return dataclasses.replace(
        toy, database_version=meta["database_version"],
        database_checksum=meta["database_checksum"], origin=str(ref),
    )
