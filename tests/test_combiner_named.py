"""Scoring a combination the user names (protomodel evaluate --combination)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from test_combiner_k import Gauss, prediction, weight

from protomodels.combiner import KSettings, compute_k
from protomodels.combiner.graph import CombinabilityError
from protomodels.combiner.named import parse_combination


def _best_mu(*gs: Gauss) -> float:
    """arg max of sum_i (2 m_i mu - mu^2) / s_i^2 over mu >= 0."""
    return max(0.0, sum(g.m / g.s**2 for g in gs) / sum(1 / g.s**2 for g in gs))


def test_parse_combination() -> None:
    assert parse_combination(" A:SR1, B ,A:SR1,") == ("A:SR1", "B")
    assert parse_combination(["A:SR1", "B:(combined)"]) == ("A:SR1", "B:(combined)")
    with pytest.raises(CombinabilityError, match="no result named"):
        parse_combination(" , ")


def test_named_combination_by_hand(toy: tuple, shared: Path) -> None:
    """T_L, mu-hat and contributions of the named pair are the closed form of the summed
    Gaussian weights, whatever the best combination is."""
    model, xsecs, predictions, atlas, cms = toy
    weak = Gauss(0.2, 0.8)
    predictions = [*predictions, prediction("CMS-SUS-16-039", weak)]
    named = ("ATLAS-SUSY-2018-12:SR1", "CMS-SUS-16-039")
    k = compute_k(model, predictions, xsecs, KSettings(shared=shared, combination=named))
    mu = _best_mu(atlas, weak)
    assert k.muhat == pytest.approx(mu, rel=1e-4)
    assert k.T_L == pytest.approx(weight(atlas, mu) + weight(weak, mu), abs=1e-3)
    assert [(m.analysis, m.dataset) for m in k.combination] == [
        ("ATLAS-SUSY-2018-12", "SR1"), ("CMS-SUS-16-039", "SR1")
    ]
    assert [m.contribution for m in k.combination] == pytest.approx(
        [weight(atlas, k.muhat), weight(weak, k.muhat)], abs=1e-9
    )
    assert k.T_L_mu1 == pytest.approx(weight(atlas, 1.0) + weight(weak, 1.0), abs=1e-9)
    assert k.K == pytest.approx(k.T_L + 2 * math.log(k.prior.value), abs=1e-12)
    assert any(f.startswith("named combination:") for f in k.flags)
    best = compute_k(model, predictions, xsecs, KSettings(shared=shared))
    assert best.T_L >= k.T_L - 1e-9  # the best combination is at least as heavy


def test_named_combination_refusals(toy: tuple, shared: Path) -> None:
    model, xsecs, predictions, atlas, _ = toy
    other_region = prediction("ATLAS-SUSY-2018-12", Gauss(0.9, 0.7), dataset="SR2")
    predictions = [*predictions, other_region]
    settings = KSettings(shared=shared, combination=("ATLAS-SUSY-2018-99:SR1",))
    with pytest.raises(CombinabilityError, match="not a candidate"):
        compute_k(model, predictions, xsecs, settings)
    settings = KSettings(shared=shared, combination=("ATLAS-SUSY-2018-12",))
    with pytest.raises(CombinabilityError, match="the candidates of ATLAS-SUSY-2018-12 are"):
        compute_k(model, predictions, xsecs, settings)  # two regions: name one
    # two regions of one analysis are never combinable: refused, or scored with a flag
    pair = ("ATLAS-SUSY-2018-12:SR1", "ATLAS-SUSY-2018-12:SR2")
    with pytest.raises(CombinabilityError, match="may not be combined.*force"):
        compute_k(model, predictions, xsecs, KSettings(shared=shared, combination=pair))
    forced = compute_k(
        model, predictions, xsecs,
        KSettings(shared=shared, combination=pair, force_combination=True),
    )
    mu = _best_mu(atlas, Gauss(0.9, 0.7))
    assert forced.muhat == pytest.approx(mu, rel=1e-4)
    assert any(f.startswith("forced: ATLAS-SUSY-2018-12:SR1 and") for f in forced.flags)


def test_named_combination_nowhere_positive(toy: tuple, shared: Path) -> None:
    model, xsecs, predictions, _, _ = toy
    deficit = prediction("CMS-SUS-16-039", Gauss(-1.0, 0.5))
    k = compute_k(
        model, [*predictions, deficit], xsecs,
        KSettings(shared=shared, combination=("CMS-SUS-16-039",)),
    )
    assert k.T_L == 0.0 and k.combination == () and "no_combination" in k.flags
    assert k.T_L_mu1 == pytest.approx(weight(Gauss(-1.0, 0.5), 1.0))


def test_cli_evaluate_combination(tmp_path: Path, subset_store: Path, shared: Path) -> None:
    """protomodel evaluate --combination: K of the named combination in the JSON; a name that
    is no candidate is a clear error (exit 1); --force-combination needs --combination."""
    from click.testing import CliRunner

    from protomodels.cli import cli

    slha = shared / "data" / "reference" / "protomodels_ewkinos.slha"
    base = ["--shared", str(shared), "--database", str(subset_store), "evaluate", str(slha),
            "--no-full-likelihoods"]
    runner = CliRunner(env={"COLUMNS": "400", "PROTOMODELS_DATABASE": None})
    best = runner.invoke(cli, [*base, "--json", "-"])
    assert best.exit_code == 0, best.output
    data = json.loads(best.stdout)
    first = data["combination"][0]
    label = f"{first['analysis']}:{first['dataset']}"
    one = runner.invoke(cli, [*base, "--json", "-", "--combination", label])
    assert one.exit_code == 0, one.output
    named = json.loads(one.stdout)
    assert [(m["analysis"], m["dataset"]) for m in named["combination"]] == [
        (first["analysis"], first["dataset"])
    ]
    assert f"named combination: {label}" in named["flags"]
    assert named["T_L"] <= data["T_L"] + 1e-6
    bad = runner.invoke(cli, [*base, "--combination", "NO-SUCH-ANALYSIS:SR1"])
    assert bad.exit_code == 1 and "not a candidate" in bad.output
    lonely = runner.invoke(cli, [*base, "--force-combination"])
    assert lonely.exit_code == 2 and "--force-combination needs --combination" in lonely.output
