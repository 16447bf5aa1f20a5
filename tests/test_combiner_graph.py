"""The combinability graph: the README's rule, the files, and the reference builder's own
combinations (they must be combinations of ours)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from protomodels.combiner.graph import (
    CombinabilityError,
    analysis_base,
    experiment,
    load_combinability,
)
from protomodels.exceptions import ProtomodelsError


@dataclass(frozen=True)
class Res:
    analysis: str
    dataset: str | None = None
    sqrts_tev: float = 13.0


@pytest.fixture(scope="module")
def yaml_graph(shared: Path):  # noqa: ANN201
    return load_combinability("yaml", shared=shared)


@pytest.fixture(scope="module")
def yaml_lists(shared: Path) -> dict:
    path = shared / "data" / "combinability" / "combinability_yaml.json"
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("CMS-SUS-19-006-agg", "CMS-SUS-19-006"),
        ("ATLAS-SUSY-2018-32-eff", "ATLAS-SUSY-2018-32"),
        ("CMS-EXO-13-006-eff-trim", "CMS-EXO-13-006"),
        ("CMS-SUS-16-048-ma5", "CMS-SUS-16-048"),
        ("ATLAS-SUSY-2018-05-ewk", "ATLAS-SUSY-2018-05-ewk"),
        ("ATLAS-SUSY-2016-07", "ATLAS-SUSY-2016-07"),
    ],
)
def test_analysis_base(given: str, base: str) -> None:
    assert analysis_base(given) == base


def test_experiment() -> None:
    assert experiment("CMS-PAS-SUS-16-052") == "CMS"
    assert experiment("ATLAS-CONF-2013-037") == "ATLAS"


def test_rule_on_the_yaml_matrix(yaml_graph, yaml_lists: dict) -> None:  # noqa: ANN001
    atlas13 = [k for k in yaml_lists if k.startswith("ATLAS-SUSY-201") and ":" not in k]

    def partners(a: str) -> tuple[list[str], list[str]]:
        listed = [b for b in yaml_lists[a] if b.startswith("ATLAS-SUSY-201")]
        unlisted = [b for b in atlas13 if b not in (a, *yaml_lists[a]) and a not in yaml_lists[b]]
        return listed, unlisted

    a = next(k for k in atlas13 if all(partners(k)))
    listed, unlisted = partners(a)
    assert yaml_graph.combinable(Res(a), Res(listed[0]))
    assert not yaml_graph.combinable(Res(a), Res(unlisted[0]))
    # different experiment or energy: always
    assert yaml_graph.combinable(Res(a), Res("CMS-SUS-99-999"))
    assert yaml_graph.combinable(Res(a), Res(unlisted[0], sqrts_tev=8.0))
    # one analysis (upper-limit result and its -eff sibling): never, whatever the lists say
    assert not yaml_graph.combinable(Res(a), Res(a + "-eff", "SR1"))
    assert not yaml_graph.combinable(Res(a, sqrts_tev=13.0), Res(a + "-agg", sqrts_tev=8.0))
    # the -eff result is looked up under its analysis id
    assert yaml_graph.combinable(Res(a + "-eff", "SR1"), Res(listed[0]))


def test_lists_are_read_as_undirected(yaml_graph, yaml_lists: dict) -> None:  # noqa: ANN001
    one_way = [
        (a, b)
        for a, values in yaml_lists.items()
        for b in values
        if a not in yaml_lists.get(b, []) and experiment(a) == experiment(b) and "*" not in b
    ]
    assert one_way, "the yaml file has one-directional entries (README: 'symmetric')"
    a, b = one_way[0]
    assert yaml_graph.combinable(Res(a), Res(b)) and yaml_graph.combinable(Res(b), Res(a))


def test_dataset_level_and_wildcard_entries() -> None:
    graph = load_combinability(
        {
            "ATLAS-X-1:SR1": ["ATLAS-X-2"],
            "CMS-EXO-1": ["CMS-SUS-*"],
            "CMS-A": ["CMS-B"],
        }
    )
    assert graph.combinable(Res("ATLAS-X-1-eff", "SR1"), Res("ATLAS-X-2"))
    assert not graph.combinable(Res("ATLAS-X-1-eff", "SR2"), Res("ATLAS-X-2"))
    assert not graph.combinable(Res("ATLAS-X-1", "(combined)"), Res("ATLAS-X-2"))
    assert graph.combinable(Res("CMS-SUS-20-004"), Res("CMS-EXO-1"))
    assert not graph.combinable(Res("CMS-PAS-SUS-1"), Res("CMS-EXO-1"))
    matrix = graph.matrix([Res("CMS-A"), Res("CMS-B"), Res("CMS-C"), Res("ATLAS-X-2")])
    assert matrix.dtype == bool and (matrix == matrix.T).all() and not matrix.diagonal().any()
    assert matrix.tolist() == [
        [False, True, False, True],
        [True, False, False, True],
        [False, False, False, True],
        [True, True, True, False],
    ]


def test_named_path_and_mapping_sources(shared: Path, tmp_path: Path) -> None:
    handcrafted = load_combinability("handcrafted", shared=shared)
    path = shared / "data" / "combinability" / "combinability_handcrafted.json"
    assert load_combinability(path).graph.number_of_edges() == handcrafted.graph.number_of_edges()
    user = tmp_path / "mine.json"
    user.write_text(json.dumps({"CMS-A": ["CMS-B"]}))
    assert load_combinability(user).combinable(Res("CMS-A"), Res("CMS-B"))
    assert load_combinability().source.endswith("combinability_yaml.json")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("not json", "not valid JSON"),
        ('["a", "b"]', "JSON object"),
        ('{"CMS-A": "CMS-B"}', "list of ids"),
        ('{"CMS-A": [1]}', "not an id"),
    ],
)
def test_bad_files(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CombinabilityError, match=match):
        load_combinability(path)


def test_unknown_source() -> None:
    with pytest.raises(ProtomodelsError, match="unknown combinability matrix"):
        load_combinability("yml")
    with pytest.raises(CombinabilityError, match="does not exist"):
        load_combinability("/nonexistent/file.json")


def test_reference_combinations_are_combinations(shared: Path, yaml_graph) -> None:  # noqa: ANN001
    """Every best combination of the reference builder (builder_K files, yaml matrix) is
    pairwise combinable under our rule; needs the database store for the energies."""
    import protomodels.database as pdb

    try:
        database = pdb.open(build=False, workspaces=False)
    except ProtomodelsError as err:
        pytest.skip(f"no database store: {err}")
    sqrts = {r.analysis_id: r.sqrts_tev for r in database.results}
    n_checked = 0
    for path in sorted((shared / "data" / "reference" / "builder_K").glob("*.json")):
        record = json.loads(path.read_text())
        for key in ("best_combination", "best_combination_after_rescaling"):
            members = [
                Res(m["analysis"], m["dataset"], sqrts[m["analysis"]])
                for m in record.get(key) or []
            ]
            matrix = yaml_graph.matrix(members)
            off_diagonal = matrix | np.eye(len(members), dtype=bool)
            assert off_diagonal.all(), (path.name, key, [m.analysis for m in members])
            n_checked += len(members)
    assert n_checked > 50
