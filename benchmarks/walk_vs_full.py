"""The walk's likelihoods of pyhf results against the full pyhf likelihoods (issue 6).

The walk computes no pyhf likelihood (``attach_statistics`` with ``full_likelihoods=False``):
for a result with pyhf workspaces its stand-in is the simplified likelihood where the result has a
covariance, else the best signal region (the largest expected r, SModelS's choice when it does
not combine). For every SLHA file in <shared>/data/reference this script predicts with the walk's
settings (``EvaluationSettings``: sigmacut 0.02 fb, minmassgap 10 GeV, every signal region) and,
for every result with pyhf workspaces that has a prediction, prints the stand-in next to the
full pyhf likelihood of the combination: -2 ln(L1/L_SM), mu-hat, r_obs, r_exp and the
differences (full - walk). Results whose JSON is missing print their fallback.

Then T_L (and mu-hat, and whether the pyhf result is in the best combination) of the model,
without rescaling it, three ways:

- ``walk``: the predictions as the walk has them (the pyhf combination has no likelihood; the
  combiner drops the single regions of a result with a combined prediction);
- ``best SR``: the pyhf combination removed, so that its signal regions are candidates;
- ``full``: the pyhf combination with its full likelihood.

Usage: python benchmarks/walk_vs_full.py [--heavy] [--handmade] [--skip-t-l]
``--heavy`` includes ATLAS-SUSY-2018-16 (two workspaces of ~200 parameters: minutes per
prediction); ``--handmade`` adds the hand-made protomodels of ``pyhf_likelihoods.py`` that
reach the pyhf results (reference cross-section tables).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
import warnings
from pathlib import Path

from protomodels.combiner.test_statistic import compute_k
from protomodels.database import open as open_database
from protomodels.database.records import Result
from protomodels.evaluation import EvaluationSettings, Evaluator
from protomodels.paths import shared_dir
from protomodels.statistics.attach import attach_statistics, pyhf_backend
from protomodels.theory.predictions import TheoryPrediction
from protomodels.theory.protomodel import Protomodel

HEAVY = ("ATLAS-SUSY-2018-16-eff",)


def _t(p: TheoryPrediction | None) -> float | None:
    """-2 ln(L1/L_SM) = 2 (nll1 - nll_SM)."""
    if p is None or "nll1" not in p.to_json():
        return None
    return 2.0 * (p.statistics.nll1 - p.statistics.nll_sm)


def _f(x: float | None, width: int = 8) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-".rjust(width)
    return f"{x:{width}.4g}"


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def best_region(result: Result, predictions: list[TheoryPrediction]) -> TheoryPrediction | None:
    """SModelS's best signal region among the single-region predictions of one result: the
    largest xsec / expected UL (ties: the larger xsec), SRs with an expected limit only."""
    region_type = {d.data_id or d.dataset_id: d.region_type for d in result.datasets}
    regions = [
        p
        for p in predictions
        if p.data_type == "efficiencyMap"
        and region_type.get(p.dataset) == "SR"
        and p.expected_upper_limit_fb
    ]
    if not regions:
        return None
    return max(regions, key=lambda p: (p.xsec_fb / p.expected_upper_limit_fb, p.xsec_fb))


def _values(p: TheoryPrediction | None) -> tuple[float | None, ...]:
    """(-2 ln(L1/L_SM), mu-hat, r_obs, r_exp) of a prediction (None where missing)."""
    if p is None:
        return (None, None, None, None)
    return (_t(p), p.to_json().get("muhat"), p.r_obs, p.r_exp)


def _fresh(predictions: list[TheoryPrediction]) -> list[TheoryPrediction]:
    return [dataclasses.replace(p, statistics=None) for p in predictions]


def compare_model(
    name: str,
    model: Protomodel,
    evaluator: Evaluator,
    by_id: dict[str, Result],
    heavy: bool,
    with_t_l: bool,
) -> list[dict]:
    """Print the per-result comparison (and T_L) of one model; return its rows."""
    db = evaluator.database
    predictions = evaluator.predictor.predict(model)
    touched = sorted({p.result_id for p in predictions if pyhf_backend(by_id[p.result_id])})
    if not touched:
        print(f"{name}: no prediction of a result with pyhf workspaces")
        return []
    walk = _fresh(predictions)
    attach_statistics(walk, db, evaluator=evaluator.statistics)
    full = _fresh(predictions)
    skipped = {
        id(p) for p in full if p.result_id in HEAVY and p.data_type == "combined" and not heavy
    }
    start = time.perf_counter()
    attach_statistics(
        [p for p in full if id(p) not in skipped],
        db,
        evaluator=evaluator.statistics,
        full_likelihoods=True,
    )
    pyhf_seconds = time.perf_counter() - start
    attach_statistics([p for p in full if id(p) in skipped], db, evaluator=evaluator.statistics)
    print(f"{name}: {len(predictions)} predictions, pyhf stage {pyhf_seconds:.1f} s")
    rows = []
    for rid in touched:
        result = by_id[rid]
        mine = [p for p in walk if p.result_id == rid]
        comb_walk = next((p for p in mine if p.data_type == "combined"), None)
        theirs = [p for p in full if p.result_id == rid]
        comb_full = next((p for p in theirs if p.data_type == "combined"), None)
        if result.covariance is not None:
            stand_in, label = comb_walk, "SL"
        else:
            stand_in = best_region(result, mine)
            label = f"SR {stand_in.dataset}" if stand_in is not None else "SR -"
        fallback = next((p.to_json()["fallback"] for p in mine if "fallback" in p.to_json()), None)
        print(f"  {rid}  ({result.likelihood}; walk: {label})")
        if result.likelihood != "pyhf":
            print(f"      no full likelihood: {fallback or result.fallback}")
        if comb_full is not None and id(comb_full) in skipped:
            print("      full likelihood skipped (heavy; --heavy)")
            comb_full = None
        # the region the combiner would take (largest 2 [ln L(1) - ln L(0)]) if it saw them
        weighted = [q for q in mine if q.data_type == "efficiencyMap" and _t(q) is not None]
        strongest = min(weighted, key=_t) if weighted else None
        values = {"walk": _values(stand_in), "full": _values(comb_full)}
        print(
            "      "
            + " " * 6
            + "".join(f"{h:>10}" for h in ("-2lnL1/LSM", "muhat", "r_obs", "r_exp"))
        )
        for key in ("walk", "full"):
            print(f"      {key:<6}" + "".join(f"  {_f(v)}" for v in values[key]))
        delta = [_diff(f, w) for f, w in zip(values["full"], values["walk"], strict=True)]
        print(f"      {'diff':<6}" + "".join(f"  {_f(v)}" for v in delta))
        if comb_full is not None:
            extra = comb_full.to_json()
            line = (
                f"      full: {len(result.datasets)} data sets, JSON {extra.get('pyhf_workspace')}"
                f", xsec {comb_full.xsec_fb:.4g} fb"
            )
            if stand_in is not None:
                line += f" (walk region: {stand_in.xsec_fb:.4g} fb)"
            print(line)
            if "likelihood_error" in extra:
                print(f"      full: {extra['likelihood_error']}")
        if strongest is not None and strongest is not stand_in and result.covariance is None:
            print(
                f"      strongest region {strongest.dataset}: "
                + "".join(f"  {_f(v)}" for v in _values(strongest))
                + "  (diff of -2lnL1/LSM to full: "
                + _f(_diff(values["full"][0], _t(strongest)), 0)
                + ")"
            )
        rows.append({"model": name, "result": rid, "walk": values["walk"], "full": values["full"]})
    if with_t_l:
        t_l(model, evaluator, walk, full, touched)
    return rows


def t_l(
    model: Protomodel,
    evaluator: Evaluator,
    walk: list[TheoryPrediction],
    full: list[TheoryPrediction],
    touched: list[str],
) -> None:
    """T_L of the model (not rescaled) with the walk's, the best-region and the full likelihoods."""
    xsecs = evaluator.predictor.cross_sections(model)
    pyhf_ids = set(touched)
    analyses = {p.analysis for p in walk if p.result_id in pyhf_ids}
    best_sr = [p for p in walk if not (p.data_type == "combined" and p.result_id in pyhf_ids)]
    for label, predictions in (("walk", walk), ("best SR", best_sr), ("full", full)):
        k = compute_k(
            model, predictions, xsecs, evaluator.k_settings, tables=evaluator.predictor.tables
        )
        used = [f"{m.analysis}:{m.dataset}" for m in k.combination if m.analysis in analyses]
        print(
            f"    T_L {label:<8} {k.T_L:9.4f}  muhat {k.muhat:7.4f}  K {k.K:9.4f}  "
            f"pyhf result in the combination: {', '.join(used) or 'no'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heavy", action="store_true", help="include ATLAS-SUSY-2018-16")
    parser.add_argument("--handmade", action="store_true", help="hand-made pyhf protomodels too")
    parser.add_argument("--skip-t-l", action="store_true", help="no T_L comparison")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    db = open_database(build=False, workspaces=True)
    by_id = {r.result_id: r for r in db.results}
    settings = EvaluationSettings()
    p = settings.predictions
    print(
        f"walk settings: sigmacut {p.sigmacut} fb, minmassgap {p.minmassgap} GeV, "
        f"best_dataset={p.best_dataset}, combine={p.combine}"
    )
    evaluator = Evaluator(db, settings)
    models: list[tuple[str, Protomodel]] = []
    for slha in sorted((shared_dir() / "data" / "reference").glob("*.slha")):
        models.append((slha.stem, Protomodel.from_slha(slha)))
    if args.handmade:
        sys.path.insert(0, str(Path(__file__).parent))
        from pyhf_likelihoods import protomodels_for_pyhf

        models += list(protomodels_for_pyhf().items())
    rows = []
    for name, model in models:
        rows += compare_model(name, model, evaluator, by_id, args.heavy, not args.skip_t_l)
    print(f"\n{len(rows)} (model, pyhf result) pairs")
    pairs = [r for r in rows if r["walk"][0] is not None and r["full"][0] is not None]
    if pairs:
        worst = max(pairs, key=lambda r: abs(r["full"][0] - r["walk"][0]))
        print(
            f"largest |diff -2lnL1/LSM|: {abs(worst['full'][0] - worst['walk'][0]):.4g} "
            f"({worst['model']}: {worst['result']})"
        )


if __name__ == "__main__":
    main()
