"""Parsing the numeric grids of txname files into arrays.

A grid (``upperLimits``, ``expectedUpperLimits``, ``efficiencyMap``) is a Python-literal list of
``[x, y]`` points. In bracket-notation txnames ``x`` is nested per branch,
``[[m_A, m_B], [m_A', m_B']]``, where an entry may be a tuple ``(mass, width)``; in graph-notation
txnames ``x`` is a flat list of numbers whose meaning ``dataMap`` gives. ``y`` carries a unit for
upper limits (``*fb``, ``*pb``) and none for efficiencies.

The flat coordinate vector of a point follows SModelS (``TxName.setDataMap``): all masses in
(branch, vertex) order, then the widths of the tuple entries in the same order. Masses and widths
are in GeV, upper limits in fb.

The text is turned into JSON (units stripped, tuples to lists) and read with the C JSON parser,
which is what makes the import of the full database fast; Python-literal syntax that JSON does
not accept (``1.``, ``.5``) falls back to :func:`ast.literal_eval`.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from protomodels.database.textformat import UNITS
from protomodels.exceptions import DatabaseFormatError

__all__ = ["Grid", "GridLayout", "parse_grid"]


def __dir__() -> list[str]:
    return __all__


_GRID_UNITS = ("eV", "keV", "MeV", "GeV", "TeV", "ab", "fb", "pb", "nb")
_UNIT_RE = re.compile(r"\*\s*(" + "|".join(sorted(_GRID_UNITS, key=len, reverse=True)) + r")\b")
_NAN_RE = re.compile(r"\b(nan|NaN|NAN)\b")
_INF_RE = re.compile(r"\b(inf|Inf|INF|infinity)\b")


@dataclass(frozen=True)
class GridLayout:
    """Where each flat coordinate of a grid point comes from.

    Attributes:
        branch_lengths: bracket notation: number of mass entries per branch (0 for an
            inclusive ``'*'`` branch); None for a flat (graph-notation) grid.
        width_positions: bracket notation: (branch, vertex) of every ``(mass, width)`` entry, in
            the order their widths are appended to the flat vector.
        n_coordinates: length of the flat vector.
    """

    branch_lengths: tuple[int, ...] | None
    width_positions: tuple[tuple[int, int], ...]
    n_coordinates: int


@dataclass(frozen=True)
class Grid:
    """A parsed grid: ``points`` (N x D, GeV) and ``values`` (N; fb or unitless)."""

    points: np.ndarray
    values: np.ndarray
    layout: GridLayout
    unit: str | None


def _check_brackets(text: str, path: str | Path, field: str, line: int) -> None:
    """Raise on unbalanced or mismatched brackets (``[300, 20)``), naming the line."""
    pairs = {"]": "[", ")": "("}
    stack: list[tuple[str, int]] = []
    for offset, chunk in enumerate(text.split("\n")):
        for ch in chunk:
            if ch in "[(":
                stack.append((ch, offset))
            elif ch in "])":
                if not stack or stack.pop()[0] != pairs[ch]:
                    raise DatabaseFormatError(
                        path, f"grid has an unbalanced or mismatched '{ch}'", field=field,
                        line=line + offset, hint="correct the brackets of the grid",
                    )
    if stack:
        raise DatabaseFormatError(
            path,
            f"grid bracket '{stack[-1][0]}' is never closed",
            field=field,
            line=line + stack[-1][1],
            hint="correct the brackets of the grid",
        )


class _PointError(ValueError):
    """A malformed point of a grid: ``index`` is the 0-based point number."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


_NON_FINITE_NAMES = {
    "nan": float("nan"),
    "NaN": float("nan"),
    "NAN": float("nan"),
    "inf": float("inf"),
    "Inf": float("inf"),
    "INF": float("inf"),
    "infinity": float("inf"),
    "Infinity": float("inf"),
}


