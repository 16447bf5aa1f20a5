"""Grid interpolation (SModelS §4): triangulation, off-plane points, width rescaling, rounding,
and the batched GridIndex against Triangulation.interpolate on real grids."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import protomodels.database as pdb
from protomodels.theory.interpolation import Triangulation, rescale_width, round_significant
from protomodels.theory.locator import GridIndex

# --------------------------------------------------------------------------- synthetic grids


def linear_grid() -> tuple[np.ndarray, np.ndarray]:
    xs, ys = (100.0, 200.0, 300.0), (0.0, 50.0, 100.0)
    points = np.array([[x, y] for x in xs for y in ys])
    return points, 2.0 * points[:, 0] + 3.0 * points[:, 1] + 7.0


def test_linear_function_is_exact_inside() -> None:
    points, values = linear_grid()
    tri = Triangulation(points)
    assert tri.dim == 2
    rng = np.random.default_rng(3)
    q = np.column_stack([rng.uniform(100, 300, 200), rng.uniform(0, 100, 200)])
    q = np.vstack([q, points, [[150.0, 25.0], [123.4, 77.7], [300.0, 100.0]]])
    got = tri.interpolate(values, q)
    expected = 2.0 * q[:, 0] + 3.0 * q[:, 1] + 7.0
    np.testing.assert_allclose(got, expected, rtol=5e-6)  # rounded to 6 significant digits
    assert got[-3] == 382.0 and got[-2] == pytest.approx(486.9) and got[-1] == 907.0


def test_nan_outside_the_hull() -> None:
    points, values = linear_grid()
    tri = Triangulation(points)
    q = np.array([[99.0, 50.0], [350.0, 50.0], [200.0, -1.0], [200.0, 100.5], [0.0, 0.0]])
    assert np.isnan(tri.interpolate(values, q)).all()
    # the simplex tolerance is tiny: a point 1e-3 GeV outside is rejected
    assert np.isnan(tri.interpolate(values, np.array([[300.001, 50.0]])))[0]


def test_value_raised_to_smallest_vertex() -> None:
    """Barycentric interpolation never goes below the smallest corner value."""
    points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    values = np.array([1.0, 2.0, 3.0])
    tri = Triangulation(points)
    got = tri.interpolate(values, np.array([[0.25, 0.25], [0.0, 0.0]]))
    np.testing.assert_allclose(got, [1.75, 1.0])


def test_one_dimensional_grid() -> None:
    points = np.array([[m, 50.0] for m in (100.0, 200.0, 400.0)])
    values = np.array([10.0, 20.0, 0.0])
    tri = Triangulation(points)
    assert tri.dim == 1
    got = tri.interpolate(values, np.array([[150.0, 50.0], [300.0, 50.0], [450.0, 50.0]]))
    np.testing.assert_allclose(got[:2], [15.0, 10.0])
    assert np.isnan(got[2])


def equal_branch_grid() -> np.ndarray:
    return np.array(
        [[a, b, a, b] for a in np.arange(200.0, 1001.0, 100.0) for b in (0.0, 100.0, 200.0, 300.0)
         if b < a]
    )  # fmt: skip


def test_equal_branches_reduce_to_two_dimensions() -> None:
    tri = Triangulation(equal_branch_grid())
    assert tri.dim == 2


def test_offplane_point_smooth_function_accepted() -> None:
    points = equal_branch_grid()
    values = 100.0 + 0.01 * points[:, 0] + 0.02 * points[:, 1]
    tri = Triangulation(points)
    on = tri.interpolate(values, np.array([[550.0, 150.0, 550.0, 150.0]]))[0]
    assert on == pytest.approx(108.5)
    # m1 vs m1 + 1 on the second branch: the projection is m1 = 550.5
    off = tri.interpolate(values, np.array([[550.0, 150.0, 551.0, 150.0]]))[0]
    assert off == pytest.approx(100.0 + 0.01 * 550.5 + 0.02 * 150.0)


def test_offplane_point_far_off_rejected() -> None:
    points = equal_branch_grid()
    values = np.exp((points[:, 0] + points[:, 1]) / 20.0) / 1e10  # e^5 per 100 GeV
    tri = Triangulation(points)
    assert np.isfinite(tri.interpolate(values, np.array([[550.0, 150.0, 550.0, 150.0]])))[0]
    far = tri.interpolate(values, np.array([[550.0, 150.0, 650.0, 150.0]]))
    assert np.isnan(far[0])


def test_rescale_width() -> None:
    assert float(rescale_width(0.0)) == 0.0
    assert float(rescale_width(1e-3)) == pytest.approx(math.log1p(1e27), rel=1e-15)
    assert float(rescale_width(1e-41)) == pytest.approx(1e-11)  # ratio < 1e-10: kept linear
    assert float(rescale_width(1e60)) == pytest.approx(math.log1p(1e80))  # capped at 1e50 GeV
    np.testing.assert_allclose(
        rescale_width(np.array([0.0, 1e-30, 1.0])), [0.0, math.log(2.0), math.log1p(1e30)]
    )


def test_round_significant() -> None:
    values = np.array([123456789.0, 0.000123456789, -1.234567891, 0.0, np.nan, 2.5e-20, 999999.5])
    got = round_significant(values)
    np.testing.assert_allclose(
        got[:4], [123457000.0, 0.000123457, -1.23457, 0.0], rtol=1e-12, atol=0
    )
    assert np.isnan(got[4])
    assert got[5] == pytest.approx(2.5e-20, rel=1e-12)
    assert got[6] == pytest.approx(1e6, rel=1e-12)
    np.testing.assert_allclose(round_significant(np.array([3.14159265]), 3), [3.14])
    np.testing.assert_allclose(round_significant(np.array([12345.678]), 5), [12346.0])


# --------------------------------------------------------------------------- real grids

REAL_GRIDS = {
    "CMS-SUS-19-006": ("T2tt", "T2"),
    "ATLAS-SUSY-2013-05": ("T2bb", "T6bbWW"),
    "CMS-EXO-19-012": ("TRV1jj",),  # (mass, width) axes
    "CMS-EXO-13-006-eff-trim": ("THSCPM1b", "THSCPM2b", "THSCPM3", "THSCPM6"),  # widths, 3D
}


@pytest.fixture(scope="module")
def real_grids(subset_store: Path) -> list[tuple[str, np.ndarray, tuple[int, ...], np.ndarray]]:
    """(label, points, width columns, values) of several grids of the subset store."""
    db = pdb.open(subset_store, build=False, workspaces=False)
    found = []
    for result_id, names in REAL_GRIDS.items():
        result = db.result(result_id)
        for dataset in result.datasets[:2]:
            for txname in dataset.topologies:
                if txname.name not in names:
                    continue
                widths = tuple(j for j, a in enumerate(txname.axes) if a.attribute == "totalwidth")
                for kind, grid in txname.grids.items():
                    label = f"{result_id}/{dataset.dataset_id}/{txname.name}/{kind}"
                    found.append((label, grid.points, widths, grid.values))
    assert {lab.split("/")[2] for lab, *_ in found} == {n for v in REAL_GRIDS.values() for n in v}
    assert any(w for _, _, w, _ in found)
    return found


def queries(points: np.ndarray, widths: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Query points in the grid's coordinates, widths rescaled as the Predictor does: points
    between two grid points (mostly inside), grid points, points beyond the largest first
    coordinate (outside), and for 4D equal-branch grids points slightly off the plane."""
    coords = np.array(points, dtype=float)
    if widths:
        coords[:, widths] = rescale_width(coords[:, widths])
    n = len(coords)
    i, j = rng.integers(0, n, 40), rng.integers(0, n, 40)
    lam = rng.uniform(0, 1, (40, 1))
    between = lam * coords[i] + (1 - lam) * coords[j]
    nodes = coords[rng.integers(0, n, 5)]
    outside = coords[rng.integers(0, n, 10)].copy()
    outside[:, 0] = coords[:, 0].max() + rng.uniform(1, 200, 10)
    parts = [between, nodes, outside]
    if coords.shape[1] == 4 and not widths:
        off = between[:15].copy()
        off[:, 2] += rng.uniform(-3, 3, 15)
        parts.append(off)
    return np.vstack(parts)


