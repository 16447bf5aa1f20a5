"""Shared fixtures: the shared data folder and small databases taken from the real tarball.

Tests read ``../shared`` (or ``PROTOMODELS_SHARED``) at run time; nothing derived from it is
committed. The subset of results below covers every kind of input: upper-limit maps with and
without expected limits, efficiency maps with a covariance, with pyhf JSON (one of them missing),
graph-notation constraints and inclusive ('*') branches.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from protomodels.paths import default_database_source, shared_dir

SUBSET = (
    "13TeV/CMS/CMS-SUS-19-006",  # UL, observed + expected maps, large grid
    "13TeV/CMS/CMS-SUS-20-004",  # UL (its -eff sibling, with a covariance, is taken by tests)
    "13TeV/ATLAS/ATLAS-SUSY-2018-14-eff",  # EM with pyhf JSON (3 files)
    "13TeV/ATLAS/ATLAS-SUSY-2019-08-eff",  # EM whose pyhf JSON is missing in v3.0.0
    "13TeV/CMS/CMS-EXO-19-012",  # UL, graph notation, widths, no expected map
    "8TeV/ATLAS/ATLAS-SUSY-2013-05",  # 8 TeV UL
    "8TeV/CMS/CMS-EXO-13-006-eff-trim",  # displaced, inclusive '*' branches, widths
)
TOP_FILES = ("version", "databaseParticles.py", "smodels-analyses.json")


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared data folder (fails clearly if it cannot be found)."""
    return shared_dir()


@pytest.fixture(scope="session")
def tarball(shared: Path) -> Path:
    """The SModelS database tarball."""
    return default_database_source(shared)


def _top(name: str) -> str:
    return name.split("/", 1)[1] if name.startswith("./") else name


@pytest.fixture(scope="session")
def subset_source(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unpacked database folder holding only the results of :data:`SUBSET` (read-only use)."""
    root = tmp_path_factory.mktemp("subset-db")
    with tarfile.open(tarball) as tar:
        members = []
        for member in tar:
            name = _top(member.name)
            if name in TOP_FILES or any(name.startswith(s + "/") for s in SUBSET):
                members.append(member)
        tar.extractall(root, members=members, filter="data")
    inner = [p for p in root.iterdir() if p.is_dir() and not p.name.endswith("TeV")]
    return inner[0] if len(inner) == 1 and not (root / "version").exists() else root


@pytest.fixture
def source_copy(subset_source: Path, tmp_path: Path) -> Path:
    """A writable copy of the subset database, to break on purpose."""
    dest = tmp_path / "database"
    shutil.copytree(subset_source, dest)
    return dest


@pytest.fixture(scope="session")
def subset_store(subset_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store imported from the subset (read-only use)."""
    from protomodels.database import import_database

    out = tmp_path_factory.mktemp("subset-store") / "store.sqlite"
    report = import_database(subset_source, out, workers=1)
    assert not report.errors, report.errors
    return out


@pytest.fixture(scope="module")
def toy() -> tuple:
    """A stop model with an ATLAS and a CMS result whose likelihoods are Gaussians in mu
    (test_combiner_k's Gauss): (model, cross sections, predictions, atlas, cms)."""
    from test_combiner_k import N1, STOP, STOPS, Gauss, prediction

    from protomodels.theory.protomodel import Decay, Protomodel

    model = Protomodel(
        masses={N1: 100.0, STOP: 500.0},
        decays={STOP: (Decay(N1, (6,), 1.0),)},
        ssm={STOPS: 0.5},
    )
    xsecs = {STOPS: {8.0: 10.0, 13.0: 50.0}}
    atlas, cms = Gauss(1.4, 0.5), Gauss(1.1, 1.0)
    predictions = [prediction("ATLAS-SUSY-2018-12", atlas), prediction("CMS-SUS-20-004", cms)]
    return model, xsecs, predictions, atlas, cms