def _snippet(text: str, node: ast.AST) -> str:
    shown = " ".join((ast.get_source_segment(text, node) or type(node).__name__).split())
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _literal(node: ast.AST, text: str, path: str | Path, field: str, line: int) -> Any:
    """A grid literal: numbers (nan and inf included, so that they are reported as non-finite
    at their point), quoted strings, lists and tuples; anything else is an error quoting it."""
    if isinstance(node, ast.Constant) and (
        isinstance(node.value, str)
        or (isinstance(node.value, (int, float)) and not isinstance(node.value, bool))
    ):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NON_FINITE_NAMES:
        return _NON_FINITE_NAMES[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e, text, path, field, line) for e in node.elts]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand, text, path, field, line)
        if isinstance(value, (int, float)):
            return -value if isinstance(node.op, ast.USub) else value
    raise DatabaseFormatError(
        path,
        f"grid entry {_snippet(text, node)!r} is not a number",
        field=field,
        line=line + (getattr(node, "lineno", 1) or 1) - 1,
        hint="grid entries are numbers with units (e.g. 300*GeV, 0.2*fb) in [masses, value] points",
    )


def _to_python(text: str, path: str | Path, field: str, line: int) -> Any:
    _check_brackets(text, path, field, line)
    cleaned = text.replace("(", "[").replace(")", "]").replace("'", '"')
    lowered = cleaned.lower()
    if "nan" in lowered or "inf" in lowered:
        cleaned = _INF_RE.sub("Infinity", _NAN_RE.sub("NaN", cleaned))
    try:
        return json.loads(cleaned)
    except json.JSONDecodeError:
        pass
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        offset = (getattr(err, "lineno", None) or 1) - 1
        why = (getattr(err, "msg", None) or err.__class__.__name__).split(";")[0]
        raise DatabaseFormatError(
            path,
            f"grid is not a valid list of [masses, value] points ({why})",
            field=field,
            line=line + offset,
            hint="correct the grid syntax (balanced brackets, numbers with units)",
        ) from None
    return _literal(tree.body, text.strip(), path, field, line)


def _layout_of(x: Any) -> GridLayout:
    if all(isinstance(v, (int, float)) for v in x):
        return GridLayout(None, (), len(x))
    lengths: list[int] = []
    widths: list[tuple[int, int]] = []
    for b, branch in enumerate(x):
        if branch == "*":  # inclusive branch: no coordinates
            lengths.append(0)
            continue
        if not isinstance(branch, list):
            msg = f"branch {b} is {branch!r}, not a list of masses"
            raise ValueError(msg)
        lengths.append(len(branch))
        for v, entry in enumerate(branch):
            if isinstance(entry, list):
                if len(entry) != 2:
                    msg = f"entry {entry!r} is not a (mass, width) pair"
                    raise ValueError(msg)
                widths.append((b, v))
            elif not isinstance(entry, (int, float)):
                msg = f"entry {entry!r} is not a number"
                raise ValueError(msg)
    return GridLayout(tuple(lengths), tuple(widths), sum(lengths) + len(widths))


def _flatten(x: Any, layout: GridLayout) -> list[float]:
    if layout.branch_lengths is None:
        return list(x)
    masses: list[float] = []
    widths: list[float] = []
    for branch in x:
        if branch == "*":
            continue
        for entry in branch:
            if isinstance(entry, list):
                masses.append(entry[0])
                widths.append(entry[1])
            else:
                masses.append(entry)
    return masses + widths


def _points_array(xs: list[Any], layout: GridLayout) -> np.ndarray:
    if not layout.width_positions:
        try:
            arr = np.asarray(xs, dtype=np.float64)
        except (ValueError, TypeError):
            arr = None
        if arr is not None and arr.size == len(xs) * layout.n_coordinates:
            return arr.reshape(len(xs), layout.n_coordinates)
    first = layout
    rows = []
    for i, x in enumerate(xs):
        try:
            same = _layout_of(x) == first
        except (ValueError, TypeError) as err:
            raise _PointError(i, f"point {i}: {err}") from None
        if not same:
            msg = f"point {i} has a different shape from the first point"
            raise _PointError(i, msg)
        rows.append(_flatten(x, layout))
    return np.asarray(rows, dtype=np.float64).reshape(len(xs), layout.n_coordinates)


_BRACKETS = b"[](),"
_NOT_BRACKETS = bytes(c for c in range(256) if c not in _BRACKETS)
_SEPARATORS = str.maketrans({c: " " for c in "[](),"})


