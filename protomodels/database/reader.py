"""Reading one experimental result folder of the SModelS text database into records.

Follows the SModelS 3 loading rules (see ``docs/database.md`` section 3):
every sub-folder with a ``dataInfo.txt`` is a data set, ordered by ``datasetOrder`` if given;
every other ``*.txt`` containing ``txName`` and a grid is a topology; topologies whose grids are
all zero, or that are marked ``validated: False``, are dropped (and the reason kept).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from protomodels.database.constraints import (
    DATABASE_LABELS,
    Constraint,
    ConstraintError,
    parse_constraint,
)
from protomodels.database.grids import Grid as ParsedGrid
from protomodels.database.grids import _point_spans, parse_grid
from protomodels.database.records import (
    GRID_KINDS,
    Axis,
    DataSet,
    Grid,
    PyhfChannel,
    PyhfWorkspace,
    Result,
    Topology,
)
from protomodels.database.textformat import (
    Field,
    ValueNotUnderstood,
    parse_value,
    parse_value_strictly,
    read_fields,
)
from protomodels.exceptions import DatabaseFormatError

__all__ = [
    "ResultReading",
    "SkipResult",
    "find_result_folders",
    "read_pretty_names",
    "read_result",
]


def __dir__() -> list[str]:
    return __all__


_SKIPPED_PARTS = ("/.git/",)
_NON_FINITE_WORD = re.compile(r"\b(nan|inf|infinity)\b", re.IGNORECASE)
_ENERGY_UNIT = re.compile(r"\b(eV|keV|MeV|GeV|TeV)\b")
_SKIPPED_ENDINGS = ("/validation", "/orig")
_LIFETIME_TAGS = ("Leff_inner", "Leff_outer")


class SkipResult(Exception):  # noqa: N818 - a signal, not an error
    """The result is valid but has nothing to import (the message says why)."""


@dataclass
class ResultReading:
    """What reading one result folder gives.

    Attributes:
        result: the result record.
        checksum: sha256 over the names and contents of all files of the folder.
        warnings: problems that did not stop the import (missing pyhf JSON, ...).
        dropped: (file, reason) of topologies that were not imported.
    """

    result: Result
    checksum: str
    warnings: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)


def find_result_folders(root: Path) -> list[Path]:
    """All result folders (holding ``globalInfo.txt``) below ``root``, sorted.

    Hidden folders and folders ending in ``/validation`` or ``/orig`` are skipped, as in SModelS.
    """
    found = []
    for info in root.rglob("globalInfo.txt"):
        folder = info.parent
        rel = "/" + folder.relative_to(root).as_posix()
        if any(part.startswith(".") for part in folder.relative_to(root).parts):
            continue
        if any(p in rel + "/" for p in _SKIPPED_PARTS) or rel.endswith(_SKIPPED_ENDINGS):
            continue
        found.append(folder)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def read_pretty_names(root: Path) -> dict[str, str]:
    """Map result paths and analysis ids to pretty names from ``smodels-analyses.json``."""
    index = root / "smodels-analyses.json"
    if not index.exists():
        return {}
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    names: dict[str, str] = {}
    for entry in data.get("analyses", {}).values():
        pretty = entry.get("prettyName")
        if not pretty:
            continue
        if entry.get("anaID"):
            names.setdefault(entry["anaID"], pretty)
        for impl in entry.get("implementation", []):
            names[impl.strip("/")] = pretty
    return names


def _checksum(folder: Path) -> tuple[str, dict[str, bytes]]:
    digest = hashlib.sha256()
    contents: dict[str, bytes] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        data = path.read_bytes()
        contents[rel] = data
        digest.update(rel.encode())
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest(), contents


def _fields_by_tag(
    path: Path, text: str, *, keep: str, warnings: list[str] | None = None
) -> dict[str, Field]:
    """Fields of a file by tag; a repeated tag keeps the last (txnames) or is dropped (info)."""
    by_tag: dict[str, Field] = {}
    repeated: set[str] = set()
    for f in read_fields(path, text):
        if f.tag in by_tag:
            repeated.add(f.tag)
        by_tag[f.tag] = f
    if keep == "drop":
        for tag in repeated:
            del by_tag[tag]
            if warnings is not None:
                warnings.append(f"{path}: tag '{tag}' appears twice and is ignored (as in SModelS)")
    return by_tag


#: the physical range of each numeric field: (lowest allowed, is the lowest excluded, meaning)
_RANGES: dict[str, tuple[float, bool, str]] = {
    "observedN": (0.0, False, "the number of observed events"),
    "expectedBG": (0.0, False, "the expected number of background events"),
    "bgError": (0.0, True, "the absolute 1-sigma uncertainty of the background"),
    "upperLimit": (0.0, True, "the observed 95% CL upper limit on the cross section"),
    "expectedUpperLimit": (0.0, True, "the expected 95% CL upper limit on the cross section"),
    "sqrts": (0.0, True, "the centre-of-mass energy (e.g. 13*TeV)"),
    "lumi": (0.0, True, "the integrated luminosity (e.g. 139/fb)"),
    "signalUncertainty": (0.0, False, "the relative uncertainty of the signal"),
    "Leff_inner": (0.0, True, "the inner length of the detector region (m)"),
    "Leff_outer": (0.0, True, "the outer length of the detector region (m)"),
}


def _short(text: str) -> str:
    shown = " ".join(text.split())
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _number(path: Path, fields: dict[str, Field], tag: str, *, required: bool) -> float | None:
    """The value of a numeric field, checked: a finite number within its physical range
    (:data:`_RANGES`); None when the field is absent (or ``None``) and not required."""
    f = fields.get(tag)
    if f is None:
        if required:
            raise DatabaseFormatError(
                path,
                f"required field '{tag}' is missing",
                field=tag,
                hint=f"add a line '{tag}: <value>' to the file",
            )
        return None
    hint = "write a number, with its unit where one is expected (e.g. 3.2*fb)"
    try:
        value = parse_value_strictly(f.text)
    except ValueNotUnderstood as err:
        if _NON_FINITE_WORD.search(f.text):
            problem, hint = f"'{_short(f.text)}' is not a finite number", "write a finite number"
            if err.snippet.strip("+-").lower() not in ("nan", "inf", "infinity"):
                problem += f" ({err})"
        else:
            problem = f"'{_short(f.text)}' is not a number ({err})"
        raise DatabaseFormatError(
            path, problem, field=tag, line=f.line + err.offset, hint=hint
        ) from None
    if value is None:
        if required:
            raise DatabaseFormatError(
                path,
                f"'{tag}: None', but {tag} is required here",
                field=tag,
                line=f.line,
                hint=f"write {_RANGES[tag][2] if tag in _RANGES else 'the value'} as a number",
            )
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DatabaseFormatError(
            path, f"'{_short(f.text)}' is not a number", field=tag, line=f.line, hint=hint
        )
    try:
        value = float(value)
    except OverflowError:
        value = float("inf")
    if not np.isfinite(value):
        raise DatabaseFormatError(
            path,
            f"'{_short(f.text)}' is not a finite number",
            field=tag,
            line=f.line,
            hint="write a finite number",
        )
    if tag in _RANGES:
        lowest, excluded, meaning = _RANGES[tag]
        if value < lowest or (excluded and value == lowest):
            need = f"> {lowest:g}" if excluded else f">= {lowest:g}"
            raise DatabaseFormatError(
                path,
                f"{tag} is {value:g} ('{_short(f.text)}'), but it must be {need}: "
                f"it is {meaning}",
                field=tag,
                line=f.line,
                hint=f"write {meaning} ({need})",
            )
    return value


def _lifetimes(
    path: Path, fields: dict[str, Field], inherited: dict[str, float]
) -> dict[str, float]:
    """``Leff_inner`` / ``Leff_outer`` (m): this file's values over the inherited ones."""
    lifetimes = dict(inherited)
    for tag in _LIFETIME_TAGS:
        value = _number(path, fields, tag, required=False)
        if value is not None:
            lifetimes[tag] = value
    return lifetimes


