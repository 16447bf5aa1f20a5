"""Property test of the import (issue 17, "no input is ever silently wrong").

One number of a real result is replaced at random (in a dataInfo.txt, in globalInfo.txt, in the
covariance or in a grid) by a negative number, 0, a tiny or huge one, nan, inf, or something
that is not a number. The import must then either succeed, and store exactly the file's values,
all finite and within their physical ranges, or fail with a DatabaseFormatError naming the file
and the field: never another exception, never a NaN in the store, never a silent change.

The results are CMS-SUS-20-004-eff (efficiency maps, 22 signal regions, a covariance and third
moments) and CMS-EXO-19-012 (an upper-limit map in pb, graph notation).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from _helpers import EFF_RESULT, VALUE_RE, eff_source, single_result_source
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from protomodels.database import import_database
from protomodels.database import open as open_database
from protomodels.database.reader import read_result
from protomodels.exceptions import DatabaseFormatError

UL_RESULT = "13TeV/CMS/CMS-EXO-19-012"

#: for CI: a fixed, reproducible set of examples, no example database written, no deadline
#: (an import takes some 50 ms); PROTOMODELS_PROPERTY_EXAMPLES=1000 for a longer search
EXAMPLES = int(os.environ.get("PROTOMODELS_PROPERTY_EXAMPLES", "25"))
CI = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

#: text no message may contain: Python or NumPy internals
INTERNALS = ("np.float64", "float64(", "<ast.", "object at 0x", "Traceback", "array(")

# --------------------------------------------------------------------------- the replacements


@dataclass(frozen=True)
class Replacement:
    """A text put in place of a number; ``value`` is what it means (None: not a number)."""

    text: str
    value: float | None


_FLOATS = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, -3.0, 0.5, 2.0, 1e-300, 1e300, -1e300, 1.7e308]),
    st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False),
    st.floats(min_value=-10, max_value=10, allow_subnormal=False),
).map(lambda v: Replacement(repr(v), v))

_NON_FINITE = st.sampled_from(["nan", "NaN", "inf", "-inf", "1e400", "-1e400"]).map(
    lambda t: Replacement(t, float(t))
)

#: not numbers (``None`` is handled by each field)
_WORDS = st.sampled_from(
    ["abc", "np.nan", "None", "True", "'3'", "[1]", "1,2", "", "1/0", "3 4", "float('nan')"]
).map(lambda t: Replacement(t, None))

REPLACEMENTS = st.one_of(_FLOATS, _FLOATS, _NON_FINITE, _WORDS)


# --------------------------------------------------------------------------- the fixtures


@pytest.fixture(scope="module")
def sources(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two real result folders (read-only), by result path."""
    return {
        EFF_RESULT: eff_source(tarball, tmp_path_factory) / EFF_RESULT,
        UL_RESULT: single_result_source(tarball, tmp_path_factory, UL_RESULT) / UL_RESULT,
    }


def snapshot(out: Path, rel: str) -> dict[tuple, object]:
    """Every number stored of a result, by key; grids and the covariance as arrays."""
    database = open_database(out, build=False, workspaces=False)
    (r,) = [r for r in database.results if r.path == rel]
    shot: dict[tuple, object] = {
        ("sqrts",): r.sqrts_tev,
        ("lumi",): r.lumi_ifb,
        ("covariance",): r.covariance,
        ("likelihood",): (r.likelihood, r.fallback),
        ("order",): tuple(d.dataset_id for d in r.datasets),
    }
    for d in r.datasets:
        for attr in ("observed_n", "expected_bg", "bg_error", "upper_limit_fb",
                     "expected_upper_limit_fb", "third_moment"):
            shot[("dataset", d.dataset_id, attr)] = getattr(d, attr)
        for t in d.topologies:
            for kind, g in t.grids.items():
                shot[("grid", t.source, kind)] = g.values
                shot[("points", t.source, kind)] = g.points
    return shot


class Baselines(dict):
    """The stored values of the unchanged results, by result (with a short repr, as
    hypothesis prints the arguments of a failing example)."""

    def __repr__(self) -> str:
        return f"<stored values of {', '.join(self)}>"


@pytest.fixture(scope="module")
def baselines(sources: dict[str, Path]) -> Baselines:
    """The stored values of the unchanged results."""
    out = Baselines()
    for rel, folder in sources.items():
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "db"
            shutil.copytree(folder, root / rel)
            report = import_database(root, Path(tmp) / "s.sqlite", workers=1)
            assert report.errors == [] and report.warnings == [], report.warnings
            out[rel] = snapshot(Path(tmp) / "s.sqlite", rel)
    return out


