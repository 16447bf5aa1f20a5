"""Parse the ``constraint`` and ``condition`` strings of SModelS txnames.

A txname describes its topology by a ``constraint``: a linear combination of simplified-model
topologies (SMS), each written either in the old *bracket* notation (``[[['jet']],[['jet']]]``)
or in the new *graph* notation (``{(PV > anyBSM(1),anyBSM(2)), (anyBSM(1) > jet,MET(3)), ...}``).
An optional ``condition`` is a ``;``-separated list of ``Cgtr(X, Y)`` / ``Csim(X1, X2, ...)``
calls whose arguments are again linear combinations of SMS.

:func:`parse_constraint` turns both strings into one canonical, JSON-serialisable
:class:`Constraint`: a list of unique :class:`SMS` graphs (nodes numbered as SModelS numbers
them, so that ``dataMap`` node numbers refer to them), a :class:`LinearExpression` for the
constraint and one :class:`Condition` per condition call.

Example:
    >>> c = parse_constraint("2.23*([[['jet']],[['jet']]])")
    >>> c.expression.terms
    ((0, 2.23),)
    >>> c.sms[0].decays
    ((0, (1, 2)), (1, (3, 4)), (2, (5, 6)))
    >>> c.sms[0].branches
    ((1, 3), (2, 5))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DATABASE_LABELS",
    "SM_LABELS",
    "BSM_LABELS",
    "Condition",
    "Constraint",
    "ConstraintError",
    "LinearExpression",
    "Node",
    "SMS",
    "parse_constraint",
]


def __dir__() -> list[str]:
    return __all__


#: SM labels defined in the database's ``databaseParticles.py`` (plus the root ``PV``).
SM_LABELS: frozenset[str] = frozenset(
    {
        "e-", "mu-", "ta-", "e+", "mu+", "ta+", "e", "mu", "ta",
        "l-", "l+", "l", "L-", "L+", "L",
        "nu", "nue", "numu", "nuta",
        "q", "u", "d", "s", "c", "b", "t+", "t-", "t",
        "g", "photon", "Z", "W+", "W-", "W", "higgs",
        "pi+", "pi-", "pi0", "pion", "jet", "jetb", "anySM", "PV",
    }
)  # fmt: skip

#: BSM labels of ``databaseParticles.py``, plus the wildcards ``Inclusive``/``InclusiveNode``.
BSM_LABELS: frozenset[str] = frozenset(
    {
        "MET", "HSCP", "HSCP+", "HSCP-",
        "RHadronG", "RHadronU", "RHadronU+", "RHadronU-",
        "RHadronD", "RHadronD+", "RHadronD-", "RHadronQ",
        "anyBSM", "gluino", "C1+", "C1-", "C1", "H+", "H-", "Hpm",
        "Zprime", "Vprime", "H0", "Inclusive", "InclusiveNode",
    }
)  # fmt: skip

#: Every particle label a database constraint may use (pass as ``known_labels``).
DATABASE_LABELS: frozenset[str] = SM_LABELS | BSM_LABELS

_LABEL_RE = re.compile(r"[A-Za-z0-9_+\-~]+")
_NUMBER_RE = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_BRACKET_TOKEN_RE = re.compile(r"\[|\]|[^\[\],'\"\s]+")
_GRAPH_NODE_RE = re.compile(r"(\*?)([^\s()*,>]+)\s*(?:\(\s*(\d+)\s*\))?")
_CALL_RE = re.compile(r"\s*([A-Za-z_]\w*)\s*\(")
_FUNCTIONS = {"cgtr": "greater", "csim": "similar"}
_OPEN = {"[": "]", "{": "}", "(": ")"}
_CLOSE = {v: k for k, v in _OPEN.items()}


class ConstraintError(ValueError):
    """A constraint or condition string cannot be parsed.

    Attributes:
        field: ``"constraint"`` or ``"condition"``.
        text: the offending snippet.
        message: what is wrong and what to do about it.
    """

    def __init__(self, field: str, text: str, message: str) -> None:
        self.field = field
        self.text = text
        self.message = message
        snippet = text if len(text) <= 120 else text[:117] + "..."
        super().__init__(f"{field} {snippet!r}: {message}")


@dataclass(frozen=True)
class Node:
    """One node of an SMS graph.

    Attributes:
        number: node number (PV is 0); ``dataMap`` entries refer to these numbers.
        label: database label, e.g. ``'PV'``, ``'jet'``, ``'MET'``, ``'anyBSM'``.
        inclusive: True for an inclusive list such as ``*anySM`` (any number of matching siblings).
    """

    number: int
    label: str
    inclusive: bool = False

    @property
    def name(self) -> str:
        """The label as written in graph notation (``*`` prefix for inclusive lists)."""
        return ("*" if self.inclusive else "") + self.label


@dataclass(frozen=True)
class SMS:
    """One simplified-model topology: a rooted tree of particle labels.

    Attributes:
        nodes: all nodes, sorted by number; ``nodes[0]`` is the root ``PV`` (number 0).
        decays: ``(mother, daughters)`` node numbers, in written order.
        branches: for bracket notation only, the BSM node numbers of each branch in order
            (T2: ``((1, 3), (2, 5))``); None for graph notation.
    """

    nodes: tuple[Node, ...]
    decays: tuple[tuple[int, tuple[int, ...]], ...]
    branches: tuple[tuple[int, ...], ...] | None = None

    def node(self, number: int) -> Node:
        """Return the node with the given number.

        Raises:
            KeyError: if there is no such node.
        """
        for nd in self.nodes:
            if nd.number == number:
                return nd
        raise KeyError(number)

    def key(self) -> str:
        """Canonical string of the graph.

        Two SMS that differ only by node numbering and by the order of daughters in a decay
        (hence also by the order of branches) have the same key.
        """
        names = {nd.number: nd.name for nd in self.nodes}
        children = dict(self.decays)

        def canon(number: int) -> str:
            daughters = children.get(number)
            if not daughters:
                return names[number]
            return names[number] + "(" + ",".join(sorted(canon(d) for d in daughters)) + ")"

        return canon(0)

    def to_string(self) -> str:
        """The SMS in graph notation with every node numbered, e.g. ``{(PV > MET(1),MET(2))}``."""
        names = {nd.number: nd.name for nd in self.nodes}

        def fmt(n: int) -> str:
            return "PV" if n == 0 else f"{names[n]}({n})"

        parts = [f"({fmt(m)} > {','.join(fmt(d) for d in ds)})" for m, ds in self.decays]
        return "{" + ", ".join(parts) + "}"

    def to_json(self) -> dict[str, Any]:
        """Plain-data form (dict, lists, str, int, bool), inverse of :meth:`from_json`."""
        return {
            "nodes": [[nd.number, nd.label, nd.inclusive] for nd in self.nodes],
            "decays": [[m, list(ds)] for m, ds in self.decays],
            "branches": None if self.branches is None else [list(b) for b in self.branches],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SMS:
        """Rebuild an SMS from :meth:`to_json` output."""
        branches = d.get("branches")
        if branches is not None:
            branches = tuple(tuple(int(x) for x in b) for b in branches)
        return cls(
            nodes=tuple(Node(int(n), str(lab), bool(inc)) for n, lab, inc in d["nodes"]),
            decays=tuple((int(m), tuple(int(x) for x in ds)) for m, ds in d["decays"]),
            branches=branches,
        )


@dataclass(frozen=True)
class LinearExpression:
    """A linear combination of SMS.

    Attributes:
        terms: ``(index into Constraint.sms, coefficient)`` pairs, sorted by index.
    """

    terms: tuple[tuple[int, float], ...]

    def to_json(self) -> list[list[int | float]]:
        """Plain-data form: ``[[index, coefficient], ...]``."""
        return [[i, c] for i, c in self.terms]

    @classmethod
    def from_json(cls, d: Sequence[Sequence[int | float]]) -> LinearExpression:
        """Rebuild from :meth:`to_json` output."""
        return cls(tuple((int(i), float(c)) for i, c in d))


@dataclass(frozen=True)
class Condition:
    """One condition call.

    Attributes:
        kind: ``'greater'`` (``Cgtr(X, Y)``: X should exceed Y) or ``'similar'``
            (``Csim(X1, X2, ...)``: all arguments should be similar).
        args: the arguments, each a linear combination of SMS.
    """

    kind: str
    args: tuple[LinearExpression, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain-data form, inverse of :meth:`from_json`."""
        return {"kind": self.kind, "args": [a.to_json() for a in self.args]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Condition:
        """Rebuild from :meth:`to_json` output."""
        return cls(str(d["kind"]), tuple(LinearExpression.from_json(a) for a in d["args"]))


@dataclass(frozen=True)
class Constraint:
    """A parsed txname constraint together with its conditions.

    Attributes:
        sms: the unique SMS, those of the constraint first (in order of appearance), then the
            ones appearing only in conditions.
        expression: the constraint as a linear combination of ``sms``.
        conditions: the conditions, in written order.
    """

    sms: tuple[SMS, ...]
    expression: LinearExpression
    conditions: tuple[Condition, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain-data form (json.dumps-able), inverse of :meth:`from_json`."""
        return {
            "sms": [s.to_json() for s in self.sms],
            "expression": self.expression.to_json(),
            "conditions": [c.to_json() for c in self.conditions],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Constraint:
        """Rebuild from :meth:`to_json` output."""
        return cls(
            sms=tuple(SMS.from_json(s) for s in d["sms"]),
            expression=LinearExpression.from_json(d["expression"]),
            conditions=tuple(Condition.from_json(c) for c in d.get("conditions", ())),
        )

    def labels(self) -> frozenset[str]:
        """All node labels used by the SMS (without the ``*`` of inclusive lists)."""
        return frozenset(nd.label for s in self.sms for nd in s.nodes)


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _check_balanced(text: str, field: str) -> None:
    """Raise ConstraintError unless (), [] and {} are balanced and properly nested."""
    stack: list[tuple[str, int]] = []
    for pos, ch in enumerate(text):
        if ch in _OPEN:
            stack.append((ch, pos))
        elif ch in _CLOSE:
            if not stack:
                msg = (
                    f"unbalanced brackets: '{ch}' at position {pos} has no opening "
                    f"'{_CLOSE[ch]}'; check the brackets of the {field}"
                )
                raise ConstraintError(field, text, msg)
            opening, where = stack.pop()
            if _OPEN[opening] != ch:
                msg = (
                    f"unbalanced brackets: '{opening}' at position {where} is closed by '{ch}' "
                    f"at position {pos}; check the brackets of the {field}"
                )
                raise ConstraintError(field, text, msg)
    if stack:
        opening, where = stack[-1]
        msg = (
            f"unbalanced brackets: '{opening}' at position {where} is never closed; "
            f"add the missing '{_OPEN[opening]}'"
        )
        raise ConstraintError(field, text, msg)


def _matching(text: str, start: int) -> int:
    """Index of the bracket closing the one at ``text[start]`` (text must be balanced)."""
    depth = 0
    for pos in range(start, len(text)):
        if text[pos] in _OPEN:
            depth += 1
        elif text[pos] in _CLOSE:
            depth -= 1
            if depth == 0:
                return pos
    raise AssertionError("unbalanced text")  # pragma: no cover - checked beforehand


def _split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` characters that are outside any bracket."""
    parts, depth, start = [], 0, 0
    for pos, ch in enumerate(text):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:pos])
            start = pos + 1
    parts.append(text[start:])
    return parts


