"""Import of the whole real SModelS database tarball (slow: run with ``-m slow``).

Expected numbers are counted here from the tarball's member names and ``dataType`` lines.
"""

from __future__ import annotations

import re
import tarfile
import warnings
from pathlib import Path

import pytest

from protomodels.database import import_database, store_is_ready
from protomodels.database import open as open_database

pytestmark = pytest.mark.slow

#: the pyhf files the README of the shared data lists as missing from this copy
MISSING_JSON = {
    "13TeV/ATLAS/ATLAS-SUSY-2018-32-eff": "bkgonly.json",
    "13TeV/ATLAS/ATLAS-SUSY-2019-08-eff": "BkgOnly.json",
}


def _skipped_folder(rel: str) -> bool:
    parts = rel.split("/")
    return (
        any(p.startswith(".") for p in parts)
        or "/.git/" in f"/{rel}/"
        or rel.endswith(("/validation", "/orig"))
    )


@pytest.fixture(scope="module")
def tarball_facts(tarball: Path) -> dict:
    """Result folders, their data types and file names, read from the tarball directly."""
    folders: set[str] = set()
    data_types: dict[str, set[str]] = {}
    files: set[str] = set()
    with tarfile.open(tarball) as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            if not member.isfile():
                continue
            files.add(name)
            if name.endswith("/globalInfo.txt"):
                folders.add(name.rsplit("/", 1)[0])
            elif name.endswith("/dataInfo.txt"):
                text = tar.extractfile(member).read().decode("utf-8", "replace")
                m = re.search(r"^dataType:\s*(\w+)", text, re.M)
                result = name.rsplit("/", 2)[0]
                data_types.setdefault(result, set()).add(m.group(1) if m else "?")
    folders = {f for f in folders if not _skipped_folder(f)}
    return {"folders": sorted(folders), "data_types": data_types, "files": files}


@pytest.fixture(scope="module")
def full_import(tarball: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("full-store") / "store.sqlite"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = import_database(tarball, out, workers=2)
    return report, [str(w.message) for w in caught], out


def test_every_result_is_imported_or_skipped_with_reason(tarball_facts: dict, full_import) -> None:
    report, _, out = full_import
    folders = tarball_facts["folders"]
    assert len(folders) == 204  # as the shared data README says
    assert report.errors == []
    skipped = [p for p, _ in report.skipped]
    assert sorted(report.imported + skipped) == folders
    assert all(reason.strip() for _, reason in report.skipped)
    assert report.database_version == "3.0.0"
    assert store_is_ready(out)


def test_counts_match_the_tarball(tarball_facts: dict, full_import) -> None:
    report, _, out = full_import
    skipped = {p for p, _ in report.skipped}
    sqrts: dict[str, int] = {}
    collab: dict[str, int] = {}
    dtype: dict[str, int] = {}
    for rel in tarball_facts["folders"]:
        if rel in skipped:
            continue
        energy, experiment, _ = rel.split("/")
        key = f"{float(energy.removesuffix('TeV')):g} TeV"
        sqrts[key] = sqrts.get(key, 0) + 1
        collab[experiment] = collab.get(experiment, 0) + 1
        (kind,) = tarball_facts["data_types"][rel]
        dtype[kind] = dtype.get(kind, 0) + 1
    db = open_database(out, build=False, workspaces=False)
    counts = db.counts()
    assert counts["sqrts"] == sqrts
    assert counts["collaboration"] == collab
    assert counts["data_type"] == dtype
    assert counts["totals"]["results"] == len(tarball_facts["folders"]) - len(skipped)
    assert sorted(r.path for r in db.results) == sorted(set(tarball_facts["folders"]) - skipped)


def test_missing_json_files_give_warnings_and_fallbacks(tarball_facts: dict, full_import) -> None:
    report, caught, out = full_import
    db = open_database(out, build=False, workspaces=False)
    for rel, name in MISSING_JSON.items():
        assert f"{rel}/{name}" not in tarball_facts["files"]
        assert [w for w in report.warnings if rel in w and repr(name) in w], rel
        assert [w for w in caught if rel in w and repr(name) in w], rel
        r = db.result(rel.rsplit("/", 1)[1])
        (ws,) = [w for w in r.pyhf if w.file_name == name]
        assert ws.missing is True
        assert r.fallback, rel
        assert name in r.fallback or "missing" in r.fallback
    # every other workspace named in a globalInfo.txt is present and loaded
    for r in db.results:
        for w in r.pyhf:
            present = f"{r.path}/{w.file_name}" in tarball_facts["files"]
            assert w.missing is (not present), (r.path, w.file_name)


def test_second_import_is_a_no_op(tarball: Path, full_import) -> None:
    report, _, out = full_import
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = import_database(tarball, out, workers=2)
    assert again.no_op is True
    assert again.imported == []
    assert again.errors == []
    assert sorted(again.unchanged) == sorted(report.imported)
    assert again.seconds < 10
