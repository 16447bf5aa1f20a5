"""Run storage: schema round trips, atomic steps, hiscores, and two processes writing at once."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from protomodels.builders.records import Hiscore, StepRecord, model_from_json, model_to_json
from protomodels.builders.storage import RunMetadata, RunStorage, RunStorageError
from protomodels.exceptions import StoreSchemaError
from protomodels.theory.protomodel import Decay, Protomodel

MODEL = Protomodel(
    masses={1000022: 100.1, 1000006: 812.3},
    decays={1000006: (Decay(1000022, (6,), 1.0),)},
    ssm={(-1000006, 1000006): 0.1 + 0.2},
)
META = RunMetadata("3.0.0", "abc123", "0.1.0", 42, {"steps": 10, "nested": {"a": [1, 2.5]}})


def _record(walker: int, step: int, **kwargs) -> StepRecord:
    values = dict(
        walker=walker, step=step, move="unfreeze+ssm", accepted=True, K=1.0 / 3.0,
        T_L=2.0 / 7.0, muhat=0.9, K_current=1.0 / 3.0, model=model_to_json(MODEL), reason=None,
    )  # fmt: skip
    values.update(kwargs)
    return StepRecord(**values)


def _hiscore(key: str, k: float, walker: int = 0, step: int = 1) -> Hiscore:
    return Hiscore(k, k + 1, walker, step, model_to_json(MODEL), {"K": k, "combo": [key]}, key)


def test_metadata_round_trip_and_conflicts(tmp_path) -> None:
    path = tmp_path / "run.sqlite"
    with RunStorage(path) as storage:
        assert storage.metadata() is None
        written = storage.write_metadata(META)
        assert written.created
        again = storage.write_metadata(META)  # idempotent: a second writer of the same run
        assert again == written
        with pytest.raises(RunStorageError, match="seed"):
            storage.write_metadata(RunMetadata("3.0.0", "abc123", "0.1.0", 43, META.config))
        with pytest.raises(RunStorageError, match="config"):
            storage.write_metadata(RunMetadata("3.0.0", "abc123", "0.1.0", 42, {"steps": 11}))
        mode = storage._db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    with RunStorage(path) as storage:
        assert storage.metadata() == written
        assert storage.metadata().config == META.config


def test_schema_version_is_checked(tmp_path) -> None:
    path = tmp_path / "run.sqlite"
    RunStorage(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(StoreSchemaError, match="schema 999"):
        RunStorage(path)


def test_steps_and_states_round_trip(tmp_path) -> None:
    path = tmp_path / "run.sqlite"
    state = {"step": 0, "rng": {"state": {"state": 2**127 + 1, "inc": 3}}, "K": -20.0}
    records = [
        _record(0, 1),
        _record(0, 2, accepted=False, K=None, T_L=None, muhat=None, reason="ProtomodelsError: x"),
        _record(0, 3, accepted=False, K=math.nan, reason="K is NaN"),
        _record(1, 1, K=-math.inf, K_current=-20.0),
    ]
    with RunStorage(path) as storage:
        storage.add_walker(0, 7, {"steps": 3}, state)
        storage.add_walker(1, 7, {"steps": 1}, state)
        with pytest.raises(RunStorageError, match="already exists"):
            storage.add_walker(0, 7, {}, state)
        for number, record in enumerate(records):
            storage.commit_step(record, state | {"step": record.step, "n": number})
    with RunStorage(path) as storage:
        stored = storage.steps()
        assert stored == [records[0], records[1], records[2], records[3]]
        assert stored[2].K is None  # NaN is stored as missing
        assert stored[0].K == 1.0 / 3.0  # exact floats
        assert model_to_json(model_from_json(stored[0].model)) == model_to_json(MODEL)
        assert storage.steps(1) == [records[3]]
        assert storage.count_steps() == 4 and storage.count_steps(0) == 3
        assert storage.walkers() == [0, 1]
        assert storage.walker_config(0) == {"steps": 3}
        assert storage.walker_seed(1) == 7
        assert storage.load_state(0) == state | {"step": 3, "n": 2}
        assert storage.load_state(0)["rng"]["state"]["state"] == 2**127 + 1
        with pytest.raises(RunStorageError, match="no walker 5"):
            storage.load_state(5)


def test_a_step_is_one_transaction(tmp_path) -> None:
    with RunStorage(tmp_path / "run.sqlite") as storage:
        storage.add_walker(0, 1, {}, {"step": 0})
        storage.commit_step(_record(0, 1), {"step": 1}, _hiscore("a", 1.0))
        # the same step again: refused, and neither state nor hiscores change
        with pytest.raises(RunStorageError, match="already"):
            storage.commit_step(_record(0, 1), {"step": 99}, _hiscore("b", 5.0))
        assert storage.load_state(0) == {"step": 1}
        assert [h.key for h in storage.hiscores()] == ["a"]
        # an unknown walker: the history row is rolled back too
        with pytest.raises(RunStorageError, match="not registered"):
            storage.commit_step(_record(3, 1), {"step": 1}, _hiscore("c", 9.0))
        assert storage.count_steps() == 1
        assert [h.key for h in storage.hiscores()] == ["a"]


def test_hiscores_keep_the_best_distinct_models(tmp_path) -> None:
    with RunStorage(tmp_path / "run.sqlite") as storage:
        for i in range(25):
            storage.add_hiscore(_hiscore(f"m{i}", float((i * 7) % 25), step=i))
        storage.add_hiscore(_hiscore("m3", 100.0, step=30))  # same model, higher K: replaces
        storage.add_hiscore(_hiscore("m4", -5.0, step=31))  # same model, lower K: ignored
        best = storage.hiscores()
        assert len(best) == 10
        assert len({h.key for h in best}) == 10
        assert best[0].key == "m3" and best[0].K == 100.0 and best[0].step == 30
        ks = [h.K for h in best]
        assert ks == sorted(ks, reverse=True)
        assert ks[1:] == [24.0, 23.0, 22.0, 20.0, 19.0, 18.0, 17.0, 16.0, 15.0]  # 21 was m3
        assert best[0].evaluation == {"K": 100.0, "combo": ["m3"]}
        storage.add_hiscore(_hiscore("x", 50.0), keep=3)
        assert [h.key for h in storage.hiscores()] == ["m3", "x", best[1].key]


WRITER = textwrap.dedent(
    """
    import sys
    from protomodels.builders.records import Hiscore, StepRecord
    from protomodels.builders.storage import RunMetadata, RunStorage

    path, walker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    storage = RunStorage(path, timeout=5.0, retries=200)
    storage.write_metadata(RunMetadata("db", "sum", "code", 1, {"run": "shared"}))
    storage.add_walker(walker, 1, {"walker": walker}, {"step": 0})
    model = {"masses": {"1000022": 100.0}, "decays": {}, "ssm": [], "name": "m"}
    for step in range(1, n + 1):
        k = ((walker * 7919 + step * 104729) % 1000) / 10.0
        record = StepRecord(walker, step, "mass", True, k, k, 1.0, k, model, None)
        hiscore = Hiscore(k, k, walker, step, model, {"K": k}, f"{walker}-{step}")
        storage.commit_step(record, {"step": step}, hiscore)
    storage.close()
    """
)


def test_two_processes_write_one_file(tmp_path) -> None:
    path = tmp_path / "run.sqlite"
    n = 200
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w), str(n)]) for w in (0, 1)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    with RunStorage(path) as storage:
        assert storage.count_steps(0) == n and storage.count_steps(1) == n
        assert [s.step for s in storage.steps(1)] == list(range(1, n + 1))
        assert storage.load_state(0) == {"step": n} and storage.load_state(1) == {"step": n}
        offered = sorted(
            (((w * 7919 + s * 104729) % 1000) / 10.0 for w in (0, 1) for s in range(1, n + 1)),
            reverse=True,
        )
        assert [h.K for h in storage.hiscores()] == offered[:10]
        assert storage.metadata().config == {"run": "shared"}
        assert storage._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
