"""Theory predictions on the subset store (hand-checkable models) and, marked slow, against the
SModelS 3.0.3 reference JSON on the full store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import protomodels.database as pdb
from protomodels.theory import Decay, Predictor, Protomodel, predictions_frame
from protomodels.theory.interpolation import Triangulation
from protomodels.theory.xsec import load_tables

STOP, SBOTTOM, N1 = 1000006, 1000005, 1000022
REFERENCE_KEYS = {"analysis", "dataset", "dataType", "txnames", "xsec_fb", "r_obs", "r_exp"}


def table_value(shared: Path, name: str, mass: float) -> float:
    """sigma (fb) at a node of a pb table with a 'GeV' column (stop, gluino, squark)."""
    for line in (shared / "data" / "xsec" / name).read_text().splitlines():
        tokens = line.split()
        if tokens and not tokens[0].startswith("#") and float(tokens[0]) == mass:
            assert tokens[1] == "GeV"
            return float(tokens[2]) * 1000.0
    raise AssertionError(f"{mass} not in {name}")


@pytest.fixture(scope="module")
def database(subset_store: Path) -> pdb.Database:
    return pdb.open(subset_store, build=False, workspaces=False)


@pytest.fixture(scope="module")
def predictor(database: pdb.Database, shared: Path) -> Predictor:
    return Predictor(database, tables=load_tables(shared))


@pytest.fixture(scope="module")
def stop13(shared: Path) -> float:
    return table_value(shared, "xsecstop13.txt", 600.0)


def stop_model(
    xsecs: dict | None, decays: tuple[Decay, ...] = (Decay(N1, (6,), 1.0),), **kw
) -> Protomodel:  # noqa: ANN003
    return Protomodel(masses={STOP: 600.0, N1: 100.0}, decays={STOP: decays}, xsecs=xsecs, **kw)


def ul_grid_value(
    database: pdb.Database, result_id: str, txname: str, kind: str, point: list[float]
) -> float:
    result = database.result(result_id)
    tx = next(t for d in result.datasets for t in d.topologies if t.name == txname)
    grid = tx.grids[kind]
    return float(Triangulation(grid.points).interpolate(grid.values, np.array([point]))[0])


def only(predictions: list, txname: str):  # noqa: ANN001, ANN201
    found = [p for p in predictions if p.txnames == (txname,)]
    assert len(found) == 1, [(p.result_id, p.txnames) for p in predictions]
    return found[0]


def test_stop_t2tt_prediction(predictor: Predictor, database: pdb.Database, stop13: float) -> None:
    assert stop13 == pytest.approx(205.0)  # '600. GeV 0.205E+00' pb
    predictions = predictor.predict(stop_model({(-STOP, STOP): {13.0: stop13}}))
    assert [(p.result_id, p.txnames) for p in predictions] == [("CMS-SUS-19-006", ("T2tt",))]
    p = predictions[0]
    assert p.analysis == "CMS-SUS-19-006"
    assert p.dataset is None and p.data_type == "upperLimit"
    assert p.sqrts_tev == 13.0
    assert p.xsec_fb == pytest.approx(stop13 * 1.0, rel=1e-9)
    point = [600.0, 100.0, 600.0, 100.0]
    assert p.masses == tuple(point)
    ul = ul_grid_value(database, "CMS-SUS-19-006", "T2tt", "upper_limit", point)
    eul = ul_grid_value(database, "CMS-SUS-19-006", "T2tt", "expected_upper_limit", point)
    assert np.isfinite(ul) and np.isfinite(eul)
    assert p.upper_limit_fb == pytest.approx(ul, rel=1e-12)
    assert p.expected_upper_limit_fb == pytest.approx(eul, rel=1e-12)
    assert p.r_obs == pytest.approx(stop13 / ul, rel=1e-12)
    assert p.r_exp == pytest.approx(stop13 / eul, rel=1e-12)


def test_reference_tables_give_the_same_prediction(predictor: Predictor, stop13: float) -> None:
    """No explicit xsecs: the stop table at 600 GeV (a node), times the multiplier."""
    plain = only(predictor.predict(stop_model(None)), "T2tt")
    assert plain.xsec_fb == pytest.approx(stop13, rel=1e-9)
    doubled = only(predictor.predict(stop_model(None, ssm={(-STOP, STOP): 2.0})), "T2tt")
    assert doubled.xsec_fb == pytest.approx(2 * stop13, rel=1e-9)
    assert doubled.upper_limit_fb == plain.upper_limit_fb


def test_branching_ratios_split_between_txnames(
    predictor: Predictor, database: pdb.Database, stop13: float
) -> None:
    """stop -> t N1 (0.6) / c N1 (0.4): T2tt gets 0.36 sigma, T2 (c is a jet) 0.16 sigma."""
    model = stop_model(
        {(-STOP, STOP): {13.0: stop13}}, (Decay(N1, (6,), 0.6), Decay(N1, (4,), 0.4))
    )
    predictions = predictor.predict(model)
    t2tt, t2 = only(predictions, "T2tt"), only(predictions, "T2")
    assert t2tt.xsec_fb == pytest.approx(0.36 * stop13, rel=1e-9)
    assert t2.xsec_fb == pytest.approx(0.16 * stop13, rel=1e-9)
    point = [600.0, 100.0, 600.0, 100.0]
    assert t2.upper_limit_fb == pytest.approx(
        ul_grid_value(database, "CMS-SUS-19-006", "T2", "upper_limit", point), rel=1e-12
    )
    assert len(predictions) == 2
    # sorted by r_obs, largest first
    assert predictions[0].r_obs >= predictions[1].r_obs


def test_model_above_all_grids(predictor: Predictor) -> None:
    model = Protomodel(
        masses={STOP: 5000.0, N1: 100.0},
        decays={STOP: (Decay(N1, (6,), 1.0),)},
        xsecs={(-STOP, STOP): {13.0: 10.0, 8.0: 2.0}},
    )
    assert predictor.predict(model) == []


def sbottom_model() -> Protomodel:
    return Protomodel(
        masses={SBOTTOM: 500.0, N1: 100.0},
        decays={SBOTTOM: (Decay(N1, (5,), 1.0),)},
        xsecs={(-SBOTTOM, SBOTTOM): {13.0: 500.0, 8.0: 100.0}},
    )


def test_sqrts_pairing(predictor: Predictor, database: pdb.Database) -> None:
    """T2bb at 13 TeV (CMS-SUS-19-006) gets the 13 TeV weight, at 8 TeV (ATLAS-SUSY-2013-05)
    the 8 TeV one."""
    predictions = {p.result_id: p for p in predictor.predict(sbottom_model())}
    assert set(predictions) == {"CMS-SUS-19-006", "ATLAS-SUSY-2013-05"}
    assert predictions["CMS-SUS-19-006"].xsec_fb == pytest.approx(500.0)
    assert predictions["ATLAS-SUSY-2013-05"].xsec_fb == pytest.approx(100.0)
    assert predictions["ATLAS-SUSY-2013-05"].sqrts_tev == 8.0
    point = [500.0, 100.0, 500.0, 100.0]
    assert predictions["ATLAS-SUSY-2013-05"].upper_limit_fb == pytest.approx(
        ul_grid_value(database, "ATLAS-SUSY-2013-05", "T2bb", "upper_limit", point), rel=1e-12
    )
    # that result has no expected limits
    assert predictions["ATLAS-SUSY-2013-05"].r_exp is None


def test_results_restriction(database: pdb.Database, shared: Path) -> None:
    chosen = [database.result("ATLAS-SUSY-2013-05")]
    restricted = Predictor(database, tables=load_tables(shared), results=chosen)
    predictions = restricted.predict(sbottom_model())
    assert [p.result_id for p in predictions] == ["ATLAS-SUSY-2013-05"]
    nothing = Predictor(database, tables=load_tables(shared), results=[])
    assert nothing.predict(sbottom_model()) == []


def snapshot(predictions: list) -> list:  # noqa: ANN001
    return [
        (p.result_id, p.dataset, p.txnames, p.xsec_fb, p.upper_limit_fb,
         p.expected_upper_limit_fb, p.masses,
         None if p.signals_fb is None else tuple(p.signals_fb))
        for p in predictions
    ]  # fmt: skip


def test_caches_do_not_change_numbers(database: pdb.Database, shared: Path, stop13: float) -> None:
    predictor = Predictor(database, tables=load_tables(shared))
    models = [
        stop_model({(-STOP, STOP): {13.0: stop13}}, (Decay(N1, (6,), 0.6), Decay(N1, (4,), 0.4))),
        sbottom_model(),
        Protomodel.from_slha(shared / "data" / "reference" / "random_1_01.slha"),
    ]
    first = [snapshot(predictor.predict(m)) for m in models]
    assert all(first)
    again = [snapshot(predictor.predict(m)) for m in reversed(models)][::-1]
    assert again == first
    fresh = [snapshot(Predictor(database, tables=load_tables(shared)).predict(m)) for m in models]
    assert fresh == first


def test_hscp_efficiency_prediction(predictor: Predictor, database: pdb.Database) -> None:
    """A stable stau pair (8 TeV) gives an efficiency-map prediction of the HSCP result: the
    signal region with the largest expected r (no covariance, no pyhf: no combination)."""
    model = Protomodel(
        masses={1000015: 400.0, N1: 100.0},
        decays={},
        xsecs={(-1000015, 1000015): {13.0: 5.0, 8.0: 1.0}},
        allow_stable=True,
    )
    predictions = predictor.predict(model)
    assert [p.result_id for p in predictions] == ["CMS-EXO-13-006-eff-trim"]
    p = predictions[0]
    assert p.data_type == "efficiencyMap" and p.txnames == ("THSCPM1b",)
    assert 0 < p.xsec_fb <= 1.0  # sigma(8 TeV) x efficiency
    assert p.signals_fb is not None
    datasets = database.result("CMS-EXO-13-006-eff-trim").datasets
    r_exp = [s / d.expected_upper_limit_fb for s, d in zip(p.signals_fb, datasets, strict=True)]
    best = datasets[int(np.argmax(r_exp))]
    assert p.dataset == best.data_id
    assert p.xsec_fb == pytest.approx(float(p.signals_fb[int(np.argmax(r_exp))]))
    assert p.expected_upper_limit_fb == best.expected_upper_limit_fb
    assert p.upper_limit_fb == best.upper_limit_fb


def test_predictions_frame_and_json(predictor: Predictor, stop13: float) -> None:
    model = stop_model(
        {(-STOP, STOP): {13.0: stop13}}, (Decay(N1, (6,), 0.6), Decay(N1, (4,), 0.4))
    )
    predictions = predictor.predict(model)
    frame = predictions_frame(predictions)
    assert REFERENCE_KEYS <= set(frame.columns)
    assert len(frame) == len(predictions)
    assert list(frame["txnames"]) == [",".join(p.txnames) for p in predictions]
    assert list(frame["xsec_fb"]) == [p.xsec_fb for p in predictions]
    for p in predictions:
        record = p.to_json()
        assert set(record) == REFERENCE_KEYS
        assert record["analysis"] == "CMS-SUS-19-006"
        assert record["dataType"] == "upperLimit" and record["dataset"] is None
        assert record["r_obs"] == pytest.approx(p.xsec_fb / p.upper_limit_fb)
        json.dumps(record)


def test_json_keys_are_reference_keys(shared: Path) -> None:
    reference = json.loads((shared / "data" / "reference" / "random_1_01.json").read_text())
    for record in reference["predictions"]:
        assert REFERENCE_KEYS <= set(record)


# --------------------------------------------------------------------------- reference (slow)


def matching(predictions: list, ref: dict) -> list:  # noqa: ANN001
    if ref["dataType"] == "upperLimit":
        return [
            p for p in predictions
            if p.analysis == ref["analysis"] and p.data_type == "upperLimit"
            and sorted(p.txnames) == sorted(ref["txnames"])
        ]  # fmt: skip
    return [p for p in predictions if p.analysis == ref["analysis"] and p.data_type != "upperLimit"]


@pytest.mark.slow
def test_reference_predictions(shared: Path) -> None:
    database = pdb.open(workspaces=False)
    predictor = Predictor(database, tables=load_tables(shared))
    deviations = []
    for name in ("random_1_01", "random_1_02", "random_1_04"):
        folder = shared / "data" / "reference"
        reference = json.loads((folder / f"{name}.json").read_text())["predictions"]
        predictions = predictor.predict(Protomodel.from_slha(folder / f"{name}.slha"))
        for ref in reference:
            found = matching(predictions, ref)
            assert found, (name, ref["analysis"], ref["dataType"], ref["txnames"])
            deviations.append(min(abs(p.xsec_fb / ref["xsec_fb"] - 1) for p in found))
    deviations = np.asarray(deviations)
    assert len(deviations) == 18 + 43 + 5
    assert (deviations < 0.05).mean() >= 0.95, np.sort(deviations)[-10:]
    assert np.median(deviations) < 0.01


def _summary(predictions: list) -> list:
    return sorted(
        (p.result_id, p.dataset, p.data_type, p.txnames, p.xsec_fb, p.upper_limit_fb,
         p.expected_upper_limit_fb, None if p.signals_fb is None else tuple(p.signals_fb))
        for p in predictions
    )


@pytest.mark.parametrize("factor", [0.37, 1.0, 2.5])
def test_rescale_equals_a_new_prediction_pass(predictor: Predictor, factor: float) -> None:
    """Scaling the predictions of a model by mu equals predicting the model scaled by mu (same
    predictions, sigma x BR (x eff) times mu to rounding, the same limits)."""
    model = Protomodel(
        masses={STOP: 700.0, SBOTTOM: 900.0, N1: 200.0},
        decays={STOP: (Decay(N1, (6,), 1.0),), SBOTTOM: (Decay(N1, (5,), 1.0),)},
    )
    scaled = predictor.rescale(model, predictor.predict(model), factor)
    assert scaled is not None
    again = predictor.predict(model.scaled(factor))
    ours, theirs = _summary(scaled), _summary(again)
    assert [row[:4] for row in ours] == [row[:4] for row in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a[4] == pytest.approx(b[4], rel=1e-12)
        assert a[5:7] == b[5:7]
        if a[7] is not None:
            assert np.allclose(a[7], b[7], rtol=1e-12, atol=0)


def test_rescale_refuses_when_the_sigmacut_selection_changes(predictor: Predictor) -> None:
    """A channel just above the sigmacut would be dropped by a scaled model: no shortcut."""
    tiny = predictor.settings.sigmacut * 1.5
    model = stop_model({(-STOP, STOP): {13.0: tiny, 8.0: tiny / 4}})
    predictions = predictor.predict(model)
    assert predictor.rescale(model, predictions, 0.5) is None
    assert predictor.rescale(model, predictions, 1.2) is not None


def test_prepare_grids_stacks_every_grid_once(database: pdb.Database, shared: Path) -> None:
    """After prepare_grids, predictions build no new triangulation and no new stack."""
    predictor = Predictor(database, tables=load_tables(shared))
    predictor.prepare_grids()
    stacks = {d: s.device for d, s in predictor.grid_index._stacks.items()}
    assert stacks and all(v is not None for v in stacks.values())
    count = len(predictor.grid_index.entries)
    model = Protomodel(
        masses={STOP: 700.0, SBOTTOM: 900.0, N1: 200.0},
        decays={STOP: (Decay(N1, (6,), 1.0),), SBOTTOM: (Decay(N1, (5,), 1.0),)},
    )
    first = _summary(predictor.predict(model))
    assert len(predictor.grid_index.entries) == count
    assert all(predictor.grid_index._stacks[d].device is v for d, v in stacks.items())
    assert first == _summary(Predictor(database, tables=load_tables(shared)).predict(model))
