"""Time the combination search on realistic graphs.

Candidates are random sets of real results of the database (one candidate per result, with the
result's analysis id and sqrt(s)), their combinability the yaml-derived matrix of the shared
folder. Prints the density of the graphs and, per search, the median / 90 % / 99 % / largest
time (each problem timed as the best of 3 runs):

- ``best_combination`` (fixed weights; goal <= 1 ms for 50 candidates), weights drawn from
  N(0.5, 2) (about 60 % positive) and, separately, all positive (exponential);
- building the combinability matrix of the candidates;
- ``best_combination_in_mu`` on synthetic likelihood curves (half Gaussian, half Poisson
  counting experiments), with its number of likelihood calls.

Usage: python benchmarks/combination_search.py [--n 200] [--candidates 50] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np

from protomodels.combiner.graph import load_combinability
from protomodels.combiner.mu_search import best_combination_in_mu
from protomodels.combiner.search import best_combination
from protomodels.database import open as open_database


@dataclass(frozen=True)
class Result:
    analysis: str
    dataset: str | None
    sqrts_tev: float


class Gauss:
    def __init__(self, m: float, s: float) -> None:
        self.m, self.s = m, s

    def nll(self, mu, expected: bool = False) -> np.ndarray:  # noqa: ANN001
        return (np.asarray(mu, dtype=float) - self.m) ** 2 / (2 * self.s**2)

    mu_hat = property(lambda self: self.m)
    nll_max = property(lambda self: 0.0)


class Poisson:
    def __init__(self, s: float, b: float, n: int) -> None:
        self.s, self.b, self.n = s, b, n

    def nll(self, mu, expected: bool = False) -> np.ndarray:  # noqa: ANN001
        lam = np.asarray(mu, dtype=float) * self.s + self.b
        return lam - self.n * np.log(lam)

    mu_hat = property(lambda self: (self.n - self.b) / self.s)
    nll_max = property(lambda self: self.n - self.n * math.log(self.n) if self.n else 0.0)


def timed(function, *args) -> tuple[float, float, object]:  # noqa: ANN001
    """(best wall, best CPU) seconds of 3 runs, and the result."""
    wall, cpu = math.inf, math.inf
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        out = function(*args)
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu, out


def report(label: str, seconds: list[float]) -> None:
    ms = np.asarray(seconds) * 1e3
    print(
        f"  {label:50s} median {np.median(ms):7.3f}  p90 {np.percentile(ms, 90):7.3f}  "
        f"p99 {np.percentile(ms, 99):7.3f}  max {ms.max():7.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200, help="number of random problems")
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    database = open_database(build=False, workspaces=False)
    results = [Result(r.analysis_id, None, r.sqrts_tev) for r in database.results]
    graph = load_combinability("yaml")
    problems = []
    build = []
    for _ in range(args.n):
        chosen = [results[i] for i in rng.choice(len(results), args.candidates, replace=False)]
        wall, _, matrix = timed(graph.matrix, chosen)
        build.append(wall)
        problems.append((chosen, matrix))
    density = np.mean([m.sum() / (len(m) * (len(m) - 1)) for _, m in problems])
    print(
        f"{args.n} problems, {args.candidates} candidates from {len(results)} results, "
        f"yaml matrix, mean density {density:.2f}"
    )
    for label, draw in (
        ("best_combination, weights N(0.5, 2)", lambda n: rng.normal(0.5, 2.0, n)),
        ("best_combination, weights all positive", lambda n: rng.exponential(2.0, n)),
    ):
        walls, cpus, sizes = [], [], []
        for chosen, matrix in problems:
            weights = draw(len(chosen))
            analyses = [c.analysis for c in chosen]
            wall, cpu, (indices, _) = timed(best_combination, weights, matrix, analyses)
            walls.append(wall)
            cpus.append(cpu)
            sizes.append(len(indices))
        report(label + " (wall)", walls)
        report(label + " (CPU)", cpus)
        print(f"  {'':50s} members: median {np.median(sizes):.0f}, max {max(sizes)}")
    report("combinability matrix (wall)", build)
    walls, cpus, calls = [], [], []
    for chosen, matrix in problems[: max(1, args.n // 5)]:
        likelihoods = []
        for _ in chosen:
            if rng.random() < 0.5:
                likelihoods.append(Gauss(rng.normal(0.5, 1.5), rng.uniform(0.3, 3.0)))
            else:
                b, s = rng.uniform(0.5, 50.0), rng.uniform(0.1, 10.0)
                likelihoods.append(Poisson(s, b, int(rng.poisson(b + s * rng.uniform(0, 1.5)))))
        analyses = [c.analysis for c in chosen]
        wall, cpu, fit = timed(best_combination_in_mu, likelihoods, matrix, analyses)
        walls.append(wall)
        cpus.append(cpu)
        calls.append(fit.nll_calls)
        assert fit.certified, fit
    report("best_combination_in_mu, synthetic curves (wall)", walls)
    report("best_combination_in_mu, synthetic curves (CPU)", cpus)
    print(f"  {'':50s} likelihood calls: median {np.median(calls):.0f}, max {max(calls)}")


if __name__ == "__main__":
    main()
