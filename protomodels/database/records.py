"""Records of the experimental database: results, data sets, topologies and their grids.

These frozen dataclasses are what the importer produces and what :func:`protomodels.database.open`
returns. Units: masses and widths in GeV, cross sections and upper limits in fb, luminosity in
fb^-1, sqrt(s) in TeV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from protomodels.database.constraints import Constraint

__all__ = [
    "GRID_KINDS",
    "Axis",
    "DataSet",
    "Grid",
    "PyhfChannel",
    "PyhfWorkspace",
    "Result",
    "Topology",
]


def __dir__() -> list[str]:
    return __all__


#: grid kinds, and the txname field each comes from
GRID_KINDS: dict[str, str] = {
    "upper_limit": "upperLimits",
    "expected_upper_limit": "expectedUpperLimits",
    "efficiency": "efficiencyMap",
}


@dataclass(frozen=True)
class Axis:
    """One coordinate of a grid point: a property of a node of the constraint.

    Attributes:
        node: node number in the constraint (SModelS numbering; PV is 0).
        attribute: ``"mass"`` or ``"totalwidth"`` (both in GeV).
    """

    node: int
    attribute: str


@dataclass(frozen=True, eq=False)
class Grid:
    """A numeric grid: ``values[i]`` at ``points[i]``.

    Attributes:
        kind: ``upper_limit`` / ``expected_upper_limit`` (fb) or ``efficiency`` (unitless).
        points: float64 array (N, D) in the order of the topology's axes (GeV).
        values: float64 array (N,).
    """

    kind: str
    points: np.ndarray
    values: np.ndarray

    @property
    def n_points(self) -> int:
        """Number of grid points."""
        return int(self.points.shape[0])

    def ranges(self) -> list[tuple[float, float]]:
        """(min, max) of every coordinate."""
        return [
            (float(lo), float(hi))
            for lo, hi in zip(self.points.min(0), self.points.max(0), strict=True)
        ]


@dataclass(frozen=True, eq=False)
class Topology:
    """A txname: one simplified-model topology of a data set, with its grids.

    Attributes:
        name: txname, e.g. ``T2tt``.
        constraint: the parsed constraint and conditions.
        constraint_text: the constraint as written in the file.
        condition_text: the conditions as written (empty tuple if none).
        axes: meaning of each grid coordinate.
        grids: grids by kind (see :data:`GRID_KINDS`).
        validated: the ``validated`` field (``True``, ``N/A``, ``tbd``, ...).
        source: file path relative to the database root.
        lifetime_lengths: ``Leff_inner`` / ``Leff_outer`` in m, where the txname sets them.
    """

    name: str
    constraint: Constraint
    constraint_text: str
    condition_text: tuple[str, ...]
    axes: tuple[Axis, ...]
    grids: dict[str, Grid]
    validated: str
    source: str
    lifetime_lengths: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class DataSet:
    """A data set of a result: one signal region (efficiency map) or the upper-limit data.

    Attributes:
        dataset_id: folder name (``data`` for upper-limit results).
        data_id: ``dataId`` (None for upper-limit data sets).
        data_type: ``upperLimit`` or ``efficiencyMap``.
        observed_n, expected_bg, bg_error: counts and the 1-sigma background error.
        upper_limit_fb, expected_upper_limit_fb: 95% CL limits on sigma x eff (fb).
        third_moment: third moment of the background, where given.
        region_type: ``SR``, ``CR`` or ``VR`` as the pyhf mapping types it (``SR`` if unmapped).
        aggregated: the original regions an aggregated region is made of.
        topologies: the txnames of the data set, sorted by name.
    """

    dataset_id: str
    data_id: str | None
    data_type: str
    observed_n: float | None
    expected_bg: float | None
    bg_error: float | None
    upper_limit_fb: float | None
    expected_upper_limit_fb: float | None
    third_moment: float | None
    region_type: str
    aggregated: tuple[str, ...]
    topologies: tuple[Topology, ...]
    lifetime_lengths: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PyhfChannel:
    """Mapping of one data set of a result to a pyhf channel (bin).

    Attributes:
        smodels: data-set id (None for a channel without a data set).
        pyhf: channel name, ``name[k]`` for bin k of a multi-bin channel, or None if unnamed.
        region_type: ``SR``, ``CR`` or ``VR``.
    """

    smodels: str | None
    pyhf: str | None
    region_type: str


@dataclass(frozen=True, eq=False)
class PyhfWorkspace:
    """A pyhf background-only workspace of a result.

    Attributes:
        file_name: the JSON file named in ``jsonFiles``.
        channels: its data-set mapping.
        workspace: the JSON workspace (None when the file is missing).
        missing: True when the file is absent from the source.
        full: True for the full likelihoods of ``jsonFiles_FullLikelihood`` (SModelS uses the
            ``jsonFiles`` ones, which are often simplified).
        apriori: a workspace whose auxiliary data are those of the a-priori expectation, where
            they differ from ``workspace``'s (a toy redraws the auxiliary data, which must not
            move the expected quantities); None: ``workspace``'s own.
    """

    file_name: str
    channels: tuple[PyhfChannel, ...]
    workspace: dict[str, Any] | None
    missing: bool
    full: bool = False
    apriori: dict[str, Any] | None = None


@dataclass(frozen=True, eq=False)
class Result:
    """An experimental result (one folder with a ``globalInfo.txt``).

    Attributes:
        result_id: the folder name, unique in the database (e.g. ``CMS-SUS-19-006-agg``).
        analysis_id: the ``id`` field (e.g. ``CMS-SUS-19-006``; -eff variants share it).
        path: folder relative to the database root (``13TeV/CMS/CMS-SUS-19-006-agg``).
        collaboration: ``ATLAS`` or ``CMS``.
        sqrts_tev: centre-of-mass energy in TeV.
        lumi_ifb: integrated luminosity in fb^-1.
        data_type: ``upperLimit`` or ``efficiencyMap``.
        likelihood: likelihood material: ``pyhf``, ``covariance``, ``single_region`` (best region),
            ``truncated_gaussian`` (observed and expected UL) or ``none`` (observed UL only).
        fallback: where pyhf JSON files are missing, the likelihood used instead, and why.
        covariance: background covariance matrix in data-set order, or None.
        dataset_order: the ``datasetOrder`` field, or None.
        pyhf: the pyhf workspaces.
        include_crs: whether control regions enter the pyhf likelihood.
        signal_uncertainty: relative signal uncertainty for the pyhf patch (None if not set).
        signature: ``prompt`` or ``displaced``.
        pretty_name, url, arxiv, publication: metadata.
        supersedes, superseded_by: ids of older/newer results, as written.
        private, preliminary: flags (preliminary: CONF / PAS notes).
        lifetime_lengths: ``Leff_inner`` / ``Leff_outer`` (m) where set.
        extra: every other ``globalInfo`` field, as text.
        datasets: the data sets, in ``datasetOrder`` or sorted folder order.
    """

    result_id: str
    analysis_id: str
    path: str
    collaboration: str
    sqrts_tev: float
    lumi_ifb: float
    data_type: str
    likelihood: str
    fallback: str | None
    covariance: np.ndarray | None
    dataset_order: tuple[str, ...] | None
    pyhf: tuple[PyhfWorkspace, ...]
    include_crs: bool
    signal_uncertainty: float | None
    signature: str
    pretty_name: str | None
    url: str | None
    arxiv: str | None
    publication: str | None
    supersedes: str | None
    superseded_by: str | None
    private: bool
    preliminary: bool
    lifetime_lengths: dict[str, float]
    extra: dict[str, str]
    datasets: tuple[DataSet, ...]

    @property
    def topology_names(self) -> list[str]:
        """Names of all txnames of the result (sorted, unique)."""
        return sorted({t.name for d in self.datasets for t in d.topologies})
