"""Pin the public API: a change to what the package exports shows up as a test diff."""

import protomodels
import protomodels.database


def test_top_level_api() -> None:
    assert dir(protomodels) == [
        "Protomodel", "__version__", "evaluate", "evaluate_batch", "open_database", "predict",
        "walk",
    ]


def test_database_api() -> None:
    assert dir(protomodels.database) == [
        "Axis",
        "DataSet",
        "Database",
        "Grid",
        "ImportReport",
        "PyhfChannel",
        "PyhfWorkspace",
        "Result",
        "Topology",
        "check_store",
        "ensure_store",
        "import_database",
        "open",
        "store_is_ready",
    ]
