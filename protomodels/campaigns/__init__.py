"""Campaigns for the global p-value: toy databases (SM-only or signal-injected pseudo-data, see
:mod:`protomodels.campaigns.toys`) on which the walk is run many times
(:mod:`protomodels.campaigns.campaign`, locally or on a Dask cluster), and the global p-value of
an observed K from the toys' K_max (:mod:`protomodels.campaigns.report`)."""

from __future__ import annotations

from protomodels.campaigns.campaign import (
    Campaign,
    CampaignError,
    CampaignSettings,
    ToyOutcome,
    read_campaign,
    run_campaign,
)
from protomodels.campaigns.ledger import Ledger, read_ledger, write_ledger
from protomodels.campaigns.report import GlobalPValue, global_p_value
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
    "Campaign",
    "CampaignError",
    "CampaignSettings",
    "GlobalPValue",
    "Ledger",
    "Toy",
    "ToyDatabaseMismatchError",
    "ToyError",
    "ToyMaker",
    "ToyMethod",
    "ToyOutcome",
    "ToyReference",
    "ToyReferenceError",
    "apply_toy",
    "count_toys",
    "load_toy",
    "make_toy",
    "make_toys",
    "observed_toy",
    "global_p_value",
    "parse_toy_reference",
    "read_campaign",
    "read_ledger",
    "read_toy",
    "read_toy_meta",
    "run_campaign",
    "write_ledger",
    "write_toys",
]


def __dir__() -> list[str]:
    return __all__
