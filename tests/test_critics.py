"""Critics: verdicts on constructed predictions, the binomial rule and its boundaries, the
sibling rule, the combined upper limit against a closed form, the constructive cap, bad input,
and (slow) a smoke run on the reference models.

The combination search is a brute force of our own (the combiner stage is injected)."""

from __future__ import annotations

import itertools
import json
import math
import sys
from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import norm

from protomodels.critics import (
    DEFAULT_CRITICS,
    CriticContext,
    CriticInputError,
    LikelihoodCritic,
    UpperLimitCritic,
    allowed_exclusions,
    combined_upper_limit,
    run_critics,
    sibling_key,
    upper_limit_candidates,
)
from protomodels.statistics.cls import log_cls
from protomodels.statistics.record import PredictionStatistics
from protomodels.theory.predictions import TheoryPrediction

# -- helpers ---------------------------------------------------------------------------------


def brute_force_search(weights, combinable, analyses):
    """The heaviest set of pairwise combinable candidates, one per analysis (exhaustive
    include/exclude recursion, pruned only by the total of the remaining positive weights)."""
    n = len(weights)
    best: list = [(), -math.inf]
    rest = [sum(max(w, 0.0) for w in weights[i:]) for i in range(n)] + [0.0]

    def visit(i, chosen, weight):
        if chosen and weight > best[1]:
            best[0], best[1] = tuple(chosen), weight
        if i == n or weight + rest[i] <= best[1]:
            return
        if all(combinable[i, j] and analyses[i] != analyses[j] for j in chosen):
            visit(i + 1, [*chosen, i], weight + weights[i])
        visit(i + 1, chosen, weight)

    visit(0, [], 0.0)
    return best[0], best[1]


def subsets_search(weights, combinable, analyses):
    """The same by listing all subsets (small n only): cross-checks the recursion."""
    n = len(weights)
    best, best_weight = (), -math.inf
    for size in range(1, n + 1):
        for subset in itertools.combinations(range(n), size):
            if len({analyses[i] for i in subset}) < size:
                continue
            if not all(combinable[i, j] for i, j in itertools.combinations(subset, 2)):
                continue
            weight = sum(weights[i] for i in subset)
            if weight > best_weight:
                best, best_weight = subset, weight
    return best, best_weight


def test_brute_force_search_agrees_with_subsets() -> None:
    rng = np.random.default_rng(7)
    for _ in range(30):
        n = int(rng.integers(1, 9))
        upper = np.triu(rng.random((n, n)) < 0.6, 1)
        matrix = upper | upper.T
        weights = list(rng.normal(1.0, 1.0, n))
        analyses = [f"A{int(k)}" for k in rng.integers(0, n, n)]
        got = brute_force_search(weights, matrix, analyses)
        want = subsets_search(weights, matrix, analyses)
        assert got[1] == pytest.approx(want[1])


def all_combinable(predictions):
    n = len(predictions)
    return ~np.eye(n, dtype=bool)


@dataclass
class Gaussian:
    """A Gaussian likelihood in mu: observed mean ``mean``, expected (background) mean 0."""

    mean: float
    sigma: float

    def nll(self, mu, expected=False):
        centre = 0.0 if expected else self.mean
        mu = np.asarray(mu, dtype=float)
        return 0.5 * ((mu - centre) / self.sigma) ** 2 + math.log(self.sigma)

    @property
    def mu_hat(self):
        return max(self.mean, 0.0)


def pred(
    analysis,
    r_obs,
    r_exp=None,
    *,
    data_type="upperLimit",
    dataset=None,
    likelihood=None,
    xsec=1.0,
):
    """A prediction with the given r-values (sigma = xsec, limits = xsec / r)."""
    if data_type != "upperLimit" and dataset is None:
        dataset = "SR1"
    return TheoryPrediction(
        analysis=analysis,
        result_id=analysis,
        dataset=dataset,
        data_type=data_type,
        txnames=("T1",),
        xsec_fb=xsec,
        upper_limit_fb=None if r_obs is None else xsec / r_obs,
        expected_upper_limit_fb=None if r_exp is None else xsec / r_exp,
        sqrts_tev=13.0,
        lumi_ifb=139.0,
        statistics=None if likelihood is None else PredictionStatistics.from_likelihood(
            likelihood
        ),
    )