# --------------------------------------------------------------------------- the mutations


@dataclass(frozen=True)
class Mutation:
    """Where a number was replaced: file, field, line, and the snapshot key of its value."""

    rel: str  # the result
    file: str  # relative to the result folder
    tag: str
    line: int | None
    key: tuple
    scale: float  # stored value = the written number x scale


#: the numeric fields of a dataInfo.txt: (snapshot attribute, required, lowest, lowest excluded)
DATA_FIELDS = {
    "observedN": ("observed_n", True, 0.0, False),
    "expectedBG": ("expected_bg", True, 0.0, False),
    "bgError": ("bg_error", True, 0.0, True),
    "upperLimit": ("upper_limit_fb", False, 0.0, True),
    "expectedUpperLimit": ("expected_upper_limit_fb", False, 0.0, True),
    "thirdMoment": ("third_moment", False, -math.inf, False),
}
GLOBAL_FIELDS = {"sqrts": (0.0, True), "lumi": (0.0, True)}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def replace_in_line(path: Path, tag: str, new: str) -> int:
    """Replace the first number of the line ``tag: ...``; the line's 1-based number."""
    lines = path.read_text().split("\n")
    (i,) = [k for k, s in enumerate(lines) if s.startswith(f"{tag}:")]
    head, value = lines[i].split(":", 1)
    m = re.search(_NUMBER, value)
    assert m is not None, lines[i]
    lines[i] = f"{head}:{value[: m.start()]}{new}{value[m.end() :]}"
    path.write_text("\n".join(lines))
    return i + 1


def grid_values(text: str, tag: str) -> tuple[int, list[re.Match]]:
    """(offset where the field starts, the value of every point of the field)."""
    start = text.index(f"\n{tag}:") + 1
    nxt = re.search(r"\n[A-Za-z_]+:", text[start:])
    end = start + nxt.start() if nxt else len(text)
    return start, list(VALUE_RE.finditer(text, start, end))


# --------------------------------------------------------------------------- the checks


def _import(root: Path, out: Path):
    """Import strictly; the error, if any (any other exception fails the test)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import_database(root, out, workers=1, strict=True)
        except DatabaseFormatError as err:
            return err
    return None


def assert_clean_error(err: DatabaseFormatError, root: Path, mutation: Mutation) -> None:
    assert type(err) is DatabaseFormatError
    text = str(err)
    for internal in INTERNALS:
        assert internal not in text, text
    assert err.problem.strip() and err.hint.strip()
    expected = root / mutation.rel / mutation.file
    if mutation.tag == "covariance" and err.field == "thirdMoment":
        # a smaller variance can make a region's third moment impossible: named in its file
        assert err.path.startswith(str(root / mutation.rel)) and err.path.endswith("dataInfo.txt")
        assert err.line is not None
        return
    assert err.path == str(expected), text
    assert err.field == mutation.tag, text
    assert str(expected) in text and f"'{mutation.tag}'" in text
    if mutation.line is not None:
        assert err.line == mutation.line, text


def assert_physical(shot: dict[tuple, object]) -> None:
    """Every stored number is finite and within its physical range."""
    assert shot[("sqrts",)] > 0 and math.isfinite(shot[("sqrts",)])
    assert shot[("lumi",)] > 0 and math.isfinite(shot[("lumi",)])
    cov = shot[("covariance",)]
    variances = {}
    if cov is not None:
        assert np.isfinite(cov).all()
        np.testing.assert_allclose(cov, cov.T, rtol=1e-6)
        np.linalg.cholesky(cov)  # positive definite
        variances = dict(zip(shot[("order",)], np.diag(cov), strict=True))
    for key, value in shot.items():
        if key[0] == "dataset" and value is not None:
            attr = key[2]
            assert math.isfinite(value), key
            lowest, excluded = {
                a: (lo, ex) for a, _, lo, ex in DATA_FIELDS.values()
            }[attr]
            assert value > lowest if excluded else value >= lowest, key
            if attr == "third_moment" and key[1] in variances:
                v = float(variances[key[1]])
                assert value * value <= 8 * v * v * v
        elif key[0] in ("grid", "points"):
            assert np.isfinite(value).all(), key
            if key[0] == "grid":
                assert (value >= 0).all(), key
                if key[2] == "efficiency":
                    assert (value <= 1).all(), key


def assert_same(shot: dict[tuple, object], expected: dict[tuple, object]) -> None:
    assert shot.keys() == expected.keys()
    for key, value in expected.items():
        got = shot[key]
        if isinstance(value, np.ndarray) or isinstance(got, np.ndarray):
            np.testing.assert_array_equal(got, value, err_msg=str(key))
        elif key == ("sqrts",):  # x*TeV is x*1000 GeV, stored as TeV again: one rounding
            assert got == pytest.approx(value, rel=1e-15), key
        else:
            assert got == value, key


def in_range(value: float, lowest: float, excluded: bool) -> bool:
    return math.isfinite(value) and (value > lowest if excluded else value >= lowest)


# --------------------------------------------------------------------------- the tests


def test_grid_values_of_the_files_are_the_stored_ones(
    sources: dict[str, Path], baselines: dict[str, dict]
) -> None:
    """The mutations below find a point's value by its position in the file: check that."""
    for rel, tag, kind, scale in ((EFF_RESULT, "efficiencyMap", "efficiency", 1.0),
                                  (UL_RESULT, "upperLimits", "upper_limit", 1000.0)):
        files = sorted(p for p in sources[rel].glob("*/*.txt") if p.name != "dataInfo.txt")
        for path in files[:6]:
            _, matches = grid_values(path.read_text(), tag)
            key = ("grid", f"{rel}/{path.relative_to(sources[rel]).as_posix()}", kind)
            if key not in baselines[rel]:  # an all-zero grid, dropped
                continue
            np.testing.assert_array_equal(
                baselines[rel][key], [float(m.group(1)) * scale for m in matches]
            )


