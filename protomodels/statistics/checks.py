"""Checks of the inputs of the likelihoods, run in Python before anything is jitted.

A NaN or a negative yield inside a jitted fit does not raise: it gives NaN (or a silently wrong
number) far from its cause. These checks turn such inputs into a
:class:`StatisticsInputError` that names the result, the field and what to do.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from protomodels.exceptions import ProtomodelsError

__all__ = [
    "StatisticsInputError",
    "check_covariance",
    "check_counts",
    "check_signals",
    "check_third_moments",
    "check_upper_limits",
]


def __dir__() -> list[str]:
    return __all__


#: a covariance whose smallest eigenvalue is below this fraction of its largest is singular
SINGULAR_RCOND = 1e-12


class StatisticsInputError(ProtomodelsError):
    """Input of a likelihood that cannot be used (NaN, negative, not positive definite, ...).

    Attributes:
        result_id: the result (or another label of the likelihood).
        field: the offending input, e.g. ``expected_bg`` or ``covariance``.
        problem: what is wrong.
        hint: what to do about it.
    """

    def __init__(
        self,
        result_id: str,
        field: str,
        problem: str,
        *,
        hint: str = "fix the database entry or the prediction that feeds it",
    ) -> None:
        self.result_id = result_id
        self.field = field
        self.problem = problem
        self.hint = hint
        super().__init__(f"{result_id}, field '{field}': {problem} -> {hint}")

    def __reduce__(self):  # noqa: ANN204 - keeps the error picklable across processes
        return (_rebuild, (self.result_id, self.field, self.problem, self.hint))


def _rebuild(result_id: str, field: str, problem: str, hint: str) -> StatisticsInputError:
    return StatisticsInputError(result_id, field, problem, hint=hint)


def _where(values: np.ndarray, bad: np.ndarray, labels: list[str] | None) -> str:
    """A short description of the first bad entries (index or label, and value)."""
    index = np.flatnonzero(bad)
    shown = []
    for i in index[:3]:
        name = labels[i] if labels is not None and i < len(labels) else f"#{i}"
        shown.append(f"{name} = {values.flat[i]!r}")
    more = f" and {len(index) - 3} more" if len(index) > 3 else ""
    return ", ".join(shown) + more


def _finite_nonnegative(
    result_id: str,
    field: str,
    values: ArrayLike,
    labels: list[str] | None,
    hint: str,
    *,
    positive: bool = False,
) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    bad = ~np.isfinite(array)
    if bad.any():
        problem = f"not a finite number: {_where(array, bad, labels)}"
        raise StatisticsInputError(result_id, field, problem, hint=hint)
    bad = array <= 0 if positive else array < 0
    if bad.any():
        kind = "not positive" if positive else "negative"
        problem = f"{kind}: {_where(array, bad, labels)}"
        raise StatisticsInputError(result_id, field, problem, hint=hint)
    return array


def check_signals(
    result_id: str, signals: ArrayLike, *, field: str = "signals", labels: list[str] | None = None
) -> np.ndarray:
    """Signal yields (or cross sections): finite and >= 0. Returns them as a float array."""
    return _finite_nonnegative(
        result_id, field, signals, labels, "the theory prediction is broken; check the model"
    )


def check_counts(
    result_id: str,
    observed: ArrayLike,
    background: ArrayLike,
    background_error: ArrayLike | None = None,
    *,
    labels: list[str] | None = None,
) -> tuple[np.ndarray, ...]:
    """Observed counts, expected backgrounds (and their errors): finite and >= 0."""
    hint = "fix dataInfo.txt of the result and re-import the database"
    out = [
        _finite_nonnegative(result_id, "observed_n", observed, labels, hint),
        _finite_nonnegative(result_id, "expected_bg", background, labels, hint),
    ]
    if background_error is not None:
        out.append(_finite_nonnegative(result_id, "bg_error", background_error, labels, hint))
    return tuple(out)


def check_upper_limits(
    result_id: str, observed: ArrayLike, expected: ArrayLike, *, field: str = "upper_limit"
) -> tuple[np.ndarray, np.ndarray]:
    """Observed and expected upper limits: finite and > 0."""
    hint = "fix the upper-limit map of the result, or drop the expected limit"
    return (
        _finite_nonnegative(result_id, field, observed, None, hint, positive=True),
        _finite_nonnegative(result_id, f"expected_{field}", expected, None, hint, positive=True),
    )


def check_covariance(result_id: str, covariance: ArrayLike, n_regions: int) -> np.ndarray:
    """A symmetric, positive-definite covariance of ``n_regions`` regions."""
    hint = "fix 'covariance' in globalInfo.txt of the result and re-import the database"
    cov = np.asarray(covariance, dtype=float)
    if cov.shape != (n_regions, n_regions):
        problem = f"shape {cov.shape}, expected ({n_regions}, {n_regions}) (one row per region)"
        raise StatisticsInputError(result_id, "covariance", problem, hint=hint)
    bad = ~np.isfinite(cov)
    if bad.any():
        problem = f"not a finite number at {np.argwhere(bad)[0].tolist()}"
        raise StatisticsInputError(result_id, "covariance", problem, hint=hint)
    scale = np.max(np.abs(cov)) if cov.size else 0.0
    if not np.allclose(cov, cov.T, rtol=1e-6, atol=1e-9 * scale):
        i, j = np.unravel_index(np.argmax(np.abs(cov - cov.T)), cov.shape)
        problem = f"not symmetric: [{i}][{j}] = {cov[i, j]!r} but [{j}][{i}] = {cov[j, i]!r}"
        raise StatisticsInputError(result_id, "covariance", problem, hint=hint)
    eigenvalues = np.linalg.eigvalsh(cov) if cov.size else np.ones(1)
    smallest, largest = eigenvalues[0], eigenvalues[-1]
    if largest <= 0 or smallest <= SINGULAR_RCOND * largest:
        kind = "not positive definite" if smallest < 0 else "singular"
        problem = f"{kind} (eigenvalues from {smallest:.3g} to {largest:.3g})"
        raise StatisticsInputError(result_id, "covariance", problem, hint=hint)
    return cov


def check_third_moments(
    result_id: str, third: ArrayLike, variances: ArrayLike, *, labels: list[str] | None = None
) -> np.ndarray:
    """Third moments of the backgrounds: finite, and |m3| <= sqrt(8 m2^3) (the skewed model of
    arXiv:1809.05548 has no solution beyond)."""
    hint = "fix 'thirdMoment' in dataInfo.txt of the result and re-import the database"
    m3 = np.asarray(third, dtype=float)
    m2 = np.asarray(variances, dtype=float)
    bad = ~np.isfinite(m3)
    if bad.any():
        problem = f"not a finite number: {_where(m3, bad, labels)}"
        raise StatisticsInputError(result_id, "third_moment", problem, hint=hint)
    bad = m3**2 > 8.0 * m2**3
    if bad.any():
        where = _where(m3, bad, labels)
        problem = f"too large for the background variance (m3^2 > 8 m2^3): {where}"
        raise StatisticsInputError(result_id, "third_moment", problem, hint=hint)
    return m3