def _written_order(layout: GridLayout) -> np.ndarray:
    """Flat-vector index of each number of a point as it is written (masses, widths)."""
    if layout.branch_lengths is None:
        return np.arange(layout.n_coordinates)
    n_masses = sum(layout.branch_lengths)
    order = []
    mass = 0
    width = n_masses
    tuples = set(layout.width_positions)
    for b, length in enumerate(layout.branch_lengths):
        for v in range(length):
            order.append(mass)
            mass += 1
            if (b, v) in tuples:
                order.append(width)
                width += 1
    return np.asarray(order)


def _fast_arrays(text: str) -> tuple[np.ndarray, np.ndarray, GridLayout] | None:
    """Points and values of a uniform grid without building Python lists, or None.

    Every point must have the same bracket structure as the first one (checked on the string of
    brackets); the numbers are then read in one go by NumPy.
    """
    raw = text.encode("ascii", "ignore")
    signature = raw.translate(None, _NOT_BRACKETS).rstrip(b",")
    if len(signature) < 4 or signature[:1] != b"[" or signature[-1:] != b"]":
        return None
    stack: list[int] = []
    end = -1
    for i in range(1, len(signature)):
        c = signature[i]
        if c in b"[(":
            stack.append(c)
        elif c in b"])":
            if not stack or stack.pop() != (ord("[") if c == ord("]") else ord("(")):
                return None
            if not stack:
                end = i
                break
    if end < 0:
        return None
    point = signature[1 : end + 1]
    n_points, remainder = divmod(len(signature) - 1, len(point) + 1)
    if remainder or signature != b"[" + b",".join([point] * n_points) + b"]":
        return None
    # the first point's text, to learn its layout
    start = text.index("[", text.index("[") + 1)
    depth = 0
    for j in range(start, len(text)):
        ch = text[j]
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
            if depth == 0:
                break
    try:
        first = json.loads(
            text[start : j + 1].replace("(", "[").replace(")", "]").replace("'", '"')
        )
        layout = _layout_of(first[0])
    except (json.JSONDecodeError, ValueError, TypeError, IndexError):
        return None
    try:
        with np.errstate(all="ignore"):
            numbers = np.fromstring(text.translate(_SEPARATORS), sep=" ")  # noqa: NPY201
    except ValueError:
        return None
    width = layout.n_coordinates + 1
    if numbers.size != n_points * width:
        return None
    table = numbers.reshape(n_points, width)
    points = np.empty((n_points, layout.n_coordinates))
    points[:, _written_order(layout)] = table[:, :-1]
    return points, np.ascontiguousarray(table[:, -1]), layout


def parse_grid(text: str, *, path: str | Path, field: str, line: int) -> Grid:
    """Parse one grid value into arrays.

    Args:
        text: the value text of the grid field.
        path, field, line: where it comes from (for error messages).

    Returns:
        The grid, with points in GeV and upper limits in fb.

    Raises:
        DatabaseFormatError: syntax errors, inconsistent point shapes, mixed units, NaN or
            infinite numbers, negative values.
    """
    original = text
    if "* " in text:
        units = set(_UNIT_RE.findall(text))
        text = _UNIT_RE.sub("", text)
    else:
        units = {u for u in _GRID_UNITS if "*" + u in text}
        for unit in sorted(units, key=len, reverse=True):
            text = text.replace("*" + unit, "")
    value_units = sorted(u for u in units if u in _VALUE_UNITS)
    mass_units = sorted(u for u in units if u.endswith("eV"))
    if (
        len(value_units) > 1
        or len(mass_units) > 1
        or (value_units and field == "efficiencyMap")
        or (mass_units and _VALUE_IN_ENERGY_RE.search(original))
        or (value_units and _MASS_IN_CROSS_SECTION_RE.search(original))
    ):
        # several units of one kind (one point in pb in a grid of fb): SModelS converts each
        # number with its own unit; so does this (slower) path, which also names a unit of the
        # wrong kind (a mass unit where a value should be, ...)
        return parse_grid(_per_number_units(original, path, field, line), path=path,
                          field=field, line=line)
    fast = _fast_arrays(text) if "'" not in text and '"' not in text else None
    if fast is not None:
        points, values, layout = fast
        return _checked(
            points, values, layout, mass_units, value_units, path, field, line, text
        )
    data = _to_python(text, path, field, line)
    if not isinstance(data, list) or not data:
        raise DatabaseFormatError(
            path,
            "grid is empty or not a list",
            field=field,
            line=line,
            hint="a grid is a list of [masses, value] points",
        )
    try:
        for i, p in enumerate(data):
            if not (isinstance(p, list) and len(p) == 2):
                raise _PointError(i, f"point {i} is not a [masses, value] pair")
            if not _is_number(p[1]):
                raise _PointError(i, f"point {i} has the value {_shown(p[1])}, not a number")
        xs = [p[0] for p in data]
        try:
            layout = _layout_of(xs[0])
        except (ValueError, TypeError) as err:
            raise _PointError(0, f"point 0: {err}") from None
        points = _points_array(xs, layout)
        values = np.asarray([p[1] for p in data], dtype=np.float64)
    except _PointError as err:
        raise DatabaseFormatError(
            path,
            f"malformed grid: {err}",
            field=field,
            line=_point_line(text, line, err.index),
            hint="every point must have the same [masses, value] structure",
        ) from None
    except (ValueError, TypeError) as err:
        raise DatabaseFormatError(
            path,
            f"malformed grid: {err}",
            field=field,
            line=line,
            hint="every point must have the same [masses, value] structure",
        ) from None
    return _checked(points, values, layout, mass_units, value_units, path, field, line, text)


