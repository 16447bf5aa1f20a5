"""Toy databases (protomodels.campaigns.toys): reproducible draws with the right moments, the
overlay file, applying a toy, and the ``--toy`` option and ``toys make`` command."""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

import protomodels.database as pdb
from protomodels.campaigns.toys import (
    ToyDatabaseMismatchError,
    ToyError,
    ToyMaker,
    ToyReferenceError,
    apply_toy,
    count_toys,
    load_toy,
    make_toy,
    make_toys,
    observed_toy,
    parse_toy_reference,
    read_toy,
    shifted_upper_limits,
    write_toys,
)
from protomodels.cli import cli
from protomodels.database.database import Database
from protomodels.database.records import Axis, DataSet, Grid, Topology
from protomodels.database.records import Result as DbResult
from protomodels.theory import Decay, Protomodel

ENV = {"COLUMNS": "400", "PROTOMODELS_DATABASE": None}
PYHF = "ATLAS-SUSY-2018-14-eff"  # three workspaces: SRee, SRmm and their combination with SRem
REGIONS = "ATLAS-SUSY-2019-08-eff"  # single regions (its pyhf JSON is missing)
UL = "CMS-SUS-19-006"  # upper-limit maps with expected limits
STOP, N1, C1, N2 = 1000006, 1000022, 1000024, 1000023


# -- a constructed database ----------------------------------------------------------------------
def _dataset(name: str, b: float, sigma: float, n: float, m3: float | None = None) -> DataSet:
    return DataSet(
        dataset_id=name, data_id=name, data_type="efficiencyMap", observed_n=n, expected_bg=b,
        bg_error=sigma, upper_limit_fb=1.0, expected_upper_limit_fb=1.0, third_moment=m3,
        region_type="SR", aggregated=(), topologies=(),
    )


def _result(result_id: str, datasets: list[DataSet], **kw: object) -> DbResult:
    fields = dict(
        result_id=result_id, analysis_id=result_id, path=f"13TeV/X/{result_id}",
        collaboration="CMS", sqrts_tev=13.0, lumi_ifb=100.0, data_type="efficiencyMap",
        likelihood="single_region", fallback=None, covariance=None, dataset_order=None, pyhf=(),
        include_crs=False, signal_uncertainty=None, signature="prompt", pretty_name=None,
        url=None, arxiv=None, publication=None, supersedes=None, superseded_by=None,
        private=False, preliminary=False, lifetime_lengths={}, extra={},
        datasets=tuple(datasets),
    )
    fields.update(kw)
    return DbResult(**fields)


COV = np.array([[100.0, 30.0, -10.0], [30.0, 64.0, 12.0], [-10.0, 12.0, 36.0]])
B3 = (200.0, 150.0, 90.0)
SKEW_COV = np.array([[100.0, 20.0], [20.0, 49.0]])
SKEW_M3 = (500.0, 150.0)


def constructed(version: str = "test-1", checksum: str = "abc123") -> Database:
    """One region alone, three regions with a covariance, two with third moments, and an
    upper-limit map with its expected limits."""
    alone = _result("EM-ALONE", [_dataset("SR1", 60.0, 6.0, 70.0)])
    sl = _result(
        "EM-COV", [_dataset(f"R{i}", b, 1.0, b) for i, b in enumerate(B3)],
        likelihood="covariance", covariance=COV, dataset_order=("R0", "R1", "R2"),
    )
    skew = _result(
        "EM-SKEW",
        [_dataset("S0", 300.0, 10.0, 290.0, SKEW_M3[0]), _dataset("S1", 120.0, 7.0, 125.0,
                                                                  SKEW_M3[1])],
        likelihood="covariance", covariance=SKEW_COV, dataset_order=("S0", "S1"),
    )
    points = np.array([[300.0, 100.0], [400.0, 100.0], [400.0, 200.0], [500.0, 150.0]])
    grids = {
        "upper_limit": Grid("upper_limit", points.copy(), np.array([5.0, 3.0, 4.0, 2.0])),
        "expected_upper_limit": Grid("expected_upper_limit", points,
                                     np.array([4.0, 2.5, 3.5, 1.5])),
    }
    topology = Topology(
        name="T2", constraint=None, constraint_text="", condition_text=(),  # type: ignore[arg-type]
        axes=(Axis(1, "mass"), Axis(2, "mass")), grids=grids, validated="True", source="T2.txt",
    )
    ul_ds = DataSet(
        dataset_id="data", data_id=None, data_type="upperLimit", observed_n=None,
        expected_bg=None, bg_error=None, upper_limit_fb=None, expected_upper_limit_fb=None,
        third_moment=None, region_type="SR", aggregated=(), topologies=(topology,),
    )
    ul = _result("UL-MAP", [ul_ds], data_type="upperLimit", likelihood="truncated_gaussian")
    meta = {"database_version": version, "source_checksum": checksum}
    return Database(Path("constructed.sqlite"), meta, (alone, sl, skew, ul), ())


