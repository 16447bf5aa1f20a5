"""The campaign ledger: finished toys kept in a small JSON file and resumed from elsewhere."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from protomodels.campaigns.campaign import CampaignError, CampaignSettings, run_campaign
from protomodels.campaigns.ledger import (
    LEDGER_FORMAT,
    Ledger,
    ledger_settings,
    read_ledger,
    write_ledger,
)

SMALL = CampaignSettings(toys=2, walkers=2, steps=3, seed=5, full_likelihoods=False)


def test_a_campaign_resumes_elsewhere_from_its_ledger(subset_store: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "toys.json"
    first = run_campaign(tmp_path / "a.sqlite", subset_store, replace(SMALL, toys=1),
                         serial=True, ledger=ledger)
    kept = read_ledger(ledger)
    assert kept is not None and [o.index for o in kept.outcomes] == [0]
    assert kept.outcomes[0].K == first.outcomes[0].K
    assert kept.outcomes[0].model == first.outcomes[0].model
    # another machine: no campaign file, no toy file; only the ledger
    seen: list[int] = []
    second = run_campaign(tmp_path / "b.sqlite", subset_store, SMALL, serial=True,
                          ledger=ledger, on_toy=lambda o, done, total: seen.append(o.index))
    assert seen == [1]  # toy 0 came from the ledger
    assert [o.index for o in second.outcomes] == [0, 1]
    assert second.outcomes[0].K == first.outcomes[0].K
    assert [o.index for o in read_ledger(ledger).outcomes] == [0, 1]
    # the same toy 1 as a campaign that walked both toys
    both = run_campaign(tmp_path / "c.sqlite", subset_store, SMALL, serial=True)
    assert second.outcomes[1].K == both.outcomes[1].K


def test_a_ledger_of_other_settings_or_database_is_refused(
    subset_store: Path, tmp_path: Path
) -> None:
    ledger = tmp_path / "toys.json"
    write_ledger(ledger, Ledger(ledger_settings(replace(SMALL, steps=9)), "3.0.0", "x", ()))
    with pytest.raises(CampaignError, match="another database"):
        run_campaign(tmp_path / "a.sqlite", subset_store, SMALL, serial=True, ledger=ledger)
    from protomodels.database import open as open_database

    checksum = str(open_database(subset_store, build=False, workspaces=False)
                   .meta.get("source_checksum") or "")
    write_ledger(ledger, Ledger(ledger_settings(replace(SMALL, steps=9)), "3.0.0", checksum, ()))
    with pytest.raises(CampaignError, match="other settings.*steps 9 -> 3"):
        run_campaign(tmp_path / "b.sqlite", subset_store, SMALL, serial=True, ledger=ledger)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not a campaign ledger"),
        (json.dumps({"format": "other"}), "format"),
        (json.dumps({"format": LEDGER_FORMAT, "settings": {}}), "'toys'"),
        (json.dumps({"format": LEDGER_FORMAT, "settings": {}, "toys": [{"K": 1.0}]}),
         r"toys\[0\] needs an integer 'index'"),
        (json.dumps({"format": LEDGER_FORMAT, "settings": {}, "toys": [{"index": 0, "K": "a"}]}),
         r"toys\[0\]\.K must be a number"),
        (json.dumps({"format": LEDGER_FORMAT, "settings": {},
                     "toys": [{"index": 0}, {"index": 0}]}), "twice"),
    ],
)
def test_a_malformed_ledger_is_refused_by_name(text: str, match: str, tmp_path: Path) -> None:
    path = tmp_path / "toys.json"
    path.write_text(text)
    with pytest.raises(CampaignError, match=match) as err:
        read_ledger(path)
    assert str(path) in str(err.value)
    assert path.read_text() == text  # nothing written


def test_missing_ledger_is_none_and_injection_is_named_by_contents(tmp_path: Path) -> None:
    assert read_ledger(tmp_path / "none.json") is None
    slha = tmp_path / "model.slha"
    slha.write_text("BLOCK MASS\n 1000022 100.\n")
    a = ledger_settings(replace(SMALL, inject=str(slha)))
    moved = tmp_path / "elsewhere.slha"
    moved.write_text(slha.read_text())
    assert ledger_settings(replace(SMALL, inject=str(moved))) == a
    assert "toys" not in a and "toys_file" not in a
    with pytest.raises(CampaignError, match="cannot read the injected model"):
        ledger_settings(replace(SMALL, inject=str(tmp_path / "gone.slha")))


def test_report_cli_reads_a_ledger(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from protomodels.campaigns.campaign import ToyOutcome
    from protomodels.cli import cli

    ledger = tmp_path / "toys.json"
    ks = [0.5, 2.0, 3.0, 7.0]
    write_ledger(ledger, Ledger(ledger_settings(SMALL), "3.0.0", "x",
                                tuple(ToyOutcome(i, k, None) for i, k in enumerate(ks))))
    out = CliRunner().invoke(cli, ["campaign", "report", str(ledger), "--k-obs", "2.5",
                                   "--plot", str(tmp_path / "k.png"), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["global"]["above"] == 2 and data["global"]["n"] == 4
    assert data["steps"] == SMALL.steps and data["cpu_seconds_per_toy"] is None
    (tmp_path / "bad.json").write_text("[]")
    bad = CliRunner().invoke(cli, ["campaign", "report", str(tmp_path / "bad.json"),
                                   "--k-obs", "1", "--plot", str(tmp_path / "b.png")])
    assert bad.exit_code != 0 and "not a campaign ledger" in bad.output
