"""Closure test of the walk: inject the best protomodel found on the real database into SM toys
and ask how often the walk finds it again, and with which K, beside the K_max of SM-only toys.

Usage (from the repository root):

    python studies/closure/run.py [--toys 20] [--walkers 10] [--steps 500] [--seed 1]
        [--workers 2] [--work DIR] [--report-only]

The injected model is the best model of the observed run of ``studies/global_pvalue`` (same
walkers, steps and seed; that study is run first, or resumed, to get it). Its predicted yields
are added to the SM background draws of each toy (``protomodel toys make --inject``); the walk
then runs on each toy with the same settings as on the real data. A toy *recovers* the model
when every injected particle is in the toy's best model with a mass within 15 % of the
injected one. The SM-only K_max come from the global-p-value campaign. Files that derive from
the database go to ``--work`` (default ``studies/work``, not committed); everything resumes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np

from protomodels.builders.records import model_from_json
from protomodels.campaigns.campaign import CampaignSettings, read_campaign
from protomodels.campaigns.ledger import read_ledger
from protomodels.database import ensure_store
from protomodels.database import open as open_database
from protomodels.theory.particles import NAMES
from protomodels.theory.predictions import Predictor

HERE = Path(__file__).resolve().parent
# the sibling study's observed run (same walk settings)
_spec = importlib.util.spec_from_file_location(
    "global_pvalue", HERE.parent / "global_pvalue" / "run.py"
)
global_pvalue = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(global_pvalue)

MASS_TOLERANCE = 0.15


#: light-flavour squarks: the searches do not tell them apart (the same jets + MET)
LIGHT_SQUARKS = frozenset({1000001, 1000002, 1000003, 1000004, 2000001, 2000002, 2000003, 2000004})


def _family(pdg: int) -> frozenset[int]:
    return LIGHT_SQUARKS if pdg in LIGHT_SQUARKS else frozenset({pdg})


def found_again(pdg: int, mass: float, found: dict[int, float], *, family: bool) -> bool:
    """Is the particle (or, with ``family``, one of its family) in ``found`` with a mass within
    15 %?"""
    candidates = _family(pdg) if family else {pdg}
    return any(
        abs(found[p] - mass) <= MASS_TOLERANCE * mass for p in candidates if p in found
    )


def recovered(injected: dict[int, float], found: dict[int, float], *, family: bool = False) -> bool:
    """Every injected particle found again (see :func:`found_again`)."""
    return all(found_again(p, m, found, family=family) for p, m in injected.items())


def main() -> None:
    args = global_pvalue.arguments(__doc__, toys=20)
    store = ensure_store()
    t0 = time.perf_counter()
    k_obs, model_json = global_pvalue.observed(args, store)
    model = model_from_json(model_json)
    tag = args.tag
    slha = args.work / f"injected-{tag}.slha"
    if not slha.exists():
        database = open_database(store, build=False, workspaces=False)
        model.to_slha(slha, xsecs=Predictor(database).cross_sections(model))
    injected = {int(p): float(m) for p, m in model.masses.items()}
    print(f"injected model (K = {k_obs:.3f} on the real data): "
          + ", ".join(f"{NAMES.get(p, p)} {m:.0f}" for p, m in sorted(injected.items())),
          flush=True)
    campaign_file = args.work / f"injected-toys-{tag}.sqlite"
    settings = CampaignSettings(
        toys=args.toys, walkers=args.walkers, steps=args.steps, seed=args.seed + 1000,
        inject=str(slha), full_likelihoods=False,
    )

    ledger = HERE / "results" / f"injected-toys-{tag}.json"
    ledger.parent.mkdir(exist_ok=True)
    campaign = global_pvalue.campaign_of(args, store, campaign_file, settings, "injected toy", t0,
                                         ledger)
    rows = []
    for o in campaign.outcomes:
        found = {int(p): float(m) for p, m in o.model.get("masses", {}).items()}
        rows.append({
            "toy": o.index, "K": o.K, "recovered": recovered(injected, found),
            "recovered_up_to_squark_flavour": recovered(injected, found, family=True),
            "particles_found": [p for p, m in injected.items()
                                if found_again(p, m, found, family=True)],
            "masses": found,
        })
    k_injected = np.array([r["K"] for r in rows if r["K"] is not None], dtype=float)
    sm_file = args.work / f"sm-toys-{tag}.sqlite"
    sm_ledger = None if sm_file.exists() else read_ledger(
        global_pvalue.HERE / "results" / f"toys-{tag}.json")  # the committed SM-only toys
    if sm_file.exists():
        k_sm = read_campaign(sm_file).k_max
    else:
        k_sm = sm_ledger.k_max if sm_ledger is not None else np.array([])
    figures = HERE / "figures"
    figures.mkdir(exist_ok=True)
    _plot(k_sm, k_injected, k_obs, figures / f"k_max-{tag}.png", args)
    n_rec = sum(r["recovered"] for r in rows)
    n_family = sum(r["recovered_up_to_squark_flavour"] for r in rows)
    per_particle = {
        NAMES.get(p, str(p)): sum(p in r["particles_found"] for r in rows) for p in injected
    }
    summary = {
        "settings": {"walkers": args.walkers, "steps": args.steps, "seed": args.seed,
                     "full_likelihoods": False, "critics": "veto",
                     "mass_tolerance": MASS_TOLERANCE},
        "injected": {"K_real": k_obs, "masses": injected},
        "toys": rows,
        "recovered": n_rec,
        "recovered_up_to_squark_flavour": n_family,
        "found_per_particle": per_particle,
        "K_injected": {"mean": float(k_injected.mean()), "std": float(k_injected.std())}
        if len(k_injected) else None,
        "K_sm": {"n": len(k_sm), "mean": float(k_sm.mean()), "std": float(k_sm.std())}
        if len(k_sm) else None,
    }
    (figures / f"summary-{tag}.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"{n_rec} of {len(rows)} injected toys recovered the model (masses within 15 %), "
          f"{n_family} up to the squark flavour; each particle: {per_particle}; "
          f"K_max injected {summary['K_injected']}, SM-only {summary['K_sm']}")


def _plot(k_sm: np.ndarray, k_injected: np.ndarray, k_obs: float, path: Path,
          args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    values = np.concatenate([k_sm, k_injected, [k_obs]])
    bins = np.linspace(values.min() - 0.5, values.max() + 0.5, 25)
    if len(k_sm):
        ax.hist(k_sm, bins=bins, alpha=0.5, label=f"SM-only toys ({len(k_sm)})")
    ax.hist(k_injected, bins=bins, alpha=0.5, label=f"injected toys ({len(k_injected)})")
    ax.axvline(k_obs, color="tab:green", lw=2, label=f"real data, K = {k_obs:.2f}")
    ax.set_xlabel("$K_\\mathrm{max}$")
    ax.set_ylabel("toys")
    ax.set_title(f"{args.walkers} walkers x {args.steps} steps per toy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