@pytest.fixture(scope="module")
def db() -> Database:
    return constructed()


@pytest.fixture(scope="module")
def subset(subset_store: Path) -> Database:
    return pdb.open(subset_store, build=False)


def _run(*args: str, database: Path) -> Result:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CliRunner().invoke(cli, ["--database", str(database), *args], env=ENV)


def _stop_model() -> Protomodel:
    return Protomodel(masses={STOP: 650.0, N1: 250.0}, decays={STOP: (Decay(N1, (6,), 1.0),)},
                      ssm={(-STOP, STOP): 1.0})


def _wh_model() -> Protomodel:
    return Protomodel(
        masses={C1: 400.0, N2: 400.0, N1: 100.0},
        decays={C1: (Decay(N1, (24,), 1.0),), N2: (Decay(N1, (25,), 1.0),)},
    )


# -- reproducibility ----------------------------------------------------------------------------
def test_a_toy_is_rebuilt_from_its_seed(subset: Database, tmp_path: Path) -> None:
    toys = make_toys(subset, 3, seed=11)
    path = write_toys(tmp_path / "toys.sqlite", toys)
    assert count_toys(path) == 3
    stored = read_toy(path, 2)
    assert stored == toys[2] == make_toy(subset, 11, 2)
    assert make_toys(subset, 5, seed=11)[2] == toys[2]  # independent of the number of toys
    assert make_toys(subset, 1, seed=11, start=1)[0] == toys[1]
    assert toys[0] != toys[1] and make_toy(subset, 12, 2) != toys[2]
    assert stored.origin == f"{path}:2" and stored.seed == 11 and stored.index == 2
    # the per-toy streams are the children of SeedSequence(seed).spawn(n)
    assert np.random.SeedSequence(11).spawn(3)[2].spawn_key == (2,)
    # what is drawn: every region, every UL map with an expected limit, every workspace
    regions = {r.result_id: {d.dataset_id for d in r.datasets} for r in subset.results
               if r.data_type == "efficiencyMap"}
    assert {k: set(v) for k, v in stored.observed.items()} == regions
    assert set(stored.ul_shifts) == {"CMS-SUS-19-006", "CMS-SUS-20-004"}
    assert set(stored.pyhf_observations) == {PYHF}


def test_write_toys_appends_only_toys_of_the_same_kind(db: Database, tmp_path: Path) -> None:
    path = write_toys(tmp_path / "t.sqlite", make_toys(db, 2, seed=1))
    write_toys(path, make_toys(db, 2, seed=1, start=2))
    assert count_toys(path) == 4
    with pytest.raises(ToyReferenceError, match="another seed"):
        write_toys(path, make_toys(db, 1, seed=2))
    with pytest.raises(ToyReferenceError, match="another method"):
        write_toys(path, make_toys(db, 1, seed=1, bg_scale=2.0))
    with pytest.raises(ToyError, match="not stored"):
        write_toys(tmp_path / "o.sqlite", [observed_toy(db)])


# -- the moments of the draws -------------------------------------------------------------------
@pytest.mark.parametrize("distribution", ["gaussian", "lognormal"])
def test_region_counts_have_the_right_mean_and_variance(db: Database, distribution: str) -> None:
    """n ~ Poisson(lambda), lambda of mean b and variance sigma^2: mean b, variance b + s^2."""
    maker = ToyMaker(db, distribution=distribution)
    n = np.array([maker.toy(2024, i).observed["EM-ALONE"]["SR1"] for i in range(2000)])
    b, sigma = 60.0, 6.0
    variance = b + sigma**2
    assert abs(n.mean() - b) < 4 * math.sqrt(variance / len(n))
    assert abs(n.var(ddof=1) - variance) < 4 * variance * math.sqrt(2 / (len(n) - 1))


