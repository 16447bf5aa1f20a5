"""pyhf full likelihoods: ours against SModelS 3.0.3, and what they cost.

1. Reference files: for every SLHA file in <shared>/data/reference, predict (one Predictor),
   attach the pyhf likelihoods and print, per combined pyhf prediction, reference vs ours for
   r_obs, r_exp, muhat and -2 ln(L1/L_SM). (The v3.0.0 reference files hold no such prediction:
   the only pyhf results their models reach are the two left out of the reference, see
   data/README.md; those rows are printed without reference values.)
2. SModelS itself as the yardstick (``--smodels DIR``: a folder holding the ``smodels`` package
   3.0.3, e.g. ``pip install --no-deps --target DIR smodels==3.0.3.post1``): its
   ``PyhfData``/``PyhfUpperLimitComputer`` run on exactly our signals, for hand-made
   protomodels that reach the pyhf results and for a synthetic signal in every pyhf result.
   Goals: r within 5 %, muhat within 5 % (or 0.05 absolute), -2 ln(L1/L_SM) within 0.1 (or 1 %
   above 10).
3. Timing: cold (compile) and warm time per workspace (nll at 5 mu, mu-hat, both limits),
   per protomodel, SModelS's time on the same signal (numpy pyhf, model rebuilt per call), and
   fits started from pyhf's suggested values only vs the default (also the closest fit).

2b. Every pyhf result, synthetic signals: ours (JAX) against pyhf's own (numpy backend, SciPy):
   warm ms per protomodel side by side, -2 ln L at mu = 0, 0.5, 1, 2, mu-hat, both limits.
2c. The same on random protomodels of the template that reach each pyhf result (``--random``
   per result, default 50).

Usage: python benchmarks/pyhf_likelihoods.py [--smodels DIR] [--heavy] [--skip-reference]
``--heavy`` adds ATLAS-SUSY-2018-16 (two workspaces of ~200 parameters: minutes);
``--oracle-max-parameters 150`` runs SModelS on ATLAS-SUSY-2018-04 too (115 parameters: about
ten minutes, numpy pyhf).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import math
import sys
import time
import warnings

import numpy as np

from protomodels.database import open as open_database
from protomodels.database.records import Result
from protomodels.paths import shared_dir
from protomodels.statistics.full_likelihood import (
    PyhfLikelihood,
    PyhfModels,
    attach_full_likelihoods,
    is_pyhf_prediction,
)
from protomodels.theory.predictions import Predictor, TheoryPrediction
from protomodels.theory.protomodel import Decay, Protomodel

N1 = 1000022
HEAVY = ("ATLAS-SUSY-2018-16-eff",)
ORACLE_MAX_PARAMETERS = 60
SKIPPED: set[str] = set()  # --skip  # default: SModelS (numpy pyhf) runs on smaller workspaces only


def protomodels_for_pyhf() -> dict[str, Protomodel]:
    """Hand-made protomodels that reach the pyhf results of the database."""
    return {
        "stau_200": Protomodel(
            {1000015: 200.0, N1: 1.0}, {1000015: (Decay(N1, (15,), 1.0),)}, name="stau_200"
        ),
        "wino_WZ_300": Protomodel(
            {1000023: 300.0, 1000024: 300.0, N1: 150.0},
            {1000023: (Decay(N1, (23,), 1.0),), 1000024: (Decay(N1, (24,), 1.0),)},
            name="wino_WZ_300",
        ),
        "wino_WZ_offshell": Protomodel(
            {1000023: 200.0, 1000024: 200.0, N1: 170.0},
            {
                1000023: (Decay(N1, (11, -11), 0.5), Decay(N1, (13, -13), 0.5)),
                1000024: (Decay(N1, (12, -11), 0.5), Decay(N1, (14, -13), 0.5)),
            },
            name="wino_WZ_offshell",
        ),
        "sbottom_bh": Protomodel(
            {1000005: 1000.0, 1000023: 400.0, N1: 100.0},
            {1000005: (Decay(1000023, (5,), 1.0),), 1000023: (Decay(N1, (25,), 1.0),)},
            name="sbottom_bh",
        ),
        "wino_WW_300": Protomodel(
            {1000024: 300.0, N1: 50.0}, {1000024: (Decay(N1, (24,), 1.0),)}, name="wino_WW_300"
        ),
        "selectron_compressed": Protomodel(
            {1000011: 150.0, N1: 140.0},
            {1000011: (Decay(N1, (11,), 1.0),)},
            name="selectron_compressed",
        ),
    }


# -- SModelS as the yardstick ---------------------------------------------------------------
def load_smodels(folder: str | None):  # noqa: ANN201 - returns the module or None
    if folder:
        sys.path.insert(0, folder)
    try:
        from smodels.statistics import pyhfInterface
    except ImportError:
        return None
    logging.getLogger("smodels").setLevel(logging.CRITICAL)
    return pyhfInterface


def smodels_values(pyhf_interface, result: Result, signals_fb: np.ndarray) -> dict:  # noqa: ANN001
    """SModelS 3.0.3's numbers for these signals (``statsTools.getComputerPyhf`` inputs)."""
    ids = [d.data_id or d.dataset_id for d in result.datasets]
    json_files, jsons = {}, []
    for w in result.pyhf:
        if w.full or w.workspace is None:
            continue
        entries = []
        for c in w.channels:
            entry = {"smodels": c.smodels, "type": c.region_type}
            if c.pyhf is not None:
                entry["pyhf"] = c.pyhf
            entries.append(entry)
        if all(e["smodels"] not in ids for e in entries if e["type"] == "SR"):
            continue
        json_files[w.file_name] = entries
        jsons.append(copy.deepcopy(w.workspace))
    nsig = dict(zip(ids, np.asarray(signals_fb) * result.lumi_ifb, strict=True))
    nsignals = {
        js: {name: s for name, s in nsig.items() if name in [e["smodels"] for e in entries]}
        for js, entries in json_files.items()
    }
    start = time.perf_counter()
    data = pyhf_interface.PyhfData(
        nsignals, jsons, json_files, result.include_crs, result.signal_uncertainty
    )
    if data.errorFlag:
        return {"error": "PyhfData error flag"}
    computer = pyhf_interface.PyhfUpperLimitComputer(data, lumi=result.lumi_ifb)
    out: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        index = computer.getBestCombinationIndex()
        out["workspace"] = list(json_files)[index] if index is not None else None
        out["nll1"] = computer.likelihood(1.0, workspace_index=index, return_nll=True)
        out["nll0"] = computer.likelihood(0.0, workspace_index=index, return_nll=True)
        try:
            lmax = computer.lmax(workspace_index=index, return_nll=True)
            out["muhat"] = lmax["muhat"] if lmax else None
        except Exception as err:  # SModelS's sigma_mu step can raise (docs/statistics.md §6)
            out["lmax_error"] = repr(err)
            out["muhat"] = _lmax_fit(pyhf_interface, computer, index)
        xsec = float(np.sum(signals_fb))
        for key, expected in (("r_obs", False), ("r_exp", True)):
            ul = computer.getUpperLimitOnSigmaTimesEff(expected=expected, workspace_index=index)
            out[key] = xsec / ul if ul else None
    out["seconds"] = time.perf_counter() - start
    return out


