"""``protomodel excesses`` and ``protomodel pvalues``: the meta-statistical view of the database
(local significances of all signal regions and upper-limit maps, their p-value histograms under
the SM and under a protomodel, searches sensitive to a model that did not exclude it)."""

from __future__ import annotations

import csv
import json
import math
import sys
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
from protomodels.database.database import Database
from protomodels.metastatistics import (
    Deviation,
    SignalHypothesis,
    pvalue_histogram,
    region_deviations,
    sensitive_unexcluded,
    upper_limit_deviations,
    z_histogram,
)

__all__ = ["excesses", "pvalues"]


def __dir__() -> list[str]:
    return __all__


def _g(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.{digits}g}"


def _hypothesis(given: ModelInput, database: Database) -> SignalHypothesis:
    from protomodels.theory.predictions import Predictor

    predictor = Predictor(database, settings=given.settings.predictions)
    return SignalHypothesis.of_predictions(predictor.predict(given.model), database)


def _deviations(
    database: Database, hypothesis: SignalHypothesis | None, bg_scale: float,
    upper_limits: bool, superseded: bool,
) -> list[Deviation]:
    rows = region_deviations(database, hypothesis=hypothesis, bg_scale=bg_scale,
                             superseded=superseded)
    if upper_limits:
        rows += upper_limit_deviations(database, hypothesis=hypothesis, superseded=superseded)
    rows.sort(key=lambda d: (-d.z if not math.isnan(d.z) else math.inf))
    return rows


_CSV_COLUMNS = ["result_id", "analysis_id", "kind", "region", "z", "p", "observed", "background",
                "background_error", "signal", "observed_limit", "expected_limit", "mass_point",
                "n_points", "z_max", "topologies", "sqrts_tev", "lumi_ifb", "collaboration"]


def _write_csv(rows: list[Deviation], path: str) -> None:
    handle = sys.stdout if path == "-" else open(path, "w", newline="")  # noqa: SIM115
    try:
        writer = csv.writer(handle)
        writer.writerow(_CSV_COLUMNS)
        for d in rows:
            record = d.to_json()
            record["topologies"] = ";".join(d.topologies)
            record["mass_point"] = (";".join(f"{m:g}" for m in d.mass_point)
                                    if d.mass_point else "")
            writer.writerow(["" if record[c] is None else record[c] for c in _CSV_COLUMNS])
    finally:
        if handle is not sys.stdout:
            handle.close()


def _write_json(payload: dict[str, Any], path: str) -> None:
    text = json.dumps(payload, indent=1)
    if path == "-":
        click.echo(text)
    else:
        Path(path).write_text(text)


def _region_table(rows: list[Deviation], title: str, limit: int) -> Table:
    table = Table(title=title)
    for column in ("Z", "p", "result", "signal region", "observed", "background ± error",
                   "signal", "topologies"):
        table.add_column(column, overflow="fold")
    for d in rows[:limit]:
        table.add_row(f"{d.z:+.2f}", _g(d.p, 2), d.result_id, d.region, _g(d.observed, 7),
                      f"{_g(d.background, 5)} ± {_g(d.background_error, 2)}",
                      _g(d.signal) if d.signal else "-", _short(d.topologies))
    return table


def _short(topologies: tuple[str, ...]) -> str:
    text = ",".join(topologies)
    return text if len(text) < 40 else text[:37] + "..."


def _map_table(rows: list[Deviation], title: str, limit: int) -> Table:
    table = Table(title=title)
    for column in ("Z median", "result", "topology", "points", "Z max", "at (GeV)",
                   "UL obs / exp there (fb)"):
        table.add_column(column, overflow="fold")
    for d in rows[:limit]:
        where = ",".join(f"{m:g}" for m in d.mass_point) if d.mass_point else "-"
        table.add_row(f"{d.z:+.2f}", d.result_id, d.region, str(d.n_points or "-"),
                      _g(d.z_max), where, f"{_g(d.observed_limit)} / {_g(d.expected_limit)}")
    return table


