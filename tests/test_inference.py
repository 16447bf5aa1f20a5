"""Gradients, Hessians, Fisher errors and posteriors of a protomodel (protomodels.inference).

A small store of three results gives every differentiated likelihood kind: single regions
(ATLAS-SUSY-2019-08-eff, its JSON missing), a simplified likelihood with a covariance
(CMS-SUS-20-004-eff) and a pyhf workspace (ATLAS-SUSY-2018-14-eff, displaced staus).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import INFERENCE_FOLDERS, imported_store, stau_chargino_model
from click.testing import CliRunner

import protomodels.database as pdb
from protomodels.cli import cli
from protomodels.evaluation import Evaluation, Evaluator
from protomodels.exceptions import ProtomodelsError
from protomodels.inference.errors import covariance_from_hessian, fisher_errors
from protomodels.inference.objective import Member, Objective, objective_of
from protomodels.inference.parameters import BRANCHING, LOG_MULTIPLIER, MASS, Parameter
from protomodels.inference.posterior import (
    PosteriorSettings,
    read_samples,
    sample_posterior,
    store_samples,
)
from protomodels.inference.profiled import YieldLikelihood
from protomodels.theory.protomodel import Protomodel

FOLDERS = INFERENCE_FOLDERS
N1, STAU, C1, N2 = 1000022, 1000015, 1000024, 1000023
PYHF = ("ATLAS-SUSY-2018-14", "(combined)")


def model(stau: float = 213.3, c1: float = 452.7, n2: float = 453.9, n1: float = 0.5) -> Protomodel:
    return stau_chargino_model(stau, c1, n2, n1)


@pytest.fixture(scope="module")
def store(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return imported_store(tarball, tmp_path_factory, FOLDERS, "inference-db")


@pytest.fixture(scope="module")
def evaluator(store: Path) -> Evaluator:
    return Evaluator(pdb.open(store, build=False))


@pytest.fixture(scope="module")
def evaluation(evaluator: Evaluator) -> Evaluation:
    e = evaluator(model())
    assert math.isfinite(e.K) and e.k.combination
    return e


@pytest.fixture(scope="module")
def objective(evaluator: Evaluator, evaluation: Evaluation) -> Objective:
    return objective_of(evaluator, evaluation)


@pytest.fixture(scope="module")
def with_pyhf(evaluator: Evaluator, evaluation: Evaluation) -> Objective:
    """The best combination plus the pyhf result (its weight is negative: it is not in the
    best combination, so it is named)."""
    members = [(m.analysis, m.dataset) for m in evaluation.k.combination] + [PYHF]
    return objective_of(evaluator, evaluation, combination=members)


def test_the_objective_reproduces_the_evaluation(objective: Objective,
                                                 evaluation: Evaluation) -> None:
    kinds = {m.likelihood.kind for m in objective.members}
    assert "simplified" in kinds
    assert objective.t_l() == pytest.approx(evaluation.T_L, rel=1e-4)
    assert objective.k() == pytest.approx(evaluation.K, rel=1e-4)
    # each member's nll at theta0 is the evaluation's -ln L at mu = 1 of the rescaled model
    rows = {(r["analysis"], r["dataset"]): r for r in evaluation.candidates}
    for m in objective.members:
        label = tuple(m.likelihood.label.split(":", 1))
        s = jnp.asarray(m.likelihood.yields)
        with jax.enable_x64(True):
            assert float(m.likelihood.nll(s)) == pytest.approx(rows[label]["nll1"], rel=1e-6)


def test_the_pyhf_member_reproduces_its_nll(with_pyhf: Objective,
                                            evaluation: Evaluation) -> None:
    rows = {(r["analysis"], r["dataset"]): r for r in evaluation.candidates}
    assert with_pyhf.members[-1].likelihood.kind == "pyhf"
    expected = sum(2 * (rows[tuple(m.likelihood.label.split(":", 1))]["nll0"]
                        - rows[tuple(m.likelihood.label.split(":", 1))]["nll1"])
                   for m in with_pyhf.members)
    assert with_pyhf.t_l() == pytest.approx(expected, rel=1e-5)


def test_the_parameters(objective: Objective) -> None:
    space = objective.space
    kinds = [p.kind for p in space.parameters]
    assert kinds.count(MASS) == 4 and kinds.count(BRANCHING) == 1
    assert LOG_MULTIPLIER in kinds
    br = space.parameters[kinds.index(BRANCHING)]
    assert br.particle == N2 and br.value == pytest.approx(0.2)  # the larger channel depends
    back = space.model_at(objective.theta0)
    assert back.masses == pytest.approx(model().masses)
    assert [d.br for d in back.decays[N2]] == pytest.approx([0.8, 0.2])


def _central(objective: Objective, theta: np.ndarray, i: int, h: float) -> tuple[float, float]:
    up, down = theta.copy(), theta.copy()
    up[i] += h
    down[i] -= h
    k0, kp, km = objective.k(theta), objective.k(up), objective.k(down)
    return (kp - km) / (2 * h), abs((kp - k0) - (k0 - km)) / h


def test_the_gradient_equals_finite_differences(with_pyhf: Objective) -> None:
    """At random points inside the grids (away from faces: a kink between the one-sided
    differences marks a face, and is skipped), through every likelihood kind."""
    rng = np.random.default_rng(7)
    space = with_pyhf.space
    checked = 0
    for _ in range(3):
        theta = with_pyhf.theta0.copy()
        for i, p in enumerate(space.parameters):
            theta[i] += {MASS: rng.uniform(-3, 3), LOG_MULTIPLIER: rng.uniform(-0.1, 0.1),
                         BRANCHING: rng.uniform(-0.02, 0.02)}[p.kind]
        theta[space.names.index("m(~chi10)")] = 0.5 + rng.uniform(0, 0.3)
        _, grad = with_pyhf.gradient(theta)
        assert np.all(np.isfinite(grad))
        scale = np.abs(grad).max()
        for i, p in enumerate(space.parameters):
            h = 1e-3 if p.kind == MASS else 1e-5
            fd, kink = _central(with_pyhf, theta, i, h)
            if kink > 1e-3 * max(abs(fd), 1e-3 * scale):
                continue  # a face of a simplex or a table node within h
            assert grad[i] == pytest.approx(fd, rel=1e-4, abs=1e-6 * scale), space.names[i]
            checked += 1
    assert checked >= 2 * len(space)


def test_the_common_scale_is_flat_at_mu_hat(objective: Objective) -> None:
    """The evaluated model carries mu-hat in its multipliers: scaling every cross section
    together does not change T_L to first order."""
    _, grad = objective.gradient()
    logs = objective.space.indices(LOG_MULTIPLIER)
    assert abs(grad[logs].sum()) < 1e-4 * (1 + np.abs(grad[logs]).max())


def test_hessians(objective: Objective) -> None:
    theta = objective.theta0.copy()
    gn = objective.hessian(theta)
    exact = objective.hessian(theta, method="exact")
    assert np.allclose(gn, gn.T) and np.allclose(exact, exact.T, atol=1e-8)
    assert np.linalg.eigvalsh(gn).min() > -1e-8 * np.abs(gn).max()
    # the exact Hessian is the derivative of the gradient (finite differences of nll's gradient)
    logs = objective.space.indices(LOG_MULTIPLIER)
    for i in logs:
        h = 1e-3  # (smooth in ln ssm; a larger step keeps the fits' tolerance out)
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        column = -(objective.gradient(up)[1] - objective.gradient(down)[1]) / (2 * h) / 2
        assert exact[:, i] == pytest.approx(column, rel=1e-3, abs=1e-6 * np.abs(exact).max())


def test_an_upper_limit_member_is_refused(evaluator: Evaluator, evaluation: Evaluation) -> None:
    with pytest.raises(ProtomodelsError, match="no prediction with a likelihood"):
        objective_of(evaluator, evaluation, combination=[("NO-SUCH-ANALYSIS", None)])


# -- a constructed Gaussian case ---------------------------------------------------------------
class _Space:
    def __init__(self, theta0: np.ndarray) -> None:
        self.parameters = tuple(Parameter(f"p{i}", "other", float(v))
                                for i, v in enumerate(theta0))
        self.names = [p.name for p in self.parameters]
        self.theta0 = np.asarray(theta0, float)


@dataclass(frozen=True, eq=False)
class _Linear:
    """Yields A theta + c (the signal-function interface)."""

    space: _Space
    arrays: tuple

    def __call__(self, theta: jax.Array, arrays: tuple) -> jax.Array:
        a, c = arrays
        return jnp.concatenate([a @ theta + c, jnp.zeros(1)])


def _gaussian_case() -> tuple[Objective, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    a, c = rng.normal(size=(4, 3)), rng.normal(size=4)
    root = rng.normal(size=(4, 4))
    inverse = np.linalg.inv(root @ root.T + 4 * np.eye(4))
    data = a @ np.array([1.0, -2.0, 0.5]) + c + rng.normal(size=4)

    def nll(s: jax.Array) -> jax.Array:
        r = s - jnp.asarray(data)
        return 0.5 * r @ jnp.asarray(inverse) @ r

    like = YieldLikelihood("gauss", "gaussian", 4, nll, float(0.5 * data @ inverse @ data), data)
    best = np.linalg.solve(a.T @ inverse @ a, a.T @ inverse @ (data - c))
    signal = _Linear(_Space(best), (a, c))  # NumPy float64 (jax arrays made in x64)
    objective = Objective(signal, (Member(like, np.arange(4), 1.0),), 0.0)  # type: ignore[arg-type]
    return objective, best, np.linalg.inv(a.T @ inverse @ a)


def test_fisher_errors_of_a_gaussian_case_are_the_analytic_ones() -> None:
    objective, best, covariance = _gaussian_case()
    with jax.enable_x64(True):
        result = fisher_errors(objective)
        exact = fisher_errors(objective, method="exact")
    assert result.errors == pytest.approx(np.sqrt(np.diag(covariance)), rel=1e-8)
    assert result.covariance == pytest.approx(covariance, rel=1e-8)
    assert exact.covariance == pytest.approx(covariance, rel=1e-8)
    assert np.abs(result.gradient).max() < 1e-8  # theta0 is the best fit


def test_nuts_reproduces_a_known_posterior(tmp_path: Path) -> None:
    objective, best, covariance = _gaussian_case()
    settings = PosteriorSettings(samples=1500, warmup=500, chains=2, seed=3, mass_width=20.0)
    with jax.enable_x64(True):
        draws = sample_posterior(objective, settings)
    flat = draws.flat
    errors = np.sqrt(np.diag(covariance))
    # mean within 4 Monte-Carlo errors, widths within 10 %
    assert np.all(np.abs(flat.mean(0) - best) < 4 * errors / np.sqrt(draws.ess))
    assert np.sqrt(np.diag(np.cov(flat.T))) == pytest.approx(errors, rel=0.1)
    assert np.all(draws.r_hat < 1.05) and np.all(draws.ess > 300)
    path = tmp_path / "samples.sqlite"
    run = store_samples(path, draws, label="gauss")
    record, stored, names = read_samples(path, run)
    assert names == draws.names and np.array_equal(stored, draws.draws)
    assert record["summary"]["parameters"][0]["name"] == "p0"


def test_unconstrained_parameters_are_left_out() -> None:
    hessian = np.diag([4.0, 0.0, 1.0])
    hessian[0, 2] = hessian[2, 0] = 1.0
    cov, constrained, flags = covariance_from_hessian(hessian)
    assert constrained.tolist() == [True, False, True] and not flags
    assert np.isnan(cov[1]).all()
    assert cov[np.ix_([0, 2], [0, 2])] == pytest.approx(np.linalg.inv([[4.0, 1.0], [1.0, 1.0]]))
    _, _, flags = covariance_from_hessian(np.ones((2, 2)))
    assert flags and "flat" in flags[0]


# -- the commands -------------------------------------------------------------------------------
def test_errors_command(store: Path, tmp_path: Path) -> None:
    slha = tmp_path / "model.slha"
    model().to_slha(slha)
    result = CliRunner().invoke(
        cli, ["--database", str(store), "errors", str(slha), "--json", "-", "--no-plot"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    names = [p["name"] for p in data["parameters"]]
    assert "m(~tau_1)" in names and data["method"] == "gauss-newton"
    assert any(p["error"] is not None for p in data["parameters"])


def test_errors_command_refuses_a_broken_file(store: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.slha"
    bad.write_text("BLOCK MASS\n 1000022 nan\n")
    result = CliRunner().invoke(cli, ["--database", str(store), "errors", str(bad)])
    assert result.exit_code != 0 and "bad.slha" in result.output


@pytest.mark.slow
def test_posterior_command(store: Path, tmp_path: Path) -> None:
    slha = tmp_path / "model.slha"
    model().to_slha(slha)
    out, plot = tmp_path / "post.sqlite", tmp_path / "post.png"
    result = CliRunner().invoke(
        cli, ["--database", str(store), "posterior", str(slha), "--samples", "30", "--warmup",
              "30", "--out", str(out), "--plot", str(plot)], env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "r-hat" in result.stdout and plot.exists()
    record, draws, names = read_samples(out)
    assert draws.shape == (2, 30, len(names)) and np.isfinite(draws).all()
    assert record["summary"]["fixed"] is not None


# -- polish ---------------------------------------------------------------------------------------
def test_polish_lowers_the_nll_and_keeps_only_better_models(evaluator: Evaluator,
                                                            evaluation: Evaluation) -> None:
    from protomodels.inference.polish import Polisher, PolishSettings, polish_parameters

    objective = objective_of(evaluator, evaluation)
    theta, before, after = polish_parameters(objective, PolishSettings(steps=3))
    assert after <= before and objective.space.valid(theta, 1.0)
    limits = np.abs(theta - objective.theta0)
    masses = objective.space.indices(MASS)
    assert np.all(limits[masses] <= (1.05**3 - 1) * objective.theta0[masses] + 1e-9)
    polisher = Polisher(evaluator, PolishSettings(steps=3))
    polished = polisher(evaluation)
    assert polisher.counts[0] == 1
    if polished is not None:
        assert polished.K > evaluation.K and polished.passed


def test_a_polished_walk_is_reproducible(evaluator: Evaluator) -> None:
    from protomodels.builders.walker import Walker, WalkerConfig, WalkerConfigError

    def chain() -> list[tuple]:
        walker = Walker(evaluator, WalkerConfig(steps=12, seed=4, polish=2),
                        start=model())
        return [(r.move, r.accepted, r.K) for r in walker.run()]

    first = chain()
    assert first == chain()
    with pytest.raises(WalkerConfigError, match="polish"):
        WalkerConfig(polish=-1)


def test_polish_needs_the_engine_evaluator() -> None:
    from protomodels.builders.toy import toy_evaluator
    from protomodels.builders.walker import Walker, WalkerConfig

    with pytest.raises(ProtomodelsError, match="polish"):
        Walker(toy_evaluator, WalkerConfig(polish=2))