def _text(fields: dict[str, Field], tag: str) -> str | None:
    f = fields.get(tag)
    if f is None or f.text in ("", "None"):
        return None
    return f.text


def _split_list(text: str | None) -> tuple[str, ...]:
    if text is None or text.strip() in ("", "None"):
        return ()
    return tuple(part.strip() for part in text.split(";") if part.strip())


def _normalise_json_entries(
    path: Path, f: Field, value: Any, tag: str
) -> dict[str, tuple[PyhfChannel, ...]]:
    if not isinstance(value, dict):
        raise DatabaseFormatError(
            path,
            "jsonFiles must be a dict {file: [data sets]}",
            field=tag,
            line=f.line,
            hint="write jsonFiles as {'file.json': ['SR1', 'SR2']}",
        )
    mapping: dict[str, tuple[PyhfChannel, ...]] = {}
    for file_name, entries in value.items():
        if not isinstance(entries, (list, tuple)):
            raise DatabaseFormatError(
                path,
                f"entry of {file_name!r} is not a list",
                field=tag,
                line=f.line,
                hint="list the data sets each JSON file models",
            )
        channels = []
        for entry in entries:
            if isinstance(entry, str):
                channels.append(PyhfChannel(entry, None, "SR"))
            elif isinstance(entry, dict):
                channels.append(
                    PyhfChannel(entry.get("smodels"), entry.get("pyhf"), entry.get("type", "SR"))
                )
            else:
                raise DatabaseFormatError(
                    path,
                    f"entry {entry!r} of {file_name!r} is neither a name nor a dict",
                    field=tag,
                    line=f.line,
                    hint="use 'SR' or {'smodels': 'SR', 'pyhf': 'channel', 'type': 'SR'}",
                )
        mapping[str(file_name)] = tuple(channels)
    return mapping