def _bsm_label(value: object, what: str, field: str) -> str:
    """Validate a final/intermediate state label (None means the default)."""
    if not isinstance(value, str) or not _LABEL_RE.fullmatch(value):
        msg = f"{what} must be a particle label such as 'MET', got {value!r}"
        raise ConstraintError(field, str(value), msg)
    return value


class _SMSBuilder:
    """Collects nodes and decays of one SMS and validates the result."""

    def __init__(self, field: str, text: str) -> None:
        self.field = field
        self.text = text
        self.nodes: dict[int, Node] = {0: Node(0, "PV")}
        self.decays: list[tuple[int, tuple[int, ...]]] = []

    def fail(self, message: str) -> ConstraintError:
        return ConstraintError(self.field, self.text, message)

    def add_node(self, number: int, name: str) -> None:
        inclusive = name.startswith("*")
        label = name[1:] if inclusive else name
        if not _LABEL_RE.fullmatch(label):
            msg = f"invalid particle label {name!r}; labels are names like 'jet', 'e+' or '*anySM'"
            raise self.fail(msg)
        if label == "PV" and number != 0:
            raise self.fail("'PV' is the root of the graph and cannot appear as a daughter")
        node = Node(number, label, inclusive)
        old = self.nodes.get(number)
        if old is not None and old != node:
            msg = (
                f"node {number} is labelled both {old.name!r} and {node.name!r}; "
                "give every node a single label"
            )
            raise self.fail(msg)
        self.nodes[number] = node

    def build(
        self, branches: tuple[tuple[int, ...], ...] | None, known: frozenset[str] | None
    ) -> SMS:
        children: dict[int, tuple[int, ...]] = {}
        parent: dict[int, int] = {}
        for mom, daughters in self.decays:
            if mom in children:
                raise self.fail(f"node {mom} decays twice; write all its daughters in one decay")
            if self.nodes[mom].inclusive:
                raise self.fail(f"the inclusive list {self.nodes[mom].name!r} cannot decay")
            children[mom] = daughters
            for d in daughters:
                if d in parent:
                    msg = f"node {d} is a daughter of both node {parent[d]} and node {mom}"
                    raise self.fail(msg)
                parent[d] = mom
        if 0 not in children:
            raise self.fail("the graph has no decay of PV; start with '(PV > ...)'")
        reached, todo = {0}, [0]
        while todo:
            for d in children.get(todo.pop(), ()):
                if d not in reached:
                    reached.add(d)
                    todo.append(d)
        missing = sorted(set(self.nodes) - reached)
        if missing:
            msg = f"node(s) {missing} are not connected to PV; check the mother of each decay"
            raise self.fail(msg)
        if known is not None:
            for nd in self.nodes.values():
                if nd.label not in known and nd.number != 0:
                    msg = (
                        f"unknown particle label {nd.label!r} in the {self.field}; check the "
                        "spelling against databaseParticles.py"
                    )
                    raise ConstraintError(self.field, self.text, msg)
        return SMS(
            nodes=tuple(self.nodes[n] for n in sorted(self.nodes)),
            decays=tuple(self.decays),
            branches=branches,
        )


