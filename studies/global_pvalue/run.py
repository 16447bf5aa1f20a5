"""The global p-value of the best K on the real database: the walk on the real data and the
same walk on SM-only toys (a campaign), then K_obs against the toys' K_max.

Usage (from the repository root):

    python studies/global_pvalue/run.py [--toys 50] [--walkers 10] [--steps 500] [--seed 1]
        [--workers 2] [--work DIR] [--report-only]

Both walks use the same settings: ``--walkers`` walkers x ``--steps`` steps from the LSP alone,
the reference builder's moves, prior and critics (veto), no pyhf full likelihoods (each toy's
walk would compile every pyhf workspace anew). The run and campaign files (derived from the
database) go to ``--work`` (default ``studies/work``, not committed); every step is resumable:
run the same command again to continue. The figure and the summary go to
``studies/global_pvalue/figures`` (``k_max-<tag>.png``, ``summary-<tag>.json``; tag
``w<walkers>-s<steps>-seed<seed>``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from protomodels.builders.run import RunSettings, run_walk
from protomodels.builders.storage import RunStorage
from protomodels.campaigns.campaign import (
    Campaign,
    CampaignSettings,
    ToyOutcome,
    read_campaign,
    run_campaign,
)
from protomodels.campaigns.ledger import read_ledger
from protomodels.campaigns.report import global_p_value, plot_k_max
from protomodels.database import ensure_store
from protomodels.evaluation import EvaluationSettings

HERE = Path(__file__).resolve().parent


def arguments(description: str, toys: int) -> argparse.Namespace:
    """The command line of this study and of the closure study (same walk settings)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--toys", type=int, default=toys)
    parser.add_argument("--walkers", type=int, default=10)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=HERE.parent / "work")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.tag = f"w{args.walkers}-s{args.steps}-seed{args.seed}"
    return args


def observed(args: argparse.Namespace, store: Path) -> tuple[float, dict]:
    """K and model of the best model of the walk on the real data (run, or resumed where it
    stopped, unless ``--report-only``)."""
    path = args.work / f"observed-{args.tag}.sqlite"
    # the committed record of the walk's outcome: a checkout without the run file (not
    # committed) uses it instead of walking again; delete it to walk again
    record = HERE / "results" / f"observed-{args.tag}.json"
    if not path.exists() and record.exists():
        kept = json.loads(record.read_text())
        return float(kept["K"]), kept["model"]
    settings = RunSettings(
        steps=args.steps, walkers=args.walkers, seed=args.seed, processes=args.workers,
        evaluation=EvaluationSettings(full_likelihoods=False), grids="prepare",
    )
    if not args.report_only:
        if not path.exists():
            run_walk(path, store, settings)
        else:
            with RunStorage(path, readonly=True) as storage:
                done = storage.count_steps()
            if done < args.steps * args.walkers:
                run_walk(path, store, settings, resume=True)
    with RunStorage(path, readonly=True) as storage:
        top = storage.hiscores()[0]
    if not args.report_only:
        record.parent.mkdir(exist_ok=True)
        record.write_text(json.dumps({"K": float(top.K), "model": top.model}, indent=1,
                                     sort_keys=True, default=str) + "\n")
    return float(top.K), top.model


def campaign_of(args: argparse.Namespace, store: Path, path: Path, settings: CampaignSettings,
                label: str, t0: float, ledger: Path) -> Campaign:
    """The campaign: run (or resumed), printing each toy as it finishes; read back only with
    ``--report-only``."""
    if args.report_only:
        if path.exists():
            return read_campaign(path)
        found = read_ledger(ledger)  # the campaign file is not committed; the ledger is
        if found is None:
            raise SystemExit(f"neither {path} nor {ledger} exists: run the study first")
        return Campaign(path, settings, {"database_version": found.database_version},
                        found.outcomes)

    def progress(outcome: ToyOutcome, done: int, total: int) -> None:
        print(f"{label} {outcome.index}: K_max {outcome.K} ({done}/{total}, "
              f"{time.perf_counter() - t0:.0f} s)", flush=True)

    return run_campaign(path, store, settings, workers=args.workers, on_toy=progress,
                        ledger=ledger)


def main() -> None:
    args = arguments(__doc__, toys=50)
    store = ensure_store()
    t0 = time.perf_counter()
    k_obs, model = observed(args, store)
    print(f"observed: K = {k_obs:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    campaign_file = args.work / f"sm-toys-{args.tag}.sqlite"
    settings = CampaignSettings(
        toys=args.toys, walkers=args.walkers, steps=args.steps, seed=args.seed,
        full_likelihoods=False,
    )

    # the committed ledger of finished toys (K_max, model, run summary per toy): the campaign
    # resumes from it on a machine without the campaign file
    ledger = HERE / "results" / f"toys-{args.tag}.json"
    ledger.parent.mkdir(exist_ok=True)
    campaign = campaign_of(args, store, campaign_file, settings, "toy", t0, ledger)
    k_max = campaign.k_max
    result = global_p_value(k_max, k_obs)
    figures = HERE / "figures"
    figures.mkdir(exist_ok=True)
    plot_k_max(k_max, figures / f"k_max-{args.tag}.png", k_obs=k_obs,
               title=f"{len(k_max)} SM-only toys, {args.walkers} walkers x {args.steps} steps")
    timed = [o.seconds for o in campaign.outcomes if o.seconds > 0]
    summary = {
        "settings": {"walkers": args.walkers, "steps": args.steps, "seed": args.seed,
                     "toys": len(campaign.outcomes), "full_likelihoods": False,
                     "critics": "veto", "database": campaign.meta.get("database_version")},
        "observed": {"K": k_obs, "model": model},
        "toys_K_max": sorted(float(k) for k in k_max),
        "global": result.__dict__,
        # toys of the ledger whose run summary was lost carry no time
        "cpu_seconds_per_toy": (sum(timed) / len(timed)) if timed else None,
    }
    (figures / f"summary-{args.tag}.json").write_text(json.dumps(summary, indent=2, default=str))
    lo, hi = result.interval68
    print(f"K_obs {k_obs:.3f}; {result.above}/{result.n} toys at or above: p = {result.p:.3f} "
          f"[{lo:.3f}, {hi:.3f}] (68 % CL), KDE p = {result.p_kde:.3f}, Z = {result.z:.2f} "
          f"(KDE {result.z_kde:.2f})")


if __name__ == "__main__":
    main()