_VALUE_UNITS = ("ab", "fb", "pb", "nb")
_ENERGY_UNITS = tuple(u for u in _GRID_UNITS if u.endswith("eV"))
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _any(units: tuple[str, ...]) -> str:
    return "(" + "|".join(sorted(units, key=len, reverse=True)) + ")"


_NUMBER_UNIT_RE = re.compile("(" + _NUM + r")\s*\*\s*" + _any(_GRID_UNITS) + r"\b")
#: a point's value (after "],") in an energy unit
_VALUE_IN_ENERGY_RE = re.compile(r"\]\s*,\s*" + _NUM + r"\s*\*\s*" + _any(_ENERGY_UNITS)
                                 + r"\b")
#: a coordinate (after "[", "(" or a comma that does not follow "]") in a cross-section unit
_MASS_IN_CROSS_SECTION_RE = re.compile(
    r"(?:[\[(]|[^\]\s]\s*,)\s*" + _NUM + r"\s*\*\s*" + _any(_VALUE_UNITS) + r"\b"
)


def _last_top_level_comma(text: str, start: int, end: int) -> int:
    """Offset of the last comma at the top level of the point spanning ``[start, end]``."""
    depth = 0
    comma = end
    for i in range(start + 1, end):
        ch = text[i]
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            comma = i
    return comma


def _per_number_units(text: str, path: str | Path, field: str, line: int) -> str:
    """The grid text with every ``number*unit`` replaced by the number in GeV or fb, after
    checking that each unit is of the kind its place needs: masses and widths in an energy
    unit, a point's value in a cross-section unit (none for efficiencies)."""
    spans = _point_spans(text)
    out: list[str] = []
    done = 0
    for index, (start, end) in enumerate(spans):
        matches = list(_NUMBER_UNIT_RE.finditer(text, start, end + 1))
        # the value is the number after the point's last top-level comma
        value_start = _last_top_level_comma(text, start, end)
        for m in matches:
            number, unit = m.group(1), m.group(2)
            is_value = m.start() >= value_start
            is_cross_section = unit in _VALUE_UNITS
            wrong = None
            if is_value and not is_cross_section:
                wrong = (f"has the value {m.group(0)}: an energy unit where a cross section "
                         "(or an efficiency) should be",
                         "write the value in fb or pb (efficiencies without a unit)")
            elif not is_value and is_cross_section:
                wrong = (f"has the coordinate {m.group(0)}: a cross-section unit where a mass "
                         "or a width should be", "write masses and widths in GeV (or TeV, MeV)")
            elif is_value and field == "efficiencyMap":
                wrong = (f"has the efficiency {m.group(0)} with a unit",
                         "efficiencies are plain numbers")
            if wrong is not None:
                raise DatabaseFormatError(
                    path, f"grid point {index} {wrong[0]}", field=field,
                    line=line + text.count("\n", 0, m.start()), hint=wrong[1])
            out.append(text[done:m.start()])
            out.append(repr(float(number) * UNITS[unit]))
            done = m.end()
    out.append(text[done:])
    return "".join(out)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    """A value for a message, as a file would write it (no Python or NumPy type names)."""
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if _is_number(value) or isinstance(value, np.floating):
        return f"{float(value):g}"
    return repr(value) if isinstance(value, str) else str(value)


