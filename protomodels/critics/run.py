"""Run several critics on one model and merge their verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from protomodels.critics.context import Critic, CriticContext
from protomodels.critics.likelihood import LikelihoodCritic
from protomodels.critics.upper_limit import UpperLimitCritic
from protomodels.critics.verdict import Verdict
from protomodels.theory.predictions import TheoryPrediction

__all__ = ["DEFAULT_CRITICS", "combine_verdicts", "run_critics"]


def __dir__() -> list[str]:
    return __all__


#: the reference builder's critics, in its order (``develop``, ``Critic.predict_critic``)
DEFAULT_CRITICS: tuple[Critic, ...] = (UpperLimitCritic(), LikelihoodCritic())


def combine_verdicts(verdicts: Sequence[Verdict], *, constructive: bool = False) -> Verdict:
    """One verdict: passed if every part passed, mu_max the smallest of the parts'."""
    mu_max = min((v.mu_max for v in verdicts), default=float("inf"))
    r_max = max((v.r_max for v in verdicts if v.r_max is not None), default=None)
    return Verdict(
        critic="all",
        passed=all(v.passed for v in verdicts),
        constructive=constructive,
        mu_max=mu_max,
        r_max=r_max,
        parts=tuple(verdicts),
    )


def run_critics(
    predictions: Sequence[TheoryPrediction],
    context: CriticContext,
    critics: Sequence[Critic] = DEFAULT_CRITICS,
    *,
    stop_at_failure: bool = True,
) -> Verdict:
    """Run the critics in order and return the combined verdict.

    Args:
        predictions: the model's predictions (after any signal-strength rescaling).
        context: combinability, search, database and mode shared by the critics.
        critics: the critics to run.
        stop_at_failure: skip the remaining critics once one fails, as the reference does
            (their names are then listed in the notes).
    """
    verdicts: list[Verdict] = []
    skipped: list[str] = []
    for critic in critics:
        if stop_at_failure and verdicts and not verdicts[-1].passed:
            skipped.append(critic.name)
            continue
        verdicts.append(critic(predictions, context))
    combined = combine_verdicts(verdicts, constructive=context.constructive)
    if skipped:
        note = f"not run after a failure: {', '.join(skipped)}"
        combined = replace(combined, notes=(note,))
    return combined
