"""Bad files given to the command line (issue 17): run files that are not SQLite run files,
output paths that cannot be written, a missing matplotlib. Each case builds the bad input in a
temporary folder, checks the one-line message and the exit code, and checks that nothing
already there changed, that the work never started (the store given with --database is never
built) and that no run file was created."""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from protomodels.builders.storage import RunMetadata, RunStorage
from protomodels.cli import cli

ENV = {"COLUMNS": "400", "PROTOMODELS_DATABASE": None}
RESUME_HINT = "give --resume a run file written by 'protomodel walk'"


def run(*args: str, database: Path) -> Result:
    return CliRunner().invoke(cli, ["--database", str(database), *args], env=ENV)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the hash of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }  # fmt: skip


def error_line(result: Result) -> str:
    """The message of a refused command: exactly one line, 'Error: ...'."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def bad_files(tmp_path: Path) -> Path:
    """A folder with a text file, an empty file, a store-like SQLite file and a real run
    file."""
    (tmp_path / "notes.txt").write_text("my notes\nnot a run\n")
    (tmp_path / "empty.sqlite").write_bytes(b"")
    with sqlite3.connect(tmp_path / "other.sqlite") as db:
        db.execute("CREATE TABLE results (id TEXT)")
    db.close()
    with RunStorage(tmp_path / "run.sqlite") as storage:
        storage.write_metadata(RunMetadata("3.0.0", "x", "0.1.0", 0, {"steps": 3}))
    return tmp_path


# --------------------------------------------------------------------------- run files
@pytest.mark.parametrize("command", ["show", "hiscores", "plot", "walk --resume"])
@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("notes.txt", "is not a run file (not an SQLite database)"),
        ("empty.sqlite", "is empty, not a run file"),
        ("other.sqlite", "is an SQLite file but not a run file"),
    ],
)
def test_not_a_run_file_is_refused_unchanged(
    bad_files: Path, command: str, name: str, problem: str
) -> None:
    before = snapshot(bad_files)
    store = bad_files / "never-built.sqlite"
    path = str(bad_files / name)
    extra = ["--out", str(bad_files / "plots")] if command == "plot" else []
    result = run(*command.split(), path, *extra, database=store)
    assert result.exit_code == 1, result.output
    line = error_line(result)
    assert f"{path} {problem}" in line
    if name != "other.sqlite":
        assert "run file written by 'protomodel walk'" in line
    if command == "walk --resume" and name != "other.sqlite":
        assert RESUME_HINT in line
    assert snapshot(bad_files) == before  # byte for byte, and no file (or -wal, -shm) added
    assert not store.exists()
    assert not (bad_files / "plots").exists()


def test_read_only_commands_never_write_a_run_file(bad_files: Path, tmp_path: Path) -> None:
    """show / hiscores / plot only read: the run file and its folder are left as they were
    (no -wal or -shm files appear beside it)."""
    run_file = bad_files / "run.sqlite"
    before = snapshot(bad_files)
    store = bad_files / "never-built.sqlite"
    result = run("hiscores", str(run_file), "--json", database=store)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "[]"
    result = run("show", str(run_file), database=store)
    assert result.exit_code == 1
    assert "has no hiscores yet" in error_line(result)
    assert snapshot(bad_files) == before
    with RunStorage(run_file, readonly=True) as storage:
        assert storage.metadata().seed == 0
    assert snapshot(bad_files) == before


def test_read_only_storage_refuses_to_create(tmp_path: Path) -> None:
    from protomodels.builders.storage import RunStorageError

    with pytest.raises(RunStorageError, match="no such run file"):
        RunStorage(tmp_path / "missing.sqlite", readonly=True)
    assert list(tmp_path.iterdir()) == []


def test_writing_storage_refuses_a_text_file(bad_files: Path) -> None:
    from protomodels.builders.storage import RunStorageError

    before = snapshot(bad_files)
    with pytest.raises(RunStorageError, match="not an SQLite database"):
        RunStorage(bad_files / "notes.txt")
    assert snapshot(bad_files) == before


# --------------------------------------------------------------------------- output paths
def _slha(shared: Path) -> str:
    return str(shared / "data" / "reference" / "random_1_01.slha")


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_json_into_a_missing_folder_is_refused_before_any_work(
    command: str, shared: Path, tmp_path: Path
) -> None:
    store = tmp_path / "never-built.sqlite"
    out = tmp_path / "missing_folder" / "out.json"
    result = run(command, _slha(shared), "--json", str(out), database=store)
    assert result.exit_code == 1, result.output
    line = error_line(result)
    assert f"--json {out}: the folder {out.parent} does not exist" in line
    assert "create it first or choose another path" in line
    assert not store.exists()  # refused before the store was opened (or built)
    assert not out.parent.exists()


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_json_onto_a_folder_is_refused(command: str, shared: Path, tmp_path: Path) -> None:
    store = tmp_path / "never-built.sqlite"
    (tmp_path / "out").mkdir()
    result = run(command, _slha(shared), "--json", str(tmp_path / "out"), database=store)
    assert result.exit_code == 2, result.output  # click's own check (dir_okay=False)
    assert "is a directory" in result.output
    assert not store.exists()


def test_json_below_a_file_is_refused(shared: Path, tmp_path: Path) -> None:
    store = tmp_path / "never-built.sqlite"
    (tmp_path / "a_file").write_text("keep me")
    out = tmp_path / "a_file" / "out.json"
    result = run("predict", _slha(shared), "--json", str(out), database=store)
    assert result.exit_code == 1, result.output
    assert f"--json {out}: {out.parent} is not a folder; choose another path" in (
        error_line(result)
    )
    assert (tmp_path / "a_file").read_text() == "keep me"
    assert not store.exists()


def test_show_slha_into_a_missing_folder(bad_files: Path) -> None:
    before = snapshot(bad_files)
    out = bad_files / "nope" / "best.slha"
    store = bad_files / "never-built.sqlite"
    result = run("show", str(bad_files / "run.sqlite"), "--slha", str(out), database=store)
    assert result.exit_code == 1, result.output
    assert f"--slha {out}: the folder {out.parent} does not exist" in error_line(result)
    assert snapshot(bad_files) == before


def test_walk_out_checks(bad_files: Path) -> None:
    before = snapshot(bad_files)
    store = bad_files / "never-built.sqlite"
    out = bad_files / "nope" / "run.sqlite"
    result = run("walk", "--steps", "2", "--out", str(out), database=store)
    assert result.exit_code == 1, result.output
    assert f"--out {out}: the folder {out.parent} does not exist" in error_line(result)
    # an existing file (a text file here) is never taken as a new run's file
    result = run("walk", "--steps", "2", "--out", str(bad_files / "notes.txt"), database=store)
    assert result.exit_code == 1, result.output
    line = error_line(result)
    assert "notes.txt exists: use --resume to continue it, or choose a new file" in line
    assert snapshot(bad_files) == before
    assert not store.exists()


def test_walk_default_run_file_that_exists_is_refused_up_front(
    bad_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(bad_files)
    (bad_files / "walk-4.sqlite").write_text("someone else's file")
    before = snapshot(bad_files)
    result = run("walk", "--seed", "4", database=bad_files / "never-built.sqlite")
    assert result.exit_code == 1, result.output
    assert "walk-4.sqlite exists: use --resume" in error_line(result)
    assert snapshot(bad_files) == before


def test_plot_out_that_is_a_file(bad_files: Path) -> None:
    before = snapshot(bad_files)
    store = bad_files / "never-built.sqlite"
    result = run("plot", str(bad_files / "run.sqlite"), "--out", str(bad_files / "notes.txt"),
                 database=store)
    assert result.exit_code == 2, result.output  # click's check (file_okay=False)
    assert "is a file" in result.output
    result = run("plot", str(bad_files / "run.sqlite"), "--out",
                 str(bad_files / "notes.txt" / "plots"), database=store)
    assert result.exit_code == 1, result.output
    assert "notes.txt is a file, so the folder cannot be created" in error_line(result)
    (bad_files / "plots" / "walk.png").mkdir(parents=True)
    result = run("plot", str(bad_files / "run.sqlite"), "--out", str(bad_files / "plots"),
                 database=store)
    assert result.exit_code == 1, result.output
    assert "walk.png is a folder, where a file is to be written" in error_line(result)
    assert snapshot(bad_files) == before


def test_plot_creates_its_folder(bad_files: Path) -> None:
    pytest.importorskip("matplotlib")
    out = bad_files / "new" / "plots"
    result = run("plot", str(bad_files / "run.sqlite"), "--out", str(out),
                 database=bad_files / "never-built.sqlite")
    assert result.exit_code == 0, result.output
    assert (out / "walk.png").exists()


# --------------------------------------------------------------------------- optional packages
def test_plot_without_matplotlib(bad_files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    before = snapshot(bad_files)
    out = bad_files / "plots"
    result = run("plot", str(bad_files / "run.sqlite"), "--out", str(out),
                 database=bad_files / "never-built.sqlite")
    assert result.exit_code == 1, result.output
    line = error_line(result)
    assert "plots (protomodel plot) needs the Python package matplotlib" in line
    assert f"{sys.executable} -m pip install 'matplotlib>=3.7'" in line
    assert not out.exists()
    assert snapshot(bad_files) == before


def test_require_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from protomodels._optional import MissingDependencyError, require
    from protomodels.exceptions import ProtomodelsError

    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # (imported by other tests)
    with pytest.raises(MissingDependencyError, match=r"pip install 'dask\[distributed\]") as err:
        require("dask.distributed")
    assert isinstance(err.value, ImportError) and isinstance(err.value, ProtomodelsError)
    assert require("json").dumps([]) == "[]"


def test_matplotlib_is_a_dependency() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("matplotlib") for d in project["dependencies"])


# --------------------------------------------------------------------------- database stores
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("notes.txt", "is not a protomodels store (not an SQLite database)"),
        ("empty.sqlite", "is empty, not a protomodels store"),
        ("other.sqlite", "has no protomodels tables"),
    ],
)
@pytest.mark.parametrize("command", [["db", "info"], ["db", "list"]])
def test_a_file_that_is_no_store_is_refused_unchanged(
    bad_files: Path, name: str, message: str, command: list[str]
) -> None:
    """``--database`` names a file that is no store: one line naming it, no warning that the
    store is 'incomplete', no journal or WAL file beside it, the file unchanged."""
    before = snapshot(bad_files)
    result = run(*command, database=bad_files / name)
    assert result.exit_code == 1, result.output
    line = error_line(result)
    assert str(bad_files / name) in line and message in line, line
    assert snapshot(bad_files) == before


@pytest.mark.parametrize(
    ("name", "message"),
    [("notes.txt", "not an SQLite database"), ("other.sqlite", "of something else")],
)
def test_import_refuses_to_write_into_a_file_that_is_no_store(
    bad_files: Path, name: str, message: str
) -> None:
    before = snapshot(bad_files)
    result = CliRunner().invoke(
        cli, ["db", "import", "--out", str(bad_files / name), "--only", "x"], env=ENV
    )
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    assert snapshot(bad_files) == before
