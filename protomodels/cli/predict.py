"""``protomodel predict``: theory predictions of an SLHA file or protomodel."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.table import Table

from protomodels._version import __version__
from protomodels.cli.common import Context, console, open_database, reports_errors
from protomodels.theory.predictions import PredictionSettings, Predictor
from protomodels.theory.protomodel import Protomodel

__all__ = ["predict"]


def __dir__() -> list[str]:
    return __all__


def _fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the predictions as JSON (reference-file keys); '-' for stdout.")
@click.option("--sigmacut", type=float, default=0.005, show_default=True, help="fb")
@click.option("--minmassgap", type=float, default=5.0, show_default=True, help="GeV")
@click.option("--maxcond", type=float, default=0.2, show_default=True,
              help="Drop predictions violating their txname conditions by more (0: keep all).")
@click.option("--no-combine", is_flag=True, help="No combined predictions (best region only).")
@click.option("--all-datasets", is_flag=True, help="Every signal region, not only the best.")
@click.option("--sqrts", type=float, default=None, help="Only results at this sqrt(s) (TeV).")
@click.option("--collaboration", default=None, help="Only ATLAS or CMS results.")
@click.option("--type", "data_type", default=None, help="Only upperLimit / efficiencyMap.")
@click.option("--id", "ids", multiple=True, help="Only these results (repeatable).")
@click.option("--no-superseded", is_flag=True, help="Drop superseded results.")
@click.option("--limit", type=int, default=40, show_default=True, help="Rows shown in the table.")
@click.option("--statistics/--no-statistics", default=True, show_default=True,
              help="Likelihoods (L1, L_SM, L_max, muhat) and combined limits.")
@click.pass_obj
@reports_errors
def predict(
    ctx: Context, model: str, json_out: str | None, sigmacut: float, minmassgap: float,
    maxcond: float, no_combine: bool, all_datasets: bool, sqrts: float | None,
    collaboration: str | None, data_type: str | None, ids: tuple[str, ...],
    no_superseded: bool, limit: int, statistics: bool,
) -> None:
    """Theory predictions (sigma x BR (x eff), upper limits, r) of an SLHA MODEL."""
    protomodel = Protomodel.from_slha(model)
    database = open_database(ctx, workspaces=False)
    results = database.select(
        sqrts=sqrts, collaboration=collaboration, data_type=data_type, ids=list(ids) or None,
        superseded=not no_superseded,
    )
    settings = PredictionSettings(
        sigmacut=sigmacut, minmassgap=minmassgap, combine=not no_combine,
        best_dataset=not all_datasets, maxcond=maxcond or None,
    )
    predictor = Predictor(database, settings=settings, results=results)
    t0 = time.perf_counter()
    predictions = predictor.predict(protomodel)
    if statistics:
        from protomodels.statistics.evaluate import attach_statistics

        attach_statistics(predictions, database)
        predictions.sort(key=lambda p: (p.r_obs is None, -(p.r_obs or 0.0)))
    seconds = time.perf_counter() - t0
    if json_out is not None:
        payload = {
            "slha": Path(model).name,
            "protomodels_version": __version__,
            "database_version": database.version,
            "seconds": seconds,
            "settings": settings.__dict__,
            "predictions": [p.to_json() for p in predictions],
        }
        text = json.dumps(payload, indent=1)
        if json_out == "-":
            click.echo(text)
            return
        Path(json_out).write_text(text)
    out = console()
    table = Table(title=f"{len(predictions)} theory predictions for {Path(model).name} "
                        f"({len(results)} results, {seconds:.2f} s)")
    columns = ["result", "data set", "type", "topologies", "σ×BR(×ε) [fb]", "r_obs", "r_exp"]
    if statistics:
        columns += ["-2ln(L1/L_SM)", "μ̂"]
    for column in columns:
        table.add_column(column, overflow="fold")
    for p in predictions[:limit]:
        row = [
            p.analysis, p.dataset or "-", {"upperLimit": "UL", "efficiencyMap": "EM"}.get(
                p.data_type, "comb"), ",".join(p.txnames), _fmt(p.xsec_fb),
            _fmt(p.r_obs, 3), _fmt(p.r_exp, 3),
        ]
        if statistics:
            e = p.extra
            t_l = 2 * (e["nll1"] - e["nll_SM"]) if "nll1" in e else None
            row += [_fmt(t_l, 3), _fmt(e.get("muhat"), 3)]
        table.add_row(*row)
    out.print(table)
    if len(predictions) > limit:
        out.print(f"... {len(predictions) - limit} more (--limit, or --json for all)")
    if json_out not in (None, "-"):
        out.print(f"wrote {json_out}")
