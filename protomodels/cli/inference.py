"""``protomodel errors`` and ``protomodel posterior``: Fisher errors and NUTS posteriors of the
continuous parameters of one protomodel (an SLHA file, or a model of a run's hiscores)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from protomodels.cli.common import (
    Context,
    Finite,
    check_output_file,
    console,
    open_database,
    reports_errors,
)
from protomodels.cli.evaluate import evaluation_options
from protomodels.cli.model_input import ModelInput, model_input
from protomodels.evaluation import Evaluation, Evaluator

__all__ = ["errors", "posterior"]


def __dir__() -> list[str]:
    return __all__


def _objective(ctx: Context, given: ModelInput) -> tuple[Any, Evaluation]:
    from protomodels.inference.objective import objective_of

    database = open_database(ctx, workspaces=given.settings.full_likelihoods)
    evaluator = Evaluator(database, given.settings)
    evaluation = evaluator(given.model)
    if not math.isfinite(evaluation.K):
        raise click.ClickException(f"{given.label}: no K: {evaluation.reason}")
    return objective_of(evaluator, evaluation), evaluation


def _g(x: float, digits: int = 4) -> str:
    return "-" if not math.isfinite(x) else f"{x:.{digits}g}"


def _default_path(given: ModelInput, suffix: str) -> Path:
    base = given.run_file if given.run_file is not None else Path(given.label)
    return base.with_name(f"{base.stem}-{suffix}")


_input_argument = click.argument("model", type=click.Path(exists=True, dir_okay=False))
_rank_option = click.option("--rank", type=click.IntRange(min=1), default=1, show_default=True,
                            help="For RUN.sqlite: the hiscore (1 = best).")


@click.command()
@_input_argument
@_rank_option
@click.option("--hessian", type=click.Choice(["gauss-newton", "exact"]), default="gauss-newton",
              show_default=True, help="The form of the Hessian (Fisher information).")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Corner plot of the Gaussian approximation (PNG); default "
                   "<MODEL stem>-errors.png beside the input.")
@click.option("--no-plot", is_flag=True, help="Write no plot.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the errors and correlations as JSON; '-' for stdout.")
@evaluation_options
@click.pass_obj
@reports_errors
def errors(ctx: Context, model: str, rank: int, hessian: str, plot_file: str | None,
           no_plot: bool, json_out: str | None, **options: object) -> None:
    """Fisher-information errors and correlations of the masses, ln multipliers and
    branching ratios of MODEL (an SLHA file, with the evaluation options; or RUN.sqlite, with
    the run's own settings and its model of rank --rank), at its best combination.

    The covariance is the inverse Hessian of -ln L at signal strength 1 on the mu-hat-rescaled
    model (Gauss-Newton form by default: J^T F J, F the likelihoods' profiled curvature in the
    yields). Parameters the combination does not depend on are unconstrained (no error).
    """
    from protomodels.inference.errors import fisher_errors

    check_output_file(json_out, "--json")
    given = model_input(ctx, model, rank, options)
    path = None if no_plot else Path(plot_file) if plot_file else _default_path(given, "errors.png")
    if path is not None:
        check_output_file(str(path), "--plot")
    objective, evaluation = _objective(ctx, given)
    result = fisher_errors(objective, method=hessian)
    if json_out == "-":
        click.echo(json.dumps(result.to_json(), indent=1))
    else:
        _print_errors(result, evaluation, given.label)
        if json_out:
            Path(json_out).write_text(json.dumps(result.to_json(), indent=1))
            console().print(f"wrote {json_out}")
    if path is not None and result.constrained.any():
        from protomodels._optional import require
        from protomodels.inference.plots import corner_plot

        require("matplotlib")
        idx = result.constrained.nonzero()[0]
        corner_plot(path, [result.names[i] for i in idx], mean=result.values[idx],
                    covariance=result.covariance[idx][:, idx],
                    title=f"{given.label}: Fisher errors (K = {result.K:.3f})")
        console().print(f"written {path}")


def _print_errors(result: Any, evaluation: Evaluation, label: str) -> None:
    table = Table(title=f"{label}: K = {result.K:.4g}, T_L = {result.T_L:.4g} "
                        f"(mu-hat {evaluation.muhat:.4g} absorbed in the multipliers)")
    for column in ("parameter", "value", "error", "dK/dtheta"):
        table.add_column(column, justify="left" if column == "parameter" else "right")
    for i, name in enumerate(result.names):
        error = result.errors[i]
        table.add_row(name, _g(result.values[i], 6),
                      _g(error, 3) if result.constrained[i] else "unconstrained",
                      _g(result.gradient[i], 3))
    console().print(table)
    idx = result.constrained.nonzero()[0]
    if len(idx) > 1:
        corr = Table(title="correlations")
        corr.add_column("")
        for i in idx:
            corr.add_column(result.names[i], justify="right")
        for i in idx:
            corr.add_row(result.names[i], *(f"{result.correlation[i, j]:+.2f}" for j in idx))
        console().print(corr)
    for flag in result.flags:
        console().print(f"[yellow]{flag}[/]")


@click.command()
@_input_argument
@_rank_option
@click.option("--samples", type=click.IntRange(min=10), default=1000, show_default=True,
              help="Draws per chain after warm-up.")
@click.option("--warmup", type=click.IntRange(min=10), default=500, show_default=True)
@click.option("--chains", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--mass-width", type=Finite(min=0.01, max=0.99), default=0.5, show_default=True,
              help="Masses flat in [m (1 - w), m (1 + w)], mothers heavier than daughters.")
@click.option("--log-multiplier-width", type=Finite(min=0.01), default=3.0, show_default=True,
              help="ln ssm flat in [ln ssm - d, ln ssm + d].")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="SQLite file for the samples (tables posterior_runs, posterior_samples); "
                   "default: RUN.sqlite itself, or <MODEL stem>-posterior.sqlite.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Corner plot of the samples with the Fisher Gaussian (PNG); default "
                   "<MODEL stem>-posterior.png.")
@click.option("--no-plot", is_flag=True, help="Write no plot.")
@evaluation_options
@click.pass_obj
@reports_errors
def posterior(ctx: Context, model: str, rank: int, samples: int, warmup: int, chains: int,
              seed: int, mass_width: float, log_multiplier_width: float, out_file: str | None,
              plot_file: str | None, no_plot: bool, **options: object) -> None:
    """NUTS samples of the posterior of MODEL's continuous parameters (an SLHA file, or
    RUN.sqlite and --rank), with r-hat and effective sample sizes.

    Likelihood: exp(-sum_i nll_i) of the best combination (nuisances profiled), as K. Prior:
    the K prior's structure fixed (same particles, channels, multipliers); masses flat in
    [m (1 - w), m (1 + w)] with every mother heavier than its daughters; ln ssm flat in
    [ln ssm - d, ln ssm + d]; branching ratios flat on each particle's simplex. Parameters the
    combination does not constrain are held at their values. The samples are stored in the
    SQLite file (--out) and drawn beside the Fisher errors.
    """
    from protomodels.inference.errors import fisher_errors
    from protomodels.inference.posterior import (
        PosteriorSettings,
        sample_posterior,
        store_samples,
    )

    given = model_input(ctx, model, rank, options)
    out = Path(out_file) if out_file else (
        given.run_file if given.run_file is not None
        else _default_path(given, "posterior.sqlite"))
    if out != given.run_file:
        check_output_file(str(out), "--out")
    plot = None if no_plot else Path(plot_file) if plot_file else _default_path(
        given, "posterior.png")
    if plot is not None:
        check_output_file(str(plot), "--plot")
    objective, evaluation = _objective(ctx, given)
    fisher = fisher_errors(objective)
    settings = PosteriorSettings(samples=samples, warmup=warmup, chains=chains, seed=seed,
                                 mass_width=mass_width, log_multiplier_width=log_multiplier_width)
    draws = sample_posterior(objective, settings, sampled=fisher.constrained.nonzero()[0],
                             progress=False)
    _print_posterior(draws, fisher, given.label, evaluation)
    from protomodels.builders.records import model_to_json

    run = store_samples(out, draws, label=given.label, model=model_to_json(evaluation.model),
                        fisher=fisher.to_json())
    console().print(f"stored as posterior run {run} in {out}")
    if plot is not None:
        from protomodels._optional import require
        from protomodels.inference.plots import corner_plot

        require("matplotlib")
        idx = draws.index
        corner_plot(plot, draws.names, samples=draws.flat, mean=fisher.values[idx],
                    covariance=fisher.covariance[idx][:, idx],
                    title=f"{given.label}: posterior ({chains} x {samples} draws) and Fisher")
        console().print(f"written {plot}")


def _print_posterior(draws: Any, fisher: Any, label: str, evaluation: Evaluation) -> None:
    table = Table(title=f"{label}: posterior, {draws.draws.shape[0]} chains x "
                        f"{draws.draws.shape[1]} draws, {draws.seconds:.1f} s, "
                        f"{draws.divergences} divergences (K = {evaluation.K:.4g})")
    for column in ("parameter", "fit", "Fisher error", "mean", "std", "68 % interval",
                   "r-hat", "ESS"):
        table.add_column(column, justify="left" if column == "parameter" else "right")
    for row, i in zip(draws.summary(), draws.index, strict=True):
        table.add_row(row["name"], _g(fisher.values[i], 6), _g(fisher.errors[i], 3),
                      _g(row["mean"], 6), _g(row["std"], 3),
                      f"[{_g(row['q16'], 5)}, {_g(row['q84'], 5)}]", _g(row["r_hat"], 4),
                      _g(row["ess"], 4))
    console().print(table)
    if draws.fixed:
        console().print("held at their values (unconstrained): " + ", ".join(draws.fixed))

