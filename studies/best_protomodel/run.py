"""The best protomodel on the SModelS v3.0.0 database: several walkers of the builder, then the
hiscores, the plots and a summary of the best models.

Usage (from the repository root):

    python studies/best_protomodel/run.py [--walkers 10] [--steps 2000] [--seed 1]
        [--processes 2] [--run-file RUN.sqlite] [--report-only] [--constructive]
        [--no-full-likelihoods] [--figures FOLDER]

The run file (SQLite) is written outside the repository by default (it is derived from the
database); the figures and ``summary.json`` go to ``studies/best_protomodel/figures``.
``--report-only`` rereads an existing run file. ``--constructive``: the critics cap mu-hat at
mu_max instead of vetoing a model (figures then go to ``figures-constructive`` by default).
The pyhf full likelihoods are on (the walk's default; run file and figures tagged ``-pyhf``);
``--no-full-likelihoods`` is the first runs of this study (``figures``, ``figures-constructive``).
A killed run is continued by running the same command again (the walkers resume from the run
file).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from protomodels.builders.plots import plot_run
from protomodels.builders.records import model_from_json
from protomodels.builders.run import RunSettings, run_walk
from protomodels.builders.storage import RunStorage
from protomodels.database import open as open_database
from protomodels.evaluation import EvaluationSettings
from protomodels.theory.particles import NAMES

HERE = Path(__file__).resolve().parent


def summary(run_file: Path, top: int = 10) -> dict:
    """The best distinct models of the run: K, T_L, mu-hat, prior, particles, combination."""
    with RunStorage(run_file) as storage:
        entries = storage.hiscores()
        steps = storage.steps()
        meta = storage.metadata()
    walkers = sorted({s.walker for s in steps})
    best_per_walker = {
        w: max((s.K_current for s in steps if s.walker == w and s.K_current is not None),
               default=None)
        for w in walkers
    }
    models = []
    for e in entries[:top]:
        model = model_from_json(e.model)
        models.append({
            "K": e.K,
            "T_L": e.T_L,
            "muhat": e.evaluation.get("muhat"),
            "prior": e.evaluation.get("prior"),
            "walker": e.walker,
            "step": e.step,
            "particles": {
                NAMES.get(p, str(p)): round(m, 1)
                for p, m in sorted(model.masses.items(), key=lambda x: x[1])
            },
            "decays": {
                NAMES.get(p, str(p)): {
                    f"{NAMES.get(abs(d.daughter), d.daughter)} {' '.join(map(str, d.sm))}":
                    round(d.br, 3)
                    for d in decays if d.br > 0
                }
                for p, decays in model.decays.items()
            },
            "multipliers": {
                f"{NAMES.get(abs(a), a)} {NAMES.get(abs(b), b)}": round(v, 3)
                for (a, b), v in sorted(model.ssm.items()) if v > 0
            },
            "combination": [
                {k: m[k] for k in ("analysis", "dataset", "contribution")}
                for m in e.evaluation.get("combination", [])
            ],
            "critics": (e.evaluation.get("critics") or {}).get("summary"),
        })
    return {
        "run_file": str(run_file),
        "database_version": meta.database_version if meta else None,
        "code_version": meta.code_version if meta else None,
        "walkers": len(walkers),
        "steps": len(steps),
        "accepted": sum(1 for s in steps if s.accepted),
        "best_K_per_walker": best_per_walker,
        "hiscores": models,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--walkers", type=int, default=10)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--run-file", type=Path, default=None)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--constructive", action="store_true")
    parser.add_argument("--no-full-likelihoods", action="store_true")
    parser.add_argument("--figures", type=Path, default=None)
    args = parser.parse_args()
    full = not args.no_full_likelihoods
    tag = ("-constructive" if args.constructive else "") + ("-pyhf" if full else "")
    run_file = args.run_file or (
        Path(tempfile.gettempdir()) / f"best_protomodel{tag}-{args.seed}.sqlite"
    )
    if not args.report_only:
        database = open_database(workspaces=False)  # for its path: each walker opens its own
        settings = RunSettings(
            steps=args.steps, walkers=args.walkers, seed=args.seed, processes=args.processes,
            evaluation=EvaluationSettings(constructive=args.constructive, full_likelihoods=full),
        )
        t0 = time.perf_counter()
        run_walk(run_file, database.path, settings, resume=run_file.exists())
        print(f"{args.walkers} walkers x {args.steps} steps in {time.perf_counter() - t0:.0f} s")
    figures = args.figures or HERE / f"figures{tag}"
    for path in plot_run(run_file, figures):
        print(f"written {path}")
    result = summary(run_file)
    (figures / "summary.json").write_text(json.dumps(result, indent=1))
    for i, m in enumerate(result["hiscores"], 1):
        particles = ", ".join(f"{k} {v:.0f}" for k, v in m["particles"].items())
        combination = ", ".join(f"{c['analysis']}:{c['dataset']}" for c in m["combination"])
        print(f"{i:2d}. K {m['K']:.3f}  T_L {m['T_L']:.3f}  [{particles}]  <- {combination}")


if __name__ == "__main__":
    main()
