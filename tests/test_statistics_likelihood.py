"""The likelihood backends against closed forms and independent scipy implementations.

Every expected number here is computed at run time from formulas (scipy.stats, scipy.optimize),
never copied from the code under test.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy import optimize, special, stats

from protomodels.statistics import simplified
from protomodels.statistics.likelihood import (
    Likelihood,
    SimplifiedLikelihood,
    SingleRegionLikelihood,
    TruncatedGaussianLikelihood,
    padded_size,
)

# ---- independent reference implementations (numpy / scipy) -----------------------------------


def _cls(q: float, qa: float) -> float:
    """Asymptotic CLs of arXiv:1007.1727 (q~_mu), as SModelS's CLsfromNLL."""
    q, qa = max(q, 0.0), max(qa, 0.0)
    if qa >= q:
        clsb = stats.norm.sf(np.sqrt(q))
        clb = stats.norm.cdf(np.sqrt(qa) - np.sqrt(q))
    elif qa == 0:
        return 1.0
    else:
        clsb = stats.norm.sf((q + qa) / (2 * np.sqrt(qa)))
        clb = stats.norm.sf((q - qa) / (2 * np.sqrt(qa)))
    return clsb / clb


def _sl_nll(mu: float, theta: np.ndarray, n, s, b, cov) -> float:
    """Linear simplified likelihood with all constants (scipy densities)."""
    lam = np.maximum(mu * s + b + theta, 1e-30)
    poisson = -np.sum(n * np.log(lam) - lam - special.gammaln(n + 1))
    return poisson - stats.multivariate_normal(np.zeros(len(b)), cov).logpdf(theta)


def _sl_profile(mu: float, n, s, b, cov) -> float:
    """min over theta in [-10 n, 10 n] (L-BFGS-B)."""
    inv = np.linalg.inv(cov)

    def grad(theta: np.ndarray) -> np.ndarray:
        lam = np.maximum(mu * s + b + theta, 1e-30)
        return 1 - n / lam + inv @ theta

    result = optimize.minimize(
        lambda t: _sl_nll(mu, t, n, s, b, cov),
        np.zeros(len(b)),
        jac=grad,
        method="L-BFGS-B",
        bounds=[(-10 * x, 10 * x) for x in n],
        options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 10000},
    )
    return float(result.fun)


def _sl_fit(n, s, b, cov) -> tuple[float, float]:
    at_zero = _sl_profile(0.0, n, s, b, cov)
    result = optimize.minimize_scalar(
        lambda mu: _sl_profile(mu, n, s, b, cov), bounds=(0.0, 50.0), method="bounded",
        options={"xatol": 1e-9},
    )
    return (0.0, at_zero) if at_zero <= result.fun else (float(result.x), float(result.fun))


def _sl_limit(n, s, b, cov) -> float:
    """SModelS's CLs recipe with scipy: fits, post-fit Asimov data, brentq."""
    mu_hat, nll0 = _sl_fit(n, s, b, cov)
    inv = np.linalg.inv(cov)
    theta0 = optimize.minimize(
        lambda t: _sl_nll(0.0, t, n, s, b, cov),
        np.zeros(len(b)),
        jac=lambda t: 1 - n / np.maximum(b + t, 1e-30) + inv @ t,
        method="L-BFGS-B",
        bounds=[(-10 * x, 10 * x) for x in n],
        options={"ftol": 1e-15, "gtol": 1e-11},
    ).x
    asimov = b + theta0
    _, nll0_a = _sl_fit(asimov, s, b, cov)

    def root(mu: float) -> float:
        q = 2 * (_sl_profile(mu, n, s, b, cov) - nll0)
        qa = 2 * (_sl_profile(mu, asimov, s, b, cov) - nll0_a)
        return _cls(q, qa) - 0.05

    return optimize.brentq(root, mu_hat + 1e-6, 100.0, rtol=1e-10)