def _point_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of the brackets of every point of a grid text."""
    spans: list[tuple[int, int]] = []
    depth = 0
    start = 0
    for i, ch in enumerate(text):
        if ch in "[(":
            depth += 1
            if depth == 2:
                start = i
        elif ch in "])":
            if depth == 2:
                spans.append((start, i))
            depth -= 1
    return spans


_TOKEN_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?[A-Za-z_][\w.]*")


def _locate(text: str, index: int, written: int | None) -> tuple[int, str | None]:
    """Offset and text of a number of point ``index``: its value (``written`` None) or its
    ``written``-th mass/width number; (offset of the point, None) if it cannot be found."""
    spans = _point_spans(text)
    if index >= len(spans):
        return 0, None
    start, end = spans[index]
    comma = _last_top_level_comma(text, start, end)
    if comma >= end:
        return start, None
    if written is None:
        m = _TOKEN_RE.search(text, comma + 1, end)
    else:
        tokens = list(_TOKEN_RE.finditer(text, start + 1, comma))
        m = tokens[written] if written < len(tokens) else None
    return (m.start(), m.group()) if m is not None else (start, None)


def _point_line(text: str, line: int, index: int) -> int:
    spans = _point_spans(text)
    if index >= len(spans):
        return line
    return line + text.count("\n", 0, spans[index][0])


def _bad_number(
    text: str,
    line: int,
    index: int,
    written: int | None,
    value: float,
    path: str | Path,
    field: str,
    problem: str,
    hint: str,
) -> DatabaseFormatError:
    """The error for one number of point ``index``, on the line holding it."""
    offset, shown = _locate(text, index, written)
    return DatabaseFormatError(
        path,
        problem.format(index=index, value=shown if shown is not None else f"{value:g}"),
        field=field,
        line=line + text.count("\n", 0, offset),
        hint=hint,
    )


def _checked(
    points: np.ndarray,
    values: np.ndarray,
    layout: GridLayout,
    mass_units: list[str],
    value_units: list[str],
    path: str | Path,
    field: str,
    line: int,
    text: str,
) -> Grid:
    mass_scale = UNITS[mass_units[0]] if mass_units else 1.0
    value_scale = UNITS[value_units[0]] if value_units else 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        if mass_scale != 1.0:
            points = points * mass_scale
        if value_scale != 1.0:
            values = values * value_scale
    order = _written_order(layout)
    bad = ~np.isfinite(points)
    if bad.any():
        index, j = (int(k) for k in np.argwhere(bad)[0])
        kind = "width" if j >= layout.n_coordinates - len(layout.width_positions) else "mass"
        raise _bad_number(
            text, line, index, int(np.flatnonzero(order == j)[0]), float(points[index, j]),
            path, field, f"grid point {{index}} has a non-finite {kind} ({{value}})",
            "replace NaN/inf entries by numbers or remove the point",
        )
    bad = ~np.isfinite(values)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise _bad_number(
            text, line, index, None, float(values[index]), path, field,
            "grid point {index} has a non-finite value ({value})",
            "replace NaN/inf entries by numbers or remove the point",
        )
    if layout.width_positions:
        n_masses = layout.n_coordinates - len(layout.width_positions)
        widths = points[:, n_masses:]
        if (widths < 0).any():
            index, j = (int(k) for k in np.argwhere(widths < 0)[0])
            raise _bad_number(
                text, line, index, int(np.flatnonzero(order == n_masses + j)[0]),
                float(widths[index, j]), path, field,
                "grid point {index} has a negative width {value}",
                "widths are >= 0 (GeV)",
            )
    if (values < 0).any():
        index = int(np.argmax(values < 0))
        raise _bad_number(
            text, line, index, None, float(values[index]), path, field,
            "grid point {index} has a negative value {value}",
            "upper limits and efficiencies must be >= 0",
        )
    if field == "efficiencyMap" and (values > 1).any():
        index = int(np.argmax(values > 1))
        raise _bad_number(
            text, line, index, None, float(values[index]), path, field,
            "grid point {index} has an efficiency {value} > 1",
            "efficiencies are fractions of events, between 0 and 1",
        )
    return Grid(
        points=points, values=values, layout=layout, unit=value_units[0] if value_units else None
    )