@pytest.fixture(scope="module")
def requests_and_expected(real_grids):  # noqa: ANN001, ANN201
    """Requests for GridIndex.lookup, and the reference: Triangulation.interpolate called for
    one point at a time, as SModelS evaluates a point (also the batched Triangulation call)."""
    rng = np.random.default_rng(11)
    requests, single, batched, labels = [], [], [], []
    for label, points, widths, values in real_grids:
        coords = np.array(points, dtype=float)
        if widths:
            coords[:, widths] = rescale_width(coords[:, widths])
        tri = Triangulation(coords)
        q = queries(points, widths, rng)
        batched += list(tri.interpolate(values, q))
        single += [tri.interpolate(values, row[None, :])[0] for row in q]
        requests += [(points, widths, values, row) for row in q]
        labels += [label] * len(q)
    return requests, np.asarray(single), np.asarray(batched), labels


def mismatches(got: np.ndarray, expected: np.ndarray, requests, labels) -> list:  # noqa: ANN001
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    return [
        (labels[k], requests[k][3].round(4).tolist(), float(got[k]), float(expected[k]))
        for k in np.flatnonzero(~same)
    ]


def test_queries_cover_inside_and_outside(requests_and_expected) -> None:  # noqa: ANN001
    _, expected, _, labels = requests_and_expected
    for label in set(labels):
        mine = expected[[k for k, lab in enumerate(labels) if lab == label]]
        assert np.isfinite(mine).sum() >= 10, label
        assert np.isnan(mine).sum() >= 10, label