def _nested_list(text: str) -> list[Any]:
    """Turn a balanced bracket literal into nested lists of label strings (lenient quotes)."""
    stack: list[list[Any]] = [[]]
    for tok in _BRACKET_TOKEN_RE.findall(text):
        if tok == "[":
            stack.append([])
        elif tok == "]":
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    return stack[0]


class _Context:
    """Shared state while parsing one constraint and its conditions."""

    def __init__(
        self,
        final_state: Sequence[str | None] | None,
        intermediate_state: Sequence[Sequence[str] | None] | None,
        known_labels: frozenset[str] | None,
    ) -> None:
        self.final_state = final_state
        self.intermediate_state = intermediate_state
        self.known = known_labels
        self.sms: list[SMS] = []
        self.index: dict[str, int] = {}

    def add(self, sms: SMS) -> int:
        key = sms.key()
        if key not in self.index:
            self.index[key] = len(self.sms)
            self.sms.append(sms)
        return self.index[key]

    # -- bracket notation ---------------------------------------------------------------------

    def bracket_sms(self, literal: str, field: str) -> SMS:
        tree = _nested_list(literal)
        builder = _SMSBuilder(field, literal)
        if len(tree) != 1 or not isinstance(tree[0], list):
            raise builder.fail("expected one bracket SMS such as [[['jet']],[['jet']]]")
        branches = tree[0]
        if len(branches) != 2 or not all(isinstance(b, list) for b in branches):
            msg = (
                f"a bracket SMS needs exactly 2 branches, found {len(branches)}; write it as "
                "[branch1, branch2], e.g. [[['jet']],[['jet']]] (use [] for a branch without decay)"
            )
            raise builder.fail(msg)
        final = self._final_states(field)
        # validate the shape first, so that numbering sees only good input
        for ibr, br in enumerate(branches):
            if br == ["*"]:
                continue
            for vertex in br:
                if not isinstance(vertex, list):
                    msg = (
                        f"branch {ibr}: {vertex!r} is not a vertex; a branch is a list of vertices "
                        "like [['jet'],['W']] (write ['*'] for an inclusive branch)"
                    )
                    raise builder.fail(msg)
                if not vertex:
                    msg = f"branch {ibr} has an empty vertex []; every vertex emits SM particles"
                    raise builder.fail(msg)
                if any(isinstance(p, list) for p in vertex):
                    msg = f"branch {ibr}: vertex {vertex!r} is nested too deeply"
                    raise builder.fail(msg)
        bsm = [self._bsm_states(ibr, br, final[ibr], builder) for ibr, br in enumerate(branches)]
        builder.add_node(1, bsm[0][0])
        builder.add_node(2, bsm[1][0])
        builder.decays.append((0, (1, 2)))
        counter = 3
        branch_nodes: list[tuple[int, ...]] = []
        for ibr, br in enumerate(branches):
            mom = ibr + 1
            numbers = [mom]
            vertices = [["*anySM"]] if br == ["*"] else br
            for ivx, vertex in enumerate(vertices):
                daughter = counter
                builder.add_node(daughter, bsm[ibr][ivx + 1])
                sm = sorted("anySM" if p == "*" else p for p in vertex)
                sm_numbers = tuple(range(counter + 1, counter + 1 + len(sm)))
                for number, name in zip(sm_numbers, sm, strict=True):
                    builder.add_node(number, name)
                builder.decays.append((mom, (daughter, *sm_numbers)))
                counter += 1 + len(sm)
                numbers.append(daughter)
                mom = daughter
            branch_nodes.append(tuple(numbers))
        return builder.build(tuple(branch_nodes), self.known)

    def _final_states(self, field: str) -> list[str]:
        fs = self.final_state
        if fs is None:
            return ["MET", "MET"]
        if isinstance(fs, str) or len(fs) != 2:
            msg = f"final_state must list one label per branch, e.g. ['MET','MET'], got {fs!r}"
            raise ConstraintError(field, str(fs), msg)
        return ["MET" if f is None else _bsm_label(f, "final_state", field) for f in fs]

    def _bsm_states(
        self, ibr: int, branch: list[Any], final: str, builder: _SMSBuilder
    ) -> list[str]:
        """BSM labels of one branch: its decaying states, then its final state."""
        if branch == ["*"]:
            return ["InclusiveNode", final]
        inter = self.intermediate_state
        if inter is not None and (isinstance(inter, str) or len(inter) != 2):
            msg = (
                "intermediate_state must list one list of labels per branch, e.g. "
                f"[['gluino'],['gluino']], got {inter!r}"
            )
            raise builder.fail(msg)
        labels = None if inter is None else inter[ibr]
        if labels is None:
            return ["anyBSM"] * len(branch) + [final]
        if isinstance(labels, str) or len(labels) != len(branch):
            msg = (
                f"intermediate_state[{ibr}] = {labels!r} must give one label per vertex of "
                f"branch {ibr}, which has {len(branch)}"
            )
            raise builder.fail(msg)
        return [_bsm_label(lab, "intermediate_state", builder.field) for lab in labels] + [final]

    # -- graph notation -----------------------------------------------------------------------

    def graph_sms(self, literal: str, field: str) -> SMS:
        builder = _SMSBuilder(field, literal)
        body = literal.strip()[1:-1]
        decays: list[tuple[str, list[str]]] = []
        pos = 0
        while pos < len(body):
            ch = body[pos]
            if ch.isspace() or ch == ",":
                pos += 1
                continue
            if ch != "(":
                msg = (
                    f"unexpected {body[pos : pos + 20]!r}; a graph SMS is a set of decays "
                    "'(mother > daughter1,daughter2)' separated by commas"
                )
                raise builder.fail(msg)
            end = _matching(body, pos)
            inner = body[pos + 1 : end]
            if inner.count(">") != 1:
                raise builder.fail(f"decay '({inner})' must contain exactly one '>'")
            mom, daughters = inner.split(">")
            decays.append((mom, daughters.split(",")))
            pos = end + 1
        if not decays:
            raise builder.fail("empty graph SMS; write decays such as {(PV > MET(1),MET(2))}")

        def node(token: str) -> tuple[str, int | None]:
            m = _GRAPH_NODE_RE.fullmatch(token.strip())
            if m is None:
                msg = f"cannot read node {token.strip()!r}; write it as Label, Label(n) or *Label"
                raise builder.fail(msg)
            return m.group(1) + m.group(2), None if m.group(3) is None else int(m.group(3))

        parsed = [(node(m), [node(d) for d in ds]) for m, ds in decays]
        explicit = [n for (_, n), _ in parsed if n is not None]
        explicit += [n for _, ds in parsed for _, n in ds if n is not None]
        counter = max(explicit, default=0) + 1
        for (mom_name, mom_n), daughters in parsed:
            if mom_name == "PV" and mom_n in (None, 0):
                mom_n = 0
            elif mom_n is None:
                raise builder.fail(f"mother {mom_name!r} needs a node number, e.g. {mom_name}(1)")
            elif mom_n == 0:
                raise builder.fail(f"node number 0 is reserved for PV, not {mom_name!r}")
            else:
                builder.add_node(mom_n, mom_name)
            numbers = []
            for name, n in daughters:
                if n is None:
                    n, counter = counter, counter + 1
                elif n == 0:
                    raise builder.fail(f"node number 0 is reserved for PV, not {name!r}")
                builder.add_node(n, name)
                numbers.append(n)
            builder.decays.append((mom_n, tuple(numbers)))
        return builder.build(None, self.known)


