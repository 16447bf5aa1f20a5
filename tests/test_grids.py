"""Parsing grids (``upperLimits``, ``efficiencyMap``, ...) into point and value arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protomodels.database.grids import (
    GridLayout,
    _fast_arrays,
    _layout_of,
    _points_array,
    _to_python,
    parse_grid,
)
from protomodels.exceptions import DatabaseFormatError


def grid(text: str, *, line: int = 1, field: str = "upperLimits"):
    return parse_grid(text, path="/db/T.txt", field=field, line=line)


def general_path(text: str) -> tuple[np.ndarray, np.ndarray, GridLayout]:
    """The slow path of parse_grid: Python lists, then flattening point by point."""
    data = _to_python(text, "/db/T.txt", "efficiencyMap", 1)
    xs = [p[0] for p in data]
    layout = _layout_of(xs[0])
    points = _points_array(xs, layout)
    values = np.asarray([p[1] for p in data], dtype=np.float64)
    return points, values, layout


# --------------------------------------------------------------------------- valid grids


def test_symmetric_branches_with_units() -> None:
    g = grid(
        "[[[[500*GeV,100*GeV],[500*GeV,100*GeV]],0.1*fb],\n"
        "[[[600*GeV,50*GeV],[600*GeV,50*GeV]],0.2*fb]]"
    )
    np.testing.assert_array_equal(g.points, [[500, 100, 500, 100], [600, 50, 600, 50]])
    np.testing.assert_array_equal(g.values, [0.1, 0.2])
    assert g.layout == GridLayout((2, 2), (), 4)
    assert g.unit == "fb"
    assert g.points.dtype == np.float64
    assert g.points.shape == (2, 4)
    assert g.values.shape == (2,)


def test_asymmetric_branches() -> None:
    g = grid(
        "[[[[500*GeV,100*GeV],[450*GeV,300*GeV,100*GeV]],1.5*fb],"
        "[[[700*GeV,200*GeV],[650*GeV,400*GeV,200*GeV]],0.5*fb]]"
    )
    assert g.layout == GridLayout((2, 3), (), 5)
    np.testing.assert_array_equal(
        g.points, [[500, 100, 450, 300, 100], [700, 200, 650, 400, 200]]
    )
    np.testing.assert_array_equal(g.values, [1.5, 0.5])


def test_one_branch_longer_than_other_single_entry() -> None:
    g = grid("[[[[1000*GeV],[900*GeV,800*GeV,100*GeV]],2*fb]]")
    assert g.layout == GridLayout((1, 3), (), 4)
    np.testing.assert_array_equal(g.points, [[1000, 900, 800, 100]])


def test_width_tuples_are_appended_after_all_masses() -> None:
    # masses in (branch, vertex) order, then the widths of the tuple entries in the same order
    g = grid(
        "[[[[(500*GeV,1e-3*GeV),100*GeV],[(400*GeV,2e-3*GeV),100*GeV]],0.5],"
        "[[[(600*GeV,3e-3*GeV),110*GeV],[(450*GeV,4e-3*GeV),120*GeV]],0.25]]",
        field="efficiencyMap",
    )
    assert g.layout == GridLayout((2, 2), ((0, 0), (1, 0)), 6)
    np.testing.assert_allclose(
        g.points,
        [[500, 100, 400, 100, 1e-3, 2e-3], [600, 110, 450, 120, 3e-3, 4e-3]],
        rtol=1e-15,
    )
    np.testing.assert_array_equal(g.values, [0.5, 0.25])
    assert g.unit is None


def test_width_tuples_at_different_vertices() -> None:
    # widths of (branch 0, vertex 1) then (branch 1, vertex 0)
    g = grid("[[[[800*GeV,(300*GeV,1e-17*GeV)],[(700*GeV,5e-16*GeV),100*GeV]],0.1]]")
    assert g.layout == GridLayout((2, 2), ((0, 1), (1, 0)), 6)
    np.testing.assert_allclose(g.points, [[800, 300, 700, 100, 1e-17, 5e-16]], rtol=1e-15)


def test_width_tuple_only_in_one_branch_of_a_hscp_grid() -> None:
    # like ATLAS-SUSY-2018-14 TSelSelDisp: [[(m, w), m_lsp], [(m, w), m_lsp]]
    g = grid(
        "[[[[(7.0000E+02*GeV,6.5820E-15*GeV),0.0000E+00*GeV],"
        "[(7.0000E+02*GeV,6.5820E-15*GeV),0.0000E+00*GeV]],0.19238]]"
    )
    np.testing.assert_allclose(g.points, [[700, 0, 700, 0, 6.582e-15, 6.582e-15]], rtol=1e-15)
    np.testing.assert_array_equal(g.values, [0.19238])


def test_inclusive_branch_has_no_coordinates() -> None:
    # like CMS-EXO-13-006 THSCPM4: ['*', [m1, (m2, w2)]]
    g = grid(
        "[[['*',[5.5000E+01*GeV,(5.0000E+01*GeV,0.0000E+00*GeV)]],1.605e-06],\n"
        "[['*',[5.5000E+01*GeV,(5.0000E+01*GeV,1.8000E-18*GeV)]],1.5191e-06],\n"
        "[['*',[6.0000E+01*GeV,(5.0000E+01*GeV,1.0000E+06*GeV)]],0.0]]",
        field="efficiencyMap",
    )
    assert g.layout == GridLayout((0, 2), ((1, 1),), 3)
    np.testing.assert_allclose(
        g.points, [[55, 50, 0.0], [55, 50, 1.8e-18], [60, 50, 1e6]], rtol=1e-15
    )
    np.testing.assert_array_equal(g.values, [1.605e-06, 1.5191e-06, 0.0])


def test_inclusive_branch_in_second_position() -> None:
    g = grid('[[[[300*GeV, 100*GeV], "*"], 2.0*fb], [[[400*GeV, 100*GeV], "*"], 1.0*fb]]')
    assert g.layout == GridLayout((2, 0), (), 2)
    np.testing.assert_array_equal(g.points, [[300, 100], [400, 100]])
    np.testing.assert_array_equal(g.values, [2.0, 1.0])


def test_flat_graph_notation_points() -> None:
    # like CMS-EXO-19-012 TRV1jj: [[mass, width], ul*pb]
    g = grid(
        "[[[1800.0,2e-13],2.182359E-01*pb],\n"
        "[[1800.0,18.0],2.182359E-01*pb],\n"
        "[[1900.0,95.0],3.393441E-01*pb]]"
    )
    assert g.layout == GridLayout(None, (), 2)
    np.testing.assert_array_equal(g.points, [[1800.0, 2e-13], [1800.0, 18.0], [1900.0, 95.0]])
    np.testing.assert_allclose(g.values, [218.2359, 218.2359, 339.3441], rtol=1e-12)
    assert g.unit == "pb"


def test_flat_points_with_three_coordinates() -> None:
    g = grid("[[[1000, 500, 0.1], 0.3], [[1100, 600, 0.2], 0.4]]", field="efficiencyMap")
    assert g.layout == GridLayout(None, (), 3)
    np.testing.assert_array_equal(g.points, [[1000, 500, 0.1], [1100, 600, 0.2]])


@pytest.mark.parametrize(
    ("unit", "factor"),
    [("fb", 1.0), ("pb", 1000.0), ("ab", 1e-3), ("nb", 1e6)],
)
def test_cross_section_units_are_converted_to_fb(unit: str, factor: float) -> None:
    g = grid(f"[[[[500*GeV],[500*GeV]],9.5035E+01*{unit}],[[[600*GeV],[600*GeV]],1.5*{unit}]]")
    np.testing.assert_allclose(g.values, [95.035 * factor, 1.5 * factor], rtol=1e-12)
    assert g.unit == unit


def test_pb_to_fb_on_a_real_line() -> None:
    g = grid(
        "[[[[1.8613E+02*GeV,4.5906E+00*GeV],[1.8613E+02*GeV,4.5906E+00*GeV]],9.5035E+01*pb],\n"
        "[[[1.9928E+03*GeV,1.1464E+03*GeV],[1.9928E+03*GeV,1.1464E+03*GeV]],1.4643E-03*pb]]"
    )
    np.testing.assert_allclose(g.values, [95035.0, 1.4643], rtol=1e-12)
    np.testing.assert_allclose(
        g.points, [[186.13, 4.5906, 186.13, 4.5906], [1992.8, 1146.4, 1992.8, 1146.4]], rtol=1e-12
    )


def test_mass_units_are_converted_to_gev() -> None:
    g = grid("[[[[1.5*TeV,0.2*TeV],[1.5*TeV,0.2*TeV]],1*fb]]")
    np.testing.assert_allclose(g.points, [[1500, 200, 1500, 200]], rtol=1e-12)
    g = grid("[[[[1500*MeV],[1500*MeV]],1*fb]]")
    np.testing.assert_allclose(g.points, [[1.5, 1.5]], rtol=1e-12)


def test_spaces_around_units() -> None:
    g = grid("[[[[500 * GeV, 100 * GeV], [500 * GeV, 100 * GeV]], 0.1 * pb]]")
    np.testing.assert_allclose(g.points, [[500, 100, 500, 100]])
    np.testing.assert_allclose(g.values, [100.0])


def test_python_literal_numbers() -> None:
    g = grid("[[[[1.,2],[3,4.]],.5],[[[1e2,2E-1],[3,4]],5e-1]]", field="efficiencyMap")
    np.testing.assert_array_equal(g.points, [[1, 2, 3, 4], [100, 0.2, 3, 4]])
    np.testing.assert_array_equal(g.values, [0.5, 0.5])


def test_zero_values_are_allowed() -> None:
    g = grid("[[[[1,2],[1,2]],0.0],[[[3,4],[3,4]],0]]", field="efficiencyMap")
    np.testing.assert_array_equal(g.values, [0.0, 0.0])


# --------------------------------------------------------------------------- fast == general


@pytest.mark.parametrize(
    "text",
    [
        "[[[[500,100],[500,100]],0.1],[[[600,50],[600,50]],0.2]]",
        "[[[[500,100],[450,300,100]],1.5],[[[700,200],[650,400,200]],0.5]]",
        "[[[[(500,1e-3),100],[(400,2e-3),100]],0.5],[[[(600,3e-3),110],[(450,4e-3),120]],0.25]]",
        "[[[[800,(300,1e-17)],[(700,5e-16),100]],0.1]]",
        "[[[1800.0,2e-13],0.21],[[1800.0,18.0],0.22]]",
        "[[[[1e2,2E-1],[3,4]],5e-1],[[[1.5E+02,0],[3,4]],0.0]]",
        "[[[[1],[2]],3],\n[[[4],[5]],6],\n[[[7],[8]],9]]",
    ],
)
def test_fast_path_equals_general_path_examples(text: str) -> None:
    fast = _fast_arrays(text)
    assert fast is not None
    points, values, layout = general_path(text)
    assert fast[2] == layout
    np.testing.assert_array_equal(fast[0], points)
    np.testing.assert_array_equal(fast[1], values)


_number = st.one_of(
    st.floats(min_value=0, max_value=1e4, allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e-20, max_value=1e-10),
    st.integers(min_value=0, max_value=5000),
)
_formats = st.sampled_from(["{!r}", "{:.4E}", "{:.6e}", "{:g}"])


def _fmt(x: float, form: str) -> str:
    return str(x) if isinstance(x, int) else form.format(x)


@st.composite
def random_grids(draw: st.DrawFn) -> tuple[str, str]:
    """A small valid grid of random shape (bracket notation with width tuples, or flat),
    written without units and with units (masses and widths in GeV, values in pb)."""
    form = draw(_formats)
    flat = draw(st.booleans())
    if flat:
        shape: list = [draw(st.integers(1, 4))]
    else:
        n_branches = draw(st.integers(1, 3))
        shape = [
            [draw(st.booleans()) for _ in range(draw(st.integers(0, 3)))]
            for _ in range(n_branches)
        ]
        if not any(shape):
            shape[0] = [False]
    n_points = draw(st.integers(1, 6))
    sep = draw(st.sampled_from([",", ", ", ",\n"]))
    plain, united = [], []
    for _ in range(n_points):
        if flat:
            numbers = [_fmt(draw(_number), form) for _ in range(shape[0])]
            x_plain = x_unit = "[" + ",".join(numbers) + "]"
        else:
            b_plain, b_unit = [], []
            for branch in shape:
                e_plain, e_unit = [], []
                for is_tuple in branch:
                    m = _fmt(draw(_number), form)
                    if is_tuple:
                        w = _fmt(draw(_number), form)
                        e_plain.append(f"({m},{w})")
                        e_unit.append(f"({m}*GeV,{w}*GeV)")
                    else:
                        e_plain.append(m)
                        e_unit.append(f"{m}*GeV")
                b_plain.append("[" + ",".join(e_plain) + "]")
                b_unit.append("[" + ",".join(e_unit) + "]")
            x_plain = "[" + ",".join(b_plain) + "]"
            x_unit = "[" + ",".join(b_unit) + "]"
        y = _fmt(draw(_number), form)
        plain.append(f"[{x_plain},{y}]")
        united.append(f"[{x_unit},{y}*pb]")
    return "[" + sep.join(plain) + "]", "[" + sep.join(united) + "]"


@settings(max_examples=150, deadline=None)
@given(random_grids())
def test_fast_path_equals_general_path(texts: tuple[str, str]) -> None:
    text, _ = texts
    fast = _fast_arrays(text)
    assert fast is not None, text
    points, values, layout = general_path(text)
    assert fast[2] == layout
    np.testing.assert_array_equal(fast[0], points)
    np.testing.assert_array_equal(fast[1], values)
    parsed = grid(text, field="expectedUpperLimits")  # values up to 1e4: not efficiencies
    np.testing.assert_array_equal(parsed.points, points)
    np.testing.assert_array_equal(parsed.values, values)
    assert parsed.layout == layout


@settings(max_examples=60, deadline=None)
@given(random_grids())
def test_units_give_the_same_points_and_values_in_fb(texts: tuple[str, str]) -> None:
    text, with_units = texts
    plain = grid(text, field="expectedUpperLimits")
    scaled = grid(with_units)
    assert scaled.unit == "pb"
    assert scaled.layout == plain.layout
    np.testing.assert_array_equal(scaled.points, plain.points)
    np.testing.assert_allclose(scaled.values, plain.values * 1000.0, rtol=1e-12)


# --------------------------------------------------------------------------- errors


def _point(i: int) -> str:
    return f"[[[{100 * (i + 1)},{10 * i}],[{100 * (i + 1)},{10 * i}]],{0.1 * (i + 1):.2f}]"


def _grid_with(row: int, new: str, n: int = 5) -> str:
    """A grid of n points, one per line (point i on line i + 1), point ``row`` replaced."""
    points = [new if i == row else _point(i) for i in range(n)]
    return "[" + ",\n".join(points) + "]"


def test_rows_helper_is_a_valid_grid() -> None:
    g = grid(_grid_with(0, _point(0)))
    assert g.points.shape == (5, 4)
    np.testing.assert_allclose(g.values, [0.1, 0.2, 0.3, 0.4, 0.5])


@pytest.mark.parametrize(
    ("index", "value"), [(1, "nan"), (3, "NaN"), (4, "inf"), (2, "-inf")]
)
def test_non_finite_value_names_point_field_and_line(index: int, value: str) -> None:
    text = _grid_with(index, f"[[[{100 * (index + 1)},0],[{100 * (index + 1)},0]],{value}]")
    with pytest.raises(DatabaseFormatError) as info:
        grid(text, line=12, field="upperLimits")
    err = info.value
    assert err.field == "upperLimits"
    assert err.line == 12 + index  # the line holding the bad value, not the field's first line
    assert err.path == "/db/T.txt"
    assert f"grid point {index}" in err.problem
    assert f"value ({value})" in err.problem
    assert f"line {12 + index}" in str(err)
    assert "upperLimits" in str(err)
    assert err.hint


@pytest.mark.parametrize("index", [0, 2, 4])
def test_nan_mass_names_point_field_and_line(index: int) -> None:
    text = _grid_with(index, "[[[300,nan],[300,0]],0.5]")
    with pytest.raises(DatabaseFormatError) as info:
        grid(text, line=40, field="efficiencyMap")
    err = info.value
    assert err.field == "efficiencyMap"
    assert err.line == 40 + index
    assert f"grid point {index}" in err.problem
    assert "mass (nan)" in err.problem
    assert f"line {40 + index}" in str(err)
    assert "efficiencyMap" in str(err)


def test_nan_mass_in_flat_grid() -> None:
    with pytest.raises(DatabaseFormatError) as info:
        grid("[[[1800.0,2e-13],0.2*pb],\n[[NaN,18.0],0.2*pb]]", line=3)
    assert "grid point 1" in info.value.problem
    assert "mass (NaN)" in info.value.problem
    assert info.value.line == 4


@pytest.mark.parametrize(
    ("row", "broken"),
    [
        (2, "[[[300,20],[300,20]],0.30 x]"),
        (2, "[[[300,20],[300,20]],0.30q]"),
        (3, "[[[400,30],[400,30]]:0.40]"),
        (1, "[[[200,10],[200,10]],1e]"),
        (2, "[[[300,20),[300,20]],0.30]"),
        (2, "[[[300,20],[300,20]] 0.30]"),
        (3, "[[[400,,30],[400,30]],0.40]"),
    ],
    ids=[
        "stray-word", "bad-literal", "colon", "bad-exponent", "mismatched-bracket",
        "missing-comma", "double-comma",
    ],
)
def test_syntax_error_line_is_start_line_plus_offset(row: int, broken: str) -> None:
    text = _grid_with(row, broken)
    assert broken in text.splitlines()[row]
    with pytest.raises(DatabaseFormatError) as info:
        grid(text, line=20, field="expectedUpperLimits")
    err = info.value
    assert err.field == "expectedUpperLimits"
    assert err.line == 20 + row
    assert "grid" in err.problem
    assert err.hint


def test_missing_closing_bracket_is_a_syntax_error_within_the_grid() -> None:
    text = _grid_with(2, "[[[300,20],[300,20],0.30]")
    with pytest.raises(DatabaseFormatError) as info:
        grid(text, line=20)
    # Python reports the bracket that was never closed: somewhere in the grid's lines
    assert 20 <= info.value.line <= 24
    assert info.value.field == "upperLimits"


def test_negative_value() -> None:
    text = _grid_with(3, "[[[400,30],[400,30]],-0.40]")
    with pytest.raises(DatabaseFormatError) as info:
        grid(text, line=9)
    err = info.value
    assert "grid point 3 has a negative value -0.40" in err.problem
    assert err.line == 12
    assert err.field == "upperLimits"


def test_negative_masses_are_not_an_error() -> None:
    # only values are checked for sign (masses may be given relative to another one)
    g = grid("[[[[-100,20],[100,20]],0.1]]")
    assert g.points[0, 0] == -100


@pytest.mark.parametrize(
    ("text", "points", "values"),
    [
        ("[[[[100*GeV],[100*GeV]],0.1*fb],[[[200*GeV],[200*GeV]],0.1*pb]]",
         [[100, 100], [200, 200]], [0.1, 100.0]),
        ("[[[[100*GeV],[100*GeV]],0.1*fb],[[[0.2*TeV],[200*GeV]],0.1*fb]]",
         [[100, 100], [200, 200]], [0.1, 0.1]),
        ("[[[[100 * GeV],[100 * GeV]],0.1 * fb],[[[200 * GeV],[200 * GeV]],0.1 * ab]]",
         [[100, 100], [200, 200]], [0.1, 1e-4]),
    ],
    ids=["fb-pb", "GeV-TeV", "spaced-fb-ab"],
)
def test_mixed_units_are_converted_per_point(text: str, points: list, values: list) -> None:
    """SModelS converts every number with its own unit (one point in pb in a grid of fb)."""
    g = grid(text, line=5)
    np.testing.assert_allclose(g.points, points)
    np.testing.assert_allclose(g.values, values)


@pytest.mark.parametrize(
    ("text", "field", "problem", "line"),
    [
        ("[[[[100*GeV],[100*GeV]],0.1*fb],\n[[[200*GeV],[200*GeV]],0.1*GeV]]", "upperLimits",
         "grid point 1 has the value 0.1*GeV: an energy unit", 6),
        ("[[[[100*GeV],[100*fb]],0.1*fb],[[[200*GeV],[200*GeV]],0.1*fb]]", "upperLimits",
         "grid point 0 has the coordinate 100*fb: a cross-section unit", 5),
        ("[[[[100*GeV],[100*GeV]],0.1*fb]]", "efficiencyMap",
         "grid point 0 has the efficiency 0.1*fb with a unit", 5),
    ],
    ids=["energy-value", "cross-section-mass", "efficiency-with-unit"],
)
def test_units_of_the_wrong_kind_name_the_point(
    text: str, field: str, problem: str, line: int
) -> None:
    with pytest.raises(DatabaseFormatError) as info:
        grid(text, line=5, field=field)
    assert problem in info.value.problem
    assert info.value.line == line and info.value.field == field


def test_ragged_points_with_different_counts() -> None:
    text = "[[[[100,10],[100,10]],0.1],\n[[[200,20,5],[200,20]],0.2]]"
    with pytest.raises(DatabaseFormatError) as info:
        grid(text, line=3)
    assert "point 1" in info.value.problem
    assert info.value.line == 4  # the line where point 1 starts


def test_ragged_points_with_different_branch_count() -> None:
    text = "[[[[100,10],[100,10]],0.1],[[[200,20]],0.2]]"
    with pytest.raises(DatabaseFormatError) as info:
        grid(text)
    assert "point 1" in info.value.problem


def test_ragged_points_with_same_number_count_bracket() -> None:
    # point 1 has branches of 3 and 1 masses instead of 2 and 2: same count of numbers
    text = "[[[[100,10],[100,10]],0.1],\n[[[200,20,5],[5]],0.2]]"
    with pytest.raises(DatabaseFormatError) as info:
        grid(text, line=3)
    assert "point 1" in info.value.problem


def test_ragged_points_with_compensating_counts_flat() -> None:
    # 2 + 3 + 1 coordinates: on average 2 per point, but the points are ragged
    text = "[[[1,2],0.1],[[1,2,3],0.2],[[1],0.3]]"
    with pytest.raises(DatabaseFormatError) as info:
        grid(text)
    assert "point 1" in info.value.problem


def test_point_that_is_not_a_pair() -> None:
    with pytest.raises(DatabaseFormatError) as info:
        grid("[[[[100],[100]],0.1],[[[200],[200]],0.2,7]]")
    assert "point 1" in info.value.problem


@pytest.mark.parametrize("text", ["[]", "None", "0.5", "'abc'"])
def test_empty_or_non_list_grid(text: str) -> None:
    with pytest.raises(DatabaseFormatError) as info:
        grid(text, line=2)
    assert info.value.line == 2
    assert info.value.field == "upperLimits"


# --------------------------------------------------------------------------- issue 17: messages


def test_nan_in_the_middle_of_a_multi_line_grid_names_its_line() -> None:
    # 9 points, one per line, the field starting on line 30: the nan is on line 34
    points = [_point(i) for i in range(9)]
    points[4] = points[4].replace(",0.50]", ",nan]")
    with pytest.raises(DatabaseFormatError) as info:
        grid("[" + ",\n".join(points) + "]", line=30)
    assert info.value.line == 34
    assert "grid point 4 has a non-finite value (nan)" in info.value.problem


def test_value_on_the_line_after_its_masses_is_located() -> None:
    text = "[[[[100,10],[100,10]],\n0.1],\n[[[200,20],[200,20]],\n-0.2]]"
    with pytest.raises(DatabaseFormatError) as info:
        grid(text, line=7)
    assert info.value.line == 10
    assert "grid point 1 has a negative value -0.2" in info.value.problem


def test_width_of_a_tuple_is_located_in_written_order() -> None:
    text = (
        "[[[[(500*GeV,1e-3*GeV),100*GeV],[(400*GeV,2e-3*GeV),100*GeV]],0.5*fb],\n"
        "[[[(600*GeV,3e-3*GeV),110*GeV],\n[(450*GeV,-4e-3*GeV),120*GeV]],0.25*fb]]"
    )
    with pytest.raises(DatabaseFormatError) as info:
        grid(text, line=2)
    err = info.value
    assert err.line == 4
    assert "grid point 1 has a negative width -4e-3" in err.problem


def test_inf_mass_after_a_width_tuple_is_located() -> None:
    text = "[[[[(500,1e-3),100],[400,100]],0.5],\n[[[(600,3e-3),110],[450,\ninf]],0.25]]"
    with pytest.raises(DatabaseFormatError) as info:
        grid(text, line=1)
    assert info.value.line == 3
    assert "non-finite mass (inf)" in info.value.problem


@pytest.mark.parametrize(
    ("entry", "shown"),
    [("np.nan", "np.nan"), ("float('nan')", "float('nan')"), ("x", "x"), ("True", "True"),
     ("1+2j", "1+2j"), ("os.sep", "os.sep")],
)
def test_entry_that_is_not_a_number_is_quoted_as_written(entry: str, shown: str) -> None:
    # a value the JSON reader rejects goes through the literal reader: its message must quote
    # the entry as written, never Python's internal names (<ast.Attribute object at 0x...>)
    text = _grid_with(2, f"[[[300,20],[300,20]],{entry}*fb]")
    with pytest.raises(DatabaseFormatError) as info:
        grid(text, line=20)
    err = info.value
    assert "<ast" not in str(err) and "object at 0x" not in str(err)
    assert repr(shown) in err.problem
    assert err.line == 22
    assert err.field == "upperLimits"


def test_non_number_value_of_the_slow_path_names_its_point_and_line() -> None:
    text = _grid_with(3, "[[[400,30],[400,30]],'x']")
    with pytest.raises(DatabaseFormatError) as info:
        grid(text, line=5)
    assert "point 3 has the value 'x', not a number" in info.value.problem
    assert info.value.line == 8


def test_messages_show_plain_numbers() -> None:
    for text in ("[[[[100],[100]],-3.0]]", "[[[[100],[100]],1e400]]"):
        with pytest.raises(DatabaseFormatError) as info:
            grid(text)
        assert "np." not in str(info.value) and "float64" not in str(info.value)


def test_efficiency_above_one_is_an_error() -> None:
    # no efficiency of the real database exceeds 1
    text = _grid_with(1, "[[[200,10],[200,10]],1.5]")
    with pytest.raises(DatabaseFormatError) as info:
        grid(text, line=3, field="efficiencyMap")
    assert "grid point 1 has an efficiency 1.5 > 1" in info.value.problem
    assert info.value.line == 4
    g = grid(text, line=3, field="upperLimits")  # an upper limit of 1.5 fb is fine
    assert g.values[1] == 1.5


def test_efficiency_of_exactly_one_is_allowed() -> None:
    g = grid("[[[[100],[100]],1.0],[[[200],[200]],0]]", field="efficiencyMap")
    np.testing.assert_array_equal(g.values, [1.0, 0.0])


