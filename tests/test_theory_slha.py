"""SLHA input is read strictly: every unreadable line is an error naming file, line and section;
every correction (negative masses, frozen particles, missing cross sections) is stated.

Each case edits a copy of a shared reference SLHA file in a temporary folder.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from protomodels.cli import cli
from protomodels.exceptions import InputCorrectionWarning, InvalidProtomodelError
from protomodels.theory import Protomodel
from protomodels.theory.slha import SlhaFormatError, read_slha

#: N1 50, N2 450 (-> N1 h), t1 492.1 (-> N1 t), with XSECTION blocks
LATEST = "best_pmodel_latest.slha"


@pytest.fixture
def edit(shared: Path, tmp_path: Path):
    """``edit(pattern, replacement)``: a copy of the reference file with one line changed;
    returns the copy and the 1-based number of the changed line."""

    def make(pattern: str, replacement: str, name: str = LATEST) -> tuple[Path, int]:
        lines = (shared / "data" / "reference" / name).read_text().split("\n")
        hits = [i for i, line in enumerate(lines) if re.search(pattern, line)]
        assert len(hits) == 1, (pattern, hits)
        lines[hits[0]] = re.sub(pattern, replacement, lines[hits[0]])
        path = tmp_path / name
        path.write_text("\n".join(lines))
        return path, hits[0] + 1

    return make


def read(path: Path) -> tuple[Protomodel, list[str]]:
    """The model and the messages of the correction warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = Protomodel.from_slha(path)
    return model, [str(w.message) for w in caught if w.category is InputCorrectionWarning]


def reference(shared: Path) -> Protomodel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputCorrectionWarning)
        return Protomodel.from_slha(shared / "data" / "reference" / LATEST)


# ------------------------------------------------------------------- unreadable lines: errors
@pytest.mark.parametrize(
    ("pattern", "replacement", "section", "words"),
    [
        # the top decay of the stop: pyslha drops such a line and the stop becomes stable
        (r"^\s+1\.0+\s+2\s+1000022\s+6\b", "     nan   2   1000022   6", "DECAY 1000006",
         ["branching ratio", "'nan'"]),
        (r"^\s+1\.0+\s+2\s+1000022\s+6\b", "     1.0   3   1000022   6", "DECAY 1000006",
         ["3 daughters announced, 2 given"]),
        (r"^\s+1\.0+\s+2\s+1000022\s+6\b", "     1.5   2   1000022   6", "DECAY 1000006",
         ["not in [0, 1]"]),
        (r"^(DECAY\s+1000006\s+)\S+", r"\1 nan", "DECAY 1000006", ["total width", "'nan'"]),
        (r"^(\s+1000006\s+)\S+", r"\1 abc", "BLOCK MASS", ["mass of 1000006", "not a number"]),
        (r"^(\s+1000006\s+)\S+", r"\1 inf", "BLOCK MASS", ["mass of 1000006", "finite"]),
    ],
    ids=["nan-br", "daughter-count", "br-above-1", "nan-width", "mass-text", "mass-inf"],
)
def test_an_unreadable_line_names_file_line_and_section(
    edit, pattern: str, replacement: str, section: str, words: list[str]
) -> None:
    path, line = edit(pattern, replacement)
    with pytest.raises(SlhaFormatError) as info:
        Protomodel.from_slha(path)
    err = info.value
    assert (err.path, err.line, err.section) == (str(path), line, section)
    message = str(err)
    assert message.startswith(f"{path}, line {line}, {section}: ")
    for word in words:
        assert word in message
    assert "fix this line" in message


def test_a_second_decay_block_is_refused(edit, shared: Path, tmp_path: Path) -> None:
    path, _ = edit(r"^(DECAY\s+1000006\s+)", r"\1")
    text = path.read_text()
    first = next(i for i, s in enumerate(text.split("\n"), 1) if s.startswith("DECAY   1000006"))
    path.write_text(text + "\nDECAY   1000006   1.0\n   1.0  2  1000022  6\n")
    with pytest.raises(SlhaFormatError, match=f"second DECAY block for 1000006 .*line {first}"):
        read_slha(path)


def test_a_decay_block_without_a_mass_is_refused(shared: Path, tmp_path: Path) -> None:
    text = (shared / "data" / "reference" / LATEST).read_text()
    path = tmp_path / "extra.slha"
    path.write_text(text + "\nDECAY   1000045   1.0\n   1.0  2  1000022  25\n")
    with pytest.raises(InvalidProtomodelError, match=r"DECAY block of 1000045 but BLOCK MASS has "
                       r"no mass for it"):
        Protomodel.from_slha(path)


