"""Gradients, errors and posteriors of one protomodel (issue 21).

- :mod:`~protomodels.inference.parameters`: the continuous parameters theta (masses, ln ssm,
  branching ratios on the simplex);
- :mod:`~protomodels.inference.yields`: theta -> signal yields (pure ``jax.numpy``);
- :mod:`~protomodels.inference.profiled`: -ln L of each result in its yields, nuisances
  profiled, with exact first and second derivatives;
- :mod:`~protomodels.inference.objective`: T_L(theta), K(theta), gradients and Hessians at a
  fixed combination.
"""

from __future__ import annotations

from protomodels.inference.objective import Objective, objective_of
from protomodels.inference.parameters import Parameter, ParameterSpace

__all__ = ["Objective", "Parameter", "ParameterSpace", "objective_of"]


def __dir__() -> list[str]:
    return __all__
