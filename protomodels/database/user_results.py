"""User-added results: a small YAML (or JSON) file for a search that is not in the database.

The format (``docs/user_results.md`` has the full description and examples)::

    format: protomodels-user-result/1
    id: USER-ATLAS-EXOT-2018-06        # the result's id in the store (not a database id)
    analysis: ATLAS-EXOT-2018-06       # optional, default: id (combinability goes by it)
    collaboration: ATLAS               # ATLAS or CMS
    sqrts: 13                          # TeV
    luminosity: 139                    # fb^-1
    url: https://...                   # optional; also arxiv, description, signature
    signal_regions:                    # an efficiency-map result (leave out: upper limits)
      - id: EM10
        observed: 413
        background: 359
        background_error: 10
        upper_limit: 0.55              # optional, fb (95 % CL on sigma x eff); else computed
        expected_upper_limit: 0.25     # optional, fb; else computed
    covariance: [[...], ...]           # optional: background covariance in region order
    topologies:
      - name: TChiWZ
        constraint: "[[['W']],[['Z']]]"   # SModelS notation (databaseParticles labels)
        condition: null                   # optional
        masses: [[[300, 100], [300, 100]], ...]   # one grid point per row (GeV), per branch
        efficiencies: {EM10: [0.01, ...]}         # one value per mass row, per region
        # upper-limit results instead: upper_limits: [...] (fb), expected_upper_limits: [...]

Rows may also be flat vectors with ``axes: [[node, mass|totalwidth], ...]`` (what the exporter
writes, exact for every database grid); a region may carry its own ``{masses:, values:}``.
A result with signal regions but no topologies takes part in the excess list and the p-value
histograms only. Every problem is reported with the file, the line and the field.
"""

from __future__ import annotations

import hashlib
import math
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from protomodels.database import store
from protomodels.database.records import DataSet, Result, Topology
from protomodels.exceptions import DatabaseFormatError

__all__ = [
    "FORMAT",
    "USER_PATH_PREFIX",
    "UserResult",
    "add_user_result",
    "export_result",
    "read_user_result",
    "remove_user_result",
]


def __dir__() -> list[str]:
    return __all__


FORMAT = "protomodels-user-result/1"
USER_PATH_PREFIX = store.USER_PATH_PREFIX
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_TOP_KEYS = {
    "format", "id", "analysis", "collaboration", "sqrts", "luminosity", "url", "arxiv",
    "description", "signature", "signal_regions", "covariance", "topologies",
}
_REGION_KEYS = {"id", "observed", "background", "background_error", "upper_limit",
                "expected_upper_limit"}
_TOPOLOGY_KEYS = {"name", "constraint", "condition", "masses", "axes", "efficiencies",
                  "upper_limits", "expected_upper_limits", "validated"}
_GRID_FIELDS = {"efficiencies": "efficiencyMap", "upper_limits": "upperLimits",
                "expected_upper_limits": "expectedUpperLimits"}


