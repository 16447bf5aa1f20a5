"""Protomodels per second of ``protomodels.evaluate_batch`` for several batch sizes.

Random protomodels of the template (half from the families that reach the pyhf results),
evaluated warm (a first batch compiles; not timed) over the full database, with the pyhf full
likelihoods on (the default) or off. Prints models/s per batch size and the split of the time
into batched predictions and the per-model rest.

Usage: python benchmarks/batch.py [--sizes 1,100,10000] [--chunk 256] [--seed 1]
       [--no-full-likelihoods]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import protomodels
from protomodels.database import open as open_database
from protomodels.evaluation import EvaluationSettings, Evaluator
from protomodels.paths import shared_dir
from protomodels.theory.particles import load_template
from protomodels.theory.sampling import FAMILIES, family_protomodel, random_protomodel


def _models(n: int, seed: int) -> list:
    template = load_template(shared_dir() / "data" / "templates" / "protomodel_template.slha")
    rng = np.random.default_rng(seed)
    return [
        random_protomodel(rng, template) if i % 2 == 0
        else family_protomodel(rng, template, FAMILIES[1 + (i // 2) % (len(FAMILIES) - 1)])
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,100,10000")
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-full-likelihoods", action="store_true")
    args = parser.parse_args()
    full = not args.no_full_likelihoods
    database = open_database(workspaces=full)
    evaluator = Evaluator(database, EvaluationSettings(full_likelihoods=full))
    evaluator.prepare(workers=2)
    sizes = [int(s) for s in args.sizes.split(",")]
    warm = _models(min(200, max(sizes)), args.seed + 1000)
    t0 = time.perf_counter()
    protomodels.evaluate_batch(warm, evaluator=evaluator, chunk=args.chunk)
    print(f"warm-up: {len(warm)} models in {time.perf_counter() - t0:.1f} s (compiles)")
    print(f"pyhf full likelihoods {'on' if full else 'off'}, chunk {args.chunk}")
    for size in sizes:
        models = _models(size, args.seed)
        t0 = time.perf_counter()
        batch = protomodels.evaluate_batch(models, evaluator=evaluator, chunk=args.chunk)
        seconds = time.perf_counter() - t0
        predicted = sum(e.seconds.get("predictions", 0.0) for e in batch.evaluations)
        print(
            f"  batch {size:6d}: {size / seconds:8.1f} models/s ({seconds * 1e3 / size:.1f} ms "
            f"per model; predictions + statistics {predicted * 1e3 / size:.1f} ms), "
            f"{int(batch.evaluated.sum())} evaluated, {int(batch.passed.sum())} passed "
            "(goal >= 1000 models/s)"
        )


if __name__ == "__main__":
    main()
