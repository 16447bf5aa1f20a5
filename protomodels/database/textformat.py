"""Reading the SModelS text format: ``tag: value`` files and their Python-literal values.

A value line continues on the next line when it ends in ``,`` or ``\\`` or when the next line
starts with a space, a tab or ``}`` (SModelS ``concatenateLines``). Values are Python literals
with the units ``GeV, TeV, MeV, fb, pb, ab`` in scope; they are evaluated here by a small,
safe AST walker (no ``eval``). Units are turned into numbers in the store's base units:
masses and widths in GeV, cross sections in fb, luminosities in fb^-1 (``137/fb`` -> 137).
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protomodels.exceptions import DatabaseFormatError

__all__ = [
    "ALLOWED",
    "UNITS",
    "Field",
    "ValueNotUnderstood",
    "parse_value",
    "parse_value_strictly",
    "read_fields",
]


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


class ValueNotUnderstood(ValueError):
    """A value that is not a number, string, list, tuple, dict or arithmetic on them.

    The message quotes the part of the value that was not understood, as written in the file
    (never Python's internal names), and says what is allowed.

    Attributes:
        snippet: the offending part of the value text.
        offset: 0-based line of the snippet within the value text (0: the field's own line).
    """

    def __init__(self, message: str, snippet: str = "", offset: int = 0) -> None:
        super().__init__(message)
        self.snippet = snippet
        self.offset = offset


#: what the evaluator understands (said in every message about a value it does not)
ALLOWED = (
    "numbers, 'strings', [lists], (tuples), {dicts}, + - * / ** and the units "
    + ", ".join(UNITS)
)

#: exponents larger than this are computed in floating point (no giant integers)
_MAX_INT_EXPONENT = 64


def _segment(source: str, node: ast.AST) -> str:
    text = ast.get_source_segment(source, node) or type(node).__name__
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(source: str, node: ast.AST, why: str) -> ValueNotUnderstood:
    """The error for ``node``; ``source`` is the value with its newlines kept (the parser saw
    them as blanks, so a column of its single line is a character offset into ``source``)."""
    snippet = _segment(source.replace("\n", " "), node)
    column = getattr(node, "col_offset", 0) or 0
    return ValueNotUnderstood(f"{why} {snippet!r}", snippet, source.count("\n", 0, column))


def _eval_node(node: ast.AST, source: str) -> Any:
    if isinstance(node, ast.Expression):
        return _eval_node(node.body, source)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (bytes, complex)) or node.value is Ellipsis:
            raise _fail(source, node, "not a number or string:")
        return node.value
    if isinstance(node, ast.Name):
        if node.id in UNITS:
            return UNITS[node.id]
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise _fail(source, node, "unknown name")
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_eval_node(e, source) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise _fail(source, node, "cannot understand")
        return {
            _eval_node(k, source): _eval_node(v, source)  # type: ignore[arg-type]
            for k, v in zip(node.keys, node.values, strict=True)
        }
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _eval_node(node.left, source), _eval_node(node.right, source)
        if not _is_number(left) or not _is_number(right):
            raise _fail(source, node, "arithmetic on a non-number in")
        if (
            isinstance(node.op, ast.Pow)
            and isinstance(left, int)
            and isinstance(right, int)
            and (abs(right) > _MAX_INT_EXPONENT or abs(left).bit_length() > _MAX_INT_EXPONENT)
        ):
            left = float(left)
        try:
            return _BINOPS[type(node.op)](left, right)
        except ZeroDivisionError:
            raise _fail(source, node, "division by zero in") from None
        except OverflowError:
            raise _fail(source, node, "number too large in") from None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval_node(node.operand, source)
        if not _is_number(value):
            raise _fail(source, node, "sign on a non-number in")
        return -value if isinstance(node.op, ast.USub) else value
    raise _fail(source, node, "cannot understand")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_value_strictly(text: str) -> Any:
    """Evaluate a value, or say why it cannot be (see :func:`parse_value`).

    Raises:
        ValueNotUnderstood: the value is not an expression the evaluator understands; the
            message quotes the offending part as written (e.g. ``unknown name 'nan'``,
            ``cannot understand 'np.nan'``).
    """
    source = text.strip()
    try:
        # lines are joined as SModelS joins them: 'a",\n"b"' is the tuple ("a", "b")
        tree = ast.parse(source.replace("\n", " "), mode="eval")
    except SyntaxError as err:
        column = max(0, (err.offset or 1) - 1)
        row = source.count("\n", 0, column)
        shown = " ".join(source.split("\n")[row].split())
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        why = (err.msg or "syntax error").split(";")[0]
        msg = f"not a valid expression ({why}) in {shown!r}"
        raise ValueNotUnderstood(msg, shown, row) from None
    except (ValueError, RecursionError, MemoryError) as err:
        msg = f"cannot read the value ({err.__class__.__name__})"
        raise ValueNotUnderstood(msg) from None
    try:
        return _eval_node(tree, source)
    except RecursionError:
        msg = "the value is nested too deeply"
        raise ValueNotUnderstood(msg) from None


def parse_value(text: str) -> Any:
    """Evaluate a value as SModelS does, but safely.

    Numbers, strings, lists, tuples, dicts, arithmetic and unit names are understood; a value
    that is not such an expression is returned unchanged as a string (as SModelS keeps it).
    :func:`parse_value_strictly` says why a value was not understood.

    Examples:
        >>> parse_value("137/fb"), parse_value("13*TeV"), parse_value("0.035*pb")
        (137.0, 13000.0, 35.0)
        >>> parse_value("2024/7/2 by hand")
        '2024/7/2 by hand'
    """
    try:
        return parse_value_strictly(text)
    except ValueNotUnderstood:
        return text.strip()
