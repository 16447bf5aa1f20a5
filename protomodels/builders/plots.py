"""Plots of a run file: the best model's mass spectrum, K and T_L per step, and the
contribution of each result to K."""

from __future__ import annotations

import os
from pathlib import Path

from protomodels.builders.records import model_from_json
from protomodels.builders.storage import RunStorage
from protomodels.theory.particles import NAMES

__all__ = ["plot_run"]


def __dir__() -> list[str]:
    return __all__


def plot_run(run_file: str | os.PathLike[str], folder: str | os.PathLike[str]) -> list[Path]:
    """Write ``spectrum.png``, ``walk.png`` and ``contributions.png``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    with RunStorage(run_file) as storage:
        steps = storage.steps()
        best = storage.hiscores()
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
        fig, ax = plt.subplots(figsize=(6, 6))
        for i, pdg in enumerate(sorted(model.masses, key=lambda p: model.masses[p])):
            m = model.masses[pdg]
            ax.hlines(m, 0.1, 0.9, lw=3)
            multipliers = [
                f"{NAMES.get(abs(a), a)}{NAMES.get(abs(b), b)}: {v:.2g}"
                for (a, b), v in sorted(model.ssm.items())
                if v > 0 and pdg in (abs(a), abs(b))
            ]
            text = NAMES.get(pdg, str(pdg))
            if multipliers:
                text += "  [" + ", ".join(multipliers[:3]) + "]"
            ax.text(0.92 if i % 2 == 0 else 0.0, m, text, va="center", fontsize=8,
                    ha="left" if i % 2 == 0 else "right")
        ax.set_xlim(-1.2, 2.2)
        ax.set_xticks([])
        ax.set_ylabel("mass [GeV]")
        ax.set_title(f"best protomodel: K = {top.K:.2f}")
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
