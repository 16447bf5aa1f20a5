"""The walker: acceptance rule, critics, unevaluable models, teleportation, reproducibility, and
resuming from the run file (also after kill -9) into the very same chain."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field, replace

import pytest

from protomodels.builders import moves as mv
from protomodels.builders.records import model_to_json
from protomodels.builders.storage import RunStorage, RunStorageError
from protomodels.builders.toy import toy_evaluator
from protomodels.builders.walker import (
    Walker,
    WalkerConfig,
    WalkerConfigError,
    acceptance_probability,
    lockstep,
    teleport_probability,
    walk,
)
from protomodels.exceptions import ProtomodelsError
from protomodels.paths import shared_dir
from protomodels.theory.particles import LSP, load_template
from protomodels.theory.protomodel import Decay, Protomodel
from protomodels.theory.xsec import production_channels


@pytest.fixture(scope="module")
def template():
    return load_template(shared_dir() / "data" / "templates" / "protomodel_template.slha")


@dataclass
class Stub:
    """A minimal evaluation (fulfils the walker's Evaluation protocol)."""

    K: float
    model: Protomodel
    T_L: float = 0.0
    muhat: float = 1.0
    passed: bool = True
    reason: str | None = None
    combination: list = field(default_factory=list)

    def as_json(self) -> dict:
        return {"K": self.K, "passed": self.passed}


class Alternating:
    """K = 0 on odd calls, -2 on even ones: every even step proposes dK = -2 from K = 0."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, model: Protomodel) -> Stub:
        self.calls += 1
        return Stub(0.0 if self.calls % 2 else -2.0, model)


def _chain(records) -> list:
    return [(r.step, r.move, r.accepted, r.K, r.K_current, r.reason, r.model) for r in records]


def test_walk_is_reproducible_by_seed(template) -> None:
    config = WalkerConfig(steps=80, seed=3)
    first = walk(toy_evaluator, config, template=template)
    again = walk(toy_evaluator, config, template=template)
    other = walk(toy_evaluator, replace(config, seed=4), template=template)
    assert first.state.as_json() == again.state.as_json()
    assert first.state.as_json() != other.state.as_json()
    two = Walker(toy_evaluator, replace(config, walker=1), template=template)
    assert model_to_json(two.model) != model_to_json(Walker(toy_evaluator, config).model)


def test_start_and_records(template) -> None:
    records = []
    walker = Walker(toy_evaluator, WalkerConfig(steps=30, seed=1), template=template,
                    on_step=records.append)  # fmt: skip
    assert list(walker.model.masses) == [LSP]
    assert 200.0 <= walker.model.masses[LSP] <= 500.0
    assert walker.state.K == -20.0 and walker.state.T_L == -0.1
    returned = walker.run()
    assert returned == records and [r.step for r in records] == list(range(1, 31))
    assert walker.run() == []  # done
    for record in records:
        assert (record.reason is None) == record.accepted
    accepted = [r for r in records if r.accepted]
    assert accepted and records[-1].K_current == walker.state.K
    assert accepted[-1].model == model_to_json(walker.model)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_acceptance_rate_is_exp_of_half_delta_k(template, temperature) -> None:
    config = WalkerConfig(steps=3000, seed=5, simplify=False, temperature=temperature)
    walker = Walker(Alternating(), config, template=template)
    records = walker.run()
    downhill = [r for r in records if r.K == -2.0 and r.step > 1]
    assert all(r.accepted for r in records if r.K == 0.0)  # uphill or level: always
    rate = sum(r.accepted for r in downhill) / len(downhill)
    expected = math.exp(-2.0 / (2.0 * temperature))
    assert rate == pytest.approx(expected, abs=0.04)
    assert all("u = " in r.reason for r in downhill if not r.accepted)


def test_acceptance_and_teleport_formulas() -> None:
    assert acceptance_probability(1.0, 0.0) == 1.0
    assert acceptance_probability(-1.0, 1.0) == pytest.approx(math.exp(-1.0))
    assert acceptance_probability(-1.0, 1.0, 4.0) == pytest.approx(math.exp(-0.25))
    assert teleport_probability(0.0, 5.0) == pytest.approx(0.5 * (1 - math.exp(-0.5)))
    assert teleport_probability(-30.0, 5.0) == teleport_probability(-2.0, 5.0)  # floored
    assert teleport_probability(6.0, 5.0) == 0.0
    assert teleport_probability(0.0, 5.0, pmax=1.0, norm=1.0) == pytest.approx(1 - math.exp(-5))


def test_critics_failures_are_reverted(template) -> None:
    def failing(model: Protomodel) -> Stub:
        return Stub(10.0 + len(model.masses), model, passed=False, reason="excluded by 2.1")

    walker = Walker(failing, WalkerConfig(steps=40, seed=2), template=template)
    start = model_to_json(walker.model)
    records = walker.run()
    assert not any(r.accepted for r in records)
    assert all(r.reason == "critics: excluded by 2.1" for r in records)
    assert model_to_json(walker.model) == start and walker.state.K == -20.0


def test_unevaluable_models_are_rejected_with_their_reason(template) -> None:
    calls = []

    def flaky(model: Protomodel) -> Stub:
        calls.append(model)
        if len(calls) % 3 == 0:
            raise ProtomodelsError("no cross section for this mass")
        if len(calls) % 5 == 0:
            return Stub(math.nan, model)
        return Stub(float(len(calls)), model)

    walker = Walker(flaky, WalkerConfig(steps=60, seed=4, simplify=False), template=template)
    records = walker.run()
    raised = [r for r in records if r.step % 3 == 0]
    nans = [r for r in records if r.step % 5 == 0 and r.step % 3]
    assert all(not r.accepted and "no cross section" in r.reason for r in raised)
    assert all(r.K is None and r.muhat is None for r in raised)
    assert all(not r.accepted and r.reason == "K is NaN" for r in nans)
    assert all(r.accepted for r in records if r.step % 3 and r.step % 5)  # K rises

    def broken(model: Protomodel) -> Stub:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        Walker(broken, WalkerConfig(steps=2), template=template).run()


def test_the_chain_moves_to_the_rescaled_model(template) -> None:
    def rescaling(model: Protomodel) -> Stub:
        pairs = production_channels(sorted(model.masses))
        ssm = {p: 0.5 * model.ssm.get(p, 1.0) for p in pairs}
        scaled = Protomodel(masses=model.masses, decays=model.decays, ssm=ssm)
        return Stub(float(len(model.masses)), scaled, muhat=0.5)

    walker = Walker(rescaling, WalkerConfig(steps=10, seed=1, simplify=False), template=template)
    records = walker.run()
    last = [r for r in records if r.accepted][-1]
    assert last.muhat == 0.5
    assert model_to_json(walker.model) == last.model
    assert walker.model.ssm and all(v <= 0.5 for v in walker.model.ssm.values())


def test_particles_outside_the_combination_are_frozen(template) -> None:
    stop = Protomodel(
        masses={LSP: 200.0, 1000006: 800.0, 1000021: 1500.0, 1000023: 400.0},
        decays={
            1000006: (Decay(LSP, (6,), 1.0),),
            1000021: (Decay(1000006, (-6,), 1.0),),
            1000023: (Decay(LSP, (23,), 1.0),),
        },
    )

    @dataclass
    class WithParticles(Stub):
        combination_particles: tuple = (LSP, 1000006)

    walker = Walker(
        lambda m: WithParticles(5.0 + 0.01 * len(m.masses), m),
        WalkerConfig(steps=1, seed=0, simplify=False),
        template=template,
        start=stop,
    )
    walker.state.particles = frozenset({LSP, 1000006})
    record = walker.step()
    assert record.move.startswith("freeze_unused")
    others = {int(p) for p in record.model["masses"]} - {LSP, 1000006}
    assert len(others) <= 1  # gluino and chi20 frozen; the random move may unfreeze one


def test_teleportation(template) -> None:
    records = []
    config = WalkerConfig(steps=400, seed=7, teleport_until=400)
    walker = walk(toy_evaluator, config, template=template, on_step=records.append)
    teleports = [r for r in records if r.move == "teleport"]
    assert teleports, "with K falling below the best, the walker teleports sometimes"
    for record in teleports:  # teleports only once the best K reached the threshold
        before = [r.K for r in records if r.accepted and r.step < record.step and r.K is not None]
        assert max(before) >= config.teleport_min_best_K
    plain = []
    walk(
        toy_evaluator, replace(config, teleport_until=None), template=template, on_step=plain.append
    )
    assert len(plain) == 400 and not [r for r in plain if r.move == "teleport"]
    assert walker.best is not None
    assert walker.state.best.K == max(r.K for r in records if r.accepted)


def test_annealing_schedule(template) -> None:
    walker = Walker(
        toy_evaluator,
        WalkerConfig(steps=100, temperature=4.0, final_temperature=0.25),
        template=template,
    )
    assert walker.temperature(0) == pytest.approx(4.0)
    assert walker.temperature(50) == pytest.approx(1.0)
    assert walker.temperature(100) == pytest.approx(0.25)


def test_refinement_starts_from_the_best_model_and_keeps_the_particles(template) -> None:
    """From ``refine_from`` on: one jump back to the walker's best model, then only small
    changes of masses (<= refine_mass_step), multipliers and branching ratios; no particle is
    added or merged (freezing what the combination does not use stays)."""
    records = []
    config = WalkerConfig(steps=300, seed=5, refine_from=200, refine_mass_step=10.0)
    walker = walk(toy_evaluator, config, template=template, on_step=records.append)
    assert walker.temperature(201) == config.refine_temperature
    assert walker.temperature(200) == config.temperature
    start = records[200]
    assert start.step == 201 and start.move == "refine-start" and start.accepted
    best_before = max(r.K for r in records[:200] if r.accepted)
    assert start.K == best_before
    later = records[201:]
    assert all("unfreeze" not in r.move and "merge" not in r.move for r in later)
    previous, steps = start.model, []
    for record in later:
        if record.accepted and record.move.startswith("mass"):
            steps.append(max(abs(record.model["masses"][p] - m)
                             for p, m in previous["masses"].items() if p in record.model["masses"]))
        if record.accepted:
            previous = record.model
    # (a step only grows, by 1.2 per redraw, where the first draw is illegal)
    assert steps and sum(d <= 10.05 for d in steps) >= 0.9 * len(steps)
    with pytest.raises(WalkerConfigError, match="refine_from"):
        WalkerConfig(refine_from=-1)


def test_config_round_trip_and_errors() -> None:
    config = WalkerConfig(
        steps=7,
        seed=9,
        walker=2,
        lsp_mass=(100.0, 150.0),
        final_temperature=0.5,
        teleport_until=5,
        probabilities=mv.MoveProbabilities(branchings=0.3),
        moves=mv.MoveSettings(merge_dm=150.0, walls=((1000021, 500.0),)),
    )
    text = json.dumps(config.as_json())
    assert WalkerConfig.from_json(json.loads(text)) == config
    for bad, field_name in (
        ({"steps": -1}, "steps"),
        ({"temperature": 0.0}, "temperature"),
        ({"lsp_mass": (300.0, 200.0)}, "lsp_mass"),
        ({"probabilities": mv.MoveProbabilities(ssm=1.5)}, "probabilities.ssm"),
    ):
        with pytest.raises(WalkerConfigError, match=field_name):
            WalkerConfig(**bad)
    with pytest.raises(WalkerConfigError, match="unknown"):
        WalkerConfig.from_json({"stpes": 3})


def test_start_model_checks(template) -> None:
    with_xsecs = Protomodel(
        masses={LSP: 100.0, 1000006: 500.0},
        decays={1000006: (Decay(LSP, (6,), 1.0),)},
        xsecs={(-1000006, 1000006): {13.0: 100.0}},
    )
    with pytest.raises(WalkerConfigError, match="xsecs"):
        Walker(toy_evaluator, template=template, start=with_xsecs)
    sneutrino_lsp = Protomodel(masses={1000012: 100.0, LSP: 200.0}, decays={
        LSP: (Decay(1000012, (12,), 1.0),)})  # fmt: skip
    with pytest.raises(WalkerConfigError, match="LSP"):
        Walker(toy_evaluator, template=template, start=sneutrino_lsp)


def test_storage_holds_history_state_and_hiscores(tmp_path, template) -> None:
    path = tmp_path / "run.sqlite"
    with RunStorage(path) as storage:
        walker = walk(toy_evaluator, WalkerConfig(steps=150, seed=11), template=template,
                      storage=storage)  # fmt: skip
        records = storage.steps(0)
        assert len(records) == 150
        assert storage.load_state(0) == json.loads(json.dumps(walker.state.as_json()))
        best = storage.hiscores()
        assert 1 <= len(best) <= 10
        assert best[0].K == walker.state.best.K
        assert best[0].model == model_to_json(walker.best)
        assert best[0].evaluation["K"] == best[0].K  # the full evaluation JSON
        assert [h.K for h in best] == [e.K for e in walker.state.hiscores]
        with pytest.raises(RunStorageError, match="already exists"):
            Walker(toy_evaluator, WalkerConfig(seed=11), template=template, storage=storage)


def test_resume_continues_the_same_chain(tmp_path, template) -> None:
    config = WalkerConfig(steps=120, seed=21, teleport_until=120)
    with RunStorage(tmp_path / "whole.sqlite") as storage:
        walk(toy_evaluator, config, template=template, storage=storage)
        whole, whole_hiscores = storage.steps(), storage.hiscores()
        whole_state = storage.load_state(0)
    storage = RunStorage(tmp_path / "split.sqlite")
    Walker(toy_evaluator, config, template=template, storage=storage).run(until=45)
    storage.close()
    del storage  # "crash": nothing survives but the file
    with RunStorage(tmp_path / "split.sqlite") as storage:
        resumed = Walker.resume(storage, toy_evaluator, template=template)
        assert resumed.state.step == 45 and resumed.config == config
        resumed.run()
        assert _chain(storage.steps()) == _chain(whole)
        assert storage.steps() == whole
        assert storage.hiscores() == whole_hiscores
        assert storage.load_state(0) == whole_state


KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    from protomodels.builders.storage import RunStorage
    from protomodels.builders.toy import toy_evaluator
    from protomodels.builders.walker import Walker, WalkerConfig

    def slow(model):
        time.sleep(0.01)
        return toy_evaluator(model)

    config = WalkerConfig(steps=int(sys.argv[2]), seed=33, teleport_until=100)
    Walker(slow, config, storage=RunStorage(sys.argv[1])).run()
    """
)


