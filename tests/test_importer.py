"""Importing the subset of the real database: counts, grids, likelihood material, re-imports.

Every expectation is computed here from the text files themselves (folder names, ``dataType``
lines, ``txName`` lines, grid numbers), not from the package.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import shutil
import sqlite3
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from _helpers import EFF_RESULT, VALUE_RE, copy_store, eff_source, result_folders, run_import

from protomodels.database import Axis, Database, import_database, store_is_ready
from protomodels.database import open as open_database
from protomodels.database.records import Result

# --------------------------------------------------------------------------- helpers












def dataset_dirs(folder: Path) -> list[Path]:
    return sorted(p.parent for p in folder.glob("*/dataInfo.txt"))


def field(text: str, tag: str) -> str | None:
    m = re.search(rf"^{tag}:\s*(.*?)\s*$", text, re.M)
    return m.group(1) if m else None


def txnames(dataset: Path) -> dict[str, int]:
    """Usable txnames of a data-set folder: {txName: number of grid points in the file}."""
    found = {}
    for path in sorted(dataset.glob("*.txt")):
        if path.name in ("dataInfo.txt", "globalInfo.txt"):
            continue
        text = path.read_text()
        if "txName" not in text or ("upperLimits" not in text and "efficiencyMap" not in text):
            continue
        if (field(text, "validated") or "").lower() == "false":
            continue
        values = [float(v) for v in VALUE_RE.findall(text)]
        assert values, path
        if not any(values):
            continue
        found[field(text, "txName")] = len(values)
    return found


def data_type_of(folder: Path) -> str:
    types = {field(p.read_text(), "dataType") for p in folder.glob("*/dataInfo.txt")}
    assert len(types) == 1, (folder, types)
    return types.pop()


def assert_same_result(a: Result, b: Result) -> None:
    assert (a.result_id, a.path, a.analysis_id, a.data_type, a.likelihood, a.fallback) == (
        b.result_id, b.path, b.analysis_id, b.data_type, b.likelihood, b.fallback
    )
    assert (a.sqrts_tev, a.lumi_ifb, a.collaboration) == (b.sqrts_tev, b.lumi_ifb, b.collaboration)
    if a.covariance is None:
        assert b.covariance is None
    else:
        np.testing.assert_array_equal(a.covariance, b.covariance)
    assert [d.dataset_id for d in a.datasets] == [d.dataset_id for d in b.datasets]
    for da, dbs in zip(a.datasets, b.datasets, strict=True):
        assert (da.data_id, da.data_type, da.observed_n, da.expected_bg, da.bg_error,
                da.upper_limit_fb, da.expected_upper_limit_fb) == (
            dbs.data_id, dbs.data_type, dbs.observed_n, dbs.expected_bg, dbs.bg_error,
            dbs.upper_limit_fb, dbs.expected_upper_limit_fb)
        assert [t.name for t in da.topologies] == [t.name for t in dbs.topologies]
        for ta, tb in zip(da.topologies, dbs.topologies, strict=True):
            assert ta.axes == tb.axes
            assert ta.constraint_text == tb.constraint_text
            assert sorted(ta.grids) == sorted(tb.grids)
            for kind in ta.grids:
                np.testing.assert_array_equal(ta.grids[kind].points, tb.grids[kind].points)
                np.testing.assert_array_equal(ta.grids[kind].values, tb.grids[kind].values)
    assert [(w.file_name, w.missing, w.full) for w in a.pyhf] == [
        (w.file_name, w.missing, w.full) for w in b.pyhf
    ]
    for wa, wb in zip(a.pyhf, b.pyhf, strict=True):
        assert wa.workspace == wb.workspace


def load(store: Path) -> Database:
    return open_database(store, build=False)


@pytest.fixture(scope="module")
def first_import(subset_source: Path, tmp_path_factory: pytest.TempPathFactory):
    """(report, warnings, store) of a fresh import of the subset."""
    out = tmp_path_factory.mktemp("first-import") / "store.sqlite"
    report, caught = run_import(subset_source, out, workers=1)
    return report, caught, out


@pytest.fixture(scope="module")
def subset_db(subset_store: Path) -> Database:
    return load(subset_store)


# --------------------------------------------------------------------------- first import


def test_every_result_is_imported_or_skipped_with_reason(subset_source: Path, first_import) -> None:
    report, _, out = first_import
    folders = result_folders(subset_source)
    assert len(folders) == len(list(subset_source.rglob("globalInfo.txt"))) == 7
    assert report.errors == []
    skipped = [path for path, _ in report.skipped]
    assert sorted(report.imported + skipped) == folders
    assert len(set(report.imported) | set(skipped)) == len(folders)
    assert all(reason.strip() for _, reason in report.skipped)
    assert report.unchanged == []
    assert report.removed == []
    assert report.no_op is False
    assert report.database_version == (subset_source / "version").read_text().strip()
    assert store_is_ready(out)


def test_results_are_in_source_order(subset_source: Path, subset_db: Database) -> None:
    assert [r.path for r in subset_db.results] == result_folders(subset_source)
    assert [r.result_id for r in subset_db.results] == [
        Path(p).name for p in result_folders(subset_source)
    ]


def test_datasets_and_topologies_per_result_match_the_files(
    subset_source: Path, subset_db: Database
) -> None:
    assert len(subset_db) == 7
    for rel in result_folders(subset_source):
        folder = subset_source / rel
        r = subset_db.result(folder.name)
        assert r.path == rel
        dirs = dataset_dirs(folder)
        assert len(r.datasets) == len(dirs), rel
        assert sorted(d.dataset_id for d in r.datasets) == sorted(d.name for d in dirs), rel
        for ds in r.datasets:
            expected = txnames(folder / ds.dataset_id)
            assert [t.name for t in ds.topologies] == sorted(expected), (rel, ds.dataset_id)
            for t in ds.topologies:
                # every grid point of the file (all grid kinds) is in the store
                assert sum(g.n_points for g in t.grids.values()) == expected[t.name], t.source
                assert t.source == f"{rel}/{ds.dataset_id}/{t.name}.txt"


def test_counts_match_folder_names_and_data_types(subset_source: Path, subset_db: Database) -> None:
    sqrts: dict[str, int] = {}
    collab: dict[str, int] = {}
    dtype: dict[str, int] = {}
    n_datasets = n_topologies = 0
    for rel in result_folders(subset_source):
        energy, experiment, _ = rel.split("/")
        key = f"{int(energy.removesuffix('TeV'))} TeV"
        sqrts[key] = sqrts.get(key, 0) + 1
        collab[experiment] = collab.get(experiment, 0) + 1
        t = data_type_of(subset_source / rel)
        dtype[t] = dtype.get(t, 0) + 1
        for d in dataset_dirs(subset_source / rel):
            n_datasets += 1
            n_topologies += len(txnames(d))
    counts = subset_db.counts()
    assert counts["sqrts"] == sqrts == {"13 TeV": 5, "8 TeV": 2}
    assert counts["collaboration"] == collab
    assert counts["data_type"] == dtype
    assert counts["totals"]["results"] == 7
    assert counts["totals"]["datasets"] == n_datasets
    assert counts["totals"]["topologies"] == n_topologies


def test_result_metadata_from_global_info(subset_source: Path, subset_db: Database) -> None:
    for rel in result_folders(subset_source):
        text = (subset_source / rel / "globalInfo.txt").read_text()
        r = subset_db.result(Path(rel).name)
        assert r.analysis_id == field(text, "id")
        assert r.lumi_ifb == pytest.approx(float(field(text, "lumi").split("/")[0]))
        assert r.sqrts_tev == pytest.approx(float(field(text, "sqrts").split("*")[0]))
        assert r.url == field(text, "url")
        expected_type = "displaced" if field(text, "type") == "displaced" else "prompt"
        assert r.signature == expected_type


# --------------------------------------------------------------------------- grids


def _numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"([-+]?\d+\.?\d*(?:[eE][-+]?\d+)?)\s*\*", line)]


def test_ul_grid_matches_the_text(subset_source: Path, subset_db: Database) -> None:
    path = subset_source / "13TeV/CMS/CMS-SUS-19-006/data/T2tt.txt"
    lines = path.read_text().splitlines()
    start = next(i for i, s in enumerate(lines) if s.startswith("upperLimits:"))
    end = next(i for i, s in enumerate(lines) if s.startswith("expectedUpperLimits:"))
    observed = lines[start:end]
    first = _numbers(observed[0].split(":", 1)[1])
    last = _numbers(observed[-1])
    assert observed[0].rstrip().endswith("*pb],")
    assert observed[-1].rstrip().endswith("*pb]]")
    expected_first = _numbers(lines[end].split(":", 1)[1])
    expected_last = _numbers(next(s for s in reversed(lines) if s.strip()))

    (topo,) = [t for d in subset_db.result("CMS-SUS-19-006").datasets for t in d.topologies
               if t.name == "T2tt"]
    # T2tt = [[['t']],[['t']]]: nodes 1 > 3 (branch 0) and 2 > 5 (branch 1)
    assert topo.axes == (Axis(1, "mass"), Axis(3, "mass"), Axis(2, "mass"), Axis(5, "mass"))
    ul = topo.grids["upper_limit"]
    assert ul.n_points == len(observed)
    np.testing.assert_allclose(ul.points[0], first[:4], rtol=1e-12)
    np.testing.assert_allclose(ul.points[-1], last[:4], rtol=1e-12)
    assert ul.values[0] == pytest.approx(first[4] * 1000.0, rel=1e-12)  # pb -> fb
    assert ul.values[-1] == pytest.approx(last[4] * 1000.0, rel=1e-12)
    exp = topo.grids["expected_upper_limit"]
    np.testing.assert_allclose(exp.points[0], expected_first[:4], rtol=1e-12)
    np.testing.assert_allclose(exp.points[-1], expected_last[:4], rtol=1e-12)
    assert exp.values[0] == pytest.approx(expected_first[4] * 1000.0, rel=1e-12)
    assert exp.values[-1] == pytest.approx(expected_last[4] * 1000.0, rel=1e-12)


def test_graph_notation_grid_with_width(subset_source: Path, subset_db: Database) -> None:
    text = (subset_source / "13TeV/CMS/CMS-EXO-19-012/data/TRV1jj.txt").read_text()
    body = text.split("upperLimits:", 1)[1]
    points = re.findall(r"\[\[([^\[\]]+)\],\s*([0-9.eE+-]+)\*pb\]", body)
    (topo,) = subset_db.result("CMS-EXO-19-012").datasets[0].topologies
    assert topo.name == "TRV1jj"
    # dataMap: {0: (1, 'mass', GeV), 1: (1, 'totalwidth', GeV)}
    assert topo.axes == (Axis(1, "mass"), Axis(1, "totalwidth"))
    ul = topo.grids["upper_limit"]
    assert sorted(topo.grids) == ["upper_limit"]
    assert ul.n_points == len(points)
    for i in (0, -1):
        coords, value = points[i]
        np.testing.assert_allclose(ul.points[i], [float(c) for c in coords.split(",")], rtol=1e-12)
        assert ul.values[i] == pytest.approx(float(value) * 1000.0, rel=1e-12)


def test_inclusive_branch_grid(subset_source: Path, subset_db: Database) -> None:
    r = subset_db.result("CMS-EXO-13-006-eff-trim")
    text = (subset_source / r.path / "c000/THSCPM4.txt").read_text()
    first_line = text.split("efficiencyMap:", 1)[1].splitlines()[0]
    nums = _numbers(first_line)  # m, m, w (with units)
    value = float(re.search(r"\]\],\s*([0-9.eE+-]+)\]", first_line).group(1))
    (topo,) = [t for t in r.datasets[0].topologies if t.name == "THSCPM4"]
    assert r.datasets[0].dataset_id == "c000"
    eff = topo.grids["efficiency"]
    assert eff.points.shape[1] == 3
    np.testing.assert_allclose(eff.points[0], nums, rtol=1e-12)
    assert eff.values[0] == pytest.approx(value, rel=1e-12)
    assert [a.attribute for a in topo.axes] == ["mass", "mass", "totalwidth"]
    assert topo.axes[2].node == topo.axes[1].node


# --------------------------------------------------------------------------- likelihood material


@pytest.fixture(scope="module")
def eff_db(tarball: Path, tmp_path_factory: pytest.TempPathFactory):
    root = eff_source(tarball, tmp_path_factory)
    out = tmp_path_factory.mktemp("eff-store") / "store.sqlite"
    report, _ = run_import(root, out, workers=1)
    assert report.errors == []
    return root, load(out)


def test_covariance_has_one_row_per_dataset_and_matches_the_file(eff_db) -> None:
    root, db = eff_db
    folder = root / EFF_RESULT
    text = (folder / "globalInfo.txt").read_text()
    matrix = np.asarray(ast.literal_eval(field(text, "covariance")), dtype=float)
    order = ast.literal_eval("(" + field(text, "datasetOrder") + ")")
    n = len(dataset_dirs(folder))
    r = db.result("CMS-SUS-20-004-eff")
    assert r.data_type == "efficiencyMap"
    assert len(r.datasets) == n == len(order) == 22
    assert r.covariance is not None
    assert r.covariance.shape == (n, n)
    np.testing.assert_array_equal(r.covariance, matrix)
    assert [d.data_id for d in r.datasets] == list(order)
    assert r.likelihood == "covariance"
    sr1 = r.datasets[0]
    info = (folder / "SR1/dataInfo.txt").read_text()
    assert sr1.observed_n == float(field(info, "observedN"))
    assert sr1.expected_bg == float(field(info, "expectedBG"))
    assert sr1.bg_error == float(field(info, "bgError"))
    assert sr1.third_moment == float(field(info, "thirdMoment"))
    assert sr1.upper_limit_fb == float(field(info, "upperLimit").removesuffix("*fb"))


def test_dataset_order_continued_over_lines(
    tarball: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    # 'datasetOrder: "SR1",\n"SR2",...' is the same value as on one line (lines ending in ','
    # continue); the result must import with the same data sets in the same order
    root = tmp_path / "db"
    shutil.copytree(eff_source(tarball, tmp_path_factory), root)
    info = root / EFF_RESULT / "globalInfo.txt"
    text = info.read_text()
    line = re.search(r"^datasetOrder:.*$", text, re.M).group()
    order = list(ast.literal_eval("(" + line.split(":", 1)[1] + ")"))
    info.write_text(text.replace(line, line.replace('", "', '",\n"')))
    assert len(info.read_text().splitlines()) == len(text.splitlines()) + len(order) - 1
    report, _ = run_import(root, tmp_path / "store.sqlite", workers=1)
    assert report.errors == []
    assert report.imported == [EFF_RESULT]
    r = load(tmp_path / "store.sqlite").result("CMS-SUS-20-004-eff")
    assert r.dataset_order == tuple(order)
    assert [d.data_id for d in r.datasets] == order


def test_pyhf_workspaces_are_loaded(subset_source: Path, subset_db: Database) -> None:
    rel = "13TeV/ATLAS/ATLAS-SUSY-2018-14-eff"
    text = (subset_source / rel / "globalInfo.txt").read_text()
    mapping = ast.literal_eval(field(text, "jsonFiles"))
    r = subset_db.result("ATLAS-SUSY-2018-14-eff")
    assert len(r.pyhf) == len(mapping) == 3
    assert [w.file_name for w in r.pyhf] == list(mapping)
    for w in r.pyhf:
        assert w.missing is False
        assert w.full is False
        assert isinstance(w.workspace, dict)
        assert "channels" in w.workspace
        assert w.workspace == json.loads((subset_source / rel / w.file_name).read_text())
        assert [c.smodels for c in w.channels] == mapping[w.file_name]
    assert r.likelihood == "pyhf"
    assert r.fallback is None


def test_missing_workspace_has_fallback_and_warning(subset_source: Path, first_import) -> None:
    report, caught, out = first_import
    rel = "13TeV/ATLAS/ATLAS-SUSY-2019-08-eff"
    assert not (subset_source / rel / "BkgOnly.json").exists()
    r = load(out).result("ATLAS-SUSY-2019-08-eff")
    (w,) = r.pyhf
    assert w.file_name == "BkgOnly.json"
    assert w.missing is True
    assert w.workspace is None
    assert len(w.channels) == 14
    assert r.fallback
    assert r.likelihood in ("covariance", "single_region")
    assert [m for m in report.warnings if "BkgOnly.json" in m and rel in m]
    assert [m for m in caught if "BkgOnly.json" in m]
    # the only missing file of the subset gives the only warning about JSON files
    assert all("BkgOnly.json" in m for m in report.warnings if "json" in m.lower())


# --------------------------------------------------------------------------- re-imports


def test_reimport_of_the_same_folder_imports_nothing(
    subset_source: Path, subset_store: Path, subset_db: Database, tmp_path: Path
) -> None:
    out = copy_store(subset_store, tmp_path)
    report, _ = run_import(subset_source, out, workers=1)
    assert report.imported == []
    assert report.unchanged == result_folders(subset_source)
    assert report.errors == [] and report.removed == [] and report.skipped == []
    again = load(out)
    for a, b in zip(again.results, subset_db.results, strict=True):
        assert_same_result(a, b)


def test_tarball_reimport_is_a_no_op(subset_source: Path, tmp_path: Path) -> None:
    tarball = tmp_path / "db.tar.xz"
    with tarfile.open(tarball, "w:xz", preset=0) as tar:
        tar.add(subset_source, arcname="smodels-database")
    out = tmp_path / "store.sqlite"
    first, _ = run_import(tarball, out, workers=1)
    folders = result_folders(subset_source)
    assert first.no_op is False
    assert sorted(first.imported) == folders
    assert first.errors == []
    assert first.database_version == (subset_source / "version").read_text().strip()
    meta = load(out).meta
    assert meta["source_checksum"] == hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert meta["complete"] == "1"

    second, _ = run_import(tarball, out, workers=1)
    assert second.no_op is True
    assert second.imported == []
    assert second.unchanged == folders
    assert second.errors == [] and second.removed == []
    assert len(load(out)) == len(folders)


def test_interrupted_import_resumes(
    subset_source: Path, subset_db: Database, tmp_path: Path
) -> None:
    out = tmp_path / "store.sqlite"
    folders = result_folders(subset_source)
    seen: list[str] = []

    def progress(done: int, total: int, path: str) -> None:
        assert total == len(folders)
        seen.append(path)
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import_database(subset_source, out, workers=1, progress=progress)
    assert seen == folders[:3]
    assert not store_is_ready(out)
    partial = load(out)
    assert [r.path for r in partial.results] == folders[:3]
    for r in partial.results:  # complete results, not half-written ones
        assert_same_result(r, subset_db.result(r.result_id))

    report, _ = run_import(subset_source, out, workers=1)
    assert report.unchanged == folders[:3]
    assert report.imported == folders[3:]
    assert report.errors == []
    assert store_is_ready(out)
    final = load(out)
    assert [r.result_id for r in final.results] == [r.result_id for r in subset_db.results]
    for a, b in zip(final.results, subset_db.results, strict=True):
        assert_same_result(a, b)
    assert final.counts() == subset_db.counts()


def test_changed_file_reimports_only_that_result(
    source_copy: Path, subset_store: Path, tmp_path: Path
) -> None:
    out = copy_store(subset_store, tmp_path / "store")
    rel = "13TeV/ATLAS/ATLAS-SUSY-2018-14-eff"
    info = source_copy / rel / "SRee/dataInfo.txt"
    text = info.read_text()
    assert re.search(r"^upperLimit: 0\.0222\*fb$", text, re.M)
    info.write_text(re.sub(r"^upperLimit: .*$", "upperLimit: 0.0333*pb", text, flags=re.M))

    report, _ = run_import(source_copy, out, workers=1)
    assert report.imported == [rel]
    assert report.unchanged == [p for p in result_folders(source_copy) if p != rel]
    assert report.errors == []
    sree = next(d for d in load(out).result("ATLAS-SUSY-2018-14-eff").datasets
                if d.dataset_id == "SRee")
    assert sree.upper_limit_fb == pytest.approx(33.3)


def test_removed_result_is_removed_from_the_store(
    subset_source: Path, source_copy: Path, subset_store: Path, subset_db: Database,
    tmp_path: Path,
) -> None:
    out = copy_store(subset_store, tmp_path / "store")
    rel = "13TeV/CMS/CMS-EXO-19-012"
    shutil.rmtree(source_copy / rel)
    report, _ = run_import(source_copy, out, workers=1)
    assert report.removed == [rel]
    assert report.imported == []
    assert report.unchanged == [p for p in result_folders(subset_source) if p != rel]
    db = load(out)
    assert "CMS-EXO-19-012" not in [r.result_id for r in db.results]
    assert len(db) == 6
    with pytest.raises(KeyError):
        db.result("CMS-EXO-19-012")
    for r in db.results:
        assert_same_result(r, subset_db.result(r.result_id))
    with sqlite3.connect(out) as conn:
        assert conn.execute("SELECT COUNT(*) FROM topologies WHERE result_id=?",
                            ("CMS-EXO-19-012",)).fetchone() == (0,)
        orphans = conn.execute(
            "SELECT COUNT(*) FROM grid_points "
            "WHERE points_key NOT IN (SELECT points_key FROM grids)"
        ).fetchone()
        assert orphans == (0,)


# --------------------------------------------------------------------------- select


def _pretty_names(root: Path) -> dict[str, str]:
    data = json.loads((root / "smodels-analyses.json").read_text())
    names = {}
    for entry in data["analyses"].values():
        for impl in entry.get("implementation", []):
            names[impl.strip("/")] = entry.get("prettyName") or ""
    return names


def test_select_filters(subset_source: Path, subset_db: Database) -> None:
    folders = result_folders(subset_source)

    def ids(results: list[Result]) -> list[str]:
        return [r.result_id for r in results]

    def expect(pred) -> list[str]:  # noqa: ANN001
        return [Path(p).name for p in folders if pred(p)]

    dtype = {p: data_type_of(subset_source / p) for p in folders}
    names = {
        p: {n for d in dataset_dirs(subset_source / p) for n in txnames(d)} for p in folders
    }
    pretty = _pretty_names(subset_source)
    superseded = {
        p: field((subset_source / p / "globalInfo.txt").read_text(), "supersededBy")
        for p in folders
    }

    assert ids(subset_db.select()) == expect(lambda p: True)
    assert ids(subset_db.select(sqrts=8)) == expect(lambda p: p.startswith("8TeV/"))
    assert ids(subset_db.select(sqrts=13.0)) == expect(lambda p: p.startswith("13TeV/"))
    assert subset_db.select(sqrts=7) == []
    for alias in ("ul", "UL", "upperLimit"):
        assert ids(subset_db.select(data_type=alias)) == expect(lambda p: dtype[p] == "upperLimit")
    for alias in ("em", "eff", "efficiencyMap"):
        assert ids(subset_db.select(data_type=alias)) == expect(
            lambda p: dtype[p] == "efficiencyMap"
        )
    for name in ("CMS", "cms", "ATLAS"):
        assert ids(subset_db.select(collaboration=name)) == expect(
            lambda p, name=name: p.split("/")[1] == name.upper()
        )
    assert ids(subset_db.select(topology="T2tt")) == expect(lambda p: "T2tt" in names[p])
    assert ids(subset_db.select(topology="T2bb")) == expect(lambda p: "T2bb" in names[p])
    assert len(subset_db.select(topology="T2bb")) == 2
    assert subset_db.select(topology="NoSuchTx") == []
    assert ids(subset_db.select(grep="exo")) == expect(lambda p: "EXO" in p.split("/")[2])
    assert ids(subset_db.select(grep=r"^CMS-SUS-(19|20)")) == ["CMS-SUS-19-006", "CMS-SUS-20-004"]
    assert ids(subset_db.select(grep="resonance")) == expect(lambda p: "resonance" in pretty[p])
    assert ids(subset_db.select(superseded=False)) == expect(lambda p: not superseded[p])
    assert ids(subset_db.select(sqrts=13, data_type="em", collaboration="ATLAS")) == [
        "ATLAS-SUSY-2018-14-eff", "ATLAS-SUSY-2019-08-eff"
    ]
    assert ids(subset_db.select(ids=["CMS-SUS-19-006", "ATLAS-SUSY-2013-05"])) == [
        "CMS-SUS-19-006", "ATLAS-SUSY-2013-05"
    ]


def test_unknown_result_id_suggests_close_ids(subset_db: Database) -> None:
    with pytest.raises(KeyError, match="CMS-SUS-19-006"):
        subset_db.result("cms-sus-19")
    with pytest.raises(KeyError, match="NO-SUCH"):
        subset_db.result("NO-SUCH")