def ul_sensitive(n_sensitive, n_excluding, *, n_insensitive=0):
    """n_sensitive UL predictions (r_exp = 0.9) of which n_excluding have r_obs = 2."""
    out = []
    for i in range(n_sensitive):
        r_obs = 2.0 if i < n_excluding else 0.5
        out.append(pred(f"ANA-{i}", r_obs, 0.9))
    for i in range(n_insensitive):
        out.append(pred(f"WEAK-{i}", 3.0, 0.1))
    return out


def reference_allowed(n, p=0.05, quantile=0.66):
    """Smallest k with sum_{j<=k} C(n, j) p^j (1-p)^(n-j) > quantile (independent of scipy)."""
    total = 0.0
    for k in range(n + 1):
        total += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        if total > quantile:
            return k
    return n


CTX = CriticContext(combinable=all_combinable, search=brute_force_search)
UL = UpperLimitCritic()
LLHD = LikelihoodCritic()


def gaussian_limit(mean, sigma, cl=0.95):
    """Closed-form CLs limit of a Gaussian with observed mean >= 0 and expected mean 0."""
    return mean + sigma * norm.ppf(1 - (1 - cl) * norm.cdf(mean / sigma))


# -- the binomial rule -----------------------------------------------------------------------


def test_allowed_exclusions_matches_binomial_sum() -> None:
    for n in range(0, 80):
        assert allowed_exclusions(n) == reference_allowed(n), n


def test_upper_limit_critic_binomial_boundary() -> None:
    n1 = next(n for n in range(200) if reference_allowed(n) >= 1)
    n2 = next(n for n in range(200) if reference_allowed(n) >= 2)
    # just passing: n1 sensitive tolerate one exclusion
    v = UL(ul_sensitive(n1, 1, n_insensitive=3), CTX)
    assert (v.passed, v.n_sensitive, v.n_excluding, v.allowed) == (True, n1, 1, 1)
    # just failing: one sensitive result fewer, or one exclusion more
    v = UL(ul_sensitive(n1 - 1, 1), CTX)
    assert (v.passed, v.n_sensitive, v.n_excluding, v.allowed) == (False, n1 - 1, 1, 0)
    v = UL(ul_sensitive(n1, 2), CTX)
    assert not v.passed and v.n_excluding == 2
    assert UL(ul_sensitive(n2, 2), CTX).passed
    assert not UL(ul_sensitive(n2 - 1, 2), CTX).passed


def test_upper_limit_critic_thresholds() -> None:
    # sensitivity: r_exp >= 0.7 (inclusive)
    assert not UL([pred("A", 2.0, 0.7)], CTX).passed
    v = UL([pred("A", 2.0, 0.7 - 1e-12)], CTX)
    assert v.passed and v.n_sensitive == 0 and v.n_excluding == 0
    # exclusion: r_obs > 1.38 (strict)
    v = UL([pred("A", 1.38, 0.8)], CTX)
    assert v.passed and v.n_sensitive == 1 and v.n_excluding == 0
    assert not UL([pred("A", 1.38 + 1e-12, 0.8)], CTX).passed
    # no expected limit: r_obs decides sensitivity
    v = UL([pred("A", 1.5, None)], CTX)
    assert not v.passed and v.n_sensitive == 1
    v = UL([pred("A", 0.69, None)], CTX)
    assert v.passed and v.n_sensitive == 0
    # an excluding r_obs of an insensitive result does not count
    v = UL([pred("A", 5.0, 0.2)], CTX)
    assert v.passed and v.n_excluding == 0 and v.r_max == 5.0


def test_upper_limit_critic_entries_and_empty() -> None:
    v = UL([pred("A", 0.3, 0.8), pred("B", 2.0, 0.9)], CTX)
    assert [e.analysis for e in v.entries] == ["B", "A"]
    assert [(e.sensitive, e.excluding) for e in v.entries] == [(True, True), (True, False)]
    assert v.entries[0].label == "B:UL"
    empty = UL([], CTX)
    assert empty.passed and empty.n_sensitive == 0 and empty.mu_max == math.inf


# -- which predictions the upper-limit critic sees ---------------------------------------------


