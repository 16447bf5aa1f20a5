"""Plots of a run file: the best model's mass spectrum, K and T_L per step, and the
contribution of each result to K."""

from __future__ import annotations

import os
from pathlib import Path

from protomodels.builders.records import model_from_json
from protomodels.builders.storage import RunStorage
from protomodels.theory.particles import NAMES

__all__ = ["PLOTS", "plot_run"]


def __dir__() -> list[str]:
    return __all__


#: the files :func:`plot_run` writes (the last two when the run has a hiscore)
PLOTS = ("walk.png", "spectrum.png", "contributions.png")


def plot_run(run_file: str | os.PathLike[str], folder: str | os.PathLike[str]) -> list[Path]:
    """Write ``spectrum.png``, ``walk.png`` and ``contributions.png``; returns their paths.

    The run file is only read (a file that is not a run file is refused before the folder
    is created).

    Raises:
        MissingDependencyError: matplotlib is not installed (the message says how to).
        RunStorageError: not a run file.
    """
    from protomodels._optional import require

    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with RunStorage(run_file, readonly=True) as storage:
        steps = storage.steps()
        best = storage.hiscores()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    fig, (ax_k, ax_t) = plt.subplots(2, 1, sharex=True, figsize=(8, 6))
    for w in sorted({s.walker for s in steps}):
        mine = [s for s in steps if s.walker == w]
        ax_k.plot([s.step for s in mine], [s.K_current for s in mine], lw=1, label=f"walker {w}")
        accepted = [s for s in mine if s.accepted and s.T_L is not None]
        ax_t.plot([s.step for s in accepted], [s.T_L for s in accepted], ".", ms=3)
    ax_k.set_ylabel("K of the chain")
    ax_t.set_ylabel("T_L (accepted)")
    ax_t.set_xlabel("step")
    if len({s.walker for s in steps}) <= 10:
        ax_k.legend(fontsize="small")
    fig.tight_layout()
    written.append(out / "walk.png")
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)

    if best:
        top = best[0]
        model = model_from_json(top.model)
        fig, ax = plt.subplots(figsize=(9, 6))
        order = sorted(model.masses, key=lambda p: model.masses[p])
        masses = [model.masses[p] for p in order]
        span = max(max(masses) - min(masses), 1.0)
        # labels in a column right of the levels, pushed apart where masses are close
        label_y: list[float] = []
        for m in masses:
            y = m if not label_y else max(m, label_y[-1] + 0.06 * span)
            label_y.append(y)
        for pdg, m, y in zip(order, masses, label_y, strict=True):
            ax.hlines(m, 0.0, 1.0, lw=3)
            multipliers = [
                f"{NAMES.get(abs(a), a)} {NAMES.get(abs(b), b)}: {v:.2g}"
                for (a, b), v in sorted(model.ssm.items(), key=lambda kv: -kv[1])
                if v > 0 and pdg in (abs(a), abs(b))
            ]
            text = f"{NAMES.get(pdg, str(pdg))}  {m:.0f} GeV"
            if multipliers:
                text += "\nκ: " + ", ".join(multipliers[:3])
            ax.plot([1.0, 1.15], [m, y], lw=0.5, color="grey")
            ax.text(1.2, y, text, va="center", ha="left", fontsize=8)
        ax.set_xlim(-0.1, 3.6)
        ax.set_ylim(min(masses) - 0.08 * span, max(label_y) + 0.08 * span)
        ax.set_xticks([])
        for side in ("top", "right", "bottom"):
            ax.spines[side].set_visible(False)
        ax.set_ylabel("mass [GeV]")
        ax.set_title(f"best protomodel: K = {top.K:.2f}, T_L = {top.T_L:.2f} "
                     "(κ: signal-strength multipliers)")
        fig.tight_layout()
        written.append(out / "spectrum.png")
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)

        members = top.evaluation.get("combination", [])
        fig, ax = plt.subplots(figsize=(8, 1 + 0.4 * max(len(members), 1)))
        labels = [f"{m['analysis']}:{m['dataset']}" for m in members]
        ax.barh(labels, [m["contribution"] for m in members])
        ax.set_xlabel("contribution to T_L")
        ax.set_title(f"best protomodel: T_L = {top.T_L:.2f}, K = {top.K:.2f}")
        fig.tight_layout()
        written.append(out / "contributions.png")
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    return written
