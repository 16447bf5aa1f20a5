"""Figures of the meta-statistical view: p-value and significance histograms (matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from protomodels.metastatistics.histogram import Histogram

__all__ = ["histogram_figure"]


def __dir__() -> list[str]:
    return __all__


def _panel(ax, histograms: Sequence[tuple[str, Histogram]], colours: Sequence[str]) -> None:  # noqa: ANN001
    first = histograms[0][1]
    edges = first.edges
    for (label, h), colour in zip(histograms, colours, strict=False):
        text = (f"{label}: N = {h.n}, mean {h.mean:.2f} ± {h.mean_error:.2f}, "
                f"χ²/ndf {h.chi2:.1f}/{h.ndf}, KS p {h.ks_p:.2g}")
        ax.stairs(h.counts, edges, color=colour, lw=1.8, label=text)
    ax.stairs(first.expected, edges, color="black", ls="--", lw=1.2,
              label="no new physics (uniform p)" if first.quantity == "p"
              else "no new physics (standard normal)")
    ax.set_xlabel("p-value" if first.quantity == "p" else "Z = -Φ⁻¹(p)")
    ax.set_ylabel("signal regions per bin")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, 1.35 * max(max(h.counts.max() for _, h in histograms), first.expected.max()))
    ax.legend(fontsize=7, loc="upper left" if first.quantity == "Z" else "upper right")


def histogram_figure(
    pvalues: Sequence[tuple[str, Histogram]],
    significances: Sequence[tuple[str, Histogram]],
    path: str | Path,
    *,
    title: str = "",
) -> Path:
    """Write the p-value (left) and Z (right) histograms of one or more hypotheses (label,
    histogram) with the no-new-physics expectation; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = ["tab:blue", "tab:red", "tab:green", "tab:orange"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    _panel(axes[0], pvalues, colours)
    _panel(axes[1], significances, colours)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path