def _lmax_fit(pyhf_interface, computer, index: int | None) -> float | None:  # noqa: ANN001
    """mu-hat as ``lmax`` fits it before its sigma_mu step (which raises with numpy 2 in
    SModelS 3.0.3): ``pyhf.infer.mle.fit`` within the suggested bounds."""
    pyhf = pyhf_interface.pyhf
    try:
        computer.__init__(computer.data, computer.cl, computer.lumi)
        workspace = computer.updateWorkspace(index, expected=False)
        model = workspace.model(
            modifier_settings={
                "normsys": {"interpcode": "code4"},
                "histosys": {"interpcode": "code4p"},
            }
        )
        best = pyhf.infer.mle.fit(
            workspace.data(model), model, par_bounds=model.config.suggested_bounds()
        )
        return float(best[model.config.poi_index])
    except Exception:  # noqa: BLE001 - the yardstick may fail; then there is no value
        return None


# -- ours -----------------------------------------------------------------------------------
def our_values(likelihood: PyhfLikelihood, xsec_fb: float) -> dict:
    nll1, nll0 = likelihood.nll([1.0, 0.0])
    ul, ul_exp = (likelihood.upper_limit_fb(e) for e in (False, True))
    return {
        "workspace": likelihood.workspace.plan.file_name if likelihood.workspace else None,
        "nll1": float(nll1),
        "nll0": float(nll0),
        "muhat": likelihood.mu_hat,
        "r_obs": xsec_fb / ul if ul > 0 else None,
        "r_exp": xsec_fb / ul_exp if ul_exp > 0 else None,
    }


