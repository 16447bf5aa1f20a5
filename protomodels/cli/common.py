"""Shared pieces of the command line: options context, store opening with a progress bar,
checks of the user's input before any work, error reporting and the warnings of a command
(each distinct one shown once, on standard error, as the tool's own message)."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from protomodels import database as pdb
from protomodels.exceptions import ProtomodelsError
from protomodels.paths import default_store_path

__all__ = [
    "Context",
    "Finite",
    "WarningLog",
    "check_output_file",
    "check_output_folder",
    "collect_warnings",
    "console",
    "current_warnings",
    "echo_json",
    "error_console",
    "import_progress",
    "open_database",
    "print_warning_table",
    "reports_errors",
    "toy_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def __dir__() -> list[str]:
    return __all__


def console() -> Console:
    """Console on standard output (plain text when it is not a terminal)."""
    width = None if sys.stdout.isatty() else 140
    return Console(highlight=False, soft_wrap=False, width=width)


def error_console() -> Console:
    """Console on standard error (warnings, tables of problems); not a terminal: $COLUMNS
    wide, else 140."""
    columns = os.environ.get("COLUMNS", "")
    width = None if sys.stderr.isatty() else (int(columns) if columns.isdigit() else 140)
    return Console(stderr=True, highlight=False, soft_wrap=False, width=width)


@dataclass
class Context:
    """Global options of the ``protomodel`` command."""

    shared: str | None
    database: str | None

    @property
    def store_path(self) -> Path:
        """The store the commands use."""
        return Path(self.database) if self.database else default_store_path()


@contextmanager
def import_progress(description: str = "importing database") -> Iterator[pdb.ProgressCallback]:
    """A rich progress bar (on standard error) fed by the importer's callback."""
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"),
        console=Console(stderr=True),
        transient=False,
    )
    with bar:
        task = bar.add_task(description, total=None, current="")

        def update(done: int, total: int, current: str) -> None:
            bar.update(task, completed=done, total=total, current=current)

        yield update


def open_database(
    ctx: Context, *, workspaces: bool = True, toy: str | None = None
) -> pdb.Database:
    """Load the store, building it (with a progress bar) when missing; with ``toy``
    (``TOYS.sqlite:INDEX``), the toy database made from it (:mod:`protomodels.campaigns.toys`)."""
    database = _open_store(ctx, workspaces=workspaces)
    if toy is None:
        return database
    from protomodels.campaigns.toys import apply_toy, load_toy

    chosen = load_toy(toy, database)
    click.echo(f"toy database: {chosen.label} ({chosen.method.describe()})", err=True)
    return apply_toy(database, chosen)