def test_sibling_key() -> None:
    assert sibling_key("CMS-SUS-19-006-agg") == "CMS-SUS-19-006"
    assert sibling_key("ATLAS-SUSY-2018-05-ewk") == "ATLAS-SUSY-2018-05"
    assert sibling_key("CMS-SUS-16-048-ma5") == "CMS-SUS-16-048"
    assert sibling_key("ATLAS-SUSY-2016-07-eff") == "ATLAS-SUSY-2016-07"
    assert sibling_key("ATLAS-SUSY-2018-22-multibin") == "ATLAS-SUSY-2018-22"
    assert sibling_key("ATLAS-SUSY-2016-07") == "ATLAS-SUSY-2016-07"
    assert sibling_key("CMS-PAS-SUS-16-052-agg") == "CMS-PAS-SUS-16-052"


def test_efficiency_map_with_upper_limit_sibling_is_left_out() -> None:
    ul = pred("CMS-SUS-19-006", 0.2, 0.3)
    em_sibling = pred("CMS-SUS-19-006-agg", 3.0, 1.0, data_type="efficiencyMap")
    em_same_id = pred("CMS-SUS-19-006", 3.0, 1.0, data_type="efficiencyMap")
    em_alone = pred("ATLAS-SUSY-2018-12", 0.5, 0.8, data_type="efficiencyMap")
    chosen = upper_limit_candidates([ul, em_sibling, em_same_id, em_alone], None)
    assert chosen == [ul, em_alone]
    v = UL([ul, em_sibling, em_same_id, em_alone], CTX)
    assert v.passed and v.n_sensitive == 1
    # without the UL prediction the efficiency-map result counts and excludes
    v = UL([em_sibling], CTX)
    assert not v.passed and v.n_excluding == 1


def _fake_database():
    def ds(name, ul, eul, region="SR"):
        return SimpleNamespace(
            data_id=name,
            dataset_id=name,
            region_type=region,
            upper_limit_fb=ul,
            expected_upper_limit_fb=eul,
        )

    result = SimpleNamespace(
        result_id="CMS-SUS-21-002-eff",
        datasets=[ds("SR_a", 1.0, 2.0), ds("SR_b", 0.5, 0.6), ds("CR_c", 0.1, 0.1, "CR")],
    )
    return SimpleNamespace(results=[result])


def test_combined_prediction_contributes_its_best_region() -> None:
    combined = replace(
        pred("CMS-SUS-21-002", 9.0, 9.0, data_type="combined", dataset="(combined)", xsec=6.0),
        result_id="CMS-SUS-21-002-eff",
        signals_fb=np.array([3.0, 1.0, 2.0]),  # SR_a: 3/2, SR_b: 1/0.6 -> SR_b; CR never
    )
    with pytest.raises(CriticInputError, match="database"):
        UL([combined], CTX)
    ctx = replace(CTX, database=_fake_database())
    v = UL([combined], ctx)
    (entry,) = v.entries
    assert (entry.dataset, entry.data_type) == ("SR_b", "efficiencyMap")
    assert entry.r_obs == pytest.approx(1.0 / 0.5) and entry.r_exp == pytest.approx(1.0 / 0.6)
    assert not v.passed  # r_obs 2 > 1.38 with r_exp 1.67
    # a rescaled prediction (xsec halved) keeps its rescaling in the region
    v = UL([replace(combined, xsec_fb=3.0)], ctx)
    assert v.entries[0].r_obs == pytest.approx(1.0) and v.passed


# -- the combined upper limit ----------------------------------------------------------------


@pytest.mark.parametrize(("means", "sigmas"), [((0.0,), (0.5,)), ((0.3, 0.1), (0.4, 0.6))])
def test_combined_limit_matches_gaussian_closed_form(means, sigmas) -> None:
    likelihoods = [Gaussian(m, s) for m, s in zip(means, sigmas, strict=True)]
    precision = sum(1 / s**2 for s in sigmas)
    mean = sum(m / s**2 for m, s in zip(means, sigmas, strict=True)) / precision
    expected = gaussian_limit(mean, precision**-0.5)
    assert combined_upper_limit(likelihoods) == pytest.approx(expected, rel=1e-6)
    expected_apriori = gaussian_limit(0.0, precision**-0.5)
    assert combined_upper_limit(likelihoods, expected=True) == pytest.approx(
        expected_apriori, rel=1e-6
    )


