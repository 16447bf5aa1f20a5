"""Fisher-information errors of a protomodel's parameters at its best fit.

The covariance is the inverse of the Hessian of -ln L = sum_i nll_i (the Fisher information,
observed; by default in its Gauss-Newton form, see :mod:`~protomodels.inference.objective`).
Parameters that no member of the combination depends on (a multiplier of a pair that gives the
combination no signal) have no information: they are reported as unconstrained (no error) and
left out of the inversion. Directions of the remaining block with (numerically) zero or negative
curvature are flagged: their errors come from the pseudo-inverse and are not meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from protomodels.inference.objective import Objective

__all__ = ["FisherErrors", "covariance_from_hessian", "fisher_errors"]


def __dir__() -> list[str]:
    return __all__


#: a parameter is unconstrained when its curvature is below this fraction of the largest one
#: (relative to the parameter's scale, see :func:`covariance_from_hessian`)
UNCONSTRAINED = 1e-10


@dataclass(frozen=True)
class FisherErrors:
    """Errors and correlations from the Fisher information.

    Attributes:
        names, kinds: of every parameter.
        values: the parameters at the fit (theta).
        errors: 1 sigma errors (NaN for unconstrained parameters).
        covariance, correlation: (n, n), NaN rows/columns for unconstrained parameters.
        constrained: which parameters have information.
        K, T_L: at the fit.
        gradient: dK/dtheta there (small at a best fit, except where a bound holds it).
        method: the Hessian's form (``gauss-newton`` or ``exact``).
        flags: remarks (degenerate directions).
    """

    names: list[str]
    kinds: list[str]
    values: np.ndarray
    errors: np.ndarray
    covariance: np.ndarray
    correlation: np.ndarray
    constrained: np.ndarray
    K: float
    T_L: float
    gradient: np.ndarray
    method: str
    flags: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record (NaN as None)."""

        def clean(a: np.ndarray) -> Any:
            return np.where(np.isfinite(a), a, np.nan).astype(object).tolist() if a.ndim else a

        def nan_none(x: Any) -> Any:
            if isinstance(x, list):
                return [nan_none(v) for v in x]
            return None if isinstance(x, float) and not np.isfinite(x) else x

        return {
            "K": self.K, "T_L": self.T_L, "method": self.method, "flags": self.flags,
            "parameters": [
                {"name": n, "kind": k, "value": float(v),
                 "error": nan_none(float(e)), "gradient": float(g)}
                for n, k, v, e, g in zip(self.names, self.kinds, self.values, self.errors,
                                         self.gradient, strict=True)
            ],
            "correlation": nan_none(clean(self.correlation)),
        }


def covariance_from_hessian(
    hessian: np.ndarray, threshold: float = UNCONSTRAINED
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(covariance, constrained, flags) from the Hessian of -ln L.

    A parameter is constrained when its curvature exceeds ``threshold`` times the largest
    curvature (both taken after scaling every parameter to unit curvature where it has any). The
    constrained block is inverted (pseudo-inverse where it is singular, flagged).
    """
    h = 0.5 * (np.asarray(hessian, float) + np.asarray(hessian, float).T)
    n = h.shape[0]
    diag = np.diag(h).copy()
    top = float(np.max(np.abs(diag))) if n else 0.0
    constrained = diag > threshold * top if top > 0 else np.zeros(n, bool)
    flags: list[str] = []
    cov = np.full((n, n), np.nan)
    idx = np.flatnonzero(constrained)
    if len(idx):
        block = h[np.ix_(idx, idx)]
        scale = 1.0 / np.sqrt(np.diag(block))
        unit = block * scale[:, None] * scale[None, :]
        eig = np.linalg.eigvalsh(unit)
        if eig.min() <= 1e-10 * eig.max():
            flags.append(
                f"the curvature has {int((eig <= 1e-10 * eig.max()).sum())} flat or negative "
                "direction(s) among the constrained parameters: their errors are not meaningful "
                "(pseudo-inverse)"
            )
            inv = np.linalg.pinv(unit, hermitian=True)
        else:
            inv = np.linalg.inv(unit)
        cov[np.ix_(idx, idx)] = inv * scale[:, None] * scale[None, :]
    return cov, constrained, flags


def fisher_errors(
    objective: Objective, theta: np.ndarray | None = None, *, method: str = "gauss-newton"
) -> FisherErrors:
    """The Fisher errors of ``objective``'s parameters at ``theta`` (default its theta0)."""
    theta = objective.theta0 if theta is None else np.asarray(theta, float)
    # one pass gives the gradient and the Gauss-Newton Hessian together
    total, grad_nll, hessian = objective.derivatives(theta)
    if method != "gauss-newton":
        hessian = objective.hessian(theta, method=method)
    cov, constrained, flags = covariance_from_hessian(hessian)
    errors = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(errors, errors)
    k = 2.0 * (objective.nll_sm - total) + objective.log_prior
    grad = -2.0 * grad_nll
    if not constrained.any():
        flags.append("no parameter is constrained by the combination")
    return FisherErrors(
        names=list(objective.space.names),
        kinds=[p.kind for p in objective.space.parameters],
        values=theta, errors=errors, covariance=cov, correlation=corr,
        constrained=constrained, K=float(k), T_L=float(k - objective.log_prior),
        gradient=grad, method=method, flags=flags,
    )
