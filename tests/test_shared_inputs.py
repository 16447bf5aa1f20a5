"""Shared inputs (reference cross-section tables, the protomodel template): a bad row is an
error naming the file and the line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from protomodels.exceptions import ProtomodelsError
from protomodels.theory.xsec import load_tables


@pytest.fixture
def shared_copy(shared: Path, tmp_path: Path) -> Path:
    """A shared folder whose data/xsec is a writable copy of the real one."""
    (tmp_path / "data").mkdir()
    shutil.copytree(shared / "data" / "xsec", tmp_path / "data" / "xsec")
    return tmp_path


def break_row(folder: Path, old: str, new: str) -> tuple[Path, int]:
    path = folder / "data" / "xsec" / "xsecstop13.txt"
    lines = path.read_text().split("\n")
    (i,) = [k for k, s in enumerate(lines) if s.startswith(old)]
    lines[i] = new
    path.write_text("\n".join(lines))
    return path, i + 1


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("105. GeV\tnan ± 6.74 %", "must be finite and positive"),
        ("105. GeV\t-0.145E+04 ± 6.74 %", "must be finite and positive"),
        ("inf GeV\t0.145E+04 ± 6.74 %", "must be finite and positive"),
        ("105. GeV\tabc ± 6.74 %", "cannot read mass and cross section"),
    ],
    ids=["nan", "negative", "inf-mass", "text"],
)
def test_a_bad_row_names_file_and_line(shared_copy: Path, row: str, words: str) -> None:
    path, line = break_row(shared_copy, "105. GeV", row)
    with pytest.raises(ProtomodelsError, match=f"{path}, line {line}: .*{words}"):
        load_tables(shared_copy)


def test_a_repeated_mass_is_refused(shared_copy: Path) -> None:
    path, _ = break_row(shared_copy, "105. GeV", "100. GeV\t0.145E+04 ± 6.74 %")
    with pytest.raises(ProtomodelsError, match=f"{path}: need >= 2 rows with distinct masses"):
        load_tables(shared_copy)


def test_the_real_tables_load(shared: Path) -> None:
    tables = load_tables(shared)
    assert all(t.masses.size >= 2 and (t.xsec_fb > 0).all() for t in tables.values())


# --------------------------------------------------------------------------- the template
@pytest.mark.parametrize(
    ("new", "words"),
    [
        ("   D1000006_1000022_6   3   1000022   6", "2 daughters (3 announced)"),
        ("   D1000006_1000022_6   2   6   5", "0 of them BSM"),
        ("   D1000006_1000022_6   two   1000022   6", "is not 'D<mother>_<daughters> NDA"),
    ],
    ids=["count", "no-bsm", "text"],
)
def test_a_bad_template_decay_names_file_and_line(
    shared: Path, tmp_path: Path, new: str, words: str
) -> None:
    from protomodels.theory.particles import load_template

    source = shared / "data" / "templates" / "protomodel_template.slha"
    lines = source.read_text().split("\n")
    (i,) = [k for k, s in enumerate(lines) if s.split()[:1] == ["D1000006_1000022_6"]]
    lines[i] = new
    path = tmp_path / "template.slha"
    path.write_text("\n".join(lines))
    with pytest.raises(ProtomodelsError, match=re.escape(f"{path}, line {i + 1}: ") + ".*"
                       + re.escape(words)):
        load_template(path)
