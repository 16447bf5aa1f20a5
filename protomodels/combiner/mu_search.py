"""The best combination when the signal strength is free: T_L = max_c max_{mu >= 0} sum w_i(mu).

With w_i(mu) = 2 [ln L_i(mu) - ln L_i(0)] = 2 [nll_i(0) - nll_i(mu)], the reference builder finds
the heaviest combination at mu = 1, fits mu-hat of that combination, rescales the model by
mu-hat and repeats until mu-hat = 1. Its fixed point is a combination that is the heaviest at its
own mu-hat; the global maximum over (combination, mu) is such a fixed point, and that is what this
module returns, in three steps:

1. **grid**: every likelihood is evaluated once on a grid of mu in [0, mu_top] (mu_top = the
   largest mu-hat of the candidates, clipped to [0, mu_max]: beyond it every unimodal curve
   falls) plus mu = 1; the exact search (:mod:`protomodels.combiner.search`) gives the heaviest
   combination at each grid point;
2. **refinement**: around the best point, the combination's summed curve is maximised by zooming
   (vectorised grids of ``zoom_points`` points, ``zoom_rounds`` rounds: a bounded cost), and the
   heaviest combination at the new mu is searched again; repeated while it changes (the
   reference's loop, done on the curves);
3. **certificate**: on every grid interval each curve is bounded from above: by its peak value if
   its mu-hat lies inside, else by the larger end value (unimodal curves, true for log-concave
   likelihoods); for concave curves also by its tangents, whose slopes are bounded by the
   neighbouring secants, which makes the bound of a whole combination tight to O(h^2); a curve
   that is not unimodal on the grid is bounded by its global maximum. Intervals whose bound
   exceeds the best value by more than ``tolerance`` are split and searched again, for at most
   ``max_rounds`` rounds; inside them only the curves that can be positive there are evaluated.
   ``certified`` says whether all intervals were closed; ``gap`` is the largest amount by which
   T_L could still be underestimated. Unimodality and concavity are checked on the grid only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from protomodels.combiner.candidates import Likelihood
from protomodels.combiner.graph import CombinabilityError
from protomodels.combiner.search import _as_inputs, _bits, _CliqueSolver
from protomodels.statistics.curves import CurveSet, CurveShapeError

__all__ = ["CombinationFit", "MuSearchSettings", "best_combination_in_mu"]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True)
class MuSearchSettings:
    """Settings of the search in mu.

    Attributes:
        grid_points: points of the initial linear grid on [0, mu_top].
        mu_max: largest mu considered (a larger mu-hat is clipped).
        tolerance: T_L is certified to this absolute precision.
        max_rounds: at most this many rounds of interval splitting.
        max_split: at most this many intervals (those with the largest bounds) are split per
            round, which bounds the cost where curves are not unimodal (their bound does not
            shrink).
        zoom_points, zoom_rounds: the vectorised refinement of one combination's curve.
    """

    grid_points: int = 15
    mu_max: float = 1e4
    tolerance: float = 1e-3
    max_rounds: int = 12
    max_split: int = 16
    zoom_points: int = 16
    zoom_rounds: int = 3

    def __post_init__(self) -> None:
        if self.grid_points < 2 or self.zoom_points < 3 or self.zoom_rounds < 1:
            msg = "MuSearchSettings: need grid_points >= 2, zoom_points >= 3, zoom_rounds >= 1"
            raise CombinabilityError(msg)
        if not (
            self.mu_max > 0 and self.tolerance > 0 and self.max_rounds >= 0 and self.max_split > 0
        ):
            msg = "MuSearchSettings: need mu_max > 0, tolerance > 0, max_rounds >= 0, max_split > 0"
            raise CombinabilityError(msg)


@dataclass(frozen=True)
class CombinationFit:
    """The best combination in (combination, mu), and the best one at mu = 1.

    Attributes:
        indices: sorted indices of the combination's members.
        mu_hat: the signal strength that maximises their summed weight (0 when empty).
        T_L: sum of the members' w_i(mu_hat) (0 when empty).
        contributions: w_i(mu_hat) of each member, in the order of ``indices``.
        indices_mu1, T_L_mu1, contributions_mu1: the same with mu fixed to 1.
        certified: T_L is the global maximum to within ``tolerance`` (see module docs).
        gap: how much larger T_L could still be (0 when certified).
        nll_calls: number of (vectorised) likelihood evaluations.
    """

    indices: tuple[int, ...]
    mu_hat: float
    T_L: float
    contributions: tuple[float, ...]
    indices_mu1: tuple[int, ...]
    T_L_mu1: float
    contributions_mu1: tuple[float, ...]
    certified: bool
    gap: float
    nll_calls: int


class _Curves:
    """The weight curves w_i(mu) of the candidates, evaluated in batches of (candidate, mu)
    pairs (:class:`~protomodels.statistics.curves.CurveSet`), counting the batched calls."""

    def __init__(self, likelihoods: Sequence[Likelihood], curves: CurveSet | None = None) -> None:
        self.likelihoods = list(likelihoods)
        self.set = curves if curves is not None else CurveSet(self.likelihoods)
        self.calls = 0
        self.nll0 = np.zeros(len(self.likelihoods))

    def pairs(self, rows: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """nll at (rows[k], mu[k]) (NaN read as inf: no likelihood there)."""
        self.calls += 1
        try:
            values = self.set.nll(rows, mu)
        except CurveShapeError as err:
            raise CombinabilityError(str(err)) from err
        return np.where(np.isnan(values), np.inf, values)

    def raw(self, mu: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        """nll of the given rows on the grid mu: shape (len(rows), len(mu))."""
        rows = np.asarray(rows, dtype=np.int64)
        values = self.pairs(np.repeat(rows, len(mu)), np.tile(mu, len(rows)))
        return values.reshape(len(rows), len(mu))

    def start(self, mu: np.ndarray) -> np.ndarray:
        """w on a grid that holds mu = 0 (fixes nll(0)); shape (n, len(mu))."""
        raw = self.raw(mu, range(len(self.likelihoods)))
        self.nll0 = raw[:, int(np.flatnonzero(mu == 0.0)[0])]
        if not np.isfinite(self.nll0).all():
            i = int(np.flatnonzero(~np.isfinite(self.nll0))[0])
            msg = f"likelihood {i}: nll(0) = {self.nll0[i]} (L(0) = 0 or undefined); drop it"
            raise CombinabilityError(msg)
        return 2.0 * (self.nll0[:, None] - raw)

    def weights(self, mu: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        """w_i(mu) for the given rows: shape (len(rows), len(mu))."""
        return 2.0 * (self.nll0[np.asarray(rows, dtype=np.int64)][:, None] - self.raw(mu, rows))


class _Graph:
    """The combinability graph, vertices ordered heaviest peak first, for many searches."""

    def __init__(self, adj: np.ndarray, order: np.ndarray) -> None:
        self.order = order
        self.solver = _CliqueSolver(adj[np.ix_(order, order)])

    def heaviest(self, w: np.ndarray) -> tuple[tuple[int, ...], float]:
        """Heaviest combination for weights ``w`` (NaN = not positive): (indices, weight)."""
        value, mask = self.solver.heaviest(w[self.order].tolist())  # NaN > 0 is False
        return tuple(sorted(int(self.order[i]) for i in _bits(mask))), value


def _concave(w: np.ndarray, mu: np.ndarray) -> bool:
    """Are the secant slopes of the curve non-increasing on the grid?"""
    if len(mu) < 3 or not np.isfinite(w).all():
        return False
    slope = np.diff(w) / np.diff(mu)
    slack = 1e-6 * (1.0 + float(np.abs(slope).max()))
    return bool((np.diff(slope) <= slack).all())


def _unimodal(w: np.ndarray, mu: np.ndarray, peak: float) -> bool:
    """Does the curve rise up to its peak and fall after it, on the grid?"""
    if not np.isfinite(w).all():
        return False
    slack = 1e-6 * (1.0 + float(np.abs(w).max()))  # tolerates noisy fits
    rising = np.diff(w[mu <= peak])
    falling = np.diff(w[mu >= peak])
    return bool((rising >= -slack).all() and (falling <= slack).all())


class _Search:
    """One search: the grid, the curves on it (NaN where a curve is known to be <= 0 and was not
    evaluated), the heaviest combination at each grid point and the best point found."""

    def __init__(
        self,
        curves: _Curves,
        adj: np.ndarray,
        settings: MuSearchSettings,
        mu_hat: np.ndarray,
        nll_max: np.ndarray,
    ) -> None:
        self.curves, self.adj, self.settings = curves, adj, settings
        self.graph = _Graph(adj, np.arange(len(adj)))
        n = len(curves.likelihoods)
        self.mu = np.empty(0)
        self.w = np.empty((n, 0))
        self.f = np.empty(0)
        self.best_value, self.best_mu, self.best_members = 0.0, 0.0, ()
        self.mu_hat, self.nll_max = mu_hat, nll_max
        self.peak_mu = np.clip(np.nan_to_num(mu_hat, nan=0.0), 0.0, settings.mu_max)
        self.peak_value = np.full(n, np.inf)
        self.global_max = np.full(n, np.nan)  # NaN: use the interval bounds
        self.concave = np.zeros(n, dtype=bool)
        rows: dict[bytes, list[int]] = {}
        for i, row in enumerate(adj):
            rows.setdefault(np.packbits(row).tobytes(), []).append(i)
        #: groups of candidates with the same combinability (never combined with each other)
        self.twins = [np.array(g) for g in rows.values() if len(g) > 1]

    # -- the grid ---------------------------------------------------------------------------
    def start(self, mu: np.ndarray) -> None:
        """Evaluate every curve on the initial grid (which must hold 0 and 1) and classify
        them; grid points closer than 1e-8 (relative) to 0, 1 or each other are dropped."""
        spacing = 1e-8 * max(1.0, float(np.max(mu)))
        kept = [0.0, 1.0]
        for x in np.unique(mu):
            if all(abs(x - y) >= spacing for y in kept):
                kept.append(float(x))
        mu = np.unique(kept)
        w = self.curves.start(mu)
        finite = np.isfinite(self.nll_max)
        self.peak_value = np.where(finite, 2.0 * (self.curves.nll0 - self.nll_max), np.inf)
        heaviest = np.fmax(np.nan_to_num(self.peak_value, nan=-np.inf), w.max(axis=1))
        self.graph = _Graph(self.adj, np.argsort(-heaviest, kind="stable"))
        self._insert(mu, w)
        # the shape test takes a curve's own peak (beyond mu_max it keeps rising up to there)
        true_peak = np.maximum(np.nan_to_num(self.mu_hat, nan=0.0), 0.0)
        for i in range(len(w)):
            if not finite[i]:
                self.global_max[i] = np.inf  # no maximum known: nothing bounds this curve
            elif not (np.isfinite(self.mu_hat[i]) and _unimodal(w[i], mu, true_peak[i])):
                self.global_max[i] = max(self.peak_value[i], float(np.nanmax(w[i])))
            else:
                self.concave[i] = _concave(w[i], mu)
        if self.best_members:
            self.refine()

    def _insert(self, mu: np.ndarray, w: np.ndarray) -> bool:
        values = np.empty(len(mu))
        improved = False
        for k in range(len(mu)):
            members, values[k] = self.graph.heaviest(w[:, k])
            # (mu = 1 is on the grid for T_L at mu = 1, also where it lies above mu_max)
            if values[k] > self.best_value and mu[k] <= self.settings.mu_max:
                self.best_value, self.best_mu, self.best_members = values[k], float(mu[k]), members
                improved = True
        order = np.argsort(np.concatenate([self.mu, mu]))
        self.mu = np.concatenate([self.mu, mu])[order]
        self.w = np.concatenate([self.w, w], axis=1)[:, order]
        self.f = np.concatenate([self.f, values])[order]
        return improved

    def add_points(self, mu: np.ndarray) -> bool:
        """Evaluate, at new grid points, the curves that can be positive there; True when the
        best value improved."""
        mu = self._fresh(mu)
        if not len(mu):
            return False
        alive = self.alive(mu)
        w = np.full((len(self.w), len(mu)), np.nan)
        rows, cols = np.nonzero(alive)
        if len(rows):
            w[rows, cols] = 2.0 * (self.curves.nll0[rows] - self.curves.pairs(rows, mu[cols]))
        return self._insert(mu, w)

    def _fresh(self, mu: np.ndarray) -> np.ndarray:
        """The points not within 1e-8 (relative to the grid's extent) of the grid or of each
        other: secants over shorter intervals are dominated by rounding."""
        spacing = 1e-8 * max(1.0, float(self.mu[-1]))
        out: list[float] = []
        for x in np.unique(mu):
            k = int(np.searchsorted(self.mu, x))
            if k < len(self.mu) and self.mu[k] - x < spacing:
                continue
            if k > 0 and x - self.mu[k - 1] < spacing:
                continue
            if out and x - out[-1] < spacing:
                continue
            out.append(float(x))
        return np.asarray(out)

    def alive(self, mu: np.ndarray) -> np.ndarray:
        """(n, len(mu)): may curve i matter at mu? Not where its bound on the enclosing interval
        is <= 0, nor where it is dominated: a candidate with the same combinability (e.g. another
        region of the same analysis) is larger all over the interval (its lower bound, the
        smaller end value of a unimodal curve, exceeds this one's upper bound), so every
        combination with it does at least as well. Such entries stay NaN ("not needed")."""
        bounds = self.interval_bounds()
        useful = bounds > 0
        if self.twins:
            with np.errstate(invalid="ignore"):
                lower = np.fmin(self.w[:, :-1], self.w[:, 1:])
            lower = np.where(np.isnan(self.global_max)[:, None], lower, -np.inf)
            lower = np.nan_to_num(lower, nan=-np.inf)
            for group in self.twins:
                lb = lower[group]
                top = np.argmax(lb, axis=0)
                first = lb[top, np.arange(lb.shape[1])]
                lb[top, np.arange(lb.shape[1])] = -np.inf
                second = lb.max(axis=0)
                other = np.where(np.arange(len(group))[:, None] == top[None, :], second, first)
                useful[group] &= ~(bounds[group] < other)
        k = np.searchsorted(self.mu, mu) - 1
        inside = (k >= 0) & (k < len(self.mu) - 1)
        out = np.ones((len(self.w), len(mu)), dtype=bool)
        out[:, inside] = useful[:, k[inside]]
        return out

    def refine(self) -> None:
        """Zoom on the best combination's curve, then search the heaviest combination there."""
        for _ in range(5):
            members = list(self.best_members)
            k = int(np.searchsorted(self.mu, self.best_mu))
            lo = float(self.mu[max(k - 1, 0)])
            hi = min(float(self.mu[min(k + 1, len(self.mu) - 1)]), self.settings.mu_max)
            mu, value = self._zoom(members, lo, hi)
            if value > self.best_value:
                self.best_value, self.best_mu = value, mu
            if not self.add_points(np.array([mu])):
                return

    def _zoom(self, members: list[int], lo: float, hi: float) -> tuple[float, float]:
        settings = self.settings
        best_mu, best_value = lo, -math.inf
        for _ in range(settings.zoom_rounds):
            mu = np.linspace(lo, hi, settings.zoom_points)
            total = self.curves.weights(mu, members).sum(axis=0)
            k = int(np.argmax(total))
            if total[k] > best_value:
                best_mu, best_value = float(mu[k]), float(total[k])
            step = (hi - lo) / (settings.zoom_points - 1)
            lo, hi = max(lo, best_mu - step), min(hi, best_mu + step)
            if hi - lo <= 1e-12 * max(1.0, best_mu):
                break
        return best_mu, best_value

    # -- bounds -----------------------------------------------------------------------------
    def interval_bounds(self) -> np.ndarray:
        """(n, K - 1) upper bounds of each curve on each grid interval (NaN: <= 0)."""
        w, mu = self.w, self.mu
        with np.errstate(invalid="ignore"):
            bounds = np.maximum(w[:, :-1], w[:, 1:])
            peak = self.peak_mu[:, None]
            inside = (peak > mu[None, :-1]) & (peak < mu[None, 1:])
            bounds = np.where(inside, np.maximum(bounds, self.peak_value[:, None]), bounds)
            if len(mu) >= 3 and self.concave.any():
                bounds = np.where(self.concave[:, None], np.fmin(bounds, self._tangents()), bounds)
        return np.where(np.isnan(self.global_max)[:, None], bounds, self.global_max[:, None])

    def _tangents(self) -> np.ndarray:
        """Bounds of concave curves from their tangent lines at both ends of each interval.

        L1 passes through (mu_k, w_k) with the slope of the secant to the left (>= w'(mu_k)),
        L2 through (mu_k+1, w_k+1) with the slope of the secant to the right (<= w'(mu_k+1));
        both lie above a concave curve on the interval, so max min(L1, L2) bounds it: at their
        crossing if inside the interval, else at an end. A missing secant (grid edge, or a
        neighbour where the curve was not evaluated) leaves only the other line.
        """
        w, mu = self.w, self.mu
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            slope = np.diff(w, axis=1) / np.diff(mu)[None, :]
            nan = np.full((len(w), 1), np.nan)
            s_left = np.concatenate([nan, slope[:, :-1]], axis=1)
            s_right = np.concatenate([slope[:, 1:], nan], axis=1)
            h = np.diff(mu)[None, :]
            f_lo, f_hi = w[:, :-1], w[:, 1:]
            l1_hi = f_lo + s_left * h  # L1 at the right end
            l2_lo = f_hi - s_right * h  # L2 at the left end
            both = np.fmax(np.minimum(f_lo, l2_lo), np.minimum(l1_hi, f_hi))
            cross = (f_hi - f_lo + s_left * mu[None, :-1] - s_right * mu[None, 1:]) / (
                s_left - s_right
            )
            at_cross = f_lo + s_left * (cross - mu[None, :-1])
            inside = np.isfinite(at_cross) & (cross > mu[None, :-1]) & (cross < mu[None, 1:])
            both = np.where(inside, np.fmax(both, at_cross), both)
            only_l1 = np.fmax(f_lo, l1_hi)
            only_l2 = np.fmax(l2_lo, f_hi)
            has_l1, has_l2 = np.isfinite(s_left), np.isfinite(s_right)
            tangent = np.where(
                has_l1 & has_l2,
                both,
                np.where(has_l1, only_l1, np.where(has_l2, only_l2, np.inf)),
            )
            tangent = np.where(np.isnan(f_lo) | np.isnan(f_hi), np.nan, tangent)
            slack = 1e-9 * (1.0 + np.nanmax(np.abs(np.where(np.isfinite(w), w, 0.0)), axis=1))
        return tangent + slack[:, None]

    def tail_bound(self) -> float:
        """Bound beyond the last grid point, where every unimodal curve falls (so the largest
        combination there is bounded by the values at the last point); curves that are not
        unimodal contribute their global maximum."""
        if np.isnan(self.global_max).all():
            return -math.inf
        last = np.where(np.isnan(self.global_max), self.w[:, -1], self.global_max)
        return self.graph.heaviest(last)[1]

    def combination_bound(self, k: int, constant: np.ndarray, target: float) -> float:
        """Upper bound of max_c max_{mu in [mu_k, mu_k+1]} sum_{i in c} w_i(mu).

        A concave curve lies below its tangent at mu_k, whose slope is at most the secant slope
        of the interval to the left: w_i(mu) <= w_i(mu_k) + s_i (mu - mu_k); other curves are
        bounded by their constant interval bound. For a fixed combination that bound is linear
        in mu, so it peaks at an end: the heaviest combination of the lines' values at mu_k or
        at mu_k+1 bounds the interval. The same holds from the right end with the secant to the
        right; the smaller of the two bounds is returned (stopping once it is below ``target``).
        """
        w, mu = self.w, self.mu
        h = mu[k + 1] - mu[k]
        sides = []
        with np.errstate(invalid="ignore"):
            if k >= 1:
                slope = (w[:, k] - w[:, k - 1]) / (mu[k] - mu[k - 1])
                sides.append((k, w[:, k] + h * slope))
            if k + 2 < len(mu):
                slope = (w[:, k + 2] - w[:, k + 1]) / (mu[k + 2] - mu[k + 1])
                sides.append((k + 1, w[:, k + 1] - h * slope))
        linear = self.concave & np.isnan(self.global_max)
        every = bool(linear.all())
        best = math.inf
        for end, far in sides:
            bound = float(self.f[end]) if every else 0.0
            for values in (far,) if every else (w[:, end], far):
                v = np.where(linear & np.isfinite(values), values, constant)
                bound = max(bound, self.graph.heaviest(v)[1])
                if bound >= best:
                    break
            best = min(best, bound)
            if best <= target:
                return best
        if not sides:
            best = self.graph.heaviest(constant)[1]
        return best


def best_combination_in_mu(
    likelihoods: Sequence[Likelihood],
    combinable: np.ndarray,
    analyses: Sequence[str],
    *,
    settings: MuSearchSettings | None = None,
    curves: CurveSet | None = None,
) -> CombinationFit:
    """The combination and mu >= 0 with the largest summed weight (see module docs).

    Args:
        likelihoods: one likelihood per candidate (``nll(mu)`` vectorised, ``mu_hat``,
            ``nll_max``).
        combinable: (n, n) symmetric bool matrix.
        analyses: analysis id of each candidate (at most one candidate per analysis enters).
        settings: grid, tolerance and round limits.
        curves: the likelihoods' :class:`~protomodels.statistics.curves.CurveSet`, if the
            caller has one already (built here otherwise).

    Raises:
        CombinabilityError: inconsistent inputs or a likelihood returning the wrong shape.
    """
    settings = settings or MuSearchSettings()
    n = len(likelihoods)
    _, adj = _as_inputs(np.zeros(n), combinable, analyses)
    curves = _Curves(likelihoods, curves)
    if n == 0:
        return CombinationFit((), 0.0, 0.0, (), (), 0.0, (), True, 0.0, 0)
    mu_hat = np.array([float(getattr(lik, "mu_hat", math.nan)) for lik in likelihoods])
    nll_max = np.array([float(getattr(lik, "nll_max", math.nan)) for lik in likelihoods])
    search = _Search(curves, adj, settings, mu_hat, nll_max)
    mu_top = float(search.peak_mu.max())
    search.start(np.concatenate([np.linspace(0.0, mu_top, settings.grid_points), [1.0]]))
    one = search.w[:, int(np.flatnonzero(search.mu == 1.0)[0])]
    members1, _ = search.graph.heaviest(one)
    contributions1 = tuple(float(one[i]) for i in members1)

    tol = settings.tolerance
    gap = 0.0
    closed: set[tuple[float, float]] = set()
    for round_ in range(settings.max_rounds + 1):
        bounds = search.interval_bounds()
        quick = np.where(bounds > 0, bounds, 0.0).sum(axis=0)
        open_intervals: list[tuple[float, int]] = []
        for k in np.flatnonzero(quick > search.best_value + tol):
            if search.mu[k] >= settings.mu_max:
                continue  # beyond the largest mu allowed
            key = (float(search.mu[k]), float(search.mu[k + 1]))
            if key in closed:
                continue
            upper = search.combination_bound(k, bounds[:, k], search.best_value + tol)
            if upper > search.best_value + tol:
                open_intervals.append((upper, int(k)))
            else:
                closed.add(key)
        gap = max(open_intervals)[0] - search.best_value if open_intervals else 0.0
        if mu_top < settings.mu_max:  # (at the cap, mu beyond it is not allowed)
            gap = max(gap, search.tail_bound() - search.best_value - tol, 0.0)
        if not open_intervals or round_ == settings.max_rounds:
            break
        split = np.array(sorted([k for _, k in sorted(open_intervals)[-settings.max_split :]]))
        lo, hi = search.mu[split], search.mu[split + 1]
        if search.add_points(np.concatenate([lo + f * (hi - lo) for f in (0.25, 0.5, 0.75)])):
            search.refine()

    members = search.best_members
    at = np.flatnonzero(search.mu == search.best_mu)
    values = np.full(len(members), np.nan)
    if members and len(at):
        values = search.w[list(members), at[0]]
    if not np.isfinite(values).all():  # not on the grid, or skipped there: evaluate
        values = curves.weights(np.array([search.best_mu]), list(members))[:, 0]
    contributions = tuple(float(v) for v in values)
    return CombinationFit(
        indices=members,
        mu_hat=search.best_mu if members else 0.0,
        T_L=math.fsum(contributions),
        contributions=contributions,
        indices_mu1=members1,
        T_L_mu1=math.fsum(contributions1),
        contributions_mu1=contributions1,
        certified=gap == 0.0,
        gap=float(gap),
        nll_calls=curves.calls,
    )