def _toy_reference(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--toy``: refuse a malformed reference, a missing or foreign file, a missing index
    before any work; the reference with the file's absolute path."""
    if value is None:
        return None
    from protomodels.campaigns.toys import ToyReferenceError, parse_toy_reference

    try:
        reference = parse_toy_reference(value)
    except ToyReferenceError as err:
        raise click.BadParameter(str(err), ctx=ctx, param=param) from err
    return str(type(reference)(reference.path.resolve(), reference.index))


def toy_option(func: F) -> F:
    """The ``--toy TOYS.sqlite:INDEX`` option of the commands that read the database."""
    return click.option(  # type: ignore[return-value]
        "--toy", default=None, metavar="TOYS.sqlite:INDEX", callback=_toy_reference,
        help="Use toy INDEX of this toy file ('protomodel toys make') instead of the real "
             "observations; TOYS.sqlite:observed: the real ones with the file's --bg-scale.",
    )(func)


def _open_store(ctx: Context, *, workspaces: bool) -> pdb.Database:
    path = ctx.store_path
    if not pdb.store_is_ready(path):
        if ctx.database is not None and path.exists():
            pdb.check_store(path)  # a file that is no store at all: an error, not a warning
            click.echo(
                f"warning: store {path} is incomplete (its last import had errors); "
                "showing what it holds. Rerun 'protomodel db import' to complete it.",
                err=True,
            )
            return pdb.open(path, build=False, workspaces=workspaces)
        click.echo(f"building the database store {path} (first use)", err=True)
        with import_progress() as progress:
            pdb.ensure_store(path, shared=ctx.shared, progress=progress)
    return pdb.open(path, build=False, workspaces=workspaces)


def echo_json(data: Any) -> None:
    """Print JSON to standard output."""
    click.echo(json.dumps(data, indent=2, default=str))


# -- input checks ----------------------------------------------------------------------------
class Finite(click.FloatRange):
    """A float option in a range that also refuses ``nan`` and ``inf`` (``click.FloatRange``
    lets ``nan`` through every bound)."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv

    def _describe_range(self) -> str:
        # click writes an unbounded range as "x<=None" in the help
        if self.min is None and self.max is None:
            return "finite"
        return super()._describe_range()


def _refuse(option: str, path: str, problem: str) -> click.ClickException:
    return click.ClickException(f"{option} {path}: {problem}")


def _nearest_existing(path: Path) -> Path:
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def check_output_file(path: str | None, option: str, *, overwrite: bool = True) -> None:
    """Refuse, before any work, an output file that could not be written: a folder, a missing
    or read-only parent folder, an existing file that may not be replaced. ``None`` and ``-``
    (standard output) pass.

    Raises:
        click.ClickException: the message names the option and the path and says what to do.
    """
    if path is None or path == "-":
        return
    p = Path(path)
    if p.is_dir():
        raise _refuse(option, path, "is a folder; give a file name (e.g. "
                                    f"{Path(path) / 'out'}{p.suffix or '.json'})")
    if p.exists() and not overwrite:
        raise _refuse(option, path, "exists; choose a new file name")
    parent = p.absolute().parent
    if not parent.exists():
        raise _refuse(option, path, f"the folder {p.parent} does not exist; create it first "
                                    "or choose another path")
    if not parent.is_dir():
        raise _refuse(option, path, f"{p.parent} is not a folder; choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise _refuse(option, path, f"the folder {p.parent} is not writable; choose another "
                                    "path")
    if p.exists() and not os.access(p, os.W_OK):
        raise _refuse(option, path, "exists and is read-only; choose another path")


def check_output_folder(path: str, option: str, names: Iterable[str] = ()) -> None:
    """Refuse, before any work, an output folder that is an existing file (or inside one), or
    that could not be created or written; ``names``: files to be written in it, none of which
    may be a folder. A missing folder is fine (it is created).

    Raises:
        click.ClickException: the message names the option and the path and says what to do.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise _refuse(option, path, "is a file, not a folder; give a folder (created when "
                                    "missing)")
    if not p.exists():
        base = _nearest_existing(p)
        if not base.is_dir():
            raise _refuse(option, path, f"{base} is a file, so the folder cannot be created; "
                                        "choose another folder")
    else:
        base = p
    if not os.access(base, os.W_OK | os.X_OK):
        raise _refuse(option, path, f"the folder {base} is not writable; choose another folder")
    for name in names:
        if (p / name).is_dir():
            raise _refuse(option, path, f"{p / name} is a folder, where a file is to be "
                                        "written; remove it or choose another folder")


# -- warnings ----------------------------------------------------------------------------------
@dataclass
class WarningLog:
    """The distinct warnings of a command, in the order they first came."""

    messages: dict[str, str] = field(default_factory=dict)  # message -> category name

    def add(self, message: str, category: str = "UserWarning") -> None:
        """Record one message (a repeat, or a note already shown with a file prefix, is
        dropped)."""
        message = str(message).strip()
        if not message or message in self.messages:
            return
        if any(m.endswith(": " + message) for m in self.messages):
            return
        self.messages[message] = category

    def take(self) -> dict[str, str]:
        """The messages so far, which are then forgotten (the caller shows them itself)."""
        taken, self.messages = self.messages, {}
        return taken

    def discard(self, messages: Iterable[str]) -> None:
        """Forget these messages (shown elsewhere)."""
        for m in messages:
            self.messages.pop(str(m).strip(), None)

    def _show(
        self, message: Warning | str, category: type[Warning], *_: Any, **__: Any
    ) -> None:  # the signature of warnings.showwarning
        self.add(str(message), category.__name__)

    def print(self) -> None:
        """Each message once, as ``warning: ...`` on standard error."""
        out = error_console()
        for message, category in self.take().items():
            kind = "" if category in _PLAIN else f" ({category})"
            out.print(f"[yellow]warning{kind}:[/] {escape(message)}", soft_wrap=True)


_PLAIN = {"UserWarning", "InputCorrectionWarning"}
_LOGS: list[WarningLog] = []


def current_warnings() -> WarningLog | None:
    """The log of the innermost :func:`collect_warnings` (None outside one)."""
    return _LOGS[-1] if _LOGS else None


@contextmanager
def collect_warnings(*, show: bool = True) -> Iterator[WarningLog]:
    """Record the Python warnings issued inside (the warning filters stay as they are) and,
    with ``show``, print each distinct message once at the end, also when the body fails.
    Without ``show`` the caller shows them itself; if the body fails, what it has not taken
    goes to the enclosing collector."""
    log = WarningLog()
    failed = False
    with warnings.catch_warnings():
        warnings.showwarning = log._show  # restored by catch_warnings
        _LOGS.append(log)
        try:
            yield log
        except BaseException:
            failed = True
            raise
        finally:
            _LOGS.pop()
            if show:
                log.print()
            elif failed and _LOGS:
                for message, category in log.take().items():
                    _LOGS[-1].add(message, category)


def print_warning_table(messages: Iterable[str], title: str) -> None:
    """A table of warnings on standard error, with the file a message names in its own
    column."""
    rows = []
    for message in dict.fromkeys(m.strip() for m in messages):
        head, sep, rest = message.partition(": ")
        if sep and " " not in head and ("/" in head or "." in head):
            rows.append((head, rest))
        else:
            rows.append(("", message))
    if not rows:
        return
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("file", overflow="fold")
    table.add_column("warning", overflow="fold")
    for where, what in rows:
        table.add_row(escape(where), escape(what))
    error_console().print(table)


# -- errors ------------------------------------------------------------------------------------
def _os_error_message(err: OSError) -> str:
    what = err.strerror or str(err)
    if err.filename is None:
        return f"{what}; check the paths given and their permissions"
    path = err.filename if err.filename2 is None else f"{err.filename} -> {err.filename2}"
    hints = {
        FileNotFoundError: "check the path (and that its folder exists)",
        IsADirectoryError: "give a file, not a folder",
        NotADirectoryError: "a part of the path is a file, not a folder",
        PermissionError: "check the permissions, or choose another path",
        FileExistsError: "remove it or choose another path",
    }
    hint = next((h for kind, h in hints.items() if isinstance(err, kind)), "check the path")
    return f"{path}: {what}; {hint}"


def reports_errors(func: F) -> F:
    """Run a command with its warnings collected (each distinct one shown once on standard
    error, see :func:`collect_warnings`) and turn protomodels errors and errors about files
    (``OSError``) into a one-line message and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with collect_warnings():
            try:
                return func(*args, **kwargs)
            except (ProtomodelsError, KeyError) as err:
                message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
                raise click.ClickException(str(message)) from err
            except OSError as err:
                raise click.ClickException(_os_error_message(err)) from err

    return wrapper  # type: ignore[return-value]
