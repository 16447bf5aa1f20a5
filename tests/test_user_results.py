"""User-added results: validation with file, line and field; the store left as it was on a
refusal; export and import round trips with the same predictions; taking part in K and critics;
kept by a database import."""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from _helpers import eff_source
from click.testing import CliRunner

import protomodels.database as pdb
from protomodels.cli import cli
from protomodels.database.user_results import (
    add_user_result,
    export_result,
    read_user_result,
    remove_user_result,
)
from protomodels.evaluation import Evaluator
from protomodels.exceptions import DatabaseFormatError
from protomodels.theory.predictions import PredictionSettings, Predictor
from protomodels.theory.protomodel import Decay, Protomodel

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples" / "user_results"
EFF = "CMS-SUS-20-004-eff"
N1, N2, C1 = 1000022, 1000023, 1000024


def higgsinos(n2: float = 250.0, n1: float = 80.0) -> Protomodel:
    """A chargino-neutralino model that populates CMS-SUS-20-004-eff (TChiHH and friends)."""
    return Protomodel(
        masses={N2: n2, C1: n2 + 1.0, N1: n1},
        decays={N2: (Decay(N1, (25,), 1.0),), C1: (Decay(N1, (24,), 1.0),)},
        widths={N2: 1.0, C1: 1.0},
        ssm={(N2, N2): 1.0},
    )