def _t(nll1: float | None, nll0: float | None) -> float | None:
    if nll1 is None or nll0 is None:
        return None
    return 2.0 * (nll1 - nll0)


def _fmt(x: float | None) -> str:
    return "     -" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:9.4g}"


def compare(label: str, ref: dict, ours: dict) -> list[str]:
    """Print one comparison row; return the goals it misses."""
    misses = []
    for key in ("r_obs", "r_exp"):
        a, b = ref.get(key), ours.get(key)
        if a is not None and (b is None or abs(b / a - 1) > 0.05):
            misses.append(key)
    a, b = ref.get("muhat"), ours.get("muhat")
    if a is not None and (b is None or (abs(b - a) > 0.05 and abs(b - a) > 0.05 * abs(a))):
        misses.append("muhat")
    ta, tb = _t(ref.get("nll1"), ref.get("nll0")), _t(ours.get("nll1"), ours.get("nll0"))
    if ta is not None and (tb is None or abs(tb - ta) > max(0.1, 0.01 * abs(ta) * (ta > 10))):
        misses.append("-2lnL1/LSM")
    same_ws = "" if ref.get("workspace") in (None, ours.get("workspace")) else " (other JSON!)"
    print(
        f"  {label:<44} r_obs {_fmt(ref.get('r_obs'))} {_fmt(ours.get('r_obs'))} | "
        f"r_exp {_fmt(ref.get('r_exp'))} {_fmt(ours.get('r_exp'))} | "
        f"muhat {_fmt(ref.get('muhat'))} {_fmt(ours.get('muhat'))} | "
        f"-2ln(L1/LSM) {_fmt(ta)} {_fmt(tb)}  {'ok' if not misses else 'MISS ' + ','.join(misses)}"
        f"{same_ws}"
    )
    return misses


def _ref_nll(p: dict, key: str) -> float | None:
    value = p.get(key)
    return -math.log(value) if value else None


def reference_section(
    db,
    predictor: Predictor,
    models: PyhfModels,
    oracle: Oracle | None,  # noqa: ANN001
) -> None:
    print("== 1. reference files (SModelS 3.0.3 values in data/reference)")
    reference = shared_dir() / "data" / "reference"
    by_id = {r.result_id: r for r in db.results}
    rows = 0
    for slha in sorted(reference.glob("*.slha")):
        ref = json.loads(slha.with_suffix(".json").read_text())["predictions"]
        model = Protomodel.from_slha(slha)
        predictions = predictor.predict(model)
        attach_full_likelihoods(predictions, db, models=models)
        ours = [p for p in predictions if is_pyhf_prediction(p, by_id[p.result_id])]
        for p in ours:
            rows += 1
            match = next(
                (q for q in ref if q["analysis"] == p.result_id and q["dataType"] == "combined"),
                None,
            )
            values = {
                "r_obs": p.r_obs,
                "r_exp": p.r_exp,
                "muhat": p.to_json().get("muhat"),
                "nll1": p.to_json().get("nll1"),
                "nll0": p.to_json().get("nll_SM"),
                "workspace": p.to_json().get("pyhf_workspace"),
            }
            ref_values = (
                {}
                if match is None
                else {
                    "r_obs": match["r_obs"],
                    "r_exp": match["r_exp"],
                    "muhat": match["muhat"],
                    "nll1": _ref_nll(match, "L1"),
                    "nll0": _ref_nll(match, "L_SM"),
                }
            )
            note = ""
            if match is None:
                note = "  [not in the reference"
                if oracle is not None and oracle.applies(by_id[p.result_id], models):
                    ref_values = oracle.values(by_id[p.result_id], p.signals_fb)
                    note += "; SModelS run here"
                note += "]"
            extra = p.to_json().get("fallback") or p.to_json().get("likelihood_error") or ""
            compare(f"{slha.stem}: {p.result_id}{note}", ref_values, values)
            if extra:
                print(f"      -> {extra}")
        n_ref = sum(1 for q in ref if q["dataType"] == "combined" and by_id[q["analysis"]].pyhf)
        if n_ref:
            print(f"  {slha.stem}: {n_ref} pyhf combined reference predictions")
    print(f"  {rows} combined pyhf predictions of ours in the reference models")


