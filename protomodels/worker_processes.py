"""The environment of worker processes, for runs that put one walking process on each core.

A walk is a Python loop around many small compiled kernels and small NumPy arrays. Two
settings of the processes it runs in change its speed (``benchmarks/campaign.py`` measures the
cluster's steady state; figures of two toy walks of 4 walkers x 1000 steps on 2 cores):

- **One compute thread per process.** Alone on a machine, XLA's CPU runtime spreads a kernel
  over every core (its intra-op thread pool) and OpenBLAS does the same for NumPy's linear
  algebra. With one process per core, the pools of every process compete for the same cores:
  two plain processes walked at 76 steps/s each with the pools, 86 without (400-step walks).
  :func:`single_thread_environ` gives the variables; they must be set before the process
  loads OpenBLAS and initialises JAX's backend (which reads ``XLA_FLAGS``), so they are given
  to child processes when these start: Dask's workers (``LocalCluster(env=...)``) and the
  walk's own process pool (:func:`single_threaded_children`).
- **glibc's default heap trimming.** Dask's nanny starts workers with
  ``MALLOC_TRIM_THRESHOLD_=65536`` (to give memory back to the system sooner). Setting the
  threshold also turns off glibc's adaptive mmap threshold, so every NumPy array of more than
  128 kB is mapped and unmapped anew, with its page faults: toy walks on a LocalCluster ran at
  67 steps/s per worker with it and 77 without, as two plain processes (78-80).
  :data:`DASK_WORKER_CONFIG` removes it (and keeps workers non-daemonic, since a toy walk
  may start processes of its own).

Workers started by hand for a campaign on a cluster take the same settings from their shell
(README, "Campaigns").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Any

__all__ = [
    "DASK_WORKER_CONFIG",
    "XLA_SINGLE_THREAD_FLAGS",
    "single_thread_environ",
    "single_threaded_children",
    "submit_single_threaded",
]

#: XLA CPU flags for one compute thread (no Eigen intra-op pool)
XLA_SINGLE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

_THREAD_COUNTS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

#: Dask configuration for the workers of a campaign's LocalCluster: glibc's own heap trimming
#: (no ``MALLOC_TRIM_THRESHOLD_`` from the nanny) and non-daemonic workers
DASK_WORKER_CONFIG: dict[str, object] = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.daemon": False,
}


def single_thread_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables to set in a worker process for one compute thread: ``XLA_FLAGS`` (the
    flags of ``environ``, default ``os.environ``, plus :data:`XLA_SINGLE_THREAD_FLAGS` unless a
    thread flag is already there) and the BLAS / OpenMP thread counts (unless set)."""
    environ = os.environ if environ is None else environ
    flags = environ.get("XLA_FLAGS", "")
    out: dict[str, str] = {}
    if "multi_thread_eigen" not in flags and "intra_op_parallelism_threads" not in flags:
        out["XLA_FLAGS"] = f"{flags} {XLA_SINGLE_THREAD_FLAGS}".strip()
    for name in _THREAD_COUNTS:
        if name not in environ:
            out[name] = "1"
    return out


@contextmanager
def single_threaded_children() -> Iterator[None]:
    """Within the block, processes started by this one (``spawn``) inherit
    :func:`single_thread_environ`; this process's environment is restored afterwards (its own
    thread pools, already running, are unchanged)."""
    added = single_thread_environ()
    saved = {name: os.environ.get(name) for name in added}
    os.environ.update(added)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def submit_single_threaded(
    pool: Executor, function: Callable[..., Any], calls: Sequence[tuple[tuple, dict]]
) -> list[Future]:
    """Submit ``function(*args, **kwargs)`` for each (args, kwargs) of ``calls`` to a process
    pool that starts its processes on submission (``ProcessPoolExecutor`` with ``spawn``),
    within :func:`single_threaded_children`: the processes it starts for them have one
    compute thread."""
    with single_threaded_children():
        return [pool.submit(function, *args, **kwargs) for args, kwargs in calls]