def test_resume_after_kill_9(tmp_path, template) -> None:
    steps = 300
    path = tmp_path / "killed.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(path), str(steps)])
    try:
        deadline = time.time() + 120
        done = 0
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if path.exists():
                try:
                    with RunStorage(path, timeout=1.0) as probe:
                        done = probe.count_steps()
                except Exception:  # the file may still be in the making
                    done = 0
            if done >= 60:
                break
        assert proc.poll() is None, "the walker finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    config = WalkerConfig(steps=steps, seed=33, teleport_until=100)
    with RunStorage(tmp_path / "whole.sqlite") as storage:
        walk(toy_evaluator, config, template=template, storage=storage)
        whole = storage.steps()
    with RunStorage(path) as storage:
        assert storage._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = storage.count_steps()
        assert 60 <= kept < steps
        assert storage.load_state(0)["step"] == kept  # state and history from one transaction
        walker = Walker.resume(storage, toy_evaluator, template=template)
        walker.run()
        assert storage.steps() == whole


def test_a_second_writer_of_a_run_is_refused_and_the_file_stays_intact(tmp_path, template) -> None:
    config = WalkerConfig(steps=60, seed=5, teleport_until=60)
    with RunStorage(tmp_path / "whole.sqlite") as storage:
        walk(toy_evaluator, config, template=template, storage=storage)
        whole = storage.steps()
    path = tmp_path / "shared.sqlite"
    with RunStorage(path) as storage:
        Walker(toy_evaluator, config, template=template, storage=storage).run(until=20)
    # two processes resume the same walker of one file: the one that writes second is refused
    first, second = RunStorage(path), RunStorage(path)
    a = Walker.resume(first, toy_evaluator, template=template)
    b = Walker.resume(second, toy_evaluator, template=template)
    a.run(until=30)
    with pytest.raises(RunStorageError, match=r"step 21 of walker 0 is already in .*shared"):
        b.run(until=30)
    second.close()
    assert first._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert first.count_steps() == 30
    a.run()
    assert first.steps() == whole
    first.close()


