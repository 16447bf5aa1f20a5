"""Local p-values and significances of single signal regions and upper-limit maps.

A signal region with ``n`` observed events, an expected background ``b`` with a 1-sigma error
``sigma_b`` and a signal ``s`` (0 under the SM) has the one-sided mid-p-value

    p = E_lambda[ P(N > n | lambda) + P(N = n | lambda) / 2 ],  lambda ~ Normal(b + s, sigma_b),

with the Gaussian truncated at lambda > 0 and N Poisson. It is the definition the reference
builder uses for its p-value plots (SModelS/protomodels ``ptools/helpers.py:computeP``), which
draws toys; here the expectation is an integral on a fixed grid in the Gaussian's z (no sampling
noise, vectorised over regions). The significance is ``Z = -Phi^-1(p)``: an excess has
Z > 0. An upper-limit map gives, per grid point, ``Z = (UL_obs - UL_exp - s) / (UL_exp / 1.96)``
(arXiv:1202.3415, eq. 3.24; s the signal cross section, 0 under the SM).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

__all__ = [
    "Z_RANGE",
    "p_from_z",
    "region_pvalues",
    "upper_limit_significance",
    "z_from_p",
]


def __dir__() -> list[str]:
    return __all__


#: the Gaussian of the background is integrated over z in [-Z_RANGE, Z_RANGE]
Z_RANGE = 10.0
_N_NODES = 2001
_TINY = 1e-300


def _poisson_mid_upper(n: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """P(N > n) + P(N = n) / 2 for N ~ Poisson(lam) (n >= 0, lam > 0; broadcasts)."""
    lam = np.maximum(lam, _TINY)
    above = special.gammainc(n + 1.0, lam)  # P(N <= n) = Q(n + 1, lam): P(N > n) = P(n + 1, lam)
    at = np.exp(n * np.log(lam) - lam - special.gammaln(n + 1.0))
    return above + 0.5 * at


def region_pvalues(
    observed: ArrayLike,
    background: ArrayLike,
    background_error: ArrayLike,
    signal: ArrayLike = 0.0,
) -> np.ndarray:
    """Mid-p-values of signal regions (arrays broadcast; see the module docstring).

    Computed on the host with SciPy's incomplete gamma function (its uniform asymptotic
    expansion keeps counts of millions fast; JAX's series do not), in float64. This is the
    meta-statistics' edge, not the walk's inner loop.

    Args:
        observed: observed counts n.
        background: expected background counts b.
        background_error: 1-sigma errors of b (0: a pure Poisson p-value).
        signal: expected signal counts s added to b (0 under the SM).

    Returns:
        p in [0, 1]; small for an excess, near 1 for a deficit.
    """
    n, b, err, s = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (observed, background, background_error,
                                                    signal))
    )
    mean = b + s
    err = np.maximum(err, 0.0)
    smeared = err > 0
    # the Gaussian truncated at lambda > 0: z from max(-mean/err, -Z_RANGE) to Z_RANGE
    safe_err = np.where(smeared, err, 1.0)
    z_low = np.where(smeared, np.maximum(-mean / safe_err, -Z_RANGE), 0.0)
    z_low = np.minimum(z_low, Z_RANGE - 1e-6)
    t = np.linspace(0.0, 1.0, _N_NODES)
    # Simpson weights on the uniform grid, times the Gaussian density; normalised, so the
    # truncation is accounted for
    simpson = np.where(np.arange(_N_NODES) % 2 == 1, 4.0, 2.0)
    simpson[0] = simpson[-1] = 1.0
    shape = n.shape
    n, mean, err, z_low = (x.reshape(-1) for x in (n, mean, err, z_low))
    out = np.array(_poisson_mid_upper(n, mean), dtype=np.float64).reshape(-1)
    flat = np.flatnonzero(smeared.reshape(-1))
    for chunk in np.array_split(flat, max(1, len(flat) // 256)):
        if not len(chunk):
            continue
        lo = z_low[chunk][:, None]
        z = lo + (Z_RANGE - lo) * t
        lam = mean[chunk][:, None] + err[chunk][:, None] * z
        weights = simpson * np.exp(-0.5 * z * z)
        integrand = _poisson_mid_upper(n[chunk][:, None], lam)
        out[chunk] = (weights * integrand).sum(-1) / weights.sum(-1)
    out = out.reshape(shape)
    return np.clip(out, 0.0, 1.0)


def z_from_p(p: ArrayLike) -> np.ndarray:
    """Z = -Phi^-1(p): positive for an excess (p < 1/2); +-inf at p = 0, 1."""
    return -special.ndtri(np.asarray(p, dtype=np.float64)) + 0.0  # (+ 0.0: no -0)


def p_from_z(z: ArrayLike) -> np.ndarray:
    """p = 1 - Phi(Z), the inverse of :func:`z_from_p`."""
    return special.ndtr(-np.asarray(z, dtype=np.float64))


def upper_limit_significance(
    observed_limit: ArrayLike, expected_limit: ArrayLike, signal: ArrayLike = 0.0
) -> ArrayLike:
    """Z = (UL_obs - UL_exp - s) / (UL_exp / 1.96) of an upper-limit map at its points (NumPy
    or JAX arrays alike).

    The expected limit is taken as 1.96 sigma of a Gaussian measurement of the cross section
    centred at 0 (s under a signal hypothesis); an observed limit weaker than expected is an
    excess (Z > 0).
    """
    return (observed_limit - expected_limit - signal) / (expected_limit / 1.96)
