"""Time theory predictions over the full database.

Prints, for the reference SLHA files, the cold (first) and warm (repeated) time per model next
to SModelS's time from the reference JSON; then, for N random valid protomodels of the template,
the time per model of a first pass (grids triangulated on first use), of a second, warm pass over
the same models one at a time, and of the same models as one batch (``Predictor.predict_batch``:
decomposition and matching per model, one grid lookup for the whole batch), called twice (the first
call compiles the kernels for the batch's array sizes).

With ``--prepare`` (the default, as the walk does) every grid is triangulated and stacked first
(:meth:`Predictor.prepare_grids`, timed separately), so the first pass only compiles kernels;
``--no-prepare`` triangulates grids on first use.

Usage: python benchmarks/predict.py [--n 1000] [--seed 1] [--no-prepare]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from protomodels.database import open as open_database
from protomodels.paths import shared_dir
from protomodels.theory.particles import load_template
from protomodels.theory.predictions import Predictor
from protomodels.theory.protomodel import Protomodel
from protomodels.theory.sampling import random_protomodel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--prepare", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    shared = shared_dir()
    database = open_database(workspaces=False)
    predictor = Predictor(database)
    if args.prepare:
        t0 = time.perf_counter()
        predictor.prepare_grids(workers=2)
        print(f"prepare grids (cached triangulations, stacks): {time.perf_counter() - t0:.1f} s")
    print("reference files: cold / warm ms per model (SModelS s)")
    warm_times = []
    for slha in sorted((shared / "data" / "reference").glob("*.slha")):
        model = Protomodel.from_slha(slha)
        t0 = time.perf_counter()
        predictor.predict(model)
        cold = time.perf_counter() - t0
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            predictor.predict(model)
            runs.append(time.perf_counter() - t0)
        warm = min(runs)
        warm_times.append(warm)
        smodels = json.loads(slha.with_suffix(".json").read_text())["smodels_seconds"]
        print(f"  {slha.name:28s} cold {cold * 1e3:8.1f}  warm {warm * 1e3:7.2f}  "
              f"(SModelS {smodels:.2f} s, x{smodels / warm:.0f})")
    print(f"  median warm: {statistics.median(warm_times) * 1e3:.2f} ms per model")
    template = load_template(shared / "data" / "templates" / "protomodel_template.slha")
    rng = np.random.default_rng(args.seed)
    models = [random_protomodel(rng, template) for _ in range(args.n)]
    for label in ("first pass", "warm pass"):
        times = []
        n_pred = 0
        for model in models:
            t0 = time.perf_counter()
            n_pred += len(predictor.predict(model))
            times.append(time.perf_counter() - t0)
        t = np.asarray(times) * 1e3
        print(f"{args.n} random protomodels, {label}: median {np.median(t):.2f} ms, "
              f"mean {t.mean():.2f} ms, 90% {np.percentile(t, 90):.2f} ms per model "
              f"({n_pred / args.n:.1f} predictions per model)")
    for label in ("first", "second (warm)"):
        t0 = time.perf_counter()
        batch = predictor.predict_batch(models)
        seconds = time.perf_counter() - t0
        print(f"{args.n} random protomodels as one batch, {label} call: "
              f"{seconds / args.n * 1e3:.2f} ms per model")
    same = all(
        [p.to_json() for p in a] == [p.to_json() for p in predictor.predict(m)]
        for a, m in zip(batch, models, strict=True)
    )
    print(f"batch identical to one-by-one for all {args.n} models: {same}")

if __name__ == "__main__":
    main()
