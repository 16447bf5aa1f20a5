"""The global p-value of an observed K from the K_max of a campaign's toys.

Two estimates, as the protomodels paper gives them (arXiv:2012.12246, section 5; the reference
builder's ``plotting/plotKs.py``):

- the plain fraction p = #(K_max >= K_obs) / N of the N toys, with its Clopper-Pearson
  (exact binomial) interval;
- the kernel-density estimate: a Gaussian KDE of the toy K_max (Scott's bandwidth, SciPy's
  default, as the reference) integrated from K_obs to infinity.

The significance is Z = Phi^-1(1 - p) (one-sided).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

__all__ = ["GlobalPValue", "clopper_pearson", "global_p_value", "plot_k_max", "significance"]


def __dir__() -> list[str]:
    return __all__


def clopper_pearson(k: int, n: int, cl: float = 0.68) -> tuple[float, float]:
    """Exact binomial interval of a fraction k / n at confidence level ``cl``.

    >>> [round(x, 4) for x in clopper_pearson(0, 10, 0.95)]
    [0.0, 0.3085]
    """
    if n <= 0 or not 0 <= k <= n:
        msg = f"clopper_pearson needs 0 <= k <= n and n > 0, got k={k}, n={n}"
        raise ValueError(msg)
    alpha = 1.0 - cl
    lower = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    upper = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lower, upper


def significance(p: float) -> float:
    """One-sided Z of a p-value (inf for p = 0).

    >>> round(significance(0.05), 3)
    1.645
    """
    return math.inf if p <= 0 else float(stats.norm.isf(p))


@dataclass(frozen=True)
class GlobalPValue:
    """The global p-value of K_obs.

    Attributes:
        k_obs: the observed K.
        n: toys with a K_max.
        above: toys with K_max >= k_obs.
        p: above / n; interval68, interval95: its Clopper-Pearson intervals.
        p_kde: the kernel-density estimate (NaN with fewer than two distinct K_max).
        z, z_kde: their significances.
    """

    k_obs: float
    n: int
    above: int
    p: float
    interval68: tuple[float, float]
    interval95: tuple[float, float]
    p_kde: float
    z: float
    z_kde: float


def global_p_value(k_max: Sequence[float], k_obs: float) -> GlobalPValue:
    """The global p-value of ``k_obs`` given the toys' K_max (see the module docs).

    >>> g = global_p_value([1.0, 2.0, 3.0, 4.0], 3.0)
    >>> g.above, g.p
    (2, 0.5)
    """
    values = np.asarray(k_max, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        msg = "no toy has a finite K_max yet: run more of the campaign"
        raise ValueError(msg)
    if not math.isfinite(k_obs):
        msg = f"the observed K must be finite, got {k_obs}"
        raise ValueError(msg)
    n = len(values)
    above = int((values >= k_obs).sum())
    p = above / n
    p_kde = math.nan
    if len(np.unique(values)) >= 2:
        p_kde = float(stats.gaussian_kde(values).integrate_box_1d(k_obs, np.inf))
    return GlobalPValue(
        k_obs=float(k_obs),
        n=n,
        above=above,
        p=p,
        interval68=clopper_pearson(above, n, 0.68),
        interval95=clopper_pearson(above, n, 0.95),
        p_kde=p_kde,
        z=significance(p),
        z_kde=significance(p_kde) if math.isfinite(p_kde) else math.nan,
    )


def plot_k_max(
    k_max: Sequence[float], path: str | Path, *, k_obs: float | None = None, title: str = ""
) -> Path:
    """Histogram of the toys' K_max with their kernel density (and K_obs with the area of
    the KDE p-value when given); written as PNG/PDF by matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(k_max, dtype=float)
    values = values[np.isfinite(values)]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.hist(values, bins=max(5, min(30, len(values) // 2)), density=True, alpha=0.45,
            color="tab:blue", label=f"$K_\\mathrm{{max}}$ of {len(values)} toys")
    if len(np.unique(values)) >= 2:
        kde = stats.gaussian_kde(values)
        lo = min(values.min(), k_obs if k_obs is not None else values.min())
        hi = max(values.max(), k_obs if k_obs is not None else values.max())
        pad = 0.25 * (hi - lo + 1.0)
        xs = np.linspace(lo - pad, hi + pad, 400)
        ax.plot(xs, kde(xs), color="tab:orange", label="kernel density")
        if k_obs is not None:
            tail = xs >= k_obs
            ax.fill_between(xs[tail], kde(xs[tail]), color="tab:green", alpha=0.4,
                            label="$p_\\mathrm{global}$ (KDE)")
    if k_obs is not None:
        ax.axvline(k_obs, color="tab:green", lw=2, label=f"$K_\\mathrm{{obs}}$ = {k_obs:.2f}")
    ax.set_xlabel("$K$")
    ax.set_ylabel("density")
    if title:
        ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
