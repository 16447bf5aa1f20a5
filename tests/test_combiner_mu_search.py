"""The search over combinations and mu against brute force on Gaussian (exact optimum) and
Poisson (dense scan) likelihood curves."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from protomodels.combiner.graph import CombinabilityError
from protomodels.combiner.mu_search import MuSearchSettings, best_combination_in_mu
from protomodels.combiner.search import best_combination


class Gauss:
    """nll = (mu - m)^2 / (2 s^2): w(mu) = (2 m mu - mu^2) / s^2."""

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


class Poisson:
    """One counting experiment: n observed, b background, s signal at mu = 1."""

    def __init__(self, s: float, b: float, n: int) -> None:
        self.s, self.b, self.n = s, b, n

    def nll(self, mu, expected: bool = False) -> np.ndarray:  # noqa: ANN001
        lam = np.asarray(mu, dtype=float) * self.s + self.b
        return lam - self.n * np.log(lam) + math.lgamma(self.n + 1)

    @property
    def mu_hat(self) -> float:
        return (self.n - self.b) / self.s

    @property
    def nll_max(self) -> float:  # at lambda = n (mu = mu_hat, which may be negative)
        return self.n - self.n * math.log(self.n) + math.lgamma(self.n + 1) if self.n else 0.0


class Bimodal:
    """Not unimodal: two bumps (the search must not trust interval end values)."""

    def __init__(self, a: float, b: float, depth: float) -> None:
        self.a, self.b, self.depth = a, b, depth

    def nll(self, mu, expected: bool = False) -> np.ndarray:  # noqa: ANN001
        mu = np.asarray(mu, dtype=float)
        bumps = np.exp(-((mu - self.a) ** 2) / 0.02) + 1.5 * np.exp(-((mu - self.b) ** 2) / 0.02)
        return -self.depth * bumps

    @property
    def mu_hat(self) -> float:
        return self.b

    @property
    def nll_max(self) -> float:
        return -self.depth * 1.6


def problems(seed: int, count: int, maker):  # noqa: ANN001, ANN201
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(1, 9))
        upper = np.triu(rng.random((n, n)) < rng.uniform(0.2, 0.95), 1)
        yield [maker(rng) for _ in range(n)], upper | upper.T, [f"A{i}" for i in range(n)]


def combinations(combinable: np.ndarray):  # noqa: ANN201
    n = len(combinable)
    for size in range(1, n + 1):
        for c in itertools.combinations(range(n), size):
            if all(combinable[i, j] for i, j in itertools.combinations(c, 2)):
                yield c


def gauss_optimum(likelihoods, combinable) -> float:  # noqa: ANN001
    best = 0.0
    for c in combinations(combinable):
        a = sum(1 / likelihoods[i].s ** 2 for i in c)
        b = sum(likelihoods[i].m / likelihoods[i].s ** 2 for i in c)
        mu = max(0.0, b / a)
        best = max(
            best, sum((2 * likelihoods[i].m * mu - mu**2) / likelihoods[i].s ** 2 for i in c)
        )
    return best


def scan_optimum(likelihoods, combinable, top: float) -> float:  # noqa: ANN001
    """Per combination: dense scan, then bounded Brent around the best scan point."""
    mu = np.linspace(0.0, top, 4001)
    nll0 = np.array([float(lik.nll(np.zeros(1))[0]) for lik in likelihoods])
    curves = np.array([2 * (nll0[i] - lik.nll(mu)) for i, lik in enumerate(likelihoods)])
    best = 0.0
    for c in combinations(combinable):
        total = curves[list(c)].sum(axis=0)
        k = int(np.argmax(total))
        lo, hi = mu[max(k - 1, 0)], mu[min(k + 1, len(mu) - 1)]

        def f(x: float, c: tuple = c) -> float:
            return -sum(2 * (nll0[i] - float(likelihoods[i].nll(np.array([x]))[0])) for i in c)

        refined = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
        best = max(best, float(total[k]), -float(refined.fun))
    return best


@pytest.mark.parametrize("seed", range(3))
def test_gaussian_curves_equal_the_exact_optimum(seed: int) -> None:
    tol = MuSearchSettings().tolerance
    for likelihoods, combinable, analyses in problems(
        seed, 60, lambda rng: Gauss(rng.normal(0.8, 1.2), rng.uniform(0.2, 2.0))
    ):
        fit = best_combination_in_mu(likelihoods, combinable, analyses)
        expected = gauss_optimum(likelihoods, combinable)
        assert fit.certified
        assert expected - tol <= fit.T_L <= expected + 1e-9
        assert fit.T_L == pytest.approx(sum(fit.contributions))
        if fit.indices:
            members = [likelihoods[i] for i in fit.indices]
            weighted_mean = sum(g.m / g.s**2 for g in members) / sum(1 / g.s**2 for g in members)
            assert fit.mu_hat == pytest.approx(max(weighted_mean, 0.0), abs=2e-3)


def poisson(rng: np.random.Generator) -> Poisson:
    b, s = rng.uniform(0.5, 30.0), rng.uniform(0.2, 8.0)
    return Poisson(s, b, int(rng.poisson(b + s * rng.uniform(0.0, 1.5))))


@pytest.mark.parametrize("seed", range(2))
def test_poisson_curves_equal_a_dense_scan(seed: int) -> None:
    tol = MuSearchSettings().tolerance
    for likelihoods, combinable, analyses in problems(10 + seed, 25, poisson):
        fit = best_combination_in_mu(likelihoods, combinable, analyses)
        top = max(1.0, max(max(lik.mu_hat, 0.0) for lik in likelihoods)) * 1.01
        expected = scan_optimum(likelihoods, combinable, top)
        assert fit.certified
        assert expected - tol <= fit.T_L <= expected + 1e-7


def test_mu1_is_the_fixed_weight_search() -> None:
    for likelihoods, combinable, analyses in problems(
        30, 30, lambda rng: Gauss(rng.normal(0.8, 1.2), rng.uniform(0.2, 2.0))
    ):
        fit = best_combination_in_mu(likelihoods, combinable, analyses)
        weights = [2 * (lik.nll(0.0) - lik.nll(1.0)) for lik in likelihoods]
        chosen, total = best_combination(weights, combinable, analyses)
        assert fit.indices_mu1 == chosen
        assert fit.T_L_mu1 == pytest.approx(total)
        assert fit.T_L >= fit.T_L_mu1 - 1e-12


def test_curves_that_are_not_unimodal() -> None:
    """A two-bump curve: bounded by its global maximum, the search still finds the optimum."""
    likelihoods = [Bimodal(0.5, 2.0, 3.0), Gauss(0.6, 0.5), Gauss(1.9, 1.0)]
    combinable = np.ones((3, 3), dtype=bool)
    fit = best_combination_in_mu(likelihoods, combinable, ["A", "B", "C"])
    expected = scan_optimum(likelihoods, combinable, 2.5)
    assert expected - 1e-3 <= fit.T_L <= expected + 1e-7
    # its bound does not shrink with the intervals: no certificate, but a bounded cost
    assert not fit.certified and fit.gap > 0
    assert fit.nll_calls < 3 * 40


def test_nothing_positive() -> None:
    likelihoods = [Gauss(-1.0, 1.0), Gauss(-0.2, 0.3)]
    fit = best_combination_in_mu(likelihoods, np.ones((2, 2), bool), ["A", "B"])
    assert (fit.indices, fit.T_L, fit.mu_hat, fit.indices_mu1, fit.certified) == (
        (),
        0,
        0,
        (),
        True,
    )
    empty = best_combination_in_mu([], np.zeros((0, 0), bool), [])
    assert empty.T_L == 0.0 and empty.nll_calls == 0


def test_same_analysis_never_combined() -> None:
    likelihoods = [Gauss(1.0, 0.5), Gauss(1.0, 0.4)]
    fit = best_combination_in_mu(likelihoods, np.ones((2, 2), bool), ["CMS-X", "CMS-X-agg"])
    assert fit.indices == (1,)


def test_bounded_cost_without_certificate() -> None:
    likelihoods = [Gauss(1.0 + 0.01 * k, 0.3 + 0.02 * k) for k in range(12)]
    combinable = ~np.eye(12, dtype=bool)
    strict = MuSearchSettings(tolerance=1e-12, max_rounds=1)
    fit = best_combination_in_mu(
        likelihoods, combinable, [f"A{k}" for k in range(12)], settings=strict
    )
    assert fit.nll_calls < 12 * 20
    assert fit.certified == (fit.gap == 0.0)
    assert fit.T_L == pytest.approx(gauss_optimum(likelihoods, combinable), abs=1e-3)


def test_bad_likelihood_shape() -> None:
    class Scalar(Gauss):
        def nll(self, mu, expected: bool = False) -> np.ndarray:  # noqa: ANN001
            return np.zeros(1)

    with pytest.raises(CombinabilityError, match="vectorised over mu"):
        best_combination_in_mu([Scalar(1.0, 1.0)], np.zeros((1, 1), bool), ["A"])
    with pytest.raises(CombinabilityError, match="grid_points"):
        MuSearchSettings(grid_points=1)


def test_likelihood_zero_at_mu0_is_refused() -> None:
    class Impossible(Gauss):
        def nll(self, mu, expected: bool = False) -> np.ndarray:  # noqa: ANN001
            mu = np.asarray(mu, dtype=float)
            return np.where(mu == 0, np.inf, super().nll(mu))

    with pytest.raises(CombinabilityError, match=r"nll\(0\) = inf"):
        best_combination_in_mu([Impossible(1.0, 1.0)], np.zeros((1, 1), bool), ["A"])


def mixed(rng: np.random.Generator) -> Gauss | Poisson:
    return (
        Gauss(rng.normal(0.8, 1.2), rng.uniform(0.1, 2.0)) if rng.random() < 0.5 else poisson(rng)
    )


@pytest.mark.parametrize("seed", [49, 50])
def test_coarse_settings_are_still_certified_exact(seed: int) -> None:
    """A 3-point start and a minimal zoom: the certificate alone must get T_L right (these
    seeds once exposed secants over near-duplicate grid points)."""
    coarse = MuSearchSettings(grid_points=2, zoom_rounds=1, zoom_points=3)
    for likelihoods, combinable, analyses in problems(seed, 25, mixed):
        fit = best_combination_in_mu(likelihoods, combinable, analyses, settings=coarse)
        top = max(1.0, max(max(lik.mu_hat, 0.0) for lik in likelihoods)) * 1.01
        expected = scan_optimum(likelihoods, combinable, top)
        assert fit.certified
        assert expected - coarse.tolerance <= fit.T_L <= expected + 1e-7
