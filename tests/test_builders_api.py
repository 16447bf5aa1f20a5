"""Pin the public API of the builders stage."""

import pytest

import protomodels.builders
import protomodels.builders.draft
import protomodels.builders.moves
import protomodels.builders.storage
import protomodels.builders.walker


def test_builders_api() -> None:
    assert dir(protomodels.builders) == [
        "Evaluation",
        "Hiscore",
        "MoveProbabilities",
        "MoveRecord",
        "MoveSettings",
        "RunMetadata",
        "RunStorage",
        "RunStorageError",
        "StepRecord",
        "Walker",
        "WalkerConfig",
        "WalkerConfigError",
        "WalkerState",
        "model_from_json",
        "model_to_json",
        "random_move",
        "walk",
    ]


def test_builders_module_apis() -> None:
    assert dir(protomodels.builders.moves) == [
        "LONG_LIVED_WIDTHS",
        "MoveProbabilities",
        "MoveRecord",
        "MoveSettings",
        "change_branchings",
        "change_lifetime",
        "change_mass",
        "change_multipliers",
        "freeze_particle",
        "freeze_unused",
        "legalize",
        "lsp_only",
        "merge_particles",
        "open_channels",
        "random_move",
        "refine_move",
        "refine_settings",
        "unfreeze_particle",
    ]
    assert dir(protomodels.builders.storage) == [
        "RunMetadata",
        "RunStorage",
        "RunStorageError",
        "SCHEMA_VERSION",
        "SQLITE_HEADER",
        "check_run_file",
    ]
    assert dir(protomodels.builders.draft) == [
        "Draft",
        "DraftChannel",
        "OFFSHELL_WEIGHTS",
        "SM_MASSES",
        "channel_groups",
        "channel_key",
        "init_branchings",
        "template_index",
    ]
    assert "Walker" in dir(protomodels.builders.walker)


def test_start_model_from_an_slha_with_cross_sections(shared) -> None:  # noqa: ANN001
    """An SLHA start (XSECTION blocks) becomes multipliers of the reference tables, which the
    walker accepts; the tables then give back the file's 13 TeV cross sections."""
    from protomodels.builders.run import start_model
    from protomodels.builders.walker import _check_start
    from protomodels.theory.protomodel import Protomodel
    from protomodels.theory.xsec import load_tables, table_xsec

    path = shared / "data" / "reference" / "protomodels_latest.slha"
    model = start_model(path)
    assert model.xsecs is None and model.ssm
    _check_start(model)
    given = Protomodel.from_slha(path).xsecs
    tables = load_tables(shared)
    for pair, value in model.ssm.items():
        by = {tuple(sorted(p)): v for p, v in given.items()}
        if value > 0:
            reference = table_xsec(pair, model.masses, tables, interpolation="linear")[13.0]
            assert reference * value == pytest.approx(by[tuple(sorted(pair))][13.0], rel=1e-9)