# ----------------------------------------------------------------------------------------------
# expressions
# ----------------------------------------------------------------------------------------------


class _Linear:
    """Intermediate value: constant + sum of coefficient * SMS."""

    __slots__ = ("const", "coeffs")

    def __init__(self, const: float = 0.0, coeffs: dict[int, float] | None = None) -> None:
        self.const = const
        self.coeffs = coeffs or {}

    def combine(self, other: _Linear, sign: float) -> _Linear:
        coeffs = dict(self.coeffs)
        for i, c in other.coeffs.items():
            coeffs[i] = coeffs.get(i, 0.0) + sign * c
        return _Linear(self.const + sign * other.const, coeffs)

    def scale(self, factor: float) -> _Linear:
        return _Linear(self.const * factor, {i: c * factor for i, c in self.coeffs.items()})

    def divide(self, divisor: float) -> _Linear:
        return _Linear(self.const / divisor, {i: c / divisor for i, c in self.coeffs.items()})


class _ExprParser:
    """Recursive-descent parser of a linear expression in numbers and SMS literals."""

    def __init__(self, text: str, field: str, ctx: _Context) -> None:
        self.text = text
        self.field = field
        self.ctx = ctx
        self.pos = 0

    def fail(self, message: str) -> ConstraintError:
        return ConstraintError(self.field, self.text, message)

    def peek(self) -> str:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse(self) -> LinearExpression:
        if not self.text.strip():
            raise self.fail(f"empty expression; the {self.field} needs at least one SMS term")
        _check_balanced(self.text, self.field)
        value = self.expr()
        if self.peek():
            msg = f"unexpected {self.text[self.pos : self.pos + 20]!r} at position {self.pos}"
            raise self.fail(msg + "; only numbers, SMS, + - * / and parentheses are allowed")
        if not value.coeffs:
            raise self.fail("the expression contains no SMS term")
        if value.const != 0.0:
            msg = (
                "the expression has a constant term; it must be a linear combination of SMS "
                "such as 2.*[[['b']],[['b']]]"
            )
            raise self.fail(msg)
        return LinearExpression(tuple(sorted(value.coeffs.items())))

    def expr(self) -> _Linear:
        value = self.term()
        while (op := self.peek()) in ("+", "-"):
            self.pos += 1
            value = value.combine(self.term(), 1.0 if op == "+" else -1.0)
        return value

    def term(self) -> _Linear:
        value = self.factor()
        while (op := self.peek()) in ("*", "/"):
            self.pos += 1
            right = self.factor()
            if op == "*":
                if value.coeffs and right.coeffs:
                    msg = (
                        "non-linear expression: a product of two SMS; multiply SMS by numbers only"
                    )
                    raise self.fail(msg)
                value = right.scale(value.const) if not value.coeffs else value.scale(right.const)
            else:
                if right.coeffs:
                    msg = "non-linear expression: division by an SMS term; divide by numbers only"
                    raise self.fail(msg)
                if right.const == 0.0:
                    raise self.fail("division by zero")
                value = value.divide(right.const)
        return value

    def factor(self) -> _Linear:
        ch = self.peek()
        if ch in ("+", "-"):
            self.pos += 1
            inner = self.factor()
            return inner if ch == "+" else inner.scale(-1.0)
        if ch == "(":
            end = _matching(self.text, self.pos)
            self.pos += 1
            value = self.expr()
            if self.peek() != ")" or self.pos != end:
                msg = f"unexpected {self.text[self.pos : self.pos + 20]!r} at position {self.pos}"
                raise self.fail(msg + " inside parentheses")
            self.pos += 1
            return value
        if ch in ("[", "{"):
            end = _matching(self.text, self.pos)
            literal = self.text[self.pos : end + 1]
            self.pos = end + 1
            make = self.ctx.bracket_sms if ch == "[" else self.ctx.graph_sms
            return _Linear(0.0, {self.ctx.add(make(literal, self.field)): 1.0})
        m = _NUMBER_RE.match(self.text, self.pos)
        if m is not None:
            self.pos = m.end()
            return _Linear(float(m.group()))
        if not ch:
            raise self.fail("the expression ends unexpectedly; a term is missing after an operator")
        msg = f"unexpected {self.text[self.pos : self.pos + 20]!r} at position {self.pos}"
        raise self.fail(msg + "; expected a number, an SMS ([...] or {...}) or '('")


