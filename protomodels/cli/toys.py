"""``protomodel toys make | info``: toy databases (pseudo-data) for the global p-value.

What is drawn is described in :mod:`protomodels.campaigns.toys`; every command that reads the
database takes ``--toy TOYS.sqlite:INDEX`` to use one of them.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from protomodels.cli.common import (
    Context,
    Finite,
    check_output_file,
    console,
    error_console,
    open_database,
    reports_errors,
)

__all__ = ["toys"]


def __dir__() -> list[str]:
    return __all__


@click.group()
def toys() -> None:
    """Toy databases: the observations redrawn from the background (plus an injected model)."""


def _what_is_drawn(maker: object) -> Table:
    """Counts of what one toy redraws, by kind."""
    table = Table(title="redrawn in each toy", show_header=False)
    for key, count in maker.summary().items():  # type: ignore[attr-defined]
        table.add_row(key, str(count))
    return table


@toys.command()
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Number of toys, >= 1.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help=">= 0")
@click.option("--inject", type=click.Path(exists=True, dir_okay=False), default=None,
              metavar="MODEL.slha",
              help="Add the yields this model predicts (signal-injected toys).")
@click.option("--bg-scale", type=Finite(min=0, min_open=True), default=1.0, show_default=True,
              help="Factor on every background uncertainty (> 0), in the toys and in the "
                   "database a toy gives.")
@click.option("--lognormal", is_flag=True,
              help="Lognormal instead of Gaussian background of the uncorrelated regions.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Toy file (SQLite); default toys-<seed>.sqlite. An existing file of the "
                   "same seed and method gets the toys it lacks.")
@click.pass_obj
@reports_errors
def make(
    ctx: Context, n: int, seed: int, inject: str | None, bg_scale: float, lognormal: bool,
    out: str | None,
) -> None:
    """Draw N toys of the database (toy i depends only on the seed and i) into a toy file."""
    from protomodels.campaigns.toys import (
        ToyMaker,
        read_toy_meta,
        toy_indices,
        write_toys,
    )

    path = Path(out or f"toys-{seed}.sqlite")
    check_output_file(str(path), "--out" if out else "toy file")
    have: set[int] = set()
    if path.exists():
        meta = read_toy_meta(path)  # refuses a file that is no toy file
        if meta["seed"] != seed:
            msg = (f"{path} holds toys of seed {meta['seed']}, not {seed}; choose a new file "
                   f"with --out, or give --seed {meta['seed']}")
            raise click.ClickException(msg)
        stored = meta["method"]
        asked = ("lognormal" if lognormal else "gaussian", float(bg_scale), inject is not None)
        if (stored.distribution, stored.bg_scale, stored.inject_name is not None) != asked:
            msg = (f"{path} holds toys made with another method ({stored.describe()}); choose a "
                   "new file with --out for these toys")
            raise click.ClickException(msg)
        have = set(toy_indices(path))
    t0 = time.perf_counter()
    database = open_database(ctx, workspaces=True)
    maker = ToyMaker(database, inject=inject, bg_scale=bg_scale,
                     distribution="lognormal" if lognormal else "gaussian")
    todo = [i for i in range(n) if i not in have]
    columns = (TextColumn("[bold]toys"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    made = []
    with Progress(*columns, console=error_console(), transient=True) as progress:
        task = progress.add_task("toys", total=len(todo))
        for i in todo:
            made.append(maker.toy(seed, i))
            progress.update(task, advance=1)
            if len(made) >= 100:  # keep memory flat for large n
                write_toys(path, made)
                made = []
    if made:
        write_toys(path, made)
    seconds = time.perf_counter() - t0
    out_console = console()
    out_console.print(_what_is_drawn(maker))
    summary = Table(title=f"toy file {path}", show_header=False)
    summary.add_row("database", f"{database.version} (source "
                                f"{(database.meta.get('source_checksum') or '-')[:12]})")
    summary.add_row("method", maker.method.describe())
    summary.add_row("seed", str(seed))
    summary.add_row("toys", f"{len(todo)} new, {len(have) + len(todo)} in the file"
                            if have else str(len(todo)))
    summary.add_row("size", f"{path.stat().st_size / 1e6:.2f} MB")
    summary.add_row("time", f"{seconds:.1f} s")
    out_console.print(summary)
    out_console.print(f"use one with --toy {path}:INDEX (e.g. protomodel evaluate MODEL.slha "
                      f"--toy {path}:0)")


@toys.command()
@click.argument("toy_file", type=click.Path(dir_okay=False))
@reports_errors
def info(toy_file: str) -> None:
    """What a toy file holds: database, method, seed, number of toys."""
    from protomodels.campaigns.toys import read_toy_meta, toy_indices

    meta = read_toy_meta(toy_file)
    indices = toy_indices(toy_file)
    table = Table(title=f"toy file {toy_file}", show_header=False)
    table.add_row("database", f"{meta['database_version']} (source "
                              f"{(meta['database_checksum'] or '-')[:12]})")
    table.add_row("method", meta["method"].describe())
    table.add_row("seed", str(meta["seed"]))
    span = f" (indices {indices[0]}..{indices[-1]})" if indices else ""
    table.add_row("toys", f"{meta['count']}{span}")
    table.add_row("made with", f"protomodels {meta.get('code_version', '?')}, "
                               f"{meta.get('created', '?')}")
    console().print(table)