def _axes_for(
    path: Path, tx: str, fields: dict[str, Field], constraint: Constraint, grid: ParsedGrid
) -> tuple[Axis, ...]:
    layout = grid.layout
    if layout.branch_lengths is None:
        f = fields.get("dataMap")
        data_map = parse_value(f.text) if f is not None else None
        if not isinstance(data_map, dict):
            raise DatabaseFormatError(
                path,
                "flat grid points need a dataMap {index: (node, 'mass'|'totalwidth', GeV)}",
                field="dataMap",
                line=f.line if f else None,
                hint="add a dataMap, or write the masses per branch",
            )
        axes = []
        for k in sorted(data_map):
            entry = data_map[k]
            if not (
                isinstance(entry, tuple) and len(entry) >= 2 and entry[1] in ("mass", "totalwidth")
            ):
                raise DatabaseFormatError(
                    path,
                    f"dataMap entry {k}: {entry!r} is not (node, 'mass'|'totalwidth', unit)",
                    field="dataMap",
                    line=f.line if f else None,
                    hint="each entry must name a node number and a property",
                )
            axes.append(Axis(int(entry[0]), str(entry[1])))
        if len(axes) != layout.n_coordinates:
            raise DatabaseFormatError(
                path,
                f"dataMap has {len(axes)} entries but grid points have "
                f"{layout.n_coordinates} coordinates",
                field="dataMap",
                line=f.line if f else None,
                hint="make dataMap and the grid agree",
            )
        return tuple(axes)
    branches = constraint.sms[0].branches if constraint.sms else None
    if branches is None:
        raise DatabaseFormatError(
            path,
            f"{tx}: grid is written per branch but the constraint is in graph notation",
            field="constraint",
            hint="use flat grid points with a dataMap for graph constraints",
        )
    sms = constraint.sms[0]
    written = []
    for branch, length in zip(branches, layout.branch_lengths, strict=False):
        inclusive = length == 0 and sms.node(branch[0]).label == "InclusiveNode"
        written.append(() if inclusive else branch)
    if (
        len(branches) != len(layout.branch_lengths)
        or tuple(len(b) for b in written) != layout.branch_lengths
    ):
        raise DatabaseFormatError(
            path,
            f"grid points have {list(layout.branch_lengths)} masses per branch but the constraint "
            f"has {[len(b) for b in branches]} BSM states per branch",
            field=[k for k in GRID_KINDS.values() if k in fields][0],
            hint="make the grid's mass vectors match the constraint's branches",
        )
    branches = tuple(written)
    axes = [Axis(node, "mass") for branch in branches for node in branch]
    axes += [Axis(branches[b][v], "totalwidth") for b, v in layout.width_positions]
    return tuple(axes)


