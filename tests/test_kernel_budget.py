"""The kernel budget: compiled kernels are released before the process runs out of memory
mappings, and evaluations give the same numbers afterwards."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import protomodels.database as pdb
from protomodels.evaluation import EvaluationSettings, Evaluator
from protomodels.kernel_budget import KernelBudget, memory_mappings, release_compiled_kernels
from protomodels.theory import Decay, Protomodel

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@linux
def test_memory_mappings_are_read() -> None:
    used, limit = memory_mappings()
    assert 0 < used < limit


def test_shares_outside_the_unit_interval_are_refused() -> None:
    with pytest.raises(ValueError, match="share"):
        KernelBudget(share=1.0)


@linux
def test_past_its_share_the_budget_releases_every_kernel() -> None:
    """With a share of 0 any new compilation is too much: check() releases the compiled
    kernels (JAX's and the pyhf stage's), returns True once, and stays quiet without new
    compilations; released kernels compile again and give the same values."""
    from protomodels.statistics.full_likelihood import _Kernel

    kernel = _Kernel(lambda x: jnp.sin(x) + 1.0)
    before = np.asarray(kernel(np.linspace(0.0, 1.0, 7)))
    assert kernel._compiled
    budget = KernelBudget(share=0.0)
    assert budget.check() is False  # nothing compiled since it was made
    jax.jit(lambda x: x * 3.0 + 2.0)(jnp.ones(11))  # a new compilation
    with pytest.warns(RuntimeWarning, match="compiled kernels released"):
        assert budget.check() is True
    assert not kernel._compiled
    assert budget.check() is False
    np.testing.assert_array_equal(np.asarray(kernel(np.linspace(0.0, 1.0, 7))), before)


def test_an_evaluation_is_unchanged_after_a_release(subset_store: Path) -> None:
    database = pdb.open(subset_store, build=False, workspaces=False)
    evaluator = Evaluator(database, EvaluationSettings(full_likelihoods=False))
    model = Protomodel(
        masses={1000006: 800.0, 1000022: 200.0},
        decays={1000006: (Decay(1000022, (6,), 1.0),)},
    )
    first = evaluator(model)
    release_compiled_kernels()
    second = evaluator(model)
    assert math.isfinite(first.K)
    assert (second.K, second.T_L, second.muhat) == (first.K, first.T_L, first.muhat)
