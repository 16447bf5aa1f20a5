"""The environment of campaign and walk worker processes: one compute thread, glibc's own heap
trimming."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from protomodels.worker_processes import (
    XLA_SINGLE_THREAD_FLAGS,
    single_thread_environ,
    single_threaded_children,
)


def test_flags_are_added_to_the_users_xla_flags():
    env = single_thread_environ({"XLA_FLAGS": "--xla_dump_to=/tmp/x"})
    assert env["XLA_FLAGS"] == f"--xla_dump_to=/tmp/x {XLA_SINGLE_THREAD_FLAGS}"
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "1"


def test_a_users_own_thread_settings_are_kept():
    users = {
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=true",
        "OMP_NUM_THREADS": "4",
        "OPENBLAS_NUM_THREADS": "2",
        "MKL_NUM_THREADS": "3",
    }
    assert single_thread_environ(users) == {}


def _child_environ(queue) -> None:
    queue.put({k: os.environ.get(k) for k in ("XLA_FLAGS", "OPENBLAS_NUM_THREADS")})


def test_children_started_in_the_block_inherit_it_and_the_parent_is_restored(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with single_threaded_children():
        child = context.Process(target=_child_environ, args=(queue,))
        child.start()
    seen = queue.get(timeout=60)
    child.join(timeout=60)
    assert seen == {"XLA_FLAGS": XLA_SINGLE_THREAD_FLAGS, "OPENBLAS_NUM_THREADS": "1"}
    assert "XLA_FLAGS" not in os.environ and "OPENBLAS_NUM_THREADS" not in os.environ
    assert os.environ["OMP_NUM_THREADS"] == "7"


def _worker_environ() -> dict:
    return {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "XLA_FLAGS")}


def test_campaign_workers_have_one_thread_and_glibcs_own_heap_trimming(monkeypatch):
    distributed = pytest.importorskip("dask.distributed")
    from protomodels.campaigns.campaign import local_cluster

    # (a nanny started earlier in this process leaves its variables in os.environ)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    with local_cluster(1) as cluster, distributed.Client(cluster) as client:
        (seen,) = client.run(_worker_environ).values()
    assert seen == {"MALLOC_TRIM_THRESHOLD_": None, "XLA_FLAGS": XLA_SINGLE_THREAD_FLAGS}


def test_a_walk_on_two_processes_walks_the_same_chains(subset_store, tmp_path):
    """The walk's own process pool (started with one compute thread per process) gives the
    chains of the walk in one process."""
    from protomodels.builders.run import RunSettings, run_walk
    from protomodels.builders.storage import RunStorage
    from protomodels.evaluation import EvaluationSettings

    def chains(processes: int) -> list[tuple]:
        path = tmp_path / f"p{processes}.sqlite"
        settings = RunSettings(
            steps=3, walkers=2, seed=5, processes=processes,
            evaluation=EvaluationSettings(full_likelihoods=False),
        )
        run_walk(path, subset_store, settings)
        with RunStorage(path, readonly=True) as storage:
            return [(r.walker, r.step, r.move, r.accepted, r.K) for r in storage.steps()]

    one = chains(1)
    assert len(one) == 6
    assert chains(2) == one


def test_the_walks_process_pool_starts_single_threaded_processes(monkeypatch):
    """The walk's own pool (``builders.run``: ProcessPoolExecutor, spawn) gets its processes
    through submit_single_threaded: each process started for a share has one compute thread,
    and the parent's environment is unchanged."""
    from concurrent.futures import ProcessPoolExecutor

    from protomodels.worker_processes import submit_single_threaded

    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        futures = submit_single_threaded(pool, _pool_environ, [((0.5,), {}), ((0.5,), {})])
        seen = [f.result(timeout=120) for f in futures]
    assert len({pid for pid, _ in seen}) == 2  # two processes, both started in the block
    for _, environ in seen:
        assert environ == {"XLA_FLAGS": XLA_SINGLE_THREAD_FLAGS, "OPENBLAS_NUM_THREADS": "1"}
    assert "XLA_FLAGS" not in os.environ and "OPENBLAS_NUM_THREADS" not in os.environ


def _pool_environ(pause: float) -> tuple[int, dict]:
    import time

    time.sleep(pause)  # (keeps the first process busy, so that the second share gets its own)
    return os.getpid(), {k: os.environ.get(k) for k in ("XLA_FLAGS", "OPENBLAS_NUM_THREADS")}
