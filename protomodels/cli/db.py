"""``protomodel db``: import, describe and browse the experimental database."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from protomodels import database as pdb
from protomodels.cli.common import (
    Context,
    check_output_file,
    collect_warnings,
    console,
    echo_json,
    import_progress,
    open_database,
    print_warning_table,
    reports_errors,
)
from protomodels.database.records import Result, Topology
from protomodels.paths import default_database_source

__all__ = ["db"]


def __dir__() -> list[str]:
    return __all__


@click.group()
def db() -> None:
    """Import and browse the SModelS database store."""


@db.command("import")
@click.option(
    "--source",
    type=click.Path(exists=True),
    default=None,
    help="Database tarball (.tar.xz) or unpacked folder; default: the shared tarball.",
)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Store file to write.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Reader processes (default: cores, max 4).")
@click.option("--strict", is_flag=True, help="Stop at the first malformed result.")
@click.option("--only", multiple=True, help="Import only results whose path contains this text.")
@click.pass_obj
@reports_errors
def import_(
    ctx: Context,
    source: str | None,
    out: str | None,
    workers: int | None,
    strict: bool,
    only: tuple[str, ...],
) -> None:
    """Import the SModelS text database into a SQLite store.

    The warnings of the import (a missing pyhf file, ...) are collected in one table at the end
    (on standard error).
    """
    src = Path(source) if source else default_database_source(ctx.shared)
    store = Path(out) if out else ctx.store_path
    check_output_file(str(store), "--out" if out else "store")
    # the importer issues its report's warnings as Python warnings too: record them here and
    # show them once, in the table below
    with collect_warnings(show=False) as caught, import_progress() as progress:
        report = pdb.import_database(
            src, store, workers=workers, strict=strict, progress=progress, only=only or None
        )
    print_warning_table([*report.warnings, *caught.take()],
                        title=f"warnings of the import into {store}")
    out_console = console()
    if report.no_op:
        out_console.print(
            f"{store}: already up to date with {src} "
            f"({len(report.unchanged)} results); nothing done"
        )
        return
    out_console.print(
        f"{store}: {len(report.imported)} results imported, {len(report.unchanged)} unchanged, "
        f"{len(report.skipped)} skipped, {len(report.errors)} failed, "
        f"{len(report.removed)} removed "
        f"in {report.seconds:.1f} s (database {report.database_version})"
    )
    for path, reason in report.skipped:
        out_console.print(f"  skipped {path}: {reason}")
    if report.warnings:
        n = len(report.warnings)
        out_console.print(f"  {n} warning{'s' * (n != 1)} (table on standard error)")
    for path, error in report.errors:
        click.echo(f"  error in {path}: {error}", err=True)
    if report.errors:
        click.echo(
            f"{len(report.errors)} results could not be imported (their previous copies, if any, "
            "are kept); fix the files named above and rerun the import",
            err=True,
        )
        sys.exit(1)


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@reports_errors
def info(ctx: Context, as_json: bool) -> None:
    """Version, provenance and counts of the store."""
    database = open_database(ctx, workspaces=False)
    counts = database.counts()
    data = {
        "store": str(database.path),
        "meta": database.meta,
        **counts,
        "problems": [list(p) for p in database.problems],
    }
    if as_json:
        echo_json(data)
        return
    out = console()
    meta = database.meta
    out.print(f"[bold]store[/bold]     {database.path}")
    out.print(
        f"[bold]database[/bold]  SModelS {meta.get('database_version')} from {meta.get('source')}"
    )
    out.print(f"[bold]checksum[/bold]  {meta.get('source_checksum') or '(folder: per result)'}")
    out.print(
        f"[bold]imported[/bold]  {meta.get('import_time')} "
        f"by protomodels {meta.get('code_version')}"
    )
    table = Table(title="results")
    table.add_column("group")
    table.add_column("value")
    table.add_column("results", justify="right")
    for group in ("sqrts", "collaboration", "data_type", "likelihood"):
        for key, n in counts[group].items():
            table.add_row(group, key, str(n))
    out.print(table)
    totals = counts["totals"]
    out.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in totals.items()))
    for path, kind, reason in database.problems:
        out.print(f"{kind}: {path}: {reason}")


def _summary(r: Result) -> dict[str, Any]:
    return {
        "result": r.result_id,
        "analysis": r.analysis_id,
        "sqrts_tev": r.sqrts_tev,
        "lumi_ifb": r.lumi_ifb,
        "collaboration": r.collaboration,
        "type": r.data_type,
        "likelihood": r.likelihood,
        "datasets": len(r.datasets),
        "topologies": r.topology_names,
        "pretty_name": r.pretty_name,
        "superseded_by": r.superseded_by,
    }


@db.command("list")
@click.option("--sqrts", type=float, default=None, help="Centre-of-mass energy in TeV (8 or 13).")
@click.option("--type", "data_type", default=None, help="upperLimit / efficiencyMap (ul / em).")
@click.option("--collaboration", default=None, help="ATLAS or CMS.")
@click.option("--topology", default=None, help="Only results with this txname (e.g. T2tt).")
@click.option("--grep", default=None, help="Regular expression on ids and pretty names.")
@click.option("--no-superseded", is_flag=True, help="Drop results superseded by newer ones.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@reports_errors
def list_(
    ctx: Context,
    sqrts: float | None,
    data_type: str | None,
    collaboration: str | None,
    topology: str | None,
    grep: str | None,
    no_superseded: bool,
    as_json: bool,
) -> None:
    """List results, with filters."""
    database = open_database(ctx, workspaces=False)
    results = database.select(
        sqrts=sqrts,
        data_type=data_type,
        collaboration=collaboration,
        topology=topology,
        grep=grep,
        superseded=not no_superseded,
    )
    if as_json:
        echo_json([_summary(r) for r in results])
        return
    table = Table(title=f"{len(results)} results")
    for column in ("result", "√s", "type", "likelihood", "SRs", "topologies", "name"):
        table.add_column(column, overflow="fold")
    for r in results:
        names = r.topology_names
        shown = ", ".join(names[:6]) + (f" +{len(names) - 6}" if len(names) > 6 else "")
        rid = r.result_id + (" (superseded)" if r.superseded_by else "")
        table.add_row(
            rid,
            f"{r.sqrts_tev:g}",
            "UL" if r.data_type == "upperLimit" else "EM",
            r.likelihood,
            str(len(r.datasets)),
            shown,
            r.pretty_name or "",
        )
    console().print(table)


def _ranges(topology: Topology) -> str:
    parts = []
    for kind, grid in topology.grids.items():
        if kind == "expected_upper_limit":
            continue
        for axis, (lo, hi) in zip(topology.axes, grid.ranges(), strict=True):
            name = "m" if axis.attribute == "mass" else "Γ"
            parts.append(f"{name}{axis.node} {lo:g}–{hi:g}")
    return ", ".join(parts)


def _material(r: Result) -> dict[str, Any]:
    return {
        "likelihood": r.likelihood,
        "fallback": r.fallback,
        "covariance": None if r.covariance is None else list(r.covariance.shape),
        "pyhf": [
            {
                "file": w.file_name,
                "missing": w.missing,
                "full_likelihood": w.full,
                "channels": len(w.channels),
            }
            for w in r.pyhf
        ],
        "include_crs": r.include_crs,
        "signal_uncertainty": r.signal_uncertainty,
    }


@db.command()
@click.argument("result_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@reports_errors
def show(ctx: Context, result_id: str, as_json: bool) -> None:
    """Show one result: data sets, topologies, grid ranges and likelihood material."""
    database = open_database(ctx, workspaces=False)
    r = database.result(result_id)
    topologies: dict[str, list[Topology]] = {}
    for ds in r.datasets:
        for t in ds.topologies:
            topologies.setdefault(t.name, []).append(t)
    if as_json:
        data = _summary(r) | {
            "url": r.url,
            "arxiv": r.arxiv,
            "publication": r.publication,
            "supersedes": r.supersedes,
            "preliminary": r.preliminary,
            "signature": r.signature,
            "material": _material(r),
            "datasets": [
                {
                    "id": d.dataset_id,
                    "data_id": d.data_id,
                    "type": d.data_type,
                    "region_type": d.region_type,
                    "observed_n": d.observed_n,
                    "expected_bg": d.expected_bg,
                    "bg_error": d.bg_error,
                    "upper_limit_fb": d.upper_limit_fb,
                    "expected_upper_limit_fb": d.expected_upper_limit_fb,
                    "topologies": [t.name for t in d.topologies],
                }
                for d in r.datasets
            ],
            "topology_details": {
                name: {
                    "constraint": ts[0].constraint_text,
                    "conditions": list(ts[0].condition_text),
                    "axes": [[a.node, a.attribute] for a in ts[0].axes],
                    "grids": sorted(ts[0].grids),
                    "points": ts[0].grids[next(iter(ts[0].grids))].n_points,
                    "ranges": _ranges(ts[0]),
                    "datasets": len(ts),
                }
                for name, ts in topologies.items()
            },
        }
        echo_json(data)
        return
    out = console()
    out.print(
        f"[bold]{r.result_id}[/bold]  ({r.analysis_id}, {r.collaboration}, "
        f"√s = {r.sqrts_tev:g} TeV, {r.lumi_ifb:g} fb⁻¹, {r.signature})"
    )
    if r.pretty_name:
        out.print(f"  {r.pretty_name}")
    for label, value in (
        ("url", r.url),
        ("arXiv", r.arxiv),
        ("publication", r.publication),
        ("supersedes", r.supersedes),
        ("superseded by", r.superseded_by),
    ):
        if value:
            out.print(f"  {label}: {value}")
    material = _material(r)
    line = f"likelihood material: {r.likelihood}"
    if material["covariance"]:
        line += f", covariance {material['covariance'][0]}×{material['covariance'][1]}"
    if r.pyhf:
        line += ", pyhf " + ", ".join(
            w.file_name + (" (missing)" if w.missing else "") + (" [full]" if w.full else "")
            for w in r.pyhf
        )
    out.print(line)
    if r.fallback:
        out.print(f"[yellow]fallback:[/yellow] {r.fallback}")
    if r.data_type == "efficiencyMap":
        table = Table(title=f"{len(r.datasets)} data sets")
        for column in (
            "data set",
            "kind",
            "n_obs",
            "b ± Δb",
            "UL obs [fb]",
            "UL exp [fb]",
            "topologies",
        ):
            table.add_column(column)

        def fmt(x: float | None) -> str:
            return "-" if x is None else f"{x:g}"

        for d in r.datasets:
            table.add_row(
                d.dataset_id,
                d.region_type,
                fmt(d.observed_n),
                f"{fmt(d.expected_bg)} ± {fmt(d.bg_error)}",
                fmt(d.upper_limit_fb),
                fmt(d.expected_upper_limit_fb),
                str(len(d.topologies)),
            )
        out.print(table)
    table = Table(title="topologies")
    for column in ("txname", "constraint", "grids", "points", "ranges (GeV)", "in data sets"):
        table.add_column(column, overflow="fold")
    for name, ts in topologies.items():
        t = ts[0]
        grid = t.grids[next(iter(t.grids))]
        table.add_row(
            name,
            t.constraint_text,
            ", ".join(sorted(t.grids)),
            str(grid.n_points),
            _ranges(t),
            str(len(ts)),
        )
    out.print(table)


@db.command("add")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--replace", is_flag=True, help="Overwrite a user result with the same id.")
@click.option("--check", is_flag=True, help="Only validate the file; write nothing.")
@click.pass_obj
@reports_errors
def add(ctx: Context, file: str, replace: bool, check: bool) -> None:
    """Validate a user-added result (YAML or JSON, docs/user_results.md) and import it into
    the store, where it takes part in predictions, K, critics, campaigns, the excess list and
    the p-value histograms like any other result. A malformed file is refused with its line
    and field; the store is left as it was."""
    from protomodels.database.user_results import add_user_result, read_user_result

    if check:
        user = read_user_result(file)
    else:
        open_database(ctx, workspaces=False)  # build the store first if it is missing
        try:
            user = add_user_result(ctx.store_path, file, replace=replace)
        except ValueError as err:
            raise click.ClickException(str(err)) from err
    r = user.result
    for warning in user.warnings:
        click.echo(f"warning: {warning}", err=True)
    n_topologies = len(r.topology_names)
    what = (f"{r.result_id} ({r.analysis_id}, {r.collaboration}, {r.sqrts_tev:g} TeV, "
            f"{r.lumi_ifb:g}/fb): {len(r.datasets)} data sets, {n_topologies} topologies, "
            f"likelihood {r.likelihood}")
    console().print(f"{file} is valid: {what}" if check else f"added {what} to {ctx.store_path}")
    if not n_topologies:
        console().print("  (no topologies: the result enters the excess list and the p-value "
                        "histograms, not the predictions)")


@db.command("export")
@click.argument("result_id")
@click.option("--out", type=click.Path(dir_okay=False), default="-", show_default=True,
              help="YAML file to write ('-': standard output).")
@click.pass_obj
@reports_errors
def export(ctx: Context, result_id: str, out: str) -> None:
    """Write a result (of the database or user-added) in the user-result format; edit its id
    and numbers and 'protomodel db add' it back."""
    from protomodels.database.user_results import export_result

    check_output_file(out, "--out")
    database = open_database(ctx, workspaces=False)
    text = export_result(database.result(result_id))
    if out == "-":
        click.echo(text, nl=False)
        return
    Path(out).write_text(text)
    console().print(f"wrote {out}")


@db.command("remove")
@click.argument("result_id")
@click.pass_obj
@reports_errors
def remove(ctx: Context, result_id: str) -> None:
    """Remove a user-added result from the store (database results stay)."""
    from protomodels.database.user_results import remove_user_result

    try:
        remove_user_result(ctx.store_path, result_id)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    console().print(f"removed {result_id} from {ctx.store_path}")