def protomodel_section(
    db,
    predictor: Predictor,
    oracle: Oracle | None,
    heavy: bool,  # noqa: ANN001
) -> list[str]:
    print("\n== 2a. hand-made protomodels: SModelS 3.0.3 (left) vs ours (right)")
    by_id = {r.result_id: r for r in db.results}
    misses = []
    models = PyhfModels()
    for name, model in protomodels_for_pyhf().items():
        predictions = predictor.predict(model)
        pyhf_predictions = [
            p
            for p in predictions
            if is_pyhf_prediction(p, by_id[p.result_id])
            and (heavy or p.result_id not in HEAVY)
            and by_id[p.result_id].likelihood == "pyhf"
        ]
        if not pyhf_predictions:
            print(f"  {name}: no pyhf prediction (heavy ones need --heavy)")
            continue
        timings = []
        for _attempt in ("cold", "warm"):
            fresh = [_copy_prediction(p) for p in pyhf_predictions]
            start = time.perf_counter()
            attach_full_likelihoods(fresh, db, models=models)
            timings.append(time.perf_counter() - start)
        print(
            f"  {name}: {len(fresh)} pyhf predictions, attach {timings[0]:.2f} s cold "
            f"(compiling), {timings[1]:.2f} s warm"
        )
        for p in fresh:
            result = by_id[p.result_id]
            ours = {
                "r_obs": p.r_obs,
                "r_exp": p.r_exp,
                "muhat": p.to_json().get("muhat"),
                "nll1": p.to_json().get("nll1"),
                "nll0": p.to_json().get("nll_SM"),
                "workspace": p.to_json().get("pyhf_workspace"),
            }
            ref = {}
            if oracle is not None and oracle.applies(result, models):
                ref = oracle.values(result, p.signals_fb)
            miss = compare(f"{name}: {p.result_id}", ref, ours)
            if ref:
                print(f"      SModelS {ref.get('seconds', math.nan):.1f} s")
                if "lmax_error" in ref:
                    print(
                        f"      SModelS lmax raised {ref['lmax_error']}: its muhat is "
                        "lmax's pyhf fit, repeated here"
                    )
            if p.to_json().get("likelihood_error"):
                print(f"      -> {p.statistics.error}")
            misses += [f"{name}/{p.result_id}: {m}" for m in miss]
    return misses


@dataclasses.dataclass(frozen=True)
class Oracle:
    """SModelS's pyhfInterface module, run on workspaces up to ``max_parameters``."""

    module: object
    max_parameters: int

    def applies(self, result: Result, models: PyhfModels) -> bool:
        if result.likelihood != "pyhf":
            return False
        return all(len(c.init) <= self.max_parameters for c in models.workspaces(result))

    def values(self, result: Result, signals_fb: np.ndarray) -> dict:
        return smodels_values(self.module, result, signals_fb)


def _copy_prediction(p: TheoryPrediction) -> TheoryPrediction:
    return dataclasses.replace(p, statistics=None)


def synthetic_signal(result: Result, seed: int = 7) -> np.ndarray:
    """0.3 x the expected UL in up to four SR data sets modelled by the JSON files."""
    rng = np.random.default_rng(seed)
    named = {c.smodels for w in result.pyhf if not w.full for c in w.channels}
    candidates = [
        i
        for i, d in enumerate(result.datasets)
        if (d.data_id or d.dataset_id) in named and d.region_type == "SR"
    ]
    chosen = rng.choice(candidates, size=min(4, len(candidates)), replace=False)
    signals = np.zeros(len(result.datasets))
    for i in chosen:
        signals[i] = 0.3 * (result.datasets[i].expected_upper_limit_fb or 1.0)
    return signals


def _numpy_model(result: Result, compiled, signals_fb: np.ndarray, apriori: bool):  # noqa: ANN001, ANN202
    """pyhf's own model (numpy backend, SciPy optimiser) of one patched workspace."""
    import pyhf

    from protomodels.statistics.full_likelihood import MODIFIER_SETTINGS
    from protomodels.statistics.pyhf_patch import apriori_spec, patched_spec

    ids = [d.data_id or d.dataset_id for d in result.datasets]
    signals = dict(zip(ids, np.asarray(signals_fb) * result.lumi_ifb, strict=True))
    spec = patched_spec(
        copy.deepcopy(compiled.source), compiled.plan, signals, result.signal_uncertainty
    )
    workspace = pyhf.Workspace(apriori_spec(spec) if apriori else spec)
    model = workspace.model(modifier_settings=MODIFIER_SETTINGS)
    return model, workspace.data(model)


