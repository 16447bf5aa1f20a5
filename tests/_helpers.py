"""Helpers shared by the database tests (the subset fixtures live in conftest.py)."""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
import warnings
from pathlib import Path

import pytest

from protomodels.database import import_database

EFF_RESULT = "13TeV/CMS/CMS-SUS-20-004-eff"

# the value of a grid point: "],<number>[*unit]]" (masses are followed by *GeV, never by "]")
VALUE_RE = re.compile(
    r"\]\s*,\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?:\*\s*(?:fb|pb|ab|nb))?\s*\]"
)


def eff_source(tarball: Path, factory: pytest.TempPathFactory) -> Path:
    """A database folder holding only CMS-SUS-20-004-eff (efficiency maps with a covariance),
    unpacked from the tarball once per session (conftest's subset has the UL result only)."""
    return single_result_source(tarball, factory, EFF_RESULT)


def single_result_source(tarball: Path, factory: pytest.TempPathFactory, folder: str) -> Path:
    """A database folder holding only one result folder of the tarball (once per session)."""
    root = factory.getbasetemp() / (folder.rsplit("/", 1)[-1].lower() + "-db")
    if root.exists():
        return root
    tmp = Path(tempfile.mkdtemp(dir=factory.getbasetemp()))
    with tarfile.open(tarball) as tar:
        members, seen = [], False
        for member in tar:
            name = member.name.removeprefix("./")
            if name == folder or name.startswith(folder + "/"):
                members.append(member)
                seen = True
            elif seen:
                break
        tar.extractall(tmp, members=members, filter="data")
    tmp.rename(root)
    return root


def results_source(
    tarball: Path, factory: pytest.TempPathFactory, folders: tuple[str, ...], name: str
) -> Path:
    """A database folder holding the database's top files and the given result folders
    (unpacked once per session under ``name``)."""
    root = factory.getbasetemp() / name
    if root.exists():
        return root
    tmp = Path(tempfile.mkdtemp(dir=factory.getbasetemp()))
    top = ("version", "databaseParticles.py", "smodels-analyses.json")
    with tarfile.open(tarball) as tar:
        members = [
            m for m in tar
            if m.name.removeprefix("./") in top
            or any(m.name.removeprefix("./").startswith(f + "/") for f in folders)
        ]
        tar.extractall(tmp, members=members, filter="data")
    tmp.rename(root)
    return root


def run_import(*args, **kwargs):
    """import_database, returning (report, warning messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = import_database(*args, **kwargs)
    return report, [str(w.message) for w in caught]


def copy_store(store: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in store.parent.glob(store.name + "*"):
        shutil.copy2(f, dest / f.name)
    return dest / store.name


def result_folders(root: Path) -> list[str]:
    return sorted(p.parent.relative_to(root).as_posix() for p in root.rglob("globalInfo.txt"))


def pyhf_model():  # noqa: ANN201 - a Protomodel (imported lazily)
    """A displaced stau (ATLAS-SUSY-2018-14-eff of the subset store: three regions, a pyhf
    combination of three JSON files) and a wino-like C1/N2 -> W/h N1 (ATLAS-SUSY-2019-08-eff:
    its JSON is missing, best region)."""
    from protomodels.theory.protomodel import Decay, Protomodel

    n1, stau, c1, n2 = 1000022, 1000015, 1000024, 1000023
    return Protomodel(
        masses={stau: 200.0, c1: 500.0, n2: 500.0, n1: 0.5},
        decays={
            stau: (Decay(n1, (15,), 1.0),),
            c1: (Decay(n1, (24,), 1.0),),
            n2: (Decay(n1, (25,), 1.0),),
        },
        widths={stau: 1e-15, c1: 1.0, n2: 1.0},
        xsecs={(-stau, stau): {13.0: 30.0}, (n2, c1): {13.0: 100.0}, (-c1, n2): {13.0: 50.0}},
    )


#: a small store with every differentiated likelihood kind (tests/test_inference.py)
INFERENCE_FOLDERS = (
    "13TeV/CMS/CMS-SUS-20-004-eff",
    "13TeV/ATLAS/ATLAS-SUSY-2019-08-eff",
    "13TeV/ATLAS/ATLAS-SUSY-2018-14-eff",
)


def stau_chargino_model(stau: float = 213.3, c1: float = 452.7, n2: float = 453.9,
                        n1: float = 0.5):  # noqa: ANN201 - a Protomodel
    """A stau, a chargino and a neutralino2 above a light LSP (reaches the three results of
    :data:`INFERENCE_FOLDERS`)."""
    from protomodels.theory.protomodel import Decay, Protomodel

    n1_, stau_, c1_, n2_ = 1000022, 1000015, 1000024, 1000023
    return Protomodel(
        masses={stau_: stau, c1_: c1, n2_: n2, n1_: n1},
        decays={stau_: (Decay(n1_, (15,), 1.0),), c1_: (Decay(n1_, (24,), 1.0),),
                n2_: (Decay(n1_, (25,), 0.8), Decay(n1_, (23,), 0.2))},
        widths={stau_: 1e-15, c1_: 1.0, n2_: 1.0},
        ssm={(-stau_, stau_): 1.0},
    )


def imported_store(
    tarball: Path, factory: pytest.TempPathFactory, folders: tuple[str, ...], name: str
) -> Path:
    """A store imported from the given result folders of the tarball (source unpacked once per
    session under ``name``, the store in a new temporary folder)."""
    source = results_source(tarball, factory, folders, name)
    out = factory.mktemp(name + "-store") / "store.sqlite"
    report = import_database(source, out, workers=1)
    assert not report.errors, report.errors
    return out
