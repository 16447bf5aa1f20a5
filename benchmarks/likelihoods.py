"""Time the likelihoods of kinds 1-3 (upper-limit truncated Gaussians, single regions,
simplified likelihoods with a covariance) per protomodel over the full database.

Models: the reference SLHA files and N random protomodels of the template. Their predictions
are made first (not timed). Then, per model, the warm time of ``LikelihoodBuilder.attach`` (the
best of a few repeats), split per kind of result, and the first-call time of a fresh process (every
compilation included) without and with the persistent compilation cache (a fresh cache folder,
filled by the first run, then read by a second run).

Usage: python benchmarks/likelihoods.py [--n 100] [--seed 1] [--repeats 3] [--no-first-call]
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

KINDS = {
    "UL (truncated Gaussian)": "upperLimit",
    "EM (single region)": "efficiencyMap",
    "combined (simplified likelihood)": "combined",
}


def _models(n: int, seed: int) -> list:
    from protomodels.paths import shared_dir
    from protomodels.theory.particles import load_template
    from protomodels.theory.protomodel import Protomodel
    from protomodels.theory.sampling import random_protomodel

    shared = shared_dir()
    reference = sorted((shared / "data" / "reference").glob("*.slha"))
    models = [Protomodel.from_slha(path) for path in reference]
    template = load_template(shared / "data" / "templates" / "protomodel_template.slha")
    rng = np.random.default_rng(seed)
    return models + [random_protomodel(rng, template) for _ in range(n)]


def _of_kind(predictions: list, data_type: str, database_results: dict) -> list:
    selected = [p for p in predictions if p.data_type == data_type]
    if data_type == "combined":  # kind 3 only (pyhf combinations are kind 4)
        selected = [p for p in selected if database_results[p.result_id].covariance is not None]
    return selected


def _first_call(path: Path) -> None:
    """Child process: time the first attach over all models (compilations included)."""
    from protomodels.database import open as open_database
    from protomodels.statistics.attach import LikelihoodBuilder

    t0 = time.perf_counter()
    database = open_database(workspaces=False)
    builder = LikelihoodBuilder(database)
    everything = pickle.loads(path.read_bytes())
    t1 = time.perf_counter()
    for predictions in everything:
        builder.attach(predictions)
    print(f"{time.perf_counter() - t1:.2f} {t1 - t0:.2f}")


def _run_child(path: Path, cache: str) -> float:
    env = dict(os.environ, PROTOMODELS_JAX_CACHE=cache)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path)],
        env=env, capture_output=True, text=True, check=True,
    )
    return float(out.stdout.split()[-2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100, help="random protomodels")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="warm repeats per model")
    parser.add_argument("--no-first-call", action="store_true")
    parser.add_argument("--predictions", type=Path,
                        help="pickle of the predictions: read if it exists, else written")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _first_call(Path(args.child))
        return

    from protomodels.database import open as open_database
    from protomodels.statistics.attach import LikelihoodBuilder
    from protomodels.theory.predictions import Predictor

    database = open_database(workspaces=False)
    results = {r.result_id: r for r in database.results}
    t0 = time.perf_counter()
    if args.predictions and args.predictions.exists():
        everything = pickle.loads(args.predictions.read_bytes())
        print(f"{len(everything)} models, predictions read from {args.predictions}")
    else:
        predictor = Predictor(database)
        everything = [predictor.predict(model) for model in _models(args.n, args.seed)]
        print(f"{len(everything)} models ({args.n} random), predictions made in "
              f"{time.perf_counter() - t0:.1f} s (not counted below)")
        if args.predictions:
            args.predictions.write_bytes(pickle.dumps(everything))

    if not args.no_first_call:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "predictions.pkl"
            path.write_bytes(pickle.dumps(everything))
            cache = str(Path(tmp) / "jax-cache")
            off = _run_child(path, "0")
            filling = _run_child(path, cache)
            reading = _run_child(path, cache)
        print("first call in a fresh process (all models once, compilations included):")
        print(f"  without the persistent cache: {off:7.2f} s")
        print(f"  with an empty cache (filling): {filling:7.2f} s")
        print(f"  with the filled cache:         {reading:7.2f} s")

    builder = LikelihoodBuilder(database)
    for predictions in everything:  # compile everything before timing
        builder.attach(predictions)
    per_kind: dict[str, list[float]] = {label: [] for label in KINDS}
    counts: dict[str, int] = dict.fromkeys(KINDS, 0)
    totals = []
    for predictions in everything:
        subsets = {label: _of_kind(predictions, kind, results) for label, kind in KINDS.items()}
        for label, subset in subsets.items():
            counts[label] += len(subset)
            best = np.inf
            for _ in range(args.repeats):
                t = time.perf_counter()
                builder.attach(subset)
                best = min(best, time.perf_counter() - t)
            per_kind[label].append(best)
        kinds_1_3 = [p for subset in subsets.values() for p in subset]
        best = np.inf
        for _ in range(args.repeats):
            t = time.perf_counter()
            builder.attach(kinds_1_3)
            best = min(best, time.perf_counter() - t)
        totals.append(best)

    n_models = len(everything)
    print(f"warm time per protomodel (best of {args.repeats}), over {n_models} models:")
    for label, times in per_kind.items():
        t = np.asarray(times) * 1e3
        print(f"  {label:34s} mean {t.mean():6.2f} ms  median {np.median(t):6.2f} ms  "
              f"90% {np.percentile(t, 90):6.2f} ms  ({counts[label] / n_models:.1f} per model)")
    t = np.asarray(totals) * 1e3
    print(f"  {'kinds 1-3 together':34s} mean {t.mean():6.2f} ms  median {np.median(t):6.2f} ms  "
          f"90% {np.percentile(t, 90):6.2f} ms  (goal: <= 2 ms)")

    # ---- kind 4 (pyhf) -------------------------------------------------------------------------
    # Timing of PyhfLikelihood goes here (see benchmarks/pyhf_likelihoods.py): the combined
    # predictions of results without a covariance, i.e.
    #     [p for p in predictions if p.data_type == "combined"
    #      and results[p.result_id].covariance is None]
    # -----------------------------------------------------------------------------------------


if __name__ == "__main__":
    main()