def _sensitive(given: ModelInput, database: Database, limit: int, json_out: str | None) -> None:
    from protomodels.evaluation import Evaluator

    evaluator = Evaluator(database, given.settings)
    evaluation = evaluator(given.model)
    predictions = evaluator.predictions(given.model)
    rows = sensitive_unexcluded(predictions)
    # the SM significance of each region beside it
    z_sm = {(d.result_id, d.region): d.z for d in region_deviations(database, superseded=True)}
    k = evaluation.k
    log_b10 = k.T_L_mu1 / 2 if k is not None and math.isfinite(k.T_L_mu1) else None
    if json_out is not None:
        _write_json({
            "model": given.label, "K": evaluation.K, "T_L": evaluation.T_L,
            "muhat": evaluation.muhat, "ln_B10_mu1": log_b10,
            "sensitive_unexcluded": [
                {**r.to_json(), "Z_SM": z_sm.get((r.result_id, r.dataset or ""))}
                for r in rows],
        }, json_out)
        if json_out == "-":
            return
    out = console()
    table = Table(title=f"{given.label}: {len(rows)} predictions with expected CLs <= 0.05 "
                        "< observed CLs (r_exp >= 1 > r_obs)")
    for column in ("result", "data set", "topologies", "r_obs", "r_exp", "μ̂", "ln B10",
                   "Z (SM)"):
        table.add_column(column, overflow="fold")
    for r in rows[:limit]:
        z = z_sm.get((r.result_id, r.dataset or ""))
        table.add_row(r.result_id, r.dataset or "-", ",".join(r.topologies), _g(r.r_obs),
                      _g(r.r_exp), _g(r.mu_hat), _g(r.log_b10), _g(z))
    out.print(table)
    if len(rows) > limit:
        out.print(f"... {len(rows) - limit} more (--limit, or --json for all)")
    out.print(
        f"K = {_g(evaluation.K, 4)} (T_L {_g(evaluation.T_L, 4)} at μ̂ = {_g(evaluation.muhat)}); "
        f"best combination at μ = 1: ln B10 = {_g(log_b10, 4)} "
        "(B10 ≈ L(μ=1)/L(μ=0), nuisances profiled)"
    )
    if not evaluation.passed:
        out.print(f"[yellow]the critics do not let the model pass: {evaluation.reason}[/]")


@click.command()
@click.option("--min-z", type=Finite(), default=None,
              help="Only entries with Z at least this (e.g. 2).")
@click.option("--bg-scale", type=Finite(min=0, min_open=True), default=1.0, show_default=True,
              help="Factor on every background error.")
@click.option("--upper-limits/--no-upper-limits", default=True, show_default=True,
              help="Upper-limit maps (largest Z over the grid) beside the signal regions.")
@click.option("--superseded", is_flag=True, help="Keep results superseded by newer ones.")
@click.option("--sensitive-unexcluded", "sensitive_model", default=None,
              type=click.Path(exists=True, dir_okay=False), metavar="MODEL",
              help="Instead: the predictions of MODEL (SLHA or RUN.sqlite) with expected "
                   "CLs <= 0.05 < observed CLs, with Bayes factors and K.")
@click.option("--rank", type=click.IntRange(min=1), default=1, show_default=True,
              help="With a RUN.sqlite MODEL: the hiscore of this rank.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write all entries as JSON ('-': standard output).")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False), default=None,
              help="Write all entries as CSV ('-': standard output).")
@click.option("--limit", type=click.IntRange(min=0), default=30, show_default=True,
              help="Rows in the table.")
@evaluation_options
@click.pass_obj
@reports_errors
def excesses(
    ctx: Context, min_z: float | None, bg_scale: float, upper_limits: bool, superseded: bool,
    sensitive_model: str | None, rank: int, json_out: str | None, csv_out: str | None,
    limit: int, **options: Any,
) -> None:
    """Every signal region and upper-limit map with its local significance under the SM,
    sorted by Z (an excess has Z > 0).

    Signal regions: the mid-p-value of the observed count against the background with its
    Gaussian error (truncated at 0), Z = -Φ⁻¹(p). Upper-limit maps with expected limits:
    Z = (UL_obs - UL_exp) / (UL_exp / 1.96) at every grid point; the map's Z is the median
    over its points, shown with the largest and where it is. The two are listed in separate
    tables (--json/--csv: one list, by "kind"). Control regions and superseded results are
    left out (--superseded keeps the latter).
    """
    check_output_file(json_out, "--json")
    check_output_file(csv_out, "--csv")
    database = open_database(ctx, workspaces=bool(options.get("full_likelihoods", True))
                             and sensitive_model is not None)
    if sensitive_model is not None:
        given = model_input(ctx, sensitive_model, rank, options)
        _sensitive(given, database, limit, json_out)
        return
    rows = _deviations(database, None, bg_scale, upper_limits, superseded)
    if min_z is not None:
        rows = [d for d in rows if d.z >= min_z]
    if json_out is not None:
        _write_json({"hypothesis": "SM", "bg_scale": bg_scale,
                     "database_version": database.version,
                     "entries": [d.to_json() for d in rows]}, json_out)
    if csv_out is not None:
        _write_csv(rows, csv_out)
    if "-" in (json_out, csv_out):
        return
    regions = [d for d in rows if d.kind == "signal region"]
    maps = [d for d in rows if d.kind == "upper limit"]
    common = (f"database {database.version}, SM hypothesis"
              + (f", Z >= {min_z:g}" if min_z is not None else ""))
    out = console()
    out.print(_region_table(
        regions, f"{len(regions)} signal regions, {common}"
        + (f", background errors x {bg_scale:g}" if bg_scale != 1 else ""), limit))
    if len(regions) > limit:
        out.print(f"... {len(regions) - limit} more (--limit, or --json/--csv for all)")
    if maps:
        out.print(_map_table(
            maps, f"{len(maps)} upper-limit maps with expected limits, {common}: "
            "Z = (UL_obs - UL_exp) / (UL_exp / 1.96), median over the grid", limit))
        if len(maps) > limit:
            out.print(f"... {len(maps) - limit} more (--limit, or --json/--csv for all)")
    for path in (json_out, csv_out):
        if path is not None:
            out.print(f"wrote {path}")


