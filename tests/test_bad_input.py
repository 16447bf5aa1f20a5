"""Malformed database files: each one is reported with file, field, line and a hint; every other
result is still imported; nothing already imported is lost.

Each case breaks one real file of a writable copy of the subset database.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _helpers import EFF_RESULT, copy_store, eff_source, result_folders, run_import
from click.testing import CliRunner

from protomodels.cli import cli
from protomodels.database import import_database, store_is_ready
from protomodels.database import open as open_database
from protomodels.exceptions import DatabaseFormatError


def line_of(path: Path, prefix: str) -> int:
    """1-based number of the first line of ``path`` starting with ``prefix``."""
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith(prefix):
            return i
    raise AssertionError(f"{prefix!r} not in {path}")


# --------------------------------------------------------------------------- the breakages
# each returns (result folder, broken file, field, expected line or None, first line, last line)


def grid_syntax_error(src: Path):
    rel = "13TeV/ATLAS/ATLAS-SUSY-2018-14-eff"
    path = src / rel / "SRee/TSelSelDisp.txt"
    lines = path.read_text().split("\n")
    start = line_of(path, "efficiencyMap:")
    # every point line ends in "]," except the last one of the grid
    end = next(i for i in range(start, len(lines) + 1) if not lines[i - 1].rstrip().endswith("],"))
    assert lines[end - 1].rstrip().endswith("]]")
    middle = (start + end) // 2
    assert start < middle < end
    j = lines[middle - 1].index("]]")
    lines[middle - 1] = lines[middle - 1][:j] + lines[middle - 1][j + 1 :]
    path.write_text("\n".join(lines))
    return rel, path, "efficiencyMap", None, start, end


def missing_required_field(src: Path):
    rel = "13TeV/ATLAS/ATLAS-SUSY-2018-14-eff"
    path = src / rel / "SRmm/dataInfo.txt"
    text = path.read_text()
    assert re.search(r"^observedN:", text, re.M)
    path.write_text(re.sub(r"^observedN:.*\n", "", text, flags=re.M))
    return rel, path, "observedN", None, None, None


def unknown_particle(src: Path):
    rel = "8TeV/ATLAS/ATLAS-SUSY-2013-05"
    path = src / rel / "data/T2bb.txt"
    text = path.read_text()
    assert "constraint: [[['b']],[['b']]]" in text
    path.write_text(
        text.replace("constraint: [[['b']],[['b']]]", "constraint: [[['squark']],[['b']]]")
    )
    line = line_of(path, "constraint:")
    return rel, path, "constraint", line, line, line


def nan_in_grid(src: Path):
    rel = "13TeV/CMS/CMS-EXO-19-012"
    path = src / rel / "data/TRV1jj.txt"
    text = path.read_text()
    old = "[[1800.0,18.0],2.182359E-01*pb]"
    assert text.count(old) == 1
    path.write_text(text.replace(old, "[[1800.0,18.0],nan*pb]"))
    start = line_of(path, "upperLimits:")
    # the line holding the nan (the grid goes on over several lines), not the field's first one
    (line,) = [i for i, s in enumerate(path.read_text().splitlines(), 1) if "nan*pb" in s]
    assert line > start
    return rel, path, "upperLimits", line, line, line


def covariance_wrong_dimension(src: Path):
    rel = EFF_RESULT
    path = src / rel / "globalInfo.txt"
    lines = path.read_text().split("\n")
    (i,) = [k for k, s in enumerate(lines) if s.startswith("covariance:")]
    cut = lines[i].rstrip().rindex("], [")
    lines[i] = lines[i][: cut + 1] + "]"
    path.write_text("\n".join(lines))
    return rel, path, "covariance", i + 1, i + 1, i + 1


def _replace_line(path: Path, prefix: str, new: str) -> int:
    """Replace the line of ``path`` starting with ``prefix`` by ``new``; its 1-based number."""
    lines = path.read_text().split("\n")
    (i,) = [k for k, s in enumerate(lines) if s.startswith(prefix)]
    lines[i] = new
    path.write_text("\n".join(lines))
    return i + 1


def _signal_region_value(tag: str, value: str, region: str = "SR3"):
    """A dataInfo.txt of CMS-SUS-20-004-eff (an efficiency map with a covariance) whose
    ``tag`` gets ``value``."""

    def breakage(src: Path):
        path = src / EFF_RESULT / region / "dataInfo.txt"
        assert re.search(rf"^{tag}:", path.read_text(), re.M)
        line = _replace_line(path, f"{tag}:", f"{tag}: {value}")
        return EFF_RESULT, path, tag, line, line, line

    return breakage


def _covariance_edit(old: str, new: str):
    def breakage(src: Path):
        path = src / EFF_RESULT / "globalInfo.txt"
        text = path.read_text()
        assert text.count(old) == 1
        path.write_text(text.replace(old, new))
        line = line_of(path, "covariance:")
        return EFF_RESULT, path, "covariance", line, line, line

    return breakage


def covariance_without_dataset_order(src: Path):
    path = src / EFF_RESULT / "globalInfo.txt"
    text = path.read_text()
    path.write_text(re.sub(r"^datasetOrder:.*\n", "", text, flags=re.M))
    line = line_of(path, "covariance:")
    return EFF_RESULT, path, "covariance", line, line, line


def dataset_order_twice(src: Path):
    path = src / EFF_RESULT / "globalInfo.txt"
    text = path.read_text()
    assert text.count('"SR2", "SR3"') == 1
    path.write_text(text.replace('"SR2", "SR3"', '"SR2", "SR2"'))
    line = line_of(path, "datasetOrder:")
    return EFF_RESULT, path, "datasetOrder", line, line, line


def attribute_in_grid(src: Path):
    # a value the JSON reader rejects and Python's literal_eval reports as
    # "<ast.Attribute object at 0x...>": the message must quote it as written
    rel = "13TeV/CMS/CMS-EXO-19-012"
    path = src / rel / "data/TRV1jj.txt"
    text = path.read_text()
    old = "[[1800.0,90.0],3.354538E-01*pb]"
    assert text.count(old) == 1
    path.write_text(text.replace(old, "[[1800.0,90.0],np.nan*pb]"))
    (line,) = [i for i, s in enumerate(path.read_text().splitlines(), 1) if "np.nan" in s]
    return rel, path, "upperLimits", line, line, line


def negative_width_in_flat_grid(src: Path):
    # graph notation: the grid points are flat and dataMap says coordinate 1 is a width
    rel = "13TeV/CMS/CMS-EXO-19-012"
    path = src / rel / "data/TRV1jj.txt"
    text = path.read_text()
    old = "[[1800.0,18.0],2.182359E-01*pb]"
    assert text.count(old) == 1 and "'totalwidth'" in text
    path.write_text(text.replace(old, "[[1800.0,-18.0],2.182359E-01*pb]"))
    (line,) = [i for i, s in enumerate(path.read_text().splitlines(), 1) if "-18.0]" in s]
    return rel, path, "upperLimits", line, line, line


def negative_lumi(src: Path):
    rel = "8TeV/ATLAS/ATLAS-SUSY-2013-05"
    path = src / rel / "globalInfo.txt"
    line = _replace_line(path, "lumi:", "lumi: -20.1/fb")
    return rel, path, "lumi", line, line, line


CASES: dict[str, Callable] = {
    "grid-syntax": grid_syntax_error,
    "missing-observedN": missing_required_field,
    "unknown-particle": unknown_particle,
    "nan-in-grid": nan_in_grid,
    "covariance-dimension": covariance_wrong_dimension,
    # issue 17: every number of a signal region is checked at import
    "negative-observedN": _signal_region_value("observedN", "-3"),
    "fractional-negative-observedN": _signal_region_value("observedN", "-0.5"),
    "negative-expectedBG": _signal_region_value("expectedBG", "-1.2"),
    "zero-bgError": _signal_region_value("bgError", "0"),
    "negative-bgError": _signal_region_value("bgError", "-0.4"),
    "nan-bgError": _signal_region_value("bgError", "nan"),
    "inf-observedN": _signal_region_value("observedN", "1e400"),
    "none-observedN": _signal_region_value("observedN", "None"),
    "attribute-observedN": _signal_region_value("observedN", "np.nan"),
    "word-expectedBG": _signal_region_value("expectedBG", "twelve"),
    "zero-upperLimit": _signal_region_value("upperLimit", "0*fb"),
    "negative-expectedUpperLimit": _signal_region_value("expectedUpperLimit", "-0.2*fb"),
    "inf-thirdMoment": _signal_region_value("thirdMoment", "inf"),
    "large-thirdMoment": _signal_region_value("thirdMoment", "1e6", region="SR1"),
    "negative-lumi": negative_lumi,
    "attribute-in-grid": attribute_in_grid,
    "negative-width-in-flat-grid": negative_width_in_flat_grid,
    # issue 17: the combination material
    "covariance-without-datasetOrder": covariance_without_dataset_order,
    "datasetOrder-twice": dataset_order_twice,
    "covariance-not-positive-definite": _covariance_edit("[[174.5, 6.601,", "[[-174.5, 6.601,"),
    "covariance-not-symmetric": _covariance_edit("[[174.5, 6.601,", "[[174.5, 60.601,"),
    "covariance-word": _covariance_edit("[[174.5, 6.601,", "[[174.5, x,"),
    "covariance-string": _covariance_edit("[[174.5, 6.601,", "[[174.5, '6.601',"),
}


@pytest.fixture
def src(source_copy: Path, tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The writable copy of the subset, plus CMS-SUS-20-004-eff (which has a covariance)."""
    shutil.copytree(eff_source(tarball, tmp_path_factory) / EFF_RESULT, source_copy / EFF_RESULT)
    return source_copy


