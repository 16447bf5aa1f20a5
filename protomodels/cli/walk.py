"""``protomodel walk | hiscores | show | plot``: the builder and its run files."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import click
from click.core import ParameterSource
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from protomodels.builders.moves import MoveProbabilities
from protomodels.builders.records import model_from_json
from protomodels.builders.run import RunSettings, run_walk, start_model
from protomodels.builders.storage import RunStorage, check_run_file
from protomodels.builders.walker import WalkerConfig
from protomodels.cli.common import (
    Context,
    Finite,
    check_output_file,
    check_output_folder,
    console,
    open_database,
    reports_errors,
    toy_option,
)
from protomodels.cli.evaluate import evaluation_options, evaluation_settings
from protomodels.cli.predict import SLHA_READING
from protomodels.theory.particles import NAMES

__all__ = ["hiscores", "plot", "show", "walk"]


def __dir__() -> list[str]:
    return __all__


def _g(x: float | None, digits: int = 4) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}g}"


class _Bar:
    """Progress bar over all steps of a run: step, current / best K, acceptance, steps/s."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.task = progress.add_task("walk", total=total, K="-", best="-", acc="-", rate="-")
        self.t0 = time.perf_counter()
        self.start_steps: int | None = None

    def __call__(self, storage: RunStorage) -> None:
        done = storage.count_steps()
        if self.start_steps is None:
            self.start_steps = done
            self.t0 = time.perf_counter()
        row = storage._db.execute(  # one cheap query for the figures shown
            "SELECT AVG(accepted), (SELECT K_current FROM steps ORDER BY time DESC LIMIT 1), "
            "MAX(K_current) FROM steps"
        ).fetchone()
        elapsed = time.perf_counter() - self.t0
        rate = (done - self.start_steps) / elapsed if elapsed > 0 else 0.0
        self.progress.update(
            self.task, completed=done, K=_g(row[1], 3), best=_g(row[2], 3),
            acc=_g(row[0], 2), rate=f"{rate:.2f}",
        )


def print_model(entry_model: dict, evaluation: dict, title: str) -> None:
    """A readable table of a stored model and its evaluation."""
    out = console()
    model = model_from_json(entry_model)
    table = Table(title=title)
    for column in ("particle", "PDG", "mass [GeV]", "decays (BR)"):
        table.add_column(column)
    for pdg in sorted(model.masses, key=lambda p: model.masses[p]):
        decays = ", ".join(
            f"{NAMES.get(abs(d.daughter), d.daughter)} {' '.join(map(str, d.sm))} ({d.br:.2f})"
            for d in sorted(model.decays.get(pdg, ()), key=lambda d: -d.br) if d.br > 0
        )
        table.add_row(NAMES.get(pdg, str(pdg)), str(pdg), f"{model.masses[pdg]:.1f}", decays or "-")
    out.print(table)
    if model.ssm:
        ssm = Table(title="signal-strength multipliers")
        ssm.add_column("production")
        ssm.add_column("multiplier")
        for (a, b), v in sorted(model.ssm.items()):
            if v > 0:
                ssm.add_row(f"{NAMES.get(abs(a), a)} {NAMES.get(abs(b), b)}", _g(v, 3))
        out.print(ssm)
    figures = Table(show_header=False, title="evaluation")
    for key in ("K", "T_L", "T_L_mu1", "muhat", "prior"):
        figures.add_row(key, _g(evaluation.get(key)))
    out.print(figures)
    combination = Table(title="results in the best combination")
    for column in ("analysis", "data set", "contribution to T_L"):
        combination.add_column(column)
    for m in evaluation.get("combination", []):
        combination.add_row(m["analysis"], str(m["dataset"]), _g(m["contribution"]))
    out.print(combination)
    critics = evaluation.get("critics", {})
    if critics:
        out.print(f"critics: {critics.get('summary') or critics.get('reason') or '-'}")


#: the options a resumed run takes from its run file (only --steps and --processes may change)
_FIXED_ON_RESUME = {
    "walkers": "--walkers", "seed": "--seed", "start": "--start",
    "temperature": "--temperature", "final_temperature": "--final-temperature",
    "teleport_until": "--teleport-until", "sigmacut": "--sigmacut",
    "minmassgap": "--minmassgap", "combinability": "--combinability", "prior_name": "--prior",
    "no_penalties": "--no-penalties", "constructive": "--constructive",
    "full_likelihoods": "--full-likelihoods/--no-full-likelihoods",
    "pyhf_max_parameters": "--pyhf-max-parameters", "toy": "--toy", "polish": "--polish",
    "polish_steps": "--polish-steps", "lifetimes": "--lifetimes",
    "refine_from": "--refine-from", "refine_mass_step": "--refine-mass-step",
}
#: chance of a lifetime move per proposal with --lifetimes
LIFETIME_MOVES = 0.1
_RESUME_HINT = ("give --resume a run file written by 'protomodel walk', or start a new run "
                "with --out NEW.sqlite")
_POSITIVE = Finite(min=0, min_open=True)


