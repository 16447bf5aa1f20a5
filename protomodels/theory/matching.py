"""Matching theory topologies against the database's constraints (`docs/predictions.md` §5).

Every constraint SMS of the database that describes pair production followed by two decay
chains, or a singly produced resonance whose decay starts at most two chains, is compiled once
into a :class:`Pattern`: per branch (and for the resonance, its ``root``), the BSM labels and
the SM labels emitted at each vertex; a chain may end in a decay into SM particles only. A
theory topology matches a pattern when, for one of the two branch assignments, the depths agree,
every BSM state has the label's properties and every vertex's SM particles can be assigned one-
to-one to the vertex's labels (inclusive ``*anySM`` lists absorb any number). When both
assignments match, the one with the lexicographically larger data vector wins (SModelS
``TxName.hasSMSas``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from protomodels.database.constraints import SMS, Node
from protomodels.database.database import Database
from protomodels.theory.decomposition import INVISIBLE, ROOT, Branch, Topology
from protomodels.theory.particles import (
    SM_LABEL_MEMBERS,
    BsmProperties,
    bsm_label_matches,
    bsm_properties,
)

__all__ = ["Pattern", "PatternBranch", "Usage", "compile_pattern", "Matcher"]


def __dir__() -> list[str]:
    return __all__


Label = tuple[str, bool]  # (database label, inclusive)


@dataclass(frozen=True)
class PatternBranch:
    """One branch of a constraint SMS.

    Attributes:
        bsm: BSM labels from the branch mother to the final state.
        vertices: SM labels emitted at each step.
        numbers: constraint node numbers of the BSM states (for the data map).
        inclusive: an ``InclusiveNode`` branch: any chain whose final state has the label
            ``bsm[0]`` matches, whatever it emits (the grid has no coordinate for it).
    """

    bsm: tuple[str, ...]
    vertices: tuple[tuple[Label, ...], ...]
    numbers: tuple[int, ...]
    inclusive: bool = False


@dataclass(frozen=True)
class Pattern:
    """A compiled constraint SMS: two chains, or a singly produced resonance (``root``: its
    label and the SM labels of its decay) whose BSM daughters start zero to two chains."""

    key: str
    branches: tuple[PatternBranch, ...]
    root: PatternBranch | None = None

    @property
    def parts(self) -> tuple[tuple[int, PatternBranch], ...]:
        """(index, branch) of the branches and of the root (index :data:`ROOT`), if any."""
        found = tuple(enumerate(self.branches))
        return found + ((ROOT, self.root),) if self.root is not None else found

    @property
    def shape(self) -> object:
        """Vertex sizes of the root and of the sorted branches, or None if an inclusive list
        makes them variable."""
        if any(b.inclusive for _, b in self.parts) or any(
            inc for _, b in self.parts for v in b.vertices for _, inc in v
        ):
            return None
        return _shape_of(self.root, self.branches)


def _shape_of(
    root: Branch | PatternBranch | None, branches: tuple[Branch | PatternBranch, ...]
) -> object:
    """Vertex sizes of a root (None for pair production) and, per sorted branch, its number
    of BSM states and vertex sizes: equal for a topology and the patterns it may match."""
    top = None if root is None else tuple(len(v) for v in root.vertices)
    return top, tuple(sorted(
        (len(b.nodes if isinstance(b, Branch) else b.bsm), tuple(len(v) for v in b.vertices))
        for b in branches))


@dataclass(frozen=True)
class Usage:
    """Where a pattern is used: result, data set and topology (txname) indices, the term's
    coefficient in the constraint, and the node number -> (branch, position) map."""

    result: int
    dataset: int
    topology: int
    coefficient: float
    node_positions: dict[int, tuple[int, int]]


_SM = frozenset(SM_LABEL_MEMBERS)


def compile_pattern(sms: SMS) -> Pattern | None:
    """Compile a constraint SMS, or None when it is neither pair production into two chains
    nor a singly produced resonance decaying into at most two chains."""
    labels = {n.number: n for n in sms.nodes}
    children = {mother: daughters for mother, daughters in sms.decays}
    roots = children.get(0, ())
    if len(roots) == 1:  # a resonance: PV > X, X > SM particles and 0-2 BSM daughters
        node = labels[roots[0]]
        if node.label in _SM or node.inclusive or node.label.startswith("Inclusive"):
            return None
        daughters = children.get(node.number)
        vertex = () if daughters is None else (
            tuple(sorted((labels[d].label, labels[d].inclusive)
                         for d in daughters if labels[d].label in _SM)),)
        starts = [d for d in daughters or () if labels[d].label not in _SM]
        if len(starts) > 2:
            return None
        root = PatternBranch((node.label,), vertex, (node.number,))
        chains = [_compile_chain(d, labels, children) for d in starts]
        if any(c is None for c in chains):
            return None
        return Pattern(sms.key(), tuple(chains), root)  # type: ignore[arg-type]
    if len(roots) != 2:
        return None
    branches = [_compile_chain(root, labels, children) for root in roots]
    if branches[0] is None or branches[1] is None:
        return None
    return Pattern(sms.key(), (branches[0], branches[1]))


def _compile_chain(
    root: int, labels: Mapping[int, Node], children: Mapping[int, tuple[int, ...]]
) -> PatternBranch | None:
    """The chain that starts at node ``root``, or None if it branches."""
    node = labels[root]
    if node.label.startswith("Inclusive"):
        finals = [d for d in children.get(root, ()) if labels[d].label not in _SM]
        if len(finals) != 1:
            return None
        final = labels[finals[0]]
        return PatternBranch((final.label,), (), (root,), inclusive=True)
    if node.label in _SM or node.inclusive:
        return None
    bsm, vertices, numbers = [node.label], [], [root]
    current = root
    while current in children:
        bsm_daughters = [d for d in children[current] if labels[d].label not in _SM]
        sm_daughters = [d for d in children[current] if labels[d].label in _SM]
        vertex = tuple(sorted((labels[d].label, labels[d].inclusive) for d in sm_daughters))
        if not bsm_daughters and sm_daughters:  # the chain ends decaying into SM particles
            vertices.append(vertex)
            break
        if len(bsm_daughters) != 1:
            return None
        nxt = labels[bsm_daughters[0]]
        if nxt.inclusive or nxt.label.startswith("Inclusive"):
            return None
        vertices.append(vertex)
        bsm.append(nxt.label)
        numbers.append(nxt.number)
        current = nxt.number
    return PatternBranch(tuple(bsm), tuple(vertices), tuple(numbers))


@cache
def _vertex_matches(theory: tuple[str, ...], pattern: tuple[Label, ...]) -> bool:
    exact = [label for label, inclusive in pattern if not inclusive]
    inclusive = [label for label, inc in pattern if inc]
    if len(exact) > len(theory) or (not inclusive and len(exact) != len(theory)):
        return False

    def assign(i: int, used: tuple[bool, ...]) -> bool:
        if i == len(exact):
            rest = [t for t, u in zip(theory, used, strict=True) if not u]
            return all(any(t in SM_LABEL_MEMBERS[label] for label in inclusive) for t in rest)
        members = SM_LABEL_MEMBERS[exact[i]]
        for j, t in enumerate(theory):
            if not used[j] and t in members:
                if assign(i + 1, used[:j] + (True,) + used[j + 1 :]):
                    return True
        return False

    return assign(0, (False,) * len(theory))


_INVISIBLE_PROPS = BsmProperties(0.0, 1, -1.0)
_NO_EXTRA: Mapping[int, BsmProperties] = {}


def _props(node: tuple[int, str], extra: Mapping[int, BsmProperties]) -> BsmProperties:
    return _INVISIBLE_PROPS if node[1] == INVISIBLE else bsm_properties(node[0], extra)


def _bsm_matches(label: str, node: tuple[int, str], extra: Mapping[int, BsmProperties]) -> bool:
    props = _props(node, extra)
    if props.spin < 0:  # invisible-compressed state: no spin attribute
        return label in ("anyBSM", "MET")
    return bsm_label_matches(label, props)


def branch_matches(
    branch: Branch, pattern: PatternBranch, extra: Mapping[int, BsmProperties] | None = None
) -> bool:
    """Whether one theory chain matches one pattern branch (``extra``: properties of particles
    beyond the MSSM)."""
    extra = extra or _NO_EXTRA
    if pattern.inclusive:
        return _bsm_matches(pattern.bsm[0], branch.nodes[-1], extra)
    if len(branch.nodes) != len(pattern.bsm) or len(branch.vertices) != len(pattern.vertices):
        return False
    if not all(
        _bsm_matches(lab, node, extra)
        for lab, node in zip(pattern.bsm, branch.nodes, strict=True)
    ):
        return False
    return all(
        _vertex_matches(tv, pv) for tv, pv in zip(branch.vertices, pattern.vertices, strict=True)
    )


def _shape(topology: Topology) -> object:
    return _shape_of(topology.root, topology.branches)


class Matcher:
    """All compiled patterns of a database, indexed by shape, with their usages."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.patterns: dict[str, Pattern] = {}
        self.usages: dict[str, list[Usage]] = defaultdict(list)
        #: (result id, txname) whose data map cannot be served by a compiled pattern
        self.unsupported: list[tuple[str, str]] = []
        for ri, result in enumerate(database.results):
            for di, dataset in enumerate(result.datasets):
                for ti, topology in enumerate(dataset.topologies):
                    sms_list = topology.constraint.sms
                    for index, coefficient in topology.constraint.expression.terms:
                        sms = sms_list[index]
                        key = sms.key()
                        if key not in self.patterns:
                            pattern = compile_pattern(sms)
                            if pattern is None:
                                continue
                            self.patterns[key] = pattern
                        pattern = self.patterns[key]
                        # node numbers of THIS constraint (equal graphs may be numbered
                        # differently), branches in the shared pattern's order
                        own = compile_pattern(sms)
                        if own is None:
                            continue
                        swapped = len(own.branches) == 2 and not (
                            _same_branch(own.branches[0], pattern.branches[0])
                            and _same_branch(own.branches[1], pattern.branches[1])
                        )
                        positions = {
                            number: ((1 - b) if swapped and b != ROOT else b, p)
                            for b, branch in own.parts
                            for p, number in enumerate(branch.numbers)
                        }
                        if any(axis.node not in positions for axis in topology.axes):
                            # the data map names a node inside an inclusive part of the
                            # constraint: not supported yet, so this txname is never matched
                            self.unsupported.append((result.result_id, topology.name))
                            continue
                        self.usages[key].append(Usage(ri, di, ti, coefficient, positions))
        self._conditions: dict[tuple[int, int, int], dict[int, Pattern]] = {}
        self._by_shape: dict[object, list[str]] = defaultdict(list)
        for key, pattern in self.patterns.items():
            self._by_shape[pattern.shape].append(key)

    def condition_patterns(self, result: int, dataset: int, topology: int) -> dict[int, Pattern]:
        """Compiled patterns of the SMS that a txname's conditions use, by index into its
        ``constraint.sms`` (cached; SMS that are not two chains are left out)."""
        key = (result, dataset, topology)
        found = self._conditions.get(key)
        if found is None:
            constraint = (
                self.database.results[result].datasets[dataset].topologies[topology].constraint
            )
            used = sorted({i for c in constraint.conditions for a in c.args for i, _ in a.terms})
            found = {}
            for i in used:
                pattern = compile_pattern(constraint.sms[i])
                if pattern is not None:
                    found[i] = pattern
            self._conditions[key] = found
        return found

    def matches(self, topology: Topology, pattern: Pattern) -> bool:
        """Whether a theory topology is the SMS of a pattern (any branch assignment)."""
        return bool(_assignments(topology, pattern))

    def candidates(self, topology: Topology) -> list[str]:
        """Pattern keys that may match (same shape, or with inclusive lists)."""
        return self._by_shape.get(_shape(topology), []) + self._by_shape.get(None, [])

    def assignments(self, topology: Topology, key: str) -> list[tuple[int, ...]]:
        """Branch assignments: per pattern branch the theory branch (-1 where the pattern has
        fewer than two), then :data:`ROOT` (so that ``assignment[b]`` serves the node
        positions ``(b, p)`` of branches and root alike)."""
        return _assignments(topology, self.patterns[key])


def _assignments(topology: Topology, pattern: Pattern) -> list[tuple[int, ...]]:
    if (topology.root is None) != (pattern.root is None):
        return []
    if len(topology.branches) != len(pattern.branches):
        return []
    extra = dict(topology.properties) if topology.properties else _NO_EXTRA
    if pattern.root is not None and not branch_matches(topology.root, pattern.root, extra):
        return []
    n = len(pattern.branches)
    orders = [()] if n == 0 else [(0,)] if n == 1 else [(0, 1), (1, 0)]
    return [
        (*order, *(-1,) * (2 - n), ROOT)
        for order in orders
        if all(branch_matches(topology.branches[t], pattern.branches[b], extra)
               for b, t in enumerate(order))
    ]


def _same_branch(a: PatternBranch, b: PatternBranch) -> bool:
    return a.bsm == b.bsm and a.vertices == b.vertices and a.inclusive == b.inclusive
