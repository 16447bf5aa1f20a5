"""Candidates and K of a protomodel: a two-result toy computed by hand."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from protomodels.combiner import KSettings, compute_k, select_candidates
from protomodels.combiner.candidates import stand_in_regions
from protomodels.combiner.graph import load_combinability
from protomodels.combiner.prior import PriorSettings
from protomodels.exceptions import ProtomodelsError
from protomodels.statistics.record import PredictionStatistics
from protomodels.theory.predictions import TheoryPrediction
from protomodels.theory.protomodel import Decay, Protomodel

N1, STOP = 1000022, 1000006
STOPS = (-STOP, STOP)


class Gauss:
    def __init__(self, m: float, s: float) -> None:
        self.m, self.s = m, s

    def nll(self, mu, expected: bool = False) -> np.ndarray:  # noqa: ANN001
        return (np.asarray(mu, dtype=float) - self.m) ** 2 / (2 * self.s**2)

    @property
    def mu_hat(self) -> float:
        return self.m

    @property
    def nll_max(self) -> float:
        return 0.0


def prediction(
    analysis: str,
    likelihood: Gauss | None,
    *,
    dataset: str | None = "SR1",
    data_type: str = "efficiencyMap",
    result_id: str | None = None,
    sqrts: float = 13.0,
) -> TheoryPrediction:
    return TheoryPrediction(
        analysis=analysis,
        result_id=result_id or analysis,
        dataset=dataset,
        data_type=data_type,
        txnames=("T2tt",),
        xsec_fb=1.0,
        upper_limit_fb=2.0,
        expected_upper_limit_fb=2.0,
        sqrts_tev=sqrts,
        lumi_ifb=139.0,
        statistics=None if likelihood is None else PredictionStatistics.from_likelihood(
            likelihood
        ),
    )


def weight(g: Gauss, mu: float) -> float:
    return (2 * g.m * mu - mu**2) / g.s**2


def test_reference_region_selection() -> None:
    """selectMostSignificantSRs: regions within 5 % of the best, at least two."""
    preds = [
        prediction("ATLAS-A", Gauss(1.0, 1.0 / math.sqrt(w)), dataset=f"SR{w}")
        for w in (100, 97, 40, 4.9)  # weights at mu = 1: w * (2 - 1)
    ] + [
        prediction("CMS-B", Gauss(1.0, 1.0), dataset="SR1"),
        prediction("CMS-B", Gauss(1.0, 0.01), dataset="SR2"),
        prediction("CMS-B", Gauss(1.0, 2.0), dataset="SR3"),
    ]
    chosen = select_candidates(preds, regions="reference")
    assert [c.dataset for c in chosen if c.analysis == "ATLAS-A"] == ["SR100", "SR97", "SR40"]
    assert [c.dataset for c in chosen if c.analysis == "CMS-B"] == ["SR2", "SR1"]
    with pytest.raises(ProtomodelsError, match="regions must be one of"):
        select_candidates(preds, regions="best")


def test_candidates_follow_the_reference_selection() -> None:
    preds = [
        prediction("ATLAS-A", Gauss(1.0, 1.0), dataset="SR1"),
        prediction("ATLAS-A", Gauss(1.0, 0.5), dataset="SR2"),  # more significant at mu = 1
        prediction("ATLAS-A", Gauss(1.0, 0.5), dataset=None, data_type="upperLimit"),
        prediction("CMS-B", None),  # no likelihood
        prediction("CMS-C", Gauss(0.0, 1e3)),  # L(1)/L(0) = 1 within 1e-5
        prediction("CMS-D-agg", Gauss(1.0, 1.0), dataset="(combined)", data_type="combined"),
        prediction("CMS-D-agg", Gauss(3.0, 0.1), dataset="SR9"),  # region of a combined result
        prediction("CMS-E", Gauss(-1.0, 1.0)),  # negative weight: still a candidate
    ]
    chosen = select_candidates(preds, regions="most_significant")
    assert [(c.analysis, c.dataset) for c in chosen] == [
        ("ATLAS-A", "SR2"),
        ("CMS-D-agg", "(combined)"),
        ("CMS-E", "SR1"),
    ]
    assert chosen[0].weight1 == pytest.approx(weight(Gauss(1.0, 0.5), 1.0))
    every = select_candidates(preds)  # default: all regions, the search picks one per analysis
    assert [(c.analysis, c.dataset) for c in every][:2] == [("ATLAS-A", "SR1"), ("ATLAS-A", "SR2")]
    assert len(every) == 4
    with_ul = select_candidates(preds, data_types=("efficiencyMap", "combined", "upperLimit"))
    assert ("ATLAS-A", "upperLimit") in [(c.analysis, c.data_type) for c in with_ul]
    keep_regions = select_candidates(preds, drop_regions_of_combined=False)
    assert ("CMS-D-agg", "efficiencyMap") in [(c.analysis, c.data_type) for c in keep_regions]


def test_k_of_a_two_result_toy_by_hand(toy: tuple, shared: Path) -> None:
    model, xsecs, predictions, atlas, cms = toy
    result = compute_k(model, predictions, xsecs, KSettings(shared=shared))
    # ATLAS and CMS: combinable; mu-hat of the product of two Gaussians: weighted mean
    muhat = (1.4 / 0.25 + 1.1 / 1.0) / (1 / 0.25 + 1 / 1.0)
    t_l = weight(atlas, muhat) + weight(cms, muhat)
    # prior on the model rescaled by mu-hat: 2 particles, no branching, one multiplier
    # (0.5 * muhat, cross section 50 fb * muhat), both experiments, no extreme multiplier
    prior = math.exp(-(2 / 2 + 0 / 4 + 1 / 8))
    assert result.muhat == pytest.approx(muhat, abs=1e-3)
    assert result.T_L == pytest.approx(t_l, abs=1e-6)
    assert result.T_L_mu1 == pytest.approx(weight(atlas, 1.0) + weight(cms, 1.0))
    assert result.prior.value == pytest.approx(prior)
    assert result.K == pytest.approx(t_l + 2 * math.log(prior), abs=1e-6)
    assert [m.analysis for m in result.combination] == ["ATLAS-SUSY-2018-12", "CMS-SUS-20-004"]
    assert sum(m.contribution for m in result.combination) == pytest.approx(result.T_L)
    assert result.certified and result.flags == ()
    record = result.to_json()
    assert record["prior_parts"]["n_multipliers"] == 1
    assert record["best_combination"][0]["dataType"] == "efficiencyMap"


def test_k_penalties_and_flags(toy: tuple, shared: Path) -> None:
    model, xsecs, predictions, atlas, _ = toy
    graph = load_combinability(shared=shared)
    only_atlas = compute_k(model, predictions[:1], xsecs, KSettings(combinability=graph))
    assert only_atlas.prior.missing_experiment == 0.1
    assert only_atlas.T_L == pytest.approx(weight(atlas, 1.4), abs=1e-6)
    off = KSettings(combinability=graph, prior=PriorSettings(missing_experiment=False))
    assert compute_k(model, predictions[:1], xsecs, off).prior.missing_experiment == 1.0
    nothing = [prediction("ATLAS-SUSY-2018-12", Gauss(-0.5, 1.0))]
    empty = compute_k(model, nothing, xsecs, KSettings(combinability=graph))
    assert empty.T_L == 0.0 and empty.combination == () and "no_combination" in empty.flags
    assert empty.K == pytest.approx(2 * math.log(empty.prior.value))
    # explicit cross sections (SLHA input): multipliers derived from the reference tables
    slha_model = Protomodel(
        masses=dict(model.masses), decays=dict(model.decays), xsecs={STOPS: {13.0: 300.0}}
    )
    derived = compute_k(slha_model, predictions, slha_model.xsecs, KSettings(combinability=graph))
    assert "multipliers_from_xsecs" in derived.flags
    assert derived.prior.complexity.n_multipliers == 1


def test_same_analysis_upper_limit_and_eff_sibling(shared: Path) -> None:
    """With upper limits allowed, an UL result and its -eff sibling are one analysis."""
    model = Protomodel(masses={N1: 100.0, STOP: 500.0}, decays={STOP: (Decay(N1, (6,), 1.0),)})
    predictions = [
        prediction("CMS-SUS-19-006", Gauss(1.0, 0.5), dataset=None, data_type="upperLimit"),
        prediction(
            "CMS-SUS-19-006-agg", Gauss(1.0, 0.4), dataset="(combined)", data_type="combined"
        ),
        prediction("ATLAS-SUSY-2018-12", Gauss(1.0, 1.0)),
    ]
    settings = KSettings(shared=shared, data_types=("efficiencyMap", "combined", "upperLimit"))
    result = compute_k(model, predictions, {STOPS: {13.0: 50.0}}, settings)
    assert [m.analysis for m in result.combination] == ["CMS-SUS-19-006-agg", "ATLAS-SUSY-2018-12"]


def test_all_regions_find_the_best_region_at_muhat(shared: Path) -> None:
    """The region most significant at mu = 1 need not be the best one at mu-hat."""
    model = Protomodel(masses={N1: 100.0, STOP: 500.0}, decays={STOP: (Decay(N1, (6,), 1.0),)})
    predictions = [
        prediction("ATLAS-A", Gauss(1.0, 0.3), dataset="SR1"),  # w(1) = 11.1, the best at mu = 1
        prediction("ATLAS-A", Gauss(3.0, 1.0), dataset="SR2"),  # w(1) = 5, w(3) = 9
        prediction("CMS-B", Gauss(3.0, 0.5)),  # w(3) = 36
    ]
    xsecs = {STOPS: {13.0: 50.0}}
    every = compute_k(model, predictions, xsecs, KSettings(shared=shared))
    assert [(m.analysis, m.dataset) for m in every.combination] == [
        ("ATLAS-A", "SR2"),
        ("CMS-B", "SR1"),
    ]
    assert every.T_L == pytest.approx(45.0, abs=1e-3) and every.muhat == pytest.approx(
        3.0, abs=1e-3
    )
    one = compute_k(model, predictions, xsecs, KSettings(shared=shared, regions="most_significant"))
    assert one.T_L == pytest.approx(36.0, abs=1e-3)  # CMS alone beats SR1 + CMS (35.35)
    assert every.T_L_mu1 == one.T_L_mu1


def test_best_region_stands_in_for_a_combination_without_likelihood() -> None:
    combined = prediction("ATLAS-F", None, dataset="(combined)", data_type="combined")
    combined.statistics = PredictionStatistics.without_likelihood("full likelihoods off")
    weak = prediction("ATLAS-F", Gauss(3.0, 0.1), dataset="SR1")
    strong = prediction("ATLAS-F", Gauss(1.0, 0.5), dataset="SR2")
    weak.expected_upper_limit_fb, strong.expected_upper_limit_fb = 2.0, 1.0  # r_exp 0.5, 1
    other = prediction("CMS-G", Gauss(1.0, 1.0), dataset="(combined)", data_type="combined")
    other_region = prediction("CMS-G", Gauss(1.0, 0.2), dataset="SR1")
    other_region.expected_upper_limit_fb = 0.1
    preds = [combined, weak, strong, other, other_region]
    assert stand_in_regions(preds) == {"ATLAS-F": strong}
    chosen = select_candidates(preds)
    assert [(c.analysis, c.dataset) for c in chosen] == [
        ("ATLAS-F", "SR2"),
        ("CMS-G", "(combined)"),
    ]
    combined.statistics = dataclasses.replace(
        PredictionStatistics.from_likelihood(Gauss(1.0, 1.0)), nll1=math.nan
    )
    assert stand_in_regions(preds) == {"ATLAS-F": strong}  # a NaN -ln L is no likelihood