def test_a_walk_stops_on_repeated_internal_errors(template) -> None:  # noqa: ANN001
    """An engine bug (every evaluation an internal error) stops the walk with the error, it does
    not reject every step of the run."""
    import math

    from protomodels.builders.walker import MAX_INTERNAL_ERRORS
    from protomodels.evaluation import Evaluation
    from protomodels.exceptions import ProtomodelsError

    def broken(model):  # noqa: ANN001, ANN202
        return Evaluation(math.nan, math.nan, math.nan, math.nan, model, None, None, False,
                          "internal error (TypeError: bad call); please report this model")

    with pytest.raises(ProtomodelsError, match=f"{MAX_INTERNAL_ERRORS} evaluations in a row"):
        walk(broken, WalkerConfig(steps=200, seed=1), template=template)


# --------------------------------------------------------------------------- lockstep
class Batched:
    """The toy evaluation with a batch call that records the size of every batch (errors of
    single models become NaN evaluations, as :meth:`Evaluator.evaluate_many` does)."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, model: Protomodel):  # noqa: ANN204
        return toy_evaluator(model)

    def evaluate_many(self, models):  # noqa: ANN001, ANN201
        self.sizes.append(len(models))
        out = []
        for model in models:
            try:
                out.append(toy_evaluator(model))
            except ProtomodelsError as err:
                out.append(Stub(math.nan, model, passed=False, reason=f"ProtomodelsError: {err}"))
        return out


def test_walkers_in_lockstep_make_the_same_chains(template) -> None:  # noqa: ANN001
    """W walkers stepped together, their proposals evaluated as one batch per round, walk
    exactly the chains of W walkers walked one after the other; a resumed walker that is behind
    the others catches up in the same rounds."""
    configs = [WalkerConfig(steps=60, seed=3, walker=w, teleport_until=60) for w in range(4)]
    alone = [
        _chain(Walker(toy_evaluator, c, template=template).run()) for c in configs
    ]
    batched = Batched()
    walkers = [Walker(batched, c, template=template) for c in configs]
    walkers[0].run(until=20)  # one walker ahead of the others
    records = lockstep(walkers)
    def same(record: tuple) -> tuple:  # the batch call words a raised error differently
        return record[:5] + record[6:]

    together = [
        [same(r) for r in _chain([r for r in records if r.walker == w])]
        for w in range(len(configs))
    ]
    assert together[0] == [same(r) for r in alone[0][20:]]
    assert together[1:] == [[same(r) for r in chain] for chain in alone[1:]]
    assert max(batched.sizes) > len(configs)  # proposals and their simplifications at once
    assert all(w.step_number == 60 for w in walkers)
    # without a batch call: model by model, the same chains
    plain = [Walker(toy_evaluator, c, template=template) for c in configs]
    records = lockstep(plain, until=60)
    assert [_chain([r for r in records if r.walker == w]) for w in range(4)] == alone
