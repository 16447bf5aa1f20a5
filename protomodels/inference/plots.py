"""Corner-style plots of a protomodel's parameters: the Fisher (Gaussian) approximation, and
posterior samples with the Gaussian drawn beside them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["corner_plot"]


def __dir__() -> list[str]:
    return __all__


def _ellipse(mean: np.ndarray, cov: np.ndarray, level: float) -> np.ndarray:
    """(2, 100) points of the ellipse of a 2-d Gaussian holding ``level`` of its mass."""
    radius = np.sqrt(-2.0 * np.log(1.0 - level))
    vals, vecs = np.linalg.eigh(cov)
    t = np.linspace(0, 2 * np.pi, 100)
    circle = np.stack([np.cos(t), np.sin(t)])
    return mean[:, None] + vecs @ (np.sqrt(np.maximum(vals, 0))[:, None] * circle) * radius


def corner_plot(
    path: str | Path,
    names: Sequence[str],
    *,
    samples: np.ndarray | None = None,
    mean: np.ndarray | None = None,
    covariance: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """A corner plot: per parameter the marginal (histogram of ``samples`` and/or the Gaussian
    of ``mean``, ``covariance``), per pair the samples and the Gaussian's 68 % and 95 %
    ellipses. Returns the path written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(names)
    size = max(2.2 * n, 4.0)
    fig, axes = plt.subplots(n, n, figsize=(size, size), squeeze=False)
    gauss = mean is not None and covariance is not None
    for i in range(n):
        for j in range(n):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                if samples is not None:
                    ax.hist(samples[:, i], bins=40, density=True, color="#4c72b0", alpha=0.6,
                            label="posterior")
                if gauss and np.isfinite(covariance[i, i]) and covariance[i, i] > 0:
                    s = np.sqrt(covariance[i, i])
                    x = np.linspace(mean[i] - 4 * s, mean[i] + 4 * s, 200)
                    ax.plot(x, np.exp(-0.5 * ((x - mean[i]) / s) ** 2) / (s * np.sqrt(2 * np.pi)),
                            color="#c44e52", label="Fisher")
                ax.set_yticks([])
            else:
                if samples is not None:
                    ax.plot(samples[:, j], samples[:, i], ",", color="#4c72b0", alpha=0.3)
                if gauss:
                    sub = covariance[np.ix_([j, i], [j, i])]
                    if np.all(np.isfinite(sub)):
                        for level, style in ((0.68, "-"), (0.95, "--")):
                            e = _ellipse(mean[[j, i]], sub, level)
                            ax.plot(e[0], e[1], style, color="#c44e52", lw=1)
            if i == n - 1:
                ax.set_xlabel(names[j], fontsize=8)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(names[i], fontsize=8)
            elif j > 0:
                ax.set_yticklabels([])
            ax.tick_params(labelsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
