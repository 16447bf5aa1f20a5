"""``protomodel predict``: theory predictions of an SLHA file or protomodel."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import click
import numpy as np
from rich.table import Table

from protomodels._version import __version__
from protomodels.cli.common import (
    Context,
    Finite,
    check_output_file,
    console,
    current_warnings,
    open_database,
    reports_errors,
    toy_option,
)
from protomodels.theory.predictions import PredictionSettings, Predictor, TheoryPrediction
from protomodels.theory.protomodel import Protomodel

__all__ = ["predict"]


def __dir__() -> list[str]:
    return __all__


#: the ``statistics.fallback`` of the best-region predictions that replace a pyhf combination
BEST_REGION_FALLBACK = "full likelihoods off: best signal region instead of the pyhf combination"
REGIONS_FALLBACK = "full likelihoods off: signal regions instead of the pyhf combination"
#: short names of the kinds of likelihood (table column, ``likelihood_kind`` in the JSON)
KINDS = {"upper_limit": "UL", "single_region": "SR", "simplified": "SL", "pyhf": "pyhf"}


def _fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def _kind(p: TheoryPrediction) -> str | None:
    """Which likelihood a prediction has (None: none)."""
    if p.statistics is None or p.statistics.likelihood is None:
        return None
    return KINDS.get(p.statistics.kind, p.statistics.kind)


#: what the help of predict, evaluate and walk --start says about reading SLHA files
SLHA_READING = (
    "Particles with a mass of 1e5 GeV or more are treated as frozen (decoupled: removed with "
    "their decays and cross sections), and negative masses are taken as their absolute value; "
    "such corrections are shown as warnings"
)


def model_notes(model: Protomodel, path: str) -> list[str]:
    """The corrections made while reading the model (``Protomodel.notes``), shown once each
    with the command's warnings; returns them for the JSON's ``flags``."""
    notes = [str(n) for n in getattr(model, "notes", ())]
    log = current_warnings()
    if log is not None:
        for note in notes:
            log.add(f"{path}: {note}", "InputCorrectionWarning")
    return notes


def select_results(database: object, **filters: object) -> list:
    """``database.select(**filters)``, refusing result ids that the database does not have and
    a selection that keeps no result."""
    ids = filters.get("ids")
    if ids:
        known = {r.result_id for r in database.results} | {  # type: ignore[attr-defined]
            r.analysis_id for r in database.results  # type: ignore[attr-defined]
        }
        unknown = [i for i in ids if i not in known]  # type: ignore[union-attr]
        if unknown:
            msg = (f"--id {', '.join(unknown)}: no such result in the database; "
                   "'protomodel db list' shows the ids")
            raise click.ClickException(msg)
    results = database.select(**filters)  # type: ignore[attr-defined]
    if not results:
        given = ", ".join(f"{k}={v}" for k, v in filters.items() if v not in (None, True, ()))
        msg = (f"no result of the database passes the selection ({given}); "
               "'protomodel db list' shows what there is")
        raise click.ClickException(msg)
    return results


def _record(p: TheoryPrediction, statistics: bool) -> dict:
    """The JSON record: the reference keys, the statistics' values and the likelihood kind."""
    record = p.to_json()
    if statistics:
        record["likelihood_kind"] = _kind(p)
    return record


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the predictions as JSON (reference-file keys); '-' for stdout.")
@click.option("--sigmacut", type=Finite(min=0), default=0.005, show_default=True,
              help="fb, >= 0")
@click.option("--minmassgap", type=Finite(min=0), default=5.0, show_default=True,
              help="GeV, >= 0")
@click.option("--maxcond", type=Finite(0, 1), default=0.2, show_default=True,
              help="Drop predictions violating their txname conditions by more, between 0 and "
                   "1 (0: keep all).")
@click.option("--no-combine", is_flag=True, help="No combined predictions (best region only).")
@click.option("--all-datasets", is_flag=True, help="Every signal region, not only the best.")
@click.option("--sqrts", type=Finite(min=0, min_open=True), default=None,
              help="Only results at this sqrt(s) (TeV).")