def _three_regions() -> tuple[np.ndarray, ...]:
    """A correlated three-region example with an empty region and an excess."""
    b = np.array([12.0, 4.5, 30.0])
    n = np.array([17.0, 0.0, 26.0])
    s = np.array([2.0, 1.0, 3.5])
    sd = np.array([3.0, 1.5, 6.0])
    corr = np.array([[1.0, 0.4, 0.2], [0.4, 1.0, -0.3], [0.2, -0.3, 1.0]])
    return s, b, corr * np.outer(sd, sd), n


# ---- single region ------------------------------------------------------------------------------


def test_single_poisson_region_closed_forms() -> None:
    s, b, n = 2.5, 3.0, 9.0
    like = SingleRegionLikelihood(s, b, 0.0, n, "poisson")
    assert like.mu_hat == pytest.approx((n - b) / s, rel=1e-12)
    mu = np.array([0.0, 0.5, 1.0, 2.4, 7.0])
    expected = -stats.poisson.logpmf(n, mu * s + b)
    np.testing.assert_allclose(like.nll(mu), expected, rtol=1e-12)
    assert like.nll_max == pytest.approx(-stats.poisson.logpmf(n, n), rel=1e-12)
    # a priori expected: n replaced by b (non-integer counts: the continuous Poisson)
    expected_b = mu * s + b - b * np.log(mu * s + b) + special.gammaln(b + 1)
    np.testing.assert_allclose(like.nll(mu, expected=True), expected_b, rtol=1e-12)


@pytest.mark.parametrize(("s", "b", "n"), [(2.5, 3.0, 9.0), (1.0, 10.0, 4.0), (4.0, 0.7, 0.0)])
def test_single_poisson_region_cls_limit(s: float, b: float, n: float) -> None:
    """No nuisance: q and qA in closed form, the root with scipy."""
    like = SingleRegionLikelihood(s, b, 0.0, n, "poisson")

    def nll(mu: float, counts: float) -> float:
        lam = mu * s + b
        return lam - counts * np.log(lam) + special.gammaln(counts + 1)

    mu_hat = max(0.0, (n - b) / s)

    def root(mu: float, counts: float, fit: float) -> float:
        q = 2 * (nll(mu, counts) - nll(fit, counts))
        qa = 2 * (nll(mu, b) - nll(0.0, b))  # Asimov data = b (no nuisance to fit)
        return _cls(q, qa) - 0.05

    observed = optimize.brentq(root, mu_hat + 1e-9, 1e3, args=(n, mu_hat), rtol=1e-12)
    expected = optimize.brentq(root, 1e-9, 1e3, args=(b, 0.0), rtol=1e-12)
    assert like.upper_limit() == pytest.approx(observed, rel=1e-5)
    assert like.upper_limit(expected=True) == pytest.approx(expected, rel=1e-5)


def test_single_region_profile_matches_scipy() -> None:
    s, b, sigma, n = 1.7, 6.0, 2.2, 3.0
    like = SingleRegionLikelihood(s, b, sigma, n, "sr")
    for mu in (0.0, 0.4, 2.0):
        ref = optimize.minimize_scalar(
            lambda t, mu=mu: -stats.poisson.logpmf(n, mu * s + b + t)
            - stats.norm.logpdf(t, 0, sigma),
            bounds=(max(-10 * n, 1e-9 - mu * s - b), 10 * n),
            method="bounded",
            options={"xatol": 1e-12},
        ).fun
        assert float(like.nll(mu)) == pytest.approx(ref, abs=1e-9)


# ---- truncated Gaussian -----------------------------------------------------------------------