@dataclass(frozen=True)
class UserResult:
    """A validated user result.

    Attributes:
        result: the record, as the store keeps it.
        source: the file it was read from.
        warnings: what was accepted but deserves a look (e.g. computed upper limits).
    """

    result: Result
    source: Path
    warnings: list[str] = field(default_factory=list)


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Lines:
    """Line numbers (1-based) of the YAML nodes, looked up by key path (the node tree is
    composed only when a problem is reported)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._root: yaml.Node | None = None

    def __call__(self, *keys: str | int) -> int | None:
        if self._root is None:
            self._root = yaml.compose(self.text, Loader=_SafeLoader)
        node = self._root
        line = node.start_mark.line + 1 if node is not None else None
        for key in keys:
            if isinstance(node, yaml.MappingNode):
                match = [v for k, v in node.value if getattr(k, "value", None) == key]
                if not match:
                    return line
                node = match[0]
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
                if key >= len(node.value):
                    return line
                node = node.value[key]
            else:
                return line
            line = node.start_mark.line + 1
        return line


class _Checker:
    """Raises :class:`DatabaseFormatError` naming the file, the line and the field."""

    def __init__(self, path: Path, lines: _Lines) -> None:
        self.path = path
        self.lines = lines

    def fail(self, where: Sequence[str | int], problem: str, hint: str) -> DatabaseFormatError:
        name = ".".join(str(k) if isinstance(k, str) else f"[{k}]" for k in where) or None
        if name is not None:
            name = name.replace(".[", "[")
        return DatabaseFormatError(self.path, problem, field=name, line=self.lines(*where),
                                   hint=hint)

    def number(
        self, value: Any, where: Sequence[str | int], *, minimum: float = 0.0,
        positive: bool = False, unit: str = "",
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"{value!r} is not a number", f"write a number{unit}")
        x = float(value)
        if not math.isfinite(x):
            raise self.fail(where, f"{value!r} is not finite", f"write a finite number{unit}")
        if x < minimum or (positive and x <= 0):
            bound = "> 0" if positive else f">= {minimum:g}"
            raise self.fail(where, f"{x:g} is out of range (must be {bound})",
                            f"write a number {bound}{unit}")
        return x

    def text(self, value: Any, where: Sequence[str | int], *, pattern: re.Pattern | None = None,
             hint: str = "write a name") -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"{value!r} is not a non-empty text", hint)
        if pattern is not None and not pattern.match(value):
            raise self.fail(where, f"{value!r} is not a valid id", hint)
        return value.strip()

    def keys(self, mapping: Any, allowed: set[str], where: Sequence[str | int]) -> None:
        if not isinstance(mapping, Mapping):
            raise self.fail(where, f"expected a mapping (key: value), got {type(mapping).__name__}",
                            "see docs/user_results.md for the format")
        unknown = sorted(str(k) for k in mapping if k not in allowed)
        if unknown:
            raise self.fail([*where, unknown[0]], f"unknown field {unknown[0]!r}",
                            f"use one of {', '.join(sorted(allowed))}")


def _load(path: Path) -> tuple[Any, _Lines]:
    if not path.is_file():
        raise DatabaseFormatError(path, "the user-result file does not exist",
                                  hint="pass the path of a YAML or JSON file")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise DatabaseFormatError(
            path, f"not valid YAML/JSON: {getattr(err, 'problem', None) or err}",
            line=mark.line + 1 if mark is not None else None,
            hint="fix the syntax (indentation, brackets, quotes)",
        ) from err
    return data, _Lines(text)


def _rows_text(rows: np.ndarray | list, values: Sequence[float], unit: str) -> str:
    parts = [f"[{_python(r)}, {float(v)!r}{unit}]" for r, v in zip(rows, values, strict=True)]
    return "[" + ", ".join(parts) + "]"


def _python(x: Any) -> str:
    if isinstance(x, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_python(v) for v in x) + "]"
    return repr(float(x)) if not isinstance(x, str) else repr(x)


def _grid_rows(check: _Checker, where: list, masses: Any, n_values: int,
               mass_where: list) -> list:
    if not isinstance(masses, list) or not masses:
        raise check.fail(mass_where, "masses must be a non-empty list of grid points",
                         "write one row per grid point, e.g. [[300, 100], [300, 100]]")
    if len(masses) != n_values:
        raise check.fail(where, f"{n_values} values for {len(masses)} mass rows",
                         "give one value per row of masses")
    for i, row in enumerate(masses):
        for v in _leaves(row):
            if v != "*":
                check.number(v, [*mass_where, i], unit=" (GeV)")
    return masses


def _leaves(x: Any) -> list[Any]:
    if isinstance(x, list):
        return [v for part in x for v in _leaves(part)]
    return [x]


def _topology(
    check: _Checker, t: Any, k: int, regions: list[str], upper_limit_result: bool,
    warnings: list[str],
) -> dict[str, list[Topology]]:
    """Topologies of one YAML entry per data set id ('data' for upper-limit results)."""
    from protomodels.database.reader import _read_topology

    where: list[str | int] = ["topologies", k]
    check.keys(t, _TOPOLOGY_KEYS, where)
    name = check.text(t.get("name"), [*where, "name"], hint="write the txname, e.g. T2tt")
    constraint = check.text(t.get("constraint"), [*where, "constraint"],
                            hint="write the constraint in SModelS notation, e.g. [[['t']],[['t']]]")
    condition = t.get("condition")
    if condition is not None and not isinstance(condition, (str, list)):
        raise check.fail([*where, "condition"], f"{condition!r} is not a condition",
                         "write the SModelS condition text or leave it out")
    axes = t.get("axes")
    data_map = None
    if axes is not None:
        if not isinstance(axes, list) or not all(
            isinstance(a, list) and len(a) == 2 and isinstance(a[0], int)
            and a[1] in ("mass", "totalwidth") for a in axes
        ):
            raise check.fail([*where, "axes"], f"{axes!r} is not a list of [node, mass|totalwidth]",
                             "write e.g. [[1, mass], [2, mass]] (SModelS node numbers)")
        entries = (f"{i}: ({a[0]}, '{a[1]}', GeV)" for i, a in enumerate(axes))
        data_map = "{" + ", ".join(entries) + "}"
    present = [key for key in _GRID_FIELDS if key in t]
    if upper_limit_result:
        if "efficiencies" in present:
            raise check.fail([*where, "efficiencies"],
                             "efficiencies in a result without signal regions",
                             "add signal_regions, or give upper_limits instead")
        if "upper_limits" not in present:
            raise check.fail(where, f"topology {name!r} has no upper_limits",
                             "give upper_limits (fb), one per mass row")
        grids = {"data": {key: t[key] for key in present}}
    else:
        if present != ["efficiencies"]:
            bad = [p for p in present if p != "efficiencies"]
            raise check.fail([*where, bad[0] if bad else "efficiencies"],
                             "a result with signal regions takes efficiencies per region",
                             "write efficiencies: {REGION: [values]}")
        eff = t["efficiencies"]
        if not isinstance(eff, Mapping) or not eff:
            raise check.fail([*where, "efficiencies"], "efficiencies must map region ids to values",
                             "write efficiencies: {REGION: [values, ...]}")
        unknown = [r for r in eff if r not in regions]
        if unknown:
            raise check.fail([*where, "efficiencies", unknown[0]],
                             f"region {unknown[0]!r} is not one of the signal regions",
                             f"use one of {', '.join(regions)}")
        grids = {r: {"efficiencies": v} for r, v in eff.items()}
    out: dict[str, list[Topology]] = {}
    for region, kinds in grids.items():
        lines = [f"txName: {name}", f"constraint: {constraint}",
                 f"validated: {t.get('validated', 'N/A')}"]
        if condition is not None:
            text = condition if isinstance(condition, str) else ";".join(map(str, condition))
            lines.append(f"condition: {text}")
        if data_map is not None:
            lines.append(f"dataMap: {data_map}")
        for key, values in kinds.items():
            vwhere: list[str | int] = [*where, key] if upper_limit_result else [*where, key, region]
            masses, mwhere = t.get("masses"), [*where, "masses"]
            if isinstance(values, Mapping):
                check.keys(values, {"masses", "values"}, vwhere)
                masses, mwhere = values.get("masses"), [*vwhere, "masses"]
                values, vwhere = values.get("values"), [*vwhere, "values"]
            if not isinstance(values, list):
                raise check.fail(vwhere, f"{values!r} is not a list of values",
                                 "give one value per mass row")
            unit = "" if key == "efficiencies" else " (fb)"
            nums = [check.number(v, [*vwhere, i], unit=unit) for i, v in enumerate(values)]
            if key == "efficiencies" and any(v > 1 for v in nums):
                i = next(i for i, v in enumerate(nums) if v > 1)
                raise check.fail([*vwhere, i], f"efficiency {nums[i]:g} is above 1",
                                 "efficiencies are fractions in [0, 1]")
            rows = _grid_rows(check, vwhere, masses, len(nums), mwhere)
            text = _rows_text(rows, nums, "" if key == "efficiencies" else "*fb")
            lines.append(f"{_GRID_FIELDS[key]}: {text}")
        dropped: list[tuple[str, str]] = []
        try:
            topology = _read_topology(check.path, f"{check.path.name}:{name}", "\n".join(lines),
                                      {}, dropped)
        except DatabaseFormatError as err:
            tag = {"constraint": "constraint", "condition": "condition", "dataMap": "axes"}.get(
                err.field or "", "masses")
            raise check.fail([*where, tag], err.problem, err.hint) from err
        except ValueError as err:
            raise check.fail(where, str(err), "check the topology's fields") from err
        if topology is None:
            warnings.append(f"{check.path}: topology {name!r} ({region}): "
                            + "; ".join(why for _, why in dropped))
            continue
        out.setdefault(region, []).append(topology)
    return out


def _computed_limits(n: float, b: float, err: float, lumi: float) -> tuple[float, float]:
    """Observed and expected 95 % CL limits on sigma x eff (fb) from the single-region
    likelihood (the limits SModelS computes when a data set gives none)."""
    from protomodels.statistics.single_region import upper_limit

    observed = float(upper_limit(1.0, b, err, n)) / lumi
    expected = float(upper_limit(1.0, b, err, n, expected=True)) / lumi
    return observed, expected


def read_user_result(path: str | Path) -> UserResult:
    """Read and validate a user-result file (see the module docstring for the format).

    Raises:
        DatabaseFormatError: the first problem, with file, line and field, and what to do.
    """
    path = Path(path)
    data, lines = _load(path)
    check = _Checker(path, lines)
    check.keys(data, _TOP_KEYS, [])
    fmt = data.get("format", FORMAT)
    if fmt != FORMAT:
        raise check.fail(["format"], f"unknown format {fmt!r}", f"write format: {FORMAT}")
    for key in ("id", "collaboration", "sqrts", "luminosity"):
        if key not in data:
            raise check.fail([], f"required field {key!r} is missing",
                             f"add '{key}: ...' (see docs/user_results.md)")
    result_id = check.text(data["id"], ["id"], pattern=_ID_RE,
                           hint="letters, digits and - _ . + only, e.g. USER-ATLAS-EXOT-2018-06")
    analysis = check.text(data.get("analysis", result_id), ["analysis"], pattern=_ID_RE,
                          hint="letters, digits and - _ . + only")
    collaboration = data["collaboration"]
    if collaboration not in ("ATLAS", "CMS"):
        raise check.fail(["collaboration"], f"{collaboration!r} is not ATLAS or CMS",
                         "write ATLAS or CMS")
    if ("CMS" in analysis) != (collaboration == "CMS"):
        where = ["analysis"] if "analysis" in data else ["id"]
        raise check.fail(where, f"analysis id {analysis!r} does not tell {collaboration} apart "
                         "(the combiner takes ids containing 'CMS' as CMS, others as ATLAS)",
                         f"put {collaboration} in the id, e.g. USER-{collaboration}-MY-SEARCH")
    sqrts = check.number(data["sqrts"], ["sqrts"], positive=True, unit=" (TeV)")
    if sqrts > 100:
        raise check.fail(["sqrts"], f"sqrts {sqrts:g} looks like GeV", "write it in TeV, e.g. 13")
    lumi = check.number(data["luminosity"], ["luminosity"], positive=True, unit=" (fb^-1)")
    signature = data.get("signature", "prompt")
    if signature not in ("prompt", "displaced"):
        raise check.fail(["signature"], f"{signature!r} is not prompt or displaced",
                         "write prompt or displaced")
    warnings: list[str] = []
    raw_regions = data.get("signal_regions")
    upper_limit_result = raw_regions is None
    region_ids: list[str] = []
    region_numbers: list[dict[str, float | None]] = []
    if not upper_limit_result:
        if not isinstance(raw_regions, list) or not raw_regions:
            raise check.fail(["signal_regions"], "signal_regions must be a non-empty list",
                             "list the regions, or leave the field out for upper limits")
        for i, region in enumerate(raw_regions):
            where: list[str | int] = ["signal_regions", i]
            check.keys(region, _REGION_KEYS, where)
            for key in ("id", "observed", "background", "background_error"):
                if key not in region:
                    raise check.fail(where, f"region {i} has no {key!r}", f"add '{key}: ...'")
            rid = check.text(region["id"], [*where, "id"], pattern=_ID_RE,
                             hint="letters, digits and - _ . + only")
            if rid in region_ids:
                raise check.fail([*where, "id"], f"region id {rid!r} is used twice",
                                 "give every region its own id")
            region_ids.append(rid)
            numbers: dict[str, float | None] = {
                key: check.number(region[key], [*where, key], unit=" (events)")
                for key in ("observed", "background", "background_error")
            }
            for key in ("upper_limit", "expected_upper_limit"):
                numbers[key] = (check.number(region[key], [*where, key], positive=True,
                                             unit=" (fb)") if key in region else None)
            region_numbers.append(numbers)
    covariance = None
    if "covariance" in data:
        if upper_limit_result:
            raise check.fail(["covariance"], "a covariance without signal regions",
                             "remove it, or add the signal regions")
        cov = data["covariance"]
        n = len(region_ids)
        if not (isinstance(cov, list) and len(cov) == n
                and all(isinstance(r, list) and len(r) == n for r in cov)):
            raise check.fail(["covariance"], f"the covariance is not a {n} x {n} matrix",
                             "one row per signal region, in their order")
        covariance = np.array([[check.number(v, ["covariance", i, j], minimum=-math.inf)
                                for j, v in enumerate(row)] for i, row in enumerate(cov)])
        if not np.allclose(covariance, covariance.T, rtol=1e-6, atol=0):
            raise check.fail(["covariance"], "the covariance is not symmetric",
                             "make entry (i, j) equal to (j, i)")
        if np.linalg.eigvalsh(covariance).min() < -1e-9 * abs(covariance).max():
            raise check.fail(["covariance"], "the covariance is not positive semi-definite",
                             "check its entries (a correlation above 1?)")
        for i, numbers in enumerate(region_numbers):
            err = numbers["background_error"] or 0.0
            if not math.isclose(math.sqrt(max(covariance[i, i], 0)), err, rel_tol=0.05):
                warnings.append(
                    f"{path}: region {region_ids[i]}: sqrt of the covariance's diagonal "
                    f"{math.sqrt(max(covariance[i, i], 0)):g} differs from background_error "
                    f"{err:g} by more than 5 %"
                )
    raw_topologies = data.get("topologies", [])
    if not isinstance(raw_topologies, list):
        raise check.fail(["topologies"], "topologies must be a list", "write - name: ... entries")
    if upper_limit_result and not raw_topologies:
        raise check.fail([], "neither signal regions nor topologies",
                         "give signal_regions (efficiency maps) or topologies with upper_limits")
    by_region: dict[str, list[Topology]] = {}
    names: set[str] = set()
    for k, t in enumerate(raw_topologies):
        for region, tops in _topology(check, t, k, region_ids, upper_limit_result,
                                      warnings).items():
            by_region.setdefault(region, []).extend(tops)
        tname = t.get("name")
        if tname in names:
            raise check.fail(["topologies", k, "name"], f"topology {tname!r} is given twice",
                             "merge the entries into one")
        names.add(tname)
    datasets: list[DataSet] = []
    if upper_limit_result:
        tops = by_region.get("data", [])
        if not tops:
            raise check.fail(["topologies"], "no usable topology",
                             "check the warnings: the grids are all zero or not validated")
        datasets.append(DataSet("data", None, "upperLimit", None, None, None, None, None, None,
                                "SR", (), tuple(sorted(tops, key=lambda x: x.name))))
    else:
        for rid, numbers in zip(region_ids, region_numbers, strict=True):
            ul, eul = numbers["upper_limit"], numbers["expected_upper_limit"]
            if ul is None or eul is None:
                computed = _computed_limits(numbers["observed"], numbers["background"],
                                            numbers["background_error"], lumi)
                if ul is None:
                    ul = computed[0]
                if eul is None:
                    eul = computed[1]
                warnings.append(f"{path}: region {rid}: 95 % CL limits computed from the counts "
                                f"(observed {ul:.4g} fb, expected {eul:.4g} fb)")
            datasets.append(DataSet(
                rid, rid, "efficiencyMap", numbers["observed"], numbers["background"],
                numbers["background_error"], ul, eul, None, "SR", (),
                tuple(sorted(by_region.get(rid, []), key=lambda x: x.name)),
            ))
    if upper_limit_result:
        has_expected = any("expected_upper_limit" in t.grids for d in datasets
                           for t in d.topologies)
        likelihood = "truncated_gaussian" if has_expected else "none"
    else:
        likelihood = "covariance" if covariance is not None else "single_region"
    result = Result(
        result_id=result_id, analysis_id=analysis, path=f"{USER_PATH_PREFIX}{result_id}",
        collaboration=collaboration, sqrts_tev=sqrts, lumi_ifb=lumi,
        data_type="upperLimit" if upper_limit_result else "efficiencyMap",
        likelihood=likelihood, fallback=None, covariance=covariance,
        dataset_order=tuple(region_ids) if covariance is not None else None, pyhf=(),
        include_crs=False, signal_uncertainty=None, signature=signature,
        pretty_name=_optional_text(check, data, "description"),
        url=_optional_text(check, data, "url"), arxiv=_optional_text(check, data, "arxiv"),
        publication=None, supersedes=None, superseded_by=None, private=False,
        preliminary=False, lifetime_lengths={}, extra={"userSource": path.name},
        datasets=tuple(datasets),
    )
    return UserResult(result, path, warnings)


def _optional_text(check: _Checker, data: Mapping, key: str) -> str | None:
    if key not in data or data[key] is None:
        return None
    return check.text(str(data[key]), [key])


def add_user_result(
    store_path: str | Path, source: str | Path, *, replace: bool = False
) -> UserResult:
    """Validate a user-result file and write it into a store, in one transaction.

    Raises:
        DatabaseFormatError: the file is malformed (nothing is written).
        ValueError: the id is taken by a database result, or by a user result without
            ``replace``.
    """
    user = read_user_result(source)
    result = user.result
    conn = store.connect(store_path)
    try:
        row = conn.execute("SELECT path FROM results WHERE result_id=?",
                           (result.result_id,)).fetchone()
        if row is not None and not str(row[0]).startswith(USER_PATH_PREFIX):
            msg = (f"{source}: id {result.result_id!r} is a result of the database in "
                   f"{store_path}; choose another id (e.g. USER-{result.result_id})")
            raise ValueError(msg)
        if row is not None and not replace:
            msg = (f"{source}: a user result {result.result_id!r} is already in {store_path}; "
                   "pass --replace to overwrite it")
            raise ValueError(msg)
        position = conn.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM results").fetchone()[0]
        text = Path(source).read_bytes()
        with store.transaction(conn):
            store.write_result(
                conn, result, position=int(position),
                checksum=hashlib.sha256(text).hexdigest(),
                imported_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                warnings=list(user.warnings), dropped=[],
            )
    except sqlite3.Error as err:
        msg = f"cannot write {result.result_id!r} into {store_path} ({err}); nothing was changed"
        raise ValueError(msg) from err
    finally:
        conn.close()
    return user


def remove_user_result(store_path: str | Path, result_id: str) -> None:
    """Remove a user-added result from a store (database results are refused)."""
    conn = store.connect(store_path)
    try:
        row = conn.execute("SELECT path FROM results WHERE result_id=?", (result_id,)).fetchone()
        if row is None:
            msg = f"no result {result_id!r} in {store_path}"
            raise ValueError(msg)
        if not str(row[0]).startswith(USER_PATH_PREFIX):
            msg = f"{result_id!r} is a database result, not a user-added one; it stays"
            raise ValueError(msg)
        with store.transaction(conn):
            store.delete_result(conn, result_id)
    finally:
        conn.close()


def _number_out(x: float) -> float | int:
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else float(x)


def _topology_out(topology: Topology) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": topology.name, "constraint": topology.constraint_text}
    if topology.condition_text:
        entry["condition"] = list(topology.condition_text)
    entry["axes"] = [[a.node, a.attribute] for a in topology.axes]
    return entry


def export_result(result: Result) -> str:
    """The YAML text of a result in the user-result format (any result: one of the database's
    or a user-added one). Grid points are written as flat vectors with their ``axes``, so the
    export reads back into the same grids; pyhf workspaces are not exported (the result is
    then combined by its covariance, if it has one, or by its best region)."""
    data: dict[str, Any] = {
        "format": FORMAT, "id": result.result_id, "analysis": result.analysis_id,
        "collaboration": result.collaboration, "sqrts": _number_out(result.sqrts_tev),
        "luminosity": _number_out(result.lumi_ifb),
    }
    for key, value in (("url", result.url), ("arxiv", result.arxiv),
                       ("description", result.pretty_name)):
        if value:
            data[key] = value
    if result.signature != "prompt":
        data["signature"] = result.signature
    topologies: dict[str, dict[str, Any]] = {}
    if result.data_type == "efficiencyMap":
        regions = []
        for ds in result.datasets:
            if ds.region_type != "SR":
                continue
            regions.append({
                "id": ds.data_id or ds.dataset_id, "observed": _number_out(ds.observed_n),
                "background": _number_out(ds.expected_bg),
                "background_error": _number_out(ds.bg_error or 0.0),
                **({"upper_limit": ds.upper_limit_fb} if ds.upper_limit_fb else {}),
                **({"expected_upper_limit": ds.expected_upper_limit_fb}
                   if ds.expected_upper_limit_fb else {}),
            })
            for t in ds.topologies:
                entry = topologies.setdefault(t.name, _topology_out(t))
                grid = t.grids["efficiency"]
                entry.setdefault("efficiencies", {})[ds.data_id or ds.dataset_id] = {
                    "masses": grid.points.tolist(), "values": grid.values.tolist(),
                }
        data["signal_regions"] = regions
        if result.covariance is not None:
            keep = [i for i, ds in enumerate(result.datasets) if ds.region_type == "SR"]
            data["covariance"] = result.covariance[np.ix_(keep, keep)].tolist()
    else:
        for ds in result.datasets:
            for t in ds.topologies:
                entry = topologies.setdefault(t.name, _topology_out(t))
                for kind, key in (("upper_limit", "upper_limits"),
                                  ("expected_upper_limit", "expected_upper_limits")):
                    grid = t.grids.get(kind)
                    if grid is not None:
                        entry[key] = {"masses": grid.points.tolist(),
                                      "values": grid.values.tolist()}
    data["topologies"] = list(topologies.values())
    return yaml.dump(data, Dumper=_SafeDumper, sort_keys=False, default_flow_style=None,
                     width=100)