#: words the problem text of each case must contain
NAMED = {
    "grid-syntax": ["grid"],
    "missing-observedN": ["observedN", "missing"],
    "unknown-particle": ["squark"],
    "nan-in-grid": ["grid point 1", "non-finite"],
    "covariance-dimension": ["21", "22"],
    "negative-observedN": ["observedN is -3", "must be >= 0", "number of observed events"],
    "fractional-negative-observedN": ["observedN is -0.5", "must be >= 0"],
    "negative-expectedBG": ["expectedBG is -1.2", "must be >= 0"],
    "zero-bgError": ["bgError is 0", "must be > 0"],
    "negative-bgError": ["bgError is -0.4", "must be > 0"],
    "nan-bgError": ["'nan' is not a finite number"],
    "inf-observedN": ["'1e400' is not a finite number"],
    "none-observedN": ["'observedN: None'", "required"],
    "attribute-observedN": ["'np.nan' is not a finite number (cannot understand 'np.nan')"],
    "word-expectedBG": ["'twelve' is not a number", "unknown name 'twelve'"],
    "zero-upperLimit": ["upperLimit is 0 ('0*fb')", "must be > 0"],
    "negative-expectedUpperLimit": ["expectedUpperLimit is -0.2", "must be > 0"],
    "inf-thirdMoment": ["'inf' is not a finite number"],
    "large-thirdMoment": ["thirdMoment 1e+06 is too large", "variance 174.5"],
    "negative-lumi": ["lumi is -20.1", "must be > 0"],
    "attribute-in-grid": ["grid entry 'np.nan' is not a number"],
    "negative-width-in-flat-grid": ["grid point 1 has a negative width -18"],
    "covariance-without-datasetOrder": ["22 data sets", "without datasetOrder", "order"],
    "datasetOrder-twice": ["'SR2' more than once"],
    "covariance-not-positive-definite": ["not positive definite", "eigenvalues from -"],
    "covariance-not-symmetric": ["not symmetric", "(SR1, SR2) is 60.601", "(SR2, SR1) is 6.601"],
    "covariance-word": ["not a numeric matrix", "unknown name 'x'"],
    "covariance-string": ["row 1, column 2 is '6.601', not a number"],
}

