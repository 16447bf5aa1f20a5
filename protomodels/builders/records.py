"""Records of a walk: the compact JSON form of a protomodel, step records and hiscores.

The JSON form round-trips exactly (floats are written with ``repr``), so a model read back from a
run file is the model that was written, and a resumed walk continues the very same chain.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from protomodels.theory.protomodel import Decay, InvalidProtomodelError, Protomodel

__all__ = [
    "Hiscore",
    "StepRecord",
    "dumps",
    "model_from_json",
    "model_key",
    "model_to_json",
]


def __dir__() -> list[str]:
    return __all__


def model_to_json(model: Protomodel) -> dict[str, Any]:
    """Compact JSON form: ``{"masses": {pdg: GeV}, "decays": {pdg: [[daughter, [sm], br]]},
    (daughter 0 for a decay into SM particles only, a fourth entry [further BSM daughters]
    where there are some),
    "ssm": [[pdg_a, pdg_b, multiplier]], "name": str}`` (keys as strings, sorted), and
    ``"widths": {pdg: GeV}`` for a model with long-lived particles."""
    data = {
        "masses": {str(p): float(m) for p, m in sorted(model.masses.items())},
        "decays": {
            str(p): [[int(d.daughter), [int(s) for s in d.sm], float(d.br)]
                     + ([[int(x) for x in d.more]] if d.more else []) for d in channels]
            for p, channels in sorted(model.decays.items())
        },
        "ssm": [[int(a), int(b), float(v)] for (a, b), v in sorted(model.ssm.items())],
        "name": model.name,
    }
    if model.widths:  # (long-lived particles of walks with lifetimes; prompt models have none)
        data["widths"] = {str(p): float(w) for p, w in sorted(model.widths.items())}
    return data


def model_from_json(data: Mapping[str, Any]) -> Protomodel:
    """Rebuild a protomodel from :func:`model_to_json` output.

    Raises:
        InvalidProtomodelError: a field is missing or malformed, or the model is invalid.
    """
    try:
        masses = {int(p): float(m) for p, m in data["masses"].items()}
        decays = {
            int(p): tuple(Decay(int(d), tuple(int(s) for s in sm), float(br),
                                tuple(int(x) for x in more[0]) if more else ())
                          for d, sm, br, *more in ds)
            for p, ds in data["decays"].items()
        }
        ssm = {(int(a), int(b)): float(v) for a, b, v in data.get("ssm", [])}
        widths = {int(p): float(w) for p, w in data.get("widths", {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        msg = f"model JSON: cannot read masses/decays/ssm ({err!r}); expected model_to_json output"
        raise InvalidProtomodelError(msg) from err
    # (decays into SM particles only or into several BSM particles come from SLHA input,
    # which has SModelS's semantics: stable particles and such decays allowed)
    general = any(not d.daughter or d.more for ds in decays.values() for d in ds)
    return Protomodel(
        masses=masses, decays=decays, ssm=ssm, name=str(data.get("name", "protomodel")),
        widths=widths, allow_stable=general,
    )


def _sig(x: float) -> str:
    return f"{x:.6g}"


def model_key(model: Protomodel) -> str:
    """A digest that is equal for models equal to about 1e-6 relative (masses, branching ratios
    above 1e-6, multipliers; a missing multiplier counts as 1): the reference's
    ``ProtoModel.almostSameAs`` / ``Hiscores.similarDicts`` notion of 'the same model'."""
    masses = [[p, _sig(m)] for p, m in sorted(model.masses.items())]
    decays = [
        [p, sorted([d.daughter, list(d.sm), _sig(d.br)] for d in ds if d.br > 1e-6)]
        for p, ds in sorted(model.decays.items())
    ]
    ssm = [[a, b, _sig(v)] for (a, b), v in sorted(model.ssm.items()) if _sig(v) != "1"]
    text = json.dumps([masses, decays, ssm], separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    if isinstance(value, Protomodel):
        return model_to_json(value)
    if hasattr(value, "as_json"):
        return value.as_json()
    msg = f"cannot write {type(value).__name__} as JSON"
    raise TypeError(msg)


def dumps(value: Any) -> str:
    """Compact JSON (sorted keys; numpy scalars and arrays, sets and protomodels converted)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=_default)


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class StepRecord:
    """One step of one walker.

    Attributes:
        walker: walker id.
        step: step number (1, 2, ...; every proposal counts, accepted or not).
        move: what was proposed (``unfreeze+ssm``, ``mass+merge``, ``teleport``, ...).
        accepted: whether the chain moved to the proposal.
        K: test statistic of the proposal (None when it could not be evaluated).
        T_L: likelihood-ratio test statistic of the proposal (None likewise).
        muhat: signal strength the evaluation rescaled the proposal by (None likewise).
        K_current: K of the chain after this step.
        model: compact JSON of the proposal (as evaluated, i.e. rescaled by muhat).
        reason: why the proposal was rejected (None when accepted).
    """

    walker: int
    step: int
    move: str
    accepted: bool
    K: float | None
    T_L: float | None
    muhat: float | None
    K_current: float
    model: dict[str, Any]
    reason: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "K", _finite_or_none(self.K))
        object.__setattr__(self, "T_L", _finite_or_none(self.T_L))
        object.__setattr__(self, "muhat", _finite_or_none(self.muhat))


@dataclass(frozen=True)
class Hiscore:
    """One of the best models of a run.

    Attributes:
        K, T_L: its test statistics.
        walker, step: where it was found.
        model: compact JSON of the model.
        evaluation: the full evaluation JSON (``Evaluation.as_json()``).
        key: :func:`model_key` of the model (hiscores are distinct by key).
    """

    K: float
    T_L: float | None
    walker: int
    step: int
    model: dict[str, Any]
    evaluation: dict[str, Any] = field(default_factory=dict)
    key: str = ""