def test_correlated_draws_reproduce_the_covariance(db: Database) -> None:
    maker = ToyMaker(db)
    counts = np.array([
        [maker.toy(7, i).observed["EM-COV"][f"R{k}"] for k in range(3)] for i in range(4000)
    ], dtype=float)
    expected = COV + np.diag(B3)  # Poisson on top of the background covariance
    assert np.all(np.abs(counts.mean(0) - B3) < 4 * np.sqrt(np.diag(expected) / len(counts)))
    found = np.cov(counts.T)
    d = np.diag(expected)
    error = np.sqrt((np.outer(d, d) + expected**2) / len(counts))
    assert np.all(np.abs(found - expected) < 4 * error), (found, expected)
    # the correlations come out, not only the variances
    assert found[0, 1] > 0 > found[0, 2]


def test_skewed_backgrounds_have_the_data_sets_moments(db: Database) -> None:
    """With third moments, lambda = A + theta + C theta^2 / B^2, theta ~ N(0, V) (the
    simplified likelihood's own model): mean b, covariance Sigma, third moments m3."""
    maker = ToyMaker(db)
    plan = next(p for p in maker.plans if p.result_id == "EM-SKEW").correlated
    rng = np.random.default_rng(5)
    theta = rng.standard_normal((400_000, 2)) @ plan.cholesky.T
    lam = plan.offset + theta + plan.c_over_b2 * theta**2
    assert np.allclose(lam.mean(0), [300.0, 120.0], atol=0.1)
    assert np.allclose(np.cov(lam.T), SKEW_COV, rtol=0.02, atol=1.0)
    third = ((lam - lam.mean(0)) ** 3).mean(0)
    assert np.allclose(third, SKEW_M3, rtol=0.1)
    counts = np.array([maker.toy(3, i).observed["EM-SKEW"]["S0"] for i in range(500)])
    assert abs(counts.mean() - 300.0) < 4 * math.sqrt(400.0 / 500)


# -- upper-limit maps ---------------------------------------------------------------------------
def test_upper_limit_shift_formula(db: Database) -> None:
    assert shifted_upper_limits([1.96, 3.92], -1.0).tolist() == [0.96, 1.92]
    maker = ToyMaker(db)
    toy = maker.toy(9, 0)
    x = toy.ul_shifts["UL-MAP"]["data"]["T2"]
    grid_exp = db.result("UL-MAP").datasets[0].topologies[0].grids["expected_upper_limit"]
    grid = apply_toy(db, toy).result("UL-MAP").datasets[0].topologies[0].grids["upper_limit"]
    assert np.allclose(grid.values, grid_exp.values + x * grid_exp.values / 1.96, rtol=1e-15)
    assert grid.points is grid_exp.points  # the map is replaced by the expected one, shifted
    shifts = np.array([maker.toy(9, i).ul_shifts["UL-MAP"]["data"]["T2"] for i in range(2000)])
    assert shifts.min() > -1.96  # redrawn while a limit would not be positive
    truncated_mean = math.exp(-1.96**2 / 2) / math.sqrt(2 * math.pi) / 0.975
    assert abs(shifts.mean() - truncated_mean) < 4 / math.sqrt(len(shifts))
    assert abs(shifts.std() - 1.0) < 0.1
    wide = ToyMaker(db, bg_scale=2.0)  # the reference's fudge scales x
    shifts2 = np.array([wide.toy(9, i).ul_shifts["UL-MAP"]["data"]["T2"] for i in range(500)])
    assert shifts2.min() > -1.96 and 1.6 < shifts2.std() < 2.1


