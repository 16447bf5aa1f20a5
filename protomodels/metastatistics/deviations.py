"""How far each signal region and upper-limit map of the database is from a hypothesis.

Under the SM the hypothesis is the background alone; under a protomodel its predicted signal is
added (events in a signal region, a cross section at the model's point of an upper-limit map).
Every efficiency-map signal region is one entry (control regions and superseded results are left
out unless asked for); an upper-limit map with expected limits is one entry per topology, with
the largest significance over its grid points (and where it is). The numbers come from
:mod:`protomodels.metastatistics.significance`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from protomodels.database.database import Database
from protomodels.database.records import DataSet, Result, Topology
from protomodels.metastatistics.significance import (
    p_from_z,
    region_pvalues,
    upper_limit_significance,
    z_from_p,
)

__all__ = [
    "Deviation",
    "SignalHypothesis",
    "region_deviations",
    "upper_limit_deviations",
]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True)
class Deviation:
    """One signal region or upper-limit map and its local significance.

    Attributes:
        result_id, analysis_id, collaboration, sqrts_tev, lumi_ifb: of the result.
        kind: ``"signal region"`` or ``"upper limit"``.
        region: the data-set id (signal regions) or the txname (upper-limit maps).
        topologies: the txnames the region or map constrains.
        observed, background, background_error: counts (signal regions; the error after
            ``bg_scale``), None for upper-limit maps.
        signal: the hypothesis' signal: events (signal regions) or fb (upper-limit maps).
        p, z: the one-sided p-value and Z = -Phi^-1(p) (an excess has Z > 0).
        observed_limit, expected_limit: fb, at ``mass_point`` (upper-limit maps).
        mass_point: the grid point of the largest Z (under the SM) or the model's point.
        n_points: grid points with both limits (upper-limit maps under the SM).
        z_max: the largest Z over those points (upper-limit maps under the SM; ``z`` is then
            their median).
    """

    result_id: str
    analysis_id: str
    collaboration: str
    sqrts_tev: float
    lumi_ifb: float
    kind: str
    region: str
    topologies: tuple[str, ...]
    observed: float | None
    background: float | None
    background_error: float | None
    signal: float
    p: float
    z: float
    observed_limit: float | None = None
    expected_limit: float | None = None
    mass_point: tuple[float, ...] | None = None
    n_points: int | None = None
    z_max: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record (NaN as None, infinities as +-1e300)."""
        record = asdict(self)
        record["topologies"] = list(self.topologies)
        record["mass_point"] = list(self.mass_point) if self.mass_point is not None else None
        for key in ("p", "z", "z_max"):
            if record[key] is None:
                continue
            if not math.isfinite(record[key]):
                record[key] = None if math.isnan(record[key]) else math.copysign(1e300, record[key])
        return record


@dataclass(frozen=True)
class SignalHypothesis:
    """The signal of a protomodel in the database's terms.

    Attributes:
        region_events: expected signal events per (result id, data-set id).
        map_signals: per (result id, txname), (sigma x BR in fb, observed UL, expected UL,
            masses) at the model's point of each upper-limit prediction.
    """

    region_events: Mapping[tuple[str, str], float]
    map_signals: Mapping[tuple[str, str], tuple[float, float | None, float | None,
                                               tuple[float, ...] | None]]

    @classmethod
    def of_predictions(cls, predictions: Iterable[Any], database: Database) -> SignalHypothesis:
        """From theory predictions (:class:`~protomodels.theory.predictions.TheoryPrediction`):
        the signals of every data set of efficiency-map results (``signals_fb`` x luminosity,
        whichever data set the prediction reports) and, per upper-limit txname, the largest
        cross section with its limits."""
        events: dict[tuple[str, str], float] = {}
        maps: dict[tuple[str, str], tuple] = {}
        by_id = {r.result_id: r for r in database.results}
        for p in predictions:
            result = by_id.get(p.result_id)
            if result is None:
                continue
            if p.signals_fb is not None:
                for ds, s in zip(result.datasets, np.asarray(p.signals_fb), strict=False):
                    events[(result.result_id, ds.dataset_id)] = float(s) * result.lumi_ifb
            elif p.data_type == "upperLimit":
                for name in p.txnames:
                    key = (result.result_id, name)
                    if key not in maps or maps[key][0] < p.xsec_fb:
                        maps[key] = (p.xsec_fb, p.upper_limit_fb, p.expected_upper_limit_fb,
                                     p.masses)
        return cls(events, maps)


def _selected(
    database: Database, results: Sequence[Result] | None, superseded: bool
) -> list[Result]:
    chosen = list(database.results if results is None else results)
    return [r for r in chosen if superseded or not r.superseded_by]


def _topologies(ds: DataSet) -> tuple[str, ...]:
    return tuple(sorted({t.name for t in ds.topologies}))


