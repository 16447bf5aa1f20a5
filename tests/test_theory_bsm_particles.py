"""BSM particles beyond the MSSM, classified from the SLHA file's QNUMBERS blocks (as SModelS
does): they match the database by charge, colour and spin, so a renamed stop is a stop."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import protomodels.database as pdb
from protomodels.exceptions import InvalidProtomodelError
from protomodels.theory.particles import BsmProperties
from protomodels.theory.predictions import Predictor
from protomodels.theory.protomodel import Decay, Protomodel

TOP_PARTNER, DARK_MATTER = 9000006, 9000022

SLHA = """\
BLOCK QNUMBERS 9000006  # a scalar top partner
  1  2
  2  1
  3  3
  4  1
BLOCK QNUMBERS 9000022  # a Majorana dark-matter fermion
  1  0
  2  2
  3  1
  4  0
BLOCK MASS
  9000006  7.000000E+02
  9000022  1.000000E+02
DECAY  9000022  0.0
DECAY  9000006  1.0
  1.0  2  9000022  6
XSECTION  1.30E+04  2212 2212 2 9000006 -9000006
  0  0  0  0  0  0  4.0E-02  test
"""


def _read(text: str, tmp_path: Path) -> Protomodel:
    path = tmp_path / "model.slha"
    path.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Protomodel.from_slha(path)


def test_qnumbers_classify_new_particles(tmp_path: Path) -> None:
    model = _read(SLHA, tmp_path)
    assert model.properties == {
        TOP_PARTNER: BsmProperties(2 / 3, 3, 0.0),
        DARK_MATTER: BsmProperties(0.0, 1, 0.5),
    }
    assert model.lsp == DARK_MATTER
    # written back with its QNUMBERS, read again the same
    again = _read(model.to_slha(xsecs=model.xsecs), tmp_path)
    assert again.properties == model.properties and dict(again.masses) == dict(model.masses)


def test_a_renamed_stop_is_predicted_as_a_stop(subset_store: Path, tmp_path: Path) -> None:
    database = pdb.load(subset_store, workspaces=False)
    predictor = Predictor(database)
    renamed = _read(SLHA, tmp_path)
    stop = Protomodel(masses={1000006: 700.0, 1000022: 100.0},
                      decays={1000006: (Decay(1000022, (6,), 1.0),)},
                      xsecs={(-1000006, 1000006): {13.0: 40.0}})
    ours = {(p.result_id, p.dataset, p.txnames): p.r_obs for p in predictor.predict(renamed)}
    reference = {(p.result_id, p.dataset, p.txnames): p.r_obs for p in predictor.predict(stop)}
    assert ours and ours == reference


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda t: t.replace("BLOCK QNUMBERS 9000006  # a scalar top partner\n  1  2\n  2  1\n"
                             "  3  3\n  4  1\n", ""),
         ["line 7", "particle 9000006 is not an MSSM particle", "BLOCK QNUMBERS 9000006"]),
        (lambda t: t.replace("  3  3\n", ""), ["line 1", "lack entry 3 (colour dimension)"]),
        (lambda t: t.replace("  3  3\n", "  3  5\n"), ["colour dimension 5"]),
    ],
    ids=["no-qnumbers", "no-colour", "bad-colour"],
)
def test_particles_that_cannot_be_classified_are_named(edit, words: list[str],  # noqa: ANN001
                                                       tmp_path: Path) -> None:
    with pytest.raises(InvalidProtomodelError) as info:
        _read(edit(SLHA), tmp_path)
    for word in words:
        assert word in str(info.value)


def test_a_separate_particles_file_classifies_them(tmp_path: Path) -> None:
    """SModelS's model parameter may point at an SLHA file with the QNUMBERS blocks: the
    model file then needs none."""
    blocks, rest = SLHA.split("BLOCK MASS")
    particles = tmp_path / "particles.slha"
    particles.write_text(blocks)
    path = tmp_path / "model.slha"
    path.write_text("BLOCK MASS" + rest)
    with pytest.raises(InvalidProtomodelError, match="--particles"):
        Protomodel.from_slha(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Protomodel.from_slha(path, particles=particles)
    full = tmp_path / "full"
    full.mkdir()
    assert model.properties == _read(SLHA, full).properties


def test_predict_takes_a_particles_file(subset_store: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from protomodels.cli import cli

    blocks, rest = SLHA.split("BLOCK MASS")
    (tmp_path / "particles.slha").write_text(blocks)
    (tmp_path / "model.slha").write_text("BLOCK MASS" + rest)
    result = CliRunner().invoke(cli, [
        "--database", str(subset_store), "predict", str(tmp_path / "model.slha"),
        "--particles", str(tmp_path / "particles.slha"), "--json", "-", "--no-statistics"])
    assert result.exit_code == 0, result.output
    assert '"T2tt"' in result.stdout


def test_a_decay_into_a_z2_even_bsm_particle_loses_its_weight(tmp_path: Path) -> None:
    """A decay into the heavy Higgs H0 beside the dark-matter particle is read (as SModelS reads
    it) and stated; the tree it makes matches no result, so only the other decay is predicted."""
    text = SLHA.replace("  1.0  2  9000022  6\n",
                        "  0.4  2  9000022  6\n  0.6  3  9000022  35  6\n").replace(
        "BLOCK MASS\n", "BLOCK MASS\n  35  5.000000E+01\n")
    model = _read(text, tmp_path)
    assert model.decays[TOP_PARTNER][0] == Decay(DARK_MATTER, (6,), 0.6, (35,))
    assert any("35" in note and "no result" in note for note in model.notes)
    from protomodels.theory.decomposition import decompose

    topologies = decompose(model, model.xsecs)
    assert {t.decays for t in topologies} == {((TOP_PARTNER, 1), (TOP_PARTNER, 1))}
    assert topologies[0].weights[13.0] == pytest.approx(40.0 * 0.4**2)