@click.option("--collaboration", type=click.Choice(["ATLAS", "CMS"], case_sensitive=False),
              default=None, help="Only ATLAS or CMS results.")
@click.option("--type", "data_type", default=None,
              type=click.Choice(["upperLimit", "efficiencyMap", "ul", "em"],
                                case_sensitive=False),
              help="Only upper-limit or efficiency-map results.")
@click.option("--id", "ids", multiple=True, help="Only these results (repeatable).")
@click.option("--no-superseded", is_flag=True, help="Drop superseded results.")
@click.option("--limit", type=click.IntRange(min=0), default=40, show_default=True,
              help="Rows shown in the table.")
@click.option("--statistics/--no-statistics", default=True, show_default=True,
              help="Likelihoods (L1, L_SM, L_max, muhat) and combined limits.")
@click.option("--full-likelihoods/--no-full-likelihoods", default=True, show_default=True,
              help="pyhf full likelihoods for the combinations of results with pyhf workspaces "
                   "(as SModelS; slow for the large ones); off: their best signal region.")
@click.option("--particles", "particles", default=None,
              type=click.Path(exists=True, dir_okay=False), metavar="FILE.slha",
              help="SLHA file whose QNUMBERS blocks describe particles beyond the MSSM (as "
                   "SModelS's model parameter); MODEL's own blocks take precedence.")
@click.option("--combine-analyses", "combine", default=None, metavar="A,B,...",
              help="Also the combined likelihood, mu-hat and r of these analyses (SModelS "
                   "combineAnas), checked against the combinability matrix.")
@click.option("--combinability", default="yaml", show_default=True,
              help="With --combine-analyses: 'yaml', 'handcrafted' or a JSON file.")
@click.option("--force-combination", is_flag=True,
              help="With --combine-analyses: combine pairs the matrix forbids (warned).")
