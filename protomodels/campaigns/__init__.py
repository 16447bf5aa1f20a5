"""Campaigns for the global p-value: toy databases (SM-only or signal-injected pseudo-data, see
:mod:`protomodels.campaigns.toys`) on which the walk is run many times (issue 20)."""

from __future__ import annotations

from protomodels.campaigns.toys import (
    Toy,
    ToyDatabaseMismatchError,
    ToyError,
    ToyMaker,
    ToyMethod,
    ToyReference,
    ToyReferenceError,
    apply_toy,
    count_toys,
    load_toy,
    make_toy,
    make_toys,
    observed_toy,
    parse_toy_reference,
    read_toy,
    read_toy_meta,
    write_toys,
)

__all__ = [
    "Toy",
    "ToyDatabaseMismatchError",
    "ToyError",
    "ToyMaker",
    "ToyMethod",
    "ToyReference",
    "ToyReferenceError",
    "apply_toy",
    "count_toys",
    "load_toy",
    "make_toy",
    "make_toys",
    "observed_toy",
    "parse_toy_reference",
    "read_toy",
    "read_toy_meta",
    "write_toys",
]


def __dir__() -> list[str]:
    return __all__