def _pyhf_limit(model, data, guess: float) -> float:  # noqa: ANN001
    """mu where pyhf.infer.hypotest's CLs (q~, asymptotic) is 0.05: brentq, rtol 1e-4."""
    import pyhf
    from scipy.optimize import brentq

    bounds = model.config.suggested_bounds()
    hi = max(10.0, 40.0 * guess if math.isfinite(guess) else 10.0)
    bounds[model.config.poi_index] = (0.0, hi)

    def f(mu: float) -> float:
        cls = pyhf.infer.hypotest(mu, data, model, test_stat="qtilde", par_bounds=bounds)
        return float(cls) - 0.05

    g = guess if math.isfinite(guess) and guess > 0 else 1.0
    for lo, up in ((0.7 * g, 1.4 * g), (0.2 * g, 5.0 * g), (0.02 * g, 20.0 * g)):
        try:
            if f(lo) > 0 > f(up):
                return brentq(f, lo, up, rtol=1e-4)
        except (ValueError, FloatingPointError):
            continue
    return math.nan


def our_fits(result: Result, signals: np.ndarray, models: PyhfModels) -> tuple:
    """Our likelihood of one signal with what the evaluation asks of it (nll at mu = 0 and 1,
    mu-hat, observed and expected limits), and the seconds it took."""
    start = time.perf_counter()
    lik = PyhfLikelihood(result, signals, models=models)
    lik.nll(np.asarray([1.0, 0.0]))
    lik.maximum()
    lik.upper_limit()
    lik.upper_limit(expected=True)
    return lik, time.perf_counter() - start


def against_pyhf(result: Result, lik: PyhfLikelihood, signals: np.ndarray) -> dict | None:
    """pyhf's own numbers (numpy backend, SciPy) on the workspace our likelihood chose:
    max |d(-2 ln L)| at mu = 0, 0.5, 1, 2, relative d mu-hat (floor 0.05), relative d of the
    observed and expected limits, and pyhf's seconds (both fits and both limits)."""
    import pyhf

    used = lik.workspace
    if used is None:
        return None
    ul, ul_exp = lik.upper_limit(), lik.upper_limit(expected=True)
    mus = np.asarray([0.0, 0.5, 1.0, 2.0])
    ours_nll = lik.nll(mus)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        model, data = _numpy_model(result, used, signals, apriori=False)
        ref = [
            float(pyhf.infer.mle.fixed_poi_fit(m, data, model, return_fitted_val=True)[1])
            for m in (0.0, 1.0)
        ]
        best, _ = pyhf.infer.mle.fit(data, model, return_fitted_val=True)
        ref_ul = _pyhf_limit(model, data, ul)
        model_e, data_e = _numpy_model(result, used, signals, apriori=True)
        ref_ule = _pyhf_limit(model_e, data_e, ul_exp)
        seconds = time.perf_counter() - start
        ref += [
            float(pyhf.infer.mle.fixed_poi_fit(m, data, model, return_fitted_val=True)[1])
            for m in (0.5, 2.0)
        ]
    ref_nll = np.asarray([ref[0], ref[2], ref[1], ref[3]])
    mu_ref = float(best[model.config.poi_index])
    return {
        "seconds": seconds,
        "d2nll": float(np.max(np.abs(2 * ours_nll - ref_nll))),
        "dmu": abs(lik.mu_hat - mu_ref) / max(abs(mu_ref), 0.05),
        "dul": abs(ul / ref_ul - 1),
        "dule": abs(ul_exp / ref_ule - 1),
    }


