"""Pin the public API of the builders stage."""

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
        "MoveProbabilities",
        "MoveRecord",
        "MoveSettings",
        "change_branchings",
        "change_mass",
        "change_multipliers",
        "freeze_particle",
        "freeze_unused",
        "legalize",
        "lsp_only",
        "merge_particles",
        "open_channels",
        "random_move",
        "unfreeze_particle",
    ]
    assert dir(protomodels.builders.storage) == [
        "RunMetadata",
        "RunStorage",
        "RunStorageError",
        "SCHEMA_VERSION",
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