@pytest.mark.parametrize(("u", "e"), [(0.8, 1.0), (1.0, 1.0), (1.6, 1.1), (0.3, 1.2), (5.0, 2.0)])
def test_truncated_gaussian_reproduces_observed_limit(u: float, e: float) -> None:
    like = TruncatedGaussianLikelihood(u, e, "ul")
    # mu-hat is defined by: u is the 95 % quantile of the Gaussian truncated to mu >= 0
    sigma, mu_hat = like.sigma_mu, like.mu_hat
    quantile = stats.truncnorm.ppf(0.95, -mu_hat / sigma, np.inf, loc=mu_hat, scale=sigma)
    assert quantile == pytest.approx(u, rel=1e-7)
    tail = np.exp(stats.norm.logsf(u, mu_hat, sigma) - stats.norm.logsf(0, mu_hat, sigma))
    assert tail == pytest.approx(0.05, rel=1e-8)
    # width: expected limit (corrected by SModelS's 0.6 rule when u > e) / 1.96
    corrected = e / (1 - 0.6 * (u - e) / (u + e)) if u > e else e
    assert sigma == pytest.approx(corrected / 1.96, rel=1e-12)
    assert like.upper_limit() == u and like.upper_limit(expected=True) == e
    # the density, normalised on mu >= 0
    mu = np.linspace(-1, 4, 11)
    ref = -stats.norm.logpdf(mu, mu_hat, sigma) + stats.norm.logsf(0, mu_hat, sigma)
    np.testing.assert_allclose(like.nll(mu), ref, rtol=1e-10, atol=1e-12)
    ref_exp = -stats.norm.logpdf(mu, 0, sigma) - np.log(2)
    np.testing.assert_allclose(like.nll(mu, expected=True), ref_exp, rtol=1e-10, atol=1e-12)
    assert like.nll_max == pytest.approx(float(like.nll(mu_hat)), rel=1e-12)


# ---- simplified likelihood --------------------------------------------------------------------


def test_simplified_profile_fit_and_limits_match_scipy() -> None:
    s, b, cov, n = _three_regions()
    like = SimplifiedLikelihood.from_covariance(s, b, cov, n, label="sl")
    for mu in (0.0, 0.7, 3.0):
        assert float(like.nll(mu)) == pytest.approx(_sl_profile(mu, n, s, b, cov), abs=1e-7)
        expected = _sl_profile(mu, b, s, b, cov)
        assert float(like.nll(mu, expected=True)) == pytest.approx(expected, abs=1e-7)
    mu_hat, nll_max = _sl_fit(n, s, b, cov)
    assert like.mu_hat == pytest.approx(mu_hat, abs=1e-5)
    assert like.nll_max == pytest.approx(nll_max, abs=1e-8)
    summary = like.summary
    assert summary.nll1 == pytest.approx(_sl_profile(1.0, n, s, b, cov), abs=1e-7)
    assert summary.nll_sm == pytest.approx(_sl_profile(0.0, n, s, b, cov), abs=1e-7)
    assert like.upper_limit() == pytest.approx(_sl_limit(n, s, b, cov), rel=1e-5)
    assert like.upper_limit(expected=True) == pytest.approx(_sl_limit(b, s, b, cov), rel=1e-5)


def test_skewed_profile_matches_scipy() -> None:
    s, b, cov, n = _three_regions()
    third = np.array([4.0, 0.5, -30.0])
    like = SimplifiedLikelihood.from_covariance(s, b, cov, n, third, label="skewed")
    with jax.enable_x64(True):
        m = simplified.make_model(s, b, cov, third)
        a, c, inv = (np.asarray(x) for x in (m.a, m.c_over_b2, m.v_inv))
    v = np.linalg.inv(inv)
    for mu in (0.0, 1.0):

        def nll(t: np.ndarray, mu: float = mu) -> float:
            lam = np.maximum(mu * s + a + t + c * t**2, 1e-30)
            poisson = -np.sum(n * np.log(lam) - lam - special.gammaln(n + 1))
            return poisson - stats.multivariate_normal(np.zeros(3), v).logpdf(t)

        ref = min(
            optimize.minimize(
                nll, start, method="L-BFGS-B", bounds=[(-10 * x, 10 * x) for x in n],
                options={"ftol": 1e-15, "gtol": 1e-11},
            ).fun
            for start in (np.zeros(3), np.array([2.0, 0.0, -3.0]))
        )
        assert float(like.nll(mu)) == pytest.approx(ref, abs=1e-6)
    assert like.mu_hat >= 0 and np.isfinite(like.upper_limit())


