"""Walk campaigns on toys: resumable, the same serially and on a Dask cluster; the report."""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from protomodels.campaigns.campaign import (
    CampaignError,
    CampaignSettings,
    read_campaign,
    run_campaign,
    walk_seed,
)
from protomodels.campaigns.report import clopper_pearson, global_p_value, significance
from protomodels.cli import cli

SMALL = CampaignSettings(toys=2, walkers=2, steps=4, seed=3, full_likelihoods=False)


def _numbers(campaign) -> list[tuple]:  # noqa: ANN001
    """What must not depend on how the toys ran (everything but the timings)."""
    return [
        (o.index, o.K, o.T_L, json.dumps(o.model, sort_keys=True),
         json.dumps({k: v for k, v in o.summary.items() if not k.endswith("_seconds")},
                    sort_keys=True))
        for o in campaign.outcomes
    ]


@pytest.fixture(scope="module")
def serial(subset_store: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    path = tmp_path_factory.mktemp("campaign") / "serial.sqlite"
    return run_campaign(path, subset_store, SMALL, serial=True)


def test_walk_seeds_depend_on_seed_and_index_only() -> None:
    assert walk_seed(3, 5) == walk_seed(3, 5)
    assert len({walk_seed(3, i) for i in range(50)} | {walk_seed(4, i) for i in range(50)}) == 100


def test_serial_campaign_stores_every_toy(serial) -> None:  # noqa: ANN001
    assert [o.index for o in serial.outcomes] == [0, 1]
    for o in serial.outcomes:
        assert o.summary["steps"] == SMALL.walkers * SMALL.steps
        assert o.summary["walk_seed"] == walk_seed(SMALL.seed, o.index)
        assert o.summary["walk_seconds"] >= 0 and o.summary["startup_seconds"] > 0
        if o.K is not None:
            assert math.isfinite(o.K) and o.model["masses"]
    assert Path(serial.settings.toys_file).exists()
    assert not serial.path.with_name("serial.runs").exists()  # run files removed


def test_campaign_resumes_and_grows(serial, subset_store: Path, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "grow.sqlite"
    first = run_campaign(path, subset_store, replace(SMALL, toys=1), serial=True)
    assert len(first.outcomes) == 1
    # a task that died left a run file behind: the rerun starts that toy again from its seed
    runs = path.with_name("grow.runs")
    runs.mkdir()
    (runs / "toy-00001.sqlite").write_text("partial run of a dead worker")
    seen = []
    grown = run_campaign(path, subset_store, SMALL, serial=True,
                         on_toy=lambda o, done, total: seen.append((o.index, done, total)))
    assert seen == [(1, 2, 2)]  # toy 0 was not run again
    assert _numbers(grown)[0] == _numbers(first)[0]
    # the toy file of this campaign has the same seed: the same toys, the same outcomes
    assert _numbers(grown) == _numbers(serial)
    assert _numbers(run_campaign(path, subset_store, None, serial=True)) == _numbers(grown)


def test_dask_cluster_equals_serial(serial, subset_store: Path, tmp_path: Path) -> None:  # noqa: ANN001
    pytest.importorskip("dask.distributed")
    path = tmp_path / "dask.sqlite"
    settings = replace(SMALL, toys_file=serial.settings.toys_file)
    on_dask = run_campaign(path, subset_store, settings, workers=2)
    assert _numbers(on_dask) == _numbers(serial)


def test_changed_settings_and_foreign_files_are_refused(
    serial, subset_store: Path, tmp_path: Path  # noqa: ANN001
) -> None:
    with pytest.raises(CampaignError, match="other settings.*steps"):
        run_campaign(serial.path, subset_store, replace(serial.settings, steps=9), serial=True)
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database")
    with pytest.raises(CampaignError, match="not a campaign file"):
        read_campaign(text)
    with pytest.raises(CampaignError, match="does not exist"):
        read_campaign(tmp_path / "missing.sqlite")
    with pytest.raises(CampaignError, match="at least 1"):
        CampaignSettings(toys=0)


def test_global_p_value_by_hand() -> None:
    k = [0.5, 1.0, 2.0, 3.0, 4.5, 6.0, 7.0, 9.0]
    g = global_p_value(k, 6.0)
    assert (g.n, g.above, g.p) == (8, 3, 3 / 8)
    lo, hi = g.interval68
    assert lo < 3 / 8 < hi
    assert 0 < g.p_kde < 1 and g.z == pytest.approx(significance(3 / 8))
    # Clopper-Pearson by its definition: P(X >= k | hi) = P(X <= k | lo) = alpha / 2
    from scipy import stats

    lo95, hi95 = clopper_pearson(3, 8, 0.95)
    assert stats.binom.sf(2, 8, lo95) == pytest.approx(0.025)
    assert stats.binom.cdf(3, 8, hi95) == pytest.approx(0.025)
    # the KDE estimate of a large Gaussian sample approaches the normal tail
    rng = np.random.default_rng(1)
    big = global_p_value(rng.normal(0.0, 1.0, 4000), 1.0)
    assert big.p_kde == pytest.approx(stats.norm.sf(1.0 / math.sqrt(1 + 4000 ** -0.4)), abs=0.02)
    with pytest.raises(ValueError, match="finite"):
        global_p_value(k, math.nan)


def test_report_cli(serial, tmp_path: Path) -> None:  # noqa: ANN001
    plot = tmp_path / "k.png"
    k = serial.k_max
    if not len(k):
        pytest.skip("no toy of the small campaign accepted a step")
    result = CliRunner().invoke(
        cli, ["campaign", "report", str(serial.path), "--k-obs", str(float(k.max())),
              "--plot", str(plot), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["global"]["above"] >= 1 and data["with_K"] == len(k)
    assert plot.exists() and plot.stat().st_size > 0
    bad = CliRunner().invoke(cli, ["campaign", "report", str(plot)])
    assert bad.exit_code != 0 and "not a campaign file" in bad.output


def test_run_cli_refuses_changed_settings_on_resume(serial) -> None:  # noqa: ANN001
    result = CliRunner().invoke(
        cli, ["campaign", "run", "--out", str(serial.path), "--steps", "7", "--serial"]
    )
    assert result.exit_code != 0
    assert "--steps 4 -> 7" in result.output


def test_campaign_file_tables(serial) -> None:  # noqa: ANN001
    with sqlite3.connect(serial.path) as db:
        meta = dict(db.execute("SELECT key, value FROM meta"))
        assert json.loads(meta["settings"])["seed"] == SMALL.seed
        assert "database_checksum" in meta and meta["database_version"]


def test_a_killed_worker_loses_only_its_toy(serial, subset_store: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """A worker that dies in the middle of a toy: the scheduler gives the toy to another
    worker (its run file is started again) and the campaign equals the serial one."""
    distributed = pytest.importorskip("dask.distributed")
    import os

    import dask

    settings = replace(SMALL, toys=3, toys_file=serial.settings.toys_file)
    reference = run_campaign(tmp_path / "serial3.sqlite", subset_store, settings, serial=True)
    killed: list[str] = []
    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        client = distributed.Client(cluster)

        def kill_a_busy_worker(outcome, done: int, total: int) -> None:  # noqa: ANN001
            if killed:
                return
            for address, keys in client.processing().items():
                if keys:
                    killed.append(address)
                    try:
                        client.run(os._exit, 1, workers=[address])
                    except Exception:  # noqa: BLE001, S110 - the worker is gone
                        pass
                    return

        try:
            on_dask = run_campaign(tmp_path / "killed.sqlite", subset_store, settings,
                                   scheduler=client, on_toy=kill_a_busy_worker)
        finally:
            client.close()
            cluster.close()
    assert killed, "no worker was busy when the first toy finished"
    assert _numbers(on_dask) == _numbers(reference)


def test_run_cli_serial(subset_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.sqlite"
    args = ["--database", str(subset_store), "campaign", "run", "--toys", "1", "--walkers", "1",
            "--steps", "2", "--seed", "5", "--serial", "--no-full-likelihoods", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "1 of 1 toys done" in result.output
    campaign = read_campaign(out)
    assert campaign.settings.steps == 2 and len(campaign.outcomes) == 1
    assert Path(campaign.settings.toys_file) == out.resolve().with_name("cli.toys.sqlite")
    again = CliRunner().invoke(cli, args[:-2] + ["--out", str(out), "--toys", "2"])
    assert again.exit_code == 0, again.output
    assert len(read_campaign(out).outcomes) == 2  # resumed and grown


def test_a_toy_walk_left_unfinished_is_resumed(serial, subset_store: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """A session that ended in the middle of a toy's walk: the rerun continues that walk from
    its run file (the same chains), and the outcome equals the uninterrupted one."""
    from protomodels.builders.run import RunSettings, run_walk
    from protomodels.builders.storage import RunStorage
    from protomodels.evaluation import EvaluationSettings

    settings = replace(SMALL, toys_file=serial.settings.toys_file)
    path = tmp_path / "cut.sqlite"
    runs = path.with_name("cut.runs")
    runs.mkdir()
    toy = f"{Path(settings.toys_file).resolve()}:1"
    partial = runs / "toy-00001.sqlite"
    run_walk(partial, subset_store, RunSettings(
        steps=2, walkers=SMALL.walkers, seed=walk_seed(SMALL.seed, 1), processes=1,
        evaluation=EvaluationSettings(full_likelihoods=False), grids="prepare", toy=toy))
    with RunStorage(partial, readonly=True) as storage:
        assert storage.count_steps() == 2 * SMALL.walkers
    resumed = run_campaign(path, subset_store, settings, serial=True)
    assert _numbers(resumed) == _numbers(serial)
