"""Steps per second of one walker on the full database, and the cost per step split into
proposal, predictions, likelihoods + combination, critics and storage.

With ``--walkers W`` (default 10) it then compares, on the same core, W walkers in lockstep
(each round's proposals evaluated as one batch, ``builders.walker.lockstep``) with the same W
walkers walked one after the other: total steps per second of each, and their ratio (goal >= 3).

Usage: python benchmarks/walk.py [--steps 1000] [--warmup 100] [--seed 1]
       [--walkers 10] [--team-steps 100] [--no-full-likelihoods]
       (pyhf full likelihoods are on by default, as in the walk)
(the grids are prepared first; the warm-up steps compile the kernels; both are reported
separately)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from jax import monitoring

from protomodels.builders.storage import RunStorage
from protomodels.builders.walker import Walker, WalkerConfig, lockstep
from protomodels.database import open as open_database
from protomodels.evaluation import EvaluationSettings, Evaluator
from protomodels.kernel_budget import memory_mappings


class CompileCounter:
    """Counts JAX's backend compilations (XLA) and traces, through jax.monitoring."""

    def __init__(self) -> None:
        self.compiles = 0
        self.traces = 0
        self.seconds = 0.0
        monitoring.register_event_duration_secs_listener(self._event)

    def _event(self, name: str, duration: float, **_: object) -> None:
        if name.endswith("backend_compile_duration"):
            self.compiles += 1
            self.seconds += duration
        elif name.endswith("jaxpr_trace_duration"):
            self.traces += 1

    def reset(self) -> None:
        self.compiles = self.traces = 0
        self.seconds = 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-full-likelihoods", action="store_true")
    parser.add_argument("--walkers", type=int, default=10, help="walkers in lockstep (0: skip)")
    parser.add_argument("--team-steps", type=int, default=100, help="steps per walker there")
    args = parser.parse_args()
    full = not args.no_full_likelihoods
    evaluator = Evaluator(
        open_database(workspaces=full), EvaluationSettings(full_likelihoods=full)
    )
    print(f"pyhf full likelihoods {'on' if full else 'off'}")
    t0 = time.perf_counter()
    evaluator.prepare(workers=2)
    print(f"prepare grids (cached triangulations, stacks): {time.perf_counter() - t0:.1f} s")
    spent: dict[str, float] = defaultdict(float)
    calls = 0
    counter = CompileCounter()
    compiled_at: list[int] = []

    def timed(model):  # noqa: ANN001, ANN202
        nonlocal calls
        before = counter.compiles
        t0 = time.perf_counter()
        e = evaluator(model)
        if counter.compiles > before:
            compiled_at.append(walker.step_number if walker is not None else -1)
        spent["evaluate (all)"] += time.perf_counter() - t0
        for k, v in e.seconds.items():
            spent[k] += v
        calls += 1
        return e

    walker = None
    with tempfile.TemporaryDirectory() as tmp:
        storage = RunStorage(Path(tmp) / "run.sqlite")
        walker = Walker(timed, WalkerConfig(steps=args.warmup + args.steps, seed=args.seed),
                        storage=storage)
        t0 = time.perf_counter()
        walker.run(until=args.warmup)
        warm = time.perf_counter() - t0
        print(f"warm-up: {args.warmup} steps in {warm:.1f} s (compilation): "
              f"{counter.compiles} XLA compilations, {counter.traces} traces")
        spent.clear()
        calls = 0
        counter.reset()
        compiled_at.clear()
        commit = storage.commit_step
        stored = [0.0]

        def timed_commit(*a, **k):  # noqa: ANN002, ANN003, ANN202
            t = time.perf_counter()
            commit(*a, **k)
            stored[0] += time.perf_counter() - t

        storage.commit_step = timed_commit  # type: ignore[method-assign]
        t0 = time.perf_counter()
        walker.run(until=args.warmup + args.steps)
        total = time.perf_counter() - t0
        storage.close()
    n = args.steps
    print(f"{n} steps in {total:.1f} s: {n / total:.1f} steps/s, {total / n * 1e3:.1f} ms/step "
          f"({calls / n:.2f} evaluations per step), best K {walker.state.best.K:.3f}")
    proposal = total - spent["evaluate (all)"] - stored[0]
    print(f"  proposal (moves, walker): {proposal / n * 1e3:.2f} ms/step")
    for key in ("predictions", "combination", "rescaled_predictions", "critics"):
        print(f"  {key:24s}: {spent[key] / n * 1e3:.2f} ms/step")
    print(f"  storage                 : {stored[0] / n * 1e3:.2f} ms/step")
    print("  (predictions include the likelihoods; combination = candidates, search in mu, "
          "prior)")
    steps = sorted(set(compiled_at))
    shown = ", ".join(map(str, steps[:20])) + (" ..." if len(steps) > 20 else "")
    print(f"compilations after step {args.warmup}: {counter.compiles} XLA compilations "
          f"({counter.seconds:.1f} s), {counter.traces} traces, in {len(steps)} steps "
          f"({shown or '-'}) (goal: none)")
    if args.walkers > 0:
        compare_lockstep(evaluator, args.walkers, args.team_steps, args.seed + 1)


def compare_lockstep(evaluator: Evaluator, walkers: int, steps: int, seed: int) -> None:
    """W walkers one after the other against the same W in lockstep (same chains)."""
    configs = [WalkerConfig(steps=steps, seed=seed, walker=w) for w in range(walkers)]
    t0 = time.perf_counter()
    alone = [Walker(evaluator, c).run() for c in configs]
    separate = time.perf_counter() - t0
    team = [Walker(evaluator, c) for c in configs]
    t0 = time.perf_counter()
    records = lockstep(team)
    together = time.perf_counter() - t0
    same = all(
        [(r.step, r.move, r.accepted, r.K) for r in records if r.walker == w]
        == [(r.step, r.move, r.accepted, r.K) for r in chain]
        for w, chain in enumerate(alone)
    )
    n = walkers * steps
    print(f"{walkers} walkers x {steps} steps: one after the other {separate:.1f} s "
          f"({n / separate:.1f} steps/s); in lockstep {together:.1f} s ({n / together:.1f} "
          f"steps/s): x{separate / together:.2f} (goal >= 3); same chains: {same}")


if __name__ == "__main__":
    main()
    used = memory_mappings()
    print("memory mappings: " + (f"{used[0]} of the kernel's limit {used[1]}" if used else "?"))
