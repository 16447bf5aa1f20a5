"""Histograms of p-values and significances against their expectation without new physics.

Without new physics (and with background errors that are right) the p-values of independent
signal regions are uniform on [0, 1] and their Z = -Phi^-1(p) standard normal. The mid-p-value
of a counting experiment is uniform only up to the discreteness of the counts: regions with a few
events pile up a little in the middle. A histogram records the counts per bin, the expected
counts, a Pearson chi-square over the bins and a Kolmogorov-Smirnov test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["MIN_EXPECTED", "Histogram", "pvalue_histogram", "z_histogram"]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True)
class Histogram:
    """Counts of a quantity in bins, with what no new physics predicts.

    Attributes:
        quantity: ``"p"`` or ``"Z"``.
        edges: bin edges (the Z histogram's first and last bins take the under- and overflow).
        counts: entries per bin.
        expected: expected entries per bin (uniform p, standard-normal Z).
        chi2, ndf, chi2_p: Pearson chi-square of counts against expected (neighbouring bins
            merged until each expects at least :data:`MIN_EXPECTED` entries), its degrees of
            freedom (merged bins - 1) and p-value.
        ks, ks_p: Kolmogorov-Smirnov distance to the expected distribution and its p-value.
        mean, mean_error: the mean of the values and its expected error (1/sqrt(12 N) for p,
            1/sqrt(N) for Z).
    """

    quantity: str
    edges: np.ndarray
    counts: np.ndarray
    expected: np.ndarray
    chi2: float
    ndf: int
    chi2_p: float
    ks: float
    ks_p: float
    mean: float
    mean_error: float

    @property
    def n(self) -> int:
        """Number of entries."""
        return int(self.counts.sum())

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "quantity": self.quantity, "n": self.n, "edges": self.edges.tolist(),
            "counts": self.counts.astype(int).tolist(), "expected": self.expected.tolist(),
            "chi2": self.chi2, "ndf": self.ndf, "chi2_p": self.chi2_p, "ks": self.ks,
            "ks_p": self.ks_p, "mean": self.mean, "mean_error": self.mean_error,
        }


def _merged(
    counts: np.ndarray, expected: np.ndarray, minimum: float
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbouring bins merged (left to right) until each expects at least ``minimum``."""
    groups_c: list[float] = []
    groups_e: list[float] = []
    c_acc = e_acc = 0.0
    for c, e in zip(counts, expected, strict=True):
        c_acc += c
        e_acc += e
        if e_acc >= minimum:
            groups_c.append(c_acc)
            groups_e.append(e_acc)
            c_acc = e_acc = 0.0
    if e_acc > 0 or c_acc > 0:
        if groups_e:
            groups_c[-1] += c_acc
            groups_e[-1] += e_acc
        else:
            groups_c, groups_e = [c_acc], [e_acc]
    return np.array(groups_c), np.array(groups_e)


#: the chi-square merges neighbouring bins until each expects at least this many entries
MIN_EXPECTED = 5.0


def _finish(
    quantity: str, values: np.ndarray, edges: np.ndarray, counts: np.ndarray,
    expected: np.ndarray, ks: Any, mean_error: float,
) -> Histogram:
    c, e = _merged(counts.astype(float), expected, MIN_EXPECTED)
    chi2 = float(np.sum((c - e) ** 2 / e))
    ndf = len(e) - 1
    return Histogram(
        quantity=quantity, edges=edges, counts=counts.astype(float), expected=expected,
        chi2=chi2, ndf=ndf, chi2_p=float(stats.chi2.sf(chi2, ndf)) if ndf > 0 else math.nan,
        ks=float(ks.statistic), ks_p=float(ks.pvalue),
        mean=float(values.mean()) if len(values) else math.nan, mean_error=mean_error,
    )


def _values(values: Sequence[float], what: str) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        msg = f"no {what} to histogram"
        raise ValueError(msg)
    return v


def pvalue_histogram(pvalues: Sequence[float], bins: int = 10) -> Histogram:
    """Histogram of p-values in ``bins`` equal bins on [0, 1] against the uniform expectation."""
    p = _values(pvalues, "p-values")
    p = p[np.isfinite(p)]
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts, _ = np.histogram(np.clip(p, 0.0, 1.0), edges)
    expected = np.full(bins, len(p) / bins)
    return _finish("p", p, edges, counts, expected, stats.kstest(p, "uniform"),
                   1.0 / math.sqrt(12 * len(p)))


def z_histogram(
    z: Sequence[float], bins: int = 16, z_range: tuple[float, float] = (-4.0, 4.0)
) -> Histogram:
    """Histogram of significances in ``bins`` equal bins on ``z_range`` (the outer bins take
    the values beyond it) against the standard normal."""
    values = _values(z, "significances")
    values = values[~np.isnan(values)]
    edges = np.linspace(z_range[0], z_range[1], bins + 1)
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), edges)
    cdf = stats.norm.cdf(edges)
    cdf[0], cdf[-1] = 0.0, 1.0
    expected = len(values) * np.diff(cdf)
    finite = values[np.isfinite(values)]
    return _finish("Z", finite, edges, counts, expected, stats.kstest(finite, "norm"),
                   1.0 / math.sqrt(len(values)))
