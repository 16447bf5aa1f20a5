"""Shared pieces of the command line: options context, store opening with a progress bar,
error reporting."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from protomodels import database as pdb
from protomodels.exceptions import ProtomodelsError
from protomodels.paths import default_store_path

__all__ = ["Context", "console", "echo_json", "import_progress", "open_database", "reports_errors"]

F = TypeVar("F", bound=Callable[..., Any])


def __dir__() -> list[str]:
    return __all__


def console() -> Console:
    """Console on standard output (plain text when it is not a terminal)."""
    width = None if sys.stdout.isatty() else 140
    return Console(highlight=False, soft_wrap=False, width=width)


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


def open_database(ctx: Context, *, workspaces: bool = True) -> pdb.Database:
    """Load the store, building it (with a progress bar) when missing."""
    path = ctx.store_path
    if not pdb.store_is_ready(path):
        if ctx.database is not None and path.exists():
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


def reports_errors(func: F) -> F:
    """Turn protomodels errors into a one-line message and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ProtomodelsError, KeyError) as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            raise click.ClickException(str(message)) from err

    return wrapper  # type: ignore[return-value]
