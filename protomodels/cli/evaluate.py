"""``protomodel evaluate``: K, T_L, the prior, the best combination and the critics of a model."""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import click
from rich.table import Table

from protomodels.cli.common import (
    Context,
    Finite,
    check_output_file,
    console,
    open_database,
    reports_errors,
    toy_option,
)
from protomodels.cli.predict import model_notes
from protomodels.combiner.named import parse_combination
from protomodels.combiner.prior import PRIORS, PriorSettings
from protomodels.combiner.test_statistic import KSettings
from protomodels.evaluation import Evaluation, EvaluationSettings, Evaluator
from protomodels.statistics.common import PYHF_MAX_PARAMETERS
from protomodels.theory.predictions import PredictionSettings
from protomodels.theory.protomodel import Protomodel

__all__ = ["evaluate", "evaluation_options", "evaluation_settings", "print_evaluation"]


def __dir__() -> list[str]:
    return __all__


def evaluation_options(func):  # noqa: ANN001, ANN201 - click decorator
    """The options shared by ``evaluate`` and ``walk``."""
    options = [
        click.option("--sigmacut", type=Finite(min=0), default=0.02, show_default=True,
                     help="fb, >= 0 (reference builder's value)"),
        click.option("--minmassgap", type=Finite(min=0), default=10.0, show_default=True,
                     help="GeV, >= 0"),
        click.option("--combinability", default="yaml", show_default=True,
                     help="'yaml', 'handcrafted' or a JSON file of the same shape."),
        click.option("--prior", "prior_name", default="expo1", show_default=True,
                     type=click.Choice(sorted(PRIORS)), help="Complexity prior."),
        click.option("--no-penalties", is_flag=True,
                     help="Switch off the three penalty factors of the prior."),
        click.option("--constructive", is_flag=True,
                     help="Critics cap mu-hat (mu_max) instead of vetoing the model."),
        click.option("--full-likelihoods/--no-full-likelihoods", default=True,
                     show_default=True,
                     help="pyhf full likelihoods (jitted JAX fits) for the results with pyhf "
                          "workspaces; off, their combination has no likelihood (its best "
                          "signal region stands in, as a recorded fallback)."),
        click.option("--pyhf-max-parameters", type=click.IntRange(min=1),
                     default=PYHF_MAX_PARAMETERS, show_default=True,
                     help="pyhf workspaces with more parameters are not fitted (their best "
                          "signal region stands in): ATLAS-SUSY-2018-04 (115) and -2018-16 "
                          "(~200) take seconds per model and many GB to compile."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def evaluation_settings(
    ctx: Context, sigmacut: float, minmassgap: float, combinability: str, prior_name: str,
    no_penalties: bool, constructive: bool, full_likelihoods: bool,
    pyhf_max_parameters: int = PYHF_MAX_PARAMETERS,
) -> EvaluationSettings:
    """Settings from the shared options (the combinability matrix is loaded here, so that a
    wrong name or file is refused before any work)."""
    KSettings(combinability=combinability, shared=ctx.shared).graph()
    prior = PriorSettings(name=prior_name)
    if no_penalties:
        prior = PriorSettings(
            name=prior_name, missing_experiment=False, extreme_multipliers=False,
            undemocratic_flavours=False,
        )
    return EvaluationSettings(
        predictions=PredictionSettings(
            sigmacut=sigmacut, minmassgap=minmassgap, best_dataset=False
        ),
        k=KSettings(combinability=combinability, shared=ctx.shared, prior=prior),
        constructive=constructive,
        full_likelihoods=full_likelihoods,
        pyhf_max_parameters=pyhf_max_parameters,
    )


def _g(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def print_evaluation(evaluation: Evaluation) -> None:
    """K, T_L, prior parts, combination and critics as tables."""
    out = console()
    data = evaluation.as_json()
    head = Table(title=f"{evaluation.model.name}: K = {_g(data['K'])}", show_header=False)
    head.add_row("K", _g(data["K"]))
    head.add_row("T_L (mu-hat)", _g(data["T_L"]))
    head.add_row("T_L (mu = 1)", _g(data["T_L_mu1"]))
    head.add_row("mu-hat", _g(data["muhat"]))
    head.add_row("prior", _g(data["prior"]))
    parts = data.get("prior_parts") or {}
    if parts:
        head.add_row(
            "  particles / branchings / multipliers",
            f"{parts['n_particles']} / {parts['n_branchings']} / {parts['n_multipliers']:g}",
        )
        for name, value in parts["penalties"].items():
            head.add_row(f"  penalty {name}", _g(value))
    head.add_row("flags", ", ".join(data["flags"]) or "-")
    out.print(head)
    table = Table(title="best combination (contribution to T_L at mu-hat)")
    for column in ("analysis", "data set", "contribution"):
        table.add_column(column)
    for m in data["combination"]:
        table.add_row(m["analysis"], str(m["dataset"]), _g(m["contribution"]))
    out.print(table)
    out.print(candidates_table(data["candidates"]))
    critics = data["critics"]
    status = "[green]passed[/]" if critics["passed"] else "[red]failed[/]"
    out.print(f"critics: {status}  {critics.get('summary', critics.get('reason') or '')}")


def _per_result(rows: list[dict]) -> list[tuple[dict, int]]:
    """One row per result and data type: the combination where there is one, else the region
    in the best combination or with the largest r_exp; with the number of regions."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        data_type = "efficiencyMap" if row["data_type"] == "combined" else row["data_type"]
        groups.setdefault((row["analysis"], data_type), []).append(row)
    chosen = []
    for group in groups.values():
        best = max(
            group,
            key=lambda r: (r["data_type"] == "combined", r["combined"], r["r_exp"] or 0.0),
        )
        chosen.append((best, sum(r["data_type"] == "efficiencyMap" for r in group)))
    return chosen


def candidates_table(rows: list[dict]) -> Table:
    """Every result the evaluation considered (one row per result; all predictions are in
    the JSON's "candidates"): kind of likelihood, r, -ln L at mu = 0 and 1, and notes."""
    table = Table(title="results considered (likelihood kind, r, -ln L at mu = 0 and 1)")
    for column in ("analysis", "data set", "kind", "r_obs", "r_exp", "nll0", "nll1", "note"):
        table.add_column(column)
    for row, regions in sorted(_per_result(rows), key=lambda x: -(x[0]["r_exp"] or 0.0)):
        notes = []
        if row["combined"]:
            notes.append("[green]in the best combination[/]")
        elif row["candidate"]:
            notes.append("candidate")
        if regions > 1:
            notes.append(f"best of {regions} regions" if row["dataset"] != "(combined)"
                         else f"{regions} regions")
        for key in ("fallback", "why"):
            if row[key]:
                notes.append(f"[yellow]{row[key]}[/]" if key == "fallback" else row[key])
        table.add_row(
            row["analysis"], str(row["dataset"] or "-"), row["kind"], _g(row["r_obs"], 3),
            _g(row["r_exp"], 3), _g(row["nll0"], 5), _g(row["nll1"], 5), "; ".join(notes),
        )
    return table


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the evaluation as JSON; '-' for stdout.")
@click.option("--combination", default=None, metavar="A:DATASET,B:DATASET,...",
              help="Score this combination instead of the best one (T_L, mu-hat and K of "
                   "it); an analysis alone names its combined prediction. Its members must "
                   "be combinable.")
@click.option("--force-combination", is_flag=True,
              help="Score a --combination whose members may not be combined (flagged).")
@evaluation_options
@toy_option
@click.pass_obj
@reports_errors
def evaluate(
    ctx: Context, model: str, json_out: str | None, combination: str | None,
    force_combination: bool, toy: str | None = None, **options: object,
) -> None:
    """K, T_L, mu-hat, prior, best combination and critics of an SLHA MODEL.

    Particles with a mass of 1e5 GeV or more are treated as frozen (decoupled: removed with
    their decays and cross sections), and negative masses are taken as their absolute value;
    each such correction is shown once as a warning and added to the JSON's "flags" (after
    the evaluation's own flags).
    """
    check_output_file(json_out, "--json")
    if force_combination and combination is None:
        raise click.UsageError("--force-combination needs --combination")
    labels = parse_combination(combination) if combination is not None else None
    settings = evaluation_settings(ctx, **options)  # type: ignore[arg-type]
    protomodel = Protomodel.from_slha(model)
    notes = model_notes(protomodel, model)
    database = open_database(ctx, workspaces=bool(options["full_likelihoods"]), toy=toy)
    evaluator = Evaluator(database, settings)
    t0 = time.perf_counter()
    named = {} if labels is None else {
        "combination": labels, "force_combination": force_combination
    }
    evaluation = evaluator(protomodel, **named)
    if labels is not None and evaluation.k is None and evaluation.reason:
        # a combination that cannot be scored is the user's input, not a model problem
        raise click.ClickException(f"{model}: {evaluation.reason}")
    for flag in evaluation.k.flags if evaluation.k is not None else ():
        if flag.startswith("forced:"):
            warnings.warn(f"--force-combination: {flag[len('forced: '):]}", stacklevel=1)
    seconds = time.perf_counter() - t0
    data = evaluation.as_json()
    own = list(data.get("flags") or [])
    data["flags"] = own + [n for n in notes if n not in own]
    if json_out == "-":
        click.echo(json.dumps(data, indent=1))
    else:
        print_evaluation(evaluation)
        console().print(f"[dim]{seconds:.2f} s[/]")
        if json_out:
            Path(json_out).write_text(json.dumps(data, indent=1))
            console().print(f"wrote {json_out}")
    if not math.isfinite(evaluation.K):  # never a silent number: no K is an error
        raise click.ClickException(f"{model}: no K: {evaluation.reason}")