# -- pyhf workspaces ----------------------------------------------------------------------------
def test_pyhf_observations_and_auxiliary_data(subset: Database) -> None:
    import pyhf

    maker = ToyMaker(subset)
    toy = maker.toy(4, 0)
    assert toy == maker.toy(4, 0)
    result = subset.result(PYHF)
    drawn = toy.pyhf_observations[PYHF]
    assert set(drawn) == {f"jsonFiles/{w.file_name}" for w in result.pyhf}
    for w in result.pyhf:
        key = f"jsonFiles/{w.file_name}"
        shape = [len(o["data"]) for o in w.workspace["observations"]]
        assert [len(d) for d in drawn[key]] == shape
        assert all(isinstance(n, int) and n >= 0 for d in drawn[key] for n in d)
        model = pyhf.Workspace(w.workspace).model(poi_name=None)
        fixed = np.asarray(model.config.suggested_fixed())
        constrained = {n for n in model.config.auxdata_order
                       if not fixed[model.config.par_slice(n)].all()}
        assert set(toy.pyhf_auxdata[PYHF][key]) == constrained
    # the auxiliary data vary (Gaussian constraints around 0)
    aux = [maker.toy(4, i).pyhf_auxdata[PYHF]["jsonFiles/Comb_bkgonly.json"]["ucbSRee"][0]
           for i in range(200)]
    assert abs(np.mean(aux)) < 0.3 and 0.8 < np.std(aux) < 1.2
    # one count per region in every workspace that models it, and in its data set
    applied = apply_toy(subset, toy).result(PYHF)
    counts = {d.dataset_id: d.observed_n for d in applied.datasets}
    for w in applied.pyhf:
        for o in w.workspace["observations"]:
            assert o["data"] == [counts[o["name"].removesuffix("_cuts")]]
        model = pyhf.Workspace(w.workspace).model(poi_name=None)
        expected = [v for n in model.config.auxdata_order
                    for v in toy.pyhf_auxdata[PYHF][f"jsonFiles/{w.file_name}"][n]]
        assert np.allclose(model.config.auxdata, expected)  # pyhf takes the toy's aux data


def test_signal_injection_adds_the_predicted_yields(subset: Database) -> None:
    plain = ToyMaker(subset)
    injected = ToyMaker(subset, inject=_wh_model())
    assert injected.method.inject_digest and injected.method.inject_name == "protomodel"
    region = "SR_HM_High_MCT"
    ds = next(d for d in subset.result(REGIONS).datasets if d.dataset_id == region)
    s = injected.signals.events[REGIONS][region]
    assert s > 5  # sigma x BR x eff x lumi of the prediction
    n = 400
    gain = np.mean([injected.toy(1, i).observed[REGIONS][region]
                    - plain.toy(1, i).observed[REGIONS][region] for i in range(n)])
    assert abs(gain - s) < 4 * math.sqrt((2 * ds.expected_bg + s) / n)
    # upper-limit maps: the prediction's sigma x BR added near its mass point
    toy = injected.toy(1, 0)
    added = toy.ul_signal["CMS-SUS-20-004"]["data"]["TChiHH"]
    topology = next(t for t in subset.result("CMS-SUS-20-004").datasets[0].topologies
                    if t.name == "TChiHH")
    x = toy.ul_shifts["CMS-SUS-20-004"]["data"]["TChiHH"]
    expected = topology.grids["expected_upper_limit"].values
    new = apply_toy(subset, toy).result("CMS-SUS-20-004").datasets[0].topologies
    values = next(t for t in new if t.name == "TChiHH").grids["upper_limit"].values
    base = shifted_upper_limits(expected, x)
    idx = np.asarray(added[0])
    assert np.allclose(values[idx], base[idx] + np.asarray(added[1]))
    rest = np.setdiff1d(np.arange(len(values)), idx)
    assert np.allclose(values[rest], base[rest])
    masses = [m for names, m, _ in injected.signals.upper_limits["CMS-SUS-20-004"]
              if "TChiHH" in names]
    points = topology.grids["expected_upper_limit"].points
    mass = [i for i, a in enumerate(topology.axes) if a.attribute == "mass"]
    near = np.zeros(len(points), dtype=bool)
    for m in masses:
        near |= np.linalg.norm(points[:, mass] - np.asarray(m)[mass], axis=1) <= 400.0
    assert set(idx.tolist()) == set(np.flatnonzero(near).tolist())


