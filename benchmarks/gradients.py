"""Time one gradient and one Hessian of K against one evaluation, and NUTS effective samples per
second (issue 21; goal: a gradient <= 5x an evaluation).

For every reference model (``data/reference/*.slha``) and a few random protomodels with a
combination: the warm evaluation (predictions, likelihoods, combination, mu-hat, critics: the
walk's cost of one model), building the objective at its best combination, and the warm
gradient (reverse mode), Gauss-Newton Hessian and exact Hessian of K (first calls: compilation).
Then NUTS on one model: effective samples per second, compilation included and excluded.

Usage: python benchmarks/gradients.py [--repeat 20] [--random 4] [--nuts-samples 500]
    [--no-full-likelihoods]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from protomodels.database import open as open_database
from protomodels.evaluation import EvaluationSettings, Evaluator
from protomodels.inference.objective import objective_of
from protomodels.inference.posterior import PosteriorSettings, sample_posterior
from protomodels.paths import shared_dir
from protomodels.theory.particles import load_template
from protomodels.theory.protomodel import Protomodel
from protomodels.theory.sampling import random_protomodel


def _warm(fn, repeat: int) -> tuple[float, float]:  # noqa: ANN001
    """(first call s, median of the next ``repeat`` calls in ms)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return first, 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--random", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nuts-samples", type=int, default=500)
    parser.add_argument("--no-full-likelihoods", action="store_true")
    parser.add_argument("--exact", type=int, default=3,
                        help="time the exact Hessian on this many models (each compiles a "
                             "large program: memory)")
    parser.add_argument("--nuts-only", action="store_true")
    args = parser.parse_args()
    full = not args.no_full_likelihoods
    database = open_database(workspaces=full)
    evaluator = Evaluator(database, EvaluationSettings(full_likelihoods=full))
    t0 = time.perf_counter()
    evaluator.prepare(workers=2)
    print(f"prepare: {time.perf_counter() - t0:.1f} s (pyhf {'on' if full else 'off'})")
    models = [(p.stem, Protomodel.from_slha(p))
              for p in sorted((shared_dir() / "data" / "reference").glob("*.slha"))]
    rng = np.random.default_rng(args.seed)
    template = load_template(shared_dir() / "data" / "templates" / "protomodel_template.slha")
    while sum(1 for name, _ in models if name.startswith("random")) < args.random:
        m = random_protomodel(rng, template)
        e = evaluator(m)
        if math.isfinite(e.K) and e.k is not None and e.k.combination:
            models.append((f"random{len(models)}", m))
    if args.nuts_only:
        models = [(n, m) for n, m in models if n == "protomodels_latest"]
    print("model | params members kinds | evaluation ms | build s | gradient: first s, warm ms "
          "| GN Hessian: first s, warm ms | exact Hessian: first s, warm ms "
          "| gradient / evaluation")
    ratios, hratios = [], []
    keep = None
    for name, model in models:
        evaluation = evaluator(model)
        if not (math.isfinite(evaluation.K) and evaluation.k and evaluation.k.combination):
            print(f"{name}: no combination ({evaluation.reason})")
            continue
        _, eval_ms = _warm(lambda m=model: evaluator(m), max(3, args.repeat // 4))
        t0 = time.perf_counter()
        objective = objective_of(evaluator, evaluation)
        build = time.perf_counter() - t0
        g_first, g_ms = _warm(objective.gradient, args.repeat)
        h_first, h_ms = _warm(objective.hessian, args.repeat)
        e_first = e_ms = math.nan
        if len(ratios) < args.exact and not args.nuts_only:
            e_first, e_ms = _warm(lambda o=objective: o.hessian(method="exact"), args.repeat)
        kinds = sorted({m.likelihood.kind for m in objective.members})
        ratios.append(g_ms / eval_ms)
        hratios.append(h_ms / eval_ms)
        print(f"{name} | {len(objective.space)} {len(objective.members)} {','.join(kinds)} | "
              f"{eval_ms:.1f} | {build:.2f} | {g_first:.1f}, {g_ms:.2f} | {h_first:.1f}, "
              f"{h_ms:.2f} | {e_first:.1f}, {e_ms:.2f} | {g_ms / eval_ms:.3f}", flush=True)
        if keep is None and name == "protomodels_latest":
            keep = objective
    print(f"gradient / evaluation: median {statistics.median(ratios):.3f}, max {max(ratios):.3f} "
          f"(goal <= 5); Gauss-Newton Hessian / evaluation: median "
          f"{statistics.median(hratios):.3f}, max {max(hratios):.3f}")
    if keep is None:
        return
    for samples in (args.nuts_samples // 5, args.nuts_samples):
        settings = PosteriorSettings(samples=samples, warmup=samples // 2, chains=2)
        draws = sample_posterior(keep, settings)
        ess = float(np.min(draws.ess))
        print(f"NUTS protomodels_latest, {len(draws.names)} parameters, 2 chains x {samples} "
              f"(+{samples // 2} warm-up): {draws.seconds:.1f} s, min ESS {ess:.0f}, "
              f"{ess / draws.seconds:.2f} effective samples/s (compilation included), "
              f"r-hat max {np.nanmax(draws.r_hat):.3f}, divergences {draws.divergences}",
              flush=True)


if __name__ == "__main__":
    main()