def test_combined_limit_underfluctuation_lies_below_apriori() -> None:
    # a deficit (observed mean < 0): mu-hat stays at 0, the limit is below the a-priori one
    low = combined_upper_limit([Gaussian(-0.5, 0.5)])
    apriori = combined_upper_limit([Gaussian(-0.5, 0.5)], expected=True)
    assert 0 < low < apriori


# -- the likelihood critic -------------------------------------------------------------------


def em(analysis, r_obs, r_exp, likelihood, dataset="SR1"):
    return pred(
        analysis, r_obs, r_exp, data_type="efficiencyMap", dataset=dataset, likelihood=likelihood
    )


def _pair_with_combined_r(r_target):
    """Two combinable EM predictions whose combined observed r is r_target (means 0)."""
    sigma_total = 1.0 / (r_target * norm.ppf(1 - 0.05 / 2))  # mu_UL = 1.96 sigma when mean 0
    sigma = sigma_total * math.sqrt(2.0)  # two equal Gaussians
    return [
        em("ATLAS-SUSY-2018-12", 0.6, 0.6, Gaussian(0.0, sigma)),
        em("CMS-SUS-21-002", 0.6, 0.6, Gaussian(0.0, sigma)),
    ]


def test_likelihood_critic_combined_r_pass_and_fail() -> None:
    v = LLHD(_pair_with_combined_r(0.99), CTX)
    assert v.passed and v.r_combined == pytest.approx(0.99, rel=1e-6)
    assert v.combination == ("ATLAS-SUSY-2018-12:SR1", "CMS-SUS-21-002:SR1")
    v = LLHD(_pair_with_combined_r(1.01), CTX)
    assert not v.passed and v.r_combined == pytest.approx(1.01, rel=1e-6)
    # each alone would pass (r_obs 0.6): the combination is what excludes
    assert all(e.r_obs < 1 and e.combined for e in v.entries)


def test_likelihood_critic_picks_most_sensitive_combination() -> None:
    # weights 2[nll_exp(1) - nll_exp(0)] = 1/sigma^2: A = 4, B = 3, C = 2; A clashes with both
    a = em("A", 0.5, 0.5, Gaussian(0.0, 0.5))
    b = em("B", 0.5, 0.5, Gaussian(0.0, 1 / math.sqrt(3)))
    c = em("C", 0.5, 0.5, Gaussian(0.0, 1 / math.sqrt(2)))

    def clash(predictions):
        m = ~np.eye(len(predictions), dtype=bool)
        names = [p.analysis for p in predictions]
        i = names.index("A")
        m[i, :] = m[:, i] = False
        return m

    v = LLHD([a, b, c], replace(CTX, combinable=clash))
    assert v.combination == ("B:SR1", "C:SR1")
    weights = {e.analysis: e.weight for e in v.entries}
    assert weights == pytest.approx({"A": 4.0, "B": 3.0, "C": 2.0})
    assert {e.analysis for e in v.entries if e.combined} == {"B", "C"}
    expected_r = 1 / gaussian_limit(0.0, 1 / math.sqrt(5.0))
    assert v.r_combined == pytest.approx(expected_r, rel=1e-6)


def test_likelihood_critic_candidates() -> None:
    g = Gaussian(0.0, 0.3)
    predictions = [
        pred("UL-ONLY", 5.0, 5.0),  # upper-limit results never enter
        em("LOW", 3.0, 0.1 - 1e-12, g),  # below the r_exp cut
        em("NOEXP", 3.0, None, g),  # no expected limit
        em("NOLLHD", 3.0, 0.5, None),  # no likelihood object
        em("EDGE", 0.8, 0.1, Gaussian(0.0, 3.0)),  # exactly at the cut: enters
    ]
    v = LLHD(predictions, CTX)
    assert [e.analysis for e in v.entries] == ["EDGE"]
    assert v.combination == ("EDGE:SR1",) and v.passed
    # a single member: its own r_obs is the combination's r (SModelS returns the prediction)
    assert v.r_combined == 0.8
    assert any("NOEXP" in n for n in v.notes) and any("NOLLHD" in n for n in v.notes)
    assert not LLHD([em("EDGE", 1.0, 0.5, g)], CTX).passed  # r = 1 is not < 1
    none = LLHD([pred("UL-ONLY", 5.0, 5.0)], CTX)
    assert none.passed and none.combination == () and none.mu_max == math.inf