#: text no message may contain: Python or NumPy internals
INTERNALS = ("np.float64", "float64(", "<ast.", "object at 0x", "Traceback", "array(")


#: the cases also checked against the whole subset (the others on the small database below)
ON_THE_SUBSET = [
    "grid-syntax", "missing-observedN", "unknown-particle", "nan-in-grid", "covariance-dimension",
    "negative-observedN", "covariance-without-datasetOrder",
]


@pytest.mark.parametrize("case", ON_THE_SUBSET)
def test_malformed_file_is_reported_and_others_imported(
    case: str, src: Path, tmp_path: Path
) -> None:
    rel, path, tag, line, first, last = CASES[case](src)
    out = tmp_path / "store.sqlite"
    report, _ = run_import(src, out, workers=1)

    assert [p for p, _ in report.errors] == [rel]
    (err,) = [e for _, e in report.errors]
    assert isinstance(err, DatabaseFormatError)
    assert err.path == str(path)
    assert err.field == tag
    if line is not None:
        assert err.line == line
    if first is not None:
        assert err.line is not None
        assert first <= err.line <= last
    assert err.hint.strip()
    for word in NAMED[case]:
        assert word in err.problem
    assert str(path) in str(err)
    for internal in INTERNALS:
        assert internal not in str(err)

    others = [p for p in result_folders(src) if p != rel]
    assert len(others) == 7
    assert sorted(report.imported) == others
    db = open_database(out, build=False)
    assert [r.path for r in db.results] == others
    assert [(p, kind) for p, kind, _ in db.problems] == [(rel, "error")]
    assert not store_is_ready(out)  # an import with errors is not complete

    # strict: the same error is raised (only the broken result is read, to keep this fast)
    with pytest.raises(DatabaseFormatError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import_database(src, tmp_path / "strict.sqlite", workers=1, strict=True, only=[rel])
    strict = info.value
    assert (strict.path, strict.field, strict.line, strict.problem) == (
        err.path, err.field, err.line, err.problem
    )


def test_strict_import_keeps_what_was_written_before_the_error(
    src: Path, tmp_path: Path
) -> None:
    rel, path, *_ = nan_in_grid(src)  # 13TeV/CMS/CMS-EXO-19-012
    folders = result_folders(src)
    before = folders[: folders.index(rel)]
    out = tmp_path / "store.sqlite"
    with pytest.raises(DatabaseFormatError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import_database(src, out, workers=1, strict=True)
    assert info.value.path == str(path)
    assert [r.path for r in open_database(out, build=False).results] == before


def test_missing_json_file_is_a_warning_with_fallback(
    source_copy: Path, subset_store: Path, tmp_path: Path
) -> None:
    src = source_copy
    rel = "13TeV/ATLAS/ATLAS-SUSY-2018-14-eff"
    json_file = src / rel / "SRmm_bkgonly.json"
    json_file.rename(json_file.with_name("SRmm_bkgonly.renamed"))
    # start from the imported subset: only the changed result is read again
    out = copy_store(subset_store, tmp_path / "store")
    report, caught = run_import(src, out, workers=1)

    assert report.errors == []
    assert report.imported == [rel]
    assert report.unchanged == [p for p in result_folders(src) if p != rel]
    assert [w for w in report.warnings if "SRmm_bkgonly.json" in w and rel in w]
    assert [w for w in caught if "SRmm_bkgonly.json" in w]
    r = open_database(out, build=False).result("ATLAS-SUSY-2018-14-eff")
    missing = {w.file_name: w.missing for w in r.pyhf}
    assert missing == {
        "SRee_bkgonly.json": False, "SRmm_bkgonly.json": True, "Comb_bkgonly.json": False
    }
    (ws,) = [w for w in r.pyhf if w.missing]
    assert ws.workspace is None
    assert r.fallback
    assert store_is_ready(out)


def test_nothing_already_imported_is_lost(
    src: Path, subset_store: Path, tmp_path: Path
) -> None:
    # the good copy is imported first (onto the imported subset: only the -eff result is new)
    out = copy_store(subset_store, tmp_path / "store")
    first, _ = run_import(src, out, workers=1)
    assert first.errors == []
    assert first.imported == [EFF_RESULT]
    assert store_is_ready(out)
    before = open_database(out, build=False)

    rel, path, tag, *_ = nan_in_grid(src)
    report, _ = run_import(src, out, workers=1)
    assert [p for p, _ in report.errors] == [rel]
    assert report.errors[0][1].path == str(path)
    assert report.imported == []
    assert report.removed == []
    assert report.unchanged == [p for p in result_folders(src) if p != rel]

    after = open_database(out, build=False)
    assert [r.path for r in after.results] == [r.path for r in before.results]
    old = before.result("CMS-EXO-19-012")
    kept = after.result("CMS-EXO-19-012")
    (t_old,) = old.datasets[0].topologies
    (t_kept,) = kept.datasets[0].topologies
    assert t_kept.name == t_old.name == "TRV1jj"
    g_old, g_kept = t_old.grids["upper_limit"], t_kept.grids["upper_limit"]
    np.testing.assert_array_equal(g_kept.points, g_old.points)
    np.testing.assert_array_equal(g_kept.values, g_old.values)
    assert np.isfinite(g_kept.values).all()
    assert [(p, kind) for p, kind, _ in after.problems] == [(rel, "error")]
    assert after.counts()["totals"] == before.counts()["totals"]



def test_fixed_result_no_longer_listed_as_a_problem(
    source_copy: Path, subset_store: Path, tmp_path: Path
) -> None:
    src = source_copy
    out = copy_store(subset_store, tmp_path / "store")
    good, _ = run_import(src, out, workers=1)
    assert good.errors == [] and good.unchanged == result_folders(src)
    rel, path, *_ = nan_in_grid(src)
    broken, _ = run_import(src, out, workers=1)
    assert [p for p, _ in broken.errors] == [rel]
    assert [p for p, _, _ in open_database(out, build=False).problems] == [rel]

    # the file is fixed again (back to the content of the stored copy)
    path.write_text(path.read_text().replace("[[1800.0,18.0],nan*pb]",
                                             "[[1800.0,18.0],2.182359E-01*pb]"))
    fixed, _ = run_import(src, out, workers=1)
    assert fixed.errors == []
    assert fixed.unchanged == result_folders(src)
    assert store_is_ready(out)
    # the store must not keep reporting the old error of a result that is now fine
    assert open_database(out, build=False).problems == ()


# --------------------------------------------------------------------------- every case, small


#: the results the cases break, and nothing else (fast to copy and import)
SMALL = (EFF_RESULT, "13TeV/CMS/CMS-EXO-19-012", "13TeV/ATLAS/ATLAS-SUSY-2018-14-eff",
         "8TeV/ATLAS/ATLAS-SUSY-2013-05")


@pytest.fixture(scope="module")
def small_source(
    subset_source: Path, tarball: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    root = tmp_path_factory.mktemp("small-db")
    for name in ("version", "databaseParticles.py"):
        shutil.copy2(subset_source / name, root / name)
    shutil.copytree(eff_source(tarball, tmp_path_factory) / EFF_RESULT, root / EFF_RESULT)
    for rel in SMALL[1:]:
        shutil.copytree(subset_source / rel, root / rel)
    return root


@pytest.fixture(scope="module")
def small_store(small_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small-store") / "store.sqlite"
    report, _ = run_import(small_source, out, workers=1)
    assert report.errors == [] and store_is_ready(out)
    return out


def stored(database, result_id: str) -> tuple:
    """Everything stored of a result, comparable with ==."""
    r = database.result(result_id)
    cov = None if r.covariance is None else r.covariance.tobytes()
    sets = []
    for d in r.datasets:
        grids = [
            (t.name, k, g.points.tobytes(), g.values.tobytes())
            for t in d.topologies
            for k, g in sorted(t.grids.items())
        ]
        sets.append((d.dataset_id, d.observed_n, d.expected_bg, d.bg_error, d.upper_limit_fb,
                     d.expected_upper_limit_fb, d.third_moment, tuple(grids)))
    return (r.likelihood, r.fallback, r.dataset_order, cov, r.sqrts_tev, r.lumi_ifb, tuple(sets))


def cli_import(source: Path, out: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CliRunner().invoke(
            cli, ["db", "import", "--source", str(source), "--out", str(out), "--workers", "1"],
            env={"COLUMNS": "400", "PROTOMODELS_DATABASE": None}, catch_exceptions=False,
        )


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_an_error_and_the_stored_copy_is_kept(
    case: str, small_source: Path, small_store: Path, tmp_path: Path
) -> None:
    src = tmp_path / "database"
    shutil.copytree(small_source, src)
    rel, path, tag, line, first, last = CASES[case](src)
    rid = rel.rsplit("/", 1)[1]
    out = copy_store(small_store, tmp_path / "store")
    before = open_database(out, build=False)
    kept = stored(before, rid)

    # the command exits with 1 and names file, line, field and the problem
    result = cli_import(src, out)
    assert result.exit_code == 1, result.output
    assert f"error in {rel}" in result.stderr
    assert str(path) in result.stderr
    assert f"field '{tag}'" in result.stderr
    for word in NAMED.get(case, []):
        assert word in result.stderr
    for internal in INTERNALS:
        assert internal not in result.output
    summary = " ".join(result.stdout.split())  # rich may wrap the line
    assert "0 results imported, 3 unchanged, 0 skipped, 1 failed, 0 removed" in summary

    # the earlier good copy of the result stays; the other results are untouched
    after = open_database(out, build=False)
    assert stored(after, rid) == kept
    assert [r.path for r in after.results] == [r.path for r in before.results]
    for r in before.results:
        assert stored(after, r.result_id) == stored(before, r.result_id)
    assert [(p, kind) for p, kind, _ in after.problems] == [(rel, "error")]
    assert not store_is_ready(out)

    # the error itself (strict import of that result alone)
    with pytest.raises(DatabaseFormatError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import_database(src, tmp_path / "strict.sqlite", workers=1, strict=True, only=[rel])
    err = info.value
    assert err.path == str(path)
    assert err.field == tag
    if line is not None:
        assert err.line == line
    if first is not None:
        assert first <= err.line <= last
    assert err.hint.strip()


# --------------------------------------------------------------------------- stated corrections


def deleted_covariance(src: Path) -> str:
    path = src / EFF_RESULT / "globalInfo.txt"
    text = path.read_text()
    assert re.search(r"^covariance:", text, re.M) and re.search(r"^datasetOrder:", text, re.M)
    path.write_text(re.sub(r"^covariance:.*\n", "", text, flags=re.M))
    return "datasetOrder lists 22 data sets to combine but there is no covariance"


def covariance_far_from_bg_error(src: Path) -> str:
    path = src / EFF_RESULT / "SR1" / "dataInfo.txt"
    _replace_line(path, "bgError:", "bgError: 1400")
    return "covariance diagonal is more than 100 times off bgError^2 for 1 data set(s): SR1"


def covariance_of_an_upper_limit_result(src: Path) -> str:
    path = src / "13TeV/CMS/CMS-EXO-19-012/globalInfo.txt"
    path.write_text(path.read_text().rstrip("\n") + "\ncovariance: [[1.0]]\n")
    return "a covariance is given for an upper-limit result; it is not used"


CORRECTIONS: dict[str, tuple[Callable, str, dict]] = {
    "deleted-covariance": (
        deleted_covariance,
        EFF_RESULT,
        {"likelihood": "single_region", "covariance": None,
         "fallback": "datasetOrder given but no covariance: best signal region instead"},
    ),
    "covariance-far-from-bgError": (
        covariance_far_from_bg_error, EFF_RESULT, {"likelihood": "covariance", "fallback": None}
    ),
    "covariance-of-upper-limits": (
        covariance_of_an_upper_limit_result,
        "13TeV/CMS/CMS-EXO-19-012",
        {"likelihood": "none", "fallback": None},
    ),
}


@pytest.mark.parametrize("case", list(CORRECTIONS))
def test_stated_correction_is_a_warning_and_the_result_says_so(
    case: str, small_source: Path, small_store: Path, tmp_path: Path
) -> None:
    src = tmp_path / "database"
    shutil.copytree(small_source, src)
    breakage, rel, expected = CORRECTIONS[case]
    warning = breakage(src)
    out = copy_store(small_store, tmp_path / "store")
    before = open_database(out, build=False)

    result = cli_import(src, out)
    assert result.exit_code == 0, result.output
    shown = " ".join(result.stdout.split())
    assert "1 results imported, 3 unchanged, 0 skipped, 0 failed, 0 removed" in shown
    # the warning is shown (its layout is the command's business; its text is checked below)
    assert "1 warning" in result.output
    assert store_is_ready(out)

    after = open_database(out, build=False)
    r = after.result(rel.rsplit("/", 1)[1])
    for name, value in expected.items():
        if name == "covariance":
            assert r.covariance is None
        else:
            assert getattr(r, name) == value, name
    with sqlite3.connect(out) as conn:  # the warning is kept with the result in the store
        notes = conn.execute(
            "SELECT message FROM notes WHERE result_id=? AND kind='warning'", (r.result_id,)
        ).fetchall()
    assert [m for (m,) in notes if warning in m]
    for other in before.results:
        if other.path != rel:
            assert stored(after, other.result_id) == stored(before, other.result_id)

    # the same warning through the API, once
    report, caught = run_import(src, tmp_path / "api.sqlite", workers=1, only=[rel])
    assert report.errors == [] and report.imported == [rel]
    (shown,) = [w for w in report.warnings if warning in w]
    assert shown.startswith(f"{src}/{rel}/")
    assert [w for w in caught if warning in w]
