"""Compressed electroweakinos and the soft-lepton excesses: does a chargino/neutralino protomodel
with a small mass splitting raise K, and by how much?

Usage (from the repository root):

    python studies/compressed_spectra/run.py [--base RUN.sqlite] [--no-full-likelihoods]

Two scans, each evaluated with the veto critics and with the constructive ones, with the
reference builder's settings (sigmacut 0.02 fb, minmassgap 10 GeV, pyhf full likelihoods):

1. **A compressed electroweakino protomodel alone.** Degenerate neutralino2 and chargino1 at m,
   the LSP at m - dm, produced through the wino-like N2 C1 and C1 C1 reference cross sections.
   Their three-body decays go through an off-shell Z or W, with the SM branching fractions
   (Z* -> nu nu, absent from the template, is left out and the rest renormalised). The scan
   runs over m and dm; mu-hat sets the overall signal strength.
2. **The same chargino added to the best protomodel.** The base model is rank 1 of ``--base``
   (default: the constructive walk of ``studies/best_protomodel``, run file
   ``studies/work/search-constructive-teleport-anneal.sqlite``). A chargino1 is added at
   m_LSP + dm, decaying to the LSP through an off-shell W; every production of it (C1 C1,
   N2 C1, N1 C1) gets the multiplier 0.3, 1 or 3.

Writes ``figures/k_scan.png``, ``figures/added_chargino.png`` and ``figures/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

import protomodels.database as pdb
from protomodels.builders.records import model_from_json
from protomodels.builders.storage import RunStorage
from protomodels.evaluation import EvaluationSettings, Evaluator
from protomodels.theory.protomodel import Decay, Protomodel

HERE = Path(__file__).resolve().parent
N1, N2, C1 = 1000022, 1000023, 1000024
# SM branching fractions of an off-shell W / Z into the template's channels (u d~ stands for
# all light quarks; Z* -> nu nu left out, the rest renormalised)
W_STAR = ((2, -1, 0.676), (11, -12, 0.108), (13, -14, 0.108), (15, -16, 0.108))
Z_STAR = ((-2, 2, 0.547), (-5, 5, 0.151), (-11, 11, 0.0337), (-13, 13, 0.0337),
          (-15, 15, 0.0337))
MASSES = (100.0, 125.0, 150.0, 175.0, 200.0, 250.0, 300.0, 400.0)
SPLITTINGS = (5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 60.0)


def three_body(channels: tuple[tuple[int, int, float], ...]) -> tuple[Decay, ...]:
    total = sum(c[2] for c in channels)
    return tuple(Decay(N1, (a, b), br / total) for a, b, br in channels)


def compressed(m: float, dm: float, leptonic: bool = False) -> Protomodel:
    """Degenerate N2 and C1 at m, the LSP at m - dm (``leptonic``: only the decays to
    leptons, the signature of the soft-lepton searches)."""
    z_star, w_star = Z_STAR, W_STAR
    if leptonic:
        z_star = tuple(c for c in Z_STAR if abs(c[0]) in (11, 13, 15))
        w_star = tuple(c for c in W_STAR if abs(c[0]) in (11, 13, 15))
    return Protomodel(
        masses={N1: m - dm, N2: m, C1: m},
        decays={N2: three_body(z_star), C1: three_body(w_star)},
        widths={N2: 1e-3, C1: 1e-3},
        name=f"compressed m={m:g} dm={dm:g}",
    )


def with_chargino(base: Protomodel, dm: float, multiplier: float) -> Protomodel:
    """The base model with a chargino1 at m_LSP + dm (off-shell W decay to the LSP)."""
    lsp = base.masses[N1]
    return replace(
        base,
        masses={**base.masses, C1: lsp + dm},
        decays={**base.decays, C1: three_body(W_STAR)},
        widths={**base.widths, C1: 1e-3},
        ssm={**base.ssm, **{pair: multiplier for pair in ((-C1, C1), (-C1, N2), (N2, C1),
                                                          (N1, C1))}},
        name=f"base + C1 dm={dm:g} x{multiplier:g}",
    )


def record(evaluator: Evaluator, model: Protomodel) -> dict:
    """K, T_L (at mu-hat and at mu = 1) and the best combination with each member's
    contribution; K is None for a model the (veto) critics exclude."""
    e = evaluator(model)
    k = e.k
    members = {f"{m.analysis}:{m.dataset}": m.contribution for m in k.combination} \
        if k else {}
    allowed = math.isfinite(e.K) and (e.passed or evaluator.settings.constructive)
    limiting = []
    if e.critics is not None:  # the results that set mu_max, largest r_obs first
        parts = e.critics.parts or (e.critics,)
        entries = sorted((x for v in parts for x in v.entries if x.r_obs),
                         key=lambda x: -x.r_obs)
        limiting = [f"{x.result_id}:{x.dataset} r_obs={x.r_obs:.3g}" for x in entries[:3]]
    return {"K": e.K if allowed else None, "K_any": e.K if math.isfinite(e.K) else None,
            "T_L": e.T_L, "T_L_mu1": k.T_L_mu1 if k else None, "muhat": e.muhat,
            "mu_max": e.critics.mu_max if e.critics is not None else None,
            "passed": e.passed, "reason": e.reason, "combination": list(members),
            "contributions": members, "limiting": limiting}


def base_model(path: Path) -> tuple[Protomodel, float]:
    with RunStorage(path, readonly=True) as storage:
        best = storage.hiscores()[0]
    return model_from_json(best.model), best.K


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path,
                        default=HERE.parent / "work" / "search-constructive-teleport-anneal.sqlite")
    parser.add_argument("--no-full-likelihoods", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "figures")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    full = not args.no_full_likelihoods
    database = pdb.open(workspaces=full)
    evaluators = {
        name: Evaluator(database, EvaluationSettings(constructive=constructive,
                                                     full_likelihoods=full))
        for name, constructive in (("veto", False), ("constructive", True))
    }
    summary: dict = {"masses": MASSES, "splittings": SPLITTINGS, "full_likelihoods": full,
                     "scan": {}, "added": {}}
    scans = [(name, evaluator, False) for name, evaluator in evaluators.items()]
    scans.append(("constructive, leptonic decays", evaluators["constructive"], True))
    for name, evaluator, leptonic in scans:
        grid = {}
        for m in MASSES:
            for dm in SPLITTINGS:
                if dm >= m:
                    continue
                grid[f"{m:g},{dm:g}"] = record(evaluator, compressed(m, dm, leptonic))
        summary["scan"][name] = grid
        best = max(grid.items(), key=lambda kv: kv[1]["K"] if kv[1]["K"] is not None else -1e9)
        print(f"{name}: best compressed point m,dm = {best[0]}: K = {best[1]['K']}, "
              f"mu-hat {best[1]['muhat']:.3g}, {best[1]['contributions']}")
    if args.base.exists():
        base, stored_k = base_model(args.base)
        summary["base"] = {"file": args.base.name, "stored_K": stored_k,
                           "masses": {str(k): v for k, v in base.masses.items()}}
        for name, evaluator in evaluators.items():
            rows = {"base": record(evaluator, base)}
            for dm in SPLITTINGS:
                for multiplier in (0.3, 1.0, 3.0):
                    rows[f"{dm:g},{multiplier:g}"] = record(
                        evaluator, with_chargino(base, dm, multiplier))
            summary["added"][name] = rows
            best = max(rows.items(), key=lambda kv: kv[1]["K"] or -1e9)
            print(f"{name}: base K = {rows['base']['K']}; best with a compressed chargino "
                  f"{best[0]}: K = {best[1]['K']}, {best[1]['combination']}")
    else:
        print(f"{args.base} not found: the second scan is skipped (run studies/best_protomodel)")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    plot(summary, args.out)


def plot(summary: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    masses, splittings = summary["masses"], summary["splittings"]
    panels = (("constructive", "K"), ("constructive, leptonic decays", "K"),
              ("constructive", "T_L_mu1"))
    fig, axes = plt.subplots(1, 3, figsize=(18, 4.8))
    for ax, (name, key) in zip(axes, panels, strict=True):
        grid = summary["scan"][name]
        k = np.full((len(splittings), len(masses)), np.nan)
        for i, dm in enumerate(splittings):
            for j, m in enumerate(masses):
                entry = grid.get(f"{m:g},{dm:g}")
                if entry is not None and entry[key] is not None:
                    k[i, j] = entry[key]
        image = ax.imshow(k, origin="lower", aspect="auto", cmap="viridis")
        for i in range(len(splittings)):
            for j in range(len(masses)):
                if np.isfinite(k[i, j]):
                    ax.text(j, i, f"{k[i, j]:.1f}", ha="center", va="center", fontsize=7,
                            color="white" if k[i, j] < np.nanmin(k) + 0.6 * np.ptp(k[np.isfinite(
                                k)]) else "black")
        ax.set_xticks(range(len(masses)), [f"{m:g}" for m in masses])
        ax.set_yticks(range(len(splittings)), [f"{d:g}" for d in splittings])
        ax.set_xlabel("m(χ̃₂⁰) = m(χ̃₁±) [GeV]")
        ax.set_ylabel("Δm = m(χ̃₂⁰) − m(χ̃₁⁰) [GeV]")
        what = "K" if key == "K" else "T_L at μ = 1 (before the critics' cap)"
        ax.set_title(f"{what}: compressed N2/C1 ({name})", fontsize=9)
        fig.colorbar(image, ax=ax, label=what.split(" (")[0])
    fig.tight_layout()
    fig.savefig(out / "k_scan.png", dpi=130)
    plt.close(fig)
    if not summary["added"]:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, style in (("veto", "-"), ("constructive", "--")):
        rows = summary["added"][name]
        for multiplier, colour in ((0.3, "tab:blue"), (1.0, "tab:orange"), (3.0, "tab:red")):
            ks = [rows[f"{dm:g},{multiplier:g}"]["K"] for dm in splittings]
            ax.plot(splittings, [np.nan if v is None else v for v in ks], style, color=colour,
                    marker="o", label=f"{name}, σ(C1C1) x {multiplier:g}")
        if rows["base"]["K"] is not None:
            ax.axhline(rows["base"]["K"], ls=style, color="grey", lw=1,
                       label=f"{name}: best protomodel alone")
    ax.set_xlabel("Δm = m(χ̃₁±) − m(χ̃₁⁰) [GeV]")
    ax.set_ylabel("K")
    ax.set_title("the best protomodel with a compressed chargino added", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "added_chargino.png", dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    main()