# -- applying a toy -----------------------------------------------------------------------------
def test_scaled_observed_database(subset: Database, db: Database) -> None:
    scaled = apply_toy(db, observed_toy(db, bg_scale=2.0))
    assert np.allclose(scaled.result("EM-COV").covariance, 4 * COV)
    assert scaled.result("EM-SKEW").datasets[0].third_moment == 8 * SKEW_M3[0]
    old, new = db.result("EM-ALONE").datasets[0], scaled.result("EM-ALONE").datasets[0]
    assert new.observed_n == old.observed_n and new.bg_error == 2 * old.bg_error
    assert new.upper_limit_fb > old.upper_limit_fb  # wider background, weaker limit
    assert new.expected_upper_limit_fb > old.expected_upper_limit_fb
    assert scaled.meta["toy_index"] == "observed"
    ws = apply_toy(subset, observed_toy(subset, bg_scale=2.0)).result(PYHF).pyhf[0].workspace
    original = subset.result(PYHF).pyhf[0].workspace
    mod = ws["channels"][0]["samples"][0]["modifiers"][0]["data"]
    mod0 = original["channels"][0]["samples"][0]["modifiers"][0]["data"]
    assert mod["hi"] - 1 == pytest.approx(2 * (mod0["hi"] - 1))
    assert ws["observations"] == original["observations"]
    # the real database and its records are untouched
    assert db.result("EM-ALONE").datasets[0].bg_error == 6.0


def test_a_toy_of_another_database_is_refused(db: Database, subset: Database) -> None:
    toy = make_toy(db, 1, 0)
    with pytest.raises(ToyDatabaseMismatchError, match="made on database test-1.*toys make"):
        apply_toy(constructed(version="test-2"), toy)
    with pytest.raises(ToyDatabaseMismatchError, match="checksum"):
        apply_toy(constructed(checksum="other"), toy)
    with pytest.raises(ToyDatabaseMismatchError, match="made on database"):
        apply_toy(subset, toy)
    lacking = dataclasses.replace(toy, observed={k: v for k, v in toy.observed.items()
                                                 if k != "EM-ALONE"})
    with pytest.raises(ToyDatabaseMismatchError, match="nothing drawn for EM-ALONE"):
        apply_toy(db, lacking)
    with pytest.raises(ToyError, match="already a toy"):
        apply_toy(apply_toy(db, toy), toy)


def test_the_evaluator_sees_the_toy(subset: Database) -> None:
    """No cache serves the real values to a toy: a region whose count changed gets another
    likelihood, and the upper-limit maps are the toy's."""
    from protomodels.evaluation import EvaluationSettings, Evaluator

    settings = EvaluationSettings(full_likelihoods=False)
    real = Evaluator(subset, settings)
    region = "SR_HM_High_MCT"
    n_real = next(d.observed_n for d in subset.result(REGIONS).datasets
                  if d.dataset_id == region)
    toy = next(t for t in (make_toy(subset, 5, i) for i in range(20))
               if t.observed[REGIONS][region] != n_real)
    fake = Evaluator(apply_toy(subset, toy), settings)
    key = lambda p: (p.result_id, p.dataset)  # noqa: E731
    mine = {key(p): p for p in fake.predictions(_wh_model())}
    theirs = {key(p): p for p in real.predictions(_wh_model())}
    p, q = mine[(REGIONS, region)], theirs[(REGIONS, region)]
    assert p.xsec_fb == q.xsec_fb
    assert p.statistics.nll_sm != q.statistics.nll_sm
    assert p.r_obs != q.r_obs  # its observed limit follows the count
    assert p.r_exp == pytest.approx(q.r_exp)
    # the upper-limit maps: r_obs of the toy = r_exp / (1 + x / 1.96)
    mine_ul = [p for p in fake.predictions(_stop_model()) if p.result_id == UL]
    theirs_ul = [p for p in real.predictions(_stop_model()) if p.result_id == UL]
    x = toy.ul_shifts[UL]["data"]["T2tt"]
    assert mine_ul and len(mine_ul) == len(theirs_ul)
    for p, q in zip(mine_ul, theirs_ul, strict=True):
        assert p.r_obs == pytest.approx(q.r_exp / (1 + x / 1.96), rel=1e-5)
        assert p.r_obs != pytest.approx(q.r_obs, rel=1e-3)
        assert p.statistics.nll_sm != q.statistics.nll_sm


