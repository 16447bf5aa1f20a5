"""The pure-function kernel of the predictions (protomodels.theory.signals): equal to the
predictions, jittable, differentiable in the masses, batch = one by one."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import protomodels.database as pdb
from protomodels.theory import Predictor, Protomodel
from protomodels.theory.signals import signals
from protomodels.theory.xsec import load_tables

STAU, N1 = 1000015, 1000022
HSCP = "CMS-EXO-13-006-eff-trim"


@pytest.fixture(scope="module")
def predictor(subset_store: Path, shared: Path) -> Predictor:
    database = pdb.open(subset_store, build=False, workspaces=False)
    return Predictor(database, tables=load_tables(shared))


def stau(mass: float, sigma8: float = 1.0) -> Protomodel:
    """A stable stau pair: efficiency-map predictions of the HSCP result."""
    return Protomodel(
        masses={STAU: mass, N1: 100.0},
        decays={},
        xsecs={(-STAU, STAU): {13.0: 5.0 * sigma8, 8.0: sigma8}},
        allow_stable=True,
    )


def kernel_signals(predictor: Predictor, models: list[Protomodel]):  # noqa: ANN201
    kernel, (sigma, br, masses), n_ds, n_groups, slots = predictor.signal_kernel(models)
    with jax.enable_x64(True):
        out = jax.jit(signals, static_argnums=(4, 5))(kernel, sigma, br, masses, n_ds, n_groups)
        return np.asarray(out.signals), slots


def test_kernel_equals_predictions(predictor: Predictor) -> None:
    model = stau(437.3)
    found, slots = kernel_signals(predictor, [model])
    (p,) = predictor.predict(model)
    result = next(i for i, r in enumerate(predictor.database.results) if r.result_id == HSCP)
    got = np.zeros(len(p.signals_fb))
    for (m, r, d), slot in slots.items():
        if m == 0 and r == result:
            got[d] = found[slot]
    np.testing.assert_allclose(got, p.signals_fb, rtol=1e-12, atol=1e-12)
    assert got.max() > 0


def test_kernel_batch_equals_one_by_one(predictor: Predictor) -> None:
    models = [stau(m, s) for m, s in ((300.0, 1.0), (512.5, 2.0), (800.0, 0.5))]
    batch, slots = kernel_signals(predictor, models)
    for i, model in enumerate(models):
        single, single_slots = kernel_signals(predictor, [model])
        for (m, r, d), slot in slots.items():
            if m == i:
                assert batch[slot] == pytest.approx(single[single_slots[(0, r, d)]], rel=1e-12)


def test_kernel_is_differentiable_in_masses(predictor: Predictor) -> None:
    """d(total signal)/d(mass) from JAX equals a central finite difference inside a simplex,
    and the signal is linear in the cross section."""
    kernel, (sigma, br, masses), n_ds, n_groups, _ = predictor.signal_kernel([stau(437.3)])
    with jax.enable_x64(True):

        def total(m: jax.Array, s: jax.Array) -> jax.Array:
            return signals(kernel, s, br, m, n_ds, n_groups).signals.sum()

        f = jax.jit(total)
        grad = np.asarray(jax.grad(f)(masses, sigma))
        slot = int(np.argmax(np.abs(grad)))
        assert grad[slot] != 0 and np.isfinite(grad).all()
        h = 0.5  # GeV: inside the simplex, large against the 6-digit rounding
        step = jnp.zeros_like(masses).at[slot].set(h)
        numeric = (f(masses + step, sigma) - f(masses - step, sigma)) / (2 * h)
        # the signal is rounded to 6 significant digits by SModelS's interpolation
        assert float(numeric) == pytest.approx(grad[slot], rel=1e-2)
        assert float(f(masses, 2 * sigma)) == pytest.approx(2 * float(f(masses, sigma)))


def test_model_without_topologies(predictor: Predictor) -> None:
    """The LSP alone (the walk's start) has no prediction, in a batch with others too."""
    alone = Protomodel(masses={N1: 150.0}, decays={})
    assert predictor.predict(alone) == []
    batch = predictor.predict_batch([alone, stau(437.3), alone])
    assert batch[0] == [] and batch[2] == [] and len(batch[1]) == 1


def test_missing_pyhf_json_gives_the_best_region(predictor: Predictor) -> None:
    """ATLAS-SUSY-2019-08-eff names a pyhf JSON that v3.0.0 lacks: no combined prediction, the
    best signal region instead (the likelihood falls back)."""
    from protomodels.theory import Decay

    c1, n2 = 1000024, 1000023
    model = Protomodel(
        masses={c1: 500.0, n2: 500.0, N1: 100.0},
        decays={c1: (Decay(N1, (24,), 1.0),), n2: (Decay(N1, (25,), 1.0),)},
        xsecs={(n2, c1): {13.0: 100.0}, (-c1, n2): {13.0: 50.0}},
    )
    found = [p for p in predictor.predict(model) if p.result_id == "ATLAS-SUSY-2019-08-eff"]
    assert found, "the model gives ATLAS-SUSY-2019-08 a signal"
    assert all(p.data_type == "efficiencyMap" and p.dataset != "(combined)" for p in found)


def test_batch_equals_one_by_one_bit_for_bit(predictor: Predictor, shared: Path) -> None:
    """Random protomodels as one batch give exactly the records of one-by-one predictions
    (no sum whose order depends on the batch size)."""
    from protomodels.theory.particles import load_template
    from protomodels.theory.sampling import random_protomodel

    template = load_template(shared / "data" / "templates" / "protomodel_template.slha")
    rng = np.random.default_rng(3)
    models = [random_protomodel(rng, template) for _ in range(40)]
    one = [[p.to_json() for p in predictor.predict(m)] for m in models]
    batch = [[p.to_json() for p in ps] for ps in predictor.predict_batch(models)]
    assert sum(map(len, one)) > 20, "the sample gives predictions"
    assert batch == one


def test_lookup_does_not_depend_on_the_batch_size(predictor: Predictor) -> None:
    """Queries give the same bits (before the 6-digit rounding, which would hide most
    differences) alone and among thousands: XLA's reductions change their order with the array
    shape, so the kernel avoids them where a value is computed."""
    from protomodels.theory.lookup import _project

    grid_index = predictor.grid_index
    entry = next(
        e
        for result in predictor.database.results
        for dataset in result.datasets
        for txname in dataset.topologies
        for grid in txname.grids.values()
        if grid.points.shape[1] == 2 and (e := grid_index.entry(grid.points, ())).tri.dim == 2
    )
    stack = grid_index.stack(2)
    rotated = entry.tri._rotated[:, :2]
    rng = np.random.default_rng(0)
    corners = rotated[rng.choice(len(rotated), (16, 3))]
    weights = rng.dirichlet(np.ones(3), 16)
    inside = np.einsum("qk,qkd->qd", weights, corners)  # points of the hull
    values = rng.uniform(0.01, 1.0, len(rotated))
    project = jax.jit(_project)
    with jax.enable_x64(True):
        all_values = jnp.concatenate([grid_index.values, jnp.asarray(values)])
        offset = grid_index.values.shape[0]
        answers = []
        for n in (16, 8192):
            p = np.tile(inside, (n // 16, 1))
            f, _ = project(stack, all_values, np.full(n, entry.stack_index), p,
                           np.full(n, offset))
            answers.append(np.asarray(f).reshape(-1, 16))
    assert np.isfinite(answers[0]).all()
    assert (answers[1] == answers[0][0]).all()