@toy_option
@click.pass_obj
@reports_errors
def predict(
    ctx: Context, model: str, json_out: str | None, sigmacut: float, minmassgap: float,
    maxcond: float, no_combine: bool, all_datasets: bool, sqrts: float | None,
    collaboration: str | None, data_type: str | None, ids: tuple[str, ...],
    no_superseded: bool, limit: int, statistics: bool, full_likelihoods: bool,
    combine: str | None = None, combinability: str = "yaml", force_combination: bool = False,
    particles: str | None = None, toy: str | None = None,
) -> None:
    """Theory predictions (sigma x BR (x eff), upper limits, r) of an SLHA MODEL.

    Results with pyhf workspaces get the full likelihood of their combination, as SModelS
    does; with --no-full-likelihoods their best signal region instead (all regions with
    --all-datasets), marked in the "fallback" key and the table's notes.

    Particles with a mass of 1e5 GeV or more are treated as frozen (decoupled: removed with
    their decays and cross sections), and negative masses are taken as their absolute value;
    each such correction is shown once as a warning and listed in the JSON's "flags".

    --combine-analyses A,B multiplies the likelihoods of the analyses' best predictions (as
    SModelS's combineAnas does) and reports mu-hat and r = 1/mu_UL ("CombinedRes" in the JSON).
    """
    from protomodels.statistics.attach import pyhf_backend

    check_output_file(json_out, "--json")
    wanted = [a.strip() for a in combine.split(",") if a.strip()] if combine else []
    if combine is not None and not wanted:
        raise click.BadParameter("name at least one analysis", param_hint="--combine-analyses")
    if wanted and not statistics:
        raise click.UsageError("--combine-analyses needs the statistics (drop --no-statistics)")
    graph = None
    if wanted:
        from protomodels.combiner.test_statistic import KSettings

        graph = KSettings(combinability=combinability, shared=ctx.shared).graph()
    protomodel = Protomodel.from_slha(model, particles=particles)
    notes = model_notes(protomodel, model)
    full = statistics and full_likelihoods
    database = open_database(ctx, workspaces=full, toy=toy)
    results = select_results(
        database, sqrts=sqrts, collaboration=collaboration, data_type=data_type,
        ids=list(ids) or None, superseded=not no_superseded,
    )
    settings = PredictionSettings(
        sigmacut=sigmacut, minmassgap=minmassgap, combine=not no_combine,
        best_dataset=not all_datasets, maxcond=maxcond or None,
    )
    # without full likelihoods, a pyhf result is predicted as SModelS does without combining
    split = statistics and not full and settings.combine
    pyhf_results = [r for r in results if split and r.likelihood == "pyhf" and pyhf_backend(r)]
    split_ids = {r.result_id for r in pyhf_results}
    others = [r for r in results if r.result_id not in split_ids]
    predictor = Predictor(database, settings=settings, results=others)
    t0 = time.perf_counter()
    predictions = predictor.predict(protomodel)
    noted = []
    if pyhf_results:
        regions = Predictor(
            database, settings=dataclasses.replace(settings, combine=False), results=pyhf_results
        ).predict(protomodel)
        note = BEST_REGION_FALLBACK if settings.best_dataset else REGIONS_FALLBACK
        for p in regions:
            if np.count_nonzero(p.signals_fb) > 1:  # (one region with signal: no combination)
                noted.append(p)
        predictions += regions
    if statistics:
        from protomodels.statistics.attach import attach_statistics
        from protomodels.statistics.common import note_fallback

        attach_statistics(predictions, database, full_likelihoods=full)
        for p in noted:
            note_fallback(p, note)
        predictions.sort(key=lambda p: (p.r_obs is None, -(p.r_obs or 0.0)))
    combined = None
    if wanted:
        from protomodels.analyses_combination import combine_analyses

        combined = combine_analyses(predictions, wanted, combinable=graph.combinable,
                                    force=force_combination)
    seconds = time.perf_counter() - t0
    if json_out is not None:
        payload = {
            "slha": Path(model).name,
            "protomodels_version": __version__,
            "database_version": database.version,
            "toy": database.meta.get("toy"),
            "seconds": seconds,
            "settings": {**settings.__dict__, "statistics": statistics,
                         "full_likelihoods": full},
            "flags": notes,
            "predictions": [_record(p, statistics) for p in predictions],
        }
        if combined is not None:
            payload["CombinedRes"] = [combined.to_json()]
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
        columns += ["-2ln(L1/L_SM)", "μ̂", "likelihood"]
    for column in columns:
        table.add_column(column, overflow="fold")
    for p in predictions[:limit]:
        row = [
            p.analysis, p.dataset or "-", {"upperLimit": "UL", "efficiencyMap": "EM"}.get(
                p.data_type, "comb"), ",".join(p.txnames), _fmt(p.xsec_fb),
            _fmt(p.r_obs, 3), _fmt(p.r_exp, 3),
        ]
        if statistics:
            s = p.statistics
            has = s is not None and s.likelihood is not None
            t_l = 2 * (s.nll1 - s.nll_sm) if has else None
            kind = _kind(p) or "-"
            if s is not None and (s.fallback or s.error):
                kind += " *"
            row += [_fmt(t_l, 3), _fmt(s.mu_hat if has else None, 3), kind]
        table.add_row(*row)
    out.print(table)
    notes = {
        f"{p.result_id}: {label}: {text}"
        for p in predictions[:limit]
        if p.statistics is not None
        for label, text in (("fallback", p.statistics.fallback),
                            ("likelihood error", p.statistics.error))
        if text
    }
    for line in sorted(notes):
        out.print(f"* {line}")
    if len(predictions) > limit:
        out.print(f"... {len(predictions) - limit} more (--limit, or --json for all)")
    if combined is not None:
        members = ", ".join(f"{p.analysis} ({p.dataset or 'UL'})" for p in combined.members)
        out.print(
            f"combined {members}: r_obs {_fmt(combined.r_obs, 3)}, r_exp "
            f"{_fmt(combined.r_exp, 3)}, μ̂ {combined.mu_hat:.3g}, -2ln(L1/L_SM) "
            f"{2 * (combined.nll1 - combined.nll_sm):.3f}"
            + (" [forced]" if combined.forced else "")
        )
    if json_out not in (None, "-"):
        out.print(f"wrote {json_out}")