def test_diagonal_simplified_is_sum_of_single_regions() -> None:
    s, b, cov, n = _three_regions()
    sd = np.sqrt(np.diag(cov))
    like = SimplifiedLikelihood.from_covariance(s, b, np.diag(sd**2), n, label="diag")
    singles = [SingleRegionLikelihood(*row, "sr") for row in zip(s, b, sd, n, strict=True)]
    mu = np.linspace(0.0, 4.0, 9)
    for expected in (False, True):
        total = sum(single.nll(mu, expected=expected) for single in singles)
        np.testing.assert_allclose(like.nll(mu, expected=expected), total, rtol=1e-10)


def test_padding_changes_no_number() -> None:
    s, b, cov, n = _three_regions()
    like = SimplifiedLikelihood.from_covariance(s, b, cov, n, label="sl")
    assert like.model.s.shape == (padded_size(3),) == (4,)
    wider = SimplifiedLikelihood(
        simplified.pad_model(like.model, 8),
        np.concatenate([like.observed, np.zeros(4)]),
        np.concatenate([like.background, np.zeros(4)]),
        "sl",
    )
    # equal up to rounding: the fits stop at rounding level, the limit searches at rtol 1e-6
    narrow, wide = like.summary, wider.summary
    for field in ("nll1", "nll_sm", "nll_max"):
        assert getattr(narrow, field) == pytest.approx(getattr(wide, field), rel=1e-12)
    assert narrow.mu_hat == pytest.approx(wide.mu_hat, abs=1e-7)
    assert narrow.limit == pytest.approx(wide.limit, rel=1e-6)
    assert narrow.expected_limit == pytest.approx(wide.expected_limit, rel=1e-6)
    mu = np.array([0.0, 1.0, 2.5])
    np.testing.assert_allclose(like.nll(mu), wider.nll(mu), rtol=1e-12)


def test_zero_signal_gives_the_background_likelihood() -> None:
    s, b, cov, n = _three_regions()
    mu = np.array([0.0, 0.5, 3.0, 100.0])
    sl = SimplifiedLikelihood.from_covariance(np.zeros(3), b, cov, n, label="sl")
    np.testing.assert_allclose(sl.nll(mu), np.full(4, float(sl.nll(0.0))), rtol=1e-12)
    assert sl.nll_max == pytest.approx(float(sl.nll(0.0)), rel=1e-12)
    assert not np.isfinite(sl.upper_limit())
    sr = SingleRegionLikelihood(0.0, b[0], np.sqrt(cov[0, 0]), n[0], "sr")
    np.testing.assert_allclose(sr.nll(mu), np.full(4, float(sr.nll(0.0))), rtol=1e-12)
    assert sr.nll_max == pytest.approx(float(sr.nll(0.0)), rel=1e-12)


def test_backends_follow_the_protocol_and_vectorise() -> None:
    s, b, cov, n = _three_regions()
    backends = [
        TruncatedGaussianLikelihood(0.9, 1.2, "ul"),
        SingleRegionLikelihood(s[0], b[0], np.sqrt(cov[0, 0]), n[0], "sr"),
        SimplifiedLikelihood.from_covariance(s, b, cov, n, label="sl"),
    ]
    mu = np.array([[0.0, 0.3, 1.0], [2.0, 5.0, 0.1]])
    for like in backends:
        assert isinstance(like, Likelihood)
        for expected in (False, True):
            values = like.nll(mu, expected=expected)
            assert values.shape == mu.shape
            one_by_one = [float(like.nll(x, expected=expected)) for x in mu.ravel()]
            np.testing.assert_allclose(values.ravel(), one_by_one, rtol=1e-12)
        assert np.ndim(like.nll(0.5)) == 0
        assert isinstance(like.mu_hat, float) and isinstance(like.nll_max, float)
        assert like.nll_max <= float(np.min(like.nll(np.linspace(0, 5, 51)))) + 1e-9
