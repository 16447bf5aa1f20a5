"""The random walk of the builder: propose a changed protomodel, evaluate it, accept or revert.

Follows the reference builder, SModelS/protomodels (branch ``develop``),
``walker/randomWalker.py`` class ``RandomWalker``:

* ``onestep``: freeze the particles that take no part in the current best combination
  (``freezePidsNotInBestCombo``), change the model at random (``randomlyChangeModel``), also try
  the simplified model with particles closer than 200 GeV merged (``simplifyModel``) and keep
  whichever of the two has the higher K, then maybe teleport (``checkIfToTeleport``);
* ``decideOnTakingStep``: take the step when K rises, else with probability
  ``exp((K_new - K) / 2)`` (here ``exp((K_new - K) / (2 T))`` with an optional temperature);
  a proposal failing the critics is reverted;
* ``checkIfToTeleport``: when the best K so far is at least 1 and the proposal's K (floored at
  -2) is below it, jump to one of the walker's hiscores (the best most likely: weights
  2^(n-1), ..., 1) with probability ``0.5 (1 - exp((K - K_best) / 10))``; the reference switches
  teleportation off by default (``stopTeleportationAfter = -1``), so does ``teleport_until``;
* the walk starts from the LSP alone at a mass uniform in [200, 500] GeV with K = -20,
  T_L = -0.1 (``RandomWalker.__init__``, ``ProtoModel.initializeModel``).

The evaluation is injected: ``evaluator(model) -> Evaluation``. It rescales the model by muhat
(the reference's ``predict`` loop) and runs the critics; a model it cannot evaluate (it raises
a :class:`~protomodels.exceptions.ProtomodelsError` or returns K = NaN) is a rejected proposal
with its reason recorded. Unlike the reference, such a step is counted, so that the history
has one row per step.

All randomness comes from one :class:`numpy.random.Generator` seeded by (seed, walker id). Its
state is saved with every step, so a walk resumed from the run file continues the same chain.
The walker does no I/O besides the storage object and prints nothing; ``on_step`` receives
every :class:`~protomodels.builders.records.StepRecord`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from protomodels.builders.moves import (
    MoveProbabilities,
    MoveSettings,
    freeze_unused,
    lsp_only,
    merge_particles,
    random_move,
    refine_move,
    refine_settings,
)
from protomodels.builders.records import (
    Hiscore,
    StepRecord,
    model_from_json,
    model_key,
    model_to_json,
)
from protomodels.builders.storage import RunStorage
from protomodels.exceptions import ProtomodelsError
from protomodels.paths import shared_dir
from protomodels.theory.particles import LSP, Template, load_template
from protomodels.theory.protomodel import Protomodel

__all__ = [
    "ModelEvaluator",
    "Evaluation",
    "ManyEvaluator",
    "Proposal",
    "Walker",
    "WalkerConfig",
    "WalkerConfigError",
    "WalkerState",
    "acceptance_probability",
    "combination_particles",
    "lockstep",
    "teleport_probability",
    "walk",
]


def __dir__() -> list[str]:
    return __all__


#: consecutive evaluations failing with an internal error after which a walk stops (an engine
#: bug would otherwise reject every step of the run)
MAX_INTERNAL_ERRORS = 25


class Evaluation(Protocol):
    """What the walker needs from an evaluation of a protomodel.

    Attributes:
        K: the test statistic (NaN: could not be evaluated).
        T_L: the likelihood-ratio test statistic.
        muhat: the signal strength the model was rescaled by.
        model: the model rescaled by muhat (the one the chain moves to).
        passed: whether the critics let it pass.
        reason: why the critics failed it (or None).
        combination: the best combination of results.
    """

    K: float
    T_L: float
    muhat: float
    model: Protomodel
    passed: bool
    reason: str | None
    combination: list

    def as_json(self) -> dict[str, Any]:
        """The full evaluation as JSON (stored with the hiscores)."""
        ...


ModelEvaluator = Callable[[Protomodel], Evaluation]


class WalkerConfigError(ProtomodelsError):
    """A walker setting or starting model is not usable (message names the field)."""


def combination_particles(evaluation: Evaluation) -> frozenset[int] | None:
    """PDG ids taking part in the best combination: the evaluation's
    ``combination_particles`` attribute when it has one, else None (then nothing is frozen)."""
    value = getattr(evaluation, "combination_particles", None)
    if value is None:
        return None
    return frozenset(abs(int(p)) for p in value)


def acceptance_probability(k_new: float, k_old: float, temperature: float = 1.0) -> float:
    """``RandomWalker.decideOnTakingStep``: 1 when K rises, else ``exp((K_new - K) / (2 T))``."""
    if k_new > k_old:
        return 1.0
    ratio = math.exp((k_new - k_old) / (2.0 * temperature))
    return 0.0 if math.isnan(ratio) else ratio


def teleport_probability(
    k: float, k_best: float, *, pmax: float = 0.5, norm: float = 10.0, floor: float = -2.0
) -> float:
    """``RandomWalker.checkIfToTeleport``: ``pmax (1 - exp((max(K, floor) - K_best) / norm))``
    below the best K, else 0."""
    ours = k if k > floor else floor
    if ours >= k_best:
        return 0.0
    return pmax * (1.0 - math.exp((ours - k_best) / norm))


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _probability(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        msg = f"{name} = {value!r}: a probability, between 0 and 1"
        raise WalkerConfigError(msg)


@dataclass(frozen=True)
class WalkerConfig:
    """Settings of one walker (JSON round-trip: :meth:`as_json` / :meth:`from_json`).

    Attributes:
        steps: total number of steps (``nsteps``).
        seed: random seed of the run; the walker's generator is seeded by (seed, walker).
        walker: walker id.
        template: path of the template SLHA (default: the shared template).
        lsp_mass: GeV, range of the starting LSP mass (``initializeModel``: 200 to 500).
        initial_K, initial_T_L: the chain's values before the first step (-20, -0.1).
        temperature: T of the acceptance ``exp((K_new - K) / (2 T))`` (reference: 1).
        final_temperature: anneal geometrically from ``temperature`` to this at the last step
            (None: constant temperature).
        teleport_until: teleportation is allowed up to this step (None: never, as the
            reference's default ``stopTeleportationAfter = -1``).
        teleport_pmax, teleport_norm, teleport_min_best_K, teleport_floor_K: the reference's
            ``checkIfToTeleport(pmax=0.5, norm=10.)``, ``bestK < 1`` and ``ourK = -2``.
        simplify: also evaluate the model with nearby particles merged (``simplifyModel``).
        freeze_unused: freeze particles outside the best combination before each move.
        hiscores: how many best distinct models are kept (``insertHiscore``: 10).
        probabilities: how a proposal is drawn (:class:`MoveProbabilities`).
        moves: step sizes and constraints (:class:`MoveSettings`).
        polish: gradient steps on the continuous parameters of an accepted model whose K is
            within ``polish_margin`` of the walker's best (0: off; see
            :mod:`protomodels.inference.polish`); the polished model replaces it if its K is
            higher and it passes the critics (move name ``...+polish``).
        polish_margin: how far below the walker's best K an accepted model is still polished.
        refine_from: from the step after this one the walker refines its best model: it jumps
            back to it and proposes only small changes of masses (up to ``refine_mass_step``
            GeV), multipliers and branching ratios at ``refine_temperature``, without merging
            particles (None: never; not in the reference builder).
    """

    steps: int = 1000
    seed: int = 0
    walker: int = 0
    template: str | None = None
    lsp_mass: tuple[float, float] = (200.0, 500.0)
    initial_K: float = -20.0
    initial_T_L: float = -0.1
    temperature: float = 1.0
    final_temperature: float | None = None
    teleport_until: int | None = None
    teleport_pmax: float = 0.5
    teleport_norm: float = 10.0
    teleport_min_best_K: float = 1.0
    teleport_floor_K: float = -2.0
    simplify: bool = True
    freeze_unused: bool = True
    hiscores: int = 10
    probabilities: MoveProbabilities = field(default_factory=MoveProbabilities)
    moves: MoveSettings = field(default_factory=MoveSettings)
    polish: int = 0
    polish_margin: float = 1.0
    refine_from: int | None = None
    refine_temperature: float = 0.02
    refine_mass_step: float = 5.0

    def __post_init__(self) -> None:
        for name in ("steps", "seed", "walker"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
                msg = f"{name} = {value!r}: need an integer >= 0"
                raise WalkerConfigError(msg)
        low, high = self.lsp_mass
        if not 0 < low <= high:
            msg = f"lsp_mass = {self.lsp_mass!r}: need 0 < low <= high (GeV)"
            raise WalkerConfigError(msg)
        if not self.temperature > 0:
            msg = f"temperature = {self.temperature!r}: need T > 0"
            raise WalkerConfigError(msg)
        if self.final_temperature is not None and not self.final_temperature > 0:
            msg = f"final_temperature = {self.final_temperature!r}: need T > 0 or None"
            raise WalkerConfigError(msg)
        if self.teleport_until is not None and self.teleport_until < 0:
            msg = f"teleport_until = {self.teleport_until!r}: need a step >= 0 or None"
            raise WalkerConfigError(msg)
        if self.refine_from is not None and (
            not isinstance(self.refine_from, (int, np.integer)) or self.refine_from < 0
        ):
            msg = f"refine_from = {self.refine_from!r}: need a step >= 0 or None"
            raise WalkerConfigError(msg)
        if not self.refine_temperature > 0 or not self.refine_mass_step > 0:
            msg = (f"refine_temperature = {self.refine_temperature!r}, refine_mass_step = "
                   f"{self.refine_mass_step!r}: need values > 0")
            raise WalkerConfigError(msg)
        if self.hiscores < 1:
            msg = f"hiscores = {self.hiscores!r}: keep at least one"
            raise WalkerConfigError(msg)
        if not isinstance(self.polish, (int, np.integer)) or self.polish < 0:
            raise WalkerConfigError(f"polish = {self.polish!r}: need an integer >= 0")
        if not (isinstance(self.polish_margin, (int, float)) and self.polish_margin >= 0):
            raise WalkerConfigError(f"polish_margin = {self.polish_margin!r}: need a value >= 0")
        _probability("teleport_pmax", self.teleport_pmax)
        for item in dataclasses.fields(MoveProbabilities):
            if not item.name.endswith(("_sigma", "_offset")):
                _probability(f"probabilities.{item.name}", getattr(self.probabilities, item.name))

    def as_json(self) -> dict[str, Any]:
        """The settings as JSON-compatible data."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WalkerConfig:
        """Settings from :meth:`as_json` output.

        Raises:
            WalkerConfigError: an unknown or malformed field.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            msg = f"walker config: unknown field(s) {unknown}; known: {sorted(known)}"
            raise WalkerConfigError(msg)
        values = {k: _tuples(v) for k, v in data.items()}
        try:
            if "probabilities" in values:
                values["probabilities"] = MoveProbabilities(**dict(data["probabilities"]))
            if "moves" in values:
                values["moves"] = MoveSettings(
                    **{k: _tuples(v) for k, v in dict(data["moves"]).items()}
                )
        except TypeError as err:
            msg = f"walker config: {err}"
            raise WalkerConfigError(msg) from err
        return cls(**values)


@dataclass
class _Entry:
    """A hiscore of the walker (for teleportation)."""

    K: float
    T_L: float
    step: int
    model: Protomodel
    particles: frozenset[int] | None
    key: str

    def as_json(self) -> dict[str, Any]:
        return {
            "K": self.K,
            "T_L": self.T_L,
            "step": self.step,
            "model": model_to_json(self.model),
            "particles": None if self.particles is None else sorted(self.particles),
            "key": self.key,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Entry:
        particles = data.get("particles")
        return cls(
            float(data["K"]),
            float(data["T_L"]),
            int(data["step"]),
            model_from_json(data["model"]),
            None if particles is None else frozenset(int(p) for p in particles),
            str(data["key"]),
        )


@dataclass
class WalkerState:
    """Everything a walker needs to continue (besides its configuration).

    Attributes:
        step: steps done.
        model: the current model (after muhat rescaling).
        K, T_L: its test statistics.
        particles: PDG ids of its best combination (None: unknown).
        hiscores: the walker's best distinct models, best first.
        rng: the generator's ``bit_generator.state``.
    """

    step: int
    model: Protomodel
    K: float
    T_L: float
    particles: frozenset[int] | None
    hiscores: list[_Entry]
    rng: dict[str, Any]

    @property
    def best(self) -> _Entry | None:
        """The best model so far (None before the first accepted step)."""
        return self.hiscores[0] if self.hiscores else None

    def as_json(self) -> dict[str, Any]:
        """The state as JSON-compatible data (round-trips exactly)."""
        best = self.best
        return {
            "step": self.step,
            "model": model_to_json(self.model),
            "K": self.K,
            "T_L": self.T_L,
            "particles": None if self.particles is None else sorted(self.particles),
            "best_model": None if best is None else model_to_json(best.model),
            "best_K": None if best is None else best.K,
            "hiscores": [e.as_json() for e in self.hiscores],
            "rng": self.rng,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WalkerState:
        """State from :meth:`as_json` output."""
        particles = data.get("particles")
        return cls(
            step=int(data["step"]),
            model=model_from_json(data["model"]),
            K=float(data["K"]),
            T_L=float(data["T_L"]),
            particles=None if particles is None else frozenset(int(p) for p in particles),
            hiscores=[_Entry.from_json(e) for e in data.get("hiscores", [])],
            rng=dict(data["rng"]),
        )


@dataclass(frozen=True)
class _Candidate:
    """A proposal after evaluation (``ok`` False: it could not be evaluated)."""

    ok: bool
    model: Protomodel
    K: float | None = None
    T_L: float | None = None
    muhat: float | None = None
    passed: bool = False
    reason: str | None = None
    particles: frozenset[int] | None = None
    evaluation: Evaluation | None = None


@dataclass(frozen=True)
class Proposal:
    """The models a step evaluates: the changed model and, when nearby particles could be
    merged, its simplification (``step``: the step's number; ``names``: the moves made)."""

    step: int
    names: tuple[str, ...]
    model: Protomodel
    simpler: Protomodel | None = None

    @property
    def models(self) -> tuple[Protomodel, ...]:
        """The models to evaluate, in order."""
        return (self.model,) if self.simpler is None else (self.model, self.simpler)


def _check_start(model: Protomodel) -> None:
    if model.lsp != LSP:
        msg = f"start model: its LSP is {model.lsp}; the walker needs the neutralino {LSP}"
        raise WalkerConfigError(msg)
    if model.xsecs is not None:
        msg = (
            "start model: it has explicit cross sections (xsecs); the walker varies the "
            "multipliers of the reference tables, so build it without xsecs"
        )
        raise WalkerConfigError(msg)
    stable = [p for p in model.masses if p != LSP and not model.decays.get(p)]
    if stable:
        msg = f"start model: particles {stable} have no decays; give them decay channels"
        raise WalkerConfigError(msg)


def _default_template(config: WalkerConfig) -> Template:
    if config.template is not None:
        return load_template(Path(config.template))
    return load_template(shared_dir() / "data" / "templates" / "protomodel_template.slha")


class Walker:
    """One random walker.

    Args:
        evaluator: ``evaluator(model) -> Evaluation`` (see :class:`Evaluation`).
        config: the settings (default :class:`WalkerConfig`).
        template: the protomodel template (default: ``config.template`` or the shared one).
        storage: the run file to write every step to (None: keep nothing).
        start: starting model (default: the LSP alone).
        on_step: called with every :class:`StepRecord` (e.g. a progress bar).
        particles_of: PDG ids of an evaluation's best combination (default
            :func:`combination_particles`).

    Raises:
        WalkerConfigError: unusable start model.
        RunStorageError: the walker id exists in the run file already (use :meth:`resume`).
    """

    def __init__(
        self,
        evaluator: ModelEvaluator,
        config: WalkerConfig | None = None,
        *,
        template: Template | None = None,
        storage: RunStorage | None = None,
        start: Protomodel | None = None,
        on_step: Callable[[StepRecord], None] | None = None,
        particles_of: Callable[[Evaluation], Collection[int] | None] = combination_particles,
    ) -> None:
        config = config or WalkerConfig()
        self._setup(evaluator, config, template, storage, on_step, particles_of)
        self.rng = np.random.default_rng(np.random.SeedSequence([config.seed, config.walker]))
        if start is None:
            start = lsp_only(self.rng.uniform(*config.lsp_mass))
        _check_start(start)
        self.state = WalkerState(
            step=0,
            model=start,
            K=float(config.initial_K),
            T_L=float(config.initial_T_L),
            particles=None,
            hiscores=[],
            rng=self.rng.bit_generator.state,
        )
        if storage is not None:
            storage.add_walker(config.walker, config.seed, config.as_json(), self.state.as_json())

    def _setup(
        self,
        evaluator: ModelEvaluator,
        config: WalkerConfig,
        template: Template | None,
        storage: RunStorage | None,
        on_step: Callable[[StepRecord], None] | None,
        particles_of: Callable[[Evaluation], Collection[int] | None],
    ) -> None:
        self.evaluator = evaluator
        self.config = config
        self.template = template if template is not None else _default_template(config)
        self.storage = storage
        self.on_step = on_step
        self.particles_of = particles_of
        self._internal_errors = 0
        self.polisher = None
        if config.polish:
            from protomodels.inference.polish import Polisher, PolishSettings

            self.polisher = Polisher(evaluator, PolishSettings(steps=config.polish))

    @classmethod
    def resume(
        cls,
        storage: RunStorage,
        evaluator: ModelEvaluator,
        *,
        walker: int = 0,
        template: Template | None = None,
        on_step: Callable[[StepRecord], None] | None = None,
        particles_of: Callable[[Evaluation], Collection[int] | None] = combination_particles,
    ) -> Walker:
        """Continue a walker from its run file: configuration, state and generator as saved
        with its last whole step.

        Raises:
            RunStorageError: the run file has no such walker.
        """
        config = WalkerConfig.from_json(storage.walker_config(walker))
        self = cls.__new__(cls)
        self._setup(evaluator, config, template, storage, on_step, particles_of)
        self.state = WalkerState.from_json(storage.load_state(walker))
        self.rng = np.random.Generator(np.random.PCG64())
        self.rng.bit_generator.state = self.state.rng
        return self

    # -- properties -------------------------------------------------------------------------
    @property
    def step_number(self) -> int:
        """Steps done."""
        return self.state.step

    @property
    def model(self) -> Protomodel:
        """The current model."""
        return self.state.model

    @property
    def best(self) -> Protomodel | None:
        """The best model so far."""
        best = self.state.best
        return None if best is None else best.model

    def refining(self, step: int) -> bool:
        """Whether a step belongs to the final refinement (``refine_from``)."""
        return self.config.refine_from is not None and step > self.config.refine_from

    def temperature(self, step: int) -> float:
        """Temperature at a step (geometric annealing when ``final_temperature`` is set; the
        refinement's own temperature during the refinement)."""
        cfg = self.config
        if self.refining(step):
            return cfg.refine_temperature
        if cfg.final_temperature is None or cfg.steps == 0:
            return cfg.temperature
        fraction = min(step, cfg.steps) / cfg.steps
        return cfg.temperature * (cfg.final_temperature / cfg.temperature) ** fraction

    # -- one step ---------------------------------------------------------------------------
    def _evaluate(self, model: Protomodel) -> _Candidate:
        try:
            evaluation = self.evaluator(model)
        except ProtomodelsError as err:
            return _Candidate(False, model, reason=f"{type(err).__name__}: {err}")
        return self._candidate(model, evaluation)

    def _candidate(self, model: Protomodel, evaluation: Evaluation) -> _Candidate:
        """A proposal's evaluation as a candidate step (counts internal errors in a row)."""
        k = float(evaluation.K)
        internal = math.isnan(k) and (evaluation.reason or "").startswith("internal error")
        self._internal_errors = self._internal_errors + 1 if internal else 0
        if self._internal_errors >= MAX_INTERNAL_ERRORS:
            # a bug of the engine, not a model: stop rather than reject every step
            msg = (
                f"{MAX_INTERNAL_ERRORS} evaluations in a row failed with an internal error, "
                f"the last: {evaluation.reason}"
            )
            raise ProtomodelsError(msg)
        if math.isnan(k):
            why = f"K is NaN ({evaluation.reason})" if evaluation.reason else "K is NaN"
            return _Candidate(False, model, reason=why)
        particles = self.particles_of(evaluation)
        return _Candidate(
            True,
            evaluation.model if evaluation.model is not None else model,
            K=k,
            T_L=float(evaluation.T_L),
            muhat=float(evaluation.muhat),
            passed=bool(evaluation.passed),
            reason=evaluation.reason,
            particles=None if particles is None else frozenset(abs(int(p)) for p in particles),
            evaluation=evaluation,
        )

    def _teleport(self, step: int, k: float) -> _Candidate | None:
        cfg, hiscores = self.config, self.state.hiscores
        if cfg.teleport_until is None or step > cfg.teleport_until or not hiscores:
            return None
        k_best = hiscores[0].K
        if k_best < cfg.teleport_min_best_K:
            return None
        probability = teleport_probability(
            k, k_best, pmax=cfg.teleport_pmax, norm=cfg.teleport_norm, floor=cfg.teleport_floor_K
        )
        if probability <= 0.0 or self.rng.uniform() >= probability:
            return None
        weights = 2.0 ** np.arange(len(hiscores) - 1, -1, -1)
        entry = hiscores[int(self.rng.choice(len(hiscores), p=weights / weights.sum()))]
        return _Candidate(
            True, entry.model, entry.K, entry.T_L, 1.0, True, None, entry.particles, None
        )

    def _decide(self, candidate: _Candidate, step: int) -> tuple[bool, str | None]:
        if not candidate.ok or candidate.K is None:
            return False, candidate.reason or "could not be evaluated"
        k_old = self.state.K
        if candidate.K <= k_old:
            ratio = acceptance_probability(candidate.K, k_old, self.temperature(step))
            u = float(self.rng.uniform())
            if u > ratio:
                return False, (
                    f"K {k_old:.4g} -> {candidate.K:.4g}: u = {u:.3f} > exp(dK / 2T) = {ratio:.3f}"
                )
        if not candidate.passed:
            return False, f"critics: {candidate.reason or 'failed'}"
        return True, None

    def _worth_polishing(self, candidate: _Candidate) -> bool:
        """An accepted, evaluated model within ``polish_margin`` of the walker's best K."""
        if self.polisher is None or candidate.evaluation is None or candidate.K is None:
            return False
        best = self.state.hiscores[0].K if self.state.hiscores else -math.inf
        return candidate.K >= best - self.config.polish_margin

    def _remember(self, candidate: _Candidate, step: int) -> Hiscore | None:
        """Offer an accepted model to the walker's hiscores; the storage entry when it enters."""
        assert candidate.K is not None and candidate.evaluation is not None
        hiscores, keep = self.state.hiscores, self.config.hiscores
        key = model_key(candidate.model)
        same = [e for e in hiscores if e.key == key]
        if same and same[0].K >= candidate.K:
            return None
        if not same and len(hiscores) >= keep and candidate.K <= hiscores[-1].K:
            return None
        entry = _Entry(
            candidate.K,
            float(candidate.T_L or 0.0),
            step,
            candidate.model,
            candidate.particles,
            key,
        )
        hiscores[:] = [e for e in hiscores if e.key != key] + [entry]
        hiscores.sort(key=lambda e: -e.K)
        del hiscores[keep:]
        return Hiscore(
            K=candidate.K,
            T_L=candidate.T_L,
            walker=self.config.walker,
            step=step,
            model=model_to_json(candidate.model),
            evaluation=candidate.evaluation.as_json(),
            key=key,
        )

    def propose(self) -> Proposal:
        """The random part of a step before any evaluation: freeze the particles outside the
        best combination, change the model at random, and merge nearby particles (the models to
        evaluate: ``proposal.models``). Evaluations use no random numbers, so proposing all
        the models first draws the same numbers as the reference's order."""
        cfg, state, rng = self.config, self.state, self.rng
        names: list[str] = []
        base = state.model
        if cfg.freeze_unused and state.particles:
            base, record = freeze_unused(
                base, rng, self.template, state.particles, settings=cfg.moves
            )
            if record.changed:
                names.append(record.move)
        refining = self.refining(state.step + 1)
        if refining:
            model, record = refine_move(
                base, rng, self.template,
                settings=refine_settings(cfg.moves, cfg.refine_mass_step),
            )
        else:
            model, record = random_move(
                base, rng, self.template, cfg.probabilities, settings=cfg.moves, t_l=state.T_L
            )
        names.append(record.move)
        simpler = None
        if cfg.simplify and not refining:
            merged_model, merged = merge_particles(model, rng, self.template, settings=cfg.moves)
            if merged.changed:
                simpler = merged_model
        return Proposal(state.step + 1, tuple(names), model, simpler)

    def conclude(self, proposal: Proposal, evaluations: Sequence[Evaluation]) -> StepRecord:
        """Finish a step from the evaluations of ``proposal.models`` (in that order): keep the
        better of the proposal and its simplification, maybe teleport, accept or revert, and
        record the step."""
        if len(evaluations) != len(proposal.models):
            msg = f"{len(proposal.models)} models proposed, {len(evaluations)} evaluations"
            raise ValueError(msg)
        pairs = zip(proposal.models, evaluations, strict=True)
        return self._conclude(proposal, [self._candidate(m, e) for m, e in pairs])

    def step(self) -> StepRecord:
        """Make one step (proposal, evaluation, decision) and record it."""
        proposal = self.propose()
        return self._conclude(proposal, [self._evaluate(m) for m in proposal.models])

    def _conclude(self, proposal: Proposal, candidates: Sequence[_Candidate]) -> StepRecord:
        cfg, state, rng = self.config, self.state, self.rng
        number, names = proposal.step, list(proposal.names)
        candidate = candidates[0]
        if len(candidates) > 1:
            other = candidates[1]
            if other.ok and (not candidate.ok or other.K > candidate.K):  # type: ignore[operator]
                candidate = other
                names.append("merge")
        move = "+".join(n for n in names if n != "noop") or "noop"
        if candidate.ok and candidate.K is not None:
            target = self._teleport(number, candidate.K)
            if target is not None:
                candidate, move = target, "teleport"
        if cfg.refine_from is not None and number == cfg.refine_from + 1 and state.hiscores:
            best = state.hiscores[0]
            if best.K > state.K and (not candidate.ok or candidate.K is None
                                     or best.K > candidate.K):
                # the refinement starts from the walker's best model
                candidate, move = _Candidate(True, best.model, best.K, best.T_L, 1.0, True,
                                             None, best.particles, None), "refine-start"
        accepted, reason = self._decide(candidate, number)
        if accepted and self._worth_polishing(candidate):
            polished = self.polisher(candidate.evaluation)  # type: ignore[misc]
            if polished is not None:
                candidate = self._candidate(polished.model, polished)
                move += "+polish"
        hiscore = None
        if accepted:
            state.model = candidate.model
            state.K = float(candidate.K)  # type: ignore[arg-type]
            state.T_L = float(candidate.T_L)  # type: ignore[arg-type]
            state.particles = candidate.particles
            if candidate.evaluation is not None:
                hiscore = self._remember(candidate, number)
        state.step = number
        state.rng = rng.bit_generator.state
        result = StepRecord(
            walker=cfg.walker,
            step=number,
            move=move,
            accepted=accepted,
            K=candidate.K,
            T_L=candidate.T_L,
            muhat=candidate.muhat,
            K_current=state.K,
            model=model_to_json(candidate.model),
            reason=reason,
        )
        if self.storage is not None:
            self.storage.commit_step(result, state.as_json(), hiscore, keep=cfg.hiscores)
        if self.on_step is not None:
            self.on_step(result)
        return result

    def run(self, until: int | None = None) -> list[StepRecord]:
        """Step until ``until`` steps are done (default ``config.steps``); the new records."""
        until = self.config.steps if until is None else until
        records = []
        while self.state.step < until:
            records.append(self.step())
        return records


def walk(
    evaluator: ModelEvaluator,
    config: WalkerConfig | None = None,
    *,
    template: Template | None = None,
    storage: RunStorage | None = None,
    start: Protomodel | None = None,
    on_step: Callable[[StepRecord], None] | None = None,
) -> Walker:
    """Run a walker from the start for ``config.steps`` steps; returns it (state, hiscores)."""
    walker = Walker(
        evaluator, config, template=template, storage=storage, start=start, on_step=on_step
    )
    walker.run()
    return walker


#: ``evaluate_many(models) -> evaluations``, e.g.
#: :meth:`protomodels.evaluation.Evaluator.evaluate_many`
ManyEvaluator = Callable[[Sequence[Protomodel]], Sequence[Evaluation]]


def lockstep(
    walkers: Sequence[Walker],
    until: int | None = None,
    *,
    evaluate_many: ManyEvaluator | None = None,
) -> list[StepRecord]:
    """Step several walkers together: in each round every walker that has not reached
    ``until`` (default: its ``config.steps``) proposes, the proposals of all of them are
    evaluated as one batch, and each walker finishes its step. The chains are the same as
    walking each on its own (each walker has its own generator; evaluations draw none).

    Args:
        walkers: the walkers (each with its own id and generator; they may be at different
            steps, e.g. resumed).
        until: steps to reach (default: each walker's ``config.steps``).
        evaluate_many: evaluates a list of models in one call (default: the first walker's
            evaluator's ``evaluate_many`` when it has one, else model by model).

    Returns:
        The new step records, in the order they were made.
    """
    if evaluate_many is None:
        evaluate_many = getattr(walkers[0].evaluator, "evaluate_many", None) if walkers else None
    records: list[StepRecord] = []
    while True:
        active = [
            w for w in walkers if w.state.step < (w.config.steps if until is None else until)
        ]
        if not active:
            return records
        proposals = [w.propose() for w in active]
        if evaluate_many is None:
            for walker, proposal in zip(active, proposals, strict=True):
                candidates = [walker._evaluate(m) for m in proposal.models]
                records.append(walker._conclude(proposal, candidates))
            continue
        models = [m for p in proposals for m in p.models]
        evaluations = list(evaluate_many(models))
        if len(evaluations) != len(models):
            msg = f"evaluate_many: {len(models)} models, {len(evaluations)} evaluations"
            raise ValueError(msg)
        start = 0
        for walker, proposal in zip(active, proposals, strict=True):
            part = evaluations[start:start + len(proposal.models)]
            start += len(proposal.models)
            records.append(walker.conclude(proposal, part))
