"""Critics: does a protomodel survive the LHC constraints?

Every critic is a small callable behind one interface (:class:`Critic`):
``critic(predictions, context) -> Verdict``.

- :class:`UpperLimitCritic`: counts sensitive results (r_exp >= 0.7) that exclude the model
  (r_obs > 1.38) and allows at most the 66 % quantile of a binomial with 5 % false exclusions;
- :class:`LikelihoodCritic`: the most sensitive combination of efficiency-map results must have
  an observed r below 1.

:func:`run_critics` runs them in order and merges the verdicts (passed = all passed). In
constructive mode (``CriticContext(constructive=True)``) nothing is vetoed; the verdicts carry
mu_max = 0.999 x threshold / r_max, the cap on the signal strength instead.
Reference: SModelS/protomodels ``develop``, ``tester/critic.py``; mu_max from
``getMaxAllowedMu`` (branches main, paper2020).
"""

from __future__ import annotations

from protomodels.critics.combined_limit import combined_upper_limit
from protomodels.critics.context import Critic, CriticContext
from protomodels.critics.likelihood import LikelihoodCritic
from protomodels.critics.run import DEFAULT_CRITICS, combine_verdicts, run_critics
from protomodels.critics.selection import sibling_key, upper_limit_candidates
from protomodels.critics.upper_limit import UpperLimitCritic, allowed_exclusions
from protomodels.critics.verdict import CriticEntry, CriticInputError, Verdict, mu_cap

__all__ = [
    "DEFAULT_CRITICS",
    "Critic",
    "CriticContext",
    "CriticEntry",
    "CriticInputError",
    "LikelihoodCritic",
    "UpperLimitCritic",
    "Verdict",
    "allowed_exclusions",
    "combine_verdicts",
    "combined_upper_limit",
    "mu_cap",
    "run_critics",
    "sibling_key",
    "upper_limit_candidates",
]


def __dir__() -> list[str]:
    return __all__
