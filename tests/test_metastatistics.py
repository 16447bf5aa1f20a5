"""The meta-statistical view (protomodels.metastatistics and the excesses / pvalues commands).

The numbers are checked against independent computations: the mid-p-value by adaptive
quadrature over the truncated Gaussian (SciPy's quad, not the fixed grid of the code), upper-limit
significances and histogram counts by hand, on a constructed database of user results whose
excesses are known.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import integrate, stats

import protomodels.database as pdb
from protomodels.cli import cli
from protomodels.database import store
from protomodels.database.user_results import add_user_result
from protomodels.metastatistics import (
    SignalHypothesis,
    p_from_z,
    pvalue_histogram,
    region_deviations,
    region_pvalues,
    sensitive_unexcluded,
    upper_limit_deviations,
    upper_limit_significance,
    z_from_p,
    z_histogram,
)
from protomodels.metastatistics.sensitivity import combination_log_bayes_factor


def mid_p_by_quadrature(n: int, b: float, err: float, s: float = 0.0) -> float:
    """E[P(N > n) + P(N = n)/2] over lambda ~ Normal(b + s, err) truncated at 0 (quad)."""
    mean = b + s

    def integrand(lam: float) -> float:
        return (stats.poisson.sf(n, lam) + 0.5 * stats.poisson.pmf(n, lam)) * stats.norm.pdf(
            lam, mean, err)

    lo = max(0.0, mean - 12 * err)
    points = [x for x in (n, mean) if lo < x < mean + 12 * err]
    num, _ = integrate.quad(integrand, lo, mean + 12 * err, points=points or None, limit=400,
                            epsabs=1e-13, epsrel=1e-9)
    den = stats.norm.sf(lo, mean, err) - stats.norm.sf(mean + 12 * err, mean, err)
    return num / den


@pytest.mark.parametrize(("n", "b", "err"), [
    (12, 5.5, 0.72), (0, 1.0, 1.0), (413, 359.0, 10.0), (3, 0.2, 0.5), (244, 200.0, 19.0),
    (5, 3.0, 10.0), (30, 45.0, 4.0), (4, 0.0635, 0.11),
])
def test_region_pvalue_equals_quadrature(n: int, b: float, err: float) -> None:
    p = float(region_pvalues(n, b, err))
    assert p == pytest.approx(mid_p_by_quadrature(n, b, err), rel=2e-4, abs=1e-9)


def test_region_pvalue_without_error_is_the_poisson_mid_p() -> None:
    p = region_pvalues([0, 5, 20], [2.0, 2.0, 2.0], 0.0)
    expected = [stats.poisson.sf(k, 2.0) + 0.5 * stats.poisson.pmf(k, 2.0) for k in (0, 5, 20)]
    np.testing.assert_allclose(p, expected, rtol=1e-10)


def test_a_signal_moves_the_pvalue_up_and_large_counts_are_fast() -> None:
    assert float(region_pvalues(20, 10.0, 1.0, 8.0)) > float(region_pvalues(20, 10.0, 1.0))
    assert float(region_pvalues(20, 10.0, 1.0, 8.0)) == pytest.approx(
        mid_p_by_quadrature(20, 10.0, 1.0, 8.0), rel=2e-4)
    # counts of millions (a monojet region): the Gaussian dominates, p = P(Z > (n - b)/err)
    p = float(region_pvalues(1_791_624, 1_783_000.0, 26_000.0))
    assert p == pytest.approx(stats.norm.sf((1_791_624 - 1_783_000) / 26_000), rel=2e-3)


def test_z_sign_and_inverse() -> None:
    assert float(z_from_p(0.5)) == 0.0 and not math.copysign(1, float(z_from_p(0.5))) < 0
    assert float(z_from_p(stats.norm.sf(2.0))) == pytest.approx(2.0)
    assert float(z_from_p(stats.norm.cdf(-1.5))) == pytest.approx(-1.5 * -1)  # deficit p > 1/2
    assert float(z_from_p(0.9)) < 0
    assert float(p_from_z(z_from_p(0.01))) == pytest.approx(0.01)


def test_upper_limit_significance_by_hand() -> None:
    # UL_obs = 2 fb, UL_exp = 1 fb: (2 - 1) / (1 / 1.96) = 1.96
    assert float(upper_limit_significance(2.0, 1.0)) == pytest.approx(1.96)
    assert float(upper_limit_significance(2.0, 1.0, 0.5)) == pytest.approx(0.98)
    assert float(upper_limit_significance(0.5, 1.0)) == pytest.approx(-0.98)


def test_pvalue_histogram_by_hand() -> None:
    p = [0.05, 0.07, 0.15, 0.55, 0.95, 0.99, 0.999, 0.42]
    h = pvalue_histogram(p, bins=4)
    np.testing.assert_array_equal(h.counts, [3, 1, 1, 3])
    np.testing.assert_allclose(h.expected, [2, 2, 2, 2])
    # bins of 2 expected are merged in pairs for the chi-square (each >= 5 is impossible: one)
    assert h.ndf == 0 and h.n == 8 and h.mean == pytest.approx(np.mean(p))
    big = pvalue_histogram(np.linspace(0.0005, 0.9995, 1000), bins=10)
    np.testing.assert_array_equal(big.counts, [100] * 10)
    assert big.chi2 == pytest.approx(0.0) and big.ndf == 9 and big.ks_p > 0.99


def test_z_histogram_takes_the_tails_into_its_outer_bins() -> None:
    h = z_histogram([-9.0, -0.1, 0.1, 0.2, 7.0, math.inf], bins=4, z_range=(-2.0, 2.0))
    np.testing.assert_array_equal(h.counts, [1, 1, 2, 2])
    assert h.expected.sum() == pytest.approx(6.0)
    assert h.expected[0] == pytest.approx(6 * stats.norm.cdf(-1.0))


# -- a constructed database of user results with known excesses -------------------------------

REGIONS = {  # id: (observed, background, error)
    "SRexcess": (25, 10.0, 1.0),
    "SRdeficit": (2, 12.0, 1.5),
    "SRquiet": (7, 7.0, 0.5),
}


def _write_region_result(path: Path, result_id: str = "USER-CMS-TEST-01") -> Path:
    lines = [
        "format: protomodels-user-result/1",
        f"id: {result_id}",
        "collaboration: CMS",
        "sqrts: 13",
        "luminosity: 100",
        "signal_regions:",
    ]
    for rid, (n, b, e) in REGIONS.items():
        lines.append(f"  - {{id: {rid}, observed: {n}, background: {b}, background_error: {e}}}")
    lines += [
        "topologies:",
        "  - name: TChiWZ",
        "    constraint: \"[[['W']],[['Z']]]\"",
        "    masses: [[[200, 50], [200, 50]], [[400, 50], [400, 50]], [[400, 300], [400, 300]],"
        " [[200, 150], [200, 150]]]",
        "    efficiencies:",
        "      SRexcess: [0.01, 0.02, 0.001, 0.0005]",
        "      SRquiet: [0.002, 0.004, 0.0001, 0.0001]",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_limit_result(path: Path) -> Path:
    path.write_text(
        "format: protomodels-user-result/1\n"
        "id: USER-ATLAS-TEST-02\n"
        "collaboration: ATLAS\n"
        "sqrts: 13\n"
        "luminosity: 139\n"
        "topologies:\n"
        "  - name: T2tt\n"
        "    constraint: \"[[['t']],[['t']]]\"\n"
        "    masses: [[[500, 0], [500, 0]], [[700, 0], [700, 0]], [[900, 0], [900, 0]],"
        " [[500, 300], [500, 300]], [[700, 300], [700, 300]], [[900, 300], [900, 300]]]\n"
        "    upper_limits: [40.0, 12.0, 6.0, 80.0, 20.0, 4.0]\n"
        "    expected_upper_limits: [20.0, 10.0, 5.0, 40.0, 20.0, 5.0]\n"
    )
    return path


@pytest.fixture(scope="module")
def constructed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("constructed")
    path = folder / "store.sqlite"
    conn = store.connect(path, create=True)
    store.write_meta(conn, {"complete": "1", "database_version": "constructed"})
    conn.close()
    add_user_result(path, _write_region_result(folder / "regions.yaml"))
    add_user_result(path, _write_limit_result(folder / "limits.yaml"))
    return path


def test_the_excess_list_of_a_constructed_database(constructed: Path) -> None:
    database = pdb.load(constructed, workspaces=False)
    rows = {d.region: d for d in region_deviations(database)}
    assert set(rows) == set(REGIONS)
    for rid, (n, b, e) in REGIONS.items():
        p = mid_p_by_quadrature(n, b, e)
        assert rows[rid].p == pytest.approx(p, rel=2e-4)
        assert rows[rid].z == pytest.approx(-stats.norm.ppf(p), rel=1e-3, abs=1e-6)
        assert rows[rid].topologies == (("TChiWZ",) if rid != "SRdeficit" else ())
    assert rows["SRexcess"].z > 3 and rows["SRdeficit"].z < -2 and abs(rows["SRquiet"].z) < 0.5
    # background errors scaled by 2: the excess is less significant
    scaled = {d.region: d for d in region_deviations(database, bg_scale=2.0)}
    assert scaled["SRexcess"].background_error == 2.0
    assert scaled["SRexcess"].p == pytest.approx(mid_p_by_quadrature(25, 10.0, 2.0), rel=2e-4)
    (limit,) = upper_limit_deviations(database)
    z_points = [(40 - 20) / (20 / 1.96), (12 - 10) / (10 / 1.96), (6 - 5) / (5 / 1.96),
                (80 - 40) / (40 / 1.96), 0.0, (4 - 5) / (5 / 1.96)]
    assert limit.z == pytest.approx(float(np.median(z_points)))
    assert limit.z_max == pytest.approx(1.96) and limit.n_points == 6
    assert limit.mass_point == (500.0, 0.0, 500.0, 0.0)


def test_the_excess_list_under_a_signal(constructed: Path) -> None:
    database = pdb.load(constructed, workspaces=False)
    hypothesis = SignalHypothesis(
        region_events={("USER-CMS-TEST-01", "SRexcess"): 15.0},
        map_signals={("USER-ATLAS-TEST-02", "T2tt"): (10.0, 40.0, 20.0, (500.0, 0.0))},
    )
    rows = {d.region: d for d in region_deviations(database, hypothesis=hypothesis)}
    assert rows["SRexcess"].signal == 15.0
    assert rows["SRexcess"].p == pytest.approx(mid_p_by_quadrature(25, 10.0, 1.0, 15.0), rel=2e-4)
    assert rows["SRquiet"].signal == 0.0
    (limit,) = upper_limit_deviations(database, hypothesis=hypothesis)
    assert limit.z == pytest.approx((40 - 20 - 10) / (20 / 1.96))


def test_the_commands_on_the_constructed_database(constructed: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--database", str(constructed), "excesses", "--json", "-"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)["entries"]
    assert [e["region"] for e in entries][0] == "SRexcess"
    assert entries[-1]["region"] == "SRdeficit"
    result = runner.invoke(cli, ["--database", str(constructed), "excesses", "--min-z", "2",
                                 "--csv", "-"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("USER-CMS-TEST-01,")
    plot = tmp_path / "p.png"
    result = runner.invoke(cli, ["--database", str(constructed), "pvalues", "--bins", "2",
                                 "--plot", str(plot), "--json", str(tmp_path / "p.json")],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert plot.stat().st_size > 10_000
    data = json.loads((tmp_path / "p.json").read_text())
    (sm,) = data["hypotheses"]
    ps = sorted(r["p"] for r in sm["regions"])
    assert sm["p_histogram"]["counts"] == [sum(p < 0.5 for p in ps), sum(p >= 0.5 for p in ps)]
    assert "χ²" in result.output


class _Statistics:
    def __init__(self, nll1: float, nll_sm: float) -> None:
        self.nll1, self.nll_sm, self.mu_hat = nll1, nll_sm, 0.5
        self.has_likelihood = True


class _Prediction:
    def __init__(self, r_obs: float, r_exp: float, nll1: float = 1.0, nll_sm: float = 3.0
                 ) -> None:
        self.r_obs, self.r_exp = r_obs, r_exp
        self.result_id = self.analysis = f"A-{r_obs}-{r_exp}"
        self.dataset, self.txnames = "SR1", ("T1",)
        self.statistics = _Statistics(nll1, nll_sm)


def test_sensitive_unexcluded_and_bayes_factors() -> None:
    predictions = [_Prediction(0.5, 1.2), _Prediction(1.5, 2.0), _Prediction(0.9, 0.8),
                   _Prediction(0.4, 3.0, nll1=5.0, nll_sm=4.0)]
    rows = sensitive_unexcluded(predictions)
    assert [(r.r_obs, r.r_exp) for r in rows] == [(0.4, 3.0), (0.5, 1.2)]
    assert rows[0].log_b10 == pytest.approx(-1.0) and rows[1].b10 == pytest.approx(math.e**2)
    assert combination_log_bayes_factor(predictions[:2]) == pytest.approx(4.0)


def test_toys_redraw_the_user_results(constructed: Path) -> None:
    """Campaigns walk on toy databases: a user result's counts and limits are redrawn too."""
    from protomodels.campaigns.toys import apply_toy, make_toy

    database = pdb.load(constructed, workspaces=False)
    toy = apply_toy(database, make_toy(database, seed=3, index=0))
    regions = {d.dataset_id: d.observed_n for d in toy.result("USER-CMS-TEST-01").datasets}
    assert set(regions) == set(REGIONS)
    assert regions != {rid: n for rid, (n, _, _) in REGIONS.items()}  # redrawn
    original = database.result("USER-ATLAS-TEST-02").datasets[0].topologies[0]
    redrawn = toy.result("USER-ATLAS-TEST-02").datasets[0].topologies[0]
    assert not np.array_equal(original.grids["upper_limit"].values,
                              redrawn.grids["upper_limit"].values)