def _report(label: str, n_par: str, ours_t: list, diffs: list[dict], n: int) -> bool:
    """One line: warm ms ours | pyhf, the largest differences, ok or MISS (the goals)."""
    worst = {k: max((d[k] for d in diffs), default=math.nan) for k in ("d2nll", "dmu")}
    ul = [d[k] for d in diffs for k in ("dul", "dule")]
    ref_ms = 1e3 * np.median([d["seconds"] for d in diffs]) if diffs else math.nan
    line = (
        f"  {label:<34} {n_par:>12} par  {1e3 * np.median(ours_t):7.2f} ms | "
        f"{ref_ms:8.0f} ms   d2nll {worst['d2nll']:.2g}  dmu {worst['dmu']:.2g}  "
        f"dUL {max((d['dul'] for d in diffs), default=math.nan):.2g} / "
        f"{max((d['dule'] for d in diffs), default=math.nan):.2g}  ({n} signals, "
        f"{len(diffs)} vs pyhf)"
    )
    bad = (
        not diffs or worst["d2nll"] > 0.05 or worst["dmu"] > 0.02
        or not all(x <= 0.02 for x in ul)
    )
    print(line + ("  MISS" if bad else "  ok"))
    return bad


def _pyhf_results(db, heavy: bool):  # noqa: ANN001, ANN202
    for result in db.results:
        if result.likelihood != "pyhf" or result.covariance is not None:
            continue
        if result.result_id in HEAVY and not heavy:
            print(f"  {result.result_id}: skipped (--heavy)")
            continue
        if result.result_id in SKIPPED:
            print(f"  {result.result_id}: skipped (--skip)")
            continue
        yield result


def agreement_section(db, heavy: bool, n_signals: int) -> list[str]:  # noqa: ANN001
    """Per pyhf result and workspace: ours (JAX Newton) vs pyhf's own (numpy + SciPy)."""
    import pyhf

    print(
        "\n== 2b. every pyhf result, synthetic signals: ours (JAX) vs pyhf numpy + SciPy\n"
        "  columns: warm ms per protomodel (nll at mu=0,1, mu-hat, obs+exp limits) ours | pyhf;"
        " max |d(-2lnL)| at mu=0,0.5,1,2; max rel. d mu-hat; max rel. d mu_UL obs / exp"
    )
    pyhf.set_backend("numpy")
    misses = []
    models = PyhfModels()
    for result in _pyhf_results(db, heavy):
        start = time.perf_counter()
        compiled = models.workspaces(result)
        build = time.perf_counter() - start
        n_sig = n_signals if max(len(c.init) for c in compiled) < 60 else min(n_signals, 2)
        ours_t, diffs, fails = [], [], []
        for seed in range(n_sig):
            rng = np.random.default_rng(seed)
            signals = synthetic_signal(result, seed) * rng.uniform(0.2, 3.0)
            for attempt in range(2 if seed == 0 else 1):  # the first call compiles
                lik, elapsed = our_fits(result, signals, models)
                if seed == 0 and attempt == 0:
                    print(f"  {result.result_id}: build {build:.1f} s, first call (compile) "
                          f"{elapsed:.1f} s")
            ours_t.append(elapsed)
            if lik.errors:
                fails.append("; ".join(lik.errors))
            diff = against_pyhf(result, lik, signals)
            if diff is not None:
                diffs.append(diff)
        n_par = "/".join(str(len(c.init)) for c in compiled)
        if _report(result.result_id, n_par, ours_t, diffs, n_sig):
            misses.append(result.result_id)
        for f in dict.fromkeys(fails):
            print(f"      -> {f}")
    return misses


