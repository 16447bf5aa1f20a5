"""The effect of user-added results on the best protomodel.

Usage (from the repository root):

    python studies/user_results/run.py [--base RUN.sqlite] [--no-full-likelihoods]

The store is copied to ``--work`` (default ``studies/work``), and user results are added to
the copies with :func:`protomodels.database.user_results.add_user_result`, as
``protomodel db add`` does:

- ``seed000``: the two example files of ``docs/examples/user_results`` (numbers from the talk
  ``../shared/seeds/000_*``: ATLAS monojet regions EM0-EM12, the ATLAS soft-lepton SR-E-high
  m_ll bins). They have no efficiency maps, so they can only enter the excess list;
- ``null``: a hypothetical independent search, an ATLAS twin of CMS-SUS-20-004-eff (the result
  that carries most of the best model's T_L). It has the same regions, efficiencies and
  background covariance, and observes exactly its rounded background;
- ``confirm``: the same twin observing its background plus the best model's predicted signal
  (rounded);
- ``both``: the ``null`` twin and a second twin observing the signal, as two analyses.

For each store, the base model (rank 1 of ``--base``, default the constructive walk of
``studies/best_protomodel``) is evaluated with the veto and the constructive critics. The
script reports K, T_L, mu-hat and the best combination, and writes ``figures/summary.json``
and ``figures/k_with_user_results.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import numpy as np
import yaml

import protomodels.database as pdb
from protomodels.builders.records import model_from_json
from protomodels.builders.storage import RunStorage
from protomodels.database.user_results import add_user_result, export_result
from protomodels.evaluation import EvaluationSettings, Evaluator
from protomodels.metastatistics import region_deviations
from protomodels.paths import default_store_path

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "docs" / "examples" / "user_results"
TWIN_OF = "CMS-SUS-20-004-eff"


def twin(database: pdb.Database, signal_events: dict[str, float], name: str, out: Path,
         confirm: bool) -> Path:
    """An ATLAS twin of the CMS result in the user-result format: observed = round(b) or
    round(b + s) per region."""
    data = yaml.safe_load(export_result(database.result(TWIN_OF)))
    data.update(id=name, analysis=name, collaboration="ATLAS",
                description=f"hypothetical ATLAS twin of {TWIN_OF} "
                            + ("observing the best model's signal" if confirm
                               else "observing its background"))
    data.pop("url", None)
    data.pop("arxiv", None)
    for region in data["signal_regions"]:
        s = signal_events.get(region["id"], 0.0) if confirm else 0.0
        region["observed"] = int(round(region["background"] + s))
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100))
    return path


def evaluate(store: Path, model, full: bool) -> dict:  # noqa: ANN001
    database = pdb.open(store, build=False, workspaces=full)
    rows = {}
    for name, constructive in (("veto", False), ("constructive", True)):
        e = Evaluator(database, EvaluationSettings(constructive=constructive,
                                                   full_likelihoods=full))(model)
        rows[name] = {
            "K": e.K if math.isfinite(e.K) else None, "T_L": e.T_L, "muhat": e.muhat,
            "passed": e.passed, "reason": e.reason,
            "combination": [f"{m.analysis}:{m.dataset}" for m in e.k.combination]
            if e.k else [],
            # the user results as candidates: -2 ln(L(mu-hat model)/L_SM) they would add
            "user_candidates": [
                {key: c.get(key) for key in ("analysis", "dataset", "r_obs", "r_exp", "nll0",
                                             "nll1", "candidate", "combined")}
                for c in e.candidates if str(c.get("analysis", "")).startswith("USER-")
            ],
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path,
                        default=HERE.parent / "work" / "search-constructive-teleport-anneal.sqlite")
    parser.add_argument("--work", type=Path, default=HERE.parent / "work")
    parser.add_argument("--no-full-likelihoods", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "figures")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    full = not args.no_full_likelihoods
    with RunStorage(args.base, readonly=True) as storage:
        best = storage.hiscores()[0]
    model = model_from_json(best.model)
    source = pdb.ensure_store(default_store_path())
    database = pdb.open(source, build=False, workspaces=False)
    # the best model's signal in the CMS result's regions (events)
    evaluator = Evaluator(database, EvaluationSettings(full_likelihoods=False))
    evaluation = evaluator(model)
    result = database.result(TWIN_OF)
    signal = np.zeros(len(result.datasets))
    for p in evaluation.predictions:  # the mu-hat-rescaled model, as the walk keeps it
        if p.result_id == TWIN_OF and p.signals_fb is not None:
            signal = np.asarray(p.signals_fb) * result.lumi_ifb
            break
    events = {ds.data_id or ds.dataset_id: float(s) for ds, s in zip(result.datasets, signal,
                                                                      strict=True)}
    files = args.work / "user-results"
    files.mkdir(exist_ok=True)
    variants = {
        "database only": [],
        "seed000": sorted(EXAMPLES.glob("*.yaml")),
        "null": [twin(database, events, "USER-ATLAS-TWIN-NULL", files, confirm=False)],
        "confirm": [twin(database, events, "USER-ATLAS-TWIN-SIGNAL", files, confirm=True)],
    }
    variants["both"] = variants["null"] + variants["confirm"]
    summary: dict = {"base": args.base.name, "stored_K": best.K, "full_likelihoods": full,
                     "signal_events": events, "variants": {}}
    for name, user_files in variants.items():
        store = args.work / f"user-store-{name.replace(' ', '-')}.sqlite"
        shutil.copy(source, store)
        for f in user_files:
            add_user_result(store, f, replace=True)
        rows = evaluate(store, model, full)
        if name == "seed000":
            deviations = region_deviations(pdb.open(store, build=False, workspaces=False))
            rows["excesses"] = [
                {"result": d.result_id, "region": d.region, "z": d.z}
                for d in sorted(deviations, key=lambda d: -d.z)
                if d.result_id.startswith("USER-")
            ][:8]
        summary["variants"][name] = rows
        for critic in ("veto", "constructive"):
            r = rows[critic]
            print(f"{name:14s} {critic:12s} K {r['K']:.3f}  T_L {r['T_L']:.3f}  "
                  f"mu-hat {r['muhat']:.3f}  passed {r['passed']}  {r['combination']}")
            for c in r["user_candidates"]:
                if c["dataset"] == "(combined)" or c["combined"]:
                    print(f"{'':16s} {c}")
        store.unlink()
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    plot(summary, args.out)


def plot(summary: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary["variants"])
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(names))
    ks = [summary["variants"][n]["constructive"]["K"] for n in names]
    ax.bar(x, ks, width=0.5, color="tab:orange", label="constructive critics")
    for xi, n in zip(x, names, strict=True):
        veto = summary["variants"][n]["veto"]
        text = f"veto: K {veto['K']:.1f}" + ("" if veto["passed"] else " (vetoed)")
        ax.text(xi, 0.3, text, rotation=90, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, names)
    ax.set_ylabel("K of the best protomodel")
    ax.set_title("the best protomodel with user-added results", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "k_with_user_results.png", dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    main()
