"""Decomposition of a protomodel into weighted simplified-model topologies (SModelS section 2).

Each production pair with cross section above ``sigmacut`` (largest over sqrt(s)) is decayed
into every chain of decays; pairs of chains whose weight sigma x BR falls below ``sigmacut`` are
dropped. A singly produced particle (a Z', a mediator: a 1-tuple production key) is the root of
its topologies, its BSM daughters starting the chains. A chain may end in a decay into SM
particles only (:attr:`Branch.decayed`); a decay into several BSM particles inside a chain makes
a tree that no database result constrains, and its weight is not enumerated (as in SModelS 3,
where such graphs match nothing). Each topology is then compressed: mass compression removes a
decay whose mass gap is below ``minmassgap`` (the BSM daughter takes the mother's place),
invisible compression replaces a particle decaying only to invisible states (neutrinos and the
LSP) by an invisible final state with its mass. Compressed topologies keep the weight of their
original and stay *related* to it (SModelS keeps at most one member of such a family per data
set).

Lifetimes follow SModelS 3 (``base/model.py:Model.setDecays``): a particle with a total width
below :data:`STABLE_WIDTH` (or no decays) is stable, one above :data:`PROMPT_WIDTH` (or without a
known width) decays promptly, and one in between is long-lived: it appears both as each of its
decays (with their branching ratios) and undecayed, as a final state, with weight 1. The
weights are not reweighted here: the fractions of prompt and of outside-the-detector decays
enter when a topology meets a txname
(:func:`protomodels.theory.lifetimes.reweighting`).

The output is structural (which particles sit where) plus the per-sqrt(s) weights; masses are
looked up from the model by particle id, so that the same structure serves many mass points.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from protomodels.theory.particles import BsmProperties, bsm_properties, sm_label
from protomodels.theory.protomodel import Protomodel

__all__ = [
    "INVISIBLE",
    "PROMPT_WIDTH",
    "ROOT",
    "STABLE_WIDTH",
    "Branch",
    "Topology",
    "decompose",
    "lifetime_class",
]


def __dir__() -> list[str]:
    return __all__


#: marker added to a particle id for an invisible-compressed final state (mass of that particle)
INVISIBLE = "inv"

Node = tuple[int, str]  # (signed PDG id, "" or INVISIBLE)

#: GeV: total widths below are stable, above prompt (SModelS's stableWidth, promptWidth)
STABLE_WIDTH, PROMPT_WIDTH = 1e-25, 1e-11


def lifetime_class(pdg: int, model: Protomodel) -> str:
    """``"stable"``, ``"prompt"`` or ``"long-lived"`` by the particle's decays and total width
    (SModelS 3's thresholds; a particle with decays and no known width is prompt)."""
    if not model.decays.get(abs(pdg)):
        return "stable"
    width = model.widths.get(abs(pdg))
    if width is None or width > PROMPT_WIDTH:
        return "prompt"
    if width < STABLE_WIDTH:
        return "stable"
    return "long-lived"


@dataclass(frozen=True)
class Branch:
    """One decay chain: BSM nodes from the produced particle down to the final state.

    Attributes:
        nodes: (signed PDG id, flag) of each BSM state; the flag is ``"inv"`` for an
            invisible-compressed final state (which has the mass of that PDG id).
        vertices: SM theory labels emitted at each step, sorted; ``len(vertices) ==
            len(nodes) - 1``, or ``len(nodes)`` when the last state decays into SM particles
            only (a resonance into jets, an R-parity violating decay).
    """

    nodes: tuple[Node, ...]
    vertices: tuple[tuple[str, ...], ...]

    @property
    def decayed(self) -> bool:
        """Whether the last BSM state decays, into SM particles only (a vertex more than
        BSM-to-BSM steps); else it is an undecayed final state."""
        return len(self.vertices) == len(self.nodes)


#: index of a topology's root in :meth:`Topology.part` (after its branches)
ROOT = 2


@dataclass(frozen=True)
class Topology:
    """A weighted topology: pair production into two decay chains, or the single production
    of a resonance (``root``) whose BSM daughters start the chains.

    Attributes:
        branches: the decay chains (two for pair production; zero to two below a root).
        weights: sigma x BR in fb, by sqrt(s) in TeV.
        family: index of the original (uncompressed) topology it descends from.
        compressed: "" for an original, else a description ("mass", "inv", "mass+inv", ...).
        pair: the production pair.
        decays: the decays whose branching ratios make the weight, as (mother PDG id > 0,
            index in ``model.decays[mother]``): weight = sigma(pair) x product of their BRs.
        properties: (PDG id, properties) of the model's particles beyond the MSSM, which the
            matching needs (empty for MSSM models).
        root: for single production, the produced particle as a one-node branch, with the SM
            particles of its decay as its vertex (none if it does not decay); else None.
    """

    branches: tuple[Branch, ...]
    weights: Mapping[float, float]
    family: int
    compressed: str
    pair: tuple[int, ...]
    decays: tuple[tuple[int, int], ...] = ()
    properties: tuple[tuple[int, BsmProperties], ...] = ()
    root: Branch | None = None

    def part(self, index: int) -> Branch:
        """Branch ``index``, or the root for :data:`ROOT`."""
        if index == ROOT:
            if self.root is None:
                raise IndexError("a pair-production topology has no root")
            return self.root
        return self.branches[index]

    @property
    def parts(self) -> tuple[tuple[int, Branch], ...]:
        """(index, branch) of the branches and of the root, if any."""
        found = tuple(enumerate(self.branches))
        return found + ((ROOT, self.root),) if self.root is not None else found


def _conjugate_bsm(pdg: int, model: Protomodel) -> int:
    if bsm_properties(pdg, model.properties).self_conjugate:
        return abs(pdg)  # (Majorana neutralino, gluino): same properties
    return -pdg


Chain = tuple[Branch, float, tuple[tuple[int, int], ...]]


def _chains(pdg: int, model: Protomodel, memo: dict[int, list[Chain]]) -> list[Chain]:
    """All decay chains of ``pdg`` with their product of branching ratios and the decays used."""
    if pdg in memo:
        return memo[pdg]
    sign = 1 if pdg > 0 else -1
    kind = lifetime_class(pdg, model)
    undecayed: list[Chain] = [(Branch(((pdg, ""),), ()), 1.0, ())]
    if kind == "stable":
        memo[pdg] = undecayed
        return undecayed
    channels = model.decays[abs(pdg)]
    result: list[Chain] = []
    for index, decay in sorted(enumerate(channels), key=lambda c: -c[1].br):
        if decay.br <= 0 or decay.more:
            # (a decay into several BSM particles inside a chain makes a tree that no result
            # constrains: its weight is lost, as in SModelS where it matches nothing)
            continue
        labels = tuple(sorted(sm_label(s if sign > 0 else -s) for s in decay.sm))
        if not decay.daughter:  # into SM particles only: the chain ends decayed
            result.append((Branch(((pdg, ""),), (labels,)), decay.br, ((abs(pdg), index),)))
            continue
        daughter = decay.daughter if sign > 0 else _conjugate_bsm(decay.daughter, model)
        for sub, br, used in _chains(daughter, model, memo):
            branch = Branch(((pdg, ""), *sub.nodes), (labels, *sub.vertices))
            result.append((branch, decay.br * br, ((abs(pdg), index), *used)))
    if kind == "long-lived":  # also undecayed (SModelS: a "no decay" channel of BR 1)
        result += undecayed
    memo[pdg] = result
    return result


Tree = tuple[Branch | None, tuple[Branch, ...], float, tuple[tuple[int, int], ...]]


def _resonance_trees(
    pdg: int, model: Protomodel, memo: dict[int, list[Chain]], min_br: float
) -> list[Tree]:
    """The topologies of a singly produced particle: (root, chains of its BSM daughters, BR,
    decays used) for each of its decays (at most two BSM daughters), and undecayed if it is
    stable or long-lived."""
    undecayed: list[Tree] = [(Branch(((pdg, ""),), ()), (), 1.0, ())]
    kind = lifetime_class(pdg, model)
    if kind == "stable":
        return undecayed
    sign = 1 if pdg > 0 else -1
    trees: list[Tree] = []
    for index, decay in sorted(enumerate(model.decays[abs(pdg)]), key=lambda c: -c[1].br):
        if decay.br <= 0 or len(decay.bsm) > 2:
            continue
        labels = tuple(sorted(sm_label(s if sign > 0 else -s) for s in decay.sm))
        root = Branch(((pdg, ""),), (labels,))
        daughters = [d if sign > 0 else _conjugate_bsm(d, model) for d in decay.bsm]
        combos: list[tuple[tuple[Branch, ...], float, tuple[tuple[int, int], ...]]] = [
            ((), decay.br, ((abs(pdg), index),))
        ]
        for daughter in daughters:
            combos = [(branches + (sub,), br * sub_br, used + sub_used)
                      for branches, br, used in combos
                      for sub, sub_br, sub_used in _chains(daughter, model, memo)
                      if br * sub_br >= min_br]
        trees += [(root, *combo) for combo in combos]
    if kind == "long-lived":
        trees += undecayed
    return trees


def _mass(model: Protomodel, node: Node) -> float:
    return model.masses[abs(node[0])]


def _mass_compress(branch: Branch, model: Protomodel, gap: float) -> Branch:
    """Remove every decay whose mother-daughter mass gap is below ``gap`` (one pass)."""
    nodes, vertices = branch.nodes, branch.vertices
    keep = [True] * len(nodes)
    for i in range(len(nodes) - 1):
        # (SModelS compresses prompt decays only: a long-lived mother keeps its soft decay)
        if _mass(model, nodes[i]) - _mass(model, nodes[i + 1]) < gap and (
            lifetime_class(nodes[i][0], model) == "prompt"
        ):
            keep[i] = False
    if all(keep):
        return branch
    new_nodes = tuple(n for n, k in zip(nodes, keep, strict=True) if k)
    new_vertices = tuple(v for v, k in zip(vertices, keep[: len(vertices)], strict=True) if k)
    return Branch(new_nodes, new_vertices)


def _is_met(node: Node, model: Protomodel) -> bool:
    if node[1] == INVISIBLE:
        return True
    props = bsm_properties(node[0], model.properties)
    return props.charge == 0 and props.colordim == 1


def _invisible_compress(branch: Branch, model: Protomodel) -> Branch:
    """Replace trailing decays into neutrinos + an invisible final state by one invisible state."""
    nodes, vertices = list(branch.nodes), list(branch.vertices)
    if branch.decayed and all(v == "nu" for v in vertices[-1]):
        # the last state decays into neutrinos only: an invisible final state itself
        vertices.pop()
        nodes[-1] = (nodes[-1][0], INVISIBLE)
    while vertices and _is_met(nodes[-1], model) and all(v == "nu" for v in vertices[-1]):
        nodes.pop()
        vertices.pop()
        nodes[-1] = (nodes[-1][0], INVISIBLE)
    return Branch(tuple(nodes), tuple(vertices))


def _variants(
    branches: tuple[Branch, ...], model: Protomodel, minmassgap: float
) -> dict[tuple[Branch, ...], str]:
    """The topology and all its distinct compressed descendants, with how they were made
    (the chains are compressed; a resonance's root is not)."""
    found: dict[tuple[Branch, ...], str] = {branches: ""}
    todo = [branches]
    while todo:
        current = todo.pop()
        how = found[current]
        steps = (
            ("mass", tuple(_mass_compress(b, model, minmassgap) for b in current)),
            ("inv", tuple(_invisible_compress(b, model) for b in current)),
        )
        for label, new in steps:
            if new != current and new not in found:
                found[new] = f"{how}+{label}" if how else label
                todo.append(new)
    return found


def decompose(
    model: Protomodel,
    xsecs: Mapping[tuple[int, ...], Mapping[float, float]],
    *,
    sigmacut: float = 0.005,
    minmassgap: float = 5.0,
    mass_compression: bool = True,
    invisible_compression: bool = True,
) -> list[Topology]:
    """Decompose a model into weighted topologies.

    Args:
        model: the protomodel (masses are used as given; round them beforehand if wanted).
        xsecs: production cross sections {pair: {sqrts_tev: fb}}; a 1-tuple key is the
            single production of a resonance.
        sigmacut: drop topologies whose largest-sqrt(s) weight is below this (fb).
        minmassgap: mass-compression threshold (GeV).
        mass_compression, invisible_compression: switch the compressions.

    Returns:
        Original topologies followed, each, by their compressed descendants.
    """
    memo: dict[int, list[Chain]] = {}
    topologies: list[Topology] = []
    family = 0
    extra = tuple(sorted(model.properties.items()))
    for pair in sorted(xsecs):
        by_sqrts = {s: v for s, v in xsecs[pair].items() if v > 0}
        if not by_sqrts:
            continue
        if any(abs(p) not in model.masses for p in pair):
            continue
        sigma_max = max(by_sqrts.values())
        if sigma_max < sigmacut:
            continue
        min_br = sigmacut / sigma_max
        if len(pair) == 1:
            trees = _resonance_trees(pair[0], model, memo, min_br)
        else:
            chains_a = [c for c in _chains(pair[0], model, memo) if c[1] >= min_br]
            chains_b = [c for c in _chains(pair[1], model, memo) if c[1] >= min_br]
            trees = [(None, (a, b), br_a * br_b, used_a + used_b)
                     for a, br_a, used_a in chains_a for b, br_b, used_b in chains_b]
        for root, original, br, used in trees:
            if sigma_max * br < sigmacut:
                continue
            weights = {s: v * br for s, v in by_sqrts.items()}
            if mass_compression or invisible_compression:
                variants = _variants(original, model, minmassgap if mass_compression else -1.0)
                if not invisible_compression:
                    variants = {k: v for k, v in variants.items() if "inv" not in v}
            else:
                variants = {original: ""}
            for branches, how in variants.items():
                topologies.append(
                    Topology(branches, weights, family, how, pair, used, extra, root)
                )
            family += 1
    return topologies