#: where a number is replaced: (file kind, field); each gets its own examples
LOCATIONS = (
    [("dataInfo", tag) for tag in DATA_FIELDS]
    + [("globalInfo", tag) for tag in GLOBAL_FIELDS]
    + [("efficiencyMap", "efficiencyMap"), ("upperLimits", "upperLimits")]
)


@pytest.mark.parametrize(("where", "tag"), LOCATIONS)
@CI
@given(data=st.data(), replacement=REPLACEMENTS)
def test_a_replaced_number_is_imported_exactly_or_reported(
    sources: dict[str, Path], baselines: dict[str, dict], where: str, tag: str,
    data: st.DataObject, replacement: Replacement,
) -> None:
    rel = UL_RESULT if where == "upperLimits" else EFF_RESULT
    expected = dict(baselines[rel])
    new = replacement.value
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "db"
        shutil.copytree(sources[rel], root / rel)
        folder = root / rel
        if where == "dataInfo":
            region = data.draw(st.sampled_from([f"SR{k}" for k in range(1, 23)]))
            attr, required, lowest, excluded = DATA_FIELDS[tag]
            file = f"{region}/dataInfo.txt"
            line = replace_in_line(folder / file, tag, replacement.text)
            mutation = Mutation(rel, file, tag, line, ("dataset", region, attr), 1.0)
            has_unit = tag in ("upperLimit", "expectedUpperLimit")
            if replacement.text == "None" and not required and not has_unit:
                ok, stored = True, None  # 'thirdMoment: None' means no third moment
            elif new is None or not in_range(new, lowest, excluded):
                ok, stored = False, None
            elif tag == "thirdMoment":
                k = baselines[rel][("order",)].index(region)
                variance = baselines[rel][("covariance",)][k, k]
                variance = float(variance)
                ok, stored = new * new <= 8 * variance * variance * variance, new
            else:
                ok, stored = True, new
        elif where == "globalInfo":
            line = replace_in_line(folder / "globalInfo.txt", tag, replacement.text)
            mutation = Mutation(rel, "globalInfo.txt", tag, line, (tag,), 1.0)
            # sqrts is written in TeV (13.0*TeV = 13000 GeV): it must stay finite in GeV
            scale = 1000.0 if tag == "sqrts" else 1.0
            ok = new is not None and in_range(new * scale, *GLOBAL_FIELDS[tag])
            stored = new
        else:
            kind, scale = (
                ("efficiency", 1.0) if tag == "efficiencyMap" else ("upper_limit", 1000.0)
            )
            files = sorted(p for p in folder.glob("*/*.txt") if p.name != "dataInfo.txt")
            path = data.draw(st.sampled_from(files))
            text = path.read_text()
            _, matches = grid_values(text, tag)
            m = matches[data.draw(st.integers(0, len(matches) - 1))]
            line = text.count("\n", 0, m.start(1)) + 1
            path.write_text(text[: m.start(1)] + replacement.text + text[m.end(1) :])
            source = f"{rel}/{path.relative_to(folder).as_posix()}"
            mutation = Mutation(rel, path.relative_to(folder).as_posix(), tag, line,
                                ("grid", source, kind), scale)
            index = matches.index(m)
            ok = new is not None and math.isfinite(new * scale) and new * scale >= 0
            if tag == "efficiencyMap":
                ok = ok and new <= 1
            if ok and mutation.key in expected:
                values = np.array(expected[mutation.key])
                values[index] = new * scale
                expected[mutation.key] = values
                if not values.any():  # an all-zero grid is dropped (as in SModelS)
                    del expected[mutation.key]
                    del expected[("points", source, kind)]
            elif ok:  # the grid was all zeros: it is imported once it has a non-zero value
                ok = None  # not predicted; checked below for cleanliness only
        err = _import(root, Path(tmp) / "store.sqlite")
        event(f"{tag}: {'error' if err is not None else 'imported'}")
        if err is not None:
            assert ok is not True, f"{replacement} rejected: {err}"
            assert_clean_error(err, root, mutation)
            return
        assert ok is not False, f"{replacement!r} in {mutation} was imported"
        shot = snapshot(Path(tmp) / "store.sqlite", rel)
        assert_physical(shot)
        if ok is None:
            return
        if mutation.key in expected and where in ("dataInfo", "globalInfo"):
            expected[mutation.key] = stored
        assert_same(shot, expected)