def random_section(  # noqa: PLR0913
    db,  # noqa: ANN001
    heavy: bool,
    n_models: int,
    max_draws: int,
    ref_seconds: float,
    seed: int,
) -> list[str]:
    """Random protomodels that reach each pyhf result (a combined pyhf prediction with
    0.05 <= r_exp <= 20 from our fit), drawn in turn from the families of ``family_protomodel``:
    ours vs pyhf numpy on their signals."""
    import pyhf

    from protomodels.evaluation import EvaluationSettings
    from protomodels.theory.particles import load_template
    from protomodels.theory.sampling import FAMILIES, family_protomodel

    print(
        f"\n== 2c. random protomodels (seed {seed}; families: {', '.join(FAMILIES)}) reaching"
        " each pyhf result (0.05 <= r_exp"
        f" <= 20), up to {n_models} per result from at most {max_draws} draws; pyhf numpy on"
        f" them for up to {ref_seconds:.0f} s per result"
    )
    pyhf.set_backend("numpy")
    template = load_template(shared_dir() / "data" / "templates" / "protomodel_template.slha")
    predictor = Predictor(db, settings=EvaluationSettings().predictions)
    predictor.prepare_grids(workers=2)  # every grid stacked once: no recompiles on the way
    wanted = {r.result_id: r for r in _pyhf_results(db, heavy)}
    models = PyhfModels()
    reached: dict[str, list[np.ndarray]] = {rid: [] for rid in wanted}
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    draws = 0
    while draws < max_draws and any(len(v) < n_models for v in reached.values()):
        draws += 1
        model = family_protomodel(rng, template, FAMILIES[draws % len(FAMILIES)])
        for p in predictor.predict(model):
            rid = p.result_id
            if rid not in wanted or p.data_type != "combined" or len(reached[rid]) >= n_models:
                continue
            signals = np.asarray(p.signals_fb, dtype=float)
            lik = PyhfLikelihood(wanted[rid], signals, models=models)
            r_exp = lik.upper_limit(expected=True)
            total = float(signals.sum())
            if total > 0 and math.isfinite(r_exp) and 0.05 <= 1.0 / r_exp <= 20.0:
                reached[rid].append(signals)
    print(f"  {draws} random protomodels drawn and predicted in {time.perf_counter() - start:.0f}"
          " s (with the compiles of the first fits)")
    misses = []
    for rid, signal_list in reached.items():
        result = wanted[rid]
        if not signal_list:
            print(f"  {rid:<34} no random protomodel reaches it")
            continue
        ours_t, diffs, fails, spent = [], [], [], 0.0
        our_fits(result, signal_list[0], models)  # warm: every kernel compiled
        for signals in signal_list:
            lik, elapsed = our_fits(result, signals, models)
            ours_t.append(elapsed)
            if lik.errors:
                fails.append("; ".join(lik.errors))
            if spent < ref_seconds:
                diff = against_pyhf(result, lik, signals)
                if diff is not None:
                    diffs.append(diff)
                    spent += diff["seconds"]
        n_par = "/".join(str(len(c.init)) for c in models.workspaces(result))
        if _report(rid, n_par, ours_t, diffs, len(signal_list)):
            misses.append(f"random/{rid}")
        for f in list(dict.fromkeys(fails))[:3]:
            print(f"      -> {f}")
    return misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smodels", help="folder holding the smodels 3.0.3 package")
    parser.add_argument("--heavy", action="store_true", help="include ATLAS-SUSY-2018-16")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--skip-protomodels", action="store_true")
    parser.add_argument("--signals", type=int, default=5, help="synthetic signals per result")
    parser.add_argument("--skip-synthetic", action="store_true", help="skip section 2b")
    parser.add_argument("--random", type=int, default=50,
                        help="random protomodels per pyhf result (section 2c; 0: skip)")
    parser.add_argument("--max-draws", type=int, default=20000,
                        help="random protomodels drawn at most (section 2c)")
    parser.add_argument("--ref-seconds", type=float, default=600.0,
                        help="pyhf numpy time per result in section 2c (the rest: ours only)")
    parser.add_argument("--seed", type=int, default=1, help="seed of section 2c")
    parser.add_argument("--skip", action="append", default=[],
                        help="leave this result out of sections 2b and 2c (repeatable)")
    parser.add_argument(
        "--oracle-max-parameters",
        type=int,
        default=ORACLE_MAX_PARAMETERS,
        help="run SModelS only on workspaces with at most this many parameters",
    )
    args = parser.parse_args()
    SKIPPED.update(args.skip)
    warnings.filterwarnings("ignore")
    module = load_smodels(args.smodels)
    oracle = None if module is None else Oracle(module, args.oracle_max_parameters)
    if oracle is None:
        print("SModelS not importable: section 2 shows ours only (see --smodels)")
    db = open_database(build=False, workspaces=True)
    predictor = Predictor(db)
    if not args.skip_reference:
        reference_section(db, predictor, PyhfModels(), oracle)
    misses = [] if args.skip_protomodels else protomodel_section(db, predictor, oracle, args.heavy)
    if not args.skip_synthetic:
        misses += agreement_section(db, args.heavy, args.signals)
    if args.random:
        misses += random_section(
            db, args.heavy, args.random, args.max_draws, args.ref_seconds, args.seed
        )
    print(f"\n{len(misses)} goal misses" + ("".join(f"\n  {m}" for m in misses)))


if __name__ == "__main__":
    main()
