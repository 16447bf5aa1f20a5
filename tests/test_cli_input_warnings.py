"""Warnings and corrections of the input shown by the tool (issue 17): each distinct Python
warning once, as 'warning: ...' on standard error, never as a raw UserWarning line; the
corrections made while reading an SLHA file (Protomodel.notes) in the JSON's "flags" of
predict and evaluate and once in their printed output; an OSError about a path as one line."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from protomodels.cli import cli
from protomodels.cli.common import collect_warnings, current_warnings, reports_errors
from protomodels.theory.protomodel import Protomodel

ENV = {"COLUMNS": "400", "PROTOMODELS_DATABASE": None}


def run(*args: str, database: Path) -> Result:
    return CliRunner().invoke(cli, ["--database", str(database), *args], env=ENV)


@pytest.fixture(scope="module")
def frozen_slha(shared: Path) -> Path:
    """A reference model with particles at 1e5 GeV or more (frozen when read)."""
    return shared / "data" / "reference" / "best_pmodel_latest.slha"


@pytest.fixture
def negative_slha(shared: Path, tmp_path: Path) -> Path:
    """random_1_01.slha with the LSP mass written negative."""
    text = (shared / "data" / "reference" / "random_1_01.slha").read_text()
    fixed, n = re.subn(r"^(\s*1000022\s+)(\d)", r"\1-\2", text, count=1, flags=re.M)
    assert n == 1
    path = tmp_path / "negative.slha"
    path.write_text(fixed)
    return path


def notes_of(path: Path) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(getattr(Protomodel.from_slha(path), "notes", ()))


def assert_shown_once(result: Result, notes: list[str], *, printed: bool = True) -> None:
    """Each note once on stderr as a warning (and, for printed output, not on stdout)."""
    for note in notes:
        assert result.stderr.count(note) == 1, (note, result.stderr)
        if printed:
            assert note not in result.stdout
        line = next(x for x in result.stderr.splitlines() if note in x)
        assert line.startswith("warning: ")
    assert "UserWarning" not in result.output
    assert "InputCorrectionWarning" not in result.output
    assert "warnings.warn" not in result.output


# --------------------------------------------------------------------------- the collector
def test_collector_shows_each_distinct_warning_once(capsys: pytest.CaptureFixture) -> None:
    @click.command()
    @reports_errors
    def noisy() -> None:
        for _ in range(3):
            warnings.warn("the same thing [twice]", UserWarning, stacklevel=1)
        warnings.warn("something else", RuntimeWarning, stacklevel=1)
        assert current_warnings() is not None
        click.echo("done")

    result = CliRunner().invoke(noisy, [], env=ENV)
    assert result.exit_code == 0, result.output
    assert result.stdout == "done\n"
    assert result.stderr.splitlines() == [
        "warning: the same thing [twice]",  # rich markup in messages is kept as text
        "warning (RuntimeWarning): something else",
    ]


def test_collector_shows_warnings_of_a_failing_command() -> None:
    @click.command()
    @reports_errors
    def failing() -> None:
        with collect_warnings(show=False):  # the inner one hands them on when it fails
            warnings.warn("before the failure", UserWarning, stacklevel=1)
            raise OSError(2, "No such file or directory", "/nowhere/input.txt")

    result = CliRunner().invoke(failing, [], env=ENV)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "warning: before the failure",
        "Error: /nowhere/input.txt: No such file or directory; check the path (and that its "
        "folder exists)",
    ]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (PermissionError(13, "Permission denied", "/data/x.json"),
         "Error: /data/x.json: Permission denied; check the permissions, or choose another "
         "path"),
        (IsADirectoryError(21, "Is a directory", "/data"),
         "Error: /data: Is a directory; give a file, not a folder"),
        (OSError(28, "No space left on device"),
         "Error: No space left on device; check the paths given and their permissions"),
    ],
)
def test_os_errors_are_one_line(error: OSError, message: str) -> None:
    @click.command()
    @reports_errors
    def broken() -> None:
        raise error

    result = CliRunner().invoke(broken, [], env=ENV)
    assert result.exit_code == 1
    assert result.output.splitlines() == [message]


# --------------------------------------------------------------------------- SLHA notes
def test_predict_flags_and_notes(subset_store: Path, frozen_slha: Path) -> None:
    notes = notes_of(frozen_slha)
    assert notes  # the reference model has frozen particles
    result = run("predict", str(frozen_slha), "--json", "-", "--no-statistics",
                 database=subset_store)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["flags"] == notes
    result = run("predict", str(frozen_slha), "--no-statistics", database=subset_store)
    assert result.exit_code == 0, result.output
    assert_shown_once(result, notes)


def test_predict_negative_mass(subset_store: Path, negative_slha: Path, tmp_path: Path) -> None:
    notes = notes_of(negative_slha)
    out = tmp_path / "out.json"
    result = run("predict", str(negative_slha), "--no-statistics", "--json", str(out),
                 database=subset_store)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["flags"] == notes
    assert_shown_once(result, notes)
    if notes:  # the reader states the correction (taken as the absolute value)
        assert any("negative" in n for n in notes)


def test_evaluate_flags_and_notes(subset_store: Path, frozen_slha: Path) -> None:
    notes = notes_of(frozen_slha)
    result = run("evaluate", str(frozen_slha), "--json", "-", database=subset_store)
    assert result.exit_code == 0, result.output
    flags = json.loads(result.stdout)["flags"]
    assert flags[len(flags) - len(notes):] == notes  # after the evaluation's own flags
    assert_shown_once(result, notes, printed=False)
    result = run("evaluate", str(frozen_slha), database=subset_store)
    assert result.exit_code == 0, result.output
    assert_shown_once(result, notes)


@pytest.mark.parametrize("command", ["predict", "evaluate", "walk"])
def test_help_states_how_masses_are_read(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"], env=ENV)
    text = " ".join(result.output.split())
    assert "1e5 GeV or more are treated as frozen" in text
    assert "decoupled: removed with their decays and cross sections" in text
    assert "negative masses are taken as their absolute value" in text