def test_combined_prediction_enters_likelihood_critic() -> None:
    comb = pred(
        "CMS-SUS-19-006-agg",
        1.2,
        0.9,
        data_type="combined",
        dataset="(combined)",
        likelihood=Gaussian(0.0, 0.4),
    )
    v = LLHD([comb], CTX)
    assert v.combination == ("CMS-SUS-19-006-agg:(combined)",) and not v.passed


# -- constructive mode -----------------------------------------------------------------------


def _scaled(p, k):
    """The prediction of the model with signal strength k (sigma and likelihood scaled)."""
    statistics = p.statistics
    if statistics is not None:
        g = statistics.likelihood
        # L(mu; k s) = L(k mu; s)
        statistics = PredictionStatistics.from_likelihood(Gaussian(g.mean / k, g.sigma / k))
    return replace(p, xsec_fb=p.xsec_fb * k, statistics=statistics)


def test_constructive_upper_limit_cap() -> None:
    predictions = ul_sensitive(3, 2) + [pred("TOP", 4.0, 0.1)]
    ctx = replace(CTX, constructive=True)
    veto = UL(predictions, CTX)
    assert not veto.passed
    v = UL(predictions, ctx)
    assert v.passed and v.constructive and v.r_max == 4.0
    assert v.mu_max == pytest.approx(0.999 * 1.38 / 4.0)
    assert v.mu_max == veto.mu_max
    rescaled = [_scaled(p, v.mu_max) for p in predictions]
    after = UL(rescaled, CTX)
    assert after.passed and after.r_max == pytest.approx(0.999 * 1.38)


def test_constructive_likelihood_cap() -> None:
    predictions = _pair_with_combined_r(2.5)
    v = LLHD(predictions, replace(CTX, constructive=True))
    assert v.passed and v.mu_max == pytest.approx(0.999 / 2.5, rel=1e-6)
    after = LLHD([_scaled(p, v.mu_max) for p in predictions], CTX)
    assert after.passed and after.r_combined == pytest.approx(0.999, rel=1e-6)
    capped = LikelihoodCritic(cap_threshold=1.38)(predictions, replace(CTX, constructive=True))
    assert capped.mu_max == pytest.approx(0.999 * 1.38 / 2.5, rel=1e-6)


# -- running all critics ---------------------------------------------------------------------


def test_run_critics_combines_verdicts() -> None:
    passing_ul = ul_sensitive(2, 0)
    verdict = run_critics(passing_ul + _pair_with_combined_r(1.5), CTX)
    assert not verdict.passed
    assert [(p.critic, p.passed) for p in verdict.parts] == [
        ("upper_limit", True),
        ("likelihood", False),
    ]
    assert verdict.mu_max == min(p.mu_max for p in verdict.parts)
    assert "likelihood: failed" in verdict.summary()
    # the reference stops after the first failure
    failing = ul_sensitive(1, 1) + _pair_with_combined_r(0.5)
    stopped = run_critics(failing, CTX)
    assert [p.critic for p in stopped.parts] == ["upper_limit"]
    assert stopped.notes == ("not run after a failure: likelihood",)
    full = run_critics(failing, CTX, stop_at_failure=False)
    assert [p.passed for p in full.parts] == [False, True]
    everything = run_critics(passing_ul + _pair_with_combined_r(0.5), CTX)
    assert everything.passed and len(everything.parts) == len(DEFAULT_CRITICS)
    constructive = run_critics(failing, replace(CTX, constructive=True))
    assert constructive.passed and constructive.mu_max < 1


# -- bad input -------------------------------------------------------------------------------


def test_bad_context_is_reported() -> None:
    predictions = _pair_with_combined_r(0.5)
    with pytest.raises(CriticInputError, match="combinable is not set"):
        LLHD(predictions, CriticContext(search=brute_force_search))
    wrong_shape = CriticContext(combinable=lambda ps: np.ones((3, 3), bool), search=CTX.search)
    with pytest.raises(CriticInputError, match=r"shape \(3, 3\)"):
        LLHD(predictions, wrong_shape)
    not_bool = CriticContext(combinable=lambda ps: np.ones((2, 2)), search=CTX.search)
    with pytest.raises(CriticInputError, match="bool"):
        LLHD(predictions, not_bool)
    bad_search = CriticContext(combinable=all_combinable, search=lambda w, m, a: ((5,), 1.0))
    with pytest.raises(CriticInputError, match="indices"):
        LLHD(predictions, bad_search)


