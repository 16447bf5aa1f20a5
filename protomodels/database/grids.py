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
        return ast.literal_eval(text)
    except (SyntaxError, ValueError) as err:
        offset = (getattr(err, "lineno", None) or 1) - 1
        raise DatabaseFormatError(
            path,
            f"grid is not a valid list of [masses, value] points ({err.__class__.__name__}: "
            f"{getattr(err, 'msg', err)})",
            field=field,
            line=line + offset,
            hint="correct the grid syntax (balanced brackets, numbers with units)",
        ) from err


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
        if _layout_of(x) != first:
            msg = f"point {i} has a different shape from the first point"
            raise ValueError(msg)
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
    if "* " in text:
        units = set(_UNIT_RE.findall(text))
        text = _UNIT_RE.sub("", text)
    else:
        units = {u for u in _GRID_UNITS if "*" + u in text}
        for unit in sorted(units, key=len, reverse=True):
            text = text.replace("*" + unit, "")
    value_units = sorted(u for u in units if u in ("ab", "fb", "pb", "nb"))
    mass_units = sorted(u for u in units if u.endswith("eV"))
    if len(value_units) > 1 or len(mass_units) > 1:
        raise DatabaseFormatError(
            path,
            f"grid mixes units {value_units + mass_units}",
            field=field,
            line=line,
            hint="use one unit for all masses and one for all values",
        )
    fast = _fast_arrays(text) if "'" not in text and '"' not in text else None
    if fast is not None:
        points, values, layout = fast
        return _checked(points, values, layout, mass_units, value_units, path, field, line)
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
        if not all(isinstance(p, list) and len(p) == 2 for p in data):
            bad = next(i for i, p in enumerate(data) if not (isinstance(p, list) and len(p) == 2))
            msg = f"point {bad} is not a [masses, value] pair"
            raise ValueError(msg)
        xs = [p[0] for p in data]
        layout = _layout_of(xs[0])
        points = _points_array(xs, layout)
        values = np.asarray([p[1] for p in data], dtype=np.float64)
    except (ValueError, TypeError) as err:
        raise DatabaseFormatError(
            path,
            f"malformed grid: {err}",
            field=field,
            line=line,
            hint="every point must have the same [masses, value] structure",
        ) from err
    return _checked(points, values, layout, mass_units, value_units, path, field, line)


def _checked(
    points: np.ndarray,
    values: np.ndarray,
    layout: GridLayout,
    mass_units: list[str],
    value_units: list[str],
    path: str | Path,
    field: str,
    line: int,
) -> Grid:
    mass_scale = UNITS[mass_units[0]] if mass_units else 1.0
    value_scale = UNITS[value_units[0]] if value_units else 1.0
    if mass_scale != 1.0:
        points = points * mass_scale
    if value_scale != 1.0:
        values = values * value_scale
    for name, arr in (("mass", points), ("value", values)):
        bad = ~np.isfinite(arr)
        if bad.any():
            index = int(np.argwhere(bad)[0][0])
            raise DatabaseFormatError(
                path,
                f"grid point {index} has a non-finite {name} "
                f"({arr.reshape(len(values), -1)[index]})",
                field=field,
                line=line,
                hint="replace NaN/inf entries by numbers or remove the point",
            )
    if (values < 0).any():
        index = int(np.argmax(values < 0))
        raise DatabaseFormatError(
            path,
            f"grid point {index} has a negative value {values[index]}",
            field=field,
            line=line,
            hint="upper limits and efficiencies must be >= 0",
        )
    return Grid(
        points=points, values=values, layout=layout, unit=value_units[0] if value_units else None
    )
