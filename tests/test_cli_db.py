"""``protomodel db ...`` through click's test runner, on the imported subset."""

from __future__ import annotations

import ast
import json
import re
import warnings
from pathlib import Path

import pytest
from _helpers import EFF_RESULT, VALUE_RE, copy_store, eff_source, result_folders
from click.testing import CliRunner, Result

from protomodels.cli import cli

ENV = {"COLUMNS": "400", "PROTOMODELS_DATABASE": None}





def run(*args: str, database: Path | None = None) -> Result:
    argv = (["--database", str(database)] if database is not None else []) + list(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CliRunner().invoke(cli, argv, env=ENV, catch_exceptions=False)


def run_json(*args: str, database: Path) -> object:
    result = run(*args, "--json", database=database)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def logical_lines(text: str, store: str) -> list[str]:
    """Output lines of ``db import``, with lines wrapped by rich joined again: a new line
    starts with the store path or with two blanks ("  skipped ...", "  warning: ...")."""
    lines: list[str] = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        if raw.startswith((store, "  ")) or not lines:
            lines.append(raw.strip())
        else:
            lines[-1] += " " + raw.strip()
    return lines






def field(text: str, tag: str) -> str | None:
    m = re.search(rf"^{tag}:\s*(.*?)\s*$", text, re.M)
    return m.group(1) if m else None


def blocks(text: str) -> dict[str, str]:
    """The fields of a txname file, by tag (a field runs until the next 'tag:' line)."""
    parts = re.split(r"^(?=[A-Za-z_]+:)", text, flags=re.M)
    return {p.split(":", 1)[0]: p.split(":", 1)[1] for p in parts if ":" in p}


def data_type_of(folder: Path) -> str:
    (t,) = {field(p.read_text(), "dataType") for p in folder.glob("*/dataInfo.txt")}
    return t


def txnames_of(folder: Path) -> set[str]:
    names = set()
    for p in folder.glob("*/*.txt"):
        text = p.read_text()
        if p.name != "dataInfo.txt" and "txName" in text:
            names.add(field(text, "txName"))
    return names


@pytest.fixture(scope="module")
def expected(subset_source: Path) -> dict[str, dict]:
    """Per result id: sqrts, collaboration, data type, txnames, from the files."""
    out = {}
    for rel in result_folders(subset_source):
        energy, collab, rid = rel.split("/")
        folder = subset_source / rel
        out[rid] = {
            "sqrts": float(energy.removesuffix("TeV")),
            "collaboration": collab,
            "type": data_type_of(folder),
            "txnames": txnames_of(folder),
            "datasets": len(list(folder.glob("*/dataInfo.txt"))),
        }
    return out


# --------------------------------------------------------------------------- db import


def test_import_then_reimport(subset_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-store.sqlite"
    n = len(result_folders(subset_source))
    result = run("db", "import", "--source", str(subset_source), "--out", str(out),
                 "--workers", "1")
    assert result.exit_code == 0, result.output
    # one summary line and the count of warnings; the warning itself (missing BkgOnly.json)
    # once, in the table on standard error; rich may wrap long lines
    lines = logical_lines(result.stdout, str(out))
    assert len(lines) == 2, lines
    assert lines[0].startswith(str(out))
    assert re.search(
        rf"{n} results imported, 0 unchanged, 0 skipped, 0 failed, 0 removed in [0-9.]+ s "
        r"\(database 3\.0\.0\)",
        lines[0],
    )
    assert lines[1] == "1 warning (table on standard error)"
    assert "BkgOnly.json" not in result.stdout
    assert result.stderr.count("BkgOnly.json") == 1
    squashed = re.sub(r"[\s│]", "", result.stderr)  # (the table folds long paths)
    assert "ATLAS-SUSY-2019-08-eff/globalInfo.txt" in squashed
    assert "warnings of the import" in result.stderr
    assert "UserWarning" not in result.stderr
    assert out.exists()

    again = run("db", "import", "--source", str(subset_source), "--out", str(out),
                "--workers", "1")
    assert again.exit_code == 0, again.output
    lines = logical_lines(again.stdout, str(out))
    assert len(lines) == 1, lines
    assert f"0 results imported, {n} unchanged, 0 skipped, 0 failed, 0 removed" in lines[0]

    info = run_json("db", "info", database=out)
    assert info["totals"]["results"] == n
    assert info["problems"] == []
    assert info["meta"]["complete"] == "1"


def test_import_of_a_broken_copy_exits_1_and_names_the_file(
    source_copy: Path, subset_store: Path, tmp_path: Path
) -> None:
    path = source_copy / "13TeV/CMS/CMS-EXO-19-012/data/TRV1jj.txt"
    text = path.read_text()
    assert text.count("[[1800.0,18.0],2.182359E-01*pb]") == 1
    path.write_text(text.replace("[[1800.0,18.0],2.182359E-01*pb]", "[[1800.0,18.0],nan*pb]"))
    out = copy_store(subset_store, tmp_path / "store")
    result = run("db", "import", "--source", str(source_copy), "--out", str(out),
                 "--workers", "1")
    assert result.exit_code == 1
    assert str(path) in result.stderr
    assert "error in 13TeV/CMS/CMS-EXO-19-012" in result.stderr
    assert "upperLimits" in result.stderr
    (summary,) = logical_lines(result.stdout, str(out))
    assert "0 results imported, 6 unchanged, 0 skipped, 1 failed, 0 removed" in summary

    strict = run("db", "import", "--source", str(source_copy), "--out", str(out),
                 "--workers", "1", "--strict")
    assert strict.exit_code == 1
    assert str(path) in strict.output


def test_import_of_a_missing_source_exits_2(tmp_path: Path) -> None:
    result = run("db", "import", "--source", str(tmp_path / "nope"), "--out",
                 str(tmp_path / "s.sqlite"))
    assert result.exit_code == 2
    assert "nope" in result.output


# --------------------------------------------------------------------------- db info


def test_info_json_counts(subset_store: Path, subset_source: Path, expected: dict) -> None:
    info = run_json("db", "info", database=subset_store)
    sqrts: dict[str, int] = {}
    collab: dict[str, int] = {}
    dtype: dict[str, int] = {}
    for e in expected.values():
        key = f"{e['sqrts']:g} TeV"
        sqrts[key] = sqrts.get(key, 0) + 1
        collab[e["collaboration"]] = collab.get(e["collaboration"], 0) + 1
        dtype[e["type"]] = dtype.get(e["type"], 0) + 1
    assert info["sqrts"] == sqrts == {"13 TeV": 5, "8 TeV": 2}
    assert info["collaboration"] == collab
    assert info["data_type"] == dtype
    assert info["totals"]["results"] == len(expected)
    assert info["totals"]["datasets"] == sum(e["datasets"] for e in expected.values())
    assert info["meta"]["database_version"] == (subset_source / "version").read_text().strip()
    assert info["store"] == str(subset_store)
    assert info["problems"] == []


def test_info_plain_text(subset_store: Path) -> None:
    result = run("db", "info", database=subset_store)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "SModelS 3.0.0" in out
    assert re.search(r"13 TeV\s*│\s*5", out)
    assert re.search(r"8 TeV\s*│\s*2", out)
    assert "results: 7" in out


# --------------------------------------------------------------------------- db list


@pytest.mark.parametrize(
    ("args", "keep"),
    [
        ([], lambda e: True),
        (["--sqrts", "8"], lambda e: e["sqrts"] == 8),
        (["--sqrts", "13"], lambda e: e["sqrts"] == 13),
        (["--type", "ul"], lambda e: e["type"] == "upperLimit"),
        (["--type", "em"], lambda e: e["type"] == "efficiencyMap"),
        (["--collaboration", "CMS"], lambda e: e["collaboration"] == "CMS"),
        (["--collaboration", "atlas"], lambda e: e["collaboration"] == "ATLAS"),
        (["--topology", "T2tt"], lambda e: "T2tt" in e["txnames"]),
        (["--topology", "T2bb"], lambda e: "T2bb" in e["txnames"]),
        (["--sqrts", "13", "--type", "ul", "--collaboration", "CMS"],
         lambda e: e["sqrts"] == 13 and e["type"] == "upperLimit" and e["collaboration"] == "CMS"),
        (["--no-superseded"], lambda e: True),
    ],
    ids=["all", "8", "13", "ul", "em", "cms", "atlas", "T2tt", "T2bb", "combined", "no-sup"],
)
def test_list_json_filters(subset_store: Path, expected: dict, args: list[str], keep) -> None:  # noqa: ANN001
    rows = run_json("db", "list", *args, database=subset_store)
    wanted = [rid for rid, e in expected.items() if keep(e)]
    assert sorted(r["result"] for r in rows) == sorted(wanted)
    assert wanted  # every filter above keeps something
    for row in rows:
        e = expected[row["result"]]
        assert row["type"] == e["type"]
        assert row["sqrts_tev"] == e["sqrts"]
        assert row["collaboration"] == e["collaboration"]
        assert row["datasets"] == e["datasets"]
        assert row["topologies"] == sorted(e["txnames"])


def test_list_json_grep(subset_store: Path, expected: dict) -> None:
    rows = run_json("db", "list", "--grep", "EXO", database=subset_store)
    assert sorted(r["result"] for r in rows) == sorted(r for r in expected if "EXO" in r)
    rows = run_json("db", "list", "--grep", "^ATLAS-SUSY-20(18|19)", database=subset_store)
    assert sorted(r["result"] for r in rows) == ["ATLAS-SUSY-2018-14-eff", "ATLAS-SUSY-2019-08-eff"]
    assert run_json("db", "list", "--grep", "no-such-thing", database=subset_store) == []


def test_list_plain_text(subset_store: Path, expected: dict) -> None:
    result = run("db", "list", database=subset_store)
    assert result.exit_code == 0, result.output
    for rid in expected:
        assert rid in result.stdout
    assert f"{len(expected)} results" in result.stdout
    eight = run("db", "list", "--sqrts", "8", database=subset_store).stdout
    rows = {rid for rid in expected if re.search(rf"│ {re.escape(rid)}\s", eight)}
    assert rows == {rid for rid, e in expected.items() if e["sqrts"] == 8}
    assert "2 results" in eight


# --------------------------------------------------------------------------- db show


def test_show_json(subset_store: Path, subset_source: Path) -> None:
    data = run_json("db", "show", "CMS-SUS-20-004", database=subset_store)
    folder = subset_source / "13TeV/CMS/CMS-SUS-20-004"
    ginfo = (folder / "globalInfo.txt").read_text()
    assert data["result"] == "CMS-SUS-20-004"
    assert data["analysis"] == field(ginfo, "id")
    assert data["url"] == field(ginfo, "url")
    assert data["arxiv"] == field(ginfo, "arxiv")
    assert data["lumi_ifb"] == float(field(ginfo, "lumi").removesuffix("/fb"))
    assert data["type"] == "upperLimit"
    (ds,) = data["datasets"]
    assert ds["id"] == "data"
    assert ds["data_id"] is None
    assert ds["type"] == "upperLimit"
    files = {field(p.read_text(), "txName"): blocks(p.read_text())
             for p in (folder / "data").glob("T*.txt")}
    assert ds["topologies"] == sorted(files)
    material = data["material"]
    assert material["covariance"] is None
    assert material["pyhf"] == []
    has_expected = all("expectedUpperLimits" in b for b in files.values())
    assert material["likelihood"] == ("truncated_gaussian" if has_expected else "none")
    details = data["topology_details"]
    assert sorted(details) == sorted(files)
    for name, b in files.items():
        d = details[name]
        assert d["constraint"] == b["constraint"].strip()
        assert d["points"] == len(VALUE_RE.findall(b["upperLimits"]))
        assert d["datasets"] == 1
        assert d["grids"] == sorted(
            {"upper_limit"} | ({"expected_upper_limit"} if "expectedUpperLimits" in b else set())
        )
    assert details["TChiHH"]["axes"] == [[1, "mass"], [3, "mass"], [2, "mass"], [5, "mass"]]


def test_show_json_covariance(tarball: Path, tmp_path_factory: pytest.TempPathFactory,
                              tmp_path: Path) -> None:
    root = eff_source(tarball, tmp_path_factory)
    out = tmp_path / "eff.sqlite"
    imported = run("db", "import", "--source", str(root), "--out", str(out), "--workers", "1")
    assert imported.exit_code == 0, imported.output
    data = run_json("db", "show", "CMS-SUS-20-004-eff", database=out)
    ginfo = (root / EFF_RESULT / "globalInfo.txt").read_text()
    order = list(ast.literal_eval("(" + field(ginfo, "datasetOrder") + ")"))
    n = len(list((root / EFF_RESULT).glob("*/dataInfo.txt")))
    assert n == len(order) == 22
    assert data["material"]["covariance"] == [n, n]
    assert data["material"]["likelihood"] == "covariance"
    assert [d["id"] for d in data["datasets"]] == order
    assert data["type"] == "efficiencyMap"
    for d in data["datasets"]:
        info = (root / EFF_RESULT / d["id"] / "dataInfo.txt").read_text()
        assert d["observed_n"] == float(field(info, "observedN"))
        assert d["expected_bg"] == float(field(info, "expectedBG"))
        assert d["upper_limit_fb"] == float(field(info, "upperLimit").removesuffix("*fb"))
    assert sorted(data["topology_details"]) == ["T5HH", "TChiHH"]
    assert data["topology_details"]["TChiHH"]["datasets"] == n

    plain = run("db", "show", "CMS-SUS-20-004-eff", database=out)
    assert f"covariance {n}×{n}" in plain.stdout
    for sr in order:
        assert re.search(rf"│ {sr}\s", plain.stdout)


def test_show_plain_text(subset_store: Path) -> None:
    result = run("db", "show", "CMS-SUS-19-006", database=subset_store)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("CMS-SUS-19-006")
    for tx in ("T1", "T1bbbb", "T1tttt", "T2", "T2bb", "T2tt", "T2ttoff"):
        assert re.search(rf"│ {tx}\s", out), tx
    assert "truncated_gaussian" in out
    eff = run("db", "show", "ATLAS-SUSY-2019-08-eff", database=subset_store).stdout
    assert "BkgOnly.json (missing)" in eff
    assert "fallback:" in eff
    assert "SR_HM_Low_MCT" in eff


def test_show_unknown_result_exits_1(subset_store: Path) -> None:
    result = run("db", "show", "NO-SUCH", database=subset_store)
    assert result.exit_code == 1
    assert "no result 'NO-SUCH'" in result.output
    assert str(subset_store) in result.output
    close = run("db", "show", "CMS-SUS-19", database=subset_store)
    assert close.exit_code == 1
    assert "did you mean CMS-SUS-19-006" in close.output
