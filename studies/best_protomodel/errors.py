"""Fisher errors and the NUTS posterior of the best protomodel of this study (issue 21).

The model is rebuilt from ``figures/summary.json`` (rank 1 of the veto run, 10 walkers x 5000
steps; masses to 0.1 GeV, branching ratios and multipliers to 3 digits, as the summary keeps
them), evaluated with the run's settings (no pyhf full likelihoods), and then:

- the Fisher errors at its best combination (Gauss-Newton and exact Hessians), marginal (all
  parameters free; degenerate directions flagged) and conditional for the masses (the other
  parameters held at their values);
- numpyro NUTS over the masses (the other parameters held: with 14 parameters and a handful of
  measured yields most directions are flat), 2 chains x ``--samples`` draws (priors: see
  ``protomodel posterior --help``);
- figures ``figures/errors.png`` (the Gaussian) and ``figures/posterior.png`` (samples beside
  the Gaussian), numbers in ``figures/errors.json``.

The reference builder's best model on this database (``data/reference/protomodels_latest.slha``,
K about 9.97 here) gets the same treatment for comparison (``--reference``).

Usage (from the repository root): python studies/best_protomodel/errors.py [--samples 1000]
    [--warmup 500] [--reference]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from protomodels.database import open as open_database
from protomodels.evaluation import EvaluationSettings, Evaluator
from protomodels.inference.errors import fisher_errors
from protomodels.inference.objective import objective_of
from protomodels.inference.plots import corner_plot
from protomodels.inference.posterior import PosteriorSettings, sample_posterior
from protomodels.paths import shared_dir
from protomodels.theory.particles import NAMES
from protomodels.theory.protomodel import Decay, Protomodel
from protomodels.theory.xsec import production_channels

HERE = Path(__file__).resolve().parent
BY_NAME = {name: pdg for pdg, name in NAMES.items()}


def summary_model(path: Path) -> tuple[Protomodel, float]:
    """Rank 1 of the study's summary as a protomodel, and the K the run gave it."""
    best = json.loads(path.read_text())["hiscores"][0]
    masses = {BY_NAME[n]: float(m) for n, m in best["particles"].items()}
    decays = {}
    for mother, channels in best["decays"].items():
        out = []
        for label, br in channels.items():
            daughter, *sm = label.split()
            out.append(Decay(BY_NAME[daughter], tuple(int(x) for x in sm), float(br)))
        total = sum(d.br for d in out)
        decays[BY_NAME[mother]] = tuple(Decay(d.daughter, d.sm, d.br / total) for d in out)
    ssm = {}
    for a, b in production_channels(list(masses)):
        name = f"{NAMES[abs(a)]} {NAMES[abs(b)]}"
        ssm[(a, b)] = float(best["multipliers"].get(name, 0.0))
    return Protomodel(masses=masses, decays=decays, ssm=ssm, name="best_protomodel"), best["K"]


def study(evaluator: Evaluator, model: Protomodel, label: str, args: argparse.Namespace,
          figures: Path) -> dict:
    evaluation = evaluator(model)
    objective = objective_of(evaluator, evaluation)
    gn = fisher_errors(objective)
    exact = fisher_errors(objective, method="exact")
    idx = np.flatnonzero(gn.constrained)
    names = [gn.names[i] for i in idx]
    corner_plot(figures / f"errors-{label}.png", names, mean=gn.values[idx],
                covariance=gn.covariance[np.ix_(idx, idx)],
                title=f"{label}: Fisher errors (K = {gn.K:.2f})")
    for i in idx:
        print(f"{label} {gn.names[i]:28s} fit {gn.values[i]:9.4g}  Fisher {gn.errors[i]:9.3g} "
              f"(exact {exact.errors[i]:9.3g})  dK {gn.gradient[i]:+.3g}", flush=True)
    masses = np.asarray([i for i in idx if gn.kinds[i] == "mass"])
    hessian = objective.hessian()
    conditional = np.sqrt(np.diag(np.linalg.inv(hessian[np.ix_(masses, masses)])))
    t0 = time.perf_counter()
    draws = sample_posterior(
        objective, PosteriorSettings(samples=args.samples, warmup=args.warmup, chains=2),
        sampled=masses)
    seconds = time.perf_counter() - t0
    mass_cov = np.linalg.inv(hessian[np.ix_(masses, masses)])
    corner_plot(figures / f"posterior-{label}.png", draws.names, samples=draws.flat,
                mean=gn.values[masses], covariance=mass_cov,
                title=f"{label}: mass posterior (2 x {args.samples}), conditional Fisher")
    rows = []
    for row, i, cond in zip(draws.summary(), masses, conditional, strict=True):
        rows.append({**row, "fit": float(gn.values[i]), "fisher_marginal": float(gn.errors[i]),
                     "fisher_marginal_exact": float(exact.errors[i]),
                     "fisher_conditional": float(cond), "dK": float(gn.gradient[i])})
        print(f"{label} {row['name']:12s} fit {gn.values[i]:7.1f}  Fisher marginal "
              f"{gn.errors[i]:8.3g}  conditional {cond:8.3g}  posterior {row['mean']:7.1f} +- "
              f"{row['std']:6.1f}  [{row['q16']:.1f}, {row['q84']:.1f}]  r-hat "
              f"{row['r_hat']:.3f}  ESS {row['ess']:.0f}", flush=True)
    return {
        "K_evaluation": evaluation.K, "K_objective": gn.K, "muhat": evaluation.muhat,
        "combination": [(m.analysis, m.dataset) for m in evaluation.k.combination],
        "unconstrained": [n for i, n in enumerate(gn.names) if not gn.constrained[i]],
        "flags": gn.flags + exact.flags, "masses": rows,
        "fisher": [{"name": gn.names[i], "value": float(gn.values[i]),
                    "error": float(gn.errors[i]), "error_exact": float(exact.errors[i]),
                    "dK": float(gn.gradient[i])} for i in idx],
        "nuts_seconds": seconds, "divergences": draws.divergences,
        "correlation": np.round(gn.correlation[np.ix_(idx, idx)], 3).tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--reference", action="store_true")
    args = parser.parse_args()
    figures = HERE / "figures"
    evaluator = Evaluator(open_database(workspaces=False),
                          EvaluationSettings(full_likelihoods=False))
    model, k_run = summary_model(figures / "summary.json")
    out = {"best_protomodel": {"K_run": k_run,
                               **study(evaluator, model, "best_protomodel", args, figures)}}
    if args.reference:
        slha = shared_dir() / "data" / "reference" / "protomodels_latest.slha"
        out["protomodels_latest"] = study(evaluator, Protomodel.from_slha(slha),
                                          "protomodels_latest", args, figures)
    (figures / "errors.json").write_text(json.dumps(out, indent=1, default=str))
    print(f"written {figures / 'errors.json'}")


if __name__ == "__main__":
    main()
