"""Reading the SModelS text format: ``tag: value`` files and their Python-literal values.

A value line continues on the next line when it ends in ``,`` or ``\\`` or when the next line
starts with a space, a tab or ``}`` (SModelS ``concatenateLines``). Values are Python literals
with the units ``GeV, TeV, MeV, fb, pb, ab`` in scope; they are evaluated here by a small,
safe AST walker (no ``eval``). Units are turned into numbers in the store's base units:
masses and widths in GeV, cross sections in fb, luminosities in fb^-1 (``137/fb`` -> 137).
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protomodels.exceptions import DatabaseFormatError

__all__ = ["UNITS", "Field", "evaluate", "read_fields"]


def __dir__() -> list[str]:
    return __all__


#: unit names allowed in values, as multiples of the base units (GeV, fb)
UNITS: dict[str, float] = {
    "eV": 1e-9,
    "keV": 1e-6,
    "MeV": 1e-3,
    "GeV": 1.0,
    "TeV": 1e3,
    "ab": 1e-3,
    "fb": 1.0,
    "pb": 1e3,
    "nb": 1e6,
    "mm": 1e-3,
    "cm": 1e-2,
    "m": 1.0,
}

_CONSTANTS: dict[str, Any] = {"True": True, "False": False, "None": None}

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


@dataclass(frozen=True)
class Field:
    """One ``tag: value`` entry of a database text file.

    Attributes:
        tag: the name before the first colon.
        text: the raw value text (continuation lines joined with newlines).
        line: 1-based line number where the entry starts.
    """

    tag: str
    text: str
    line: int


# a new entry starts after a newline that does not follow "," or "\\" and is not followed by
# a space, a tab, "}" or another newline (SModelS ``concatenateLines``)
_LINE_START = re.compile(r"\n(?=[^ \t}\n\[])")
_TRAILING_BLANKS = re.compile(r"[ \t]+\n")


def read_fields(path: str | Path, text: str | None = None) -> list[Field]:
    """Split a database text file into its ``tag: value`` fields.

    Args:
        path: the file (used for error messages; read if ``text`` is None).
        text: the file content, if already read.

    Returns:
        The fields in file order (a repeated tag appears twice; the caller decides).

    Raises:
        DatabaseFormatError: a line that is neither a ``tag: value`` nor a continuation.
    """
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            raise DatabaseFormatError(
                path, f"cannot read file ({err.strerror})", hint="check that the file exists"
            ) from err
    text = text.replace("\r\n", "\n")
    if " \n" in text or "\t\n" in text:
        text = _TRAILING_BLANKS.sub("\n", text)
    starts = [0] + [
        m.end()
        for m in _LINE_START.finditer(text)
        if m.start() == 0 or text[m.start() - 1] not in ",\\"
    ]
    fields: list[Field] = []
    line = 1
    previous = 0
    for begin, end in zip(starts, [*starts[1:], len(text)], strict=True):
        line += text.count("\n", previous, begin)
        previous = begin
        chunk = text[begin:end]
        if not chunk.strip() or chunk.lstrip().startswith("#"):
            continue
        tag, colon, value = chunk.partition(":")
        tag = tag.strip()
        if not colon or not tag or not tag.replace("_", "").isalnum():
            raise DatabaseFormatError(
                path,
                f"expected 'tag: value', found {chunk.splitlines()[0][:60]!r}",
                line=line,
                hint="each entry must start with a tag followed by a colon",
            )
        fields.append(Field(tag=tag, text=value.strip(), line=line))
    return fields


def _eval_node(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _eval_node(node.body)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in UNITS:
            return UNITS[node.id]
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        msg = f"unknown name {node.id!r}"
        raise ValueError(msg)
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_eval_node(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        return {_eval_node(k): _eval_node(v) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _eval_node(node.left), _eval_node(node.right)
        if not isinstance(left, (int, float)) or not isinstance(right, (int, float)):
            msg = "arithmetic on a non-number"
            raise ValueError(msg)
        return _BINOPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval_node(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    msg = f"unsupported expression {type(node).__name__}"
    raise ValueError(msg)


def evaluate(text: str) -> Any:
    """Evaluate a value as SModelS does, but safely.

    Numbers, strings, lists, tuples, dicts, arithmetic and unit names are understood; a value
    that is not such an expression is returned unchanged as a string (as SModelS keeps it).

    Examples:
        >>> evaluate("137/fb"), evaluate("13*TeV"), evaluate("0.035*pb")
        (137.0, 13000.0, 35.0)
        >>> evaluate("2024/7/2 by hand")
        '2024/7/2 by hand'
    """
    try:
        tree = ast.parse(text.strip().replace("\n", " "), mode="eval")
        value = _eval_node(tree)
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError, RecursionError):
        return text.strip()
    if isinstance(value, float) and math.isnan(value):
        return value
    return value
