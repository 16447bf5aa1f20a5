"""The ``protomodel`` command line: a thin layer over the library.

Global options choose the shared data folder (``--shared`` / ``PROTOMODELS_SHARED``) and the
store (``--database`` / ``PROTOMODELS_DATABASE``); each command group lives in its own module.
"""

from __future__ import annotations

import click

from protomodels._version import __version__
from protomodels.cli.campaign import campaign
from protomodels.cli.common import Context
from protomodels.cli.db import db
from protomodels.cli.evaluate import evaluate
from protomodels.cli.inference import errors, posterior
from protomodels.cli.metastatistics import excesses, pvalues
from protomodels.cli.predict import predict
from protomodels.cli.toys import toys
from protomodels.cli.walk import hiscores, plot, show, walk

__all__ = ["cli", "main"]


def __dir__() -> list[str]:
    return __all__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="protomodel")
@click.option(
    "--shared",
    envvar="PROTOMODELS_SHARED",
    type=click.Path(file_okay=False),
    default=None,
    help="Shared data folder (holds data/); default ../shared next to the repository.",
)
@click.option(
    "--database",
    envvar="PROTOMODELS_DATABASE",
    type=click.Path(dir_okay=False),
    default=None,
    help="SQLite store; default one in the user cache, built on first use.",
)
@click.pass_context
def cli(ctx: click.Context, shared: str | None, database: str | None) -> None:
    """protomodel: minimal new-physics models from the LHC results in the SModelS database."""
    ctx.obj = Context(shared=shared, database=database)


cli.add_command(db)
cli.add_command(predict)
cli.add_command(evaluate)
cli.add_command(walk)
cli.add_command(hiscores)
cli.add_command(show)
cli.add_command(plot)
cli.add_command(toys)
cli.add_command(campaign)
cli.add_command(errors)
cli.add_command(posterior)
cli.add_command(excesses)
cli.add_command(pvalues)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="protomodel")
