"""The MODEL argument of the commands that look at one protomodel: an SLHA file (evaluated with
the command's options) or a walk's run file (its model of a given rank, with the run's own
settings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from protomodels.cli.common import Context
from protomodels.cli.evaluate import evaluation_settings
from protomodels.evaluation import EvaluationSettings
from protomodels.theory.protomodel import Protomodel

__all__ = ["ModelInput", "model_input"]


def __dir__() -> list[str]:
    return __all__


@dataclass
class ModelInput:
    """A protomodel to look at, the evaluation settings to use and where it came from."""

    model: Protomodel
    settings: EvaluationSettings
    run_file: Path | None
    label: str


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"


def model_input(
    ctx: Context, path: str, rank: int, options: dict[str, Any]
) -> ModelInput:
    """The model and evaluation settings of MODEL.slha (the options) or RUN.sqlite (the run's
    own settings, the model of rank ``rank``)."""
    file = Path(path)
    if _is_sqlite(file):
        from protomodels.builders.records import model_from_json
        from protomodels.builders.run import stored_run_settings
        from protomodels.builders.storage import RunStorage

        settings = stored_run_settings(file).evaluation
        with RunStorage(file, readonly=True) as storage:
            entries = storage.hiscores()
        if not entries:
            raise click.ClickException(f"{file} has no hiscores yet (no model was accepted)")
        if rank > len(entries):
            raise click.BadParameter(f"the run has {len(entries)} hiscores", param_hint="--rank")
        model = model_from_json(entries[rank - 1].model)
        return ModelInput(model, settings, file, f"{file.name} rank {rank}")
    settings = evaluation_settings(ctx, **options)  # type: ignore[arg-type]
    return ModelInput(Protomodel.from_slha(file), settings, None, file.name)