# ------------------------------------------------------------------- spectrum not as written
def test_a_decaying_lightest_particle_is_refused(edit) -> None:
    # neutralino 1 at 460 GeV, above neutralino 2 (450 GeV), which decays to it
    path, line = edit(r"^(\s+1000022\s+)\S+", r"\g<1>460.0")
    with pytest.raises(InvalidProtomodelError) as info:
        Protomodel.from_slha(path)
    message = str(info.value)
    assert message.startswith(f"{path}: 1000023 (~chi20) is the lightest particle")
    assert "1000022 (~chi10) (460 GeV)" in message
    assert "450 GeV" in message
    assert "not what the file says" in message


def test_branching_ratios_summing_above_one_are_refused(edit) -> None:
    path, line = edit(r"^(\s+)1\.0+(\s+2\s+1000022\s+6\b)", r"\g<1>1.009\2")
    model, said = read(path)  # up to 1.01: normalised, and said
    assert model.decays[1000006][0].br == 1.0
    (note,) = [n for n in model.notes if "normalised" in n]
    assert "~t_1" in note and "1.009" in note and f"line {line - 2}" in note
    path, line = edit(r"^(\s+)1\.0+(\s+2\s+1000022\s+6\b)", r"\g<1>1.1\2")
    with pytest.raises(SlhaFormatError) as info:  # a single BR above 1.01: the line
        Protomodel.from_slha(path)
    assert f"line {line}" in str(info.value)


@pytest.mark.parametrize("total", [0.9998, 0.7])
def test_branching_ratios_summing_below_one_are_used_as_given(edit, total: float) -> None:
    """SModelS uses a decay table as read (no check, no normalisation): so does the reader,
    and it says so."""
    path, line = edit(r"^(\s+)1\.0+(\s+2\s+1000022\s+6\b)", rf"\g<1>{total}\2")
    model, said = read(path)
    assert model.decays[1000006][0].br == total
    (note,) = [n for n in model.notes if "used as given" in n]
    assert f"sum to {total:g}" in note and "~t_1" in note
    assert any("used as given" in m for m in said)


# ------------------------------------------------------------------- stated corrections
def test_a_negative_mass_is_taken_as_its_absolute_value_and_said_once(
    edit, shared: Path
) -> None:
    path, line = edit(r"^(\s+1000022\s+)(\S+)", r"\1-\2")
    model, said = read(path)
    assert dict(model.masses) == dict(reference(shared).masses)
    negative = [n for n in model.notes if "negative masses" in n]
    assert len(negative) == 1
    assert "1000022 (~chi10) -50 GeV" in negative[0] and f"line {line}" in negative[0]
    assert [m for m in said if "negative masses" in m] == [f"{path}: {negative[0]}"]


def test_a_frozen_particle_is_removed_and_said(edit, shared: Path) -> None:
    path, _ = edit(r"^(\s+1000006\s+)\S+", r"\g<1>1.0E+09")
    model, said = read(path)
    assert 1000006 not in model.masses and 1000006 not in model.decays
    assert not any(1000006 in map(abs, pair) for pair in model.xsecs)
    frozen = [n for n in model.notes if "frozen" in n]
    assert len(frozen) == 1 and "~t_1" in frozen[0]
    assert sum("are frozen" in m for m in said) == 1
    # the unedited file freezes the same particles but the stop
    assert "~t_1" not in next(n for n in reference(shared).notes if "frozen" in n)


def test_a_file_without_cross_sections_gets_the_reference_tables(shared: Path,
                                                                 tmp_path: Path) -> None:
    text = (shared / "data" / "reference" / LATEST).read_text()
    path = tmp_path / "noxsec.slha"
    path.write_text(text.split("\nXSECTION")[0] + "\n")
    model, said = read(path)
    assert model.xsecs is None and model.ssm == {}
    assert any("no XSECTION blocks" in m for m in said)


def test_a_clean_protomodel_file_has_no_other_notes(shared: Path) -> None:
    model = reference(shared)
    assert [n for n in model.notes if "frozen" not in n] == []


# ------------------------------------------------------------------- on the command line
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_cli_reports_an_unreadable_decay_line(edit, command: str, tmp_path: Path) -> None:
    path, line = edit(r"^\s+1\.0+\s+2\s+1000022\s+6\b", "     nan   2   1000022   6")
    store = tmp_path / "never-built.sqlite"
    result = CliRunner().invoke(cli, ["--database", str(store), command, str(path)])
    assert result.exit_code == 1
    assert f"{path}, line {line}, DECAY 1000006: branching ratio is 'nan'" in result.output
    assert "Traceback" not in result.output
    assert not store.exists()  # refused before any work