@click.command()
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Steps per walker, >= 1 [default: 200; with --resume: the run's own].")
@click.option("--walkers", type=click.IntRange(min=1), default=1, show_default=True,
              help=">= 1")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help=">= 0")
@click.option("--processes", type=click.IntRange(min=1), default=None,
              help="Worker processes, >= 1 (default: min(walkers, 2)).")
@click.option("--out", "run_file", type=click.Path(dir_okay=False), default=None,
              help="Run file (SQLite, must not exist); default walk-<seed>.sqlite in the "
                   "current folder.")
@click.option("--resume", "resume_file", type=click.Path(dir_okay=False, exists=True),
              default=None,
              help="Continue the run in this file (to --steps, if given; its other settings "
                   "are the run's own).")
@click.option("--start", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Start from this SLHA model (default: the LSP alone). "
                   + SLHA_READING + ".")
@click.option("--temperature", type=_POSITIVE, default=1.0, show_default=True, help="> 0")
@click.option("--final-temperature", type=_POSITIVE, default=None,
              help="Anneal geometrically to this temperature (> 0) at the last step.")
@click.option("--teleport-until", type=click.IntRange(min=0), default=None,
              help="Allow teleports to hiscores up to this step, >= 0 (default: never).")
@click.option("--refine-from", type=click.IntRange(min=0), default=None,
              help="From the step after this one each walker refines its best model: small "
                   "changes of masses, multipliers and branching ratios only, at temperature "
                   "0.02 (default: never).")
@click.option("--refine-mass-step", type=_POSITIVE, default=5.0, show_default=True,
              help="GeV, largest mass step of --refine-from.")
@click.option("--polish", is_flag=True,
              help="After an accepted move near the walker's best K, a few gradient steps on "
                   "the masses, multipliers and branching ratios (kept if K rises and the "
                   "critics pass).")
@click.option("--polish-steps", type=click.IntRange(min=1), default=3, show_default=True,
              help="Levenberg-Marquardt steps of --polish.")
@click.option("--lifetimes", is_flag=True,
              help="Also moves that make a particle long-lived (a width of 1e-19 to 1e-13 GeV, "
                   "reweighted as SModelS does) or prompt again; off, every decay is prompt, "
                   "as in the reference builder.")
@click.option("--prepare-grids", is_flag=True,
              help="Triangulate every grid before the first step (default: each when a step "
                   "first needs it, while a background process fills the cache).")