def _read_topology(
    path: Path,
    rel: str,
    text: str,
    dataset_lifetimes: dict[str, float],
    dropped: list[tuple[str, str]],
) -> Topology | None:
    fields = _fields_by_tag(path, text, keep="last")
    name_field = fields.get("txName")
    if name_field is None:
        raise DatabaseFormatError(
            path, "txName is missing", field="txName", hint="add 'txName: NAME'"
        )
    name = name_field.text
    validated = _text(fields, "validated") or "None"
    if validated.lower() == "false":
        dropped.append((rel, "validated: False (SModelS drops non-validated txnames)"))
        return None
    cf = fields.get("constraint")
    if cf is None:
        raise DatabaseFormatError(
            path,
            "constraint is missing",
            field="constraint",
            hint="add 'constraint: [[[...]],[[...]]]' or the graph notation",
        )
    condition_text = _split_list(_text(fields, "condition"))
    final_state = parse_value(fields["finalState"].text) if "finalState" in fields else None
    inter_state = (
        parse_value(fields["intermediateState"].text) if "intermediateState" in fields else None
    )
    try:
        constraint = parse_constraint(
            cf.text,
            list(condition_text) or None,
            final_state=final_state if isinstance(final_state, list) else None,
            intermediate_state=inter_state if isinstance(inter_state, list) else None,
            known_labels=DATABASE_LABELS,
        )
    except ConstraintError as err:
        tag = getattr(err, "field", "constraint")
        line = fields[tag].line if tag in fields else cf.line
        if tag == "constraint":
            line = cf.line
        raise DatabaseFormatError(
            path,
            str(err),
            field=tag,
            line=line,
            hint="use the particle labels of databaseParticles.py and balanced brackets",
        ) from err
    parsed: dict[str, ParsedGrid] = {}
    for kind, tag in GRID_KINDS.items():
        f = fields.get(tag)
        if f is not None and f.text not in ("", "None"):
            parsed[kind] = parse_grid(f.text, path=path, field=tag, line=f.line)
    if not parsed:
        raise DatabaseFormatError(
            path,
            "no grid (upperLimits or efficiencyMap)",
            field="upperLimits",
            hint="add the grid or remove the file",
        )
    if "upper_limit" in parsed and "efficiency" in parsed:
        raise DatabaseFormatError(
            path,
            "has both upperLimits and efficiencyMap",
            field="efficiencyMap",
            hint="a txname holds one kind of grid",
        )
    if all(not g.values.any() for g in parsed.values()):
        dropped.append((rel, "grid is all zeros (SModelS drops such txnames)"))
        return None
    first = next(iter(parsed.values()))
    axes = _axes_for(path, name, fields, constraint, first)
    for kind, g in parsed.items():
        if g.layout.n_coordinates != len(axes):
            raise DatabaseFormatError(
                path,
                f"{GRID_KINDS[kind]} points have {g.layout.n_coordinates} coordinates, "
                f"expected {len(axes)}",
                field=GRID_KINDS[kind],
                hint="all grids of a txname must use the same mass vector",
            )
    if first.layout.branch_lengths is None:  # flat points: the widths are named by dataMap
        columns = [i for i, a in enumerate(axes) if a.attribute == "totalwidth"]
        for kind, g in parsed.items():
            negative = g.points[:, columns] < 0
            if negative.any():
                index, j = (int(k) for k in np.argwhere(negative)[0])
                tag = GRID_KINDS[kind]
                spans = _point_spans(fields[tag].text)
                offset = spans[index][0] if index < len(spans) else 0
                raise DatabaseFormatError(
                    path,
                    f"grid point {index} has a negative width "
                    f"{g.points[index, columns[j]]:g} (coordinate {columns[j]} of dataMap)",
                    field=tag,
                    line=fields[tag].line + fields[tag].text.count("\n", 0, offset),
                    hint="widths are >= 0 (GeV)",
                )
    lifetimes = _lifetimes(path, fields, dataset_lifetimes)
    grids = {k: Grid(k, g.points, g.values) for k, g in parsed.items()}
    return Topology(
        name=name,
        constraint=constraint,
        constraint_text=cf.text,
        condition_text=condition_text,
        axes=axes,
        grids=grids,
        validated=validated,
        source=rel,
        lifetime_lengths=lifetimes,
    )


def _read_dataset(
    folder: Path,
    root: Path,
    contents: dict[str, bytes],
    sub: str,
    global_lifetimes: dict[str, float],
    region_types: dict[str, str],
    warnings: list[str],
    dropped: list[tuple[str, str]],
    lines: dict[tuple[str, str], int],
) -> DataSet:
    """One data set; ``lines`` receives the line of fields checked later against the
    result's covariance, by (data-set folder, tag)."""
    info_path = folder / sub / "dataInfo.txt"
    fields = _fields_by_tag(
        info_path,
        contents[f"{sub}/dataInfo.txt"].decode("utf-8", "replace"),
        keep="drop",
        warnings=warnings,
    )
    data_type = _text(fields, "dataType")
    if data_type not in ("upperLimit", "efficiencyMap"):
        raise DatabaseFormatError(
            info_path,
            "dataType is missing" if data_type is None else f"unknown dataType {data_type!r}",
            field="dataType",
            line=fields["dataType"].line if "dataType" in fields else None,
            hint="set 'dataType: upperLimit' or 'dataType: efficiencyMap'",
        )
    if "dataId" not in fields:
        raise DatabaseFormatError(
            info_path,
            "required field 'dataId' is missing",
            field="dataId",
            hint="add 'dataId: <region name>' ('dataId: None' for upper-limit data)",
        )
    data_id = _text(fields, "dataId")
    if data_id is not None:
        data_id = data_id.strip("'\"")
    em = data_type == "efficiencyMap"
    values = {
        tag: _number(
            info_path, fields, tag, required=em and tag in ("observedN", "expectedBG", "bgError")
        )
        for tag in (
            "observedN",
            "expectedBG",
            "bgError",
            "upperLimit",
            "expectedUpperLimit",
            "thirdMoment",
        )
    }
    for tag in ("thirdMoment", "upperLimit", "expectedUpperLimit"):
        if tag in fields:
            lines[(sub, tag)] = fields[tag].line
    lifetimes = _lifetimes(info_path, fields, global_lifetimes)
    topologies = []
    prefix = f"{sub}/"
    for rel in sorted(contents):
        if not rel.startswith(prefix) or "/" in rel[len(prefix) :] or not rel.endswith(".txt"):
            continue
        if rel == f"{sub}/dataInfo.txt":
            continue
        text = contents[rel].decode("utf-8", "replace")
        if "txName" not in text or ("upperLimits" not in text and "efficiencyMap" not in text):
            continue
        result_rel = (folder.relative_to(root) / rel).as_posix()
        topology = _read_topology(folder / rel, result_rel, text, lifetimes, dropped)
        if topology is not None:
            topologies.append(topology)
    topologies.sort(key=lambda t: t.name)
    return DataSet(
        dataset_id=sub,
        data_id=data_id,
        data_type=data_type,
        observed_n=values["observedN"],
        expected_bg=values["expectedBG"],
        bg_error=values["bgError"],
        upper_limit_fb=values["upperLimit"],
        expected_upper_limit_fb=values["expectedUpperLimit"],
        third_moment=values["thirdMoment"],
        region_type=region_types.get(data_id or sub, "SR"),
        aggregated=_split_list(_text(fields, "aggregated")),
        topologies=tuple(topologies),
        lifetime_lengths=lifetimes,
    )