@pytest.fixture(scope="module")
def eff_store(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = eff_source(tarball, tmp_path_factory)
    out = tmp_path_factory.mktemp("user-results") / "store.sqlite"
    report = pdb.import_database(source, out, workers=1)
    assert not report.errors
    return out


@pytest.fixture
def store_copy(eff_store: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "store.sqlite"
    shutil.copy(eff_store, dest)
    return dest


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_the_example_files_are_valid(name: str) -> None:
    user = read_user_result(EXAMPLES / name)
    r = user.result
    assert r.result_id.startswith("USER-") and r.datasets and r.data_type == "efficiencyMap"
    for ds in r.datasets:
        assert ds.upper_limit_fb > 0 and ds.expected_upper_limit_fb > 0


BAD = [  # (what to break, replacement, field, line)
    ("observed: 25", "observed: -25", "signal_regions[0].observed", 8),
    ("observed: 25", "observed: .nan", "signal_regions[0].observed", 8),
    ("background: 10.0", "backgrund: 10.0", "signal_regions[0].backgrund", 9),
    ("luminosity: 100", "luminosity: lots", "luminosity", 5),
    ("sqrts: 13", "sqrts: 13000", "sqrts", 4),
    ("collaboration: CMS", "collaboration: LHCb", "collaboration", 3),
    ("collaboration: CMS", "collaboration: ATLAS", "id", 2),
    ("[['W']],[['Z']]", "[['W']],[['Zz']]", "topologies[0].constraint", 17),
    ("SRexcess: [0.01, 0.02]", "SRexcess: [0.01]", "topologies[0].efficiencies.SRexcess", 21),
    ("SRexcess: [0.01, 0.02]", "SRexcess: [0.01, 1.02]", "topologies[0].efficiencies.SRexcess[1]",
     21),
    ("SRexcess: [0.01, 0.02]\n", "SRexcess: [0.01, 0.02]\n      SRother: [0.1, 0.1]\n",
     "topologies[0].efficiencies.SRother", 22),
    ("[[400, 50], [400, 50]]", "[[400, x], [400, 50]]", "topologies[0].masses[1]", 19),
    ("id: SRdeficit", "id: SRexcess", "signal_regions[1].id", 11),
]

GOOD = """\
format: protomodels-user-result/1
id: USER-CMS-TEST
collaboration: CMS
sqrts: 13
luminosity: 100
signal_regions:
  - id: SRexcess
    observed: 25
    background: 10.0
    background_error: 1.0
  - id: SRdeficit
    observed: 2
    background: 12.0
    background_error: 1.5
topologies:
  - name: TChiWZ
    constraint: "[[['W']],[['Z']]]"
    masses: [[[200, 50], [200, 50]],
             [[400, 50], [400, 50]]]
    efficiencies:
      SRexcess: [0.01, 0.02]
"""


@pytest.mark.parametrize(("old", "new", "field", "line"), BAD)
def test_malformed_files_are_refused_with_field_and_line(
    store_copy: Path, tmp_path: Path, old: str, new: str, field: str, line: int
) -> None:
    assert old in GOOD
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace(old, new, 1))
    before = _digest(store_copy)
    with pytest.raises(DatabaseFormatError) as info:
        add_user_result(store_copy, path)
    err = info.value
    assert err.field == field and err.line == line, str(err)
    assert str(path) in str(err) and "->" in str(err)
    assert _digest(store_copy) == before  # nothing written


def test_a_good_file_is_accepted_and_the_cli_names_a_bad_one(store_copy: Path,
                                                            tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    runner = CliRunner()
    result = runner.invoke(cli, ["--database", str(store_copy), "db", "add", str(good)])
    assert result.exit_code == 0, result.output
    assert "added USER-CMS-TEST" in result.output
    assert "limits computed" in result.output  # the limits were computed from the counts
    database = pdb.load(store_copy, workspaces=False)
    user = database.result("USER-CMS-TEST")
    assert [d.dataset_id for d in user.datasets] == ["SRexcess", "SRdeficit"]
    assert user.path.startswith("user/")
    # the same id again needs --replace
    result = runner.invoke(cli, ["--database", str(store_copy), "db", "add", str(good)])
    assert result.exit_code != 0 and "--replace" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("observed: 25", "observed: many"))
    result = runner.invoke(cli, ["--database", str(store_copy), "db", "add", str(bad)])
    assert result.exit_code != 0
    assert "bad.yaml, line 8, field 'signal_regions[0].observed'" in result.output
    # a database id is refused
    taken = tmp_path / "taken.yaml"
    taken.write_text(GOOD.replace("id: USER-CMS-TEST", f"id: {EFF}"))
    result = runner.invoke(cli, ["--database", str(store_copy), "db", "add", str(taken)])
    assert result.exit_code != 0 and "choose another id" in result.output
    result = runner.invoke(cli, ["--database", str(store_copy), "db", "remove", EFF])
    assert result.exit_code != 0 and "database result" in result.output
    remove_user_result(store_copy, "USER-CMS-TEST")
    with pytest.raises(KeyError):
        pdb.load(store_copy, workspaces=False).result("USER-CMS-TEST")


def _predictions(database: pdb.Database, result_id: str) -> list:
    predictor = Predictor(database, settings=PredictionSettings(best_dataset=False),
                          results=[database.result(result_id)])
    return predictor.predict(higgsinos())


def test_an_exported_result_round_trips(store_copy: Path, tmp_path: Path) -> None:
    database = pdb.load(store_copy, workspaces=False)
    original = database.result(EFF)
    text = export_result(original)
    path = tmp_path / "copy.yaml"
    path.write_text(text.replace(f"id: {EFF}", "id: USER-COPY", 1))
    add_user_result(store_copy, path)
    database = pdb.load(store_copy, workspaces=False)
    copy = database.result("USER-COPY")
    assert copy.likelihood == original.likelihood == "covariance"
    np.testing.assert_array_equal(copy.covariance, original.covariance)
    for a, b in zip(original.datasets, copy.datasets, strict=True):
        assert (a.data_id, a.observed_n, a.expected_bg, a.bg_error, a.upper_limit_fb) == (
            b.data_id, b.observed_n, b.expected_bg, b.bg_error, b.upper_limit_fb)
        for ta, tb in zip(a.topologies, b.topologies, strict=True):
            assert ta.name == tb.name and ta.axes == tb.axes
            np.testing.assert_array_equal(ta.grids["efficiency"].points,
                                          tb.grids["efficiency"].points)
            np.testing.assert_array_equal(ta.grids["efficiency"].values,
                                          tb.grids["efficiency"].values)
    ours, theirs = _predictions(database, EFF), _predictions(database, "USER-COPY")
    assert ours and len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert (a.dataset, a.txnames) == (b.dataset, b.txnames)
        assert a.xsec_fb == pytest.approx(b.xsec_fb, rel=1e-12)
        assert a.r_obs == b.r_obs and a.r_exp == b.r_exp
    # exported again, the same text (up to the id)
    assert export_result(copy).replace("USER-COPY", EFF) == text


def test_a_user_result_takes_part_in_k_and_the_critics(store_copy: Path, tmp_path: Path
                                                       ) -> None:
    database = pdb.load(store_copy, workspaces=False)
    text = export_result(database.result(EFF))
    # a newer search of the same signature at the other experiment (so combinable with the
    # database's result): the same regions and efficiencies, the background observed
    path = tmp_path / "atlas.yaml"
    path.write_text(text.replace(f"id: {EFF}", "id: USER-ATLAS-HIGGSINOS", 1)
                    .replace("analysis: CMS-SUS-20-004", "analysis: USER-ATLAS-HIGGSINOS", 1)
                    .replace("collaboration: CMS", "collaboration: ATLAS", 1))
    add_user_result(store_copy, path)
    database = pdb.load(store_copy, workspaces=False)
    evaluation = Evaluator(database)(higgsinos())
    assert math.isfinite(evaluation.K)
    ids = {p.result_id for p in evaluation.predictions}
    assert {"USER-ATLAS-HIGGSINOS", EFF} <= ids
    considered = {c["analysis"] for c in evaluation.candidates if c["candidate"]}
    assert "USER-ATLAS-HIGGSINOS" in considered
    assert evaluation.critics is not None


def test_an_import_of_the_database_keeps_user_results(store_copy: Path, tmp_path: Path,
                                                      tarball: Path,
                                                      tmp_path_factory: pytest.TempPathFactory
                                                      ) -> None:
    add_user_result(store_copy, EXAMPLES / "atlas_exot_2018_06_monojet.yaml")
    source = eff_source(tarball, tmp_path_factory)
    copy = tmp_path / "source"
    shutil.copytree(source, copy)
    info = next(copy.rglob("globalInfo.txt"))
    info.write_text(info.read_text() + "\n")  # changed: imported again
    report = pdb.import_database(copy, store_copy, workers=1)
    assert not report.removed
    database = pdb.load(store_copy, workspaces=False)
    assert len(database.result("USER-ATLAS-EXOT-2018-06-EM").datasets) == 13
