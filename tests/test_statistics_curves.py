"""CurveSet: the batched nll of many likelihoods equals each likelihood's own nll."""

from __future__ import annotations

import numpy as np
import pytest

from protomodels.statistics.curves import CurveSet, CurveShapeError
from protomodels.statistics.likelihood import (
    SimplifiedLikelihood,
    SingleRegionLikelihood,
    TruncatedGaussianLikelihood,
)


class Parabola:
    """A likelihood the CurveSet does not know (evaluated through its own nll)."""

    def __init__(self, centre: float) -> None:
        self.centre = centre

    def nll(self, mu, expected: bool = False) -> np.ndarray:  # noqa: ANN001
        mu = np.asarray(mu, dtype=float)
        return (mu - (0.0 if expected else self.centre)) ** 2


def simplified(rng: np.random.Generator, n: int, skewed: bool) -> SimplifiedLikelihood:
    b = rng.uniform(5.0, 50.0, n)
    a = rng.normal(size=(n, n))
    cov = (a @ a.T) * 0.05 + np.diag(0.1 * b)
    counts = np.round(b + rng.normal(0.0, np.sqrt(b)))
    s = rng.uniform(0.0, 5.0, n)
    third = 0.1 * np.diag(cov) ** 1.5 if skewed else None
    return SimplifiedLikelihood.from_covariance(s, b, cov, counts, third, label="sl")


@pytest.fixture(scope="module")
def likelihoods() -> list:
    rng = np.random.default_rng(7)
    return [
        SingleRegionLikelihood(3.0, 10.0, 2.0, 14.0),
        TruncatedGaussianLikelihood(1.8, 1.2),
        simplified(rng, 3, False),
        SingleRegionLikelihood(0.5, 4.0, 0.0, 2.0),
        simplified(rng, 5, False),
        simplified(rng, 3, False),  # same padded size as the first: one stack
        simplified(rng, 4, True),
        Parabola(0.7),
        TruncatedGaussianLikelihood(0.6, 0.9),
    ]


@pytest.mark.parametrize("expected", [False, True])
def test_curves_equal_the_backends_own_nll(likelihoods: list, expected: bool) -> None:
    curves = CurveSet(likelihoods)
    rng = np.random.default_rng(3)
    rows = rng.integers(0, len(likelihoods), 61)
    mu = rng.uniform(0.0, 4.0, 61)
    got = curves.nll(rows, mu, expected=expected)
    want = np.array([
        float(likelihoods[r].nll(np.array([m]), expected=expected)[0])
        for r, m in zip(rows, mu, strict=True)
    ])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_grid_and_order_do_not_change_the_numbers(likelihoods: list) -> None:
    curves = CurveSet(likelihoods)
    mu = np.linspace(0.0, 3.0, 7)
    grid = curves.grid(np.arange(len(likelihoods)), mu)
    assert grid.shape == (len(likelihoods), len(mu))
    reversed_rows = np.arange(len(likelihoods))[::-1]
    np.testing.assert_allclose(curves.grid(reversed_rows, mu), grid[::-1], rtol=1e-12, atol=0)
    one = CurveSet([likelihoods[4]]).grid([0], mu)
    np.testing.assert_allclose(one[0], grid[4], rtol=1e-10, atol=1e-10)


def test_a_likelihood_that_is_not_vectorised_is_named() -> None:
    class Scalar(Parabola):
        def nll(self, mu, expected: bool = False) -> np.ndarray:  # noqa: ANN001
            return np.zeros(1)

    with pytest.raises(CurveShapeError, match="likelihood 0.*vectorised over mu"):
        CurveSet([Scalar(1.0)]).nll([0, 0, 0], [0.0, 1.0, 2.0])


def test_empty_requests() -> None:
    assert CurveSet([]).nll([], []).shape == (0,)


def test_per_pair_flags_equal_one_flag_per_call(likelihoods: list) -> None:
    curves = CurveSet(likelihoods)
    rng = np.random.default_rng(5)
    rows = rng.integers(0, len(likelihoods), 40)
    mu = rng.uniform(0.0, 3.0, 40)
    flags = rng.random(40) < 0.5
    mixed = curves.nll(rows, mu, expected=flags)
    apart = np.where(flags, curves.nll(rows, mu, True), curves.nll(rows, mu, False))
    np.testing.assert_allclose(mixed, apart, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("expected", [False, True])
def test_slopes_equal_finite_differences(likelihoods: list, expected: bool) -> None:
    curves = CurveSet(likelihoods)
    rows = np.repeat(np.arange(len(likelihoods)), 3)
    mu = np.tile([0.4, 1.3, 2.7], len(likelihoods))
    _, slopes = curves.nll_and_slope(rows, mu, expected)
    h = 1e-5
    numeric = (curves.nll(rows, mu + h, expected) - curves.nll(rows, mu - h, expected)) / (2 * h)
    np.testing.assert_allclose(slopes, numeric, rtol=1e-4, atol=1e-5)
    values, none = curves.nll_and_slope(rows, mu, expected, slopes=False)
    assert np.isnan(none[rows == 7]).all()  # the user likelihood: no slope asked
    np.testing.assert_allclose(values, curves.nll(rows, mu, expected), rtol=1e-12)


def test_a_fit_does_not_depend_on_the_other_pairs_of_its_batch(likelihoods: list) -> None:
    """Profile fits run vmapped, padded to a few lane counts (padding lanes repeat the first
    pair): five pairs in one call (16 lanes) give exactly the values of each pair fitted alone
    (4 lanes), each on a fresh set (no warm starts)."""
    skewed = likelihoods[6]
    mu = np.array([0.0, 0.4, 1.1, 2.5, 3.7])
    together = CurveSet([skewed]).nll(np.zeros(5, dtype=np.int64), mu)
    alone = [CurveSet([skewed]).nll([0], [m])[0] for m in mu]
    np.testing.assert_array_equal(together, alone)