def _names(ids: list[str] | tuple[str, ...]) -> str:
    return ", ".join(repr(i) for i in ids)


#: covariance eigenvalue ratio below which the statistics treat it as singular
#: (``protomodels.statistics.checks.SINGULAR_RCOND``; the real database's lowest is 1.7e-9)
_SINGULAR_RCOND = 1e-12
#: a variance this many times larger or smaller than bgError^2 is warned about (in the real
#: database the ratio lies between 3.9e-5 and 2.4: two regions of CMS-SUS-16-050-agg are beyond)
_VARIANCE_FACTOR = 100.0


def _row_line(f: Field, row: int) -> int:
    """The line holding row ``row`` of a matrix written as a list of lists."""
    spans = _point_spans(f.text)
    if row >= len(spans):
        return f.line
    return f.line + f.text.count("\n", 0, spans[row][0])


def _covariance(
    path: Path,
    f: Field,
    datasets: list[DataSet],
    order: tuple[str, ...] | None,
    warnings: list[str],
) -> np.ndarray:
    """The covariance matrix of a result, checked against its data sets.

    Errors: not a matrix of numbers, rows of unknown order (no datasetOrder for more than one
    data set), wrong shape, non-finite, not symmetric, not positive definite (what the
    simplified likelihood needs; no real result has any of these). A diagonal far from
    bgError^2 is a warning (the real database has such regions).
    """
    n = len(datasets)
    hint = "write the covariance as a list of rows of numbers, in datasetOrder order"
    if order is None and n > 1:
        raise DatabaseFormatError(
            path,
            f"a covariance for {n} data sets is given without datasetOrder: the order of its "
            "rows is unknown",
            field="covariance",
            line=f.line,
            hint='add \'datasetOrder: "SR1", "SR2", ...\' listing the dataId of each row, in order',
        )
    try:
        value = parse_value_strictly(f.text)
    except ValueNotUnderstood as err:
        raise DatabaseFormatError(
            path,
            f"covariance is not a numeric matrix ({err})",
            field="covariance",
            line=f.line + err.offset,
            hint=hint,
        ) from None
    rows = value if isinstance(value, (list, tuple)) else [value]
    flat = all(_is_number(v) for v in rows)
    for i, row in enumerate([rows] if flat else rows):
        entries = row if isinstance(row, (list, tuple)) else [row]
        for j, v in enumerate(entries):
            if not _is_number(v):
                shown = repr(v) if isinstance(v, str) else "a list" if isinstance(v, list) else v
                where = f"entry {j + 1}" if flat else f"row {i + 1}, column {j + 1}"
                raise DatabaseFormatError(
                    path,
                    f"covariance {where} is {shown}, not a number",
                    field="covariance",
                    line=f.line if flat else _row_line(f, i),
                    hint=hint,
                )
    try:
        with np.errstate(over="ignore"):
            covariance = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        lengths = sorted({len(r) for r in rows if isinstance(r, (list, tuple))})
        raise DatabaseFormatError(
            path,
            f"covariance rows have different lengths ({', '.join(map(str, lengths))})",
            field="covariance",
            line=f.line,
            hint=hint,
        ) from None
    if covariance.ndim == 1 and covariance.size == n * n:
        covariance = covariance.reshape(n, n)
    if covariance.shape != (n, n):
        shape = " x ".join(str(k) for k in covariance.shape) or "a number"
        raise DatabaseFormatError(
            path,
            f"covariance has shape {shape} but the result has {n} data sets",
            field="covariance",
            line=f.line,
            hint="give an n x n matrix in datasetOrder order (n = number of data sets)",
        )
    names = [d.data_id or d.dataset_id for d in datasets]
    bad = ~np.isfinite(covariance)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        raise DatabaseFormatError(
            path,
            f"covariance entry ({names[i]}, {names[j]}) is {covariance[i, j]:g}, not finite",
            field="covariance",
            line=_row_line(f, i),
            hint="replace NaN/inf entries by numbers",
        )
    scale = float(np.max(np.abs(covariance))) if covariance.size else 0.0
    if not np.allclose(covariance, covariance.T, rtol=1e-6, atol=1e-9 * scale):
        i, j = np.unravel_index(np.argmax(np.abs(covariance - covariance.T)), covariance.shape)
        raise DatabaseFormatError(
            path,
            f"covariance is not symmetric: entry ({names[i]}, {names[j]}) is "
            f"{covariance[i, j]:g} but ({names[j]}, {names[i]}) is {covariance[j, i]:g}",
            field="covariance",
            line=_row_line(f, int(i)),
            hint="a covariance matrix is symmetric; correct the entry",
        )
    try:
        eigenvalues = np.linalg.eigvalsh(covariance)
    except np.linalg.LinAlgError:
        eigenvalues = np.array([np.nan])
    if not np.isfinite(eigenvalues).all():
        raise DatabaseFormatError(
            path,
            "covariance entries are too large to work with",
            field="covariance",
            line=f.line,
            hint="give the covariance of the event counts (entries of the order of bgError^2)",
        )
    smallest, largest = float(eigenvalues[0]), float(eigenvalues[-1])
    if largest <= 0 or smallest <= _SINGULAR_RCOND * largest:
        kind = "not positive definite" if smallest < 0 else "singular"
        raise DatabaseFormatError(
            path,
            f"covariance is {kind} (eigenvalues from {smallest:.3g} to {largest:.3g}); the "
            "simplified likelihood needs a positive-definite matrix",
            field="covariance",
            line=f.line,
            hint="check the signs of the entries and that the rows follow datasetOrder",
        )
    variances = np.diag(covariance)
    far = []
    for name, d, var in zip(names, datasets, variances, strict=True):
        if d.bg_error is None or d.bg_error <= 0:
            continue
        square = d.bg_error * d.bg_error  # (a float ** overflows with an exception)
        ratio = float(var) / square if square > 0 else float("inf")
        if not 1 / _VARIANCE_FACTOR <= ratio <= _VARIANCE_FACTOR:
            far.append(f"{name} (variance {var:g}, bgError^2 {square:g})")
    if far:
        warnings.append(
            f"{path}: the covariance diagonal is more than {_VARIANCE_FACTOR:g} times off "
            f"bgError^2 for {len(far)} data set(s): {'; '.join(far[:5])}"
            + (f" and {len(far) - 5} more" if len(far) > 5 else "")
            + "; the combined likelihood uses the covariance, single regions use bgError"
        )
    return covariance


