"""The ledger of a campaign: its finished toys in one small JSON file that outlives the campaign
file and the toy file.

A campaign file (SQLite, with the toy file beside it) is derived from the database and large;
a long campaign may outlast the machine or the workspace it runs in. The ledger holds only
what the global p-value needs (per toy: K_max, T_L, the best model, the run summary, seconds),
the campaign's settings and the database's checksum, so that a campaign can be resumed
elsewhere without walking its finished toys again: :func:`protomodels.campaigns.run_campaign`
with ``ledger=`` adds the ledger's toys to the campaign file before it starts and rewrites the
ledger after each toy. A ledger made with other settings or on another database is refused.

File layout (JSON)::

    {"format": "protomodels-campaign-ledger/1", "settings": {...}, "database_version": "...",
     "database_checksum": "...", "toys": [{"index": 0, "K": ..., "T_L": ..., "model": {...},
     "summary": {...}, "seconds": ...}, ...]}

``settings`` are the campaign settings that decide a toy's outcome (walkers, steps, seed,
bg_scale, full_likelihoods, and the SHA-256 of the injected SLHA file); the number of toys and
the toy file's place are not part of them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from protomodels.campaigns.campaign import CampaignError, CampaignSettings, ToyOutcome, k_max_of

__all__ = ["LEDGER_FORMAT", "Ledger", "ledger_settings", "read_ledger", "write_ledger"]

LEDGER_FORMAT = "protomodels-campaign-ledger/1"


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True)
class Ledger:
    """The finished toys of a campaign, with what they were made with.

    Attributes:
        settings: :func:`ledger_settings` of the campaign.
        database_version, database_checksum: of the database the toys were walked on.
        outcomes: the finished toys, by index.
    """

    settings: dict[str, Any]
    database_version: str
    database_checksum: str
    outcomes: tuple[ToyOutcome, ...]

    @property
    def k_max(self) -> np.ndarray:
        """The best K of every toy in the ledger with an accepted step."""
        return k_max_of(self.outcomes)


def ledger_settings(settings: CampaignSettings) -> dict[str, Any]:
    """The settings that decide a toy's outcome, as a ledger stores them.

    Raises:
        CampaignError: the injected SLHA file cannot be read.
    """
    out = {k: v for k, v in asdict(settings).items() if k not in ("toys", "toys_file", "inject")}
    digest = None
    if settings.inject is not None:
        try:
            digest = hashlib.sha256(Path(settings.inject).read_bytes()).hexdigest()
        except OSError as err:
            msg = f"cannot read the injected model {settings.inject} ({err.strerror}); the "
            msg += "campaign's ledger identifies it by its contents"
            raise CampaignError(msg) from err
    out["inject_sha256"] = digest
    return out


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise CampaignError(f"{where} must be a number or null, got {value!r}")
    return float(value)


def _outcome(entry: Any, path: Path, position: int) -> ToyOutcome:
    where = f"{path}: toys[{position}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("index"), int):
        raise CampaignError(f"{where} needs an integer 'index'; rewrite the ledger or remove it")
    for key in ("model", "summary"):
        if not isinstance(entry.get(key, {}), dict):
            raise CampaignError(f"{where}.{key} must be an object")
    return ToyOutcome(
        index=entry["index"],
        K=_number(entry.get("K"), f"{where}.K"),
        T_L=_number(entry.get("T_L"), f"{where}.T_L"),
        model=dict(entry.get("model", {})),
        summary=dict(entry.get("summary", {})),
        seconds=_number(entry.get("seconds", 0.0), f"{where}.seconds") or 0.0,
    )


def read_ledger(path: str | os.PathLike[str]) -> Ledger | None:
    """The ledger in ``path`` (None when there is no such file).

    Raises:
        CampaignError: the file is not a ledger (the message names the field).
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        msg = f"{path} is not a campaign ledger ({err}); give a ledger written by a campaign "
        msg += "or a new file name"
        raise CampaignError(msg) from err
    if not isinstance(data, dict) or data.get("format") != LEDGER_FORMAT:
        msg = f"{path} is not a campaign ledger (its 'format' is not {LEDGER_FORMAT!r})"
        raise CampaignError(msg)
    if not isinstance(data.get("settings"), dict) or not isinstance(data.get("toys"), list):
        raise CampaignError(f"{path}: a ledger needs 'settings' (object) and 'toys' (list)")
    outcomes = [_outcome(entry, path, i) for i, entry in enumerate(data["toys"])]
    indices = [o.index for o in outcomes]
    if len(set(indices)) != len(indices):
        raise CampaignError(f"{path} lists a toy twice; keep one entry per toy index")
    return Ledger(
        settings=data["settings"],
        database_version=str(data.get("database_version", "")),
        database_checksum=str(data.get("database_checksum", "")),
        outcomes=tuple(sorted(outcomes, key=lambda o: o.index)),
    )


def write_ledger(path: str | os.PathLike[str], ledger: Ledger) -> None:
    """Write ``ledger`` to ``path`` (atomically: a reader sees the old or the new file)."""
    path = Path(path)
    data = {
        "format": LEDGER_FORMAT,
        "settings": ledger.settings,
        "database_version": ledger.database_version,
        "database_checksum": ledger.database_checksum,
        "toys": [
            {"index": o.index, "K": o.K, "T_L": o.T_L, "model": o.model, "summary": o.summary,
             "seconds": o.seconds}
            for o in sorted(ledger.outcomes, key=lambda o: o.index)
        ],
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