# ----------------------------------------------------------------------------------------------
# conditions and entry point
# ----------------------------------------------------------------------------------------------


def _condition_items(condition: str | Sequence[str] | None) -> list[str]:
    """Split the condition field into single calls (None, 'None' and blanks give none)."""
    if condition is None:
        return []
    items: Iterable[object] = [condition] if isinstance(condition, str) else condition
    out = []
    for item in items:
        if not isinstance(item, str):
            msg = "conditions must be strings such as 'Cgtr(X, Y)' or a list of them"
            raise ConstraintError("condition", repr(item), msg)
        _check_balanced(item, "condition")
        out += [p.strip() for p in _split_top(item, ";") if p.strip() not in ("", "None")]
    return out


def _parse_condition(item: str, parse: Callable[[str], LinearExpression]) -> Condition:
    """Parse one ``Cgtr(...)`` or ``Csim(...)`` call."""
    m = _CALL_RE.match(item)
    if m is None:
        msg = "expected a call such as Cgtr(X, Y) or Csim(X1, X2, ...)"
        raise ConstraintError("condition", item, msg)
    kind = _FUNCTIONS.get(m.group(1).lower())
    if kind is None:
        msg = (
            f"unknown function {m.group(1)!r}; conditions use Cgtr/cGtr(X, Y) or "
            "Csim/cSim(X1, X2, ...)"
        )
        raise ConstraintError("condition", item, msg)
    start = m.end() - 1
    end = _matching(item, start)
    if item[end + 1 :].strip():
        msg = f"unexpected {item[end + 1 :]!r} after the call; separate conditions with ';'"
        raise ConstraintError("condition", item, msg)
    args = _split_top(item[start + 1 : end], ",")
    if any(not a.strip() for a in args):
        raise ConstraintError("condition", item, "empty argument; check the commas of the call")
    if kind == "greater" and len(args) != 2:
        msg = f"{m.group(1)} takes exactly 2 arguments (X, Y), got {len(args)}"
        raise ConstraintError("condition", item, msg)
    return Condition(kind, tuple(parse(a) for a in args))