def test_empty_search_result_falls_back_to_heaviest_single() -> None:
    a = em("A", 0.5, 0.5, Gaussian(0.0, 0.5))
    b = em("B", 1.5, 0.5, Gaussian(0.0, 0.4))  # heavier (1/0.16 > 1/0.25): r_obs 1.5 fails
    v = LLHD([a, b], replace(CTX, search=lambda w, m, names: ((), 0.0)))
    assert v.combination == ("B:SR1",) and v.r_combined == 1.5 and not v.passed


def test_missing_combiner_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "protomodels.combiner.search", None)
    with pytest.raises(CriticInputError, match="search"):
        LLHD(_pair_with_combined_r(0.5), CriticContext(combinable=all_combinable))


# -- smoke test on the reference models --------------------------------------------------------


def json_combinability(shared):
    """combinable(predictions) from combinability_yaml.json (README rule: different
    experiment or sqrts always combinable, else only listed pairs)."""
    listed = json.loads((shared / "data" / "combinability" / "combinability_yaml.json").read_text())

    def ok(p, q):
        a, b = sibling_key(p.analysis), sibling_key(q.analysis)
        if a == b:
            return False
        if a.split("-")[0] != b.split("-")[0] or p.sqrts_tev != q.sqrts_tev:
            return True
        return b in listed.get(a, ()) or a in listed.get(b, ())

    def combinable(predictions):
        n = len(predictions)
        m = np.zeros((n, n), dtype=bool)
        for i, j in itertools.combinations(range(n), 2):
            m[i, j] = m[j, i] = ok(predictions[i], predictions[j])
        return m

    return combinable


@pytest.mark.slow
@pytest.mark.parametrize("model", ["best_pmodel_latest", "protomodels_ewkinos"])
def test_critics_on_reference_models(model, shared) -> None:
    import protomodels.database
    from protomodels.statistics.attach import attach_statistics
    from protomodels.theory.predictions import Predictor
    from protomodels.theory.protomodel import Protomodel

    db = protomodels.database.open(build=False, workspaces=False)
    predictions = Predictor(db).predict(
        Protomodel.from_slha(shared / "data" / "reference" / f"{model}.slha")
    )
    attach_statistics(predictions, db)
    ctx = CriticContext(
        combinable=json_combinability(shared), search=brute_force_search, database=db
    )
    verdict = run_critics(predictions, ctx, stop_at_failure=False)
    print(model, verdict.summary())
    ul_verdict, llhd_verdict = verdict.parts
    assert llhd_verdict.combination  # the statistics stage attaches the likelihoods
    assert ul_verdict.n_sensitive <= len(ul_verdict.entries)
    assert ul_verdict.mu_max == pytest.approx(0.999 * 1.38 / ul_verdict.r_max)
    assert verdict.passed == (ul_verdict.passed and llhd_verdict.passed)
    try:  # the combiner stage's graph and search, where present, give the same verdict
        from protomodels.combiner.graph import load_combinability
        from protomodels.combiner.search import best_combination
    except ImportError:
        return
    theirs = CriticContext(combinable=load_combinability("yaml"), search=best_combination)
    assert LLHD(predictions, theirs) == llhd_verdict


def test_public_api() -> None:
    import protomodels.critics

    assert dir(protomodels.critics) == [
        "Critic",
        "CriticContext",
        "CriticEntry",
        "CriticInputError",
        "DEFAULT_CRITICS",
        "LikelihoodCritic",
        "UpperLimitCritic",
        "Verdict",
        "allowed_exclusions",
        "combine_verdicts",
        "combined_upper_limit",
        "mu_cap",
        "run_critics",
        "sibling_key",
        "upper_limit_candidates",
    ]


def test_default_search_is_the_combiners() -> None:
    pytest.importorskip("protomodels.combiner.search")
    a = em("A", 0.5, 0.5, Gaussian(0.0, 0.5))
    b = em("B", 0.5, 0.5, Gaussian(0.0, 1 / math.sqrt(3)))
    c = em("C", 0.5, 0.5, Gaussian(0.0, 1 / math.sqrt(2)))
    default = LLHD([a, b, c], CriticContext(combinable=all_combinable))
    assert default == LLHD([a, b, c], CTX)
    assert default.combination == ("A:SR1", "B:SR1", "C:SR1")


