"""A SModelS-format database that is not v3.0.0: grids with points in other units are converted
point by point (as SModelS does), and what is really inconsistent is refused with file, line
and field while the rest of the database is imported."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import protomodels.database as pdb

TXNAME = "13TeV/CMS/CMS-SUS-19-006/data/T1.txt"


def _ul_grid(store: Path) -> np.ndarray:
    database = pdb.load(store, workspaces=False)
    txname = next(t for d in database.result("CMS-SUS-19-006").datasets for t in d.topologies
                  if t.name == "T1")
    return txname.grids["upper_limit"].values


def _edit_second_value(path: Path, make: callable) -> int:  # type: ignore[valid-type]
    """Rewrite the value of the second upper-limit point of the T1 grid; its line number."""
    text = path.read_text()
    values = list(re.finditer(r"\]\s*,\s*([0-9.Ee+-]+)\*pb\]", text))
    target = values[1]
    number = float(target.group(1))
    new = text[: target.start(1)] + make(number) + text[target.end(1) + len("*pb"):]
    path.write_text(new)
    return text.count("\n", 0, target.start()) + 1


def test_a_point_in_another_unit_is_converted(source_copy: Path, subset_store: Path,
                                              tmp_path: Path) -> None:
    """One point written in fb (x 1000) in a grid of pb, one in ab: the same grid."""
    path = source_copy / TXNAME
    _edit_second_value(path, lambda x: f"{x * 1000:.10g}*fb")
    text = path.read_text()
    third = list(re.finditer(r"\]\s*,\s*([0-9.Ee+-]+)\*pb\]", text))[1]
    value = float(third.group(1))
    path.write_text(text[: third.start(1)] + f"{value * 1e6:.10g}*ab"
                    + text[third.end(1) + len("*pb"):])
    out = tmp_path / "store.sqlite"
    report = pdb.import_database(source_copy, out, workers=1)
    assert not report.errors, report.errors
    np.testing.assert_allclose(_ul_grid(out), _ul_grid(subset_store), rtol=1e-9)


def test_an_energy_unit_for_a_limit_is_refused_with_file_line_and_field(
    source_copy: Path, tmp_path: Path
) -> None:
    line = _edit_second_value(source_copy / TXNAME, lambda x: f"{x:.6g}*GeV")
    out = tmp_path / "store.sqlite"
    report = pdb.import_database(source_copy, out, workers=1)
    (failed,) = report.errors
    rel, error = failed
    assert rel == "13TeV/CMS/CMS-SUS-19-006"
    assert error.path.endswith(TXNAME) and error.field == "upperLimits" and error.line == line
    assert "grid point 1 has the value" in error.problem and "energy unit" in error.problem
    # the other results of the database are there
    database = pdb.load(out, workspaces=False)
    assert "CMS-SUS-20-004" in {r.result_id for r in database.results}
    assert "CMS-SUS-19-006" not in {r.result_id for r in database.results}
