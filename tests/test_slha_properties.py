"""Property test: a numeric field of a real SLHA file replaced by any value gives either a clean
model whose numbers are the file's (or a stated correction of them) and whose predictions are
finite, or a clean error naming the file (and the line, for an unreadable one)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protomodels.database as pdb
from protomodels.exceptions import InputCorrectionWarning, InvalidProtomodelError
from protomodels.theory import Predictor, Protomodel
from protomodels.theory.protomodel import FROZEN_MASS
from protomodels.theory.slha import SlhaFormatError
from protomodels.theory.xsec import load_tables

FILES = ("best_pmodel_latest.slha", "random_1_03.slha")


def numeric_fields(text: str) -> list[tuple[int, int, str, tuple]]:
    """(line index, token index, kind, key) of the values of MASS, DECAY and XSECTION sections:
    kind ``mass`` (key: pdg), ``width`` (pdg), ``br`` (mother, daughters), ``xsec`` (final
    state, sqrt(s) in TeV)."""
    fields = []
    section, head = None, ()
    for i, line in enumerate(text.split("\n")):
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            continue
        if not line[:1].isspace():
            word = tokens[0].upper()
            if word == "BLOCK":
                section = "MASS" if tokens[1].upper() == "MASS" else None
            elif word == "DECAY":
                section, head = "DECAY", (int(tokens[1]),)
                fields.append((i, 2, "width", head))
            elif word == "XSECTION":
                section = "XSECTION"
                head = (tuple(sorted(map(int, tokens[5:]))), round(float(tokens[1]) / 1000, 3))
            continue
        if section == "MASS" and abs(int(tokens[0])) >= 1000000:
            fields.append((i, 1, "mass", (int(tokens[0]),)))
        elif section == "DECAY":
            fields.append((i, 0, "br", (head[0], tuple(int(t) for t in tokens[2:]))))
        elif section == "XSECTION":
            fields.append((i, 6, "xsec", head))
    return fields


VALUES = st.one_of(
    st.sampled_from(["nan", "NaN", "inf", "-inf", "abc", "", "1e400", "-1", "0", "0.0", "1e9",
                     "1e5", "99999", "-460", "1e-30", "0.5", "2", "1.0000001"]),
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
)


@pytest.fixture(scope="module")
def predictor(subset_store: Path, shared: Path) -> Predictor:
    return Predictor(pdb.open(subset_store, build=False, workspaces=False),
                     tables=load_tables(shared))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("slha-mutations")


def read(path: Path) -> Protomodel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputCorrectionWarning)
        return Protomodel.from_slha(path)


def as_float(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_a_mutated_slha_file_is_read_cleanly_or_refused_cleanly(
    data: st.DataObject, shared: Path, folder: Path, predictor: Predictor
) -> None:
    name = data.draw(st.sampled_from(FILES), label="file")
    original = (shared / "data" / "reference" / name).read_text()
    line_index, token_index, kind, key = data.draw(
        st.sampled_from(numeric_fields(original)), label="field"
    )
    token = data.draw(VALUES, label="value")
    lines = original.split("\n")
    code, _, comment = lines[line_index].partition("#")
    tokens = code.split()
    tokens[token_index] = token
    lines[line_index] = "   " * code[:1].isspace() + "  ".join(tokens) + (
        f"  #{comment}" if comment else ""
    )
    path = folder / name
    path.write_text("\n".join(lines))
    baseline = read(shared / "data" / "reference" / name)
    value = as_float(token)

    try:
        model = read(path)
    except SlhaFormatError as err:
        assert str(err).startswith(f"{path}, line {line_index + 1}, ")
        return
    except InvalidProtomodelError as err:
        assert str(err).startswith(f"{path}: ") or str(err).startswith(f"{path}, line ")
        return
    # a clean model: its numbers are the file's, or a stated correction of them
    assert value is not None and math.isfinite(value)
    notes = " ".join(model.notes)
    assert all(math.isfinite(m) and m > 0 for m in model.masses.values())
    if kind == "mass":
        (pdg,) = key
        if abs(value) >= FROZEN_MASS:
            assert abs(pdg) not in model.masses and "are frozen" in notes
        else:
            assert model.masses[abs(pdg)] == round(abs(value), 1)
            assert (value < 0) == ("negative masses" in notes)
    elif kind == "width":
        (pdg,) = key
        if pdg in model.widths:
            assert model.widths[pdg] == value
    elif kind == "br":
        mother, ids = key
        channels = [d for d in model.decays.get(mother, ()) if (d.daughter, *d.sm) == ids]
        if mother in model.decays:
            assert [d.br for d in channels] == ([value] if value != 0 else [])
    elif kind == "xsec":
        pair, sqrts = key
        if model.xsecs is not None and sqrts in model.xsecs.get(pair, {}):
            assert model.xsecs[pair][sqrts] == value * 1000.0
    if kind != "mass":
        assert dict(model.masses) == dict(baseline.masses)
    # ... and its predictions are finite numbers
    for p in predictor.predict(model):
        assert np.isfinite(p.xsec_fb) and p.xsec_fb >= 0
        assert p.upper_limit_fb is None or np.isfinite(p.upper_limit_fb)
        assert p.r_obs is None or np.isfinite(p.r_obs)
        assert p.signals_fb is None or np.isfinite(np.asarray(p.signals_fb)).all()
