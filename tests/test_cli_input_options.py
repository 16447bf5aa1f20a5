"""Option values checked before any work (issue 17): out-of-range numbers are refused by click
with exit status 2, before the store is opened (the store given with --database is never
built) and without leaving a run file; options that a resumed run cannot change are refused;
a walk that fails during its start-up removes the run file it made."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from protomodels.builders.storage import RunMetadata, RunStorage
from protomodels.cli import cli

ENV = {"COLUMNS": "400", "PROTOMODELS_DATABASE": None}


def run(*args: str, database: Path) -> Result:
    return CliRunner().invoke(cli, ["--database", str(database), *args], env=ENV)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder (where walk would put walk-<seed>.sqlite)."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def _slha(shared: Path) -> str:
    return str(shared / "data" / "reference" / "random_1_01.slha")


WALK = [
    ("--steps", "0", "0 is not in the range x>=1"),
    ("--steps", "-5", "-5 is not in the range x>=1"),
    ("--walkers", "0", "0 is not in the range x>=1"),
    ("--walkers", "-2", "-2 is not in the range x>=1"),
    ("--processes", "0", "0 is not in the range x>=1"),
    ("--seed", "-1", "-1 is not in the range x>=0"),
    ("--temperature", "0", "0.0 is not in the range x>0"),
    ("--temperature", "-1", "-1.0 is not in the range x>0"),
    ("--temperature", "nan", "'nan' is not a finite number"),
    ("--temperature", "inf", "'inf' is not a finite number"),
    ("--final-temperature", "0", "0.0 is not in the range x>0"),
    ("--teleport-until", "-1", "-1 is not in the range x>=0"),
    ("--sigmacut", "-0.1", "-0.1 is not in the range x>=0"),
    ("--minmassgap", "-1", "-1.0 is not in the range x>=0"),
    ("--prior", "expo3", "'expo3' is not one of"),
]


@pytest.mark.parametrize(("option", "value", "message"), WALK)
def test_walk_refuses_bad_options_before_any_work(
    here: Path, option: str, value: str, message: str
) -> None:
    store = here.parent / "never-built.sqlite"
    result = run("walk", option, value, database=store)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert list(here.iterdir()) == []  # no run file
    assert not store.exists()


def test_walk_refuses_unknown_combinability_before_any_work(here: Path) -> None:
    store = here.parent / "never-built.sqlite"
    result = run("walk", "--combinability", "nonsense", database=store)
    assert result.exit_code == 1, result.output
    assert "unknown combinability matrix 'nonsense'" in result.output
    assert list(here.iterdir()) == []
    assert not store.exists()


def test_walk_refuses_a_bad_start_model_before_any_work(here: Path) -> None:
    store = here.parent / "never-built.sqlite"
    bad = here.parent / "bad.slha"
    bad.write_text("BLOCK MASS\n   1000022   not-a-number\n")
    result = run("walk", "--start", str(bad), database=store)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert str(bad) in result.output
    assert list(here.iterdir()) == []
    assert not store.exists()


PREDICT = [
    ("--sigmacut", "-1", "-1.0 is not in the range x>=0"),
    ("--sigmacut", "nan", "'nan' is not a finite number"),
    ("--minmassgap", "-5", "-5.0 is not in the range x>=0"),
    ("--maxcond", "1.5", "1.5 is not in the range 0<=x<=1"),
    ("--maxcond", "-0.1", "-0.1 is not in the range 0<=x<=1"),
    ("--sqrts", "0", "0.0 is not in the range x>0"),
    ("--collaboration", "LHCb", "'LHCb' is not one of"),
    ("--type", "upper", "'upper' is not one of"),
    ("--limit", "-1", "-1 is not in the range x>=0"),
]


@pytest.mark.parametrize(("option", "value", "message"), PREDICT)
def test_predict_refuses_bad_options(
    shared: Path, tmp_path: Path, option: str, value: str, message: str
) -> None:
    store = tmp_path / "never-built.sqlite"
    result = run("predict", _slha(shared), option, value, database=store)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output
    assert message in result.output
    assert not store.exists()


@pytest.mark.parametrize(("option", "value", "message"), WALK[-3:])
def test_evaluate_refuses_bad_options(
    shared: Path, tmp_path: Path, option: str, value: str, message: str
) -> None:
    store = tmp_path / "never-built.sqlite"
    result = run("evaluate", _slha(shared), option, value, database=store)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not store.exists()


def test_predict_refuses_unknown_ids_and_empty_selections(
    subset_store: Path, shared: Path
) -> None:
    result = run("predict", _slha(shared), "--id", "CMS-SUS-19-006", "--id", "NO-SUCH-1",
                 database=subset_store)
    assert result.exit_code == 1, result.output
    assert "Error: --id NO-SUCH-1: no such result in the database" in result.output
    result = run("predict", _slha(shared), "--sqrts", "7", database=subset_store)
    assert result.exit_code == 1, result.output
    assert "no result of the database passes the selection (sqrts=7.0" in result.output


# --------------------------------------------------------------------------- resume
@pytest.fixture
def run_file(tmp_path: Path) -> Path:
    path = tmp_path / "run.sqlite"
    config = {"steps": 10, "walkers": 1}
    with RunStorage(path) as storage:
        storage.write_metadata(RunMetadata("3.0.0", "x", "0.1.0", 0, config))
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--walkers", "3"], "--walkers: a resumed run keeps the settings stored in"),
        (["--seed", "1", "--temperature", "2"], "--seed, --temperature: a resumed run keeps"),
        (["--sigmacut", "0.1"], "--sigmacut: a resumed run keeps"),
        (["--out", "x.sqlite"], "--out and --resume exclude each other"),
        (["--steps", "5"], "--steps 5: the run in"),
    ],
)
def test_resume_refuses_options_it_would_ignore(
    run_file: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    before = _digest(run_file)
    store = tmp_path / "never-built.sqlite"
    result = run("walk", "--resume", str(run_file), *args, database=store)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert _digest(run_file) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.sqlite"]


def test_resume_of_a_file_without_metadata(tmp_path: Path) -> None:
    path = tmp_path / "bare.sqlite"
    RunStorage(path).close()  # tables, no metadata
    before = _digest(path)
    result = run("walk", "--resume", str(path), database=tmp_path / "never-built.sqlite")
    assert result.exit_code == 1, result.output
    assert f"{path} holds no run metadata: not a run file" in result.output
    assert _digest(path) == before


# --------------------------------------------------------------------------- start-up failure
@pytest.mark.parametrize("error", [RuntimeError("grids broke"), KeyboardInterrupt()])
def test_walk_failing_at_start_leaves_no_run_file(
    subset_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    import protomodels.builders.run as run_module

    def broken(*_: object, **__: object) -> None:
        raise error

    # the walkers' start-up (lazy grids: the first step would triangulate)
    monkeypatch.setattr(run_module, "_walk_processes", broken)
    out = tmp_path / "run.sqlite"
    result = run("walk", "--steps", "2", "--out", str(out), database=subset_store)
    assert result.exit_code != 0
    assert list(tmp_path.iterdir()) == []  # no run file, no -wal / -shm


def test_help_describes_an_unbounded_finite_option() -> None:
    """``campaign report --k-obs`` takes any finite K: its help says so (click alone would
    print the meaningless range ``x<=None``), and ``nan`` is refused."""
    help_text = CliRunner().invoke(cli, ["campaign", "report", "--help"], env=ENV).output
    k_obs = next(line for line in help_text.splitlines() if "--k-obs" in line)
    assert "[finite]" in k_obs and "None" not in k_obs
    refused = CliRunner().invoke(cli, ["campaign", "report", "missing.sqlite", "--k-obs", "nan"],
                                 env=ENV)
    assert refused.exit_code == 2 and "'nan' is not a finite number" in refused.output