@click.command()
@click.option("--model", "model_path", default=None,
              type=click.Path(exists=True, dir_okay=False),
              help="Also under this protomodel (SLHA file or RUN.sqlite).")
@click.option("--rank", type=click.IntRange(min=1), default=1, show_default=True,
              help="With a RUN.sqlite model: the hiscore of this rank.")
@click.option("--bg-scale", type=Finite(min=0, min_open=True), default=1.0, show_default=True,
              help="Factor on every background error (0.7: errors overestimated by ~40 %).")
@click.option("--bins", type=click.IntRange(min=2), default=10, show_default=True,
              help="Bins of the p-value histogram (the Z histogram has 16 on [-4, 4]).")
@click.option("--superseded", is_flag=True, help="Keep results superseded by newer ones.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default="pvalues.png",
              show_default=True, help="Figure to write.")
@click.option("--no-plot", is_flag=True, help="Write no figure.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the histograms and the per-region values as JSON ('-': stdout).")
@evaluation_options
@click.pass_obj
@reports_errors
def pvalues(
    ctx: Context, model_path: str | None, rank: int, bg_scale: float, bins: int,
    superseded: bool, plot_path: str, no_plot: bool, json_out: str | None, **options: Any,
) -> None:
    """Histograms of the p-values and significances of all signal regions under the SM (and
    under a protomodel), with the expectation without new physics (uniform p, standard-normal
    Z), and the numbers behind them: counts per bin, expected counts, chi-square and
    Kolmogorov-Smirnov tests.

    Under a protomodel its predicted events are added to the background of every region
    (the model as given: an SLHA file's multipliers, a run's rescaled best model).
    """
    check_output_file(json_out, "--json")
    if not no_plot:
        check_output_file(plot_path, "--plot")
    database = open_database(ctx, workspaces=False)
    hypotheses: list[tuple[str, SignalHypothesis | None]] = [("SM", None)]
    if model_path is not None:
        given = model_input(ctx, model_path, rank, options)
        hypotheses.append((given.label, _hypothesis(given, database)))
    results = []
    for label, hypothesis in hypotheses:
        rows = region_deviations(database, hypothesis=hypothesis, bg_scale=bg_scale,
                                 superseded=superseded)
        if not rows:
            raise click.ClickException("the database has no signal regions with counts")
        results.append((label, rows, pvalue_histogram([d.p for d in rows], bins),
                        z_histogram([d.z for d in rows])))
    if json_out is not None:
        _write_json({
            "database_version": database.version, "bg_scale": bg_scale,
            "hypotheses": [
                {"label": label, "p_histogram": hp.to_json(), "z_histogram": hz.to_json(),
                 "regions": [d.to_json() for d in rows]}
                for label, rows, hp, hz in results
            ],
        }, json_out)
        if json_out == "-":
            return
    out = console()
    for label, rows, hp, hz in results:
        n_signal = sum(d.signal > 0 for d in rows)
        table = Table(title=f"{label}: p-values of {hp.n} signal regions"
                            + (f" ({n_signal} with signal)" if label != "SM" else "")
                            + (f", background errors x {bg_scale:g}" if bg_scale != 1 else ""))
        table.add_column("p bin")
        table.add_column("count", justify="right")
        table.add_column("expected", justify="right")
        for lo, hi, c, e in zip(hp.edges[:-1], hp.edges[1:], hp.counts, hp.expected,
                                strict=True):
            table.add_row(f"[{lo:.2f}, {hi:.2f})", f"{int(c)}", f"{e:.1f}")
        out.print(table)
        out.print(
            f"  p: mean {hp.mean:.3f} ± {hp.mean_error:.3f} (0.5 expected), χ² {hp.chi2:.1f} / "
            f"{hp.ndf} (p {hp.chi2_p:.2g}), KS {hp.ks:.3f} (p {hp.ks_p:.2g})\n"
            f"  Z: mean {hz.mean:+.3f} ± {hz.mean_error:.3f} (0 expected), χ² {hz.chi2:.1f} / "
            f"{hz.ndf} (p {hz.chi2_p:.2g}), KS {hz.ks:.3f} (p {hz.ks_p:.2g}); "
            f"Z > 2: {sum(d.z > 2 for d in rows)} (expected {0.02275 * hp.n:.1f}), "
            f"Z < -2: {sum(d.z < -2 for d in rows)}"
        )
    if not no_plot:
        from protomodels.metastatistics.plots import histogram_figure

        title = (f"SModelS database {database.version}: all signal regions"
                 + (f", background errors x {bg_scale:g}" if bg_scale != 1 else ""))
        histogram_figure([(label, hp) for label, _, hp, _ in results],
                         [(label, hz) for label, _, _, hz in results], plot_path, title=title)
        out.print(f"wrote {plot_path}")
    if json_out not in (None, "-"):
        out.print(f"wrote {json_out}")