@evaluation_options
@toy_option
@click.pass_obj
@reports_errors
def walk(
    ctx: Context, steps: int | None, walkers: int, seed: int, processes: int | None,
    run_file: str | None, resume_file: str | None, start: str | None, temperature: float,
    final_temperature: float | None, teleport_until: int | None, polish: bool,
    polish_steps: int, prepare_grids: bool, lifetimes: bool = False, toy: str | None = None,
    refine_from: int | None = None, refine_mass_step: float = 5.0, **options: object,
) -> None:
    """Random walk over protomodels that maximises K; prints the best protomodel.

    Every option and file is checked before any work: a refused walk leaves no run file.
    """
    if resume_file is not None:
        stored = _check_resume(resume_file, run_file, steps)
        walkers, stored_steps = int(stored["walkers"]), int(stored["steps"])
        steps = steps or stored_steps
        path = Path(resume_file)
    else:
        steps = steps or 200
        path = Path(run_file or f"walk-{seed}.sqlite")
        if path.exists():
            msg = f"{path} exists: use --resume to continue it, or choose a new file with --out"
            raise click.ClickException(msg)
        check_output_file(str(path), "--out" if run_file else "run file")
    processes = processes or min(walkers, 2)
    walker_config = WalkerConfig(
        temperature=temperature, final_temperature=final_temperature,
        teleport_until=teleport_until, polish=polish_steps if polish else 0,
        probabilities=MoveProbabilities(lifetime=LIFETIME_MOVES if lifetimes else 0.0),
        refine_from=refine_from, refine_mass_step=refine_mass_step,
    )
    evaluation = evaluation_settings(ctx, **options)  # type: ignore[arg-type]
    if start is not None and resume_file is None:
        start_model(start)  # refused here, before the store is opened
    settings = RunSettings(
        steps=steps, walkers=walkers, seed=seed, processes=processes, walker=walker_config,
        evaluation=evaluation, start=start, grids="prepare" if prepare_grids else "lazy",
        toy=toy,
    )
    if resume_file is not None:
        toy = stored.get("toy")  # the run's own toy (checked again here)
    database = open_database(ctx, workspaces=bool(options["full_likelihoods"]), toy=toy)
    total = steps * walkers
    columns = (
        TextColumn("[bold]walk"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("K {task.fields[K]}  best {task.fields[best]}  acc {task.fields[acc]}  "
                   "{task.fields[rate]} steps/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console(), transient=False) as progress:
        bar = _Bar(progress, total)
        grids: list[object] = []

        def on_prepare(done: int, todo: int) -> None:  # first run on a machine only
            if not grids:
                grids.append(progress.add_task("triangulating grids (once)", total=todo,
                                               K="-", best="-", acc="-", rate="-"))
            progress.update(grids[0], completed=done)

        run_walk(path, database.path, settings, resume=resume_file is not None,
                 on_progress=bar, on_prepare=on_prepare)
    with RunStorage(path, readonly=True) as storage:
        best = storage.hiscores()
    console().print(f"run file: {path}")
    if not best:
        console().print("no model was accepted")
        return
    top = best[0]
    print_model(top.model, top.evaluation,
                f"best protomodel: K = {_g(top.K)} (walker {top.walker}, step {top.step})")


def _check_resume(resume_file: str, run_file: str | None, steps: int | None) -> dict:
    """The stored configuration of the run to resume, after checking that the file is a run
    file and that the command line changes none of its fixed settings."""
    if run_file is not None:
        msg = "--out and --resume exclude each other: a resumed run goes on in its own file"
        raise click.UsageError(msg)
    here = click.get_current_context()
    given = [
        flag for name, flag in _FIXED_ON_RESUME.items()
        if here.get_parameter_source(name) in (ParameterSource.COMMANDLINE,
                                               ParameterSource.ENVIRONMENT)
    ]
    if given:
        msg = (f"{', '.join(given)}: a resumed run keeps the settings stored in {resume_file}; "
               "drop them (only --steps and --processes may be given with --resume)")
        raise click.UsageError(msg)
    check_run_file(resume_file, hint=_RESUME_HINT)
    with RunStorage(resume_file, readonly=True) as storage:
        meta = storage.metadata()
    if meta is None:
        raise click.ClickException(f"{resume_file} holds no run metadata: not a run file; "
                                   + _RESUME_HINT)
    config = meta.config
    if steps is not None and steps < int(config["steps"]):
        msg = (f"--steps {steps}: the run in {resume_file} already goes to {config['steps']} "
               "steps per walker; give more steps, or none to finish it")
        raise click.UsageError(msg)
    return config


@click.command()
@click.argument("run_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def hiscores(run_file: str, as_json: bool) -> None:
    """The best models of a run (the file is only read)."""
    with RunStorage(run_file, readonly=True) as storage:
        entries = storage.hiscores()
    if as_json:
        click.echo(json.dumps([
            {"rank": i + 1, "K": e.K, "T_L": e.T_L, "walker": e.walker, "step": e.step,
             "model": e.model} for i, e in enumerate(entries)
        ], indent=1))
        return
    table = Table(title=f"hiscores of {run_file}")
    for column in ("rank", "K", "T_L", "muhat", "walker", "step", "particles"):
        table.add_column(column)
    for i, e in enumerate(entries):
        particles = ", ".join(
            f"{NAMES.get(int(p), p)} {m:.0f}"
            for p, m in sorted(e.model["masses"].items(), key=lambda x: x[1])
        )
        table.add_row(str(i + 1), _g(e.K), _g(e.T_L), _g(e.evaluation.get("muhat")),
                      str(e.walker), str(e.step), particles)
    console().print(table)


@click.command()
@click.argument("run_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--rank", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--slha", type=click.Path(dir_okay=False), default=None,
              help="Write the model as an SLHA file (MASS, DECAY, XSECTION).")
@click.pass_obj
@reports_errors
def show(ctx: Context, run_file: str, rank: int, slha: str | None) -> None:
    """One model of a run's hiscores (rank 1 = best; the run file is only read)."""
    check_output_file(slha, "--slha")
    with RunStorage(run_file, readonly=True) as storage:
        entries = storage.hiscores()
    if not entries:
        msg = (f"{run_file} has no hiscores yet (no model was accepted); continue the run with "
               f"'protomodel walk --resume {run_file} --steps N'")
        raise click.ClickException(msg)
    if rank > len(entries):
        raise click.BadParameter(f"the run has {len(entries)} hiscores", param_hint="--rank")
    e = entries[rank - 1]
    print_model(e.model, e.evaluation, f"rank {rank}: K = {_g(e.K)}")
    if slha:
        from protomodels.theory.predictions import Predictor

        model = model_from_json(e.model)
        database = open_database(ctx, workspaces=False)
        xsecs = Predictor(database).cross_sections(model)
        model.to_slha(slha, xsecs=xsecs)
        console().print(f"written {slha}")


@click.command()
@click.argument("run_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "folder", type=click.Path(file_okay=False), default=".",
              show_default=True, help="Folder for the PNG files.")
@reports_errors
def plot(run_file: str, folder: str) -> None:
    """PNGs of a run: best model's spectrum, K and T_L per step, contributions to K (the run
    file is only read; the folder is created when missing)."""
    from protomodels._optional import require
    from protomodels.builders.plots import PLOTS, plot_run

    check_output_folder(folder, "--out", PLOTS)
    require("matplotlib")
    with RunStorage(run_file, readonly=True):
        pass  # refuse a file that is not a run file before the folder is created
    for path in plot_run(run_file, folder):
        console().print(f"written {path}")