def _brute_force_limit(likelihoods, expected: bool = False) -> float:
    """The combined limit by dense scalar searches on the members' own nll (no slopes)."""
    from scipy.optimize import brentq, minimize_scalar

    def total(mu: float, exp: bool) -> float:
        return sum(float(x.nll(np.array([mu]), expected=exp)[0]) for x in likelihoods)

    def fit(exp: bool) -> float:
        grid = np.linspace(0.0, 20.0, 401)
        values = [total(m, exp) for m in grid]
        i = int(np.argmin(values))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, 400)]
        best = minimize_scalar(
            lambda m: total(m, exp), bounds=(lo, hi), method="bounded", options={"xatol": 1e-10}
        )
        return min(values[i], float(best.fun))

    nll_hat, nll_hat_a = fit(expected), fit(True)

    def excess(mu: float) -> float:
        q = 2 * (total(mu, expected) - nll_hat)
        qa = 2 * (total(mu, True) - nll_hat_a)
        return math.exp(float(log_cls(max(q, 0.0), max(qa, 0.0)))) - 0.05

    return brentq(excess, 1e-9, 200.0, xtol=1e-12)


def test_combined_limit_of_batched_kinds_matches_a_brute_force_search() -> None:
    from protomodels.statistics.likelihood import (
        SimplifiedLikelihood,
        SingleRegionLikelihood,
        TruncatedGaussianLikelihood,
    )

    cov = np.array([[4.0, 1.0], [1.0, 2.0]])
    members = [
        SingleRegionLikelihood(3.0, 10.0, 2.0, 14.0),  # an excess
        TruncatedGaussianLikelihood(0.8, 0.9),
        SimplifiedLikelihood.from_covariance(
            np.array([2.0, 1.0]), np.array([8.0, 5.0]), cov, np.array([7.0, 6.0]), None,
            label="sl",
        ),
        SingleRegionLikelihood(1.5, 4.0, 1.0, 2.0),  # a deficit
    ]
    for expected in (False, True):
        got = combined_upper_limit(members, expected=expected)
        assert got == pytest.approx(_brute_force_limit(members, expected), rel=1e-6)


@pytest.mark.parametrize("seed", range(8))
def test_fit_mu_finds_the_minimum_of_the_summed_nll(seed: int) -> None:
    """mu-hat of the summed nll (the combined limit's first step: a Newton root of the slope
    with the curvature from a second lane) against a dense grid and a bounded scalar search,
    on random members of every batched kind with excesses (mu-hat from ~0.1 to a few)."""
    from scipy.optimize import minimize_scalar

    from protomodels.critics.combined_limit import fit_mu
    from protomodels.statistics.likelihood import (
        SimplifiedLikelihood,
        SingleRegionLikelihood,
        TruncatedGaussianLikelihood,
    )

    rng = np.random.default_rng(seed)
    b = rng.uniform(5.0, 30.0, 3)
    err = 0.2 * b
    cov = np.diag(err**2) + 0.2 * np.outer(err, err)
    members = [
        SingleRegionLikelihood(rng.uniform(1, 5), 10.0, 2.0, float(rng.integers(10, 25))),
        TruncatedGaussianLikelihood(rng.uniform(-0.5, 3.0), rng.uniform(0.3, 1.5)),
        SimplifiedLikelihood.from_covariance(
            rng.uniform(0.5, 4.0, 3), b, cov, np.round(b + rng.uniform(0, 2, 3) * err),
            0.2 * err**3 if seed % 2 else None, label="sl",
        ),
    ]

    def total(mu: float) -> float:
        return sum(float(x.nll(np.array([mu]))[0]) for x in members)

    grid = np.linspace(0.0, 10.0, 1001)
    i = int(np.argmin([total(m) for m in grid]))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    best = minimize_scalar(total, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    mu_hat, nll_hat = fit_mu(members)
    assert mu_hat == pytest.approx(float(best.x), rel=1e-5, abs=1e-6)
    assert nll_hat <= float(best.fun) + 1e-9
    assert nll_hat == pytest.approx(total(mu_hat), rel=1e-12)