def _check_third_moments(
    folder: Path,
    datasets: list[DataSet],
    covariance: np.ndarray,
    lines: dict[tuple[str, str], int],
) -> None:
    """|thirdMoment| <= sqrt(8 variance^3): the skewed simplified likelihood
    (arXiv:1809.05548) has no solution beyond (the real database stays below 0.31 of it)."""
    for d, variance in zip(datasets, np.diag(covariance), strict=True):
        m3 = d.third_moment
        variance = float(variance)
        if m3 is None or m3 * m3 <= 8.0 * variance * variance * variance:
            continue
        raise DatabaseFormatError(
            folder / d.dataset_id / "dataInfo.txt",
            f"thirdMoment {m3:g} is too large for the background variance {variance:g} of the "
            "covariance (the skewed likelihood needs thirdMoment^2 <= 8 variance^3)",
            field="thirdMoment",
            line=lines.get((d.dataset_id, "thirdMoment")),
            hint="fix thirdMoment, or the covariance row of this data set",
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_EVALUATED = {
    "sqrts",
    "lumi",
    "datasetOrder",
    "covariance",
    "jsonFiles",
    "includeCRs",
    "signalUncertainty",
    "private",
    *_LIFETIME_TAGS,
}
_NAMED = {
    "id",
    "url",
    "arxiv",
    "publication",
    "supersedes",
    "supersededBy",
    "type",
    "prettyName",
    "jsonFiles_FullLikelihood",
}


def read_result(
    folder: Path,
    root: Path,
    pretty_names: dict[str, str] | None = None,
    *,
    skip_if_checksum: str | None = None,
) -> ResultReading | None:
    """Read one result folder.

    Args:
        folder: the folder holding ``globalInfo.txt``.
        root: the database root (paths are stored relative to it).
        pretty_names: from :func:`read_pretty_names`.
        skip_if_checksum: return None without parsing if the folder has this checksum.

    Raises:
        DatabaseFormatError: anything that makes the result unusable, naming file, field and fix.
        SkipResult: the result has no usable topology (SModelS drops such results too).
    """
    checksum, contents = _checksum(folder)
    if skip_if_checksum is not None and checksum == skip_if_checksum:
        return None
    rel_folder = folder.relative_to(root).as_posix()
    warnings: list[str] = []
    dropped: list[tuple[str, str]] = []
    info_path = folder / "globalInfo.txt"
    fields = _fields_by_tag(
        info_path,
        contents["globalInfo.txt"].decode("utf-8", "replace"),
        keep="drop",
        warnings=warnings,
    )
    for tag in ("id", "sqrts", "lumi"):
        if tag not in fields:
            raise DatabaseFormatError(
                info_path,
                f"required field '{tag}' is missing",
                field=tag,
                hint=f"add a line '{tag}: <value>'",
            )
    analysis_id = fields["id"].text.strip()
    sqrts = _number(info_path, fields, "sqrts", required=True)
    lumi = _number(info_path, fields, "lumi", required=True)
    assert sqrts is not None and lumi is not None
    # with a unit, sqrts is in GeV after the unit evaluation; without one it is read as TeV
    # (the real database always writes '13*TeV' or '8.0*TeV')
    sqrts_tev = sqrts / 1000.0 if _ENERGY_UNIT.search(fields["sqrts"].text) else sqrts
    global_lifetimes = _lifetimes(info_path, fields, {})
    # pyhf mapping
    pyhf: list[PyhfWorkspace] = []
    region_types: dict[str, str] = {}
    fallback = None
    for tag, full in (("jsonFiles", False), ("jsonFiles_FullLikelihood", True)):
        if tag not in fields:
            continue
        f = fields[tag]
        mapping = _normalise_json_entries(info_path, f, parse_value(f.text), tag)
        for file_name, channels in mapping.items():
            if not full:
                for ch in channels:
                    if ch.smodels is not None:
                        region_types[ch.smodels] = ch.region_type
            raw = contents.get(file_name)
            if raw is None:
                warnings.append(
                    f"{info_path}: {tag} names {file_name!r}, which is missing from the "
                    "source; the likelihood falls back (see the result's fallback)"
                )
                pyhf.append(PyhfWorkspace(file_name, channels, None, True, full))
                continue
            try:
                workspace = json.loads(raw)
            except json.JSONDecodeError as err:
                raise DatabaseFormatError(
                    folder / file_name,
                    f"invalid JSON ({err.msg})",
                    line=err.lineno,
                    hint="replace the file with a valid pyhf workspace",
                ) from err
            pyhf.append(PyhfWorkspace(file_name, channels, workspace, False, full))
    # data sets
    subs = sorted(
        rel.rsplit("/", 1)[0]
        for rel in contents
        if rel.endswith("/dataInfo.txt") and rel.count("/") == 1
    )
    order = None
    lines: dict[tuple[str, str], int] = {}
    if "datasetOrder" in fields:
        f = fields["datasetOrder"]
        value = parse_value(f.text)
        value = (value,) if isinstance(value, str) else value
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise DatabaseFormatError(
                info_path,
                f"datasetOrder must be a list of data-set ids, not '{_short(f.text)}'",
                field="datasetOrder",
                line=f.line,
                hint='write datasetOrder: "SR1", "SR2", ...',
            )
        twice = sorted({v for v in value if value.count(v) > 1})
        if twice:
            raise DatabaseFormatError(
                info_path,
                f"datasetOrder lists {_names(twice)} more than once",
                field="datasetOrder",
                line=f.line,
                hint="list the dataId of each data set once, in the order of the covariance rows",
            )
        order = tuple(value)
    datasets = [
        _read_dataset(
            folder, root, contents, sub, global_lifetimes, region_types, warnings, dropped, lines
        )
        for sub in subs
    ]
    if order is not None:
        by_id = {d.data_id or d.dataset_id: d for d in datasets}
        missing = [o for o in order if o not in by_id]
        if missing:
            raise DatabaseFormatError(
                info_path,
                f"datasetOrder lists {_names(missing[:3])} without a data-set folder",
                field="datasetOrder",
                line=fields["datasetOrder"].line,
                hint="list exactly the dataId of every data-set folder",
            )
        unlisted = [k for k in by_id if k not in order]
        if unlisted:
            warnings.append(
                f"{info_path}: data sets {_names(unlisted[:5])}"
                + (f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else "")
                + " are not in datasetOrder and are dropped"
            )
        datasets = [by_id[o] for o in order]
    datasets = [d for d in datasets if d.topologies or d.data_type == "efficiencyMap"]
    if not any(d.topologies for d in datasets):
        reasons = "; ".join(f"{src}: {why}" for src, why in dropped[:3])
        raise SkipResult(
            "no usable topology (SModelS drops results without txnames)"
            + (f": {reasons}" if reasons else "")
        )
    data_types = {d.data_type for d in datasets}
    if len(data_types) > 1:
        raise DatabaseFormatError(
            info_path,
            "mixes upper-limit and efficiency-map data sets",
            hint="split the result into an upper-limit and an -eff folder",
        )
    data_type = data_types.pop()
    # covariance
    covariance = None
    if "covariance" in fields:
        covariance = _covariance(info_path, fields["covariance"], datasets, order, warnings)
        if data_type == "upperLimit":
            warnings.append(
                f"{info_path}: a covariance is given for an upper-limit result; it is not used"
            )
        _check_third_moments(folder, datasets, covariance, lines)
    # likelihood material
    if data_type == "upperLimit":
        has_expected = any(
            "expected_upper_limit" in t.grids for d in datasets for t in d.topologies
        )
        likelihood = "truncated_gaussian" if has_expected else "none"
    else:
        used = [w for w in pyhf if not w.full]
        missing_full = [w.file_name for w in pyhf if w.full and w.missing]
        if any(not w.missing for w in used):
            likelihood = "pyhf"
            if any(w.missing for w in used):
                fallback = "some pyhf JSON files are missing: only the others are used"
        elif covariance is not None:
            likelihood = "covariance"
            if used:
                fallback = "pyhf JSON files missing: simplified likelihood from the covariance"
        else:
            likelihood = "single_region"
            if used:
                fallback = "pyhf JSON files missing: best signal region instead"
            elif order is not None and len(datasets) > 1:
                # the real database gives datasetOrder only with a covariance or jsonFiles
                fallback = "datasetOrder given but no covariance: best signal region instead"
                warnings.append(
                    f"{info_path}: datasetOrder lists {len(order)} data sets to combine but "
                    "there is no covariance (and no jsonFiles): the data sets are not combined, "
                    "the best signal region is used instead; add the covariance (or the "
                    "jsonFiles) back, or remove datasetOrder"
                )
        if missing_full:
            note = f"full-likelihood JSON {', '.join(missing_full)} missing"
            fallback = f"{fallback}; {note}" if fallback else note
    known = {d.data_id or d.dataset_id for d in datasets}
    for w in pyhf:
        for ch in w.channels:
            if ch.smodels is not None and ch.smodels not in known:
                warnings.append(
                    f"{info_path}: jsonFiles entry {ch.smodels!r} of {w.file_name} "
                    "is not a data set"
                )
    pretty_names = pretty_names or {}
    extra = {t: f.text for t, f in fields.items() if t not in _EVALUATED | _NAMED}
    collaboration = (
        "CMS"
        if analysis_id.startswith("CMS")
        else ("ATLAS" if analysis_id.startswith("ATLAS") else folder.parent.name)
    )
    include_crs = parse_value(fields["includeCRs"].text) if "includeCRs" in fields else False
    private = parse_value(fields["private"].text) if "private" in fields else False
    result = Result(
        result_id=folder.name,
        analysis_id=analysis_id,
        path=rel_folder,
        collaboration=collaboration,
        sqrts_tev=float(sqrts_tev),
        lumi_ifb=float(lumi),
        data_type=data_type,
        likelihood=likelihood,
        fallback=fallback,
        covariance=covariance,
        dataset_order=order,
        pyhf=tuple(pyhf),
        include_crs=bool(include_crs is True or str(include_crs).lower() == "true"),
        signal_uncertainty=_number(info_path, fields, "signalUncertainty", required=False),
        signature="displaced" if _text(fields, "type") == "displaced" else "prompt",
        pretty_name=_text(fields, "prettyName")
        or pretty_names.get(rel_folder)
        or pretty_names.get(analysis_id),
        url=_text(fields, "url"),
        arxiv=_text(fields, "arxiv"),
        publication=_text(fields, "publication"),
        supersedes=_text(fields, "supersedes"),
        superseded_by=_text(fields, "supersededBy"),
        private=bool(private is True or str(private).lower() == "true"),
        preliminary=bool(re.search(r"-(CONF|PAS)-", analysis_id)),
        lifetime_lengths=global_lifetimes,
        extra=extra,
        datasets=tuple(datasets),
    )
    return ResultReading(result, checksum, warnings, dropped)