def parse_constraint(
    constraint: str,
    condition: str | list[str] | None = None,
    *,
    final_state: list[str] | None = None,
    intermediate_state: list[list[str]] | None = None,
    known_labels: frozenset[str] | None = None,
) -> Constraint:
    """Parse a txname's constraint and condition strings.

    Bracket SMS are numbered as SModelS ``bracketToProcessStr`` numbers them: PV is 0, the branch
    mothers 1 and 2, then branch 0 vertex by vertex (the BSM daughter, then the vertex's SM
    particles sorted by label), then branch 1. Graph SMS keep their written numbers; unnumbered
    daughters get max(number)+1, +2, ... in reading order.

    Unlike SModelS, which rejects a constraint naming the same SMS twice, repeated SMS (same
    :meth:`SMS.key`) are merged and their coefficients added. SMS of the conditions that equal
    one of the constraint reuse its index.

    Args:
        constraint: the ``constraint`` field, a linear combination of SMS.
        condition: the ``condition`` field: None, ``'None'``, a ``;``-separated string or a list
            of strings, each ``Cgtr(X, Y)``/``cGtr`` or ``Csim(X1, ...)``/``cSim``.
        final_state: label of the last BSM state of each bracket branch (default
            ``['MET','MET']``; None entries mean ``MET``).
        intermediate_state: labels of the decaying BSM states of each bracket branch, e.g.
            ``[['gluino'],['gluino']]`` (default ``anyBSM``). Ignored for graph notation.
        known_labels: if given, every node label but the root ``PV`` (without a leading ``*``)
            must be in it, e.g. :data:`DATABASE_LABELS`.

    Returns:
        The parsed constraint.

    Raises:
        ConstraintError: if either string cannot be parsed; ``.field`` tells which.

    Example:
        >>> c = parse_constraint(
        ...     "[[['mu+']],[['mu-']]] + [[['e+']],[['e-']]]",
        ...     "Cgtr([[['mu+']],[['mu-']]], [[['e+']],[['e-']]])",
        ... )
        >>> c.expression.terms, c.conditions[0].kind
        (((0, 1.0), (1, 1.0)), 'greater')
    """
    if not isinstance(constraint, str) or not constraint.strip() or constraint.strip() == "None":
        msg = "empty constraint; give a linear combination of SMS such as [[['jet']],[['jet']]]"
        raise ConstraintError("constraint", str(constraint), msg)
    ctx = _Context(final_state, intermediate_state, known_labels)
    expression = _ExprParser(constraint, "constraint", ctx).parse()

    def parse_arg(text: str) -> LinearExpression:
        return _ExprParser(text, "condition", ctx).parse()

    conditions = tuple(_parse_condition(c, parse_arg) for c in _condition_items(condition))
    return Constraint(tuple(ctx.sms), expression, conditions)