def region_deviations(
    database: Database,
    *,
    hypothesis: SignalHypothesis | None = None,
    bg_scale: float = 1.0,
    results: Sequence[Result] | None = None,
    superseded: bool = False,
    control_regions: bool = False,
) -> list[Deviation]:
    """The p-value and Z of every efficiency-map signal region.

    Args:
        database: the results.
        hypothesis: a protomodel's signals (None: the SM).
        bg_scale: factor on every background error (the talk's "systematics overestimated by
            about 40 %" is bg_scale of about 0.7).
        results: only these results (default all).
        superseded: keep results superseded by a newer one (they share data with it).
        control_regions: keep control regions (``CR`` in the pyhf mapping).
    """
    if not (bg_scale >= 0 and math.isfinite(bg_scale)):
        msg = f"bg_scale must be a finite number >= 0, got {bg_scale!r}"
        raise ValueError(msg)
    rows: list[tuple[Result, DataSet]] = []
    for result in _selected(database, results, superseded):
        if result.data_type != "efficiencyMap":
            continue
        for ds in result.datasets:
            if ds.observed_n is None or ds.expected_bg is None:
                continue
            if ds.region_type != "SR" and not control_regions:
                continue
            rows.append((result, ds))
    if not rows:
        return []
    n = np.array([ds.observed_n for _, ds in rows], dtype=float)
    b = np.array([ds.expected_bg for _, ds in rows], dtype=float)
    err = np.array([(ds.bg_error or 0.0) * bg_scale for _, ds in rows], dtype=float)
    events = hypothesis.region_events if hypothesis is not None else {}
    s = np.array([events.get((r.result_id, ds.dataset_id), 0.0) for r, ds in rows], dtype=float)
    p = np.asarray(region_pvalues(n, b, err, s))
    z = np.asarray(z_from_p(p))
    return [
        Deviation(
            result_id=r.result_id, analysis_id=r.analysis_id, collaboration=r.collaboration,
            sqrts_tev=r.sqrts_tev, lumi_ifb=r.lumi_ifb, kind="signal region",
            region=ds.dataset_id, topologies=_topologies(ds), observed=float(n[i]),
            background=float(b[i]), background_error=float(err[i]), signal=float(s[i]),
            p=float(p[i]), z=float(z[i]),
        )
        for i, (r, ds) in enumerate(rows)
    ]


def _limit_pairs(topology: Topology) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(points, observed, expected) at the grid points both limit grids share."""
    observed = topology.grids.get("upper_limit")
    expected = topology.grids.get("expected_upper_limit")
    if observed is None or expected is None:
        return None
    both = np.round(np.concatenate([observed.points, expected.points]), 6)
    _, code = np.unique(both, axis=0, return_inverse=True)
    code = code.reshape(-1)
    code_o, code_e = code[: observed.n_points], code[observed.n_points:]
    first_e = np.full(code.max() + 1, -1)
    first_e[code_e[::-1]] = np.arange(len(code_e))[::-1]  # the first expected point per code
    ie = first_e[code_o]
    io = np.flatnonzero(ie >= 0)
    if not len(io):
        return None
    ie = ie[io]
    ok = (expected.values[ie] > 0) & np.isfinite(observed.values[io])
    if not ok.any():
        return None
    return observed.points[io][ok], observed.values[io][ok], expected.values[ie][ok]


def upper_limit_deviations(
    database: Database,
    *,
    hypothesis: SignalHypothesis | None = None,
    results: Sequence[Result] | None = None,
    superseded: bool = False,
) -> list[Deviation]:
    """The significance of every upper-limit map with expected limits.

    Under the SM: the median Z over the points where both grids are given (neighbouring points
    share their data, so an excess shows over a region of the map; the median is also immune to
    the odd point where a digitised expected limit is near 0), with the largest Z and where it
    is (a local significance with a look-elsewhere effect within the map).
    Under a protomodel: Z at the model's point of each map it populates, with its cross section
    as the signal; maps it does not populate are left out.
    """
    out: list[Deviation] = []
    maps = hypothesis.map_signals if hypothesis is not None else None
    for result in _selected(database, results, superseded):
        if result.data_type != "upperLimit":
            continue
        for ds in result.datasets:
            for topology in ds.topologies:
                common = dict(
                    result_id=result.result_id, analysis_id=result.analysis_id,
                    collaboration=result.collaboration, sqrts_tev=result.sqrts_tev,
                    lumi_ifb=result.lumi_ifb, kind="upper limit", region=topology.name,
                    topologies=(topology.name,), observed=None, background=None,
                    background_error=None,
                )
                if maps is not None:
                    entry = maps.get((result.result_id, topology.name))
                    if entry is None or not entry[1] or not entry[2]:
                        continue
                    sigma, ul, eul, masses = entry
                    z = float(upper_limit_significance(ul, eul, sigma))
                    out.append(Deviation(
                        **common, signal=float(sigma), p=float(p_from_z(z)), z=z,
                        observed_limit=float(ul), expected_limit=float(eul),
                        mass_point=tuple(float(m) for m in masses) if masses else None,
                    ))
                    continue
                pairs = _limit_pairs(topology)
                if pairs is None:
                    continue
                points, ul, eul = pairs
                z_all = np.asarray(upper_limit_significance(ul, eul))
                k = int(np.argmax(z_all))
                z = float(np.median(z_all))
                out.append(Deviation(
                    **common, signal=0.0, p=float(p_from_z(z)), z=z,
                    observed_limit=float(ul[k]), expected_limit=float(eul[k]),
                    mass_point=tuple(float(m) for m in points[k]), n_points=len(z_all),
                    z_max=float(z_all[k]),
                ))
    return out