@CI.__class__(CI, max_examples=3 * EXAMPLES)
@given(data=st.data(), replacement=REPLACEMENTS)
def test_a_replaced_covariance_entry_is_imported_exactly_or_reported(
    sources: dict[str, Path], baselines: dict[str, dict], data: st.DataObject,
    replacement: Replacement,
) -> None:
    """Entry (i, j) and (j, i) get the same text (one entry alone makes it asymmetric)."""
    rel = EFF_RESULT
    cov = baselines[rel][("covariance",)]
    n = len(cov)
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.sampled_from([i, data.draw(st.integers(0, n - 1))]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "db"
        shutil.copytree(sources[rel], root / rel)
        path = root / rel / "globalInfo.txt"
        lines = path.read_text().split("\n")
        (row,) = [k for k, s in enumerate(lines) if s.startswith("covariance:")]
        numbers = list(re.finditer(_NUMBER, lines[row].split(":", 1)[1]))
        assert len(numbers) == n * n
        offset = len("covariance:")
        text = lines[row]
        for k in sorted({i * n + j, j * n + i}, reverse=True):
            m = numbers[k]
            text = text[: offset + m.start()] + replacement.text + text[offset + m.end() :]
        lines[row] = text
        path.write_text("\n".join(lines))
        mutation = Mutation(rel, "globalInfo.txt", "covariance", row + 1, ("covariance",), 1.0)

        err = _import(root, Path(tmp) / "store.sqlite")
        event("covariance: error" if err is not None else "covariance: imported")
        new = replacement.value
        if new is None or not math.isfinite(new):
            assert err is not None, f"{replacement} was imported"
        if err is not None:
            assert_clean_error(err, root, mutation)
            return
        shot = snapshot(Path(tmp) / "store.sqlite", rel)
        assert_physical(shot)
        expected = dict(baselines[rel])
        matrix = np.array(cov)
        matrix[i, j] = matrix[j, i] = new
        expected[("covariance",)] = matrix
        assert_same(shot, expected)


def test_the_reader_alone_raises_only_format_errors(sources: dict[str, Path]) -> None:
    """A few fixed breakages straight through read_result: no other exception type."""
    breakages = [
        ("SR3/dataInfo.txt", "observedN", "-3"),
        ("SR3/dataInfo.txt", "bgError", "0"),
        ("SR3/dataInfo.txt", "expectedBG", "nan"),
        ("globalInfo.txt", "lumi", "1e400"),
        ("globalInfo.txt", "sqrts", "np.nan"),
    ]
    for file, tag, value in breakages:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            shutil.copytree(sources[EFF_RESULT], root / EFF_RESULT)
            line = replace_in_line(root / EFF_RESULT / file, tag, value)
            with pytest.raises(DatabaseFormatError) as info:
                read_result(root / EFF_RESULT, root)
            assert (info.value.path, info.value.field, info.value.line) == (
                str(root / EFF_RESULT / file), tag, line
            )