# -- references and the command line ------------------------------------------------------------
@pytest.fixture(scope="module")
def toy_file(subset: Database, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toys(tmp_path_factory.mktemp("toys") / "toys.sqlite", make_toys(subset, 2, 3))


def test_parse_toy_reference(toy_file: Path, tmp_path: Path, subset_store: Path) -> None:
    ref = parse_toy_reference(f"{toy_file}:1")
    assert (ref.path, ref.index) == (toy_file, 1)
    assert parse_toy_reference(f"{toy_file}:observed").index is None
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    cases = {
        str(toy_file): "expected TOYS.sqlite:INDEX",
        f"{toy_file}:x": "not an integer",
        f"{toy_file}:-1": "not an integer",
        f"{toy_file}:2": "index 2 is out of range.*toys 0..1",
        f"{tmp_path / 'none.sqlite'}:0": "no such toy file",
        f"{text}:0": "not a toy file .not an SQLite file",
        f"{subset_store}:0": "not a toy file",
        ":0": "toy file is missing",
    }
    for reference, message in cases.items():
        with pytest.raises(ToyReferenceError, match=message):
            parse_toy_reference(reference)


@pytest.mark.parametrize("command", ["predict", "evaluate", "walk"])
def test_malformed_toy_references_are_refused(
    command: str, toy_file: Path, subset_store: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model.slha"
    _stop_model().to_slha(model)
    args = [] if command == "walk" else [str(model)]
    for reference, message in {
        "toys.sqlite": "expected TOYS.sqlite:INDEX",
        f"{tmp_path / 'missing.sqlite'}:0": "no such toy file",
        f"{toy_file}:7": "out of range",
        f"{subset_store}:0": "not a toy file",
    }.items():
        result = _run(command, *args, "--toy", reference, database=subset_store)
        assert result.exit_code == 2, result.output
        assert "Invalid value for '--toy'" in result.output and message in result.output
    assert not list(Path.cwd().glob("walk-0.sqlite"))


def test_a_foreign_toy_file_is_refused_by_the_commands(
    db: Database, subset_store: Path, tmp_path: Path
) -> None:
    foreign = write_toys(tmp_path / "foreign.sqlite", make_toys(db, 1, 0))
    model = tmp_path / "model.slha"
    _stop_model().to_slha(model)
    result = _run("predict", str(model), "--toy", f"{foreign}:0", database=subset_store)
    assert result.exit_code == 1
    assert "made on database test-1" in result.output and "toys make" in result.output


def test_toys_make_writes_a_readable_file(subset: Database, subset_store: Path,
                                          tmp_path: Path) -> None:
    out = tmp_path / "made.sqlite"
    result = _run("toys", "make", "--n", "2", "--seed", "5", "--out", str(out),
                  database=subset_store)
    assert result.exit_code == 0, result.output
    assert "redrawn in each toy" in result.output and "toys" in result.output
    assert count_toys(out) == 2
    assert read_toy(out, 1) == make_toy(subset, 5, 1)
    again = _run("toys", "make", "--n", "3", "--seed", "5", "--out", str(out),
                 database=subset_store)
    assert again.exit_code == 0 and "1 new, 3 in the file" in again.output
    other = _run("toys", "make", "--n", "1", "--seed", "5", "--lognormal", "--out", str(out),
                 database=subset_store)
    assert other.exit_code == 1 and "another method" in other.output
    info = _run("toys", "info", str(out), database=subset_store)
    assert info.exit_code == 0 and "indices 0..2" in info.output
    # a command reads the toy: predict's JSON says which
    model = tmp_path / "model.slha"
    _stop_model().to_slha(model)
    result = _run("predict", str(model), "--no-statistics", "--json", "-", "--toy",
                  f"{out}:1", database=subset_store)
    assert result.exit_code == 0, result.output
    assert f'"toy": "{out}:1"' in result.stdout
    assert load_toy(f"{out}:1") == read_toy(out, 1)


def test_walk_on_a_toy_records_it(toy_file: Path, subset_store: Path, tmp_path: Path) -> None:
    from protomodels.builders.storage import RunStorage

    out = tmp_path / "run.sqlite"
    result = _run("walk", "--steps", "3", "--seed", "1", "--processes", "1", "--out", str(out),
                  "--toy", f"{toy_file}:1", database=subset_store)
    assert result.exit_code == 0, result.output
    with RunStorage(out, readonly=True) as storage:
        config = storage.metadata().config
    assert config["toy"] == f"{toy_file.resolve()}:1"
    again = _run("walk", "--resume", str(out), "--steps", "4", "--toy", f"{toy_file}:0",
                 database=subset_store)
    assert again.exit_code == 2 and "--toy" in again.output  # a resumed run keeps its toy
    resumed = _run("walk", "--resume", str(out), "--steps", "4", database=subset_store)
    assert resumed.exit_code == 0, resumed.output
    assert "toy database: " in resumed.output


def test_the_walkers_evaluate_on_the_toy(
    toy_file: Path, subset_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from protomodels.builders import run as run_module

    seen: list[str | None] = []
    original = run_module.Evaluator

    def recording(database: Database, *args: object, **kwargs: object) -> object:
        seen.append(database.meta.get("toy"))
        return original(database, *args, **kwargs)

    monkeypatch.setattr(run_module, "Evaluator", recording)
    reference = f"{toy_file.resolve()}:0"
    settings = run_module.RunSettings(steps=2, seed=4, toy=reference)
    run_module.run_walk(tmp_path / "w.sqlite", subset_store, settings)
    assert seen == [reference]


def test_pyhf_apriori_expectation_keeps_the_real_auxiliary_data(subset: Database) -> None:
    """A toy redraws the auxiliary data of the observed fit only: the a-priori (expected)
    background fit of the pyhf likelihood is the real data's."""
    from protomodels.statistics.full_likelihood import PyhfModels

    real = PyhfModels().workspaces(subset.result(PYHF))[0]
    toyed = PyhfModels().workspaces(apply_toy(subset, ToyMaker(subset).toy(4, 0)).result(PYHF))[0]
    np.testing.assert_array_equal(toyed.background.aux[1], real.background.aux[1])
    np.testing.assert_allclose(toyed.background.nll0[1], real.background.nll0[1], rtol=1e-9)
    assert not np.allclose(toyed.background.aux[0], real.background.aux[0])


def test_pyhf_data_sets_carry_their_background_error(db: Database) -> None:
    """A data set that a pyhf workspace models: the workspace's bin is Poisson around the
    nominal background (its spread is in the auxiliary data), the data set's own count, read
    by single-region likelihoods, has the variance b + sigma_b^2 and follows the bin."""
    from protomodels.campaigns import toys as toys_module

    b, sigma = 100.0, 20.0
    result = _result("PYHF-LIKE", [_dataset("SR", b, sigma, b)])

    class Workspace:  # the drawing interface of a prepared workspace
        key, slices, bins = "ws.json", [slice(0, 1)], {"SR": 0}

        def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
            return rng.poisson([b]).astype(float), {}

    plan = toys_module._ResultPlan("PYHF-LIKE", "pyhf", workspaces=[Workspace()],
                                   smear={"SR": sigma})
    maker = ToyMaker(db)
    rng = np.random.default_rng(12)
    bins, counts = [], []
    for _ in range(4000):
        observed: dict = {}
        out: tuple[dict, dict] = ({}, {})
        maker._draw_result(plan, result, rng, observed, {}, out, {})
        counts.append(observed["PYHF-LIKE"]["SR"])
        bins.append(out[0]["PYHF-LIKE"]["ws.json"][0][0])
    counts, bins = np.array(counts, float), np.array(bins, float)
    assert abs(bins.mean() - b) < 4 * math.sqrt(b / len(bins))
    assert abs(bins.var() / b - 1) < 0.1  # Poisson only
    assert abs(counts.mean() - b) < 4 * math.sqrt((b + sigma**2) / len(counts))
    assert abs(counts.var() / (b + sigma**2) - 1) < 0.1
    assert np.corrcoef(bins, counts)[0, 1] > 0.3  # the same fluctuation, shifted
    method = toys_module.ToyMethod
    assert method().generator == 2 and method.from_json({}).generator == 1
