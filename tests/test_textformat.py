"""The ``tag: value`` reader and the safe value evaluator of the SModelS text format."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from protomodels.database.textformat import (
    ValueNotUnderstood,
    parse_value,
    parse_value_strictly,
    read_fields,
)
from protomodels.exceptions import DatabaseFormatError


def fields_of(text: str) -> list[tuple[str, str, int]]:
    return [(f.tag, f.text, f.line) for f in read_fields("info.txt", text)]


# --------------------------------------------------------------------------- read_fields


def test_one_field_per_line_with_line_numbers() -> None:
    assert fields_of("id: CMS-SUS-19-006\nsqrts: 13*TeV\nlumi: 137/fb\n") == [
        ("id", "CMS-SUS-19-006", 1),
        ("sqrts", "13*TeV", 2),
        ("lumi", "137/fb", 3),
    ]


def test_value_is_split_at_the_first_colon_only() -> None:
    assert fields_of("url: http://cms.cern/x:y\n") == [("url", "http://cms.cern/x:y", 1)]


def test_line_ending_in_comma_continues() -> None:
    text = "datasetOrder: 'SR1',\n'SR2',\n'SR3'\nnext: 1\n"
    assert fields_of(text) == [
        ("datasetOrder", "'SR1',\n'SR2',\n'SR3'", 1),
        ("next", "1", 4),
    ]


def test_line_ending_in_comma_with_trailing_blanks_continues() -> None:
    text = "covariance: [[1, 2],   \n[2, 1]]\t\nnext: 1\n"
    assert fields_of(text) == [("covariance", "[[1, 2],\n[2, 1]]", 1), ("next", "1", 3)]


def test_line_ending_in_backslash_continues() -> None:
    text = "comment: a long \\\ncomment\nnext: 1\n"
    assert fields_of(text) == [("comment", "a long \\\ncomment", 1), ("next", "1", 3)]


@pytest.mark.parametrize("lead", [" ", "\t", "  \t"], ids=["space", "tab", "mixed"])
def test_next_line_starting_with_blank_continues(lead: str) -> None:
    text = f"jsonFiles: {{\n{lead}'a.json': ['SR1']\n}}\nincludeCRs: True\n"
    assert fields_of(text) == [
        ("jsonFiles", f"{{\n{lead}'a.json': ['SR1']\n}}", 1),
        ("includeCRs", "True", 4),
    ]


def test_next_line_starting_with_closing_brace_continues() -> None:
    text = "dataMap: {0: (1, 'mass', GeV)\n}\ntxName: T\n"
    assert fields_of(text) == [("dataMap", "{0: (1, 'mass', GeV)\n}", 1), ("txName", "T", 3)]


def test_multi_line_grid_then_next_field_line_number() -> None:
    grid = "[[[[1*GeV,2*GeV],[1*GeV,2*GeV]],3*pb],\n" * 4 + "[[[[1*GeV,2*GeV],[1*GeV,2*GeV]],3*pb]]"
    text = f"txName: T2\nupperLimits: {grid}\nexpectedUpperLimits: None\n"
    fields = read_fields("T2.txt", text)
    assert [f.tag for f in fields] == ["txName", "upperLimits", "expectedUpperLimits"]
    assert [f.line for f in fields] == [1, 2, 7]
    assert fields[1].text == grid


def test_blank_and_comment_lines_are_skipped_but_counted() -> None:
    text = "# a comment\na: 1\n\n\n# another\nb: 2\n"
    assert fields_of(text) == [("a", "1", 2), ("b", "2", 6)]


def test_leading_blank_line_is_counted() -> None:
    # the first field is on line 2 of the file
    assert fields_of("\na: 1\nb: 2\n") == [("a", "1", 2), ("b", "2", 3)]


def test_crlf_line_ends() -> None:
    assert fields_of("a: 1\r\nb: 2,\r\n3\r\nc: x\r\n") == [
        ("a", "1", 1),
        ("b", "2,\n3", 2),
        ("c", "x", 4),
    ]


def test_repeated_tag_is_kept_twice() -> None:
    assert fields_of("a: 1\na: 2\n") == [("a", "1", 1), ("a", "2", 2)]


def test_empty_value() -> None:
    assert fields_of("comment:\nb: 2\n") == [("comment", "", 1), ("b", "2", 2)]


def test_reads_the_file_when_no_text_is_given(tmp_path: Path) -> None:
    path = tmp_path / "dataInfo.txt"
    path.write_text("dataType: efficiencyMap\ndataId: SR1\nobservedN: 3\n")
    fields = read_fields(path)
    assert [(f.tag, f.text, f.line) for f in fields] == [
        ("dataType", "efficiencyMap", 1),
        ("dataId", "SR1", 2),
        ("observedN", "3", 3),
    ]


@pytest.mark.parametrize(
    ("text", "line", "shown"),
    [
        ("a: 1\nnot a tag line\n", 2, "not a tag line"),
        ("a: 1\nb: 2\n\nmy tag: 3\n", 4, "my tag: 3"),
        ("a: 1,\n2\n: no tag\n", 3, ": no tag"),
        ("just text\n", 1, "just text"),
    ],
    ids=["no-colon", "tag-with-space", "empty-tag", "first-line"],
)
def test_non_tag_line_is_an_error(text: str, line: int, shown: str) -> None:
    with pytest.raises(DatabaseFormatError) as info:
        read_fields("/db/13TeV/X/globalInfo.txt", text)
    err = info.value
    assert err.path == "/db/13TeV/X/globalInfo.txt"
    assert err.line == line
    assert shown in err.problem
    assert err.hint
    assert f"line {line}" in str(err)
    assert "/db/13TeV/X/globalInfo.txt" in str(err)


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "globalInfo.txt"
    with pytest.raises(DatabaseFormatError) as info:
        read_fields(missing)
    assert info.value.path == str(missing)
    assert info.value.line is None
    assert info.value.hint


# --------------------------------------------------------------------------- evaluate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("137/fb", 137.0),
        ("139.0/fb", 139.0),
        ("20.1/fb", 20.1),
        ("13*TeV", 13000.0),
        ("8.0*TeV", 8000.0),
        ("0.035*pb", 35.0),
        ("1.02*fb", 1.02),
        ("3*ab", 0.003),
        ("500*GeV", 500.0),
        ("250*MeV", 0.25),
        ("-3*GeV", -3.0),
        ("42", 42),
        ("0.46", 0.46),
        ("2**3", 8),
    ],
)
def test_numbers_and_units(text: str, expected: float) -> None:
    value = parse_value(text)
    assert isinstance(value, (int, float))
    assert value == pytest.approx(expected, rel=1e-12)


def test_integers_stay_integers() -> None:
    value = parse_value("42")
    assert value == 42
    assert isinstance(value, int)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("True", True),
        ("False", False),
        ("None", None),
        ("'SR1'", "SR1"),
        ("'SR1', 'SR2'", ("SR1", "SR2")),
        ('"SR1", "SR2", "SR3"', ("SR1", "SR2", "SR3")),
        ("(1, 2*GeV)", (1, 2.0)),
        ("[1, (2*TeV, 3e-18*GeV)]", [1, (2000.0, 3e-18)]),
        ("['MET', 'MET']", ["MET", "MET"]),
        ("[[1.5, 2], [2, 1.5]]", [[1.5, 2], [2, 1.5]]),
        ("{0: (1, 'mass', GeV), 1: (1, 'totalwidth', GeV)}",
         {0: (1, "mass", 1.0), 1: (1, "totalwidth", 1.0)}),
        ("{'a.json': ['SR1', {'smodels': 'SR2', 'type': 'CR'}]}",
         {"a.json": ["SR1", {"smodels": "SR2", "type": "CR"}]}),
    ],
)
def test_containers_and_constants(text: str, expected: object) -> None:
    value = parse_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_dict_values_keep_units_applied() -> None:
    assert parse_value("{'ul': 2*pb, 'm': 1*TeV}") == {"ul": 2000.0, "m": 1000.0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024/7/2 by hand", "2024/7/2 by hand"),
        ("  Wolfgang Waltenberger  ", "Wolfgang Waltenberger"),
        ("http://cms-results.web.cern.ch/x", "http://cms-results.web.cern.ch/x"),
        ("JHEP 10 (2019) 244", "JHEP 10 (2019) 244"),
        ("1/0", "1/0"),
        ("[1, 2", "[1, 2"),
        ("N/A", "N/A"),
        ("tbd", "tbd"),
        ("'a' * 3", "'a' * 3"),
        ("__import__('os').getcwd()", "__import__('os').getcwd()"),
        ("open('/etc/passwd')", "open('/etc/passwd')"),
        ("(1).__class__", "(1).__class__"),
    ],
)
def test_unparseable_text_is_returned_stripped(text: str, expected: str) -> None:
    assert parse_value(text) == expected


def test_multiline_bracketed_value_is_evaluated() -> None:
    (field,) = read_fields("globalInfo.txt", "covariance: [[1, 2],\n [3, 4]]\n")
    assert parse_value(field.text) == [[1, 2], [3, 4]]


def test_bare_tuple_continued_after_commas_evaluates_like_one_line() -> None:
    # SModelS joins the lines of a value ending in ',' and evaluates the joined line:
    # 'datasetOrder: "SR1",\n"SR2"' means the tuple ("SR1", "SR2")
    (field,) = read_fields("globalInfo.txt", 'datasetOrder: "SR1",\n"SR2",\n"SR3"\n')
    assert parse_value(field.text) == ("SR1", "SR2", "SR3")


def test_nan_float_is_passed_through() -> None:
    # "nan" is not a name the evaluator knows: kept as text; a computed NaN stays a float
    assert parse_value("nan") == "nan"
    value = parse_value("1e308*1e308 - 1e308*1e308")
    assert isinstance(value, float)
    assert math.isnan(value)


# --------------------------------------------------------------------------- why not understood


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("np.nan", "cannot understand 'np.nan'", 0),
        ("nan", "unknown name 'nan'", 0),
        ("abc/fb", "unknown name 'abc'", 0),
        ("[1, 2,\n np.inf]", "cannot understand 'np.inf'", 1),
        ("(1).__class__", "cannot understand '(1).__class__'", 0),
        ("open('/etc/passwd')", "cannot understand \"open('/etc/passwd')\"", 0),
        ("1/0", "division by zero in '1/0'", 0),
        ("10**10**10", "number too large in '10**10**10'", 0),
        ("-'a'", "sign on a non-number in \"-'a'\"", 0),
        ("[1, 2", "not a valid expression ('[' was never closed) in '[1, 2'", 0),
        ("[1,\n2 3]", "not a valid expression", 1),
    ],
)
def test_evaluate_strictly_quotes_what_it_did_not_understand(
    text: str, message: str, offset: int
) -> None:
    with pytest.raises(ValueNotUnderstood) as info:
        parse_value_strictly(text)
    err = info.value
    assert message in str(err)
    assert err.offset == offset
    assert "<ast" not in str(err) and "object at 0x" not in str(err)
    # the lenient evaluator keeps such a value as text, as SModelS does
    assert parse_value(text) == text.strip()


def test_huge_powers_are_computed_in_floating_point() -> None:
    # no giant integers (10**10**10 would take minutes and gigabytes as an int)
    assert parse_value("10**300") == 1e300
    assert isinstance(parse_value("10**300"), float)
    assert parse_value("2**10") == 1024 and isinstance(parse_value("2**10"), int)
    assert parse_value("9**9**9") == "9**9**9"


def test_huge_integer_literal_is_not_understood() -> None:
    with pytest.raises(ValueNotUnderstood) as info:
        parse_value_strictly("1" * 5000)
    assert "not a valid expression" in str(info.value)
    assert len(str(info.value)) < 200
