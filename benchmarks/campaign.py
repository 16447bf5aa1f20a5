"""Cost of walk campaigns on toys: CPU seconds per toy walk, the throughput of a Dask
LocalCluster of 2 workers against one process, and the projected cost of the protomodels
paper's campaign (50 toys x 50 walkers x 1000 steps) and of a 1000-toy one on this machine.

Each toy walk costs a start-up (loading the store, applying the toy, preparing the grids and
compiling the kernels) and its steps: both are read from the toys' run summaries (the wall time
before the first stored step, and between the first and the last one). The cluster's speed-up
is measured on the same toys run serially and on a LocalCluster.

The projection uses the cluster's steady state, not the speed-up of the few measured toys
(which carries the cluster's start-up and each worker's first compilation, fixed costs that a
50-toy campaign pays once): per toy, the start-up of a toy after a worker's first one plus
walkers x steps at the walking rate measured *while all workers walk at once* (the cores share
memory bandwidth and caches), divided among the workers, plus the measured fixed cost of the
cluster (its wall time minus its toys' task time shared among the workers).

Usage: python benchmarks/campaign.py [--walkers 4] [--steps 1000] [--toys 4] [--workers 2]
       [--full-likelihoods] [--store PATH]

The walks have the paper's length, 1000 steps, by default: walks slow down as their models
grow, so shorter walks project too low a cost. Give at least two toys per worker, so that
the start-up of a worker's later toys is measured on the cluster too. The walkers of a toy
walk in lockstep; the steps per second do not depend on their number (two toys of 150 steps:
50 walkers 69.5 and 71.4 steps/s, 4 walkers 67.7 and 68.7), so 4 walkers stand in for the
paper's 50.
(campaign and toy files go to a temporary folder)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from protomodels.campaigns.campaign import CampaignSettings, run_campaign
from protomodels.database import ensure_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--walkers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--toys", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--full-likelihoods", action="store_true")
    parser.add_argument("--store", type=Path, default=None)
    args = parser.parse_args()
    store = ensure_store(args.store)
    base = CampaignSettings(
        toys=args.toys, walkers=args.walkers, steps=args.steps, seed=11,
        full_likelihoods=args.full_likelihoods,
    )
    print(f"toy walks of {args.walkers} walkers (lockstep), pyhf "
          f"{'on' if args.full_likelihoods else 'off'}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        toys_file = str(folder / "toys.sqlite")
        base = replace(base, toys_file=toys_file)
        # one process: start-up and steps per second from the toys' run summaries (the first
        # toy also compiles what the process has not compiled yet: reported apart)
        t0 = time.perf_counter()
        serial = run_campaign(folder / "serial.sqlite", store, base, serial=True)
        serial_wall = time.perf_counter() - t0
        startups = [o.summary["startup_seconds"] for o in serial.outcomes]
        walking = sum(o.summary["walk_seconds"] for o in serial.outcomes)
        steps = sum(o.summary["steps"] for o in serial.outcomes)
        rate = steps / walking
        startup = float(np.median(startups[1:] if len(startups) > 1 else startups))
        print(f"one process: {np.mean([o.seconds for o in serial.outcomes]):.1f} s per toy of "
              f"{args.walkers * args.steps} steps; start-up {startups[0]:.1f} s for the first "
              f"toy, {startup:.1f} s (median) for the next; {rate:.1f} steps/s while walking")
        # the same toys on a LocalCluster
        t0 = time.perf_counter()
        on_dask = run_campaign(folder / "dask.sqlite", store, base, workers=args.workers)
        dask_wall = time.perf_counter() - t0
        same = [o.K for o in on_dask.outcomes] == [o.K for o in serial.outcomes]
        speedup = serial_wall / dask_wall
        print(f"{args.toys} toys of {args.walkers * args.steps} steps: one process "
              f"{serial_wall:.1f} s, "
              f"LocalCluster of {args.workers} workers {dask_wall:.1f} s: x{speedup:.2f} "
              f"(same K: {same}; the cluster's own start-up included)")
    # the cluster's steady state: walking rate per worker while all walk, start-up of a
    # worker's later toys (each worker's first toy, the slowest start-ups, compiles)
    busy = sum(o.summary["walk_seconds"] for o in on_dask.outcomes)
    rate_each = sum(o.summary["steps"] for o in on_dask.outcomes) / busy
    later = sorted(o.summary["startup_seconds"] for o in on_dask.outcomes)
    later = later[: max(len(later) - args.workers, 1)]
    startup_each = float(np.median(later))
    fixed = max(dask_wall - sum(o.seconds for o in on_dask.outcomes) / args.workers, 0.0)
    print(f"cluster steady state: {rate_each:.1f} steps/s per worker while all walk "
          f"(one process alone: {rate:.1f}; x{args.workers * rate_each / rate:.2f} for "
          f"{args.workers} workers), start-up {startup_each:.1f} s per later toy; fixed cost "
          f"{fixed:.0f} s (cluster start, first compilations, idle workers at the end)")
    for name, toys, walkers, steps in (
        ("paper (50 toys x 50 walkers x 1000 steps)", 50, 50, 1000),
        ("1000 toys x 50 walkers x 1000 steps", 1000, 50, 1000),
    ):
        cpu = startup + walkers * steps / rate
        per_toy = startup_each + walkers * steps / rate_each
        hours = (fixed + toys * per_toy / args.workers) / 3600
        print(f"projected {name}: {cpu / 60:.1f} CPU min per toy alone, "
              f"{per_toy / 60:.1f} min per toy on a busy worker, {hours:.1f} h on this machine "
              f"with {args.workers} workers (goal for the paper's: <= 6 h)")


if __name__ == "__main__":
    main()
