"""Interpolation of upper-limit and efficiency grids as SModelS 3 does (`docs/predictions.md` §7).

A grid's points are centred and rotated onto their principal axes (SVD); the directions along
which no grid point extends (|coordinate| <= 1e-4) are dropped, the rest are triangulated
(Delaunay, or intervals in one dimension), and a value is the barycentric interpolation inside
the simplex holding the point. Outside the convex hull there is no value (NaN). A point off the
grid's plane is accepted only when a gradient estimate says the projection changes the value by
less than 5 %.

The triangulation of a point set is built once and shared by all grids with the same points
(observed and expected limits, efficiency maps of several signal regions). The point location
runs in SciPy; the arithmetic afterwards is plain array code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError, svd
from scipy.spatial import Delaunay, QhullError

__all__ = ["Location", "Triangulation", "rescale_width", "round_significant"]


def __dir__() -> list[str]:
    return __all__


_ZERO = 1e-4
_SIMPLEX_TOLERANCE = 1e-6
_OFFPLANE_TOLERANCE = 0.05


def rescale_width(width: np.ndarray | float) -> np.ndarray:
    """SModelS's width coordinate: ln(1 + Γ/1e-30), or Γ/1e-30 when that is below 1e-10."""
    w = np.minimum(np.asarray(width, dtype=float), 1e50) / 1e-30
    return np.where(w < 1e-10, w, np.log1p(w))


def round_significant(values: np.ndarray, digits: int = 6) -> np.ndarray:
    """Round to ``digits`` significant digits (NaN and 0 kept)."""
    values = np.asarray(values, dtype=float)
    out = values.copy()
    ok = np.isfinite(values) & (values != 0)
    if ok.any():
        magnitude = np.floor(np.log10(np.abs(values[ok])))
        scale = 10.0 ** (digits - 1 - magnitude)
        out[ok] = np.round(values[ok] * scale) / scale
    return out


@dataclass(frozen=True)
class Location:
    """Query points located in a triangulation (shared by all grids on the same points)."""

    vertices: np.ndarray
    weights: np.ndarray
    inside: np.ndarray
    offplane: np.ndarray
    rotated: np.ndarray


