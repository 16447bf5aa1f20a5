"""A prepared evaluation compiles nothing on the way: after :meth:`Evaluator.prepare` (grids
stacked, lookups and statistics kernels compiled for every padded shape), a walk of the real
evaluation on a small database makes no XLA compilation (JAX's persistent cache hits are not
compilations)."""

from __future__ import annotations

from pathlib import Path

from jax import monitoring

import protomodels.database as pdb
from protomodels.builders.walker import Walker, WalkerConfig
from protomodels.evaluation import EvaluationSettings, Evaluator


class _Compilations:
    """Counts XLA backend compilations while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.names: list[str] = []
        monitoring.register_event_duration_secs_listener(self._event)

    def _event(self, name: str, duration: float, **kwargs: object) -> None:
        if self.on and name.endswith("backend_compile_duration"):
            self.names.append(str(kwargs.get("fun_name", "?")))


def test_a_prepared_walk_compiles_nothing(subset_store: Path) -> None:
    database = pdb.open(subset_store, build=False, workspaces=False)
    evaluator = Evaluator(database, EvaluationSettings(full_likelihoods=False))
    evaluator.prepare()
    counter = _Compilations()
    walker = Walker(evaluator, WalkerConfig(steps=120, seed=5))
    walker.run(until=20)  # the walker's own first steps (its start model)
    counter.on = True
    records = walker.run(until=120)
    counter.on = False
    assert len(records) == 100
    assert any(r.accepted for r in records)
    assert counter.names == []
