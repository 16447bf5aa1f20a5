"""The excess list and the p-value histograms of the SModelS database v3.0.0, as in the 2026 talk
(``../shared/seeds/001_*``, which used v3.1.0).

Usage (from the repository root):

    python studies/excesses/run.py [--model MODEL.slha] [--bg-scale 0.7]

Writes to ``studies/excesses/figures``:

- ``pvalues-sm.png``: the p and Z histograms of all signal regions under the SM, all regions and
  the electroweakino / dark-matter regions apart (the talk's red);
- ``pvalues-model.png``: the same under the protomodel (default: the reference builder's
  ``protomodels_latest.slha`` from the shared data), with and without background errors scaled
  by ``--bg-scale``;
- ``summary.json``: the histograms' numbers, the 25 largest excesses (regions and upper-limit
  maps), the counts of analyses and regions.

A region is "electroweakino / dark matter" when every topology it constrains is an
electroweakino (TChi*), slepton (TSlep*, TStau*), disappearing-track (TDTM*) or mediator
(TRV*, TRS*) topology; regions without topologies are counted with the others.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import protomodels.database as pdb
from protomodels.metastatistics import (
    Deviation,
    SignalHypothesis,
    pvalue_histogram,
    region_deviations,
    upper_limit_deviations,
    z_histogram,
)
from protomodels.metastatistics.plots import histogram_figure
from protomodels.paths import shared_dir
from protomodels.theory.predictions import PredictionSettings, Predictor
from protomodels.theory.protomodel import Protomodel

HERE = Path(__file__).resolve().parent
EW_DM_PREFIXES = ("TChi", "TSlep", "TStau", "TDTM", "TRV", "TRS")


def is_ew_dm(d: Deviation) -> bool:
    """All the region's topologies are electroweakino, slepton or mediator topologies."""
    return bool(d.topologies) and all(t.startswith(EW_DM_PREFIXES) for t in d.topologies)


def histograms(rows: list[Deviation]) -> dict:
    return {"p": pvalue_histogram([d.p for d in rows]), "z": z_histogram([d.z for d in rows])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--bg-scale", type=float, default=0.7)
    parser.add_argument("--out", type=Path, default=HERE / "figures")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.model or shared_dir() / "data" / "reference" / "protomodels_latest.slha"

    database = pdb.open(workspaces=False)
    sm = region_deviations(database)
    maps = upper_limit_deviations(database)
    ew = [d for d in sm if is_ew_dm(d)]
    other = [d for d in sm if not is_ew_dm(d)]
    h_all, h_ew, h_other = histograms(sm), histograms(ew), histograms(other)
    histogram_figure(
        [("all", h_all["p"]), ("electroweakino / DM", h_ew["p"]), ("others", h_other["p"])],
        [("all", h_all["z"]), ("electroweakino / DM", h_ew["z"]), ("others", h_other["z"])],
        args.out / "pvalues-sm.png",
        title=f"SModelS database {database.version}: signal regions under the SM",
    )
    model = Protomodel.from_slha(model_path)
    predictor = Predictor(database, settings=PredictionSettings(sigmacut=0.02, minmassgap=10.0,
                                                                best_dataset=False))
    hypothesis = SignalHypothesis.of_predictions(predictor.predict(model), database)
    with_model = region_deviations(database, hypothesis=hypothesis)
    scaled_sm = region_deviations(database, bg_scale=args.bg_scale)
    scaled_model = region_deviations(database, hypothesis=hypothesis, bg_scale=args.bg_scale)
    h_model, h_ssm, h_smod = histograms(with_model), histograms(scaled_sm), histograms(scaled_model)
    name = model_path.name
    histogram_figure(
        [("SM", h_all["p"]), (name, h_model["p"]), (f"SM, σ_b x {args.bg_scale:g}", h_ssm["p"]),
         (f"{name}, σ_b x {args.bg_scale:g}", h_smod["p"])],
        [("SM", h_all["z"]), (name, h_model["z"]), (f"SM, σ_b x {args.bg_scale:g}", h_ssm["z"]),
         (f"{name}, σ_b x {args.bg_scale:g}", h_smod["z"])],
        args.out / "pvalues-model.png",
        title=f"SModelS database {database.version}: signal regions under the SM and {name}",
    )
    shifted = sorted(((d.z - m.z, m) for d, m in zip(sm, with_model, strict=True)
                      if m.signal > 0), key=lambda x: x[0], reverse=True)
    em_analyses = {d.analysis_id for d in sm}
    summary = {
        "database_version": database.version,
        "analyses": len({r.analysis_id for r in database.results}),
        "results": len(database.results),
        "analyses_with_signal_regions": len(em_analyses),
        "signal_regions": len(sm),
        "ew_dm_signal_regions": len(ew),
        "upper_limit_maps_with_expected": len(maps),
        "histograms": {
            key: {"p": h["p"].to_json(), "z": h["z"].to_json()}
            for key, h in (("sm_all", h_all), ("sm_ew_dm", h_ew), ("sm_others", h_other),
                           ("model", h_model), ("sm_bg_scaled", h_ssm),
                           ("model_bg_scaled", h_smod))
        },
        "model": name,
        "regions_with_model_signal": sum(d.signal > 0 for d in with_model),
        "largest_excesses": [d.to_json() for d in sorted(sm, key=lambda d: -d.z)[:25]],
        "largest_map_excesses": [d.to_json() for d in sorted(maps, key=lambda d: -d.z)[:15]],
        "largest_deficits": [d.to_json() for d in sorted(sm, key=lambda d: d.z)[:10]],
        "explained_most": [
            {"result": m.result_id, "region": m.region, "z_sm": m.z + dz, "z_model": m.z,
             "signal": m.signal} for dz, m in shifted[:10]
        ],
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    for key, h in (("SM, all", h_all), ("SM, electroweakino/DM", h_ew), ("SM, others", h_other),
                   (name, h_model), (f"SM, bg x {args.bg_scale}", h_ssm),
                   (f"{name}, bg x {args.bg_scale}", h_smod)):
        p, z = h["p"], h["z"]
        print(f"{key:40s} N {p.n:4d}  <p> {p.mean:.3f}±{p.mean_error:.3f}  "
              f"chi2_p {p.chi2:.1f}/{p.ndf}  KS p {p.ks_p:.2g}  <Z> {z.mean:+.3f}  "
              f"counts {p.counts.astype(int).tolist()}")
    print("largest excesses:")
    for d in summary["largest_excesses"][:15]:
        print(f"  Z {d['z']:+.2f}  {d['result_id']}:{d['region']}  n {d['observed']:g}  "
              f"b {d['background']:g} ± {d['background_error']:g}  {','.join(d['topologies'])}")


if __name__ == "__main__":
    main()