class Triangulation:
    """The rotated, triangulated point set of one or more grids.

    Attributes:
        shift: mean of the points (delta).
        rotation: V, columns = principal directions in descending order.
        dim: number of directions kept (d).
    """

    def __init__(self, points: np.ndarray) -> None:
        points = np.asarray(points, dtype=float)
        n = points.shape[0]
        self.n_points = n
        # The same operations as SModelS (TxNameData.computeV), in the same order: on regular
        # grids Qhull's choice of diagonals depends on the last bits of the coordinates.
        self.shift = np.array([sum(column) / n for column in points.T.tolist()])
        centred = [(np.array([row]) - self.shift).tolist()[0] for row in points.tolist()]
        step = max(1, math.ceil(n / 2000))
        try:
            vt = svd(centred[::step])[2]
        except LinAlgError:  # pragma: no cover - degenerate input
            vt = np.eye(points.shape[1])
        self.rotation = vt.T
        rotated = np.array([np.dot(m, self.rotation) for m in centred])
        self.dim = int((np.abs(rotated) > _ZERO).sum(axis=1).max()) if n else 0
        self._rotated = rotated[:, : self.dim]
        self._tri: Delaunay | None = None
        self._transform: np.ndarray | None = None
        self._order: np.ndarray | None = None
        if self.dim > 1:
            self._tri = self._delaunay()
        elif self.dim == 1:
            self._order = np.argsort(self._rotated[:, 0], kind="stable")
            self._sorted = self._rotated[self._order, 0]

    def _delaunay(self) -> Delaunay:
        try:
            return Delaunay(self._rotated.tolist())
        except QhullError:
            return Delaunay(self._rotated, qhull_options="QJ")

    @property
    def delaunay(self) -> Delaunay:
        """SciPy's triangulation (rebuilt on first use for a triangulation read from a cache;
        Qhull is deterministic, so it is the same one)."""
        if self._tri is None:
            self._tri = self._delaunay()
            if self._transform is not None:
                self._tri._transform = self._transform
        return self._tri

    @classmethod
    def from_arrays(
        cls,
        shift: np.ndarray,
        rotation: np.ndarray,
        rotated: np.ndarray,
        n_points: int,
        transform: np.ndarray | None = None,
    ) -> Triangulation:
        """A triangulation from saved arrays (its SciPy object is rebuilt only when needed)."""
        self = cls.__new__(cls)
        self.n_points = n_points
        self.shift, self.rotation, self._rotated = shift, rotation, rotated
        self.dim = rotated.shape[1]
        self._tri = None
        self._transform = transform
        self._order = None
        if self.dim == 1:
            self._order = np.argsort(self._rotated[:, 0], kind="stable")
            self._sorted = self._rotated[self._order, 0]
        return self

    def _locate(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vertex indices (n, d+1), barycentric weights (n, d+1) and an inside mask."""
        n = q.shape[0]
        if self.dim == 0:
            inside = np.ones(n, bool)
            return np.zeros((n, 1), int), np.ones((n, 1)), inside
        if self.dim == 1:
            x = q[:, 0]
            s = self._sorted
            lo, hi = s[0], s[-1]
            inside = (x >= lo - _SIMPLEX_TOLERANCE) & (x <= hi + _SIMPLEX_TOLERANCE)
            idx = np.clip(np.searchsorted(s, x, side="right") - 1, 0, max(len(s) - 2, 0))
            left, right = s[idx], s[np.minimum(idx + 1, len(s) - 1)]
            span = np.where(right > left, right - left, 1.0)
            t = np.clip((x - left) / span, 0.0, 1.0)
            vertices = np.stack([self._order[idx], self._order[np.minimum(idx + 1, len(s) - 1)]], 1)
            weights = np.stack([1 - t, t], 1)
            return vertices, weights, inside
        tri = self.delaunay
        # one point per call, as SModelS: SciPy's walk starts from the previous point's simplex
        simplex = np.array(
            [tri.find_simplex(point[None, :], tol=_SIMPLEX_TOLERANCE)[0] for point in q], dtype=int
        ).reshape(len(q))
        inside = simplex >= 0
        s = np.where(inside, simplex, 0)
        transform = tri.transform[s]
        delta = q - transform[:, self.dim]
        bary = np.einsum("nij,nj->ni", transform[:, : self.dim], delta)
        weights = np.concatenate([bary, 1 - bary.sum(axis=1, keepdims=True)], axis=1)
        return tri.simplices[s], weights, inside

    def locate(self, points: np.ndarray) -> Location:
        """Locate query points once; :meth:`values_at` then serves every grid on these points."""
        points = np.atleast_2d(np.asarray(points, dtype=float))
        rotated = (points - self.shift) @ self.rotation
        vertices, weights, inside = self._locate(rotated[:, : self.dim])
        offplane = (np.abs(rotated) > _ZERO).sum(axis=1) > self.dim
        return Location(vertices, weights, inside, offplane, rotated)

    def values_at(self, location: Location, values: np.ndarray) -> np.ndarray:
        """Interpolated values of one grid (on this point set) at located points."""
        corner = values[location.vertices]
        f = (location.weights * corner).sum(axis=1)
        f = np.maximum(f, corner.min(axis=1))
        f = np.where(location.inside, f, np.nan)
        for i in np.flatnonzero(location.offplane & np.isfinite(f)):
            f[i] = self._offplane(values, location.rotated[i], f[i])
        f = np.where(np.abs(f) < 100 * np.finfo(float).eps, 0.0, f)
        return round_significant(f)

    def _project_values(self, values: np.ndarray, q: np.ndarray) -> np.ndarray:
        vertices, weights, inside = self._locate(q)
        corner = values[vertices]
        result = (weights * corner).sum(axis=1)
        result = np.maximum(result, corner.min(axis=1))
        return np.where(inside, result, np.nan)

    def interpolate(self, values: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Values at ``points`` (n, D); NaN where SModelS gives no value.

        Args:
            values: the grid values, in the order of the points this triangulation was built on.
            points: query points in the grid's coordinates (masses in GeV, rescaled widths).
        """
        return self.values_at(self.locate(points), values)

    def _offplane(self, values: np.ndarray, p: np.ndarray, f: float) -> float:
        d = self.dim
        alpha = float(np.linalg.norm(p[d:]))
        if d == 0:
            return np.nan
        base = p[:d]
        shifted = np.repeat(base[None, :], d, axis=0) + alpha * np.eye(d)
        fs = self._project_values(values, shifted)
        if np.isnan(fs).any():
            return np.nan
        grad = (fs - f) / alpha
        norm = float(np.linalg.norm(grad))
        if norm == 0:
            return f
        step = float((alpha * grad / norm).sum())
        plus, minus = base.copy(), base.copy()
        plus[d - 1] += step
        minus[d - 1] -= step
        f_plus, f_minus = self._project_values(values, np.stack([plus, minus]))
        if np.isnan(f_plus):
            return np.nan

        def rel(shifted_value: float) -> float:
            if f == 0:
                return 0.0 if shifted_value == 0 else 1.0
            return abs(shifted_value - f) / f

        error = rel(f_plus)
        if not np.isnan(f_minus):
            error = max(error, rel(f_minus))
        return f if error < _OFFPLANE_TOLERANCE else np.nan