def test_gridindex_equals_triangulation_point_by_point(real_grids, requests_and_expected) -> None:  # noqa: ANN001
    requests, single, _, labels = requests_and_expected
    index = GridIndex(values for _, _, _, values in real_grids)
    got = index.lookup(requests)
    bad = [
        m
        for m, k in zip(
            mismatches(got, single, requests, labels), _mismatch_rows(got, single), strict=True
        )
        if not _scipy_outside_tolerance(requests[k])
    ]
    assert not bad, "\n".join(map(str, bad))


def _mismatch_rows(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    return np.flatnonzero(~same)


def _scipy_outside_tolerance(request) -> bool:  # noqa: ANN001
    """SciPy's find_simplex(tol=1e-6) can answer a simplex that holds the point only within
    sqrt(tol) (its broad tolerance) while another simplex holds it properly; GridIndex then
    gives the proper simplex's value. True for such requests."""
    points, widths, _, q = request
    coords = np.array(points, dtype=float)
    if widths:
        coords[:, widths] = rescale_width(coords[:, widths])
    tri = Triangulation(coords)
    if tri.dim < 2:
        return False
    p = ((np.asarray(q, dtype=float) - tri.shift) @ tri.rotation)[: tri.dim]
    s = tri._tri.find_simplex(p[None, :], tol=1e-6)[0]
    if s < 0:
        return False
    t = tri._tri.transform[s]
    c = t[: tri.dim] @ (p - t[tri.dim])
    return min(c.min(), 1 - c.sum()) < -1e-6


def test_triangulation_batch_equals_point_by_point(requests_and_expected) -> None:  # noqa: ANN001
    """Triangulation.interpolate on many points must give each point the value it has alone."""
    requests, single, batched, labels = requests_and_expected
    bad = mismatches(batched, single, requests, labels)
    assert not bad, "\n".join(map(str, bad))


def test_gridindex_batch_equals_one_by_one(real_grids, requests_and_expected) -> None:  # noqa: ANN001
    requests, _, _, _ = requests_and_expected
    index = GridIndex(values for _, _, _, values in real_grids)
    batch = index.lookup(requests)
    step = 7  # every 7th request, one at a time, on the same index
    single = np.array([index.lookup([requests[k]])[0] for k in range(0, len(requests), step)])
    np.testing.assert_array_equal(single, batch[::step])
    fresh = GridIndex(values for _, _, _, values in real_grids)
    reverse = fresh.lookup(requests[::-1])[::-1]
    np.testing.assert_array_equal(reverse, batch)


def test_gridindex_on_the_compressed_hscp_plane(subset_store: Path) -> None:
    """THSCPM6 (HSCP, [[*],[['*'],['*']]]; axes m2, m5, m7) at m5 = m2 - 5 GeV, a plane of grid
    points: GridIndex must give SModelS's value (scipy find_simplex, one point at a time)."""
    db = pdb.open(subset_store, build=False, workspaces=False)
    result = db.result("CMS-EXO-13-006-eff-trim")
    dataset = next(d for d in result.datasets if d.dataset_id == "c100")
    txname = next(t for t in dataset.topologies if t.name == "THSCPM6")
    grid = txname.grids["efficiency"]
    tri = Triangulation(grid.points)
    index = GridIndex([grid.values])
    for point in ([450.0, 445.0, 200.0], [450.0, 445.0, 175.0], [650.0, 645.0, 325.0]):
        q = np.asarray(point)
        expected = tri.interpolate(grid.values, q[None, :])[0]
        got = index.lookup([(grid.points, (), grid.values, q)])[0]
        assert got == expected, (point, got, expected)


def test_gridindex_with_a_values_array_passed_twice() -> None:
    """The same values array named twice at construction ("concatenated once")."""
    points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([10.0, 20.0, 30.0, 40.0])
    q = np.array([0.25, 0.25])
    expected = Triangulation(points).interpolate(b, q[None, :])[0]
    assert GridIndex([a, b]).lookup([(points, (), b, q)])[0] == expected
    assert GridIndex([a, a, b]).lookup([(points, (), b, q)])[0] == expected


def test_barycentric_transforms_equal_scipy(real_grids) -> None:  # noqa: ANN001
    """The vectorised transforms are bit-equal to SciPy's (NaN for degenerate simplices)."""
    from protomodels.theory.locator import barycentric_transforms

    checked = 0
    for _, points, widths, _ in real_grids:
        coords = np.array(points, dtype=float)
        if widths:
            coords[:, widths] = rescale_width(coords[:, widths])
        tri = Triangulation(coords)
        if tri.dim < 2:
            continue
        mine = barycentric_transforms(tri._tri.points, tri._tri.simplices)
        np.testing.assert_array_equal(mine, tri._tri.transform)
        checked += 1
    assert checked >= 3


def test_triangulation_cache_gives_the_same_values(
    real_grids, requests_and_expected, tmp_path: Path
) -> None:  # noqa: ANN001
    """A GridIndex reading triangulations saved by another gives the same values, without
    running Qhull (SciPy's object is rebuilt only for a SciPy answer)."""
    requests, _, _, _ = requests_and_expected
    values = [v for _, _, _, v in real_grids]
    first = GridIndex(values, cache=tmp_path).lookup(requests)
    assert list(tmp_path.glob("*.npz"))
    second_index = GridIndex(values, cache=tmp_path)
    second = second_index.lookup(requests)
    np.testing.assert_array_equal(first, second)
    uncached = GridIndex(values).lookup(requests)
    np.testing.assert_array_equal(first, uncached)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")  # unreadable files are ignored
    for f in tmp_path.glob("*.npz"):
        f.write_bytes(b"truncated")
    np.testing.assert_array_equal(GridIndex(values, cache=tmp_path).lookup(requests), first)


@pytest.mark.parametrize("dim", [2, 3])
def test_cell_lists_coarse_to_fine_equal_every_cell_tested(dim: int) -> None:
    """The block-first search lists exactly the pairs that testing every cell of every
    simplex's box lists (block=1), on point sets with thin simplices."""
    from protomodels.theory.locator import _cell_lists, barycentric_transforms

    rng = np.random.default_rng(dim)
    points = rng.uniform(0.0, 1.0, (300, dim))
    points[:40, 0] = np.linspace(0.0, 1.0, 40)  # a dense line: long thin simplices
    points[:40, 1:] = 0.5 + 1e-3 * rng.normal(size=(40, dim - 1))
    tri = Triangulation(points)
    simplices = tri.delaunay.simplices
    transform = barycentric_transforms(tri._rotated, simplices)
    every = _cell_lists(tri._rotated, simplices, transform, block=1)
    for block in (2, 4, 7):
        coarse = _cell_lists(tri._rotated, simplices, transform, block=block)
        for a, b in zip(coarse, every, strict=True):
            np.testing.assert_array_equal(a, b)
    lower, size, shape, start, members = every
    assert start[-1] == len(members) and len(members) >= len(simplices)
