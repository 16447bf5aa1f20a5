"""Malformed database files: each one is reported with file, field, line and a hint; every other
result is still imported; nothing already imported is lost.

Each case breaks one real file of a writable copy of the subset database.
"""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _helpers import EFF_RESULT, copy_store, eff_source, result_folders, run_import

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


CASES: dict[str, Callable] = {
    "grid-syntax": grid_syntax_error,
    "missing-observedN": missing_required_field,
    "unknown-particle": unknown_particle,
    "nan-in-grid": nan_in_grid,
    "covariance-dimension": covariance_wrong_dimension,
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
}


@pytest.mark.parametrize("case", list(CASES))
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
