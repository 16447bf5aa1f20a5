"""``protomodel campaign run | report``: walks on toy databases and the global p-value."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import numpy as np
from click.core import ParameterSource
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from protomodels.builders.storage import RunStorage, check_run_file
from protomodels.cli.common import (
    Context,
    Finite,
    check_output_file,
    console,
    open_database,
    reports_errors,
)

__all__ = ["campaign"]


def __dir__() -> list[str]:
    return __all__


def _g(x: float | None, digits: int = 4) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}g}"


@click.group()
def campaign() -> None:
    """Walk campaigns on toy databases: the K_max distribution and the global p-value."""


@campaign.command("run")
@click.option("--toys", type=click.IntRange(min=1), default=None,
              help="Number of toys, >= 1 (a rerun may raise it) [default: 50; with an "
                   "existing --out: its own].")
@click.option("--walkers", type=click.IntRange(min=1), default=10, show_default=True,
              help="Walkers per toy (walked in lockstep in one process).")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Steps per walker.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Campaign seed: the toys' and the walks' seeds derive from it.")
@click.option("--inject", type=click.Path(dir_okay=False, exists=True), default=None,
              help="SLHA model whose predicted yields are added to the toys.")
@click.option("--bg-scale", type=Finite(min=0, min_open=True), default=1.0, show_default=True,
              help="Factor on every background uncertainty of the toys.")
@click.option("--toys-file", type=click.Path(dir_okay=False), default=None,
              help="Toy file to use or make [default: <out>.toys.sqlite].")
@click.option("--full-likelihoods/--no-full-likelihoods", default=True, show_default=True,
              help="pyhf full likelihoods in the walks.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="A running Dask scheduler (tcp://host:8786) [default: a LocalCluster "
                   "over this machine's cores].")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="LocalCluster worker processes [default: the cores].")
@click.option("--serial", is_flag=True, help="Run the toys one after the other, without Dask.")
@click.option("--keep-runs", is_flag=True, help="Keep each toy's run file in <out>.runs/.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default="campaign.sqlite",
              show_default=True, help="Campaign file (a rerun resumes it).")
@click.option("--ledger", type=click.Path(dir_okay=False), default=None,
              help="JSON ledger of finished toys: its toys are not walked again, and each "
                   "finished toy is added to it (small enough to keep with the study).")
@click.pass_obj
@reports_errors
def run(
    ctx: Context, toys: int | None, walkers: int, steps: int, seed: int, inject: str | None,
    bg_scale: float, toys_file: str | None, full_likelihoods: bool, scheduler: str | None,
    workers: int | None, serial: bool, keep_runs: bool, out: str, ledger: str | None,
) -> None:
    """Run the walk on each toy of a campaign (resumable: finished toys are skipped)."""
    from protomodels.campaigns.campaign import CampaignSettings, read_campaign, run_campaign

    path = Path(out)
    given = {
        "walkers": walkers, "steps": steps, "seed": seed, "inject": inject,
        "bg_scale": bg_scale, "toys_file": toys_file, "full_likelihoods": full_likelihoods,
    }
    if toys_file is not None:
        given["toys_file"] = str(Path(toys_file).resolve())
    if inject is not None:
        given["inject"] = str(Path(inject).resolve())
    if path.exists():  # resume: the stored settings hold; only the number of toys may grow
        stored = read_campaign(path).settings
        click_ctx = click.get_current_context()
        changed = [
            f"--{name.replace('_', '-')} {getattr(stored, name)!r} -> {value!r}"
            for name, value in given.items()
            if click_ctx.get_parameter_source(name) is not ParameterSource.DEFAULT
            and getattr(stored, name) != value
        ]
        if changed:
            msg = f"{out} holds a campaign with other settings ({'; '.join(changed)}); rerun "
            msg += "it without them (only --toys may grow) or choose a new --out"
            raise click.ClickException(msg)
        settings = replace(stored, toys=max(toys or 0, stored.toys))
    else:
        check_output_file(out, "--out")
        if toys_file is not None:
            check_output_file(toys_file, "--toys-file")
        given["toys_file"] = given["toys_file"] or ""
        settings = CampaignSettings(toys=toys or 50, **given)
    open_database(ctx, workspaces=False)  # builds the store on first use
    columns = (
        TextColumn("[bold]toys"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("last K_max {task.fields[last]}"), TimeElapsedColumn(),
    )
    with Progress(*columns, console=console()) as progress:
        task = progress.add_task("toys", total=settings.toys, last="-")

        def on_toy(outcome: object, done: int, total: int) -> None:
            progress.update(task, completed=done, last=_g(getattr(outcome, "K", None), 3))

        result = run_campaign(
            path, ctx.store_path, settings, scheduler=scheduler, workers=workers,
            serial=serial, keep_runs=keep_runs, on_toy=on_toy, ledger=ledger,
        )
    k = result.k_max
    mean, top = (float(k.mean()), float(k.max())) if len(k) else (None, None)
    console().print(
        f"{len(result.outcomes)} of {result.settings.toys} toys done; K_max mean {_g(mean, 3)}"
        f", max {_g(top, 3)}; 'protomodel campaign report {path}' for the p-value"
    )


def _observed_k(observed: str | None, k_obs: float | None) -> float | None:
    if k_obs is not None:
        return k_obs
    if observed is None:
        return None
    check_run_file(Path(observed), hint="give a run file written by 'protomodel walk'")
    with RunStorage(Path(observed), readonly=True) as storage:
        top = storage.hiscores()
    if not top:
        raise click.ClickException(f"{observed} holds no accepted step: no observed K")
    return float(top[0].K)


def _finished_toys(path: str) -> tuple[tuple[Any, ...], Any]:
    """The finished toys and the settings of a campaign file or of a campaign ledger (JSON)."""
    from protomodels.campaigns.campaign import read_campaign
    from protomodels.campaigns.ledger import read_ledger

    if not path.endswith(".json"):
        result = read_campaign(path)
        return result.outcomes, result.settings
    ledger = read_ledger(path)
    if ledger is None:
        raise click.ClickException(f"{path} does not exist")
    given = ledger.settings
    settings = SimpleNamespace(
        toys=None, walkers=given.get("walkers"), steps=given.get("steps"),
        seed=given.get("seed"), bg_scale=given.get("bg_scale"),
        inject=given.get("inject_sha256") and f"sha256:{given['inject_sha256']}",
    )
    return ledger.outcomes, settings


@campaign.command("report")
@click.argument("campaign_file", type=click.Path(dir_okay=False, exists=True))
@click.option("--observed", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Run file of the walk on the real data: its best K is K_obs.")
@click.option("--k-obs", type=Finite(), default=None, help="The observed K, given directly.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Histogram of K_max [default: <campaign>.png].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def report(
    campaign_file: str, observed: str | None, k_obs: float | None, plot_file: str | None,
    as_json: bool,
) -> None:
    """The K_max distribution of a campaign (its file, or its JSON ledger) and the global
    p-value of the observed K."""
    from protomodels.campaigns.campaign import k_max_of
    from protomodels.campaigns.report import global_p_value, plot_k_max

    outcomes, s = _finished_toys(campaign_file)
    plot_path = plot_file or str(Path(campaign_file).with_suffix(".png"))
    check_output_file(plot_path, "--plot")
    k = k_max_of(outcomes)
    if not len(k):
        raise click.ClickException(f"{campaign_file}: no toy has finished with a K yet")
    kobs = _observed_k(observed, k_obs)
    pvalue = global_p_value(k, kobs) if kobs is not None else None
    title = f"{len(k)} toys, {s.walkers} walkers x {s.steps} steps"
    plot_k_max(k, plot_path, k_obs=kobs, title=title)
    timed = [o.seconds for o in outcomes if o.seconds > 0]
    quantiles = dict(zip(("5%", "16%", "50%", "84%", "95%"),
                         np.percentile(k, [5, 16, 50, 84, 95]).tolist(), strict=True))
    data = {
        "toys": len(outcomes), "planned": s.toys, "with_K": len(k),
        "walkers": s.walkers, "steps": s.steps, "seed": s.seed, "inject": s.inject,
        "bg_scale": s.bg_scale, "K_max": {"mean": float(k.mean()), "std": float(k.std()),
                                          "min": float(k.min()), "max": float(k.max()),
                                          **quantiles},
        # toys taken from a ledger without their run summary carry no time
        "cpu_seconds_per_toy": float(np.mean(timed)) if timed else None,
        "plot": plot_path,
    }
    if pvalue is not None:
        data["global"] = pvalue.__dict__
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    out = console()
    table = Table(title=f"campaign {campaign_file}: {title}")
    table.add_column("quantity")
    table.add_column("value")
    table.add_row("toys done / planned", f"{len(outcomes)} / {s.toys or '?'}")
    table.add_row("K_max mean ± std", f"{k.mean():.3f} ± {k.std():.3f}")
    table.add_row("K_max min / median / max", f"{k.min():.3f} / {np.median(k):.3f} / {k.max():.3f}")
    if pvalue is not None:
        lo, hi = pvalue.interval68
        lo95, hi95 = pvalue.interval95
        table.add_row("K_obs", f"{pvalue.k_obs:.3f}")
        table.add_row("p_global (fraction)",
                      f"{pvalue.p:.3f} ({pvalue.above}/{pvalue.n}); 68% [{lo:.3f}, {hi:.3f}], "
                      f"95% [{lo95:.3f}, {hi95:.3f}]")
        table.add_row("p_global (KDE, reference)", _g(pvalue.p_kde, 3))
        table.add_row("significance Z", f"{_g(pvalue.z, 3)} (KDE: {_g(pvalue.z_kde, 3)})")
    table.add_row("plot", plot_path)
    out.print(table)

