"""Does the gradient polish (``protomodel walk --polish``) help the walk? Best K reached per CPU
minute, with and without, over the same seeds (issue 21).

One walker per seed, in this process, with one prepared evaluator for all runs (and a warm-up
walk with polish first, so that neither side pays the compilation of shared kernels). For each
seed: the best K after the same number of steps, the CPU time, and the best K each run had
reached at equal CPU budgets (1, 2, 5 CPU minutes and the shorter run's total).

Usage: python benchmarks/polish.py [--seeds 10] [--steps 300] [--polish-steps 3]
    [--full-likelihoods] [--constructive]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from protomodels.builders.walker import Walker, WalkerConfig
from protomodels.database import open as open_database
from protomodels.evaluation import EvaluationSettings, Evaluator


def _walk(evaluator: Evaluator, seed: int, steps: int, polish: int) -> tuple[list, int, int]:
    """[(cpu s, best K)] after each step, and the polish counts (attempts, improvements)."""
    trace: list[tuple[float, float]] = []
    best = [-np.inf]
    t0 = time.process_time()

    def record(step: object) -> None:
        if getattr(step, "accepted", False) and step.K is not None:  # type: ignore[attr-defined]
            best[0] = max(best[0], float(step.K))  # type: ignore[attr-defined]
        trace.append((time.process_time() - t0, best[0]))

    walker = Walker(evaluator, WalkerConfig(steps=steps, seed=seed, polish=polish),
                    on_step=record)
    walker.run()
    counts = walker.polisher.counts if walker.polisher is not None else [0, 0]
    return trace, counts[0], counts[1]


def _at(trace: list[tuple[float, float]], cpu: float) -> float:
    reached = [k for t, k in trace if t <= cpu]
    return reached[-1] if reached else -np.inf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--polish-steps", type=int, default=3)
    parser.add_argument("--full-likelihoods", action="store_true")
    parser.add_argument("--constructive", action="store_true")
    args = parser.parse_args()
    database = open_database(workspaces=args.full_likelihoods)
    settings = EvaluationSettings(full_likelihoods=args.full_likelihoods,
                                  constructive=args.constructive)
    evaluator = Evaluator(database, settings)
    t0 = time.perf_counter()
    evaluator.prepare(workers=2)
    print(f"prepare: {time.perf_counter() - t0:.1f} s; warm-up walk with polish ...", flush=True)
    t0 = time.perf_counter()
    _walk(evaluator, 10_000, min(args.steps, 100), args.polish_steps)
    print(f"warm-up: {time.perf_counter() - t0:.1f} s", flush=True)
    print("seed | without: best K, CPU s | with: best K, CPU s, polished/attempts | best K at "
          "equal CPU (1, 2, 5 min, shorter total): without vs with")
    rows = []
    for seed in range(1, args.seeds + 1):
        plain, _, _ = _walk(evaluator, seed, args.steps, 0)
        polished, tries, wins = _walk(evaluator, seed, args.steps, args.polish_steps)
        budgets = [60.0, 120.0, 300.0, min(plain[-1][0], polished[-1][0])]
        pairs = [(_at(plain, b), _at(polished, b)) for b in budgets]
        rows.append((plain[-1], polished[-1], pairs))
        print(f"{seed} | {plain[-1][1]:.3f}, {plain[-1][0]:.0f} | {polished[-1][1]:.3f}, "
              f"{polished[-1][0]:.0f}, {wins}/{tries} | "
              + "; ".join(f"{a:.2f} vs {b:.2f}" for a, b in pairs), flush=True)
    k_plain = [r[0][1] for r in rows]
    k_pol = [r[1][1] for r in rows]
    cpu_plain = sum(r[0][0] for r in rows)
    cpu_pol = sum(r[1][0] for r in rows)
    equal = [r[2][-1] for r in rows]
    print(f"after {args.steps} steps: median best K {statistics.median(k_plain):.3f} without, "
          f"{statistics.median(k_pol):.3f} with; CPU {cpu_plain / 60:.1f} vs {cpu_pol / 60:.1f} "
          f"min ({cpu_pol / cpu_plain:.2f}x)")
    print(f"best K per CPU minute: {statistics.median(k_plain) / (cpu_plain / 60 / len(rows)):.3f}"
          f" without, {statistics.median(k_pol) / (cpu_pol / 60 / len(rows)):.3f} with "
          "(median best K / mean CPU minutes per walk)")
    wins_equal = sum(b > a for a, b in equal)
    print(f"at equal CPU (the shorter run's total): polish ahead in {wins_equal}/{len(rows)} "
          f"seeds, median difference {statistics.median(b - a for a, b in equal):+.3f}")


if __name__ == "__main__":
    main()
